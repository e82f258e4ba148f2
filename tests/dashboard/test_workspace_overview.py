from .conftest import assert_login_redirect


def url(org, ws):
    return f"/o/{org.slug}/w/{ws.slug}/"


def test_it_requires_login(browser, org, workspace):
    assert_login_redirect(browser.get(url(org, workspace)))


def test_it_is_404_for_outsiders(login, org, workspace, outsider):
    assert login(outsider).get(url(org, workspace)).status_code == 404


def test_it_is_404_for_members_not_in_the_workspace(login, org, member, staging):
    assert login(member).get(url(org, staging)).status_code == 404


def test_it_is_404_for_a_workspace_of_another_organization(login, org, member, outsider):
    elsewhere = outsider.owned_organizations.get()
    assert login(member).get(f"/o/{org.slug}/w/default/").status_code == 200
    assert login(member).get(f"/o/{elsewhere.slug}/w/default/").status_code == 404


def test_members_see_their_workspace(login, org, member, workspace, inference_key):
    response = login(member).get(url(org, workspace))
    assert response.status_code == 200
    assert response.context["active_key_count"] == 1
    assert response.context["my_active_key_count"] == 1
    page = response.content.decode()
    assert "Production" in page
    assert f"/o/{org.slug}/w/production/members" in page


def test_the_workspace_can_be_named_by_its_id(login, org, member, workspace):
    assert login(member).get(f"/o/{org.slug}/w/{workspace.pk}/").status_code == 200
