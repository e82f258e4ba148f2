import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The cast's accounts are created per test; a deliberately slow hasher would dominate the run."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
