"""`GET /audit-log`: who changed what, newest first, filterable, never a secret."""

import pytest

from .conftest import assert_no_secrets

pytestmark = pytest.mark.django_db


def test_it_lists_what_the_api_changed(callers, org, workspace, management_key):
    created = callers.management.post("/api/v1/keys", {"name": "CI"}, format="json").json()
    callers.management.patch(f"/api/v1/keys/{created['data']['hash']}", {"disabled": True}, format="json")
    callers.management.put("/api/v1/workspaces/production/budgets/daily", {"limit_usd": 5}, format="json")
    response = callers.check("get", "/api/v1/audit-log", outsider_status=200)
    body = response.json()
    assert [(e["action"], e["object_type"]) for e in body["data"]] == [
        ("create", "WorkspaceBudget"), ("update", "ApiKey"), ("create", "ApiKey")]
    assert body["total_count"] == 3
    entry = body["data"][1]
    assert entry["actor"] == {"type": "key", "id": management_key[0].hash, "label": entry["actor"]["label"]}
    assert entry["changes"] == {"disabled": True}
    assert entry["object_id"] and entry["object_repr"] and entry["created_at"]
    assert_no_secrets(response, created["key"])
    assert callers.outsider.get("/api/v1/audit-log").json()["total_count"] == 0


def test_it_filters_and_pages(api, workspace, owner):
    from workspaces.audit import record

    api.post("/api/v1/keys", {"name": "one"}, format="json")
    api.post("/api/v1/keys", {"name": "two"}, format="json")
    record(organization=workspace.organization, action="update", obj=workspace, actor_user=owner,
           changes={"name": "x"})
    assert api.get("/api/v1/audit-log?object_type=ApiKey").json()["total_count"] == 2
    updates = api.get("/api/v1/audit-log?action=update").json()
    assert updates["total_count"] == 1
    assert updates["data"][0]["actor"] == {"type": "user", "id": str(owner.pk), "label": owner.email}
    page = api.get("/api/v1/audit-log?limit=1&offset=1").json()
    assert page["total_count"] == 3 and len(page["data"]) == 1
    response = api.get("/api/v1/audit-log?action=explode")
    assert response.status_code == 400 and "action" in response.json()["error"]["message"]
