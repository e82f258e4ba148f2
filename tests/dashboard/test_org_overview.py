from .conftest import assert_login_redirect


def test_it_requires_login(browser, org):
    assert_login_redirect(browser.get(f"/o/{org.slug}/"))


def test_it_is_404_for_outsiders(login, org, outsider):
    assert login(outsider).get(f"/o/{org.slug}/").status_code == 404


def test_it_is_404_for_an_unknown_organization(login, owner, org):
    assert login(owner).get("/o/no-such-org/").status_code == 404


def test_members_see_only_their_workspaces(login, org, member, staging):
    response = login(member).get(f"/o/{org.slug}/")
    assert response.status_code == 200
    names = [w.name for w in response.context["workspaces"]]
    assert names == ["Default", "Production"]
    assert b"New workspace" not in response.content


def test_admins_see_every_workspace(login, org, admin, staging):
    response = login(admin).get(f"/o/{org.slug}/")
    assert response.status_code == 200
    assert [w.name for w in response.context["workspaces"]] == ["Default", "Production", "Staging"]
    assert b"New workspace" in response.content


def test_it_counts_active_keys(login, org, owner, workspace, inference_key):
    from workspaces.services import create_api_key

    disabled, _ = create_api_key(organization=org, workspace=workspace, name="Off", created_by=owner)
    disabled.disabled = True
    disabled.save()
    response = login(owner).get(f"/o/{org.slug}/")
    counts = {w.slug: w.active_key_count for w in response.context["workspaces"]}
    assert counts == {"default": 0, "production": 1}
