"""`GET /key`: the calling key's own limits and spend, for inference and management keys alike."""

from decimal import Decimal

import pytest

from billing.usage import budget_chain

from .conftest import assert_no_secrets, client_for

pytestmark = pytest.mark.django_db


def test_it_requires_a_key():
    response = client_for(None).get("/api/v1/key")
    assert response.status_code == 401
    assert client_for("sk-ows-v1-" + "0" * 60).get("/api/v1/key").status_code == 401


def test_it_describes_an_inference_key(org, workspace, credits, inference_key, member, make_generation):
    key, plaintext = inference_key
    key.limit, key.limit_reset = Decimal("2"), "daily"
    key.save()
    make_generation(usage=Decimal("0.5"))
    response = client_for(plaintext).get("/api/v1/key")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["label"] == key.label
    assert data["is_management_key"] is False and data["is_provisioning_key"] is False
    assert data["workspace_id"] == str(workspace.pk)
    assert data["organization_id"] == str(org.pk)
    assert data["creator_user_id"] == str(member.pk)
    assert data["usage"] == data["usage_daily"] == 0.5
    assert data["limit"] == 2 and data["limit_remaining"] == 1.5 and data["limit_reset"] == "daily"
    assert data["is_free_tier"] is False
    assert data["rate_limit"]["requests"] == -1
    # The key's own limit is the one budget layer here.
    [layer] = data["budgets"]
    assert (layer["scope"], layer["limit_usd"], layer["spend_usd"], layer["remaining_usd"]) == (
        "key_limit", 2, 0.5, 1.5)
    assert data["effective_budget"] == layer
    assert set(data["free_model_daily_requests"]) == {"limit", "used", "remaining"}
    assert data["allowed_data_regions"] == ["global"]
    assert_no_secrets(response, plaintext)


def test_it_describes_a_management_key(org, management_key):
    key, plaintext = management_key
    data = client_for(plaintext).get("/api/v1/key").json()["data"]
    assert data["is_management_key"] is True
    assert data["workspace_id"] is None
    assert data["budgets"] == [] and data["effective_budget"] is None
    assert data["organization_id"] == str(org.pk)
    # No credits were ever granted to this organization.
    assert data["is_free_tier"] is True


def test_it_refuses_a_disabled_key(inference_key):
    key, plaintext = inference_key
    key.disabled = True
    key.save()
    response = client_for(plaintext).get("/api/v1/key")
    assert response.status_code == 401
    assert "disabled" in response.json()["error"]["message"]


def test_it_has_no_budget_layers_for_a_key_without_limits(inference_key):
    assert budget_chain(inference_key[0]) == []
    data = client_for(inference_key[1]).get("/api/v1/key").json()["data"]
    assert data["budgets"] == [] and data["effective_budget"] is None
