"""The audit log: who (user or key) created, changed or deleted what, and which fields. Never a secret."""

from .models import AuditLogEntry

SECRET_FIELDS = {"key", "encrypted_key", "digest", "token", "token_digest", "password", "secret", "secretKey",
                 "apiKey", "api_key", "encrypted_secrets", "headers", "accessKeyId", "secretAccessKey"}


def _clean(value):
    if isinstance(value, dict):
        return {k: ("[secret]" if k in SECRET_FIELDS else _clean(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def record(*, organization, action: str, obj, actor_user=None, actor_key=None, changes: dict | None = None,
           object_type: str | None = None) -> AuditLogEntry:
    """Record one create/update/delete. `changes` maps field -> new value (or [old, new]); secrets are masked."""
    if actor_key is not None:
        label = f"key {actor_key.name} ({actor_key.label})"
    elif actor_user is not None:
        label = actor_user.email
    else:
        label = "system"
    return AuditLogEntry.objects.create(
        organization=organization, actor_user=actor_user, actor_key_hash=getattr(actor_key, "hash", None),
        actor_label=label, action=action, object_type=object_type or type(obj).__name__,
        object_id=str(getattr(obj, "pk", "")), object_repr=str(obj)[:255], changes=_clean(changes or {}),
    )


def record_for_request_actor(actor, **kwargs) -> AuditLogEntry:
    """From an API caller (KeyActor) or a dashboard user."""
    api_key = getattr(actor, "api_key", None)
    if api_key is not None:
        return record(actor_key=api_key, actor_user=None, **kwargs)
    return record(actor_user=actor, **kwargs)
