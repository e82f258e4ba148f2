"""Chat completions end to end: the real server, the mock upstream, the openai SDK as the client."""

import socket
import time
from decimal import Decimal
from urllib.parse import urlsplit

import openai
import orjson
import pytest

from tests.routing.helpers import mock_requests, post_chat, sse_events, wait_for_generation, wait_for_generations

HELLO = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def client(stack, inference_key):
    return openai.OpenAI(base_url=stack.api, api_key=inference_key[1], max_retries=0)


def expected_cost(prompt_tokens, completion_tokens, prompt_price="0.000001", completion_price="0.000002"):
    return prompt_tokens * Decimal(prompt_price) + completion_tokens * Decimal(completion_price)


def test_it_answers_a_non_streaming_completion_and_records_its_cost(client, inference_key):
    raw = client.chat.completions.with_raw_response.create(model="test/chat", messages=HELLO,
                                                           extra_body={"provider": {"order": ["cheap"]}})
    completion = raw.parse()
    assert raw.headers["x-generation-id"] == completion.id
    assert completion.id.startswith("gen-")
    assert completion.model == "test/chat"
    assert completion.choices[0].message.content.startswith("Hello!")
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage.prompt_tokens == 6 and usage.completion_tokens == 12
    cost = expected_cost(6, 12)
    assert Decimal(str(usage.model_extra["cost"])) == cost

    generation = wait_for_generation(completion.id)
    assert generation.total_cost == cost and generation.usage == cost
    assert generation.provider_slug == "cheap" and generation.status == "success"
    assert generation.tokens_prompt == 6 and generation.tokens_completion == 12
    assert generation.streamed is False and generation.cancelled is False
    assert generation.api_key_id == inference_key[0].id
    assert generation.workspace_id == inference_key[0].workspace_id
    assert generation.finish_reason == "stop"
    assert [a["status"] for a in generation.provider_responses] == [200]


def test_it_streams_with_a_final_usage_chunk_and_asks_the_upstream_for_usage(client, stack):
    chunks = list(client.chat.completions.create(model="test/chat", messages=HELLO, stream=True,
                                                 extra_body={"provider": {"order": ["cheap"]}}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello! This is the mock provider")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 12
    assert all(c.id == chunks[0].id and c.model == "test/chat" for c in chunks)
    upstream = mock_requests(stack)[-1]["body"]
    assert upstream["stream_options"] == {"include_usage": True}
    assert upstream["model"] == "mock-chat"
    generation = wait_for_generation(chunks[0].id)
    assert generation.streamed and generation.total_cost == expected_cost(6, 12)


def test_it_sends_usage_then_done_on_the_raw_stream(stack, inference_key):
    response = post_chat(stack, inference_key[1], {"model": "test/chat", "messages": HELLO, "stream": True},
                         stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "content-encoding" not in response.headers
    lines = sse_events(response)
    assert lines[-1] == "data: [DONE]"
    final = orjson.loads(lines[-2][len("data: "):])
    assert final["choices"] == [] and final["usage"]["total_tokens"] == 18


def test_a_stream_and_the_same_request_without_streaming_cost_the_same(client):
    body = {"model": "test/claude", "messages": HELLO}
    plain = client.chat.completions.create(**body)
    streamed = list(client.chat.completions.create(**body, stream=True))
    assert wait_for_generation(plain.id).total_cost == wait_for_generation(streamed[0].id).total_cost > 0


def test_it_translates_an_anthropic_provider_both_ways(client, stack):
    completion = client.chat.completions.create(model="test/claude", max_tokens=5,
                                                messages=[{"role": "system", "content": "Be brief"}, *HELLO])
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "Hello! This is the mock"
    sent = mock_requests(stack)[-1]
    assert sent["path"].endswith("/v1/messages") and sent["body"]["system"] == "Be brief"
    assert sent["body"]["max_tokens"] == 5
    chunks = list(client.chat.completions.create(model="test/claude", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("Hello!")
    assert chunks[-1].usage.completion_tokens == 12


def test_it_falls_back_to_the_next_provider_on_a_server_error(client):
    completion = client.chat.completions.create(model="test/flaky", messages=HELLO,
                                                extra_body={"provider": {"order": ["down", "cheap"]}})
    generation = wait_for_generation(completion.id)
    assert [a["status"] for a in generation.provider_responses] == [503, 200]
    assert generation.provider_slug == "cheap"


def test_it_falls_back_to_the_next_model_of_the_models_list(client):
    completion = client.chat.completions.create(model="test/down", messages=HELLO,
                                                extra_body={"models": ["test/chat"]})
    assert completion.model == "test/chat"


def test_an_upstream_429_that_ends_the_request_reaches_the_client_with_retry_after(client):
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="test/limited", messages=HELLO)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["code"] == 429


def test_no_reachable_upstream_is_a_502_and_still_recorded(client, stack, inference_key):
    response = post_chat(stack, inference_key[1], {"model": "test/down", "messages": HELLO})
    assert response.status_code == 502
    assert response.json()["error"]["code"] == 502
    from tests.routing.helpers import wait_for_generations

    (generation,) = wait_for_generations(1, api_key_id=inference_key[0].id)
    assert generation.status == "error" and generation.total_cost == 0


def test_a_mid_stream_upstream_error_becomes_an_in_band_error_chunk_then_done(stack, inference_key):
    body = {"model": "test/chat", "stream": True, "provider": {"order": ["cheap"]},
            "messages": [{"role": "user", "content": "hi [[mock error_after=3]]"}]}
    lines = sse_events(post_chat(stack, inference_key[1], body, stream=True))
    assert lines[-1] == "data: [DONE]"
    error_chunk = orjson.loads(lines[-2][len("data: "):])
    assert error_chunk["choices"][0]["finish_reason"] == "error"
    assert error_chunk["error"]["code"] >= 500
    generation = wait_for_generation(error_chunk["id"])
    assert generation.status == "error" and generation.tokens_completion > 0 and generation.total_cost > 0


def test_the_openai_sdk_raises_on_the_in_band_error(client):
    stream = client.chat.completions.create(
        model="test/chat", stream=True, extra_body={"provider": {"order": ["cheap"]}},
        messages=[{"role": "user", "content": "hi [[mock error_after=2]]"}])
    with pytest.raises(openai.APIError):
        list(stream)


def test_a_client_that_disconnects_mid_stream_is_still_billed(stack, inference_key):
    body = {"model": "test/chat", "stream": True, "provider": {"order": ["cheap"]},
            "messages": [{"role": "user", "content": "hi [[mock words=200,chunk_delay_ms=20]]"}]}
    response = post_chat(stack, inference_key[1], body, stream=True)
    generation_id = response.headers["x-generation-id"]
    seen = 0
    for line in response.iter_lines():
        if line.startswith(b"data: "):
            seen += 1
        if seen >= 5:
            break
    response.close()
    generation = wait_for_generation(generation_id)
    assert generation.cancelled and generation.status == "cancelled"
    assert generation.tokens_completion > 0 and generation.total_cost > 0


def test_an_estimated_completion_is_never_more_than_max_tokens(stack, inference_key):
    # The upstream streams 8 words (47 characters) and drops the connection before its usage: the estimate of
    # 4 characters a token would say 12, above what max_tokens allows and the reservation held.
    body = {"model": "test/chat", "stream": True, "max_tokens": 8, "provider": {"order": ["cheap"]},
            "messages": [{"role": "user", "content": "hi [[mock drop_after=8,chunk_delay_ms=5]]"}]}
    response = post_chat(stack, inference_key[1], body, stream=True)
    sse_events(response)
    generation = wait_for_generation(response.headers["x-generation-id"])
    assert generation.usage_estimated and generation.status == "error"
    assert generation.tokens_completion == 8


def send_then_hang_up(stack, key: str, body: dict, after: float) -> bytes:
    """POST a completion over a raw socket, read what comes within `after` seconds, then close the connection."""
    url = urlsplit(stack.api)
    payload = orjson.dumps(body)
    request = (f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\n"
               f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
    received = b""
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(request)
        deadline = time.monotonic() + after
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            received += data
    return received


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_while_the_upstream_thinks_ends_the_attempt_and_is_recorded(stack, inference_key,
                                                                                         stream):
    # The upstream waits 4 s before its first byte; the client gives up after 1 s (a streaming client has seen a
    # keep-alive comment by then). The gateway stops waiting, and the request still leaves its one record.
    session = f"leaves-{stream}"
    body = {"model": "test/chat", "stream": stream, "provider": {"order": ["cheap"]}, "session_id": session,
            "messages": [{"role": "user", "content": "hi [[mock first_byte_delay_ms=4000]]"}]}
    received = send_then_hang_up(stack, inference_key[1], body, after=1.0)
    assert (b"OPENROUTER PROCESSING" in received) is stream
    [generation] = wait_for_generations(1, timeout=3.0, session_id=session)
    assert generation.status == "cancelled" and generation.cancelled
    assert generation.streamed is stream
    assert generation.provider_slug == "cheap"
    assert [a["status"] for a in generation.provider_responses] == [499]
    assert generation.tokens_completion == 0 and generation.usage_estimated
    assert 900 <= generation.latency_ms < 4000


def test_it_sends_keepalive_comments_while_the_upstream_is_slow(stack, inference_key):
    body = {"model": "test/chat", "stream": True, "provider": {"order": ["cheap"]},
            "messages": [{"role": "user", "content": "hi [[mock first_byte_delay_ms=1500]]"}]}
    lines = sse_events(post_chat(stack, inference_key[1], body, stream=True))
    assert ": OPENROUTER PROCESSING" in lines
    assert lines[-1] == "data: [DONE]"


def test_the_trace_object_is_kept_for_observability(client):
    trace = {"trace_id": "t-1", "span_name": "answer", "customer": "acme"}
    completion = client.chat.completions.create(model="test/chat", messages=HELLO, extra_body={"trace": trace})
    assert wait_for_generation(completion.id).trace == trace
