"""A real Chromium driven by Playwright, against the live stack (the `stack` fixture of tests/conftest.py).

No Chromium: the tests are skipped on a developer machine, but fail in CI (`CI` set), where the browser is
part of the job.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from . import flow


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def chromium():
    path = chromium_path()
    if path is None:
        message = "no Chromium at /usr/bin/chromium (install it: apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the browser tests")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls while one runs.
    # The tests' own ORM calls are plain blocking code, so let them through; restored afterwards.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = flow.launch_chromium(playwright, path)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def live(stack):
    """The live stack (test catalog, transactional database), restarted for this test.

    Server processes cache content type ids for good, and django-guardian's object permissions, which the
    dashboard's access checks read, key on them; every flush by an earlier transactional test recreated the
    content types under new ids, so a server that has seen older ones would find nobody allowed anywhere."""
    stack.stop()
    stack.start()
    return stack


@pytest.fixture
def new_page(chromium, live):
    """Pages in fresh browser contexts (one person each), closed after the test."""
    contexts = []

    def _new_page(**options):
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield _new_page
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def mail_dir():
    """Where the live server writes its mail: it reads the same settings module and environment as this
    process (EMAIL_URL, or files under VAR_DIR/mail), and the stack hands it our VAR_DIR."""
    path = getattr(settings, "EMAIL_FILE_PATH", None)
    if not path:
        pytest.fail(f"the live server does not write mail to files (EMAIL_URL={os.environ.get('EMAIL_URL')!r}); "
                    "unset EMAIL_URL or use file:///path")
    return Path(path)
