from datetime import timedelta

from django.utils import timezone

from workspaces.models import AuditLogEntry, Invitation
from workspaces.services import find_invitation, invite_member

from .conftest import assert_login_redirect, flashes


def url(invitation):
    return f"/o/{invitation.organization.slug}/invitations/{invitation.pk}/resend"


def invite(org, admin):
    return invite_member(org, email="new@example.com", role="member", by_user=admin)


def test_it_requires_login(browser, org, admin):
    invitation, _ = invite(org, admin)
    assert_login_redirect(browser.post(url(invitation)))


def test_it_is_404_for_outsiders(login, org, admin, outsider):
    invitation, token = invite(org, admin)
    assert login(outsider).post(url(invitation)).status_code == 404
    assert find_invitation(token) == invitation


def test_it_is_403_for_members(login, org, admin, member):
    invitation, token = invite(org, admin)
    assert login(member).post(url(invitation)).status_code == 403
    assert find_invitation(token) == invitation


def test_it_is_404_for_an_invitation_of_another_organization(login, org, admin, outsider):
    elsewhere = outsider.owned_organizations.get()
    invitation, _ = invite_member(elsewhere, email="x@example.com", role="member", by_user=outsider)
    response = login(admin).post(f"/o/{org.slug}/invitations/{invitation.pk}/resend")
    assert response.status_code == 404


def test_resending_makes_the_old_link_invalid(login, org, admin, mailoutbox, django_capture_on_commit_callbacks):
    invitation, old_token = invite(org, admin)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        response = login(admin).post(url(invitation))
    assert response.status_code == 302
    assert any("old link no longer works" in m for m in flashes(response))
    new_token = mailoutbox[-1].body.split("/invite/")[1].split()[0]
    assert new_token != old_token
    assert find_invitation(old_token) is None
    invitation.refresh_from_db()
    assert find_invitation(new_token) == invitation
    assert invitation.is_pending
    assert invitation.expires_at > timezone.now() + timedelta(days=6)
    assert login(admin).get(f"/invite/{old_token}").status_code == 404
    assert AuditLogEntry.objects.filter(object_type="Invitation", action="update", changes__resent=True).exists()


def test_a_revoked_invitation_is_not_resent(login, org, admin, mailoutbox, django_capture_on_commit_callbacks):
    invitation, token = invite(org, admin)
    Invitation.objects.filter(pk=invitation.pk).update(revoked_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        response = login(admin).post(url(invitation))
    assert "revoked" in " ".join(flashes(response))
    assert mailoutbox == []
    assert find_invitation(token) == invitation
