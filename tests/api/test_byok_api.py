"""`/byok`: provider credentials stored encrypted, shown only as a masked label."""

import pytest

from routing.models import Provider
from workspaces import crypto
from workspaces.models import AuditLogEntry, ByokKey
from workspaces.policy_services import byok_plaintext
from workspaces.services import create_api_key

from .conftest import assert_no_secrets

pytestmark = pytest.mark.django_db

SECRET = "sk-proj-Zq8vLr2TnW4yXb6cDe0fGh1iJk3lMn5oPq7rSt9uVwAbCd"
BYOK_FIELDS = {"id", "provider", "name", "label", "disabled", "sort_order", "is_fallback", "is_required",
               "is_byok_only", "allowed_models", "allowed_api_key_hashes", "allowed_user_ids", "declared_region",
               "declared_zdr", "workspace_id", "created_at"}


def make_byok(org, workspace=None, provider="openai", key=SECRET, **fields):
    return ByokKey.objects.create(organization=org, workspace=workspace, provider=provider,
                                  encrypted_key=crypto.encrypt(key), label="sk-...AbCd", **fields)


def test_it_creates_a_key_encrypted_and_masked(callers, org, management_key):
    response = callers.check("post", "/api/v1/byok", {"provider": "openai", "key": SECRET},
                             outsider_status=201, ok_status=201)
    data = response.json()["data"]
    assert set(data) >= BYOK_FIELDS
    assert data["label"] == "sk-...AbCd" and data["workspace_id"] == str(org.default_workspace.id)
    byok = ByokKey.objects.get(id=data["id"], organization=org)
    assert SECRET not in byok.encrypted_key and byok_plaintext(byok) == SECRET
    assert_no_secrets(response, SECRET, byok.encrypted_key)
    assert_no_secrets(callers.management.get(f"/api/v1/byok/{byok.id}"), SECRET, byok.encrypted_key)
    assert_no_secrets(callers.management.get("/api/v1/byok"), SECRET, byok.encrypted_key)
    entry = AuditLogEntry.objects.get(organization=org, action="create", object_type="ByokKey")
    assert SECRET not in str(entry.changes) and byok.encrypted_key not in str(entry.changes)
    assert entry.actor_key_hash == management_key[0].hash


def test_it_creates_a_key_with_every_field(api, org, workspace, member, inference_key):
    body = {"provider": "anthropic", "key": "sk-ant-api03-abcdefghijklmnop", "name": "Team Anthropic",
            "disabled": True, "is_fallback": True, "is_required": True, "allowed_models": ["anthropic/claude"],
            "allowed_api_key_hashes": [inference_key[0].hash], "allowed_user_ids": [str(member.id)],
            "declared_region": "europe", "declared_zdr": True, "workspace_id": "production"}
    response = api.post("/api/v1/byok", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    byok = ByokKey.objects.get(id=data["id"])
    assert byok.workspace == workspace and byok.name == "Team Anthropic" and byok.disabled
    assert (byok.is_fallback, byok.is_required, byok.is_byok_only) == (True, True, False)
    assert byok.allowed_user_ids == [str(member.id)] and byok.allowed_api_key_hashes == [inference_key[0].hash]
    assert byok.declared_region == "europe" and byok.declared_zdr is True
    for name in ("provider", "name", "disabled", "is_fallback", "is_required", "allowed_models",
                 "allowed_api_key_hashes", "allowed_user_ids", "declared_region", "declared_zdr"):
        assert data[name] == body[name], name
    assert data["label"] == "sk-...mnop"


def test_an_explicit_null_workspace_makes_a_global_key(api, org, workspace):
    response = api.post("/api/v1/byok", {"provider": "openai", "key": SECRET, "workspace_id": None}, format="json")
    assert response.status_code == 201
    assert response.json()["data"]["workspace_id"] is None
    assert ByokKey.objects.get().workspace is None
    # A global key shows in every workspace's list.
    assert api.get("/api/v1/byok?workspace_id=production").json()["total_count"] == 1


def test_sort_order_appends_per_provider(api):
    orders = []
    for provider in ("openai", "openai", "anthropic", "openai"):
        response = api.post("/api/v1/byok", {"provider": provider, "key": SECRET}, format="json")
        orders.append((provider, response.json()["data"]["sort_order"]))
    assert orders == [("openai", 0), ("openai", 1), ("anthropic", 0), ("openai", 2)]


def test_it_accepts_a_provider_of_the_catalog(api):
    Provider.objects.create(slug="acme-local", name="Acme", base_url="http://127.0.0.1:1/v1")
    assert api.post("/api/v1/byok", {"provider": "acme-local", "key": SECRET}, format="json").status_code == 201


@pytest.mark.parametrize("body, field", [
    ({"key": SECRET}, "provider"),
    ({"provider": "openai"}, "key"),
    ({"provider": "openai", "key": "   "}, "key"),
    ({"provider": "nobody-knows", "key": SECRET}, "provider"),
    ({"provider": "OpenAI", "key": SECRET}, "provider"),
    ({"provider": "openai", "key": SECRET, "is_byok_only": True, "is_fallback": True}, "is_byok_only"),
    ({"provider": "openai", "key": SECRET, "declared_region": "mars"}, "declared_region"),
    ({"provider": "openai", "key": SECRET, "allowed_api_key_hashes": []}, "allowed_api_key_hashes"),
    ({"provider": "openai", "key": SECRET, "allowed_api_key_hashes": ["0" * 64]}, "allowed_api_key_hashes"),
    ({"provider": "openai", "key": SECRET, "allowed_user_ids": ["not-a-uuid"]}, "allowed_user_ids"),
    ({"provider": "openai", "key": SECRET, "disabled": "maybe"}, "disabled"),
])
def test_it_names_the_bad_field(api, body, field):
    response = api.post("/api/v1/byok", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["message"]
    assert SECRET not in response.content.decode()
    assert not ByokKey.objects.exists()


def test_it_refuses_keys_and_people_of_another_organization(api, outsider):
    their_key, _ = create_api_key(organization=outsider.owned_organizations.get(), name="Theirs",
                                  created_by=outsider)
    for extra, field in (({"allowed_api_key_hashes": [their_key.hash]}, "allowed_api_key_hashes"),
                         ({"allowed_user_ids": [str(outsider.id)]}, "allowed_user_ids")):
        response = api.post("/api/v1/byok", {"provider": "openai", "key": SECRET, **extra}, format="json")
        assert response.status_code == 400 and field in response.json()["error"]["message"]
    assert not ByokKey.objects.exists()


def test_it_lists_by_workspace_and_provider(callers, org, workspace):
    in_default = make_byok(org, org.default_workspace, "openai", sort_order=0)
    in_production = make_byok(org, workspace, "anthropic")
    global_key = make_byok(org, None, "anthropic", sort_order=1)
    body = callers.check("get", "/api/v1/byok", outsider_status=200).json()
    assert {k["id"] for k in body["data"]} == {str(in_default.id), str(global_key.id)}
    body = callers.management.get("/api/v1/byok?workspace_id=production&provider=anthropic").json()
    assert [k["id"] for k in body["data"]] == [str(in_production.id), str(global_key.id)]
    assert callers.outsider.get("/api/v1/byok").json() == {"data": [], "total_count": 0}
    assert callers.outsider.get(f"/api/v1/byok?workspace_id={workspace.id}").status_code == 404
    paged = callers.management.get("/api/v1/byok?limit=1&offset=1").json()
    assert paged["total_count"] == 2 and len(paged["data"]) == 1


def test_it_checks_access_to_one_key(callers, org):
    byok = make_byok(org, org.default_workspace)
    response = callers.check("get", f"/api/v1/byok/{byok.id}")
    assert response.json()["data"]["id"] == str(byok.id)
    assert callers.management.get("/api/v1/byok/nope").status_code == 404


def test_it_updates_only_the_fields_sent_and_rotates_the_key(callers, org):
    byok = make_byok(org, org.default_workspace, name="Old", allowed_models=["a/b"], declared_zdr=True)
    new_secret = "sk-proj-NEWNEWNEWNEWNEWNEWNEW-WxYz"
    response = callers.check("patch", f"/api/v1/byok/{byok.id}", {"name": "New", "key": new_secret,
                                                                    "allowed_models": None})
    byok.refresh_from_db()
    assert byok.name == "New" and byok.allowed_models is None and byok.declared_zdr is True
    assert byok_plaintext(byok) == new_secret and byok.label == "sk-...WxYz"
    assert response.json()["data"]["label"] == "sk-...WxYz"
    assert_no_secrets(response, new_secret, SECRET)
    entry = AuditLogEntry.objects.get(organization=org, action="update", object_type="ByokKey")
    assert new_secret not in str(entry.changes) and set(entry.changes) == {"name", "allowed_models", "label"}


def test_it_keeps_byok_only_and_fallback_apart_on_update(api, org):
    byok = make_byok(org, org.default_workspace, is_fallback=True)
    response = api.patch(f"/api/v1/byok/{byok.id}", {"is_byok_only": True}, format="json")
    assert response.status_code == 400
    byok.refresh_from_db()
    assert byok.is_byok_only is False
    assert api.patch(f"/api/v1/byok/{byok.id}", {"is_byok_only": True, "is_fallback": False},
                     format="json").status_code == 200


def test_it_deletes_a_key(callers, org):
    byok = make_byok(org, org.default_workspace)
    assert callers.check("delete", f"/api/v1/byok/{byok.id}").json() == {"deleted": True}
    assert not ByokKey.objects.exists()
    assert AuditLogEntry.objects.filter(organization=org, action="delete", object_type="ByokKey").exists()


def test_another_organization_cannot_touch_a_key(callers, org):
    byok = make_byok(org, org.default_workspace, name="Ours")
    assert callers.outsider.patch(f"/api/v1/byok/{byok.id}", {"name": "pwned", "key": "x" * 20},
                                  format="json").status_code == 404
    assert callers.outsider.delete(f"/api/v1/byok/{byok.id}").status_code == 404
    byok.refresh_from_db()
    assert byok.name == "Ours" and byok_plaintext(byok) == SECRET


def test_the_schema_describes_the_served_fields(api, org):
    from .test_guardrails_api import served_fields_match_schema

    byok = make_byok(org, org.default_workspace)
    data = api.get(f"/api/v1/byok/{byok.id}").json()["data"]
    assert served_fields_match_schema(api, "/api/v1/byok/{byok_id}", "get", data)


def test_no_input_makes_a_server_error(api, org):
    from workspaces.api.byok import ByokKeyIn

    from .test_guardrails_api import never_a_server_error

    never_a_server_error(api, "post", "/api/v1/byok", {"provider": "openai", "key": SECRET}, ByokKeyIn().fields)
    byok = make_byok(org, org.default_workspace)
    never_a_server_error(api, "patch", f"/api/v1/byok/{byok.id}", {}, ByokKeyIn().fields, [None, "x"])
