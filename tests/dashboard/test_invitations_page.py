from workspaces.services import invite_member

from .conftest import assert_login_redirect


def test_it_requires_login(browser, org):
    assert_login_redirect(browser.get(f"/o/{org.slug}/invitations"))


def test_it_is_404_for_outsiders(login, org, outsider):
    assert login(outsider).get(f"/o/{org.slug}/invitations").status_code == 404


def test_it_is_403_for_members(login, org, member):
    assert login(member).get(f"/o/{org.slug}/invitations").status_code == 403


def test_admins_see_pending_invitations_and_the_form(login, org, admin, staging):
    invite_member(org, email="new@example.com", role="member", workspaces=[staging], by_user=admin)
    response = login(admin).get(f"/o/{org.slug}/invitations")
    assert response.status_code == 200
    page = response.content.decode()
    assert "new@example.com" in page and "Staging" in page
    assert 'name="email"' in page and 'name="workspaces"' in page
