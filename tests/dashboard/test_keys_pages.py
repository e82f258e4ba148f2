"""The keys pages: inference keys per workspace (members their own, admins all), management keys (admins)."""

from decimal import Decimal

import pytest

from workspaces import keys as key_format
from workspaces.models import ApiKey, AuditLogEntry, KeyKind
from workspaces.services import create_api_key

from .conftest import assert_login_redirect


def keys_url(org, workspace):
    return f"/o/{org.slug}/w/{workspace.slug}/keys"


def action_url(org, workspace, api_key, action):
    return f"{keys_url(org, workspace)}/{api_key.hash}/{action}"


def mgmt_url(org, suffix=""):
    return f"/o/{org.slug}/management-keys{suffix}"


def plaintext_matches(api_key: ApiKey, plaintext: str) -> bool:
    kind, lookup_id, secret = key_format.parse(plaintext)
    return (kind == api_key.kind and lookup_id == api_key.lookup_id
            and key_format.secret_matches(secret, api_key.pepper_id, api_key.digest))


@pytest.fixture
def admin_key(org, workspace, admin):
    return create_api_key(organization=org, workspace=workspace, name="Admin key", created_by=admin)[0]


@pytest.fixture
def member_key(inference_key):
    return inference_key[0]


# --- the list ------------------------------------------------------------------------------------------------

def test_it_sends_anonymous_people_to_log_in(browser, org, workspace):
    assert_login_redirect(browser.get(keys_url(org, workspace)))
    assert_login_redirect(browser.post(f"{keys_url(org, workspace)}/new", {"name": "Nope"}))
    assert not ApiKey.objects.filter(name="Nope").exists()


def test_it_hides_the_page_from_outsiders(login, org, workspace, outsider):
    assert login(outsider).get(keys_url(org, workspace)).status_code == 404


def test_it_hides_workspaces_the_member_is_not_in(login, org, member, staging):
    assert login(member).get(keys_url(org, staging)).status_code == 404


def test_it_shows_members_only_their_own_keys(login, org, workspace, member, member_key, admin_key):
    response = login(member).get(keys_url(org, workspace))
    assert response.status_code == 200
    body = response.content.decode()
    assert member_key.label in body and "Member key" in body
    assert admin_key.label not in body


def test_it_shows_admins_every_key_of_the_workspace(login, org, workspace, admin, member_key, admin_key):
    response = login(admin).get(keys_url(org, workspace))
    assert response.status_code == 200
    body = response.content.decode()
    assert member_key.label in body and admin_key.label in body
    assert "member@example.com" in body


def test_it_shows_limit_usage_and_state(login, org, workspace, member):
    from billing.models import Generation

    api_key = create_api_key(organization=org, workspace=workspace, name="Limited", created_by=member,
                             limit=Decimal("5"), limit_reset="monthly")[0]
    Generation.objects.create(id="gen-keys-usage", organization=org, workspace=workspace, api_key=api_key,
                              model="test/chat", usage=Decimal("1.25"), total_cost=Decimal("1.25"))
    off = create_api_key(organization=org, workspace=workspace, name="Off", created_by=member)[0]
    ApiKey.objects.filter(pk=off.pk).update(disabled=True)
    body = login(member).get(keys_url(org, workspace)).content.decode()
    assert "$5.00 / monthly" in body
    assert "$3.7500 left" in body
    assert "$1.2500" in body
    assert "badge-muted\">disabled" in body


# --- creating ------------------------------------------------------------------------------------------------

def test_it_creates_a_key_and_shows_it_once(login, org, workspace, member):
    client = login(member)
    response = client.post(f"{keys_url(org, workspace)}/new", {
        "name": "CI", "limit": "12.50", "limit_reset": "weekly", "expires_at": "2099-01-02T03:04"})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    api_key = ApiKey.objects.get(name="CI")
    assert (api_key.workspace, api_key.created_by, api_key.kind) == (workspace, member, KeyKind.INFERENCE)
    assert api_key.limit == Decimal("12.5") and api_key.limit_reset == "weekly"
    assert api_key.expires_at.isoformat() == "2099-01-02T03:04:00+00:00"
    plaintext = response.context["plaintext"]
    assert plaintext_matches(api_key, plaintext)
    assert plaintext in response.content.decode()
    assert AuditLogEntry.objects.filter(organization=org, action="create", object_id=str(api_key.pk),
                                        actor_user=member).exists()
    # Never again: not on the list, not in the audit log.
    assert plaintext not in client.get(keys_url(org, workspace)).content.decode()
    assert plaintext not in str(list(AuditLogEntry.objects.values_list("changes", flat=True)))


def test_it_creates_a_key_without_limit_or_expiry(login, org, workspace, member):
    response = login(member).post(f"{keys_url(org, workspace)}/new", {"name": "Plain", "limit": "",
                                                                      "limit_reset": "", "expires_at": ""})
    assert response.status_code == 201
    api_key = ApiKey.objects.get(name="Plain")
    assert (api_key.limit, api_key.limit_reset, api_key.expires_at) == (None, None, None)


@pytest.mark.parametrize("data, field", [
    ({"name": "  "}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "Bad", "limit": "abc"}, "limit"),
    ({"name": "Bad", "limit": "-1"}, "limit"),
    ({"name": "Bad", "limit": "NaN"}, "limit"),
    ({"name": "Bad", "limit": "1e40"}, "limit"),
    ({"name": "Bad", "limit_reset": "daily"}, "limit_reset"),
    ({"name": "Bad", "limit": "1", "limit_reset": "hourly"}, "limit_reset"),
    ({"name": "Bad", "expires_at": "tomorrow"}, "expires_at"),
    ({"name": "Bad", "expires_at": "2001-01-01T00:00"}, "expires_at"),
])
def test_it_refuses_bad_input_beside_the_field(login, org, workspace, member, data, field):
    response = login(member).post(f"{keys_url(org, workspace)}/new", data)
    assert response.status_code == 400
    assert response.context["form"].errors.get(field)
    assert not ApiKey.objects.filter(workspace=workspace, created_by=member).exists()


def test_it_refuses_creation_to_outsiders(login, org, workspace, outsider):
    assert login(outsider).post(f"{keys_url(org, workspace)}/new", {"name": "Sneaky"}).status_code == 404
    assert not ApiKey.objects.filter(name="Sneaky").exists()


def test_it_refuses_creation_in_a_workspace_the_member_is_not_in(login, org, member, staging):
    assert login(member).post(f"{keys_url(org, staging)}/new", {"name": "Sneaky"}).status_code == 404
    assert not ApiKey.objects.filter(name="Sneaky").exists()


# --- disable, enable, delete --------------------------------------------------------------------------------------

def test_it_lets_members_disable_enable_and_delete_their_own_key(login, org, workspace, member, member_key):
    client = login(member)
    response = client.post(action_url(org, workspace, member_key, "disable"))
    assert response.status_code == 302 and response["Location"] == keys_url(org, workspace)
    member_key.refresh_from_db()
    assert member_key.disabled
    assert AuditLogEntry.objects.filter(object_id=str(member_key.pk), action="update", actor_user=member,
                                        changes={"disabled": True}).exists()

    assert client.post(action_url(org, workspace, member_key, "enable")).status_code == 302
    member_key.refresh_from_db()
    assert not member_key.disabled
    assert AuditLogEntry.objects.filter(object_id=str(member_key.pk), changes={"disabled": False}).exists()

    assert client.post(action_url(org, workspace, member_key, "delete")).status_code == 302
    assert not ApiKey.objects.filter(pk=member_key.pk).exists()
    assert AuditLogEntry.objects.filter(object_id=str(member_key.pk), action="delete", actor_user=member).exists()


@pytest.mark.parametrize("action", ["disable", "enable", "delete"])
def test_it_forbids_members_to_touch_someone_elses_key(login, org, workspace, member, admin_key, action):
    response = login(member).post(action_url(org, workspace, admin_key, action))
    assert response.status_code == 403
    admin_key.refresh_from_db()
    assert not admin_key.disabled
    assert not AuditLogEntry.objects.filter(object_id=str(admin_key.pk)).exists()


@pytest.mark.parametrize("action", ["disable", "enable", "delete"])
def test_it_hides_keys_from_outsiders(login, org, workspace, outsider, member_key, action):
    assert login(outsider).post(action_url(org, workspace, member_key, action)).status_code == 404
    member_key.refresh_from_db()
    assert not member_key.disabled


@pytest.mark.parametrize("action", ["disable", "enable", "delete"])
def test_it_sends_anonymous_actions_to_log_in(browser, org, workspace, member_key, action):
    assert_login_redirect(browser.post(action_url(org, workspace, member_key, action)))
    assert ApiKey.objects.filter(pk=member_key.pk, disabled=False).exists()


def test_it_lets_admins_act_on_any_key_of_the_workspace(login, org, workspace, admin, member_key):
    client = login(admin)
    assert client.post(action_url(org, workspace, member_key, "disable")).status_code == 302
    member_key.refresh_from_db()
    assert member_key.disabled
    assert client.post(action_url(org, workspace, member_key, "delete")).status_code == 302
    assert not ApiKey.objects.filter(pk=member_key.pk).exists()
    assert AuditLogEntry.objects.filter(object_id=str(member_key.pk), action="delete", actor_user=admin).exists()


def test_it_finds_a_key_only_in_its_own_workspace(login, org, owner, staging, member_key):
    # The key lives in Production; through Staging's URL it does not exist.
    response = login(owner).post(action_url(org, staging, member_key, "disable"))
    assert response.status_code == 404
    member_key.refresh_from_db()
    assert not member_key.disabled


def test_it_takes_actions_only_by_post(login, org, workspace, member, member_key):
    client = login(member)
    for action in ("disable", "enable", "delete"):
        assert client.get(action_url(org, workspace, member_key, action)).status_code == 405
    assert client.get(f"{keys_url(org, workspace)}/new").status_code == 405
    assert ApiKey.objects.filter(pk=member_key.pk, disabled=False).exists()


# --- management keys ----------------------------------------------------------------------------------------------

@pytest.fixture
def mgmt_key(management_key):
    return management_key[0]


def test_it_sends_anonymous_people_to_log_in_for_management_keys(browser, org, mgmt_key):
    assert_login_redirect(browser.get(mgmt_url(org)))
    assert_login_redirect(browser.post(mgmt_url(org, "/new"), {"name": "Nope"}))
    assert_login_redirect(browser.post(mgmt_url(org, f"/{mgmt_key.hash}/delete")))
    assert ApiKey.objects.filter(pk=mgmt_key.pk).exists() and not ApiKey.objects.filter(name="Nope").exists()


def test_it_hides_management_keys_from_outsiders(login, org, outsider, mgmt_key):
    client = login(outsider)
    assert client.get(mgmt_url(org)).status_code == 404
    assert client.post(mgmt_url(org, "/new"), {"name": "Nope"}).status_code == 404
    assert client.post(mgmt_url(org, f"/{mgmt_key.hash}/disable")).status_code == 404
    mgmt_key.refresh_from_db()
    assert not mgmt_key.disabled and not ApiKey.objects.filter(name="Nope").exists()


def test_it_forbids_management_keys_to_members(login, org, member, mgmt_key):
    client = login(member)
    assert client.get(mgmt_url(org)).status_code == 403
    assert client.post(mgmt_url(org, "/new"), {"name": "Nope"}).status_code == 403
    for action in ("disable", "enable", "delete"):
        assert client.post(mgmt_url(org, f"/{mgmt_key.hash}/{action}")).status_code == 403
    mgmt_key.refresh_from_db()
    assert not mgmt_key.disabled and not ApiKey.objects.filter(name="Nope").exists()


def test_it_lists_management_keys_to_admins(login, org, admin, mgmt_key, member_key):
    response = login(admin).get(mgmt_url(org))
    assert response.status_code == 200
    body = response.content.decode()
    assert mgmt_key.label in body
    assert member_key.label not in body


def test_it_creates_a_management_key_and_shows_it_once(login, org, admin):
    client = login(admin)
    response = client.post(mgmt_url(org, "/new"), {"name": "Deploys", "expires_at": ""})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    api_key = ApiKey.objects.get(name="Deploys")
    assert (api_key.kind, api_key.workspace, api_key.created_by) == (KeyKind.MANAGEMENT, None, admin)
    plaintext = response.context["plaintext"]
    assert plaintext.startswith("sk-ows-mgmt-v1-") and plaintext_matches(api_key, plaintext)
    assert AuditLogEntry.objects.filter(organization=org, action="create", object_id=str(api_key.pk),
                                        actor_user=admin).exists()
    assert plaintext not in client.get(mgmt_url(org)).content.decode()


def test_it_refuses_a_bad_management_key_form(login, org, admin):
    response = login(admin).post(mgmt_url(org, "/new"), {"name": "Late", "expires_at": "2001-01-01T00:00"})
    assert response.status_code == 400
    assert response.context["form"].errors["expires_at"]
    assert not ApiKey.objects.filter(name="Late").exists()


def test_it_disables_enables_and_deletes_management_keys(login, org, admin, mgmt_key):
    client = login(admin)
    assert client.post(mgmt_url(org, f"/{mgmt_key.hash}/disable")).status_code == 302
    mgmt_key.refresh_from_db()
    assert mgmt_key.disabled
    assert client.post(mgmt_url(org, f"/{mgmt_key.hash}/enable")).status_code == 302
    mgmt_key.refresh_from_db()
    assert not mgmt_key.disabled
    response = client.post(mgmt_url(org, f"/{mgmt_key.hash}/delete"))
    assert response.status_code == 302 and response["Location"] == mgmt_url(org)
    assert not ApiKey.objects.filter(pk=mgmt_key.pk).exists()
    actions = set(AuditLogEntry.objects.filter(object_id=str(mgmt_key.pk), actor_user=admin)
                  .values_list("action", flat=True))
    assert actions == {"update", "delete"}


def test_it_does_not_reach_inference_keys_through_the_management_pages(login, org, admin, member_key):
    assert login(admin).post(mgmt_url(org, f"/{member_key.hash}/delete")).status_code == 404
    assert ApiKey.objects.filter(pk=member_key.pk).exists()


def test_it_links_management_keys_for_admins_only(login, org, admin, member):
    assert f'href="{mgmt_url(org)}">Management keys</a>' in login(admin).get(f"/o/{org.slug}/").content.decode()
    assert "Management keys</a>" not in login(member).get(f"/o/{org.slug}/").content.decode()
