"""Finding the key behind an `Authorization: Bearer ...` header. Shared by the API and the proxy."""

from dataclasses import dataclass

from django.utils import timezone

from . import keys
from .models import ApiKey

INVALID_KEY = "Invalid API key. Check the Authorization header: it must be 'Bearer <key>'."
MISSING_KEY = "No API key. Send it as 'Authorization: Bearer <key>'."


@dataclass
class KeyCheck:
    api_key: ApiKey | None
    error: str | None = None


def bearer_token(header_value: str | None) -> str | None:
    if not header_value:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def check_key(plaintext: str | None) -> KeyCheck:
    """The active key for this plaintext, or why there is none. A wrong secret looks like an unknown key."""
    if not plaintext:
        return KeyCheck(None, MISSING_KEY)
    parsed = keys.parse(plaintext)
    if parsed is None:
        return KeyCheck(None, INVALID_KEY)
    _kind, lookup_id, secret = parsed
    api_key = (ApiKey.objects.select_related("organization", "workspace", "created_by")
               .filter(lookup_id=lookup_id).first())
    if api_key is None or not keys.secret_matches(secret, api_key.pepper_id, api_key.digest):
        return KeyCheck(None, INVALID_KEY)
    if api_key.disabled:
        return KeyCheck(None, "This API key is disabled.")
    if api_key.is_expired(timezone.now()):
        return KeyCheck(None, "This API key has expired.")
    return KeyCheck(api_key)
