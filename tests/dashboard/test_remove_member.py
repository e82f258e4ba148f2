from django.http import Http404
import pytest

from workspaces import access
from workspaces.models import ApiKey, AuditLogEntry, Membership, WorkspaceMembership

from .conftest import assert_login_redirect, flashes


def url(org, user):
    return f"/o/{org.slug}/members/{user.pk}/remove"


def test_it_requires_login(browser, org, member):
    assert_login_redirect(browser.post(url(org, member)))
    assert Membership.objects.filter(organization=org, user=member).exists()


def test_it_is_404_for_outsiders(login, org, member, outsider):
    assert login(outsider).post(url(org, member)).status_code == 404
    assert Membership.objects.filter(organization=org, user=member).exists()


def test_it_is_403_for_members(login, org, admin, member):
    assert login(member).post(url(org, admin)).status_code == 403
    assert Membership.objects.filter(organization=org, user=admin).exists()


def test_admins_remove_a_member_and_disable_their_keys(login, org, admin, member, workspace, inference_key):
    api_key, _plaintext = inference_key
    response = login(admin).post(url(org, member))
    assert response.status_code == 302
    assert not Membership.objects.filter(organization=org, user=member).exists()
    assert not WorkspaceMembership.objects.filter(workspace__organization=org, user=member).exists()
    api_key.refresh_from_db()
    assert api_key.disabled
    assert any("were disabled" in m for m in flashes(response))
    with pytest.raises(Http404):
        access.get_workspace_for_user(member, org, workspace.slug)
    assert AuditLogEntry.objects.filter(organization=org, object_type="Membership", action="delete",
                                        actor_user=admin).exists()


def test_the_removed_member_gets_404_everywhere(login, org, admin, member, workspace):
    login(admin).post(url(org, member))
    client = login(member)
    assert client.get(f"/o/{org.slug}/").status_code == 404
    assert client.get(f"/o/{org.slug}/w/{workspace.slug}/").status_code == 404


def test_nobody_removes_the_owner(login, org, owner, admin):
    response = login(admin).post(url(org, owner))
    assert response.status_code == 302
    assert "The owner of the organization cannot be removed." in flashes(response)
    assert Membership.objects.filter(organization=org, user=owner).exists()
    assert ApiKey.objects.filter(created_by=owner, disabled=True).count() == 0
