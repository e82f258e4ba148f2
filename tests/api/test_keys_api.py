"""`/keys` and `/keys/{hash}`: inference keys of a workspace, managed with a management key."""

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Generation
from workspaces.models import ApiKey, AuditLogEntry, KeyKind
from workspaces.services import create_api_key

from .conftest import assert_no_secrets

pytestmark = pytest.mark.django_db

KEY_FIELDS = {"hash", "name", "label", "disabled", "created_at", "updated_at", "expires_at", "last_used_at", "limit",
              "limit_remaining", "limit_reset", "include_byok_in_limit", "usage", "usage_daily", "usage_weekly",
              "usage_monthly", "byok_usage", "byok_usage_daily", "byok_usage_weekly", "byok_usage_monthly",
              "creator_user_id", "external_user", "workspace_id"}


def test_it_checks_access_to_the_list(callers, org, inference_key):
    response = callers.check("get", "/api/v1/keys", outsider_status=200)
    # The outsider's own Default workspace has no keys: nothing of ours leaks into their list.
    assert callers.outsider.get("/api/v1/keys").json() == {"data": []}
    assert [k["hash"] for k in response.json()["data"]] == []  # ours is in Production, not Default


def test_it_checks_access_to_one_key(callers, inference_key):
    key = inference_key[0]
    response = callers.check("get", f"/api/v1/keys/{key.hash}")
    assert response.json()["data"]["hash"] == key.hash


def test_it_does_not_let_another_organization_change_or_delete_a_key(callers, inference_key):
    key = inference_key[0]
    assert callers.outsider.patch(f"/api/v1/keys/{key.hash}", {"disabled": True}, format="json").status_code == 404
    assert callers.outsider.delete(f"/api/v1/keys/{key.hash}").status_code == 404
    key.refresh_from_db()
    assert key.disabled is False


def test_it_refuses_another_organizations_workspace(callers, workspace):
    assert callers.outsider.get(f"/api/v1/keys?workspace_id={workspace.pk}").status_code == 404
    response = callers.outsider.post("/api/v1/keys", {"name": "x", "workspace_id": str(workspace.pk)}, format="json")
    assert response.status_code == 404
    assert not ApiKey.objects.filter(name="x").exists()


def test_it_creates_a_key_in_the_default_workspace(callers, org, management_key):
    response = callers.check("post", "/api/v1/keys", {"name": "CI"}, outsider_status=201, ok_status=201)
    body = response.json()
    plaintext = body["key"]
    key = ApiKey.objects.get(hash=body["data"]["hash"], organization=org)
    assert key.workspace == org.default_workspace
    assert key.kind == KeyKind.INFERENCE
    assert key.hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert body["data"]["label"] == key.label and plaintext not in key.label
    assert set(body["data"]) >= KEY_FIELDS
    assert body["data"]["workspace_id"] == str(org.default_workspace.pk)
    assert body["data"]["creator_user_id"] is None
    assert_no_secrets(response)
    entry = AuditLogEntry.objects.get(organization=org, action="create", object_type="ApiKey")
    assert entry.actor_key_hash == management_key[0].hash
    assert plaintext not in str(entry.changes)
    # The value is shown once: never again.
    again = callers.management.get(f"/api/v1/keys/{key.hash}")
    assert_no_secrets(again, plaintext)


def test_it_creates_a_key_with_every_field(api, org, workspace, member):
    body = {"name": "Search", "limit": 12.5, "limit_reset": "weekly", "include_byok_in_limit": True,
            "expires_at": "2099-01-01T00:00:00Z", "workspace_id": "production", "creator_user_id": str(member.pk),
            "external": {"user": "customer-42"}}
    response = api.post("/api/v1/keys", body, format="json")
    assert response.status_code == 201, response.content
    key = ApiKey.objects.get(hash=response.json()["data"]["hash"])
    assert (key.workspace, key.created_by, key.limit, key.limit_reset) == (workspace, member, Decimal("12.5"), "weekly")
    assert key.include_byok_in_limit and key.external_user == "customer-42"
    assert key.expires_at.year == 2099
    data = response.json()["data"]
    assert data["limit"] == 12.5 and data["limit_remaining"] == 12.5
    assert data["expires_at"] == "2099-01-01T00:00:00Z"


@pytest.mark.parametrize("field,value", [
    ("name", ""), ("limit", -1), ("limit", "lots"), ("limit_reset", "yearly"), ("include_byok_in_limit", "maybe"),
    ("expires_at", "2099-01-01T00:00Z"), ("expires_at", "2099-01-01"), ("expires_at", "2000-01-01T00:00:00Z"),
    ("expires_at", "2099-13-01T00:00:00Z"), ("creator_user_id", "not-a-uuid"),
])
def test_it_rejects_a_bad_field_naming_it(api, field, value):
    body = {"name": "ok", field: value}
    response = api.post("/api/v1/keys", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["message"]
    assert not ApiKey.objects.filter(kind=KeyKind.INFERENCE).exists()


def test_it_requires_a_name(api):
    response = api.post("/api/v1/keys", {}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["error"]["message"]


def test_it_refuses_a_creator_from_outside_the_organization(api, outsider):
    response = api.post("/api/v1/keys", {"name": "x", "creator_user_id": str(outsider.pk)}, format="json")
    assert response.status_code == 400
    assert "creator_user_id" in response.json()["error"]["message"]
    assert not ApiKey.objects.filter(name="x").exists()


def test_it_answers_400_for_a_body_that_is_not_json(api):
    response = api.generic("POST", "/api/v1/keys", "{nope", content_type="application/json")
    assert response.status_code == 400
    response = api.post("/api/v1/keys", ["a"], format="json")
    assert response.status_code == 400


def test_it_lists_active_keys_of_a_workspace_newest_first(api, org, workspace, inference_key):
    now = timezone.now()
    older, _ = create_api_key(organization=org, workspace=workspace, name="older")
    older.created_at = now - timedelta(days=2)
    older.save()
    disabled, _ = create_api_key(organization=org, workspace=workspace, name="disabled")
    ApiKey.objects.filter(pk=disabled.pk).update(disabled=True)
    expired, _ = create_api_key(organization=org, workspace=workspace, name="expired",
                                expires_at=now - timedelta(seconds=1))
    create_api_key(organization=org, name="in default")

    names = lambda r: [k["name"] for k in r.json()["data"]]  # noqa: E731
    assert names(api.get("/api/v1/keys?workspace_id=production")) == ["Member key", "older"]
    assert set(names(api.get(f"/api/v1/keys?workspace_id={workspace.pk}&include_disabled=true"))) == {
        "Member key", "older", "disabled"}
    assert set(names(api.get("/api/v1/keys?workspace_id=production&include_expired=true"))) == {
        "Member key", "older", "expired"}
    assert names(api.get("/api/v1/keys?workspace_id=production&offset=1")) == ["older"]
    # No workspace_id: the Default workspace, which never lists management keys.
    assert names(api.get("/api/v1/keys")) == ["in default"]


@pytest.mark.parametrize("query", ["offset=-1", "offset=x", "include_disabled=perhaps"])
def test_it_rejects_bad_list_parameters(api, query):
    response = api.get(f"/api/v1/keys?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["error"]["message"]


def test_it_lists_keys_without_a_query_per_key(api, org, workspace, make_generation):
    def count_queries():
        with CaptureQueriesContext(connection) as ctx:
            assert api.get("/api/v1/keys?workspace_id=production").status_code == 200
        return len(ctx)

    create_api_key(organization=org, workspace=workspace, name="one")
    few = count_queries()
    for n in range(5):
        key, _ = create_api_key(organization=org, workspace=workspace, name=f"more {n}")
        make_generation(api_key=key)
    assert count_queries() == few


def test_it_changes_only_the_fields_sent(callers, org, inference_key, management_key):
    key = inference_key[0]
    key.limit = Decimal("5")
    key.save()
    response = callers.check("patch", f"/api/v1/keys/{key.hash}", {"name": "Renamed", "disabled": True})
    key.refresh_from_db()
    assert (key.name, key.disabled, key.limit) == ("Renamed", True, Decimal("5"))
    assert response.json()["data"]["name"] == "Renamed"
    entry = AuditLogEntry.objects.get(organization=org, action="update", object_type="ApiKey")
    assert entry.changes == {"name": "Renamed", "disabled": True}
    assert entry.actor_key_hash == management_key[0].hash


def test_it_clears_a_limit_with_null(api, inference_key):
    key = inference_key[0]
    key.limit, key.limit_reset = Decimal("5"), "daily"
    key.save()
    response = api.patch(f"/api/v1/keys/{key.hash}", {"limit": None, "limit_reset": None}, format="json")
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.limit is None and key.limit_reset is None
    assert response.json()["data"]["limit_remaining"] is None


def test_it_moves_a_key_to_another_workspace(api, org, inference_key):
    key = inference_key[0]
    response = api.patch(f"/api/v1/keys/{key.hash}", {"workspace_id": "default"}, format="json")
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.workspace == org.default_workspace
    assert response.json()["data"]["workspace_id"] == str(org.default_workspace.pk)


def test_it_refuses_to_move_a_key_to_another_organization(api, outsider, inference_key):
    key = inference_key[0]
    theirs = outsider.owned_organizations.get().default_workspace
    response = api.patch(f"/api/v1/keys/{key.hash}", {"workspace_id": str(theirs.pk)}, format="json")
    assert response.status_code == 404
    key.refresh_from_db()
    assert key.workspace.organization_id != theirs.organization_id


def test_it_does_not_record_an_update_that_changes_nothing(api, inference_key):
    key = inference_key[0]
    assert api.patch(f"/api/v1/keys/{key.hash}", {"name": key.name}, format="json").status_code == 200
    assert not AuditLogEntry.objects.filter(action="update").exists()


def test_it_deletes_a_key(callers, org, inference_key, make_generation):
    key = inference_key[0]
    generation = make_generation()
    response = callers.check("delete", f"/api/v1/keys/{key.hash}")
    assert response.json() == {"deleted": True}
    assert not ApiKey.objects.filter(pk=key.pk).exists()
    # Spend history stays with the organization.
    assert Generation.objects.filter(pk=generation.pk).exists()
    assert AuditLogEntry.objects.filter(organization=org, action="delete", object_type="ApiKey").exists()
    assert callers.management.get(f"/api/v1/keys/{key.hash}").status_code == 404


def test_it_does_not_manage_management_keys_here(api, management_key):
    assert api.get(f"/api/v1/keys/{management_key[0].hash}").status_code == 404
    assert api.delete(f"/api/v1/keys/{management_key[0].hash}").status_code == 404


def test_it_reports_usage_from_generations(api, inference_key, make_generation):
    key = inference_key[0]
    key.limit, key.limit_reset, key.include_byok_in_limit = Decimal("10"), "monthly", True
    key.save()
    now = timezone.now()
    make_generation(usage=Decimal("1.5"), total_cost=Decimal("1.5"))
    make_generation(usage=Decimal("0.01"), total_cost=Decimal("2"), is_byok=True)
    make_generation(usage=Decimal("3"), created_at=now - timedelta(days=400))
    data = api.get(f"/api/v1/keys/{key.hash}").json()["data"]
    assert data["usage"] == pytest.approx(4.51)
    assert data["usage_daily"] == data["usage_weekly"] == data["usage_monthly"] == pytest.approx(1.51)
    assert data["byok_usage"] == data["byok_usage_daily"] == data["byok_usage_monthly"] == pytest.approx(2)
    # Monthly window, BYOK included: 10 - 1.51 - 2.
    assert data["limit_remaining"] == pytest.approx(6.49)
