import hashlib

import pytest

from workspaces.models import AuditLogEntry, Invitation, Role
from workspaces.services import ServiceError, invite_member

from .conftest import assert_login_redirect


def url(org):
    return f"/o/{org.slug}/invitations/new"


def test_it_requires_login(browser, org):
    assert_login_redirect(browser.post(url(org), {"email": "x@example.com", "role": "member"}))
    assert not Invitation.objects.exists()


def test_it_is_404_for_outsiders(login, org, outsider):
    assert login(outsider).post(url(org), {"email": "x@example.com", "role": "member"}).status_code == 404
    assert not Invitation.objects.exists()


def test_it_is_403_for_members(login, org, member):
    assert login(member).post(url(org), {"email": "x@example.com", "role": "member"}).status_code == 403
    assert not Invitation.objects.exists()


def test_admins_invite_and_the_mail_carries_the_only_copy_of_the_token(
        login, org, admin, staging, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(admin).post(url(org), {"email": "New@Example.com", "role": "admin",
                                                 "workspaces": [str(staging.pk)]})
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.invited_by) == ("new@example.com", Role.ADMIN, admin)
    assert list(invitation.workspaces.all()) == [staging]
    assert invitation.is_pending
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["new@example.com"]
    assert "Acme" in mail.subject
    token = mail.body.split("/invite/")[1].split()[0]
    assert hashlib.sha256(token.encode()).hexdigest() == invitation.token_digest
    assert token not in str(list(Invitation.objects.values()))
    assert mail.alternatives and token in mail.alternatives[0][0]
    entry = AuditLogEntry.objects.get(object_type="Invitation", action="create")
    assert entry.actor_user == admin and token not in str(entry.changes)


def test_no_mail_leaves_before_the_invitation_is_saved(login, org, admin, mailoutbox,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        login(admin).post(url(org), {"email": "new@example.com", "role": "member"})
    assert mailoutbox == []
    assert len(callbacks) == 1


def test_it_shows_errors_beside_the_field(login, org, admin, member):
    client = login(admin)
    response = client.post(url(org), {"email": "not-an-address", "role": "member"})
    assert response.status_code == 400
    assert b'class="error"' in response.content
    response = client.post(url(org), {"email": member.email, "role": "member"})
    assert response.status_code == 400
    assert b"already a member" in response.content
    assert not Invitation.objects.exists()


def test_it_refuses_a_second_pending_invitation(login, org, admin):
    client = login(admin)
    client.post(url(org), {"email": "new@example.com", "role": "member"})
    response = client.post(url(org), {"email": "new@example.com", "role": "member"})
    assert response.status_code == 400
    assert b"resend it instead" in response.content
    assert Invitation.objects.count() == 1


def test_it_refuses_a_workspace_of_another_organization(login, org, admin, outsider):
    elsewhere = outsider.owned_organizations.get().default_workspace
    response = login(admin).post(url(org), {"email": "new@example.com", "role": "member",
                                            "workspaces": [str(elsewhere.pk)]})
    assert response.status_code == 400
    assert not Invitation.objects.exists()


def test_nobody_invites_a_role_above_their_own(org, member):
    with pytest.raises(ServiceError, match="above your own") as refused:
        invite_member(org, email="boss@example.com", role=Role.ADMIN, by_user=member)
    assert refused.value.status == 403
    assert not Invitation.objects.exists()


def test_the_form_offers_no_role_above_the_inviters(org, member):
    from workspaces.forms import InviteForm

    form = InviteForm({"email": "x@example.com", "role": "admin"}, organization=org, inviter_role=Role.MEMBER)
    assert not form.is_valid()
    assert "role" in form.errors
