"""Anthropic Messages upstreams: requests translated from, and answers translated to, the OpenAI format."""

import orjson

from .base import StreamError, UpstreamResult, error_type_for, sse_events
from .openai import error_message  # noqa: F401  (same error-body reading)

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
          "refusal": "content_filter", "pause_turn": "stop"}
ANTHROPIC_ERRORS = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500, "timeout_error": 504,
                    "invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                    "not_found_error": 404, "billing_error": 402}


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _content_blocks(content) -> list | str:
    if isinstance(content, str) or content is None:
        return content or ""
    blocks = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            if url.startswith("data:") and ";base64," in url:
                media, data = url[5:].split(";base64,", 1)
                blocks.append({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}})
            else:
                blocks.append({"type": "image", "source": {"type": "url", "url": url}})
    return blocks


def _messages(messages: list) -> tuple[str, list]:
    system_parts, out = [], []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system_parts.append(_text_of(message.get("content")))
        elif role == "tool":
            out.append({"role": "user", "content": [{"type": "tool_result",
                                                     "tool_use_id": message.get("tool_call_id", ""),
                                                     "content": _text_of(message.get("content"))}]})
        elif role == "assistant" and message.get("tool_calls"):
            blocks = []
            text = _text_of(message.get("content"))
            if text:
                blocks.append({"type": "text", "text": text})
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                try:
                    arguments = orjson.loads(function.get("arguments") or "{}")
                except orjson.JSONDecodeError:
                    arguments = {}
                blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""),
                               "input": arguments})
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": "assistant" if role == "assistant" else "user",
                        "content": _content_blocks(message.get("content"))})
    return "\n\n".join(p for p in system_parts if p), out


def _tool_choice(choice):
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    return None


def build_request(base_url: str, upstream_model: str, payload: dict, credential: str | None, stream: bool,
                  max_completion_tokens: int | None = None):
    system, messages = _messages(payload.get("messages") or [])
    body = {"model": upstream_model, "messages": messages,
            "max_tokens": payload.get("max_completion_tokens") or payload.get("max_tokens")
            or max_completion_tokens or DEFAULT_MAX_TOKENS}
    if system:
        body["system"] = system
    for name in ("temperature", "top_p", "top_k"):
        if payload.get(name) is not None:
            body[name] = payload[name]
    stop = payload.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if payload.get("tools"):
        body["tools"] = [{"name": (t.get("function") or {}).get("name", ""),
                          "description": (t.get("function") or {}).get("description", ""),
                          "input_schema": (t.get("function") or {}).get("parameters") or {"type": "object"}}
                         for t in payload["tools"] if isinstance(t, dict)]
        choice = _tool_choice(payload.get("tool_choice"))
        if choice:
            body["tool_choice"] = choice
    if payload.get("user"):
        body["metadata"] = {"user_id": str(payload["user"])[:256]}
    if stream:
        body["stream"] = True
    headers = {"Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
    if credential:
        headers["x-api-key"] = credential
    return f"{base_url}/messages", headers, orjson.dumps(body)


def usage_from(input_tokens: int, output_tokens: int, cache_read: int, cache_write: int) -> dict:
    prompt = input_tokens + cache_read + cache_write
    return {"prompt_tokens": prompt, "completion_tokens": output_tokens, "total_tokens": prompt + output_tokens,
            "prompt_tokens_details": {"cached_tokens": cache_read, "cache_write_tokens": cache_write},
            "completion_tokens_details": {"reasoning_tokens": 0}}


def _chunk(delta: dict | None = None, finish=None, native=None) -> dict:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    if native is not None:
        choice["native_finish_reason"] = native
    return {"object": "chat.completion.chunk", "choices": [choice]}


async def stream_chunks(response):
    """OpenAI-shaped chunks translated from Anthropic's event stream; the usage chunk last."""
    usage = {"input": 0, "output": 0, "read": 0, "write": 0}
    stop_reason = None
    tool_index = -1
    finished = False
    try:
        async for event, data in sse_events(response.content):
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise StreamError(502, "The provider sent an invalid stream event.") from None
            kind = payload.get("type") or event
            if kind == "message_start":
                message = payload.get("message") or {}
                u = message.get("usage") or {}
                usage.update(input=u.get("input_tokens") or 0, read=u.get("cache_read_input_tokens") or 0,
                             write=u.get("cache_creation_input_tokens") or 0, output=u.get("output_tokens") or 0)
                chunk = _chunk({"role": "assistant", "content": ""})
                chunk["id"] = message.get("id", "")
                yield chunk
            elif kind == "content_block_start":
                block = payload.get("content_block") or {}
                if block.get("type") == "tool_use":
                    tool_index += 1
                    yield _chunk({"tool_calls": [{"index": tool_index, "id": block.get("id", ""), "type": "function",
                                                  "function": {"name": block.get("name", ""), "arguments": ""}}]})
            elif kind == "content_block_delta":
                delta = payload.get("delta") or {}
                if delta.get("type") == "text_delta":
                    yield _chunk({"content": delta.get("text", "")})
                elif delta.get("type") == "input_json_delta":
                    yield _chunk({"tool_calls": [{"index": max(tool_index, 0),
                                                  "function": {"arguments": delta.get("partial_json", "")}}]})
                elif delta.get("type") == "thinking_delta":
                    yield _chunk({"reasoning": delta.get("thinking", "")})
            elif kind == "message_delta":
                stop_reason = (payload.get("delta") or {}).get("stop_reason") or stop_reason
                u = payload.get("usage") or {}
                if u.get("output_tokens") is not None:
                    usage["output"] = u["output_tokens"]  # cumulative, per Anthropic
                if u.get("input_tokens"):
                    usage["input"] = u["input_tokens"]
            elif kind == "message_stop":
                finished = True
                yield _chunk(finish=FINISH.get(stop_reason, "stop"), native=stop_reason)
                final = {"object": "chat.completion.chunk", "choices": [],
                         "usage": usage_from(usage["input"], usage["output"], usage["read"], usage["write"])}
                yield final
                return
            elif kind == "error":
                error = payload.get("error") or {}
                status = ANTHROPIC_ERRORS.get(error.get("type"), 502)
                raise StreamError(status, str(error.get("message") or "upstream error")[:500],
                                  error_type_for(status), error.get("type"))
    except StreamError:
        raise
    except Exception as exc:
        raise StreamError(502, "The provider's stream was interrupted.") from exc
    if not finished:
        raise StreamError(502, "The provider's stream ended before the answer was complete.")


def parse_response(data: dict) -> UpstreamResult:
    if data.get("type") == "error":
        raise StreamError(502, "The provider answered with an error.")
    text, tool_calls = [], []
    for block in data.get("content") or []:
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            tool_calls.append({"id": block.get("id", ""), "type": "function",
                               "function": {"name": block.get("name", ""),
                                            "arguments": orjson.dumps(block.get("input") or {}).decode()}})
    native = data.get("stop_reason")
    finish = FINISH.get(native, "stop")
    message = {"role": "assistant", "content": "".join(text) if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    u = data.get("usage") or {}
    usage = usage_from(u.get("input_tokens") or 0, u.get("output_tokens") or 0,
                       u.get("cache_read_input_tokens") or 0, u.get("cache_creation_input_tokens") or 0)
    body = {"object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": finish,
                                                      "native_finish_reason": native, "logprobs": None}],
            "usage": usage}
    return UpstreamResult(body=body, usage=usage, finish_reason=finish, native_finish_reason=native,
                          upstream_id=str(data.get("id", "")))
