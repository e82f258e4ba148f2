"""`GET /key` `budgets[]` and `effective_budget`: every layer admission checks, in enforcement order, with its
spend in the current UTC window (a controlled clock for the windows)."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing.usage import budget_chain, effective_budget
from tests.billing.budget_helpers import default_guardrail, guardrail, make_generation, set_budget

pytestmark = pytest.mark.django_db
D = Decimal
NOW = datetime(2026, 7, 15, 10, 30, tzinfo=timezone.utc)  # a Wednesday


def client(plaintext=None) -> APIClient:
    api = APIClient()
    if plaintext:
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return api


@pytest.fixture
def layered(org, workspace, inference_key, member):
    """A key under every kind of layer."""
    key = inference_key[0]
    key.limit, key.limit_reset, key.include_byok_in_limit = D("3"), "weekly", True
    key.save()
    default = default_guardrail(workspace, "10", "daily")
    team = guardrail(org, workspace, "20", "monthly", members=[member], name="Team")
    own = guardrail(org, workspace, "5", "weekly", keys=[key], name="Own", include_byok=True)
    monthly = set_budget(workspace, "monthly", "100")
    lifetime = set_budget(workspace, "lifetime", "1000")
    return key, default, team, own, monthly, lifetime


def test_it_lists_every_layer_in_enforcement_order(layered, workspace, member):
    key, default, team, own, monthly, lifetime = layered
    make_generation(key, usage="1", created_at=NOW - timedelta(hours=1))  # today
    make_generation(key, usage="2", created_at=NOW - timedelta(days=2))  # Monday, this week
    make_generation(key, usage="0", total_cost="0.5", is_byok=True, created_at=NOW - timedelta(hours=2))
    make_generation(key, usage="4", created_at=NOW - timedelta(days=20))  # last month
    chain = budget_chain(key, now=NOW)
    assert [(c["scope"], c["reset_interval"]) for c in chain] == [
        ("workspace_default_member", "daily"), ("workspace_default_key", "daily"), ("member", "monthly"),
        ("api_key", "weekly"), ("workspace", None), ("workspace", "monthly"), ("key_limit", "weekly")]
    tomorrow = datetime(2026, 7, 16, tzinfo=timezone.utc)
    assert chain[0] == {"scope": "workspace_default_member", "limit_usd": D("10"), "spend_usd": D("1"),
                        "remaining_usd": D("9"), "reset_interval": "daily", "resets_at": tomorrow,
                        "include_byok": False, "guardrail_id": str(default.id), "budget_id": None}
    assert chain[2]["spend_usd"] == D("3") and chain[2]["guardrail_id"] == str(team.id)
    # The key's own guardrail and limit include BYOK at its market price.
    assert chain[3]["spend_usd"] == D("3.5") and chain[3]["resets_at"] == datetime(2026, 7, 20, tzinfo=timezone.utc)
    assert chain[4] == {"scope": "workspace", "limit_usd": D("1000"), "spend_usd": D("7"), "remaining_usd": D("993"),
                        "reset_interval": None, "resets_at": None, "include_byok": False, "guardrail_id": None,
                        "budget_id": str(lifetime.pk)}
    assert chain[5]["budget_id"] == str(monthly.pk) and chain[5]["spend_usd"] == D("3")
    assert chain[6] == {"scope": "key_limit", "limit_usd": D("3"), "spend_usd": D("3.5"), "remaining_usd": D("0"),
                        "reset_interval": "weekly", "resets_at": datetime(2026, 7, 20, tzinfo=timezone.utc),
                        "include_byok": True, "guardrail_id": None, "budget_id": None}
    assert effective_budget(chain) is chain[6]


def test_spend_restarts_with_each_window(layered):
    key = layered[0]
    make_generation(key, usage="1", created_at=NOW - timedelta(hours=1))
    next_monday = datetime(2026, 7, 20, 0, 0, tzinfo=timezone.utc)
    chain = {(c["scope"], c["reset_interval"]): c for c in budget_chain(key, now=next_monday)}
    assert chain[("workspace_default_key", "daily")]["spend_usd"] == 0
    assert chain[("key_limit", "weekly")]["spend_usd"] == 0
    assert chain[("member", "monthly")]["spend_usd"] == D("1")
    assert chain[("workspace", None)]["spend_usd"] == D("1")


def test_a_key_under_no_limit_has_an_empty_chain(inference_key):
    assert budget_chain(inference_key[0]) == []
    assert effective_budget([]) is None


def test_get_key_reports_the_chain_and_the_effective_budget(layered, inference_key):
    make_generation(layered[0], usage="2.5")
    response = client(inference_key[1]).get("/api/v1/key")
    assert response.status_code == 200
    data = response.json()["data"]
    assert [b["scope"] for b in data["budgets"]] == [
        "workspace_default_member", "workspace_default_key", "member", "api_key", "workspace", "workspace",
        "key_limit"]
    assert data["effective_budget"]["scope"] == "key_limit"
    assert data["effective_budget"]["remaining_usd"] == 0.5
    assert data["limit_remaining"] == 0.5


def test_get_key_needs_a_key_and_shows_a_management_key_no_budgets(layered, management_key):
    assert client().get("/api/v1/key").status_code == 401
    data = client(management_key[1]).get("/api/v1/key").json()["data"]
    assert data["budgets"] == [] and data["effective_budget"] is None


def test_another_organizations_key_sees_only_its_own_layers(layered, outsider):
    from workspaces.services import create_api_key

    theirs = outsider.owned_organizations.get()
    _, plaintext = create_api_key(organization=theirs, workspace=theirs.default_workspace, name="Theirs",
                                  created_by=outsider)
    assert client(plaintext).get("/api/v1/key").json()["data"]["budgets"] == []
