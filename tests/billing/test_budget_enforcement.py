"""Every spend limit refuses on the live server (two processes, the configured store) with the reference's
status and body, before anything reaches the upstream; an admitted request is charged to every layer."""

from decimal import Decimal

import openai
import pytest
import requests

from billing.layers import key_subject, org_subject, workspace_subject
from tests.billing.budget_helpers import (default_guardrail, guardrail, live_counter, make_generation,
                                          outstanding_reservations, set_budget, wait_until)
from tests.routing.helpers import mock_requests, post_chat, wait_for_generation

HELLO = {"model": "test/chat", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 20,
         "provider": {"only": ["cheap"]}}
D = Decimal


def refused_without_upstream(stack, plaintext, status):
    response = post_chat(stack, plaintext, HELLO)
    assert response.status_code == status, response.text
    assert mock_requests(stack) == []
    return response.json()


def test_an_organization_at_zero_balance_gets_402(stack, org, inference_key):
    from billing.services import grant_credits

    grant_credits(org, D("-100"), reason="used elsewhere", kind="adjustment")
    assert refused_without_upstream(stack, inference_key[1], 402) == {"error": {
        "code": 402, "message": "Insufficient credits: the account has $0.00 available. Add credits to continue.",
        "metadata": {"error_type": "payment_required"}}}


def test_a_grant_reaches_the_running_server_at_once(stack, org, inference_key):
    from billing.services import grant_credits

    grant_credits(org, D("-100"), reason="used elsewhere", kind="adjustment")
    refused_without_upstream(stack, inference_key[1], 402)
    grant_credits(org, D("1"), reason="top-up")
    assert post_chat(stack, inference_key[1], HELLO).status_code == 200


def test_a_spent_key_limit_gets_402(stack, inference_key):
    key, plaintext = inference_key
    key.limit, key.limit_reset = D("0.001"), "weekly"
    key.save()
    make_generation(key, usage="0.001")
    body = refused_without_upstream(stack, plaintext, 402)
    assert body["error"]["metadata"] == {"error_type": "payment_required"}
    assert body["error"]["message"].startswith(
        "Key limit exceeded: this key's weekly limit is $0.001 and $0.00 remains")


def test_an_exceeded_workspace_budget_gets_403_naming_the_broadest_interval(stack, org, inference_key, workspace):
    from billing.services import grant_credits

    grant_credits(org, D("1000"), reason="enterprise")
    set_budget(workspace, "monthly", "500")
    set_budget(workspace, "weekly", "499")
    make_generation(inference_key[0], usage="500")
    assert refused_without_upstream(stack, inference_key[1], 403) == {"error": {
        "code": 403, "message": "Workspace monthly budget of $500.00 exceeded. Contact your org admin.",
        "metadata": {"error_type": "permission_denied"}}}


def test_guardrail_budgets_get_403(stack, org, workspace, inference_key, member):
    key, plaintext = inference_key
    cap = guardrail(org, workspace, "0.5", members=[member], name="Team cap")
    make_generation(key, usage="0.5")
    body = refused_without_upstream(stack, plaintext, 403)
    assert body == {"error": {
        "code": 403, "message": "Guardrail budget exceeded: your member guardrail 'Team cap' allows $0.50 per day. "
                                "Contact your org admin.",
        "metadata": {"error_type": "permission_denied", "guardrail_id": str(cap.id), "budget_scope": "member"}}}


def test_the_workspace_default_guardrail_gets_403_with_the_openai_sdk(stack, workspace, inference_key):
    limit = default_guardrail(workspace, "0.00001")
    client = openai.OpenAI(base_url=stack.api, api_key=inference_key[1], max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(**{k: v for k, v in HELLO.items() if k != "provider"})
    assert info.value.body["metadata"]["guardrail_id"] == str(limit.id)
    assert mock_requests(stack) == []


def test_an_admitted_request_is_charged_to_every_layer_and_releases_its_reservation(stack, org, workspace,
                                                                                     inference_key):
    key, plaintext = inference_key
    key.limit, key.limit_reset = D("1"), "daily"
    key.save()
    set_budget(workspace, "daily", "1")
    make_generation(key, usage="0.25")  # spend before the first request: counters are seeded with it
    response = post_chat(stack, plaintext, HELLO)
    assert response.status_code == 200
    generation = wait_for_generation(response.json()["id"])
    assert generation.usage == D("0.00003")  # 6 prompt and 12 completion tokens
    layers = [(org_subject(org.pk), "lifetime"), (workspace_subject(workspace.pk), "daily"),
              (key_subject(key.pk), "daily")]
    wait_until(lambda: outstanding_reservations(*layers) == 0, what="reservations released")
    for subject, interval in layers:
        assert live_counter(subject, interval)["spend"] == D("0.25003"), subject


def test_credits_report_the_sum_of_charges(stack, org, inference_key, management_key):
    from billing.models import Generation

    for _ in range(2):
        assert post_chat(stack, inference_key[1], HELLO).status_code == 200
    wait_until(lambda: Generation.objects.filter(organization=org).count() == 2, what="two generations")
    response = requests.get(f"{stack.api}/credits", headers={"Authorization": f"Bearer {management_key[1]}"},
                            timeout=10)
    assert response.json() == {"data": {"total_credits": 100, "total_usage": 0.00006}}
