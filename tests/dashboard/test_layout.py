"""The frame every page shares: header switchers, workspace tabs, flashes and CSRF."""

from django.test import Client
from django.urls import NoReverseMatch, reverse


def test_the_header_has_the_switchers_and_the_user_menu(login, org, member, workspace):
    page = login(member).get(f"/o/{org.slug}/w/{workspace.slug}/").content.decode()
    for marker in ('data-testid="org-switcher"', 'data-testid="workspace-switcher"', 'data-testid="user-menu"',
                   'href="/static/css/app.css"', "htmx.min.js", member.email):
        assert marker in page, marker
    # The workspace switcher offers the person's workspaces only.
    assert f'href="/o/{org.slug}/w/default/"' in page


def test_the_workspace_switcher_hides_workspaces_of_others(login, org, member, staging):
    page = login(member).get(f"/o/{org.slug}/").content.decode()
    assert f"/o/{org.slug}/w/staging/" not in page


def test_workspace_pages_have_the_tabs(login, org, admin, workspace):
    page = login(admin).get(f"/o/{org.slug}/w/{workspace.slug}/members").content.decode()
    for tab in ("Overview", "Members", "Settings"):
        assert f">{tab}</a>" in page
    for name, label in (("workspaces:keys", "Keys"), ("workspaces:activity", "Activity")):
        try:
            target = reverse(name, args=[org.slug, workspace.slug])
        except NoReverseMatch:
            assert f">{label}</a>" not in page
        else:
            assert f'href="{target}">{label}</a>' in page


def test_the_active_tab_is_marked(login, org, admin, workspace):
    page = login(admin).get(f"/o/{org.slug}/w/{workspace.slug}/settings").content.decode()
    assert 'class="tab is-active" href="/o/acme/w/production/settings">Settings' in page


def test_flash_messages_show_after_an_action(login, org, admin, staging):
    response = login(admin).post(f"/o/{org.slug}/w/staging/delete", {"confirm_slug": "staging"}, follow=True)
    assert "Deleted the workspace Staging." in response.content.decode()


def test_posts_without_a_csrf_token_are_refused(org, admin, staging):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    response = client.post(f"/o/{org.slug}/w/staging/delete", {"confirm_slug": "staging"})
    assert response.status_code == 403
    assert staging.__class__.objects.filter(pk=staging.pk).exists()


def test_every_form_carries_a_csrf_token(login, org, admin, workspace):
    client = login(admin)
    for url in (f"/o/{org.slug}/members", f"/o/{org.slug}/invitations", f"/o/{org.slug}/w/new",
                f"/o/{org.slug}/w/{workspace.slug}/members", f"/o/{org.slug}/w/{workspace.slug}/settings"):
        page = client.get(url).content.decode()
        assert page.count('method="post"') == page.count("csrfmiddlewaretoken"), url


def test_pages_fit_small_screens(browser, db):
    page = browser.get("/accounts/login/").content.decode()
    assert 'name="viewport"' in page


def test_refusals_render_in_the_layout_with_the_reason(login, org, member, outsider):
    refused = login(member).get(f"/o/{org.slug}/invitations")
    assert refused.status_code == 403
    assert "Only organization admins can do this." in refused.content.decode()
    assert 'data-testid="user-menu"' in refused.content.decode()
    missing = login(outsider).get(f"/o/{org.slug}/")
    assert missing.status_code == 404
    assert "Not found" in missing.content.decode() and org.name not in missing.content.decode()


def test_pages_have_an_icon_and_the_browser_default_path_finds_it(login, org, member, workspace):
    page = login(member).get(f"/o/{org.slug}/w/{workspace.slug}/").content.decode()
    assert 'rel="icon" type="image/svg+xml" href="/static/favicon.svg"' in page
    response = Client().get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/favicon.svg"
