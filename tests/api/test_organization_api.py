"""`/organization/members` and `/organization/settings`."""

import pytest

from workspaces.models import AuditLogEntry

pytestmark = pytest.mark.django_db


def test_it_lists_members_with_org_roles(callers, org, owner, admin, member):
    member.first_name = "Mia"
    member.save()
    response = callers.check("get", "/api/v1/organization/members", outsider_status=200)
    body = response.json()
    assert body["total_count"] == 3
    rows = {m["email"]: m for m in body["data"]}
    assert rows["owner@example.com"]["role"] == "org:admin"
    assert rows["member@example.com"] == {"id": str(member.pk), "email": "member@example.com", "first_name": "Mia",
                                          "last_name": None, "role": "org:member"}
    theirs = callers.outsider.get("/api/v1/organization/members").json()
    assert [m["email"] for m in theirs["data"]] == ["outsider@example.com"]


def test_it_pages_members(api, org, admin, member):
    body = api.get("/api/v1/organization/members?limit=2&offset=2").json()
    assert body["total_count"] == 3 and len(body["data"]) == 1
    assert api.get("/api/v1/organization/members?limit=500").status_code == 400


def test_it_reads_settings(callers, org):
    response = callers.check("get", "/api/v1/organization/settings", outsider_status=200)
    assert response.json() == {"data": {"id": str(org.pk), "is_filtered_model_catalog_enabled": False}}
    assert callers.outsider.get("/api/v1/organization/settings").json()["data"]["id"] != str(org.pk)


def test_it_changes_settings(callers, org, outsider):
    response = callers.check("patch", "/api/v1/organization/settings", {"is_filtered_model_catalog_enabled": True},
                             outsider_status=200)
    assert response.json()["data"]["is_filtered_model_catalog_enabled"] is True
    org.refresh_from_db()
    assert org.is_filtered_model_catalog_enabled is True
    assert AuditLogEntry.objects.filter(organization=org, object_type="OrganizationSettings").count() == 1


def test_it_rejects_a_bad_setting(api, org):
    response = api.patch("/api/v1/organization/settings", {"is_filtered_model_catalog_enabled": "perhaps"},
                         format="json")
    assert response.status_code == 400
    assert "is_filtered_model_catalog_enabled" in response.json()["error"]["message"]
    org.refresh_from_db()
    assert org.is_filtered_model_catalog_enabled is False
