import pytest

from workspaces import access
from workspaces.models import AuditLogEntry, Membership, Role, WorkspaceMembership
from workspaces.services import ServiceError, set_role

from .conftest import assert_login_redirect, flashes


def url(org, user):
    return f"/o/{org.slug}/members/{user.pk}/role"


def test_it_requires_login(browser, org, member):
    assert_login_redirect(browser.post(url(org, member), {"role": "admin"}))
    assert Membership.objects.get(organization=org, user=member).role == Role.MEMBER


def test_it_is_404_for_outsiders(login, org, member, outsider):
    assert login(outsider).post(url(org, member), {"role": "admin"}).status_code == 404
    assert Membership.objects.get(organization=org, user=member).role == Role.MEMBER


def test_it_is_403_for_members(login, org, admin, member):
    assert login(member).post(url(org, admin), {"role": "member"}).status_code == 403
    assert Membership.objects.get(organization=org, user=admin).role == Role.ADMIN


def test_it_is_404_for_someone_not_in_the_organization(login, org, admin, outsider):
    assert login(admin).post(url(org, outsider), {"role": "admin"}).status_code == 404


def test_admins_promote_a_member_everywhere(login, org, admin, member, workspace, staging):
    response = login(admin).post(url(org, member), {"role": "admin"})
    assert response.status_code == 302
    assert Membership.objects.get(organization=org, user=member).role == Role.ADMIN
    assert set(WorkspaceMembership.objects.filter(user=member).values_list("role", flat=True)) == {Role.ADMIN}
    # The permission index follows: the new admin reaches every workspace, even one they were never added to.
    assert access.get_workspace_for_user(member, org, "staging", access.CHANGE_WORKSPACE) == staging
    assert AuditLogEntry.objects.filter(organization=org, object_type="Membership", action="update",
                                        actor_user=admin, changes__role=["member", "admin"]).exists()


def test_admins_demote_an_admin(login, org, owner, admin, workspace):
    login(owner).post(url(org, admin), {"role": "member"})
    assert Membership.objects.get(organization=org, user=admin).role == Role.MEMBER
    with pytest.raises(Exception):
        access.get_organization_for_user(admin, org.slug, access.CHANGE_ORG)


def test_nobody_demotes_the_owner(login, org, owner, admin):
    response = login(admin).post(url(org, owner), {"role": "member"})
    assert response.status_code == 302
    assert "The owner of the organization is always an admin." in flashes(response)
    assert Membership.objects.get(organization=org, user=owner).role == Role.ADMIN


def test_the_last_admin_stays(org, owner, member):
    # Only reachable when the owner left the organization's admins some other way.
    org.owner = None
    org.save()
    with pytest.raises(ServiceError, match="at least one admin"):
        set_role(org, owner, Role.MEMBER, by_user=owner)


def test_it_rejects_an_unknown_role(login, org, admin, member):
    response = login(admin).post(url(org, member), {"role": "superuser"})
    assert response.status_code == 302
    assert Membership.objects.get(organization=org, user=member).role == Role.MEMBER


def test_nobody_grants_a_role_above_their_own(org, member, admin):
    with pytest.raises(ServiceError, match="above your own") as refused:
        set_role(org, member, Role.ADMIN, by_user=member)
    assert refused.value.status == 403
