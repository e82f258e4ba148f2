import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Run the gateway: the ASGI server (granian) plus a Celery worker with beat, on the embedded "
            "filesystem broker when no broker is configured.")

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="ASGI server processes")
        parser.add_argument("--no-worker", action="store_true", help="do not start the Celery worker and beat")
        parser.add_argument("--worker-concurrency", type=int, default=2)

    def handle(self, *args, host, port, workers, no_worker, worker_concurrency, **options):
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        if not 0 < port < 65536:
            raise CommandError("--port must be between 1 and 65535")
        if not settings.DEBUG:
            # Compressed, hashed static files for whitenoise: built here so a deploy is one command.
            call_command("collectstatic", interactive=False, verbosity=0)
        env = dict(os.environ, DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE",
                                                                     "openrouter_ws.settings"))
        env["VAR_DIR"] = str(settings.VAR_DIR)
        children: list[tuple[str, subprocess.Popen]] = []
        server_cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", host, "--port", str(port),
                      "--workers", str(workers), "--no-ws", "--log-level", "warning",
                      # A worker that dies (killed, out of memory) is replaced; the others keep serving, and
                      # budget reservations it held are reclaimed once they expire (docs/budgets.md).
                      "--respawn-failed-workers", "--respawn-interval", "1",
                      "openrouter_ws.asgi:application"]
        if not settings.DEBUG:
            server_cmd.insert(-1, "--no-access-log")
        children.append(("server", subprocess.Popen(server_cmd, env=env)))
        if not no_worker:
            worker_cmd = [sys.executable, "-m", "celery", "-A", "openrouter_ws", "worker", "--beat",
                          "--loglevel", "WARNING", "--pool", "threads", "--concurrency", str(worker_concurrency),
                          "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME, "--without-gossip",
                          "--without-mingle", "--without-heartbeat"]
            children.append(("celery", subprocess.Popen(worker_cmd, env=env)))

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        broker = settings.CELERY_BROKER_URL.split("://")[0]
        self.stdout.write(f"openrouter_ws serving on http://{host}:{port} ({workers} server process(es)"
                          + ("" if no_worker else f", Celery worker and beat on the {broker} broker") + ")")
        self.stdout.flush()
        code = 0
        try:
            while not stopping:
                for name, child in children:
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with code {child.returncode}; stopping")
                        code = child.returncode or 1
                        stopping = True
                        break
                time.sleep(0.2)
        finally:
            for _name, child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for _name, child in children:
                try:
                    child.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
        if code:
            raise CommandError(f"a child process failed (exit {code})")
