"""Secrets at rest (BYOK keys, observability credentials): Fernet under ENCRYPTION_KEYS.

The first key encrypts; every key decrypts, so an operator rotates by putting a new key first, running
`manage.py rotate_encryption_keys`, and only then dropping the old one. In development with no key
configured, one is derived from SECRET_KEY (settings refuse to start that way with DEBUG off).
"""

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(ValueError):
    """A token that none of the configured keys opens (wrong keys, or corrupted data)."""


def _derived_key(secret_key: str) -> bytes:
    digest = hmac.new(secret_key.encode(), b"openrouter_ws encryption at rest", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest)


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        # Settings refuse to start without keys unless DEBUG was on at startup (the test runner turns DEBUG
        # off later, so it is not re-checked here).
        return MultiFernet([Fernet(_derived_key(secret_key))])
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError):
            # Never echo the key itself: it is the secret.
            raise ImproperlyConfigured(
                f"ENCRYPTION_KEYS: key #{position} is not a valid Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return MultiFernet(fernets)


def fernet() -> MultiFernet:
    # Keyed on the settings so a test (or a reload) that changes them gets the matching keys.
    return _fernet(tuple(settings.ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("cannot decrypt: no configured encryption key opens this value") from None


def rotate(token: str) -> str:
    """The same secret, re-encrypted under the first key."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("cannot rotate: no configured encryption key opens this value") from None


def generate_key() -> str:
    return Fernet.generate_key().decode()
