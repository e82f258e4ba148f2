"""API key format and digests.

A key reads `sk-ows-v1-<lookup id><secret>` (management keys `sk-ows-mgmt-v1-...`). The lookup id
(16 hex characters) finds the row through an index; the secret (256 bits) is stored only as
HMAC-SHA256 under a pepper, compared in constant time. `hash` (SHA-256 of the whole key) is the
public id the API speaks of. Peppers come from API_KEY_PEPPERS ("id:secret,...", the first signs
new keys), else one derived from SECRET_KEY, so a leaked database alone cannot confirm a key.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

PREFIXES = {"inference": "sk-ows-v1-", "management": "sk-ows-mgmt-v1-"}
LOOKUP_LEN = 16
SECRET_BYTES = 32


@dataclass(frozen=True)
class NewKey:
    plaintext: str
    lookup_id: str
    digest: str
    pepper_id: str
    hash: str
    label: str


@lru_cache(maxsize=1)
def peppers() -> dict[str, bytes]:
    configured = {}
    for item in settings.API_KEY_PEPPERS:
        pepper_id, _, secret = item.partition(":")
        if pepper_id and secret:
            configured[pepper_id] = secret.encode()
    if configured:
        return configured
    derived = hmac.new(settings.SECRET_KEY.encode(), b"openrouter_ws api key pepper", hashlib.sha256).digest()
    return {"0": derived}


def current_pepper_id() -> str:
    return next(iter(peppers()))


def digest_secret(secret: str, pepper_id: str) -> str | None:
    pepper = peppers().get(pepper_id)
    if pepper is None:
        return None
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def public_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def mask(plaintext: str) -> str:
    kind_prefix = next(p for p in PREFIXES.values() if plaintext.startswith(p))
    return f"{kind_prefix}{plaintext[len(kind_prefix):len(kind_prefix) + 3]}...{plaintext[-3:]}"


def generate(kind: str) -> NewKey:
    lookup_id = secrets.token_hex(LOOKUP_LEN // 2)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    plaintext = f"{PREFIXES[kind]}{lookup_id}{secret}"
    pepper_id = current_pepper_id()
    return NewKey(plaintext=plaintext, lookup_id=lookup_id, digest=digest_secret(secret, pepper_id),
                  pepper_id=pepper_id, hash=public_hash(plaintext), label=mask(plaintext))


def parse(plaintext: str) -> tuple[str, str, str] | None:
    """(kind, lookup_id, secret) of a well-formed key, else None."""
    for kind, prefix in PREFIXES.items():
        if plaintext.startswith(prefix):
            rest = plaintext[len(prefix):]
            if len(rest) < LOOKUP_LEN + 20 or len(rest) > 200:
                return None
            return kind, rest[:LOOKUP_LEN], rest[LOOKUP_LEN:]
    return None


def secret_matches(secret: str, pepper_id: str, stored_digest: str) -> bool:
    candidate = digest_secret(secret, pepper_id)
    return candidate is not None and hmac.compare_digest(candidate, stored_digest)
