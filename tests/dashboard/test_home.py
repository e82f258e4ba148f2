from workspaces.models import Organization


def test_it_sends_anonymous_people_to_log_in(browser):
    response = browser.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"


def test_it_sends_people_without_an_organization_to_create_one(db, login):
    from workspaces.models import User

    lonely = User.objects.create_user(email="lonely@example.com", password="x-pass-123456")
    response = login(lonely).get("/")
    assert response.status_code == 302
    assert response["Location"] == "/orgs/new"


def test_it_opens_the_current_organization(login, org, owner):
    response = login(owner).get("/")
    assert response.status_code == 302
    assert response["Location"] == f"/o/{org.slug}/"


def test_it_remembers_the_last_organization_visited(login, org, owner):
    from workspaces.services import create_organization

    other = create_organization("Zeta", owner=owner)
    client = login(owner)
    assert client.get(f"/o/{other.slug}/").status_code == 200
    assert client.get("/")["Location"] == f"/o/{other.slug}/"
    assert Organization.objects.filter(slug=other.slug).exists()
