import asyncio
import json
import threading

import openai
import pytest
import requests

from routing import mockprovider


@pytest.fixture(scope="module")
def base_url():
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state = {}

    def serve():
        asyncio.set_event_loop(loop)
        state["runner"], state["port"] = loop.run_until_complete(mockprovider.start("127.0.0.1", 0))
        started.set()
        loop.run_forever()
        loop.run_until_complete(state["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    yield f"http://127.0.0.1:{state['port']}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def chat(base_url, content, path="/v1/chat/completions", **fields):
    body = {"model": "acme-chat", "messages": [{"role": "user", "content": content}], **fields}
    return requests.post(base_url + path, json=body, timeout=10)


def anthropic(base_url, content, path="/v1/messages", **fields):
    body = {"model": "claude-mock", "max_tokens": 100, "messages": [{"role": "user", "content": content}], **fields}
    return requests.post(base_url + path, json=body, headers={"x-api-key": "ak-test"}, timeout=10)


def sse_events(text):
    """[(event name or None, data string)] of an SSE body."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data.append(line[len("data: "):])
        events.append((name, "\n".join(data)))
    return events


def test_it_answers_an_openai_chat_completion(base_url):
    response = chat(base_url, "say hello please")

    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "acme-chat"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == mockprovider.reply_text(12)
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {
        "prompt_tokens": 3 + 4,
        "completion_tokens": 12,
        "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def test_it_cuts_the_reply_at_max_tokens(base_url):
    for field in ("max_tokens", "max_completion_tokens"):
        body = chat(base_url, "hi", **{field: 5}).json()

        assert body["choices"][0]["finish_reason"] == "length"
        assert body["choices"][0]["message"]["content"] == "Hello! This is the mock"
        assert body["usage"]["completion_tokens"] == 5


def test_it_reports_cache_and_reasoning_tokens(base_url):
    content = "hi [[mock words=3,reasoning_tokens=7,cached_tokens=20,cache_write_tokens=5,finish=tool_calls]]"

    body = chat(base_url, content).json()

    # 3 words (the directive counts too) plus 4 for the message, plus cache reads and writes
    assert body["usage"]["prompt_tokens"] == 7 + 20 + 5
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 20, "cache_write_tokens": 5}
    assert body["usage"]["completion_tokens"] == 3 + 7
    assert body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 7}
    assert body["choices"][0]["finish_reason"] == "tool_calls"


def test_it_streams_openai_chunks_without_usage_unless_asked(base_url):
    response = chat(base_url, "hi [[mock words=4]]", stream=True)

    assert response.headers["Content-Type"] == "text/event-stream"
    events = [data for _, data in sse_events(response.text)]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(data) for data in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" and chunk["model"] == "acme-chat" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    words = [chunk["choices"][0]["delta"]["content"] for chunk in chunks[1:-1]]
    assert words == ["Hello!", " This", " is", " the"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(chunk["choices"] and "usage" not in chunk for chunk in chunks)


def test_it_streams_one_usage_chunk_when_asked(base_url):
    response = chat(base_url, "hi [[mock words=4]]", stream=True, stream_options={"include_usage": True}, max_tokens=3)

    events = [data for _, data in sse_events(response.text)]
    assert events[-1] == "[DONE]"
    usage_chunk = json.loads(events[-2])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 7
    assert usage_chunk["usage"]["completion_tokens"] == 3
    assert usage_chunk["usage"]["total_tokens"] == 10
    assert json.loads(events[-3])["choices"][0]["finish_reason"] == "length"
    assert sum("usage" in json.loads(data) for data in events[:-1]) == 1


def test_it_answers_an_anthropic_message(base_url):
    response = anthropic(base_url, "hello there", max_tokens=4, system="be brief")

    body = response.json()
    assert body["id"].startswith("msg_")
    assert body["type"] == "message"
    assert body["role"] == "assistant"
    assert body["model"] == "claude-mock"
    assert body["content"] == [{"type": "text", "text": "Hello! This is the"}]
    assert body["stop_reason"] == "max_tokens"
    assert body["stop_sequence"] is None
    assert body["usage"] == {
        "input_tokens": 6 + 6,
        "output_tokens": 4,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }


def test_it_streams_the_anthropic_event_sequence(base_url):
    response = anthropic(base_url, "hi [[mock words=3,cached_tokens=9,cache_write_tokens=2]]", stream=True)

    assert response.headers["Content-Type"] == "text/event-stream"
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [json.loads(data) for _, data in events]
    assert all(payload["type"] == name for (name, _), payload in zip(events, payloads))
    start = payloads[0]["message"]
    assert start["usage"]["input_tokens"] == 7
    assert start["usage"]["cache_read_input_tokens"] == 9
    assert "".join(payload["delta"]["text"] for payload in payloads[3:6]) == "Hello! This is"
    assert payloads[3]["delta"]["type"] == "text_delta"
    final = payloads[7]
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert final["usage"]["output_tokens"] == 3
    assert final["usage"]["cache_creation_input_tokens"] == 2


def test_it_requires_max_tokens_on_anthropic_messages(base_url):
    body = {"model": "claude-mock", "messages": [{"role": "user", "content": "hi"}]}

    response = requests.post(base_url + "/v1/messages", json=body, timeout=10)

    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in error["error"]["message"]


def test_it_fails_with_a_status_from_the_path(base_url):
    openai_response = chat(base_url, "hi", path="/fault/status=429,retry_after=3/v1/chat/completions")
    anthropic_response = anthropic(base_url, "hi", path="/fault/status=429,retry_after=3/v1/messages")

    assert openai_response.status_code == 429
    assert openai_response.headers["Retry-After"] == "3"
    assert set(openai_response.json()["error"]) == {"message", "type", "param", "code"}
    assert anthropic_response.status_code == 429
    assert anthropic_response.headers["Retry-After"] == "3"
    assert anthropic_response.json()["error"]["type"] == "rate_limit_error"


def test_it_fails_with_a_status_from_the_directive(base_url):
    response = chat(base_url, [{"type": "text", "text": "hi [[mock status=429,retry_after=3]]"}], stream=True)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


def test_it_lets_the_directive_override_the_path(base_url):
    response = chat(base_url, "hi [[mock status=200,words=2]]", path="/fault/status=503,words=9/v1/chat/completions")

    assert response.status_code == 200
    assert response.json()["usage"]["completion_tokens"] == 2


def test_it_reads_the_directive_from_the_last_user_message_only(base_url):
    messages = [
        {"role": "user", "content": "[[mock status=500]]"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "again"},
    ]

    response = requests.post(base_url + "/v1/chat/completions", json={"model": "m", "messages": messages}, timeout=10)

    assert response.status_code == 200


def test_it_sends_an_in_band_openai_error_after_n_chunks(base_url):
    response = chat(base_url, "hi [[mock error_after=2]]", stream=True)

    assert response.status_code == 200
    events = [json.loads(data) for _, data in sse_events(response.text)]
    assert [event["choices"][0]["delta"].get("content") for event in events[:3]] == ["", "Hello!", " This"]
    assert events[3] == {"error": {"message": "mock upstream error", "type": "server_error", "code": "mock_error"}}
    assert len(events) == 4


def test_it_sends_an_in_band_anthropic_error_after_n_chunks(base_url):
    response = anthropic(base_url, "hi [[mock error_after=1]]", stream=True)

    events = sse_events(response.text)
    assert [name for name, _ in events][-2:] == ["content_block_delta", "error"]
    assert json.loads(events[-1][1]) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "mock upstream error"},
    }


def test_it_fails_a_non_streaming_error_after_with_500(base_url):
    assert chat(base_url, "hi [[mock error_after=1]]").status_code == 500
    assert anthropic(base_url, "hi [[mock error_after=1]]").status_code == 500


def test_it_drops_the_stream_after_n_chunks(base_url):
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi [[mock drop_after=2]]"}]}
    response = requests.post(base_url + "/v1/chat/completions", json=body, stream=True, timeout=10)
    received = []

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for line in response.iter_lines():
            if line:
                received.append(line)

    assert len(received) == 3
    assert b"[DONE]" not in b"".join(received)


def test_it_drops_a_non_streaming_request(base_url):
    with pytest.raises(requests.exceptions.ConnectionError):
        chat(base_url, "hi [[mock drop_after=0]]")


@pytest.mark.parametrize(
    "spec, key",
    [("colour=blue", "colour"), ("words=many", "words"), ("status=99", "status"), ("finish=maybe", "finish")],
)
def test_it_rejects_a_bad_spec_naming_the_key(base_url, spec, key):
    from_directive = chat(base_url, f"hi [[mock {spec}]]")
    from_path = anthropic(base_url, "hi", path=f"/fault/{spec}/v1/messages")

    assert from_directive.status_code == 400
    assert key in from_directive.json()["error"]["message"]
    assert from_path.status_code == 400
    assert key in from_path.json()["error"]["message"]


def test_it_rejects_bad_json_and_missing_messages(base_url):
    bad_json = requests.post(base_url + "/v1/chat/completions", data=b"{nope", timeout=10)
    no_messages = requests.post(base_url + "/v1/chat/completions", json={"model": "m"}, timeout=10)

    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["type"] == "invalid_request_error"
    assert no_messages.status_code == 400
    assert no_messages.json()["error"]["param"] == "messages"


def test_it_records_requests_with_their_credentials(base_url):
    requests.delete(base_url + "/_mock/requests", timeout=10)
    requests.post(
        base_url + "/v1/chat/completions",
        json={"model": "upstream-name", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": "Bearer sk-upstream"},
        timeout=10,
    )
    anthropic(base_url, "hi")

    recorded = requests.get(base_url + "/_mock/requests", timeout=10).json()

    assert [entry["path"] for entry in recorded] == ["/v1/chat/completions", "/v1/messages"]
    assert recorded[0]["headers"]["authorization"] == "Bearer sk-upstream"
    assert recorded[0]["body"]["model"] == "upstream-name"
    assert recorded[1]["headers"]["x-api-key"] == "ak-test"
    requests.delete(base_url + "/_mock/requests", timeout=10)
    assert requests.get(base_url + "/_mock/requests", timeout=10).json() == []


def test_it_serves_models_and_health(base_url):
    assert requests.get(base_url + "/health", timeout=10).text == "ok"
    models = requests.get(base_url + "/v1/models", timeout=10).json()
    assert models["object"] == "list"
    assert {model["id"] for model in models["data"]} >= {"mock-small"}


def test_it_works_with_the_openai_sdk(base_url):
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-sdk", max_retries=0)

    completion = client.chat.completions.create(
        model="mock-small", messages=[{"role": "user", "content": "hi [[mock cached_tokens=3]]"}]
    )
    stream = client.chat.completions.create(
        model="mock-small",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert completion.choices[0].message.content == mockprovider.reply_text(12)
    assert completion.usage.prompt_tokens_details.cached_tokens == 3
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == completion.choices[
        0
    ].message.content
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 12


def test_it_makes_the_openai_sdk_raise_on_errors(base_url):
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-sdk", max_retries=0)

    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "[[mock status=429]]"}])
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "[[mock error_after=2]]"}], stream=True
        ):
            pass
