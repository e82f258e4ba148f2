"""Settings come from the environment; a bad value is a clear message, not a traceback."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent


def run_check(tmp_path, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    full.update({"VAR_DIR": str(tmp_path)}, **env)
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=full, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("env, message", [
    ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
    ({"DEBUG": "0"}, "SECRET_KEY must be set when DEBUG is off"),
    ({"DEBUG": "0", "SECRET_KEY": "x" * 50}, "ENCRYPTION_KEYS must be set"),
    ({"MAX_ATTEMPTS": "many"}, "MAX_ATTEMPTS must be an integer"),
    ({"MAX_REQUEST_BYTES": "5"}, "MAX_REQUEST_BYTES must be at least"),
    ({"DATABASE_URL": "nonsense://"}, "DATABASE_URL"),
    ({"EMAIL_URL": "pigeon://coop"}, "EMAIL_URL must start with"),
])
def test_a_bad_setting_stops_with_a_message_naming_it(tmp_path, env, message):
    result = run_check(tmp_path, **env)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_off_with_its_secrets_is_deployable(tmp_path):
    from cryptography.fernet import Fernet

    result = run_check(tmp_path, DEBUG="0", SECRET_KEY="s" * 50, ENCRYPTION_KEYS=Fernet.generate_key().decode(),
                       ALLOWED_HOSTS="gateway.example.com")
    assert result.returncode == 0, result.stderr


def test_debug_off_serves_collected_static_files_through_whitenoise(tmp_path):
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(VAR_DIR=str(tmp_path), DEBUG="0", SECRET_KEY="s" * 50, ALLOWED_HOSTS="testserver",
               ENCRYPTION_KEYS=Fernet.generate_key().decode())
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=BASE_DIR, env=env,
                   check=True, timeout=120)
    assert (tmp_path / "staticfiles" / "admin" / "css" / "base.css").exists()
    code = ("from django.test import Client; r = Client().get('/static/admin/css/base.css'); "
            "print(r.status_code, r.headers.get('Content-Type')); "
            "r = Client().get('/favicon.ico', follow=True); print(r.status_code, r.redirect_chain[0][0])")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=60)
    css, icon = result.stdout.strip().splitlines()[-2:]
    assert css == "200 text/css; charset=\"utf-8\"", result.stdout + result.stderr
    # The icon's address is the hashed name from the collected manifest.
    assert re.fullmatch(r"200 /static/favicon\.[0-9a-f]{12}\.svg", icon), icon


def test_a_secret_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("f" * 50)
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    full = dict(os.environ, VAR_DIR=str(tmp_path), SECRET_KEY_FILE=str(secret_file))
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=full,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().endswith("f" * 50)
