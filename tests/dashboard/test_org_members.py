from .conftest import assert_login_redirect


def test_it_requires_login(browser, org):
    assert_login_redirect(browser.get(f"/o/{org.slug}/members"))


def test_it_is_404_for_outsiders(login, org, outsider):
    assert login(outsider).get(f"/o/{org.slug}/members").status_code == 404


def test_members_see_the_list_without_controls(login, org, owner, admin, member):
    response = login(member).get(f"/o/{org.slug}/members")
    assert response.status_code == 200
    page = response.content.decode()
    for person in (owner, admin, member):
        assert person.email in page
    assert "/role" not in page and "/remove" not in page


def test_admins_get_controls_except_for_the_owner(login, org, owner, admin, member):
    response = login(admin).get(f"/o/{org.slug}/members")
    page = response.content.decode()
    assert f"/o/{org.slug}/members/{member.pk}/role" in page
    assert f"/o/{org.slug}/members/{member.pk}/remove" in page
    assert f"/o/{org.slug}/members/{owner.pk}/role" not in page
    assert f"/o/{org.slug}/members/{owner.pk}/remove" not in page
