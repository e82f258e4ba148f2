"""The benchmark: the mock upstream directly, our gateway, and the Portkey gateway, on the same machine.

    .venv/bin/python bench/run.py            # about 4 minutes; writes bench/RESULTS.md
    .venv/bin/python bench/run.py --quick    # about 1 minute, shorter runs (noisier numbers)

One run sets up an isolated gateway (its own VAR_DIR in a temp dir, SQLite there unless --database-url, the
catalog pointing at the mock, a bootstrapped organization and a real inference key with accounting on),
starts the mock upstream pinned to core 1, then each target in turn pinned to core 0 (never two gateways at
once), drives load with wrk from core 1, and measures:

- short non-streaming calls: requests/s at 64 connections, and the added latency at low load
  (one connection, sequential requests: gateway p50/p99 minus direct p50/p99);
- short streams (12 words): streams/s at 64 connections, time to first byte at low load;
- 500 concurrent slow streams (20 words, 50 ms apart: about 1 s each): completed streams/s, errors
  (non-200, socket errors, streams without [DONE] or with an in-band error) and p50/p99 total time.

After the gateway's runs it counts the Generation rows the gateway wrote and compares them with the number
of requests that succeeded. Traffic goes to 127.0.0.1 only. Standard library + aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import json
import math
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LUA = BENCH_DIR / "post.lua"
sys.path.insert(0, str(BENCH_DIR))
import portkey  # noqa: E402

GATEWAY_CORE, LOAD_CORE = 0, 1
MODEL_SLUG = "bench/chat"
UPSTREAM_MODEL = "mock-chat"
SLOW_DIRECTIVE = "[[mock chunk_delay_ms=50,words=20]]"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Profile:
    warmup: int            # seconds of wrk load per warm-up run (non-streaming, then streaming)
    portkey_warmup: int    # Node's JIT needs longer before its numbers settle
    rps: int               # seconds of the 64-connection runs
    latency: float         # seconds of sequential requests per low-load measurement
    latency_max: int       # at most this many sequential requests per measurement
    slow: int              # seconds the 500 slow streams are held
    latency_min: int = 100  # measured sequential requests even past `latency` (a slow target still gets a p99)
    conns: int = 64
    slow_conns: int = 500


PROFILES = {
    "full": Profile(warmup=3, portkey_warmup=8, rps=15, latency=5, latency_max=3000, slow=20),
    "quick": Profile(warmup=1, portkey_warmup=2, rps=3, latency=1.5, latency_max=1000, slow=5, latency_min=50),
}


def log(message: str) -> None:
    print(message, flush=True)


# --- processes and CPU accounting ----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    return text[text.rindex(")") + 2:].split()


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLK_TCK


def core_times() -> dict[int, tuple[int, int]]:
    """{core: (busy jiffies, total jiffies)} from /proc/stat."""
    result = {}
    for line in Path("/proc/stat").read_text().splitlines():
        match = re.match(r"cpu(\d+) (.*)", line)
        if match:
            values = [int(v) for v in match.group(2).split()]
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            result[int(match.group(1))] = (sum(values[:8]) - idle, sum(values[:8]))
    return result


class CpuMeter:
    """CPU used by a set of process trees and by each core between start() and stop()."""

    def __init__(self, roots: dict[str, int | None]):
        self.roots = {name: pid for name, pid in roots.items() if pid}

    def start(self):
        self.pids = {name: process_tree(pid) for name, pid in self.roots.items()}
        self.before = {name: cpu_seconds(pids) for name, pids in self.pids.items()}
        self.cores_before = core_times()
        self.t0 = time.monotonic()

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.t0
        usage = {f"{name}_cpu": 100 * (cpu_seconds(self.pids[name]) - self.before[name]) / elapsed
                 for name in self.pids}
        after = core_times()
        for core in (GATEWAY_CORE, LOAD_CORE):
            busy = after[core][0] - self.cores_before[core][0]
            total = after[core][1] - self.cores_before[core][1]
            usage[f"core{core}"] = 100 * busy / total if total else 0.0
        return usage


def wait_until_idle(pid: int, threshold: float = 0.05, window: float = 0.5, limit: float = 20.0) -> None:
    """Let a freshly started process tree finish booting (Celery, imports) before it is measured."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        pids = process_tree(pid)
        before = cpu_seconds(pids)
        time.sleep(window)
        if cpu_seconds(pids) - before < threshold * window:
            return


def stop_process(proc: subprocess.Popen | None, timeout: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        # Started in its own session: its group is only the processes it started.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def wait_http(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 180.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with code {proc.returncode}:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s:\n{tail(log_path)}")


def tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


# --- the isolated gateway instance ---------------------------------------------------------------------

def mask_url(url: str) -> str:
    """A database URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def gateway_env(var_dir: Path, database_url: str, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    env.update({
        "VAR_DIR": str(var_dir),
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        # A Fernet key is 32 random bytes, url-safe base64.
        "ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    })
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def manage(env: dict, *args: str) -> str:
    cmd = ["taskset", "-c", str(LOAD_CORE), sys.executable, "manage.py", *args]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} failed (exit {result.returncode}):\n"
                         f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def catalog(mock_port: int) -> dict:
    return {
        "providers": [{"slug": "bench-mock", "name": "Bench Mock", "base_url": f"http://127.0.0.1:{mock_port}/v1",
                       "api_format": "openai", "api_key_env": "", "data_collection": "deny", "zdr": True}],
        "models": [{"slug": MODEL_SLUG, "name": "Bench Chat", "context_length": 32768,
                    "endpoints": [{"provider": "bench-mock", "upstream_model": UPSTREAM_MODEL,
                                   "pricing": {"prompt": "0.000001", "completion": "0.000002"},
                                   "max_completion_tokens": 4096,
                                   "supported_parameters": ["temperature", "max_tokens", "stream"]}]}],
    }


def set_up_instance(env: dict, var_dir: Path, mock_port: int) -> str:
    """Migrate, load the catalog, bootstrap; return the inference key."""
    manage(env, "migrate", "--noinput")
    catalog_path = var_dir / "bench-catalog.json"
    catalog_path.write_text(json.dumps(catalog(mock_port), indent=1))
    manage(env, "load_catalog", str(catalog_path))
    out = manage(env, "bootstrap", "--org", "Bench", "--email", "bench@example.com",
                 f"--password={secrets.token_urlsafe(16)}", "--credits", "1000000", "--inference-key")
    match = re.search(r"^Inference key \(Default workspace\): (\S+)$", out, re.M)
    if not match:
        raise SystemExit("bootstrap printed no inference key")
    return match.group(1)


GENERATION_QUERY = (
    "import json\n"
    "from django.db.models import Count, Sum\n"
    "from billing.models import Generation\n"
    "rows = Generation.objects.all()\n"
    "by_status = {r['status']: r['n'] for r in rows.values('status').annotate(n=Count('id'))}\n"
    "cost = rows.aggregate(total=Sum('total_cost'))['total']\n"
    "print('BENCH_GENERATIONS ' + json.dumps({'total': sum(by_status.values()), 'by_status': by_status,"
    " 'cost': str(cost or 0)}))\n"
)


def count_generations(env: dict) -> dict:
    out = manage(env, "shell", "-c", GENERATION_QUERY)
    match = re.search(r"^BENCH_GENERATIONS (.*)$", out, re.M)
    if not match:
        raise SystemExit(f"could not count generations:\n{out[-2000:]}")
    return json.loads(match.group(1))


def settled_generations(env: dict, limit: float = 20.0) -> dict:
    """The counts once they stop moving: the recorder writes in the background, a moment after responses."""
    deadline = time.monotonic() + limit
    previous = count_generations(env)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        current = count_generations(env)
        if current == previous:
            return current
        previous = current
    return previous


# --- load generation -----------------------------------------------------------------------------------

@dataclass
class Target:
    key: str
    label: str
    url: str
    headers: dict[str, str]
    model: str
    proc: subprocess.Popen | None = None   # the process tree measured for CPU (None: nothing beyond the mock)
    warmup: int = 3


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]
    complete: int
    truncated: int
    inband: int
    p50: float
    p90: float
    p99: float
    max: float
    checked: bool
    conns: int
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return self.complete if self.checked else self.requests - self.errors["status"]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def failures(self) -> int:
        socket_errors = sum(self.errors[k] for k in ("connect", "read", "write", "timeout"))
        if self.checked:
            return socket_errors + self.truncated + self.inband + self.non_200
        return socket_errors + self.errors["status"]

    @property
    def non_200(self) -> int:
        return self.errors["status"]


def body_for(model: str, stream: bool, text: str = "Say hello.") -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        # Our gateway always asks for usage upstream: ask for it on every target so the mock does the same work.
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


WRK = shutil.which("wrk")


def run_wrk(target: Target, body: dict, conns: int, seconds: int, check: bool,
            meter: CpuMeter | None = None) -> WrkResult:
    env = dict(os.environ, BENCH_BODY=json.dumps(body), BENCH_CHECK="1" if check else "0",
               BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in target.headers.items()))
    cmd = ["taskset", "-c", str(LOAD_CORE), WRK, "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s",
           "--latency", "-s", str(LUA), target.url]
    with tempfile.TemporaryFile() as out:
        if meter:
            meter.start()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, rusage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu = meter.stop() if meter else {}
        out.seek(0)
        text = out.read().decode(errors="replace")
    result = parse_wrk(text, conns) if proc.returncode == 0 else None
    if result is None:
        raise SystemExit(f"wrk failed (exit {proc.returncode}):\n{text[-3000:]}")
    cpu["wrk_cpu"] = 100 * (rusage.ru_utime + rusage.ru_stime) / result.seconds if result.seconds else 0.0
    result.cpu = cpu
    return result


def parse_wrk(text: str, conns: int) -> WrkResult | None:
    """The summary line post.lua prints (latencies in microseconds there, milliseconds here)."""
    match = re.search(r"^BENCH_RESULT (.*)$", text, re.M)
    if not match:
        return None
    values = {k: int(v) for k, v in (item.split("=") for item in match.group(1).split())}
    return WrkResult(
        requests=values["requests"], seconds=values["duration_us"] / 1e6,
        errors={k: values[k] for k in ("connect", "read", "write", "status", "timeout")},
        complete=values["complete"], truncated=values["truncated"], inband=values["inband"],
        p50=values["p50"] / 1000, p90=values["p90"] / 1000, p99=values["p99"] / 1000, max=values["max"] / 1000,
        checked=bool(values["checked"]), conns=conns,
    )


@dataclass
class LatencyResult:
    count: int
    errors: int
    p50: float
    p99: float
    ttfb_p50: float
    ttfb_p99: float
    unmeasured_ok: int = 0


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


async def _sequential(target: Target, body: dict, seconds: float, limit: int, minimum: int) -> LatencyResult:
    data = json.dumps(body).encode()
    stream = bool(body.get("stream"))
    totals, ttfbs, errors, unmeasured_ok = [], [], 0, 0
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        deadline = time.perf_counter() + seconds
        hard_deadline = deadline + 20  # a slow target still gets enough samples for a p99, within reason
        warm = 5  # the first requests open the connection and fill caches: not measured
        while len(totals) < limit:
            now = time.perf_counter()
            if now > hard_deadline or (now > deadline and len(totals) >= minimum):
                break
            started = time.perf_counter()
            try:
                async with session.post(target.url, data=data, headers=target.headers) as response:
                    first = await response.content.readany()
                    first_at = time.perf_counter()
                    chunks = [first]
                    async for chunk in response.content.iter_any():
                        chunks.append(chunk)
                    ended = time.perf_counter()
                    payload = b"".join(chunks)
                    ok = response.status == 200 and (not stream or b"data: [DONE]" in payload)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                ok = False
            if warm:
                warm -= 1
                unmeasured_ok += ok
                continue
            if not ok:
                errors += 1
                continue
            totals.append((ended - started) * 1000)
            ttfbs.append((first_at - started) * 1000)
    return LatencyResult(count=len(totals), errors=errors, p50=percentile(totals, 50), p99=percentile(totals, 99),
                         ttfb_p50=percentile(ttfbs, 50), ttfb_p99=percentile(ttfbs, 99),
                         unmeasured_ok=unmeasured_ok)


def sequential(target: Target, body: dict, profile: Profile) -> LatencyResult:
    return asyncio.run(_sequential(target, body, profile.latency, profile.latency_max, profile.latency_min))


# --- one target ----------------------------------------------------------------------------------------

@dataclass
class TargetResults:
    target: Target
    rps: WrkResult | None = None
    latency: LatencyResult | None = None
    streams: WrkResult | None = None
    stream_latency: LatencyResult | None = None
    slow: WrkResult | None = None
    succeeded: int = 0      # requests this script saw succeed, warm-ups included
    slack: int = 0          # requests possibly still in flight when a run stopped (cut or timed out)
    failed: int = 0
    generations: dict | None = None
    profile: list[str] | None = None

    def count(self, result: WrkResult | LatencyResult) -> None:
        if isinstance(result, WrkResult):
            self.succeeded += result.ok
            self.failed += result.failures
            self.slack += result.conns + result.errors["timeout"]
        else:
            self.succeeded += result.count + result.unmeasured_ok
            self.failed += result.errors


def measure(target: Target, profile: Profile, mock_proc: subprocess.Popen) -> TargetResults:
    results = TargetResults(target)
    meter = CpuMeter({"target": target.proc.pid if target.proc else None, "mock": mock_proc.pid})
    short, stream = body_for(target.model, False), body_for(target.model, True)
    slow = body_for(target.model, True, f"Tell me a story. {SLOW_DIRECTIVE}")

    log(f"[{target.key}] warming up ({target.warmup} s non-streaming + {target.warmup} s streaming)")
    results.count(run_wrk(target, short, profile.conns, target.warmup, check=False))
    results.count(run_wrk(target, stream, profile.conns, target.warmup, check=True))

    results.rps = run_wrk(target, short, profile.conns, profile.rps, check=False, meter=meter)
    results.count(results.rps)
    log(f"[{target.key}] short non-streaming, {profile.conns} connections: {results.rps.rate:,.0f} req/s, "
        f"p50 {results.rps.p50:.2f} ms, p99 {results.rps.p99:.2f} ms, {results.rps.failures} errors")

    results.latency = sequential(target, short, profile)
    results.count(results.latency)
    log(f"[{target.key}] low load (1 connection, sequential): p50 {results.latency.p50:.3f} ms, "
        f"p99 {results.latency.p99:.3f} ms over {results.latency.count} requests")

    results.streams = run_wrk(target, stream, profile.conns, profile.rps, check=True, meter=meter)
    results.count(results.streams)
    log(f"[{target.key}] short streams, {profile.conns} connections: {results.streams.rate:,.0f} streams/s, "
        f"p50 {results.streams.p50:.2f} ms, p99 {results.streams.p99:.2f} ms, {results.streams.failures} errors")

    results.stream_latency = sequential(target, stream, profile)
    results.count(results.stream_latency)
    log(f"[{target.key}] short stream at low load: first byte p50 {results.stream_latency.ttfb_p50:.3f} ms, "
        f"total p50 {results.stream_latency.p50:.3f} ms")

    results.slow = run_wrk(target, slow, profile.slow_conns, profile.slow, check=True, meter=meter)
    results.count(results.slow)
    log(f"[{target.key}] {profile.slow_conns} concurrent slow streams for {profile.slow} s: "
        f"{results.slow.rate:,.0f} completed streams/s, p50 {results.slow.p50:.0f} ms, "
        f"p99 {results.slow.p99:.0f} ms, {results.slow.failures} errors")
    return results


def profile_gateway(target: Target, seconds: int, out_path: Path, conns: int) -> list[str]:
    """Sample the gateway's Python stacks with py-spy under the non-streaming load; return a summary."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        log("py-spy not found (install it with: .venv/bin/python -m pip install py-spy); not profiling")
        return []
    cmd = ["taskset", "-c", str(LOAD_CORE), py_spy, "record", "--subprocesses", "--nonblocking", "--format", "raw",
           "--rate", "250", "--nolineno", "--duration", str(seconds + 1), "--output", str(out_path),
           "--pid", str(target.proc.pid)]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    run_wrk(target, body_for(target.model, False), conns, seconds, check=False)
    _, err = spy.communicate(timeout=seconds + 30)
    if spy.returncode != 0 or not out_path.exists():
        log(f"py-spy failed (exit {spy.returncode}): {err.decode(errors='replace')[-500:]}")
        return []
    return summarize_profile(out_path)


GENERIC_FRAMES = ("click/", "granian/", "multiprocessing/", "runpy", "<module>", "threading.py",
                  "concurrent/futures/thread.py", "asyncio/base_events.py", "asyncio/runners.py",
                  "asyncio/events.py", "django/core/management/")


def summarize_profile(path: Path, top: int = 15) -> list[str]:
    """Hotspots from py-spy's raw (collapsed) stacks: self time, and inclusive time of the frames that
    say something (the event loop, thread pool and process plumbing above them is left out)."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    processes: dict[str, int] = {}
    total = native = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        parts = stack.split(";")
        procs = [f for f in parts if f.startswith("process ")]
        frames = [f for f in parts if not f.startswith(("process ", "thread "))]
        total += n
        if procs:
            name = re.sub(r'^process \d+:"', "", procs[-1]).rstrip('"')
            processes[name[:90]] = processes.get(name[:90], 0) + n
        if not frames:
            native += n  # a thread with no Python frame: granian's Rust runtime
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            if not any(generic in frame for generic in GENERIC_FRAMES):
                inclusive[frame] = inclusive.get(frame, 0) + n
    if not total:
        return []

    def share(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    lines = [f"{total} samples of busy threads in the gateway's processes (py-spy, idle threads excluded)", ""]
    lines += [f"  {share(n)}  {name}" for name, n in sorted(processes.items(), key=lambda i: -i[1])]
    lines += [f"  {share(native)}  of all samples: threads with no Python frame (granian's Rust runtime)", "",
              "Self time (the function itself on top of the stack):"]
    lines += [f"  {share(n)}  {frame}" for frame, n in sorted(own.items(), key=lambda i: -i[1])[:top]]
    lines += ["", "Inclusive time (the function and everything it called):"]
    lines += [f"  {share(n)}  {frame}" for frame, n in sorted(inclusive.items(), key=lambda i: -i[1])[:top + 10]]
    return lines


# --- report --------------------------------------------------------------------------------------------

def fmt(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def machine_facts(database_url: str) -> list[tuple[str, str]]:
    def command_output(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "n/a"

    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    import granian

    portkey_version = portkey._installed_version(portkey.PACKAGE_DIR) or "not installed"
    node_server = portkey._installed_version(portkey.PREFIX / "node_modules" / "@hono" / "node-server") or "?"
    return [
        ("nproc", command_output(["nproc"])),
        ("CPU", cpu_model),
        ("Kernel", platform.release()),
        ("Python", platform.python_version()),
        ("granian", granian.__version__),
        ("aiohttp", aiohttp.__version__),
        ("Node", command_output(["node", "--version"])),
        ("Portkey gateway", f"@portkey-ai/gateway {portkey_version} (@hono/node-server {node_server})"),
        ("wrk", command_output([WRK, "-v"]).splitlines()[0] if WRK else "n/a"),
        ("Code measured", code_version()),
        ("Gateway database", "SQLite (in the run's temp dir)" if database_url.startswith("sqlite")
         else mask_url(database_url).split("://")[0]),
        ("Load average at start", " ".join(Path("/proc/loadavg").read_text().split()[:3])),
        (f"Cores {GATEWAY_CORE} / {LOAD_CORE} busy before the run (other processes)", busy_before()),
    ]


def code_version() -> str:
    """The commit measured, and whether the gateway's code had uncommitted changes at the time."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", "routing", "billing", "workspaces",
                  "openrouter_ws")
    paths = sorted({line[3:].split("/")[0] for line in changed.splitlines() if line.strip()})
    return f"commit {commit}" + (f" + uncommitted changes in {', '.join(paths)}" if paths else "")


def busy_before(seconds: float = 1.0) -> str:
    before = core_times()
    time.sleep(seconds)
    after = core_times()
    cells = []
    for core in (GATEWAY_CORE, LOAD_CORE):
        total = after[core][1] - before[core][1]
        cells.append(f"{100 * (after[core][0] - before[core][0]) / total:.0f}%" if total else "n/a")
    return " / ".join(cells)


def build_report(results: dict[str, TargetResults], profile_name: str, profile: Profile, command: str,
                 facts: list[tuple[str, str]], started: datetime.datetime) -> tuple[str, list[str], dict]:
    keys = [k for k in ("direct", "gateway", "portkey") if k in results]
    direct = results.get("direct")
    head = "| Scenario | Metric | " + " | ".join(results[k].target.label for k in keys) + " |"
    rule = "|---|---|" + "---:|" * len(keys)
    rows = [head, rule]

    def row(scenario: str, metric: str, render) -> None:
        cells = []
        for k in keys:
            try:
                cells.append(render(results[k]))
            except (TypeError, AttributeError):
                cells.append("n/a")
        rows.append(f"| {scenario} | {metric} | " + " | ".join(cells) + " |")

    def added(value_of):
        def render(r):
            if r.target.key == "direct" or direct is None:
                return "(baseline)"
            return fmt(value_of(r) - value_of(direct), 3, " ms")
        return render

    c, sc = profile.conns, profile.slow_conns
    s1 = f"Short non-streaming, {c} conns, {profile.rps} s"
    row(s1, "requests/s", lambda r: fmt(r.rps.rate))
    row(s1, "latency p50 / p99", lambda r: f"{fmt(r.rps.p50, 2)} / {fmt(r.rps.p99, 2)} ms")
    row(s1, "errors", lambda r: fmt(r.rps.failures))
    row(s1, "CPU: target / mock / wrk", lambda r: cpu_cell(r.rps))
    row(s1, f"other processes on cores {GATEWAY_CORE} / {LOAD_CORE}", lambda r: core_cell(r.rps))
    row(s1, "target CPU per completed request", lambda r: cpu_per_request(r.rps))
    s2 = "Short non-streaming, low load (1 conn, sequential)"
    row(s2, "latency p50 / p99", lambda r: f"{fmt(r.latency.p50, 3)} / {fmt(r.latency.p99, 3)} ms")
    row(s2, "**added** p50", added(lambda r: r.latency.p50))
    row(s2, "**added** p99", added(lambda r: r.latency.p99))
    s3 = f"Short streams (12 words), {c} conns, {profile.rps} s"
    row(s3, "streams/s", lambda r: fmt(r.streams.rate))
    row(s3, "total time p50 / p99", lambda r: f"{fmt(r.streams.p50, 2)} / {fmt(r.streams.p99, 2)} ms")
    row(s3, "errors", lambda r: error_cell(r.streams))
    row(s3, "CPU: target / mock / wrk", lambda r: cpu_cell(r.streams))
    row(s3, f"other processes on cores {GATEWAY_CORE} / {LOAD_CORE}", lambda r: core_cell(r.streams))
    row(s3, "target CPU per completed request", lambda r: cpu_per_request(r.streams))
    s4 = "Short stream, low load (1 conn, sequential)"
    row(s4, "first byte p50 / p99",
        lambda r: f"{fmt(r.stream_latency.ttfb_p50, 3)} / {fmt(r.stream_latency.ttfb_p99, 3)} ms")
    row(s4, "total p50 / p99", lambda r: f"{fmt(r.stream_latency.p50, 3)} / {fmt(r.stream_latency.p99, 3)} ms")
    row(s4, "added first byte p50", added(lambda r: r.stream_latency.ttfb_p50))
    s5 = f"{sc} concurrent slow streams (~1 s each), {profile.slow} s"
    row(s5, "completed streams/s", lambda r: fmt(r.slow.rate))
    row(s5, "total time p50 / p99", lambda r: f"{fmt(r.slow.p50)} / {fmt(r.slow.p99)} ms")
    row(s5, "errors (non-200 / socket / truncated / in-band)", lambda r: error_cell(r.slow))
    row(s5, "CPU: target / mock / wrk", lambda r: cpu_cell(r.slow))
    row(s5, f"other processes on cores {GATEWAY_CORE} / {LOAD_CORE}", lambda r: core_cell(r.slow))
    row(s5, "target CPU per completed request", lambda r: cpu_per_request(r.slow))

    gateway, pk = results.get("gateway"), results.get("portkey")
    checks = {}
    if gateway and pk:
        checks["More requests/s than Portkey (short non-streaming)"] = (
            gateway.rps.rate > pk.rps.rate, f"{gateway.rps.rate:,.0f} vs {pk.rps.rate:,.0f} req/s")
    if gateway and direct:
        extra = gateway.latency.p50 - direct.latency.p50
        checks["Added latency p50 under 2 ms at low load"] = (extra < 2.0, f"{extra:.3f} ms")
    if gateway:
        failures = gateway.slow.failures
        detail = f"{failures} errors, {gateway.slow.rate:,.0f} completed streams/s, p99 {gateway.slow.p99:,.0f} ms"
        if direct:
            detail += f" (mock direct: {direct.slow.rate:,.0f}/s, p99 {direct.slow.p99:,.0f} ms)"
        checks[f"{sc} concurrent streams held with no errors"] = (failures == 0 and gateway.slow.ok > 0, detail)
    if gateway and gateway.generations is not None:
        checks["Every request accounted (Generation rows)"] = accounting_check(gateway)

    lines = [
        "# Benchmark results", "",
        f"Date: {started:%Y-%m-%d %H:%M} UTC. Profile: `{profile_name}`. Command: `{command}`", "",
        "## Machine", "",
        "| | |", "|---|---|",
        *[f"| {name} | {value} |" for name, value in facts], "",
        "## Targets", "",
        "| Target | Result | |", "|---|---|---|",
        *[f"| {name} | {'met' if ok else '**missed**'} | {detail} |" for name, (ok, detail) in checks.items()], "",
        "## Results", "",
        *rows, "",
    ]
    if gateway and gateway.generations is not None:
        g = gateway.generations
        lines += [
            "## Accounting", "",
            f"Generation rows the gateway wrote during the run: **{g['total']:,}** "
            f"(by status: {', '.join(f'{k} {v:,}' for k, v in sorted(g['by_status'].items())) or 'none'}), "
            f"total cost ${format_cost(g['cost'])}. Requests this script saw succeed through the gateway, warm-ups "
            f"included: {gateway.succeeded:,}; failed: {gateway.failed:,}. Each wrk run stops with up to one "
            f"request per connection in flight, which the gateway still completes or records as cancelled: "
            f"up to {gateway.slack:,} rows more than the successes seen here are expected.", "",
        ]
    lines += notes(results, profile)
    if gateway and gateway.profile:
        lines += ["## Gateway profile (py-spy, short non-streaming load)", "", "```", *gateway.profile, "```", ""]
    return "\n".join(lines), rows, checks


def format_cost(cost: str) -> str:
    # SQLite sums NUMERIC columns in floating point: show the total rounded, not its float noise.
    from decimal import Decimal, InvalidOperation

    try:
        return f"{Decimal(cost.split()[0]):.6f}" + (" (database total)" if "database" in cost else "")
    except (InvalidOperation, IndexError):
        return cost


def accounting_check(gateway: TargetResults) -> tuple[bool, str]:
    g = gateway.generations
    success = g["by_status"].get("success", 0)
    ok = gateway.succeeded <= success <= gateway.succeeded + gateway.slack and g["total"] <= (
        gateway.succeeded + gateway.failed + gateway.slack)
    return ok, (f"{g['total']:,} rows ({success:,} success) for {gateway.succeeded:,} successful requests "
                f"(+ up to {gateway.slack:,} in flight at run ends)")


def cpu_cell(result: WrkResult) -> str:
    cpu = result.cpu
    target = fmt(cpu.get("target_cpu"), 0, "%") if "target_cpu" in cpu else "-"
    return f"{target} / {fmt(cpu.get('mock_cpu'), 0, '%')} / {fmt(cpu.get('wrk_cpu'), 0, '%')}"


def cpu_per_request(result: WrkResult) -> str:
    """CPU time the target spent per completed request: unlike requests/s, barely moved by other load."""
    if "target_cpu" not in result.cpu or not result.ok:
        return "-"
    return fmt(result.cpu["target_cpu"] / 100 * result.seconds / result.ok * 1000, 3, " ms")


def interference(result: WrkResult) -> tuple[float, float]:
    """Share of cores 0 and 1 used by processes that are not part of the benchmark (a shared machine)."""
    cpu = result.cpu
    ours1 = cpu.get("mock_cpu", 0) + cpu.get("wrk_cpu", 0)
    return (max(0.0, cpu.get(f"core{GATEWAY_CORE}", 0) - cpu.get("target_cpu", 0)),
            max(0.0, cpu.get(f"core{LOAD_CORE}", 0) - ours1))


def core_cell(result: WrkResult) -> str:
    other0, other1 = interference(result)
    return f"{other0:.0f}% / {other1:.0f}%"


def error_cell(result: WrkResult) -> str:
    socket_errors = sum(result.errors[k] for k in ("connect", "read", "write", "timeout"))
    return f"{result.non_200} / {socket_errors} / {result.truncated} / {result.inband}"


def notes(results: dict[str, TargetResults], profile: Profile) -> list[str]:
    lines = ["## How to read this", "",
             f"- Each gateway runs alone on core {GATEWAY_CORE} (`taskset`; our gateway is `manage.py serve "
             "--workers 1`: one granian worker plus the Celery worker and beat, all on that core). The mock "
             f"upstream and wrk share core {LOAD_CORE}. \"CPU\" is the share of one core used during the run "
             "by the target's process tree, the mock and wrk (100% = one full core).",
             "- *Mock direct* is wrk against the mock itself: the ceiling of this setup, and the baseline the "
             "added latency is measured from.",
             "- Latencies under load are wrk's (whole response, whole stream for SSE). Low-load latencies come "
             "from a sequential aiohttp client on one kept-alive connection; *added* is target minus direct, "
             "at the same percentile.",
             "- *Target CPU per completed request* is the CPU time the target's processes used during the "
             "run divided by the requests completed: unlike requests/s it hardly moves when other processes "
             "share the machine, so it is the fairest number to compare the gateways by.",
             "- Stream errors are counted per response: non-200, socket errors (connect/read/write/timeout, "
             "10 s timeout), streams without `data: [DONE]` (truncated) and streams carrying an in-band "
             "`\"error\":` chunk.",
             "- Slow streams: 20 words 50 ms apart is 1.0 s of pacing; the direct p50 above that is the mock's "
             "own cost of waking 500 streams on every tick on one core, so compare the gateways with the "
             "direct row, not with 1.0 s.",
             "- Portkey waits 25 ms before forwarding the first SSE event (`setTimeout(25)` in its stream "
             "handler), so its stream latencies carry that fixed delay; see bench/PORTKEY.md.",
             "- Our gateway does real work per request that the others do not: key authentication, policy, "
             "routing, admission (the worst-case cost reserved against the organization's credits before "
             "the upstream call, settled after it: a Redis script each way, or without Redis a step of the "
             "process's group-committed database write), cost computation and one Generation row per "
             "request (written in batches by a background writer)."]
    direct, gateway = results.get("direct"), results.get("gateway")
    if direct and gateway and gateway.rps:
        g_cpu = gateway.rps.cpu
        ceiling = direct.rps.rate
        ours1 = g_cpu.get("mock_cpu", 0) + g_cpu.get("wrk_cpu", 0)
        mock_share = 100 * gateway.rps.rate / ceiling if ceiling else 0
        if ours1 >= 90:
            verdict = (f"the mock and wrk used {ours1:.0f}% of core {LOAD_CORE}: they, not the gateway, may be "
                       "what limited this number")
        else:
            verdict = (f"the mock and wrk used only {ours1:.0f}% of core {LOAD_CORE} while the gateway used "
                       f"{g_cpu.get('target_cpu', 0):.0f}% of core {GATEWAY_CORE}, so the gateway itself is the "
                       "limit, not the mock")
        lines.append(f"- Is the mock the bottleneck? Driven directly, the mock (sharing core {LOAD_CORE} with "
                     f"wrk) served {ceiling:,.0f} req/s; through the gateway it had to serve "
                     f"{gateway.rps.rate:,.0f} req/s ({mock_share:.0f}% of that ceiling). During the gateway "
                     f"run {verdict}.")
    worst = max((max(interference(w)) for r in results.values()
                 for w in (r.rps, r.streams, r.slow) if w is not None), default=0.0)
    lines.append(f"- *Other processes on cores*: CPU used on the benchmark's cores by processes outside it (this "
                 f"machine is shared). The most seen during a run here: {worst:.0f}% of a core. Above ~10%, "
                 "requests/s and latencies of that run are understated; CPU per request much less so. "
                 "Compare targets within one run.")
    lines.append("")
    return lines


# --- main ----------------------------------------------------------------------------------------------

def ensure_wrk() -> None:
    global WRK
    if WRK:
        return
    log("wrk not found; installing it with apt-get (Debian package wrk)")
    try:
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SystemExit(f"wrk is needed and could not be installed ({exc}). "
                         "Install it with `apt-get install -y wrk` (as root) and run again.") from None
    WRK = shutil.which("wrk")
    if not WRK:
        raise SystemExit("apt-get finished but wrk is still not on PATH; install it with `apt-get install -y wrk`")


def wait_quiet(limit: float, threshold: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while True:
        before = core_times()
        time.sleep(2.0)
        after = core_times()
        busy = [100 * (after[c][0] - before[c][0]) / max(1, after[c][1] - before[c][1])
                for c in (GATEWAY_CORE, LOAD_CORE)]
        if max(busy) < threshold:
            return
        if time.monotonic() > deadline:
            log(f"the machine is still busy (cores {busy[0]:.0f}% / {busy[1]:.0f}%): measuring anyway")
            return
        log(f"waiting for a quiet machine: cores {busy[0]:.0f}% / {busy[1]:.0f}% busy")


def check_machine() -> None:
    if not shutil.which("taskset"):
        raise SystemExit("taskset (util-linux) is needed to pin processes to cores")
    cores = os.sched_getaffinity(0)
    if not {GATEWAY_CORE, LOAD_CORE} <= cores:
        raise SystemExit(f"this benchmark needs cores {GATEWAY_CORE} and {LOAD_CORE}; this process may use {cores}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # 500 streams through a gateway take 1,000+ descriptors in it (client and upstream sockets).
    if soft < 8192 and (hard == resource.RLIM_INFINITY or hard > soft):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536) if hard != resource.RLIM_INFINITY
                                                    else 65536, hard))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about one minute, shorter runs")
    parser.add_argument("--database-url", help="the gateway's database (default: SQLite in a temp dir); "
                        "use an empty, throwaway database: the run migrates it and adds an organization")
    parser.add_argument("--redis-url", help="give the gateway Redis (cache, config version, Celery broker)")
    parser.add_argument("--targets", default="direct,gateway,portkey",
                        help="comma-separated subset of direct,gateway,portkey")
    parser.add_argument("--profile", metavar="FILE",
                        help="after the gateway's runs, record py-spy stacks (raw format) under load into FILE "
                             "and summarize the hotspots")
    parser.add_argument("--results", default=str(BENCH_DIR / "RESULTS.md"), help="where to write the report")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for our gateway (e.g. GRANIAN_RUNTIME_MODE=st); repeatable")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (database, logs)")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="on a shared machine: first wait up to SECONDS for other processes to leave "
                             f"cores {GATEWAY_CORE} and {LOAD_CORE} nearly idle")
    args = parser.parse_args(argv)
    profile_name = "quick" if args.quick else "full"
    profile = PROFILES[profile_name]
    wanted = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(wanted) - {"direct", "gateway", "portkey"}
    if unknown or not wanted:
        parser.error(f"--targets: unknown {', '.join(sorted(unknown)) or '(empty)'}")

    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    check_machine()
    ensure_wrk()
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
        t_start = time.monotonic()  # the time limits are about the measuring, not the waiting
    # This process (the low-load client, the orchestration) stays off the gateway's core.
    os.sched_setaffinity(0, {LOAD_CORE})
    if "portkey" in wanted:
        log("installing the Portkey gateway if needed (npm, pinned; see bench/PORTKEY.md)")
        try:
            portkey.install()
        except RuntimeError as exc:
            log(f"Portkey could not be installed, so it is left out of this run: {exc}")
            wanted.remove("portkey")

    var_dir = Path(tempfile.mkdtemp(prefix="ows-bench-"))
    database_url = args.database_url or f"sqlite:///{var_dir / 'db.sqlite3'}"
    facts = machine_facts(database_url)
    command = shlex.join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT))
                          else sys.executable, "bench/run.py", *argv])
    env = gateway_env(var_dir, database_url, args.redis_url)
    for item in args.gateway_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--gateway-env: expected NAME=VALUE, got {item!r}")
        env[name] = value
    mock_port = free_port()
    mock_log = var_dir / "mock.log"
    mock = gateway = pk_proc = None
    results: dict[str, TargetResults] = {}
    try:
        log(f"setting up an isolated gateway instance in {var_dir} ({mask_url(database_url).split('://')[0]})")
        inference_key = set_up_instance(env, var_dir, mock_port)
        with open(mock_log, "wb") as out:
            mock = subprocess.Popen(["taskset", "-c", str(LOAD_CORE), sys.executable, "-m", "routing.mockprovider",
                                     "--port", str(mock_port)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        wait_http(f"http://127.0.0.1:{mock_port}/health", mock, mock_log)
        mock_base = f"http://127.0.0.1:{mock_port}/v1"

        if "direct" in wanted:
            direct = Target("direct", "Mock direct", f"{mock_base}/chat/completions",
                            {"Authorization": "Bearer x"}, UPSTREAM_MODEL, warmup=profile.warmup)
            results["direct"] = measure(direct, profile, mock)

        if "gateway" in wanted:
            port = free_port()
            serve_log = var_dir / "serve.log"
            baseline = count_generations(env)
            with open(serve_log, "wb") as out:
                gateway = subprocess.Popen(
                    ["taskset", "-c", str(GATEWAY_CORE), sys.executable, "manage.py", "serve", "--workers", "1",
                     "--host", "127.0.0.1", "--port", str(port)],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            wait_http(f"http://127.0.0.1:{port}/healthz", gateway, serve_log)
            wait_until_idle(gateway.pid)
            target = Target("gateway", "Our gateway", f"http://127.0.0.1:{port}/api/v1/chat/completions",
                            {"Authorization": f"Bearer {inference_key}"}, MODEL_SLUG, gateway,
                            warmup=profile.warmup)
            results["gateway"] = measure(target, profile, mock)
            log("[gateway] waiting for the generation records to settle")
            after = settled_generations(env)
            statuses = set(after["by_status"]) | set(baseline["by_status"])
            results["gateway"].generations = {
                "total": after["total"] - baseline["total"],
                "by_status": {s: after["by_status"].get(s, 0) - baseline["by_status"].get(s, 0) for s in statuses},
                "cost": after["cost"] if not baseline["total"] else f"{after['cost']} (database total)",
            }
            ok, detail = accounting_check(results["gateway"])
            log(f"[gateway] Generation rows: {detail}: {'OK' if ok else 'MISMATCH'}")
            if args.profile:
                log(f"[gateway] profiling with py-spy for {profile.rps} s under non-streaming load")
                results["gateway"].profile = profile_gateway(target, profile.rps, Path(args.profile), profile.conns)
                for line in results["gateway"].profile:
                    log("    " + line)
            stop_process(gateway)
            if serve_log.exists() and "Traceback" in serve_log.read_text(errors="replace"):
                log(f"[gateway] note: the server log has tracebacks:\n{tail(serve_log)}")

        if "portkey" in wanted:
            port = free_port()
            pk_proc = portkey.start(port, cpu=GATEWAY_CORE)
            target = Target("portkey", "Portkey", f"http://127.0.0.1:{port}/v1/chat/completions",
                            portkey.headers(mock_base), UPSTREAM_MODEL, pk_proc, warmup=profile.portkey_warmup)
            results["portkey"] = measure(target, profile, mock)
            portkey.stop(pk_proc)
    finally:
        stop_process(gateway)
        if pk_proc is not None:
            portkey.stop(pk_proc)
        stop_process(mock, timeout=5)
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            log(f"kept {var_dir}")

    report, rows, checks = build_report(results, profile_name, profile, command, facts, started)
    log("")
    log("\n".join(rows))
    log("")
    for name, (ok, detail) in checks.items():
        log(f"{'MET   ' if ok else 'MISSED'}  {name}: {detail}")
    Path(args.results).write_text(report)
    log(f"\nwrote {os.path.relpath(args.results, ROOT)} ({time.monotonic() - t_start:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
