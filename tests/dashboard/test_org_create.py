from workspaces import access
from workspaces.models import AuditLogEntry, Membership, Organization, Role, User, Workspace, WorkspaceMembership

from .conftest import assert_login_redirect, verify_email


def test_it_requires_login(browser, db):
    assert_login_redirect(browser.get("/orgs/new"))
    assert_login_redirect(browser.post("/orgs/new", {"name": "Nope"}))
    assert not Organization.objects.exists()


def test_it_shows_the_form(db, login):
    person = verify_email(User.objects.create_user(email="new@example.com", password="x-pass-123456"))
    response = login(person).get("/orgs/new")
    assert response.status_code == 200
    assert b"Create your organization" in response.content


def test_it_creates_the_organization_with_its_default_workspace(db, login):
    person = verify_email(User.objects.create_user(email="new@example.com", password="x-pass-123456"))
    response = login(person).post("/orgs/new", {"name": "Globex Corp"})
    org = Organization.objects.get(name="Globex Corp")
    assert response.status_code == 302
    assert response["Location"] == f"/o/{org.slug}/"
    assert org.owner == person
    assert Membership.objects.get(organization=org, user=person).role == Role.ADMIN
    default = Workspace.objects.get(organization=org, is_default=True)
    assert WorkspaceMembership.objects.filter(workspace=default, user=person, role=Role.ADMIN).exists()
    assert access.get_organization_for_user(person, org.slug, access.CHANGE_ORG) == org
    assert AuditLogEntry.objects.filter(organization=org, object_type="Organization", action="create",
                                        actor_user=person).exists()


def test_it_shows_errors_beside_the_field(db, login):
    person = verify_email(User.objects.create_user(email="new@example.com", password="x-pass-123456"))
    response = login(person).post("/orgs/new", {"name": "   "})
    assert response.status_code == 400
    assert b'class="error"' in response.content
    assert not Organization.objects.exists()


def test_it_needs_a_verified_email(db, login):
    person = User.objects.create_user(email="unverified@example.com", password="x-pass-123456")
    response = login(person).post("/orgs/new", {"name": "Nope"})
    assert response.status_code == 400
    assert b"Verify your e-mail" in response.content
    assert not Organization.objects.exists()
