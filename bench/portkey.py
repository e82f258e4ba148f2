"""Install and run the Portkey open-source gateway (Node) for the benchmark.

Standard library only. See bench/PORTKEY.md for the reasoning behind the pins.

    from bench import portkey            # or: import portkey (with bench/ on sys.path)
    portkey.install()                    # idempotent npm install into bench/.portkey
    proc = portkey.start(8787, cpu=0)    # headless, NODE_ENV=production, pinned to core 0
    hdrs = portkey.headers("http://127.0.0.1:9101/v1")
    ...
    portkey.stop(proc)

Command line: ``python bench/portkey.py [--port 8787] [--cpu 0] [--version X]`` installs, starts
and keeps it running until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

VERSION = "1.15.2"
# Newer @hono/node-server releases hand the upstream fetch Response's immutable headers to the
# gateway, which then fails every streamed completion with "TypeError: immutable" (HTTP 500,
# {"status":"failure","message":"Something went wrong"}). 1.13.5 is what the gateway's own lockfile
# resolves; hono is pinned to the version verified with it.
OVERRIDES = {"@hono/node-server": "1.13.5", "hono": "4.13.23"}

BENCH_DIR = Path(__file__).resolve().parent
PREFIX = BENCH_DIR / ".portkey"
PACKAGE_DIR = PREFIX / "node_modules" / "@portkey-ai" / "gateway"
START_SCRIPT = PACKAGE_DIR / "build" / "start-server.js"
START_TIMEOUT = 60.0


def _installed_version(package_dir: Path) -> str | None:
    try:
        return json.loads((package_dir / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def _is_installed(version: str) -> bool:
    if not START_SCRIPT.exists() or _installed_version(PACKAGE_DIR) != version:
        return False
    modules = PREFIX / "node_modules"
    return all(_installed_version(modules / name) == pinned for name, pinned in OVERRIDES.items())


def install(version: str = VERSION) -> Path:
    """Install the gateway into bench/.portkey (only when missing or a different version).

    Returns the path of the start script (build/start-server.js).
    """
    if _is_installed(version):
        return START_SCRIPT
    npm = shutil.which("npm")
    if not npm:
        raise RuntimeError("npm not found: install Node.js 18+ and npm first")
    PREFIX.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": "portkey-bench",
        "private": True,
        "dependencies": {"@portkey-ai/gateway": version},
        "overrides": dict(OVERRIDES),
    }
    (PREFIX / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    # --ignore-scripts: the package's only script is a patch-package postinstall with no patches
    # shipped; skipping it keeps the result the same across npm versions.
    cmd = [npm, "install", "--prefix", str(PREFIX), "--no-audit", "--no-fund",
           "--ignore-scripts", "--loglevel=error"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not _is_installed(version):
        raise RuntimeError(
            f"npm install of @portkey-ai/gateway@{version} failed "
            f"(exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return START_SCRIPT


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _read_log(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def start(port: int, cpu: int | None = None, timeout: float = START_TIMEOUT) -> subprocess.Popen:
    """Start the gateway headless with NODE_ENV=production on 127.0.0.1:PORT (listens on all
    interfaces), optionally pinned with ``taskset -c CPU``; return once ``GET /`` answers 200.

    Output goes to bench/.portkey/portkey-PORT.log (``proc.log_path``), never to a pipe, so a
    chatty gateway cannot block on a full pipe during a benchmark.
    """
    script = install()
    if _port_in_use(port):
        raise RuntimeError(f"port {port} is already in use")
    node = shutil.which("node")
    if not node:
        raise RuntimeError("node not found")
    # The flag must be written --port=N: "--port N" is silently ignored (it then listens on 8787).
    cmd = [node, str(script), "--headless", f"--port={port}"]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    env = dict(os.environ, NODE_ENV="production")
    log_path = PREFIX / f"portkey-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=str(PREFIX), env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = log_path  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"Portkey gateway exited with code {proc.returncode}:\n{_read_log(log_path)}"
            )
        if _ready(port):
            return proc
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError(f"Portkey gateway did not answer on port {port} within {timeout:.0f} s:\n"
                       f"{_read_log(log_path)}")


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Terminate a gateway started by start()."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def headers(upstream_base_url: str, api_key: str = "x") -> dict[str, str]:
    """Headers that make the gateway forward an OpenAI-format request (POST /v1/chat/completions,
    streaming or not) to ``upstream_base_url`` + ``/chat/completions``.

    The Authorization header is forwarded as is; without it the upstream gets "Bearer undefined".
    """
    return {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {api_key}",
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": upstream_base_url.rstrip("/"),
    }


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--version", default=VERSION)
    parser.add_argument("--upstream", default="http://127.0.0.1:9101/v1")
    args = parser.parse_args(argv)
    print("start script:", install(args.version))
    started = time.monotonic()
    proc = start(args.port, cpu=args.cpu)
    print(f"ready on http://127.0.0.1:{args.port} after {time.monotonic() - started:.2f} s "
          f"(pid {proc.pid}, log {proc.log_path})")
    print("headers:", json.dumps(headers(args.upstream)))
    try:
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
