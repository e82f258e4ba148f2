"""Offline mock upstream LLM provider speaking the OpenAI and Anthropic wire formats.

It backs the demo, the tests and the benchmark, so it is plain aiohttp + orjson (no Django) and keeps the
per-request work small: every byte that does not depend on the request is built once at import.

Endpoints (each also reachable under any path prefix, e.g. a provider ``base_url`` of ``http://HOST:9101/v1``
or ``http://HOST:9101/fault/<spec>/v1``):

- ``POST /v1/chat/completions``  OpenAI chat completions, streaming or not.
- ``POST /v1/messages``          Anthropic Messages, streaming or not (``max_tokens`` required).
- ``GET  /v1/models``            a small OpenAI-style model list.
- ``GET  /health``               ``ok``.
- ``GET  /_mock/requests``       the last 200 completion requests received, oldest first:
  ``[{"method", "path", "headers" (names lower-cased, credentials kept), "body"}]``.
- ``DELETE /_mock/requests``     forgets them.

Token accounting (deterministic, no tokenizer):

- counted = for every message, 4 + the number of whitespace-separated words of its text (string content, or
  the ``text`` of its parts, nested ``content`` included; a ``[[mock ...]]`` directive counts too);
  Anthropic's ``system`` counts as one more message.
- Completion = the number of words produced (``words``, default 12, cut to ``max_tokens`` /
  ``max_completion_tokens``), plus ``reasoning_tokens``.
- OpenAI reports prompt tokens inclusive of cache reads and writes, as OpenAI and OpenRouter do:
  ``prompt_tokens = counted + cached_tokens + cache_write_tokens``, with ``prompt_tokens_details``
  ``{cached_tokens, cache_write_tokens}`` and ``completion_tokens_details.reasoning_tokens``.
  Anthropic reports them apart, as Anthropic does: ``input_tokens = counted``,
  ``cache_read_input_tokens = cached_tokens``, ``cache_creation_input_tokens = cache_write_tokens``,
  ``output_tokens`` = completion.

The reply is the sentence in ``REPLY_WORDS`` repeated and cut to the word count; streams send one word per
content chunk (a leading space on every word but the first).

Faults on demand, from a ``<spec>`` given either in the path (``/fault/<spec>/v1/chat/completions``) or as a
directive ``[[mock <spec>]]`` anywhere in the text of the last user message. Both may be present: the keys
of the directive override the same keys of the path. ``<spec>`` is ``key=value`` pairs separated by commas
(blanks around them ignored); every value is a non-negative integer except ``finish``:

- ``status=N``               answer HTTP N in the format's error envelope (400-599; 200 = no fault)
- ``retry_after=S``          with ``status``: add ``Retry-After: S``
- ``first_byte_delay_ms=N``  wait before sending the response headers
- ``chunk_delay_ms=N``       streams: wait before each content chunk
- ``delay_ms=N``             non-streaming: extra wait before answering; streams without ``chunk_delay_ms``:
  spread over the content chunks
- ``words=N``                words to produce (default 12)
- ``error_after=N``          streams: after N content chunks, an in-band error event, then the stream ends
  without a terminator (no ``[DONE]`` / ``message_stop``); non-streaming: HTTP 500
- ``drop_after=N``           streams: after N content chunks the connection is cut, no terminator;
  non-streaming: the connection is cut before answering
- ``reasoning_tokens=N``, ``cached_tokens=N``, ``cache_write_tokens=N``  reported in usage (see above)
- ``finish=stop|length|tool_calls``  the finish reason (Anthropic: ``end_turn|max_tokens|tool_use``)

An unknown key or a bad value is a 400 naming the key. Run it with ``python -m routing.mockprovider
[--host H] [--port P]`` or ``python manage.py mockprovider``; port 0 picks a free port, and the first line on
stdout is ``mockprovider listening on http://HOST:PORT``.
"""

import argparse
import asyncio
import collections
import functools
import itertools
import os
import re
import signal
import time

import orjson
from aiohttp import web

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9101
DEFAULT_WORDS = 12
RECORDED_REQUESTS = 200

REPLY_WORDS = "Hello! This is the mock provider answering with a deterministic canned reply.".split()
MODELS = ("mock-small", "mock-large", "mock-reasoning", "claude-mock")
MOCK_ERROR_MESSAGE = "mock upstream error"

_INT_LIMITS = {
    "status": 599,
    "retry_after": 86_400,
    "first_byte_delay_ms": 3_600_000,
    "chunk_delay_ms": 3_600_000,
    "delay_ms": 3_600_000,
    "words": 1_000_000,
    "error_after": 1_000_000,
    "drop_after": 1_000_000,
    "reasoning_tokens": 100_000_000,
    "cached_tokens": 100_000_000,
    "cache_write_tokens": 100_000_000,
}
_FINISH_REASONS = ("stop", "length", "tool_calls")
_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_DIRECTIVE = re.compile(r"\[\[mock(?:\s+([^\]]*?))?\s*\]\]")

_recorded = collections.deque(maxlen=RECORDED_REQUESTS)
# Ids only need to be unique, not unguessable: a per-process prefix plus a counter is the cheapest.
_id_prefix = os.urandom(4).hex()
_id_counter = itertools.count(1)


class SpecError(ValueError):
    pass


class RequestError(ValueError):
    def __init__(self, message, param=None):
        super().__init__(message)
        self.param = param


@functools.lru_cache(maxsize=512)
def parse_spec(text):
    """Parse ``key=value,key=value`` into a dict; cached because a fault path repeats on every request."""
    spec = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key == "finish":
            if value not in _FINISH_REASONS:
                raise SpecError(f"mock spec: finish must be one of {'|'.join(_FINISH_REASONS)}, got {value!r}")
            spec[key] = value
            continue
        limit = _INT_LIMITS.get(key)
        if limit is None:
            raise SpecError(f"mock spec: unknown key {key!r}")
        if not sep or not value.isdigit() or int(value) > limit:
            raise SpecError(f"mock spec: {key} must be an integer between 0 and {limit}, got {value!r}")
        number = int(value)
        if key == "status" and number != 200 and not 400 <= number <= 599:
            raise SpecError(f"mock spec: status must be 200 or 400-599, got {value!r}")
        spec[key] = number
    return spec


def _text_of(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _count_words(content):
    if isinstance(content, str):
        return len(content.split())
    total = 0
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    total += len(text.split())
                if "content" in part:
                    total += _count_words(part["content"])
    return total


def count_prompt_tokens(messages, system=None):
    total = 0
    for message in messages:
        total += 4
        if isinstance(message, dict):
            total += _count_words(message.get("content"))
    if system:
        total += 4 + _count_words(system)
    return total


def _directive_spec(messages):
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            text = _text_of(message.get("content"))
            if "[[mock" not in text:
                return None
            match = _DIRECTIVE.search(text)
            return parse_spec(match.group(1) or "") if match else None
    return None


def _resolve_spec(path_spec, messages):
    spec = parse_spec(path_spec) if path_spec else None
    directive = _directive_spec(messages)
    if directive:
        spec = {**spec, **directive} if spec else directive
    return spec or {}


@functools.lru_cache(maxsize=1024)
def reply_text(words):
    count = len(REPLY_WORDS)
    return " ".join(REPLY_WORDS[i % count] for i in range(words))


def _max_tokens(body, *names):
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if type(value) is not int or value < 1:
            raise RequestError(f"{name} must be a positive integer", name)
        return value
    return None


def _plan(spec, max_tokens):
    """Return (words to produce, finish reason) for a request."""
    words = spec.get("words", DEFAULT_WORDS)
    finish = "stop"
    if max_tokens is not None and max_tokens < words:
        words, finish = max_tokens, "length"
    return words, spec.get("finish", finish)


def _next_id():
    return f"{_id_prefix}{next(_id_counter):012x}"


def _record(request, body):
    _recorded.append(
        {
            "method": request.method,
            "path": request.path,
            "headers": {name.lower(): value for name, value in request.headers.items()},
            "body": body,
        }
    )


async def _read_json(request):
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        _record(request, raw.decode("utf-8", "replace"))
        raise RequestError("request body is not valid JSON") from None
    _record(request, body)
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages is required and must be a non-empty array", "messages")
    return body, messages


# --- error envelopes ------------------------------------------------------------------------------------

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _retry_headers(spec):
    retry_after = spec.get("retry_after")
    return None if retry_after is None else {"Retry-After": str(retry_after)}


def openai_error(status, message, param=None, code=None, headers=None):
    error_type = _OPENAI_ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    if code is None and status == 429:
        code = "rate_limit_exceeded"
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


def anthropic_error(status, message, headers=None):
    error_type = _ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


# --- precomputed stream pieces --------------------------------------------------------------------------

_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def _cycle(encode):
    """Per-word byte strings: ([first word of the reply], [every later word]), indexed by position mod len."""
    return (
        [encode(word) for word in REPLY_WORDS],
        [encode(" " + word) for word in REPLY_WORDS],
    )


_OPENAI_WORDS = _cycle(
    lambda text: b'{"index":0,"delta":{"content":'
    + orjson.dumps(text)
    + b'},"logprobs":null,"finish_reason":null}]}\n\n'
)
_OPENAI_ROLE = b'{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n'
_OPENAI_FINISH = {
    reason: b'{"index":0,"delta":{},"logprobs":null,"finish_reason":"' + reason.encode() + b'"}]}\n\n'
    for reason in _FINISH_REASONS
}
_OPENAI_DONE = b"data: [DONE]\n\n"
_OPENAI_STREAM_ERROR = b"data: " + orjson.dumps(
    {"error": {"message": MOCK_ERROR_MESSAGE, "type": "server_error", "code": "mock_error"}}
) + b"\n\n"


def _event(name, data):
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


_ANTHROPIC_WORDS = _cycle(
    lambda text: _event(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
    )
)
_ANTHROPIC_BLOCK_START = _event(
    "content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
) + _event("ping", {"type": "ping"})
_ANTHROPIC_BLOCK_STOP = _event("content_block_stop", {"type": "content_block_stop", "index": 0})
_ANTHROPIC_STOP_EVENT = _event("message_stop", {"type": "message_stop"})
_ANTHROPIC_STREAM_ERROR = _event(
    "error", {"type": "error", "error": {"type": "overloaded_error", "message": MOCK_ERROR_MESSAGE}}
)


def _word_pieces(table, count):
    first, later = table
    size = len(first)
    return [first[0]] + [later[i % size] for i in range(1, count)] if count else []


async def _sleep_ms(ms):
    if ms:
        await asyncio.sleep(ms / 1000)


async def _cut_connection(request):
    transport = request.transport
    if transport is None:
        return
    # abort() discards whatever is still buffered: let the chunks already written reach the socket first.
    for _ in range(100):
        if transport.is_closing() or not transport.get_write_buffer_size():
            break
        await asyncio.sleep(0.01)
    transport.abort()


async def _stream(request, spec, opening, chunks, closing, error_event):
    """Send an SSE response: opening, content chunks (paced as the spec asks), then closing or a fault."""
    count = len(chunks)
    error_after, drop_after = spec.get("error_after"), spec.get("drop_after")
    if error_after is not None and (drop_after is None or error_after <= drop_after):
        fault, cut = "error_after", min(error_after, count)
    elif drop_after is not None:
        fault, cut = "drop_after", min(drop_after, count)
    else:
        fault, cut = None, count
    delay = spec.get("chunk_delay_ms")
    if delay is None and spec.get("delay_ms"):
        delay = spec["delay_ms"] / max(count, 1)
    if fault == "error_after":
        ending = error_event
    elif fault == "drop_after":
        ending = b""
    else:
        ending = closing

    await _sleep_ms(spec.get("first_byte_delay_ms"))
    response = web.StreamResponse(headers=_SSE_HEADERS)
    try:
        await response.prepare(request)
        if not delay:
            await response.write(b"".join([opening, *chunks[:cut], ending]))
        else:
            await response.write(opening)
            for chunk in chunks[:cut]:
                await asyncio.sleep(delay / 1000)
                await response.write(chunk)
            if ending:
                await response.write(ending)
        if fault == "drop_after":
            await _cut_connection(request)
    except ConnectionError:
        pass  # the client went away; nothing left to tell it
    return response


async def _non_stream_fault(request, spec, error_response):
    """Handle the non-streaming faults; return a response to send, or None to answer normally."""
    await _sleep_ms(spec.get("first_byte_delay_ms", 0) + spec.get("delay_ms", 0))
    if "drop_after" in spec:
        await _cut_connection(request)
        return web.Response(status=500)
    if "error_after" in spec:
        return error_response(500, MOCK_ERROR_MESSAGE)
    return None


# --- OpenAI ---------------------------------------------------------------------------------------------


def _openai_usage(counted, words, spec):
    cached = spec.get("cached_tokens", 0)
    cache_write = spec.get("cache_write_tokens", 0)
    reasoning = spec.get("reasoning_tokens", 0)
    prompt = counted + cached + cache_write
    completion = words + reasoning
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "cache_write_tokens": cache_write},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


async def openai_chat(request, path_spec=None):
    try:
        body, messages = await _read_json(request)
        spec = _resolve_spec(path_spec, messages)
        max_tokens = _max_tokens(body, "max_completion_tokens", "max_tokens")
    except RequestError as exc:
        return openai_error(400, str(exc), param=exc.param)
    except SpecError as exc:
        return openai_error(400, str(exc))

    status = spec.get("status", 200)
    if status != 200:
        await _sleep_ms(spec.get("first_byte_delay_ms"))
        return openai_error(status, f"mock upstream returned HTTP {status}", headers=_retry_headers(spec))

    model = body.get("model") or MODELS[0]
    words, finish = _plan(spec, max_tokens)
    usage = _openai_usage(count_prompt_tokens(messages), words, spec)
    completion_id = "chatcmpl-" + _next_id()
    created = int(time.time())

    if body.get("stream") is True:
        head = (
            b'data: {"id":"' + completion_id.encode() + b'","object":"chat.completion.chunk","created":'
            + str(created).encode() + b',"model":' + orjson.dumps(model) + b',"choices":['
        )
        chunks = [head + piece for piece in _word_pieces(_OPENAI_WORDS, words)]
        closing = head + _OPENAI_FINISH[finish]
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            closing += head + b'],"usage":' + orjson.dumps(usage) + b"}\n\n"
        return await _stream(request, spec, head + _OPENAI_ROLE, chunks, closing + _OPENAI_DONE, _OPENAI_STREAM_ERROR)

    fault = await _non_stream_fault(request, spec, openai_error)
    if fault is not None:
        return fault
    result = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply_text(words), "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": usage,
        "system_fingerprint": None,
    }
    return web.Response(body=orjson.dumps(result), content_type="application/json")


# --- Anthropic ------------------------------------------------------------------------------------------


async def anthropic_messages(request, path_spec=None):
    try:
        body, messages = await _read_json(request)
        spec = _resolve_spec(path_spec, messages)
        if body.get("max_tokens") is None:
            raise RequestError("max_tokens: Field required")
        max_tokens = _max_tokens(body, "max_tokens")
    except (RequestError, SpecError) as exc:
        return anthropic_error(400, str(exc))

    status = spec.get("status", 200)
    if status != 200:
        await _sleep_ms(spec.get("first_byte_delay_ms"))
        return anthropic_error(status, f"mock upstream returned HTTP {status}", headers=_retry_headers(spec))

    model = body.get("model") or MODELS[-1]
    words, finish = _plan(spec, max_tokens)
    stop_reason = _ANTHROPIC_STOP[finish]
    input_tokens = count_prompt_tokens(messages, body.get("system"))
    output_tokens = words + spec.get("reasoning_tokens", 0)
    usage = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": spec.get("cached_tokens", 0),
        "cache_creation_input_tokens": spec.get("cache_write_tokens", 0),
    }
    message_id = "msg_" + _next_id()

    if body.get("stream") is True:
        start = {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {**usage, "output_tokens": min(1, output_tokens)},
            },
        }
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": usage,
        }
        closing = _ANTHROPIC_BLOCK_STOP + _event("message_delta", delta) + _ANTHROPIC_STOP_EVENT
        opening = _event("message_start", start) + _ANTHROPIC_BLOCK_START
        chunks = _word_pieces(_ANTHROPIC_WORDS, words)
        return await _stream(request, spec, opening, chunks, closing, _ANTHROPIC_STREAM_ERROR)

    fault = await _non_stream_fault(request, spec, anthropic_error)
    if fault is not None:
        return fault
    result = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": reply_text(words)}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }
    return web.Response(body=orjson.dumps(result), content_type="application/json")


# --- the rest -------------------------------------------------------------------------------------------

_MODELS_BODY = orjson.dumps(
    {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": 1700000000, "owned_by": "mock"} for name in MODELS],
    }
)


async def list_models(request):
    return web.Response(body=_MODELS_BODY, content_type="application/json")


async def health(request):
    return web.Response(text="ok")


async def recorded_requests(request):
    return web.Response(body=orjson.dumps(list(_recorded)), content_type="application/json")


async def clear_recorded_requests(request):
    _recorded.clear()
    return web.Response(body=b'{"deleted":true}', content_type="application/json")


async def any_path(request):
    """Serve the endpoints under any prefix, reading a fault spec from a ``/fault/<spec>/`` prefix."""
    path = request.path
    path_spec = None
    if path.startswith("/fault/"):
        path_spec, _, rest = path[len("/fault/"):].partition("/")
        path = "/" + rest
    method = request.method
    if method == "POST" and path.endswith("/chat/completions"):
        return await openai_chat(request, path_spec)
    if method == "POST" and path.endswith("/messages"):
        return await anthropic_messages(request, path_spec)
    if method == "GET" and path.endswith("/models"):
        return await list_models(request)
    if method == "GET" and path.endswith("/health"):
        return await health(request)
    return openai_error(404, f"mock provider has no route for {method} {request.path}")


def make_app():
    app = web.Application(client_max_size=64 * 1024 * 1024)
    router = app.router
    router.add_post("/v1/chat/completions", openai_chat)
    router.add_post("/v1/messages", anthropic_messages)
    router.add_get("/v1/models", list_models)
    router.add_get("/health", health)
    router.add_get("/_mock/requests", recorded_requests)
    router.add_delete("/_mock/requests", clear_recorded_requests)
    router.add_route("*", "/{tail:.*}", any_path)
    return app


async def start(host=DEFAULT_HOST, port=DEFAULT_PORT):
    """Start serving on the running loop; return (runner, bound port). Stop with ``await runner.cleanup()``."""
    runner = web.AppRunner(make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=4096)
    await site.start()
    return runner, runner.addresses[0][1]


async def serve(host=DEFAULT_HOST, port=DEFAULT_PORT):
    runner, bound_port = await start(host, port)
    print(f"mockprovider listening on http://{host}:{bound_port}", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stopped.set)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signal support: the caller stops us
    try:
        await stopped.wait()
    finally:
        await runner.cleanup()


def run(host=DEFAULT_HOST, port=DEFAULT_PORT):
    """Serve until SIGINT or SIGTERM."""
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(host, port))
    except KeyboardInterrupt:
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m routing.mockprovider", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    run(args.host, args.port)


if __name__ == "__main__":
    main()
