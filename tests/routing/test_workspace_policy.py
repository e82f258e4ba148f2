"""Guardrails, BYOK keys, presets and server tools applied on the live proxy."""

import openai
import pytest

from tests.routing.helpers import mock_requests, post_chat, wait_for_generation

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client(stack, inference_key):
    return openai.OpenAI(base_url=stack.api, api_key=inference_key[1], max_retries=0)


def assign_key_guardrail(api_key, **fields):
    from workspaces.models import Guardrail, GuardrailKeyAssignment

    guardrail = Guardrail.objects.create(organization=api_key.organization, workspace=api_key.workspace,
                                         name="test", **fields)
    GuardrailKeyAssignment.objects.create(guardrail=guardrail, api_key=api_key)
    return guardrail


def test_a_guardrail_provider_allow_list_narrows_routing_and_blocks_with_403(client, stack, inference_key):
    guardrail = assign_key_guardrail(inference_key[0], allowed_providers=["pricey"])
    completion = client.chat.completions.create(model="test/chat", messages=HELLO,
                                                extra_body={"provider": {"order": ["cheap"]}})
    assert wait_for_generation(completion.id).provider_slug == "pricey"
    response = post_chat(stack, inference_key[1], {"model": "test/claude", "messages": HELLO})
    assert response.status_code == 403
    assert response.json()["error"]["availability"]["excluded_by"] == ["allowed_providers"]
    # A change to the guardrail applies on the very next request.
    guardrail.allowed_providers = None
    guardrail.save()
    assert post_chat(stack, inference_key[1], {"model": "test/claude", "messages": HELLO}).status_code == 200


def test_a_guardrail_model_allow_list_blocks_other_models(stack, inference_key):
    assign_key_guardrail(inference_key[0], allowed_models=["test/claude"])
    response = post_chat(stack, inference_key[1], {"model": "test/chat", "messages": HELLO})
    assert response.status_code == 403 and response.json()["error"]["code"] == 403


def test_the_member_guardrail_and_the_workspace_default_apply_too(stack, inference_key, member):
    from workspaces.models import Guardrail, GuardrailMemberAssignment

    api_key = inference_key[0]
    Guardrail.objects.create(id=api_key.workspace.default_guardrail_id, organization=api_key.organization,
                             workspace=api_key.workspace, name="default", is_workspace_default=True,
                             enforce_zdr=True)
    body = {"model": "test/chat", "messages": HELLO, "provider": {"order": ["cheap"]}}
    response = post_chat(stack, inference_key[1], body)
    assert response.status_code == 200 and response.json()["provider"] == "Pricey"  # only the ZDR endpoint
    member_guardrail = Guardrail.objects.create(organization=api_key.organization, name="m",
                                                ignored_providers=["pricey"])
    GuardrailMemberAssignment.objects.create(guardrail=member_guardrail, organization=api_key.organization,
                                             user=member)
    error = post_chat(stack, inference_key[1], body).json()["error"]
    assert error["code"] in (403, 404)


def test_a_blocking_content_filter_refuses_with_the_patterns(stack, inference_key):
    assign_key_guardrail(inference_key[0], content_filters=[{"pattern": "secret-project-\\d+", "action": "block",
                                                             "label": "project codename"}],
                         content_filter_builtins=[{"slug": "email", "action": "redact"}])
    blocked = post_chat(stack, inference_key[1], {"model": "test/chat", "messages": [
        {"role": "user", "content": "tell me about secret-project-42"}]})
    assert blocked.status_code == 403
    assert blocked.json()["error"]["metadata"]["patterns"] == ["project codename"]
    redacted = post_chat(stack, inference_key[1], {"model": "test/chat", "messages": [
        {"role": "user", "content": "mail bob@example.com please"}]})
    assert redacted.status_code == 200
    assert mock_requests(stack)[-1]["body"]["messages"][0]["content"] == "mail [REDACTED] please"


def test_a_byok_key_is_tried_first_with_its_own_credential(client, stack, inference_key):
    from workspaces.policy_services import create_byok_key

    create_byok_key(actor=None, organization=inference_key[0].organization, workspace=None, provider="pricey",
                    key="sk-test-byok-credential-0123456789", data={})
    completion = client.chat.completions.create(model="test/chat", messages=HELLO,
                                                extra_body={"provider": {"order": ["cheap"]}})
    assert mock_requests(stack)[-1]["headers"]["authorization"] == "Bearer sk-test-byok-credential-0123456789"
    generation = wait_for_generation(completion.id)
    assert generation.is_byok and generation.provider_slug == "pricey"
    assert generation.usage == 0 and generation.total_cost > 0  # the default BYOK fee is 0%
    assert generation.provider_responses[0]["is_byok"] is True
    assert completion.usage.model_extra["is_byok"] is True


def test_a_preset_supplies_the_model_and_the_system_prompt(client, stack, inference_key):
    from workspaces.policy_services import save_preset

    save_preset(actor=None, workspace=inference_key[0].workspace, slug="support", api_format="chat",
                body={"model": "test/claude", "temperature": 0.2,
                      "messages": [{"role": "system", "content": "You are support."}]})
    completion = client.chat.completions.create(model="@preset/support", messages=HELLO)
    assert completion.model == "test/claude"
    sent = mock_requests(stack)[-1]["body"]
    assert sent["system"] == "You are support." and sent["temperature"] == 0.2
    generation = wait_for_generation(completion.id)
    assert generation.preset_id is not None
    missing = post_chat(stack, inference_key[1], {"model": "@preset/nope", "messages": HELLO})
    assert missing.status_code == 404


def test_a_disabled_server_tool_is_refused(stack, inference_key):
    workspace = inference_key[0].workspace
    workspace.disabled_server_tools = ["openrouter:web_search"]
    workspace.save()
    response = post_chat(stack, inference_key[1], {"model": "test/chat", "messages": HELLO,
                                                   "tools": [{"type": "openrouter:web_search"}]})
    assert response.status_code == 403 and "web_search" in response.json()["error"]["message"]


def test_moving_a_key_to_another_workspace_applies_on_the_next_request(client, inference_key, org):
    api_key = inference_key[0]
    api_key.workspace = org.default_workspace
    api_key.save()
    completion = client.chat.completions.create(model="test/chat", messages=HELLO)
    assert wait_for_generation(completion.id).workspace_id == org.default_workspace.id


def test_a_catastrophic_content_filter_blocks_quickly_instead_of_stalling(stack, inference_key):
    import time

    assign_key_guardrail(inference_key[0], content_filters=[{"pattern": "(a|aa)*b", "action": "block"}])
    started = time.monotonic()
    response = post_chat(stack, inference_key[1], {"model": "test/chat", "messages": [
        {"role": "user", "content": "a" * 5000 + "c"}]})
    assert time.monotonic() - started < 5
    assert response.status_code in (200, 403)
