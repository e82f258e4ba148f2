"""workspaces.access: the checks every page, the API and the proxy share."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from guardian.models import UserObjectPermission

from workspaces import access
from workspaces.models import Membership, User, WorkspaceMembership
from workspaces.services import sync_workspace_permissions


def test_it_finds_organizations_by_slug_id_or_instance(org, member):
    for ref in (org.slug, str(org.pk), org):
        assert access.get_organization_for_user(member, ref) == org


def test_outsiders_get_404_and_low_roles_403(org, outsider, member, admin):
    with pytest.raises(Http404):
        access.get_organization_for_user(outsider, org.slug)
    with pytest.raises(PermissionDenied):
        access.get_organization_for_user(member, org.slug, access.CHANGE_ORG)
    assert access.get_organization_for_user(admin, org.slug, access.CHANGE_ORG) == org


def test_workspaces_are_404_unless_the_person_is_in_them(org, member, staging, workspace):
    assert access.get_workspace_for_user(member, org, workspace.slug) == workspace
    assert access.get_workspace_for_user(member, org, str(workspace.pk)) == workspace
    with pytest.raises(Http404):
        access.get_workspace_for_user(member, org, staging.slug)
    with pytest.raises(PermissionDenied):
        access.get_workspace_for_user(member, org, workspace.slug, access.CHANGE_WORKSPACE)


def test_a_workspace_of_another_organization_is_404_even_for_its_admin(org, outsider):
    elsewhere = outsider.owned_organizations.get()
    with pytest.raises(Http404):
        access.get_workspace_for_user(outsider, org, elsewhere.default_workspace.slug)


def test_superusers_and_anonymous_people_get_nothing_for_free(org, db):
    from django.contrib.auth.models import AnonymousUser

    root = User.objects.create_superuser(email="root@example.com", password="x-pass-123456")
    with pytest.raises(Http404):
        access.get_organization_for_user(root, org.slug)
    assert list(access.organizations_for_user(root)) == []
    with pytest.raises(Http404):
        access.get_organization_for_user(AnonymousUser(), org.slug)
    assert list(access.workspaces_for_user(AnonymousUser())) == []


def test_inactive_people_lose_access(org, member):
    member.is_active = False
    member.save()
    with pytest.raises(Http404):
        access.get_organization_for_user(member, org.slug)


def test_the_index_follows_the_memberships(org, member, staging):
    WorkspaceMembership.objects.create(workspace=staging, user=member, role="member")
    sync_workspace_permissions(member, org)
    assert staging in access.workspaces_for_user(member, org)
    Membership.objects.filter(organization=org, user=member).update(role="admin")
    sync_workspace_permissions(member, org)
    assert access.get_workspace_for_user(member, org, staging.slug, access.CHANGE_WORKSPACE) == staging
    Membership.objects.filter(organization=org, user=member).delete()
    sync_workspace_permissions(member, org)
    assert not UserObjectPermission.objects.filter(user=member).exists()
    assert list(access.organizations_for_user(member)) == []


def test_sync_is_idempotent(org, member):
    before = sorted(UserObjectPermission.objects.filter(user=member).values_list("permission__codename",
                                                                                 "object_pk"))
    sync_workspace_permissions(member, org)
    sync_workspace_permissions(member, org)
    after = sorted(UserObjectPermission.objects.filter(user=member).values_list("permission__codename",
                                                                                "object_pk"))
    assert before == after and before


def test_deleting_a_workspace_drops_its_permissions(org, owner, staging):
    from workspaces.services import delete_workspace

    pk = str(staging.pk)
    assert UserObjectPermission.objects.filter(object_pk=pk).exists()
    delete_workspace(staging, by_user=owner)
    assert not UserObjectPermission.objects.filter(object_pk=pk).exists()


def test_the_api_services_keep_the_index(org, owner, admin, member, staging):
    from workspaces.services import add_workspace_members, remove_workspace_members

    add_workspace_members(staging, [member.pk], by_user=owner)
    assert staging in access.workspaces_for_user(member, org)
    remove_workspace_members(staging, [member.pk], by_user=owner)
    assert staging not in access.workspaces_for_user(member, org)
