from datetime import timedelta

from allauth.account.models import EmailAddress
from django.utils import timezone

from workspaces import access
from workspaces.models import Invitation, Membership, Role, User, WorkspaceMembership
from workspaces.services import invite_member


def invite(org, admin, email="new@example.com", role="member", workspaces=()):
    return invite_member(org, email=email, role=role, workspaces=workspaces, by_user=admin)


def test_the_link_only_shows_a_confirmation_on_get(login, org, admin, member, staging):
    # An existing person (already in another organization) invited to this one.
    person = User.objects.create_user(email="existing@example.com", password="x-pass-123456")
    invitation, token = invite(org, admin, email="existing@example.com", workspaces=[staging])
    response = login(person).get(f"/invite/{token}")
    assert response.status_code == 200
    assert b"Accept the invitation" in response.content and b"Staging" in response.content
    assert not Membership.objects.filter(organization=org, user=person).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_an_existing_person_accepts_while_logged_in(login, org, admin, staging):
    person = User.objects.create_user(email="existing@example.com", password="x-pass-123456")
    invitation, token = invite(org, admin, email="Existing@example.com", role="admin", workspaces=[staging])
    client = login(person)
    response = client.post(f"/invite/{token}")
    assert response.status_code == 302
    assert response["Location"] == f"/o/{org.slug}/"
    assert Membership.objects.get(organization=org, user=person).role == Role.ADMIN
    joined = set(WorkspaceMembership.objects.filter(user=person).values_list("workspace__slug", flat=True))
    assert joined == {"default", "staging"}
    invitation.refresh_from_db()
    assert invitation.accepted_by == person and invitation.accepted_at is not None
    assert client.get(f"/o/{org.slug}/w/staging/").status_code == 200
    assert access.get_organization_for_user(person, org, access.CHANGE_ORG) == org


def test_the_link_works_once(login, org, admin):
    person = User.objects.create_user(email="existing@example.com", password="x-pass-123456")
    _invitation, token = invite(org, admin, email="existing@example.com")
    client = login(person)
    client.post(f"/invite/{token}")
    response = client.post(f"/invite/{token}")
    assert response.status_code == 410
    assert b"already accepted" in response.content


def test_another_logged_in_email_is_refused(login, org, admin, outsider):
    invitation, token = invite(org, admin, email="new@example.com")
    client = login(outsider)
    response = client.get(f"/invite/{token}")
    assert response.status_code == 403
    assert b"This invitation is for someone else" in response.content
    assert b"new@example.com" in response.content
    response = client.post(f"/invite/{token}")
    assert response.status_code == 403
    assert not Membership.objects.filter(organization=org, user=outsider).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_an_expired_invitation_is_refused(login, org, admin):
    person = User.objects.create_user(email="existing@example.com", password="x-pass-123456")
    invitation, token = invite(org, admin, email="existing@example.com")
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client = login(person)
    assert client.get(f"/invite/{token}").status_code == 410
    response = client.post(f"/invite/{token}")
    assert response.status_code == 410
    assert b"expired" in response.content
    assert not Membership.objects.filter(organization=org, user=person).exists()


def test_a_revoked_invitation_is_refused(login, org, admin):
    person = User.objects.create_user(email="existing@example.com", password="x-pass-123456")
    invitation, token = invite(org, admin, email="existing@example.com")
    Invitation.objects.filter(pk=invitation.pk).update(revoked_at=timezone.now())
    response = login(person).post(f"/invite/{token}")
    assert response.status_code == 410
    assert not Membership.objects.filter(organization=org, user=person).exists()


def test_an_unknown_token_is_404(browser, db):
    assert browser.get("/invite/not-a-real-token").status_code == 404
    assert browser.post("/invite/not-a-real-token").status_code == 404


def test_anonymous_post_goes_to_log_in(browser, org, admin):
    invitation, token = invite(org, admin)
    response = browser.post(f"/invite/{token}")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/invite/{token}"
    assert Invitation.objects.get().accepted_at is None


def test_a_new_person_signs_up_from_the_link_with_the_email_verified(browser, org, admin, staging, mailoutbox):
    _invitation, token = invite(org, admin, email="newbie@example.com", workspaces=[staging])
    page = browser.get(f"/invite/{token}")
    assert page.status_code == 200 and b"Create your account" in page.content
    import re

    signup_link = re.search(r'href="(/accounts/signup/\?email=[^"]*)"', page.content.decode()).group(1)
    signup = browser.get(signup_link.replace("&amp;", "&"))
    assert b'value="newbie@example.com"' in signup.content
    response = browser.post("/accounts/signup/", {"email": "newbie@example.com", "password1": "a-Long-pass-9876",
                                                  "password2": "a-Long-pass-9876"})
    assert response.status_code == 302
    person = User.objects.get(email="newbie@example.com")
    assert EmailAddress.objects.get(user=person).verified
    assert Membership.objects.get(organization=org, user=person).role == Role.MEMBER
    assert set(WorkspaceMembership.objects.filter(user=person).values_list("workspace__slug", flat=True)) == {
        "default", "staging"}
    assert not [m for m in mailoutbox if "newbie@example.com" in m.to]  # no verification mail needed
    landing = browser.get(response["Location"], follow=True)
    assert landing.redirect_chain[-1][0] == f"/o/{org.slug}/"
    assert landing.wsgi_request.user == person


def test_signing_up_with_another_address_needs_verification(browser, org, admin, mailoutbox):
    invite(org, admin, email="newbie@example.com")
    _invitation, token = invite(org, admin, email="other@example.com")
    browser.get(f"/invite/{token}")
    browser.post("/accounts/signup/", {"email": "sneaky@example.com", "password1": "a-Long-pass-9876",
                                       "password2": "a-Long-pass-9876"})
    person = User.objects.get(email="sneaky@example.com")
    assert not EmailAddress.objects.get(user=person).verified
    assert not Membership.objects.filter(user=person).exists()
    assert [m for m in mailoutbox if "sneaky@example.com" in m.to]


def test_an_existing_person_logs_in_from_the_link_then_accepts(browser, org, admin):
    person = User.objects.create_user(email="existing@example.com", password="x-pass-123456")
    EmailAddress.objects.create(user=person, email=person.email, verified=True, primary=True)
    _invitation, token = invite(org, admin, email="existing@example.com")
    page = browser.get(f"/invite/{token}")
    assert b"Log in to accept" in page.content
    response = browser.post(f"/accounts/login/?next=/invite/{token}",
                            {"login": "existing@example.com", "password": "x-pass-123456"})
    assert response.status_code == 302 and response["Location"] == f"/invite/{token}"
    assert not Membership.objects.filter(organization=org, user=person).exists()
    browser.post(f"/invite/{token}")
    assert Membership.objects.filter(organization=org, user=person).exists()
