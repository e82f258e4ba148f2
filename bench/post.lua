-- wrk script for bench/run.py: POST a JSON body, print one machine-readable summary line.
--
-- Environment:
--   BENCH_BODY     the request body (JSON)
--   BENCH_HEADERS  extra headers, one "Name: value" per line
--   BENCH_CHECK    "1": read every response body and count the ones that are not a complete SSE stream
--                  (status 200 but no "data: [DONE]", or an in-band error chunk). Only for streams: it makes
--                  wrk buffer bodies and call into Lua per response, which costs the load generator CPU.

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then
    wrk.headers[name] = value
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  complete = 0
  truncated = 0
  inband = 0
  non200 = 0
end

if os.getenv("BENCH_CHECK") == "1" then
  function response(status, headers, body)
    if status ~= 200 then
      non200 = non200 + 1
    elseif not body:find("data: [DONE]", 1, true) then
      truncated = truncated + 1
    elseif body:find('"error":', 1, true) then
      inband = inband + 1
    else
      complete = complete + 1
    end
  end
end

function done(summary, latency, requests)
  local totals = {complete = 0, truncated = 0, inband = 0, non200 = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
  end
  local e = summary.errors
  -- Latencies in microseconds, from wrk's own histogram (the same numbers as --latency prints).
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d " ..
    "complete=%d truncated=%d inband=%d non200=%d p50=%d p90=%d p99=%d max=%d checked=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    totals.complete, totals.truncated, totals.inband, totals.non200,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    (os.getenv("BENCH_CHECK") == "1") and 1 or 0))
end
