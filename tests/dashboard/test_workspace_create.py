from workspaces import access
from workspaces.models import AuditLogEntry, Workspace, WorkspaceMembership

from .conftest import assert_login_redirect


def url(org):
    return f"/o/{org.slug}/w/new"


DATA = {"name": "Team Search", "slug": "team-search", "description": "Search experiments"}


def test_it_requires_login(browser, org):
    assert_login_redirect(browser.get(url(org)))
    assert_login_redirect(browser.post(url(org), DATA))
    assert not Workspace.objects.filter(slug="team-search").exists()


def test_it_is_404_for_outsiders(login, org, outsider):
    client = login(outsider)
    assert client.get(url(org)).status_code == 404
    assert client.post(url(org), DATA).status_code == 404
    assert not Workspace.objects.filter(slug="team-search").exists()


def test_it_is_403_for_members(login, org, member):
    client = login(member)
    assert client.get(url(org)).status_code == 403
    assert client.post(url(org), DATA).status_code == 403
    assert not Workspace.objects.filter(slug="team-search").exists()


def test_admins_create_a_workspace(login, org, owner, admin, member):
    response = login(admin).post(url(org), DATA)
    workspace = Workspace.objects.get(organization=org, slug="team-search")
    assert response.status_code == 302
    assert response["Location"] == f"/o/{org.slug}/w/team-search/"
    assert (workspace.name, workspace.description, workspace.created_by) == ("Team Search", "Search experiments",
                                                                             admin)
    assert WorkspaceMembership.objects.filter(workspace=workspace, user=admin, role="admin").exists()
    # Every admin (not only its creator) may manage it; members may not even see it.
    assert access.get_workspace_for_user(owner, org, "team-search", access.CHANGE_WORKSPACE) == workspace
    assert workspace not in access.workspaces_for_user(member, org)
    assert AuditLogEntry.objects.filter(organization=org, object_type="Workspace", action="create",
                                        actor_user=admin).exists()


def test_it_shows_a_bad_slug_beside_the_field(login, org, admin):
    response = login(admin).post(url(org), {**DATA, "slug": "Team_Search"})
    assert response.status_code == 400
    assert response.context["form"].errors["slug"]
    assert b'class="error"' in response.content
    assert not Workspace.objects.filter(name="Team Search").exists()


def test_it_refuses_a_slug_in_use(login, org, admin, workspace):
    response = login(admin).post(url(org), {**DATA, "slug": workspace.slug})
    assert response.status_code == 400
    assert "already exists" in response.context["form"].errors["slug"][0]
    assert Workspace.objects.filter(organization=org, slug=workspace.slug).count() == 1
