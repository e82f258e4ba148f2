from workspaces import access
from workspaces.models import WorkspaceMembership

from .conftest import assert_login_redirect, flashes


def page(org, ws):
    return f"/o/{org.slug}/w/{ws.slug}/members"


def add(org, ws):
    return f"/o/{org.slug}/w/{ws.slug}/members/add"


def remove(org, ws, user):
    return f"/o/{org.slug}/w/{ws.slug}/members/{user.pk}/remove"


def is_in(ws, user):
    return WorkspaceMembership.objects.filter(workspace=ws, user=user).exists()


def test_the_page_requires_login(browser, org, workspace):
    assert_login_redirect(browser.get(page(org, workspace)))


def test_the_page_is_404_for_outsiders_and_non_members(login, org, workspace, staging, outsider, member):
    assert login(outsider).get(page(org, workspace)).status_code == 404
    assert login(member).get(page(org, staging)).status_code == 404


def test_members_see_who_is_in_their_workspace(login, org, workspace, owner, admin, member):
    response = login(member).get(page(org, workspace))
    assert response.status_code == 200
    text = response.content.decode()
    assert owner.email in text and admin.email in text and member.email in text
    assert "/members/add" not in text and "/remove" not in text


def test_adding_requires_login(browser, org, staging, member):
    assert_login_redirect(browser.post(add(org, staging), {"user": str(member.pk)}))
    assert not is_in(staging, member)


def test_adding_is_404_for_outsiders(login, org, staging, member, outsider):
    assert login(outsider).post(add(org, staging), {"user": str(member.pk)}).status_code == 404
    assert not is_in(staging, member)


def test_adding_is_403_for_members(login, org, workspace, admin, member):
    from workspaces.services import create_organization  # noqa: F401

    WorkspaceMembership.objects.filter(workspace=workspace, user=admin).delete()
    assert login(member).post(add(org, workspace), {"user": str(admin.pk)}).status_code == 403
    assert not is_in(workspace, admin)


def test_admins_add_a_member_who_then_sees_the_workspace(login, org, admin, member, staging):
    response = login(admin).post(add(org, staging), {"user": str(member.pk)})
    assert response.status_code == 302
    assert WorkspaceMembership.objects.get(workspace=staging, user=member).role == "member"
    assert access.get_workspace_for_user(member, org, "staging") == staging
    assert login(member).get(f"/o/{org.slug}/w/staging/").status_code == 200


def test_only_organization_members_can_be_added(login, org, admin, staging, outsider):
    response = login(admin).post(add(org, staging), {"user": str(outsider.pk)})
    assert response.status_code == 400
    assert b'class="error"' in response.content
    assert not is_in(staging, outsider)


def test_removing_requires_login(browser, org, workspace, member):
    assert_login_redirect(browser.post(remove(org, workspace, member)))
    assert is_in(workspace, member)


def test_removing_is_404_for_outsiders(login, org, workspace, member, outsider):
    assert login(outsider).post(remove(org, workspace, member)).status_code == 404
    assert is_in(workspace, member)


def test_removing_is_403_for_members(login, org, workspace, admin, member):
    assert login(member).post(remove(org, workspace, admin)).status_code == 403
    assert is_in(workspace, admin)


def test_admins_remove_a_member_who_then_gets_404(login, org, admin, member, workspace):
    response = login(admin).post(remove(org, workspace, member))
    assert response.status_code == 302
    assert not is_in(workspace, member)
    assert login(member).get(f"/o/{org.slug}/w/{workspace.slug}/").status_code == 404


def test_removal_is_refused_while_the_member_holds_active_keys(login, org, admin, member, workspace,
                                                               inference_key):
    response = login(admin).post(remove(org, workspace, member))
    assert response.status_code == 302
    assert any("active API keys" in m for m in flashes(response))
    assert is_in(workspace, member)


def test_nobody_leaves_the_default_workspace_while_in_the_organization(login, org, admin, member):
    default = org.default_workspace
    response = login(admin).post(remove(org, default, member))
    assert any("Default workspace" in m for m in flashes(response))
    assert is_in(default, member)
