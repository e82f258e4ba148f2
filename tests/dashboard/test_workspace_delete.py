from workspaces.models import ApiKey, AuditLogEntry, Workspace

from .conftest import assert_login_redirect, flashes


def url(org, ws):
    return f"/o/{org.slug}/w/{ws.slug}/delete"


def test_it_requires_login(browser, org, staging):
    assert_login_redirect(browser.post(url(org, staging), {"confirm_slug": "staging"}))
    assert Workspace.objects.filter(pk=staging.pk).exists()


def test_it_is_404_for_outsiders(login, org, staging, outsider):
    assert login(outsider).post(url(org, staging), {"confirm_slug": "staging"}).status_code == 404
    assert Workspace.objects.filter(pk=staging.pk).exists()


def test_it_is_403_for_members(login, org, workspace, member):
    assert login(member).post(url(org, workspace), {"confirm_slug": "production"}).status_code == 403
    assert Workspace.objects.filter(pk=workspace.pk).exists()


def test_admins_delete_a_workspace(login, org, admin, staging):
    response = login(admin).post(url(org, staging), {"confirm_slug": "staging"})
    assert response.status_code == 302
    assert response["Location"] == f"/o/{org.slug}/"
    assert not Workspace.objects.filter(pk=staging.pk).exists()
    assert AuditLogEntry.objects.filter(object_type="Workspace", action="delete", actor_user=admin).exists()
    assert login(admin).get(f"/o/{org.slug}/w/staging/").status_code == 404


def test_it_needs_the_slug_typed_to_confirm(login, org, admin, staging):
    response = login(admin).post(url(org, staging), {"confirm_slug": "nope"})
    assert any("to confirm" in m for m in flashes(response))
    assert Workspace.objects.filter(pk=staging.pk).exists()


def test_it_is_refused_while_the_workspace_has_active_keys(login, org, admin, workspace, inference_key):
    response = login(admin).post(url(org, workspace), {"confirm_slug": "production"})
    assert response.status_code == 302
    assert any("1 active API key" in m for m in flashes(response))
    assert Workspace.objects.filter(pk=workspace.pk).exists()
    assert ApiKey.objects.filter(pk=inference_key[0].pk, disabled=False).exists()


def test_the_default_workspace_is_not_deleted_from_the_dashboard(login, org, owner):
    default = org.default_workspace
    response = login(owner).post(url(org, default), {"confirm_slug": "default"})
    assert any("cannot be deleted" in m for m in flashes(response))
    assert Workspace.objects.filter(pk=default.pk).exists()
