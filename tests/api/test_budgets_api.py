"""`/workspaces/{id}/budgets` and `/budgets/{interval}`: one budget per interval, strictly decreasing."""

from decimal import Decimal

import pytest

from billing.models import WorkspaceBudget
from workspaces.models import AuditLogEntry

pytestmark = pytest.mark.django_db

BASE = "/api/v1/workspaces/production/budgets"


def budget(workspace, interval, limit):
    return WorkspaceBudget.objects.create(workspace=workspace, interval=interval, limit_usd=Decimal(limit))


def test_it_lists_budgets(callers, workspace):
    budget(workspace, "daily", "10")
    budget(workspace, "lifetime", "1000")
    response = callers.check("get", f"/api/v1/workspaces/{workspace.pk}/budgets")
    body = response.json()
    assert body["include_byok_in_budgets"] is False
    assert [(b["reset_interval"], b["limit_usd"]) for b in body["data"]] == [(None, 1000), ("daily", 10)]
    assert set(body["data"][0]) == {"id", "workspace_id", "limit_usd", "reset_interval", "created_at", "updated_at"}


def test_it_gets_one_budget(callers, workspace):
    made = budget(workspace, "monthly", "500")
    response = callers.check("get", f"{BASE}/monthly")
    assert response.json()["data"]["id"] == str(made.pk)
    assert response.json()["data"]["reset_interval"] == "monthly"
    assert callers.management.get(f"{BASE}/weekly").status_code == 404
    response = callers.management.get(f"{BASE}/yearly")
    assert response.status_code == 400 and "interval" in response.json()["error"]["message"]


def test_it_sets_a_budget(callers, org, workspace):
    response = callers.check("put", f"{BASE}/monthly", {"limit_usd": 500, "include_byok_in_budgets": True})
    body = response.json()
    assert body["data"]["limit_usd"] == 500 and body["data"]["reset_interval"] == "monthly"
    assert body["include_byok_in_budgets"] is True
    made = WorkspaceBudget.objects.get(workspace=workspace, interval="monthly")
    assert made.limit_usd == Decimal("500")
    workspace.refresh_from_db()
    assert workspace.include_byok_in_budgets is True
    assert AuditLogEntry.objects.filter(organization=org, object_type="WorkspaceBudget", action="create").exists()


def test_it_changes_a_budget_in_place_and_keeps_the_byok_setting_when_omitted(api, workspace):
    workspace.include_byok_in_budgets = True
    workspace.save()
    made = budget(workspace, "lifetime", "100")
    response = api.put(f"{BASE}/lifetime", {"limit_usd": 250.5}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["id"] == str(made.pk) and response.json()["data"]["reset_interval"] is None
    made.refresh_from_db()
    assert made.limit_usd == Decimal("250.5")
    workspace.refresh_from_db()
    assert workspace.include_byok_in_budgets is True
    assert WorkspaceBudget.objects.filter(workspace=workspace).count() == 1


@pytest.mark.parametrize("existing,interval,limit,message", [
    ({"weekly": "600"}, "monthly", 500, "the monthly limit ($500) must be greater than the weekly limit ($600)"),
    ({"monthly": "500"}, "weekly", 500, "the monthly limit ($500) must be greater than the weekly limit ($500)"),
    ({"lifetime": "100"}, "daily", 150.25, "the lifetime limit ($100) must be greater than the daily limit ($150.25)"),
    ({"daily": "0.0002"}, "weekly", 0.0001,
     "the weekly limit ($0.0001) must be greater than the daily limit ($0.0002)"),
])
def test_it_keeps_limits_strictly_decreasing(api, workspace, existing, interval, limit, message):
    for name, value in existing.items():
        budget(workspace, name, value)
    response = api.put(f"{BASE}/{interval}", {"limit_usd": limit}, format="json")
    assert response.status_code == 400
    text = response.json()["error"]["message"]
    assert "Budget limits must be strictly decreasing as scope narrows" in text and message in text
    assert not WorkspaceBudget.objects.filter(workspace=workspace, interval=interval).exists()


def test_it_accepts_a_decreasing_chain(api, workspace):
    for interval, limit in (("daily", 10), ("weekly", 50), ("monthly", 150), ("lifetime", 1000)):
        assert api.put(f"{BASE}/{interval}", {"limit_usd": limit}, format="json").status_code == 200
    assert WorkspaceBudget.objects.filter(workspace=workspace).count() == 4


@pytest.mark.parametrize("body", [{}, {"limit_usd": 0}, {"limit_usd": -5}, {"limit_usd": "much"},
                                  {"limit_usd": 5, "include_byok_in_budgets": "perhaps"}])
def test_it_rejects_a_bad_body_naming_the_field(api, workspace, body):
    response = api.put(f"{BASE}/daily", body, format="json")
    assert response.status_code == 400
    field = "include_byok_in_budgets" if "include_byok_in_budgets" in body else "limit_usd"
    assert field in response.json()["error"]["message"]
    assert not WorkspaceBudget.objects.exists()


def test_it_deletes_a_budget_idempotently(callers, org, workspace):
    budget(workspace, "daily", "10")
    response = callers.check("delete", f"{BASE}/daily")
    assert response.json() == {"deleted": True}
    assert not WorkspaceBudget.objects.filter(workspace=workspace).exists()
    assert callers.management.delete(f"{BASE}/daily").json() == {"deleted": True}
    assert AuditLogEntry.objects.filter(organization=org, object_type="WorkspaceBudget", action="delete").count() == 1


def test_it_hides_another_organizations_budgets(callers, outsider):
    theirs = outsider.owned_organizations.get().default_workspace
    budget(theirs, "daily", "10")
    path = f"/api/v1/workspaces/{theirs.pk}/budgets"
    assert callers.management.get(path).status_code == 404
    assert callers.management.get(f"{path}/daily").status_code == 404
    assert callers.management.put(f"{path}/daily", {"limit_usd": 1}, format="json").status_code == 404
    assert callers.management.delete(f"{path}/daily").status_code == 404
    assert WorkspaceBudget.objects.get(workspace=theirs).limit_usd == Decimal("10")
