from workspaces.context_processors import SESSION_ORG_KEY
from workspaces.services import create_organization

from .conftest import assert_login_redirect


def test_it_requires_login(browser, org):
    assert_login_redirect(browser.post("/switch-org", {"org": org.slug}))


def test_it_is_404_for_an_organization_of_others(login, org, outsider):
    client = login(outsider)
    response = client.post("/switch-org", {"org": org.slug})
    assert response.status_code == 404
    assert client.session.get(SESSION_ORG_KEY) != str(org.pk)


def test_it_refuses_get(login, org, owner):
    assert login(owner).get("/switch-org").status_code == 405


def test_it_switches_and_remembers(login, org, member):
    second = create_organization("Second", owner=member)
    client = login(member)
    response = client.post("/switch-org", {"org": second.slug})
    assert response.status_code == 302
    assert response["Location"] == f"/o/{second.slug}/"
    assert client.session[SESSION_ORG_KEY] == str(second.pk)
    assert client.get("/")["Location"] == f"/o/{second.slug}/"
    response = client.post("/switch-org", {"org": org.slug})
    assert client.session[SESSION_ORG_KEY] == str(org.pk)


def test_the_header_lists_every_organization_of_the_person(login, org, member, outsider):
    create_organization("Second", owner=member)
    page = login(member).get(f"/o/{org.slug}/").content.decode()
    assert 'data-testid="org-switcher"' in page
    assert "Second" in page and "Acme" in page
    assert "Elsewhere" not in page
