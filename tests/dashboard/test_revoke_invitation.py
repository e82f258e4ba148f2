from workspaces.models import AuditLogEntry, Invitation
from workspaces.services import invite_member

from .conftest import assert_login_redirect


def url(invitation):
    return f"/o/{invitation.organization.slug}/invitations/{invitation.pk}/revoke"


def invite(org, admin):
    return invite_member(org, email="new@example.com", role="member", by_user=admin)


def test_it_requires_login(browser, org, admin):
    invitation, _ = invite(org, admin)
    assert_login_redirect(browser.post(url(invitation)))
    assert Invitation.objects.get().revoked_at is None


def test_it_is_404_for_outsiders(login, org, admin, outsider):
    invitation, _ = invite(org, admin)
    assert login(outsider).post(url(invitation)).status_code == 404
    assert Invitation.objects.get().revoked_at is None


def test_it_is_403_for_members(login, org, admin, member):
    invitation, _ = invite(org, admin)
    assert login(member).post(url(invitation)).status_code == 403
    assert Invitation.objects.get().revoked_at is None


def test_admins_revoke_and_the_link_stops_working(login, browser, org, admin, member):
    invitation, token = invite(org, admin)
    response = login(admin).post(url(invitation))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None and not invitation.is_pending
    assert AuditLogEntry.objects.filter(object_type="Invitation", changes__revoked=True, actor_user=admin).exists()
    browser.logout()
    response = browser.get(f"/invite/{token}")
    assert response.status_code == 410
    assert b"revoked" in response.content
