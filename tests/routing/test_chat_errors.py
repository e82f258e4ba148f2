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


@pytest.mark.parametrize("extra", [
    {"stop": 5},
    {"tools": [{"type": "function", "function": "x"}]},
    {"tool_choice": {"type": "function", "function": "f"}},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 5}]}]},
    {"messages": [{"role": "assistant", "content": "x", "tool_calls": ["x"]}, {"role": "user", "content": "y"}]},
])
def test_a_field_the_provider_format_cannot_carry_is_a_400_not_a_500(stack, inference_key, extra):
    body = {"model": "test/claude", "messages": HELLO, **extra}
    response = post_chat(stack, inference_key[1], body)
    # Parameters the endpoint does not list are dropped (200); the others must be refused cleanly.
    if response.status_code != 200:
        assert_error(response, 400)


def test_a_translation_failure_after_an_upstream_was_reached_still_leaves_one_record(stack, inference_key):
    from tests.routing.helpers import wait_for_generations

    body = {"model": "test/down", "models": ["test/claude"], "messages": HELLO,
            "tools": [{"type": "function", "function": "x"}]}
    response = post_chat(stack, inference_key[1], body)
    assert response.status_code == 400
    (generation,) = wait_for_generations(1, api_key_id=inference_key[0].id)
    assert generation.status == "error" and generation.provider_responses[0]["status"] == 503


def test_deeply_nested_json_is_refused_everywhere(stack, inference_key, management_key):
    deep = b'{"a":' * 3000 + b"1" + b"}" * 3000
    for path, key in (("chat/completions", inference_key[1]), ("workspaces", management_key[1])):
        response = requests.post(f"{stack.api}/{path}", data=deep, timeout=10,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        assert_error(response, 400)


@pytest.mark.parametrize("path", ["/api/v1/models/%00/x/endpoints", "/api/v1/models/test/chat%00/endpoints",
                                  "/api/v1/models?category=%00", "/api/v1/chat/completions%00"])
def test_a_nul_character_in_the_path_or_query_is_a_400(stack, path):
    response = requests.get(stack.url + path, timeout=10)
    assert_error(response, 400)
    assert "NUL" in response.json()["error"]["message"]


def test_a_nul_character_in_a_dashboard_path_is_a_400_too(stack):
    response = requests.get(stack.url + "/o/%00/w/x/", timeout=10)
    assert response.status_code == 400 and "NUL" in response.text
