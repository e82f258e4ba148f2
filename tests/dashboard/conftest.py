"""Helpers for the dashboard tests: logged-in clients and a workspace the member is not in."""

import itertools

import pytest
from django.test import Client

_addresses = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The cast's passwords are hashed in every test; the production hasher stays available for tests that
    # need a live server to check a password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 "django.contrib.auth.hashers.PBKDF2PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache(settings):
    # allauth keeps rate-limit counters in the cache; a cache per test keeps one test's (or one earlier run's)
    # failed logins and mails from throttling the next.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"test-{next(_addresses)}"}}


@pytest.fixture
def browser():
    """A test client with an address of its own, so allauth's per-IP rate limits never leak between tests."""
    n = next(_addresses)
    return Client(REMOTE_ADDR=f"10.{n // 65000 % 250}.{n // 250 % 250}.{n % 250 + 1}")


@pytest.fixture
def login(browser):
    def _login(user):
        browser.force_login(user)
        return browser

    return _login


@pytest.fixture
def staging(org, owner):
    """A second workspace, created the way the dashboard does: only the owner (and admins) are in it."""
    from workspaces.services import create_workspace

    return create_workspace(org, name="Staging", slug="staging", created_by=owner, by_user=owner)


def verify_email(user):
    from allauth.account.models import EmailAddress

    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    return user


def flashes(response) -> list[str]:
    from django.contrib.messages import get_messages

    return [str(m) for m in get_messages(response.wsgi_request)]


def assert_login_redirect(response):
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
