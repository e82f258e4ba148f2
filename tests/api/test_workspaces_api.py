"""`/workspaces` and `/workspaces/{id|slug}`: create, read, change and delete workspaces."""

import uuid

import pytest
from django.utils import timezone

from billing.models import WorkspaceBudget
from workspaces.models import ApiKey, AuditLogEntry, Workspace, WorkspaceMembership
from workspaces.services import create_api_key

pytestmark = pytest.mark.django_db

WORKSPACE_FIELDS = {"id", "name", "slug", "description", "created_at", "updated_at", "created_by",
                    "default_guardrail_id", "default_text_model", "default_image_model", "default_provider_sort",
                    "disabled_server_tools", "io_logging_api_key_ids", "io_logging_sampling_rate",
                    "is_data_discount_logging_enabled", "is_observability_broadcast_enabled",
                    "is_observability_io_logging_enabled", "include_byok_in_budgets"}


def test_it_lists_workspaces_of_the_organization_only(callers, org, workspace):
    response = callers.check("get", "/api/v1/workspaces", outsider_status=200)
    body = response.json()
    assert body["total_count"] == 2
    assert [w["slug"] for w in body["data"]] == ["default", "production"]
    assert set(body["data"][0]) >= WORKSPACE_FIELDS
    theirs = callers.outsider.get("/api/v1/workspaces").json()
    assert str(workspace.pk) not in str(theirs) and theirs["total_count"] == 1


def test_it_pages_the_list(api, org, workspace):
    body = api.get("/api/v1/workspaces?offset=1&limit=1").json()
    assert body["total_count"] == 2
    assert [w["slug"] for w in body["data"]] == ["production"]
    for query in ("limit=0", "limit=101", "offset=-1"):
        response = api.get(f"/api/v1/workspaces?{query}")
        assert response.status_code == 400
        assert query.split("=")[0] in response.json()["error"]["message"]


def test_it_gets_a_workspace_by_id_or_slug(callers, workspace):
    response = callers.check("get", f"/api/v1/workspaces/{workspace.pk}")
    data = response.json()["data"]
    assert data["id"] == str(workspace.pk)
    assert data["default_guardrail_id"] == str(workspace.default_guardrail_id)
    assert callers.management.get("/api/v1/workspaces/production").json()["data"]["id"] == str(workspace.pk)
    assert callers.outsider.get("/api/v1/workspaces/production").status_code == 404
    assert callers.management.get(f"/api/v1/workspaces/{uuid.uuid4()}").status_code == 404


def test_it_creates_a_workspace(callers, org, owner, management_key):
    body = {"name": "Team Search", "slug": "team-search", "description": "Search team",
            "default_text_model": "test/chat", "default_provider_sort": "price",
            "disabled_server_tools": ["openrouter:web_search"], "io_logging_sampling_rate": 0.25,
            "is_observability_io_logging_enabled": True}
    response = callers.check("post", "/api/v1/workspaces", body, outsider_status=201, ok_status=201)
    data = response.json()["data"]
    created = Workspace.objects.get(organization=org, slug="team-search")
    assert data["id"] == str(created.pk)
    assert created.created_by == owner  # the management key's creator
    assert created.default_provider_sort == "price"
    assert created.disabled_server_tools == ["openrouter:web_search"]
    assert str(created.io_logging_sampling_rate) == "0.2500" and data["io_logging_sampling_rate"] == 0.25
    assert created.is_observability_io_logging_enabled is True
    assert WorkspaceMembership.objects.filter(workspace=created, user=owner, role="admin").exists()
    entry = AuditLogEntry.objects.get(organization=org, object_type="Workspace", action="create")
    assert entry.actor_key_hash == management_key[0].hash and entry.changes["slug"] == "team-search"


@pytest.mark.parametrize("field,value", [
    ("slug", "Team Search"), ("slug", "-team"), ("slug", "team--search"), ("slug", "team-"), ("slug", ""),
    ("slug", "0f5d71ff-c58c-4f27-af87-a7f9c85c4b80"), ("slug", "production"), ("name", ""),
    ("default_provider_sort", "cheapest"),
    ("io_logging_sampling_rate", 0), ("io_logging_sampling_rate", 2), ("disabled_server_tools", ["web_search"]),
    ("io_logging_api_key_ids", ["abc"]), ("is_data_discount_logging_enabled", "sometimes"),
])
def test_it_rejects_a_bad_field_naming_it(api, workspace, field, value):
    body = {"name": "New", "slug": "new", field: value}
    response = api.post("/api/v1/workspaces", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["message"]
    assert Workspace.objects.count() == 2  # the Default and Production only


def test_it_requires_name_and_slug(api):
    response = api.post("/api/v1/workspaces", {}, format="json")
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "name" in message and "slug" in message


def test_it_changes_only_the_fields_sent(callers, org, workspace):
    workspace.description = "keep me"
    workspace.save()
    response = callers.check("patch", "/api/v1/workspaces/production", {"name": "Prod", "default_text_model": None})
    workspace.refresh_from_db()
    assert workspace.name == "Prod" and workspace.description == "keep me" and workspace.slug == "production"
    assert response.json()["data"]["name"] == "Prod"
    assert workspace.updated_at is not None
    entry = AuditLogEntry.objects.get(organization=org, object_type="Workspace", action="update")
    assert entry.changes == {"name": "Prod"}


def test_it_renames_the_slug(api, workspace):
    assert api.patch(f"/api/v1/workspaces/{workspace.pk}", {"slug": "prod"}, format="json").status_code == 200
    workspace.refresh_from_db()
    assert workspace.slug == "prod"
    response = api.patch(f"/api/v1/workspaces/{workspace.pk}", {"slug": "default"}, format="json")
    assert response.status_code == 400 and "slug" in response.json()["error"]["message"]


def test_it_clears_disabled_tools_with_an_empty_list(api, workspace):
    workspace.disabled_server_tools = ["openrouter:web_search"]
    workspace.save()
    response = api.patch("/api/v1/workspaces/production", {"disabled_server_tools": []}, format="json")
    assert response.status_code == 200
    workspace.refresh_from_db()
    assert workspace.disabled_server_tools is None


def test_it_deletes_a_workspace_without_active_keys(callers, org, workspace, inference_key):
    # The caller's inference key lives elsewhere; what is left here is inactive.
    ApiKey.objects.filter(pk=inference_key[0].pk).update(workspace=org.default_workspace)
    old, _ = create_api_key(organization=org, workspace=workspace, name="old")
    ApiKey.objects.filter(pk=old.pk).update(disabled=True)
    expired, _ = create_api_key(organization=org, workspace=workspace, name="expired", expires_at=timezone.now())
    WorkspaceBudget.objects.create(workspace=workspace, interval="daily", limit_usd=5)
    response = callers.check("delete", "/api/v1/workspaces/production")
    assert response.json() == {"deleted": True}
    assert not Workspace.objects.filter(pk=workspace.pk).exists()
    assert not ApiKey.objects.filter(pk__in=[expired.pk, old.pk]).exists()
    assert ApiKey.objects.filter(pk=inference_key[0].pk).exists()
    assert not WorkspaceBudget.objects.exists()
    assert AuditLogEntry.objects.filter(organization=org, object_type="Workspace", action="delete").exists()


def test_it_refuses_to_delete_a_workspace_with_active_keys(api, workspace, inference_key):
    response = api.delete(f"/api/v1/workspaces/{workspace.pk}")
    assert response.status_code == 400
    assert "active API key" in response.json()["error"]["message"]
    assert Workspace.objects.filter(pk=workspace.pk).exists()


def test_it_deletes_the_default_workspace_only_when_confirmed(api, org):
    default = org.default_workspace
    response = api.delete("/api/v1/workspaces/default")
    assert response.status_code == 403
    assert "confirm_default_workspace_deletion" in response.json()["error"]["message"]
    assert Workspace.objects.filter(pk=default.pk).exists()
    response = api.delete("/api/v1/workspaces/default?confirm_default_workspace_deletion=true")
    assert response.status_code == 200
    assert not Workspace.objects.filter(pk=default.pk).exists()
    # What falls back to the Default workspace now says so.
    response = api.post("/api/v1/keys", {"name": "x"}, format="json")
    assert response.status_code == 400 and "workspace_id" in response.json()["error"]["message"]
