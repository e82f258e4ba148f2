"""The benchmark's own measuring: wrk's summary through bench/post.lua, stream checks, accounting, profiles."""

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_run", None)


can_run_wrk = pytest.mark.skipif(
    not shutil.which("wrk") or not shutil.which("taskset") or not {0, 1} <= os.sched_getaffinity(0),
    reason="needs wrk, taskset and two cores",
)


def summary_line(**overrides):
    values = {"requests": 100, "duration_us": 2_000_000, "connect": 0, "read": 0, "write": 0, "status": 0,
              "timeout": 0, "complete": 0, "truncated": 0, "inband": 0, "non200": 0, "p50": 1500, "p90": 2500,
              "p99": 9000, "max": 12000, "checked": 0}
    values.update(overrides)
    return "Running 2s test\nBENCH_RESULT " + " ".join(f"{k}={v}" for k, v in values.items()) + "\n"


def test_it_reads_rates_and_latencies_from_the_summary_line(bench):
    result = bench.parse_wrk(summary_line(requests=100, status=4), conns=64)
    assert result.ok == 96
    assert result.rate == 48.0
    assert (result.p50, result.p99) == (1.5, 9.0)
    assert result.failures == 4


def test_it_counts_checked_streams_by_their_bodies(bench):
    result = bench.parse_wrk(summary_line(checked=1, requests=10, complete=6, truncated=2, inband=1, status=1,
                                          timeout=3), conns=500)
    assert result.ok == 6
    assert result.failures == 2 + 1 + 1 + 3


def test_it_refuses_output_without_a_summary(bench):
    assert bench.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n", conns=1) is None


def test_it_takes_nearest_rank_percentiles(bench):
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 50) == 50.0
    assert bench.percentile(values, 99) == 99.0
    assert bench.percentile([3.0], 99) == 3.0


def test_it_never_prints_a_database_password(bench):
    masked = bench.mask_url("postgres://bench:s3cret@127.0.0.1:5432/ows")
    assert "s3cret" not in masked
    assert masked == "postgres://bench:***@127.0.0.1:5432/ows"


def make_results(bench, succeeded, slack, failed, rows):
    results = bench.TargetResults(target=None, succeeded=succeeded, slack=slack, failed=failed)
    results.generations = rows
    return results


def test_it_accepts_rows_for_every_success_plus_requests_in_flight(bench):
    ok, _ = bench.accounting_check(make_results(bench, 1000, 64, 0, {"total": 1040, "by_status": {
        "success": 1030, "cancelled": 10}, "cost": "1"}))
    assert ok


def test_it_flags_missing_generation_rows(bench):
    ok, detail = bench.accounting_check(make_results(bench, 1000, 64, 0, {"total": 990, "by_status": {
        "success": 990}, "cost": "1"}))
    assert not ok
    assert "990" in detail


def test_it_flags_more_rows_than_requests(bench):
    ok, _ = bench.accounting_check(make_results(bench, 1000, 64, 0, {"total": 1200, "by_status": {
        "success": 1200}, "cost": "1"}))
    assert not ok


def test_it_summarizes_py_spy_stacks(bench, tmp_path):
    raw = tmp_path / "profile.txt"
    raw.write_text(
        'process 1:"python -m granian";handle (routing/proxy.py);settle (routing/proxy.py) 30\n'
        'process 1:"python -m granian";handle (routing/proxy.py);read_body (routing/proxy.py) 10\n'
        'process 1:"python -m granian";_worker (concurrent/futures/thread.py);write_batch (billing/recorder.py) 40\n'
        'process 1:"python -m granian" 20\n'
    )
    text = "\n".join(bench.summarize_profile(raw))
    assert "100 samples" in text
    assert " 40.0%  handle (routing/proxy.py)" in text
    assert " 40.0%  write_batch (billing/recorder.py)" in text
    assert " 20.0%  of all samples: threads with no Python frame" in text
    # Plumbing above the interesting frames is left out of the inclusive list.
    assert "_worker (concurrent" not in text.split("Inclusive")[1]


@can_run_wrk
def test_it_counts_complete_streams_through_wrk_and_the_lua_script(bench, mock_provider):
    target = bench.Target("direct", "Mock direct", f"{mock_provider}/v1/chat/completions", {}, "mock-chat")
    result = bench.run_wrk(target, bench.body_for("mock-chat", True), conns=4, seconds=1, check=True)
    assert result.ok > 10
    assert result.failures == 0
    assert result.complete == result.requests


@can_run_wrk
def test_it_counts_streams_cut_before_done_as_errors(bench, mock_provider):
    target = bench.Target("direct", "Mock direct", f"{mock_provider}/v1/chat/completions", {}, "mock-chat")
    body = bench.body_for("mock-chat", True, "hi [[mock error_after=2]]")
    result = bench.run_wrk(target, body, conns=4, seconds=1, check=True)
    assert result.ok == 0
    assert result.truncated + result.errors["read"] > 0
    assert result.failures > 0
