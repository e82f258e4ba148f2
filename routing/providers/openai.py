"""OpenAI-compatible upstreams (OpenAI, vLLM, Ollama, Groq, Together, ...): mostly a pass-through."""

import orjson

from .base import StreamError, UpstreamResult, error_type_for, sse_events

FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "error"}


def normalize_finish(reason):
    if reason is None:
        return None
    if reason in FINISH_REASONS:
        return reason
    return {"function_call": "tool_calls", "end_turn": "stop", "max_tokens": "length"}.get(reason, "stop")


def build_request(base_url: str, upstream_model: str, payload: dict, credential: str | None, stream: bool):
    body = dict(payload)
    body["model"] = upstream_model
    if stream:
        body["stream"] = True
        # Usage on streams always, even when the client did not ask: billing needs it.
        body["stream_options"] = {"include_usage": True}
    else:
        body.pop("stream", None)
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"}
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    return f"{base_url}/chat/completions", headers, orjson.dumps(body)


def error_message(body: bytes) -> tuple[str, str | None]:
    """(message, provider code) from an upstream error body, whatever its shape."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return (text[:200] or "upstream error"), None
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        return str(error.get("message") or error.get("detail") or "upstream error")[:500], \
            (str(code) if code is not None else None)
    return str(error)[:500], None


async def stream_chunks(response):
    """OpenAI chunk dicts from the upstream stream; StreamError on an in-band error or a cut stream."""
    finished = False
    try:
        async for _event, data in sse_events(response.content):
            if data == b"[DONE]":
                return
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise StreamError(502, "The provider sent an invalid stream event.") from None
            if "error" in chunk and not chunk.get("choices"):
                message, code = error_message(data)
                status = chunk["error"].get("status") if isinstance(chunk["error"], dict) else None
                status = status if isinstance(status, int) and 400 <= status < 600 else 502
                raise StreamError(status, message, error_type_for(status), code)
            for choice in chunk.get("choices") or ():
                if choice.get("finish_reason"):
                    finished = True
            yield chunk
    except StreamError:
        raise
    except Exception as exc:  # aiohttp payload errors, resets: the stream was cut
        raise StreamError(502, "The provider's stream was interrupted.") from exc
    if not finished:
        raise StreamError(502, "The provider's stream ended before the answer was complete.")


def parse_response(data: dict) -> UpstreamResult:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise StreamError(502, "The provider's answer has no choices.")
    native = choices[0].get("finish_reason")
    for choice in choices:
        choice["native_finish_reason"] = choice.get("finish_reason")
        choice["finish_reason"] = normalize_finish(choice.get("finish_reason"))
    return UpstreamResult(body=data, usage=data.get("usage"), finish_reason=normalize_finish(native),
                          native_finish_reason=native, upstream_id=str(data.get("id", "")))
