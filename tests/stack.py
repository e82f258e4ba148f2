"""Starting the real processes (mock provider, `manage.py serve`) for end-to-end tests."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_process(cmd, cwd=BASE_DIR, env=None, log_name=None) -> subprocess.Popen:
    log_dir = Path(settings.VAR_DIR) / "test-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"{log_name or Path(cmd[2]).name}-{time.time_ns()}.log", "wb")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env or os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = log.name
    return proc


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}); log: {Path(proc.log_path).read_text()[-3000:]}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout}s; log: {Path(proc.log_path).read_text()[-3000:]}")


def database_url() -> str:
    """The URL of the test database this pytest run created, for the server processes."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or ""
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


class LiveStack:
    def __init__(self, mock_url: str, workers: int = 1, with_worker: bool = False, extra_env: dict | None = None):
        self.mock_url = mock_url
        self.workers = workers
        self.with_worker = with_worker
        self.extra_env = extra_env or {}
        self.proc = None
        self.port = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"

    def start(self):
        self.port = free_port()
        env = os.environ.copy()
        env.update({"DATABASE_URL": database_url(), "VAR_DIR": str(settings.VAR_DIR), "DEBUG": "1",
                    "KEEPALIVE_AFTER": "0.5", "KEEPALIVE_INTERVAL": "0.25", "UPSTREAM_FIRST_BYTE_TIMEOUT": "3",
                    "AUTH_CACHE_SECONDS": "60"})
        env.update(self.extra_env)
        cmd = [sys.executable, "manage.py", "serve", "--port", str(self.port), "--workers", str(self.workers)]
        if not self.with_worker:
            cmd.append("--no-worker")
        self.proc = start_process(cmd, env=env, log_name="serve")
        wait_for_http(f"{self.url}/healthz", self.proc, timeout=60)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def load_test_catalog(self):
        from routing.catalog import load_catalog

        load_catalog(catalog_for_tests(self.mock_url))


def catalog_for_tests(mock_url: str) -> dict:
    """Providers on the mock: two healthy OpenAI-format ones at different prices, an Anthropic-format one,
    and ones that always fail, for fallbacks."""
    def provider(slug, path="/v1", api_format="openai", **extra):
        return {"slug": slug, "name": slug.replace("-", " ").title(), "base_url": f"{mock_url}{path}",
                "api_format": api_format, **extra}

    def endpoint(provider_slug, prompt, completion, upstream="mock-chat", **extra):
        return {"provider": provider_slug, "upstream_model": upstream,
                "pricing": {"prompt": prompt, "completion": completion}, "max_completion_tokens": 1000,
                "supported_parameters": ["temperature", "max_tokens", "stream", "tools"], **extra}

    return {
        "providers": [
            provider("cheap", data_collection="allow"),
            provider("pricey", data_collection="deny", zdr=True),
            provider("anthro", api_format="anthropic"),
            provider("down", path="/fault/status=503/v1"),
            provider("limited", path="/fault/status=429,retry_after=7/v1"),
        ],
        "models": [
            {"slug": "test/chat", "name": "Test Chat", "context_length": 8000,
             "endpoints": [endpoint("cheap", "0.000001", "0.000002"), endpoint("pricey", "0.000003", "0.000004")]},
            {"slug": "test/claude", "name": "Test Claude", "context_length": 8000,
             "endpoints": [endpoint("anthro", "0.000002", "0.000005", upstream="mock-claude")]},
            {"slug": "test/flaky", "name": "Test Flaky", "context_length": 8000,
             "endpoints": [endpoint("down", "0.0000001", "0.0000001"), endpoint("cheap", "0.000001", "0.000002")]},
            {"slug": "test/down", "name": "Test Down", "context_length": 8000,
             "endpoints": [endpoint("down", "0.000001", "0.000001")]},
            {"slug": "test/limited", "name": "Test Limited", "context_length": 8000,
             "endpoints": [endpoint("limited", "0.000001", "0.000001")]},
        ],
    }
