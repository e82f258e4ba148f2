"""What every upstream adapter shares: errors, timeouts and SSE line reading."""

from dataclasses import dataclass


class UpstreamError(Exception):
    """The upstream refused or failed before answering (an HTTP error, a timeout, a lost connection)."""

    def __init__(self, status: int, message: str, *, retry_after: str | None = None, retryable: bool = True,
                 error_type: str = "provider_unavailable", provider_code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.retryable = retryable
        self.error_type = error_type
        self.provider_code = provider_code


class StreamError(Exception):
    """The upstream failed after it started answering (an in-band error event, a cut connection)."""

    def __init__(self, status: int, message: str, error_type: str = "provider_unavailable",
                 provider_code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.provider_code = provider_code


@dataclass
class UpstreamResult:
    """A finished non-streaming answer, already in the OpenAI chat.completion shape."""

    body: dict
    usage: dict | None
    finish_reason: str | None
    native_finish_reason: str | None
    upstream_id: str


ERROR_TYPES = {400: "invalid_request", 401: "authentication", 402: "payment_required", 403: "permission_denied",
               404: "not_found", 408: "timeout", 413: "payload_too_large", 422: "unprocessable",
               429: "rate_limit_exceeded"}


def error_type_for(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    if status in (504, 524):
        return "timeout"
    return "provider_unavailable" if status >= 500 else "invalid_request"


def is_retryable(status: int) -> bool:
    """Fall back to the next attempt on rate limits, server errors and timeouts; not on the caller's errors."""
    return status in (408, 429) or status >= 500


def http_error(status: int, message: str, retry_after: str | None = None) -> UpstreamError:
    return UpstreamError(status, message, retry_after=retry_after, retryable=is_retryable(status),
                         error_type=error_type_for(status))


async def sse_events(content):
    """(event, data) pairs from an aiohttp StreamReader of Server-Sent Events; comments skipped."""
    event = None
    data_lines: list[bytes] = []
    async for raw in content:
        line = raw.rstrip(b"\r\n")
        if not line:
            if data_lines:
                yield event, b"\n".join(data_lines)
            event, data_lines = None, []
            continue
        if line.startswith(b":"):
            continue
        if line.startswith(b"data:"):
            data_lines.append(line[5:].lstrip(b" "))
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode()
    if data_lines:
        yield event, b"\n".join(data_lines)
