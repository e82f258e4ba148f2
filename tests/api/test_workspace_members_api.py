"""`/workspaces/{id}/members`, `/members/add` and `/members/remove`."""

import uuid

import pytest

from workspaces.models import AuditLogEntry, Membership, Workspace, WorkspaceMembership
from workspaces.services import create_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def empty_workspace(org):
    return Workspace.objects.create(organization=org, name="Staging", slug="staging")


def test_it_lists_members(callers, workspace, owner, admin, member):
    response = callers.check("get", f"/api/v1/workspaces/{workspace.pk}/members")
    body = response.json()
    assert body["total_count"] == 3
    assert {(m["user_id"], m["role"]) for m in body["data"]} == {
        (str(owner.pk), "admin"), (str(admin.pk), "admin"), (str(member.pk), "member")}
    assert set(body["data"][0]) == {"id", "workspace_id", "user_id", "role", "created_at"}
    assert body["data"][0]["workspace_id"] == str(workspace.pk)
    assert len(callers.management.get(f"/api/v1/workspaces/{workspace.pk}/members?limit=2").json()["data"]) == 2


def test_it_adds_members_with_their_organization_role(callers, org, empty_workspace, admin, member):
    path = "/api/v1/workspaces/staging/members/add"
    response = callers.check("post", path, {"user_ids": [str(member.pk), str(admin.pk)]})
    body = response.json()
    assert body["added_count"] == 2
    assert {(m["user_id"], m["role"]) for m in body["data"]} == {(str(member.pk), "member"), (str(admin.pk), "admin")}
    assert set(WorkspaceMembership.objects.filter(workspace=empty_workspace).values_list("user_id", "role")) == {
        (member.pk, "member"), (admin.pk, "admin")}
    assert AuditLogEntry.objects.filter(organization=org, object_type="Workspace", action="update").exists()
    # Adding again changes nothing.
    again = callers.management.post(path, {"user_ids": [str(member.pk)]}, format="json").json()
    assert again == {"added_count": 0, "data": []}


def test_it_refuses_people_outside_the_organization(api, empty_workspace, member, outsider):
    response = api.post("/api/v1/workspaces/staging/members/add",
                        {"user_ids": [str(member.pk), str(outsider.pk), "nope"]}, format="json")
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "user_ids" in message and str(outsider.pk) in message and "nope" in message
    assert not WorkspaceMembership.objects.filter(workspace=empty_workspace).exists()


@pytest.mark.parametrize("body", [{}, {"user_ids": []}, {"user_ids": "abc"}])
def test_it_rejects_a_bad_body(api, empty_workspace, body):
    response = api.post("/api/v1/workspaces/staging/members/add", body, format="json")
    assert response.status_code == 400
    assert "user_ids" in response.json()["error"]["message"]


def test_it_removes_members(callers, org, workspace, admin):
    path = f"/api/v1/workspaces/{workspace.pk}/members/remove"
    response = callers.check("post", path, {"user_ids": [str(admin.pk)]})
    assert response.json() == {"removed_count": 1}
    assert not WorkspaceMembership.objects.filter(workspace=workspace, user=admin).exists()
    assert Membership.objects.filter(organization=org, user=admin).exists()


def test_it_refuses_to_remove_members_with_active_keys(api, workspace, member, inference_key):
    response = api.post(f"/api/v1/workspaces/{workspace.pk}/members/remove", {"user_ids": [str(member.pk)]},
                        format="json")
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert member.email in message and str(member.pk) in message
    assert WorkspaceMembership.objects.filter(workspace=workspace, user=member).exists()
    # Once the key is disabled, the member can go.
    inference_key[0].disabled = True
    inference_key[0].save()
    response = api.post(f"/api/v1/workspaces/{workspace.pk}/members/remove", {"user_ids": [str(member.pk)]},
                        format="json")
    assert response.json() == {"removed_count": 1}


def test_it_keeps_organization_members_in_the_default_workspace(api, org, member):
    response = api.post("/api/v1/workspaces/default/members/remove", {"user_ids": [str(member.pk)]}, format="json")
    assert response.status_code == 400
    assert "Default" in response.json()["error"]["message"]
    assert WorkspaceMembership.objects.filter(workspace=org.default_workspace, user=member).exists()


def test_it_answers_404_for_another_organizations_workspace(callers, outsider, member):
    theirs = outsider.owned_organizations.get().default_workspace
    for suffix in ("members", "members/add", "members/remove"):
        path = f"/api/v1/workspaces/{theirs.pk}/{suffix}"
        response = (callers.management.get(path) if suffix == "members"
                    else callers.management.post(path, {"user_ids": [str(member.pk)]}, format="json"))
        assert response.status_code == 404
    assert callers.management.get(f"/api/v1/workspaces/{uuid.uuid4()}/members").status_code == 404


def test_it_refuses_a_members_key_in_another_workspace_only_for_that_workspace(api, org, empty_workspace, member):
    WorkspaceMembership.objects.create(workspace=empty_workspace, user=member, role="member")
    create_api_key(organization=org, workspace=org.default_workspace, name="elsewhere", created_by=member)
    response = api.post("/api/v1/workspaces/staging/members/remove", {"user_ids": [str(member.pk)]}, format="json")
    assert response.json() == {"removed_count": 1}
