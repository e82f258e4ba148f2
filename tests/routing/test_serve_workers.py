"""`manage.py serve` keeps serving when one of its server processes dies, and replaces it."""

import os
import signal
import time
from pathlib import Path

import pytest
import requests

from tests.stack import LiveStack


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def server_workers(serve_pid: int) -> list[int]:
    masters = [pid for pid in children(serve_pid) if "granian" in cmdline(pid)]
    assert len(masters) == 1
    return [pid for pid in children(masters[0]) if "granian" in cmdline(pid)]


@pytest.mark.django_db(transaction=True)
def test_a_killed_server_process_is_replaced_and_the_other_keeps_serving(mock_provider):
    stack = LiveStack(mock_provider, workers=2)
    stack.start()
    try:
        deadline = time.monotonic() + 20
        while len(workers := server_workers(stack.proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        time.sleep(0.5)  # connections the dead process had accepted or queued are lost with it
        answers = []
        for _ in range(30):
            answers.append(requests.get(f"{stack.url}/healthz", timeout=5).status_code)
            time.sleep(0.05)
        assert answers == [200] * 30
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = server_workers(stack.proc.pid)
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.2)
        assert len(now) == 2 and workers[0] not in now
        assert stack.proc.poll() is None
        assert requests.get(f"{stack.url}/api/v1/models", timeout=5).status_code == 200
    finally:
        stack.stop()
