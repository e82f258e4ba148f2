"""Requests the gateway refuses: the reference's envelope and status, never a 500, nothing forwarded."""

import pytest
import requests

from tests.routing.helpers import mock_requests, post_chat

HELLO = [{"role": "user", "content": "hi"}]


def assert_error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == status and body["error"]["message"]
    return body


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer sk-ows-v1-0123456789abcdefWRONGSECRETWRONGSECRET"}])
def test_it_refuses_a_missing_or_unknown_key_with_401(stack, headers):
    response = requests.post(f"{stack.api}/chat/completions", json={"model": "test/chat", "messages": HELLO},
                             headers=headers, timeout=10)
    assert_error(response, 401)


def test_it_refuses_a_disabled_key_on_the_very_next_request(stack, inference_key):
    key, plaintext = inference_key
    assert post_chat(stack, plaintext, {"model": "test/chat", "messages": HELLO}).status_code == 200
    key.disabled = True
    key.save()
    assert_error(post_chat(stack, plaintext, {"model": "test/chat", "messages": HELLO}), 401)


def test_it_refuses_a_management_key_with_403(stack, management_key):
    body = assert_error(post_chat(stack, management_key[1], {"model": "test/chat", "messages": HELLO}), 403)
    assert "management" in body["error"]["message"].lower()


@pytest.mark.parametrize("payload, fragment", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b"", "empty"),
    (b'{"model": "test/chat"}', "'messages' is required"),
    (b'{"model": "test/chat", "messages": "hi"}', "messages"),
    (b'{"model": "test/chat", "messages": [{"role": "robot", "content": "x"}]}', "role"),
    (b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', "'model'"),
    (b'{"model": "test/chat", "max_tokens": -1, "messages": [{"role": "user", "content": "x"}]}', "max_tokens"),
    (b'{"model": "test/chat", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}', "stream"),
    (b'{"model": "test/chat", "provider": {"sort": "random"}, "messages": [{"role": "user", "content": "x"}]}',
     "provider.sort"),
    (b'{"messages": [{"role": "user", "content": "x"}]}', "'model' is required"),
])
def test_it_refuses_bad_input_with_400(stack, inference_key, payload, fragment):
    response = requests.post(f"{stack.api}/chat/completions", data=payload, timeout=10,
                             headers={"Authorization": f"Bearer {inference_key[1]}",
                                      "Content-Type": "application/json"})
    body = assert_error(response, 400)
    assert fragment in body["error"]["message"]
    assert mock_requests(stack) == []


def test_it_refuses_a_body_over_the_limit_with_413(stack, inference_key):
    big = {"model": "test/chat", "messages": [{"role": "user", "content": "x" * (11 * 1024 * 1024)}]}
    assert_error(post_chat(stack, inference_key[1], big), 413)


def test_an_unknown_model_is_a_400_with_the_availability_code(stack, inference_key):
    body = assert_error(post_chat(stack, inference_key[1], {"model": "nobody/nothing", "messages": HELLO}), 400)
    assert body["error"]["availability"]["code"] == "model_not_found"
    assert body["error"]["availability"]["requested_models"] == ["nobody/nothing"]


def test_a_data_policy_no_endpoint_meets_is_a_404_privacy_restricted(stack, inference_key):
    body = {"model": "test/claude", "messages": HELLO, "provider": {"zdr": True}}
    error = assert_error(post_chat(stack, inference_key[1], body), 404)["error"]
    assert error["availability"]["code"] == "privacy_restricted"
    assert error["availability"]["excluded_by"] == ["data_policy:zdr"]


def test_get_on_the_completion_endpoint_is_405(stack, inference_key):
    response = requests.get(f"{stack.api}/chat/completions", timeout=10,
                            headers={"Authorization": f"Bearer {inference_key[1]}"})
    assert_error(response, 405)


def test_no_secret_appears_in_an_error_body(stack, inference_key):
    response = post_chat(stack, inference_key[1], {"model": "nobody/nothing", "messages": HELLO})
    secret_part = inference_key[1][len("sk-ows-v1-") + 16:]
    assert secret_part not in response.text and inference_key[0].digest not in response.text
