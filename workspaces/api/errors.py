"""Every API error in the reference's envelope: {"error": {"code", "message", "metadata"?}}."""

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response


def error_body(code: int, message: str, metadata: dict | None = None) -> dict:
    error = {"code": code, "message": message}
    if metadata:
        error["metadata"] = metadata
    return {"error": error}


def _flatten(detail, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        out = []
        for field, value in detail.items():
            name = field if field != "non_field_errors" else ""
            out.extend(_flatten(value, f"{prefix}.{name}" if prefix and name else (name or prefix)))
        return out
    if isinstance(detail, list):
        out = []
        for index, value in enumerate(detail):
            nested = isinstance(value, (dict, list))
            out.extend(_flatten(value, f"{prefix}[{index}]" if nested else prefix))
        return out
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def _from_service_error(exc):
    """A refusal by a service (workspaces.services.ServiceError): 400 naming the field, or its own status."""
    if exc.status == status.HTTP_400_BAD_REQUEST:
        return exceptions.ValidationError({exc.field: [exc.message]} if exc.field else [exc.message])
    refusal = exceptions.APIException(exc.message)
    refusal.status_code = exc.status
    return refusal


def exception_handler(exc, context):
    from workspaces.services import ServiceError

    if isinstance(exc, ServiceError):
        exc = _from_service_error(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) if str(exc) else "Not found.")
    if not isinstance(exc, exceptions.APIException):
        return None  # a real server error: Django answers 500 and logs it
    code = exc.status_code
    if isinstance(exc, exceptions.ValidationError):
        message = "; ".join(_flatten(exc.detail)) or "Invalid request."
        metadata = {"fields": exc.detail} if isinstance(exc.detail, dict) else None
        body = error_body(status.HTTP_400_BAD_REQUEST, message, metadata)
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ParseError):
        return Response(error_body(400, f"Invalid JSON body: {exc.detail}"), status=400)
    message = str(exc.detail) if not isinstance(exc.detail, (list, dict)) else "; ".join(_flatten(exc.detail))
    headers = {}
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    return Response(error_body(code, message), status=code, headers=headers)
