from decimal import Decimal

from workspaces.models import AuditLogEntry, Workspace

from .conftest import assert_login_redirect


def url(org, ws):
    return f"/o/{org.slug}/w/{ws.slug}/settings"


def form_data(**overrides):
    data = {"name": "Production", "slug": "production", "description": "Live traffic",
            "default_text_model": "", "default_image_model": "", "default_provider_sort": "latency",
            "disabled_server_tools": "openrouter:web_search, openrouter:web_search",
            "io_logging_sampling_rate": "0.5", "is_observability_broadcast_enabled": "on"}
    data.update(overrides)
    return data


def test_it_requires_login(browser, org, workspace):
    assert_login_redirect(browser.get(url(org, workspace)))
    assert_login_redirect(browser.post(url(org, workspace), form_data()))


def test_it_is_404_for_outsiders(login, org, workspace, outsider):
    assert login(outsider).get(url(org, workspace)).status_code == 404
    assert login(outsider).post(url(org, workspace), form_data()).status_code == 404
    assert Workspace.objects.get(pk=workspace.pk).default_provider_sort is None


def test_it_is_403_for_members(login, org, workspace, member):
    assert login(member).get(url(org, workspace)).status_code == 403
    assert login(member).post(url(org, workspace), form_data()).status_code == 403
    assert Workspace.objects.get(pk=workspace.pk).default_provider_sort is None


def test_admins_see_the_form(login, org, workspace, admin):
    response = login(admin).get(url(org, workspace))
    assert response.status_code == 200
    assert b'name="default_provider_sort"' in response.content


def test_admins_save_the_settings(login, org, workspace, admin):
    from routing.models import CatalogModel

    CatalogModel.objects.create(slug="acme/chat", name="Acme Chat", context_length=8000)
    response = login(admin).post(url(org, workspace), form_data(default_text_model="acme/chat"))
    assert response.status_code == 302
    workspace.refresh_from_db()
    assert workspace.description == "Live traffic"
    assert workspace.default_text_model == "acme/chat"
    assert workspace.default_provider_sort == "latency"
    assert workspace.disabled_server_tools == ["openrouter:web_search"]
    assert workspace.io_logging_sampling_rate == Decimal("0.5")
    assert workspace.is_observability_broadcast_enabled and not workspace.is_observability_io_logging_enabled
    entry = AuditLogEntry.objects.get(object_type="Workspace", action="update")
    assert entry.actor_user == admin and entry.changes["default_provider_sort"] == "latency"


def test_renaming_the_slug_moves_the_pages(login, org, workspace, admin):
    response = login(admin).post(url(org, workspace), form_data(slug="prod"))
    assert response["Location"] == f"/o/{org.slug}/w/prod/settings"
    assert Workspace.objects.get(pk=workspace.pk).slug == "prod"


def test_it_shows_errors_beside_the_fields(login, org, workspace, admin, staging):
    client = login(admin)
    for field, value in [("io_logging_sampling_rate", "2"), ("default_text_model", "no/such-model"),
                         ("default_provider_sort", "fastest"), ("slug", "staging"), ("slug", "Bad Slug")]:
        response = client.post(url(org, workspace), form_data(**{field: value}))
        assert response.status_code == 400, field
        assert response.context["form"].errors.get(field), field
    workspace.refresh_from_db()
    assert (workspace.slug, workspace.default_provider_sort) == ("production", None)
