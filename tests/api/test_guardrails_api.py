"""`/guardrails`: CRUD, validation (content-filter regexes), the workspace default guardrail, assignments."""

from decimal import Decimal

import pytest

from workspaces.models import (AuditLogEntry, Guardrail, GuardrailKeyAssignment, GuardrailMemberAssignment,
                               KeyKind)
from workspaces.services import create_api_key

from workspaces.api.guardrails import GuardrailIn

from .conftest import client_for

pytestmark = pytest.mark.django_db

EVERY_FIELD = {
    "name": "Search team", "description": "Keeps search cheap", "limit_usd": 25.5, "reset_interval": "weekly",
    "include_byok_in_budgets": True, "allowed_models": ["openai/gpt-4o"], "ignored_models": ["x/y"],
    "allowed_providers": ["openai", "anthropic"], "ignored_providers": ["down"], "enforce_zdr_anthropic": True,
    "enforce_zdr_openai": False, "enforce_zdr_google": True, "enforce_zdr_xai": False, "enforce_zdr_other": True,
    "allow_safety_retention_google": False, "allow_safety_retention_other": True,
    "enable_free_model_publication": False, "enable_free_model_training": False, "enable_paid_model_training": True,
    "allowed_data_regions": ["global", "europe"],
    "content_filters": [{"pattern": r"ACME-\d{6}", "action": "block", "label": "ticket"},
                        {"pattern": "[a-z]+@corp\\.example", "action": "redact"}],
    "content_filter_builtins": [{"slug": "email", "action": "redact"},
                                {"slug": "regex-prompt-injection", "action": "block", "scan_scope": "user_only"}],
}


def make_guardrail(org, workspace=None, **fields):
    return Guardrail.objects.create(organization=org, workspace=workspace or org.default_workspace,
                                    name=fields.pop("name", "Existing"), **fields)


def test_it_checks_access_to_the_list(callers, org):
    ours = make_guardrail(org)
    response = callers.check("get", "/api/v1/guardrails", outsider_status=200)
    assert [g["id"] for g in response.json()["data"]] == [str(ours.id)]
    assert callers.outsider.get("/api/v1/guardrails").json() == {"data": [], "total_count": 0}


def test_it_lists_the_default_workspace_unless_told_and_pages(api, org, workspace):
    in_default = [make_guardrail(org, name=f"d{i}") for i in range(3)]
    in_production = make_guardrail(org, workspace, name="p")
    body = api.get("/api/v1/guardrails?limit=2&offset=0").json()
    assert body["total_count"] == 3 and len(body["data"]) == 2
    rest = api.get("/api/v1/guardrails?limit=2&offset=2").json()["data"]
    assert {g["id"] for g in body["data"] + rest} == {str(g.id) for g in in_default}
    body = api.get("/api/v1/guardrails?workspace_id=production").json()
    assert [g["id"] for g in body["data"]] == [str(in_production.id)]
    assert api.get("/api/v1/guardrails?limit=500").status_code == 400


def test_it_creates_a_guardrail_with_every_field(callers, org, workspace, management_key):
    body = {**EVERY_FIELD, "workspace_id": str(workspace.id)}
    response = callers.check("post", "/api/v1/guardrails", body, outsider_status=404, ok_status=201)
    data = response.json()["data"]
    guardrail = Guardrail.objects.get(id=data["id"], organization=org)
    assert guardrail.workspace == workspace and not guardrail.is_workspace_default
    assert guardrail.limit_usd == Decimal("25.5") and guardrail.reset_interval == "weekly"
    assert guardrail.allowed_data_regions == ["global", "europe"]
    assert guardrail.content_filters[0] == {"pattern": r"ACME-\d{6}", "action": "block", "label": "ticket"}
    assert guardrail.content_filter_builtins[1] == {"slug": "regex-prompt-injection", "action": "block",
                                                    "label": "Prompt injection", "scan_scope": "user_only"}
    for name, value in EVERY_FIELD.items():
        if name not in ("content_filters", "content_filter_builtins"):
            assert data[name] == value, name
    assert data["workspace_id"] == str(workspace.id) and data["created_at"]
    entry = AuditLogEntry.objects.get(organization=org, action="create", object_type="Guardrail")
    assert entry.actor_key_hash == management_key[0].hash and entry.object_id == str(guardrail.id)


def test_it_creates_in_the_default_workspace(api, org):
    response = api.post("/api/v1/guardrails", {"name": "Plain"}, format="json")
    assert response.status_code == 201
    guardrail = Guardrail.objects.get(id=response.json()["data"]["id"])
    assert guardrail.workspace == org.default_workspace
    assert response.json()["data"]["limit_usd"] is None and response.json()["data"]["include_byok_in_budgets"] is False


def test_it_copies_enforce_zdr_into_the_provider_flags_not_sent(api):
    response = api.post("/api/v1/guardrails", {"name": "zdr", "enforce_zdr": True, "enforce_zdr_xai": False},
                        format="json")
    guardrail = Guardrail.objects.get(id=response.json()["data"]["id"])
    assert (guardrail.enforce_zdr_openai, guardrail.enforce_zdr_anthropic, guardrail.enforce_zdr_xai) == (True, True,
                                                                                                         False)


@pytest.mark.parametrize("body", [{"limit_usd": 10}, {"reset_interval": "daily"},
                                  {"limit_usd": 10, "reset_interval": None}])
def test_it_requires_limit_and_interval_together(api, body):
    response = api.post("/api/v1/guardrails", {"name": "half", **body}, format="json")
    assert response.status_code == 400
    assert "limit_usd and reset_interval" in response.json()["error"]["message"]
    assert not Guardrail.objects.filter(name="half").exists()


@pytest.mark.parametrize("pattern, reason", [
    ("(?=secret)x", "lookahead"),
    ("(?<!a)b", "lookahead and lookbehind"),
    (r"(a)\1", "backreferences"),
    ("(a+)+b", "nested quantifiers"),
    (r"(\d{2,}-)*", "nested quantifiers"),
    ("(?P<n>a)", "Python-only"),
    ("(?i)abc", "inline flags"),
    (r"\Aabc", "not JavaScript"),
    ("(unclosed", "does not compile"),
    ("", "non-empty"),
    ("a" * 100_001, "longer than"),
])
def test_it_rejects_unsafe_or_foreign_regexes(api, pattern, reason):
    body = {"name": "filters", "content_filters": [{"pattern": "ok", "action": "flag"},
                                                   {"pattern": pattern, "action": "block"}]}
    response = api.post("/api/v1/guardrails", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert "content_filters[1].pattern" in error["message"] and "invalid_regex_pattern" in error["message"]
    assert reason in error["message"]
    assert not Guardrail.objects.filter(name="filters").exists()


def test_it_accepts_a_long_plain_pattern(api):
    pattern = "(?:foo|bar)[0-9]{3}" + "x" * 99_000
    response = api.post("/api/v1/guardrails", {"name": "long", "content_filters": [
        {"pattern": pattern, "action": "redact"}]}, format="json")
    assert response.status_code == 201, response.content[:300]


@pytest.mark.parametrize("body, field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x", "limit_usd": -1, "reset_interval": "daily"}, "limit_usd"),
    ({"name": "x", "limit_usd": "lots", "reset_interval": "daily"}, "limit_usd"),
    ({"name": "x", "limit_usd": 1e30, "reset_interval": "daily"}, "limit_usd"),
    ({"name": "x", "limit_usd": "1e400", "reset_interval": "daily"}, "limit_usd"),
    ({"name": "x", "limit_usd": 1, "reset_interval": "hourly"}, "reset_interval"),
    ({"name": "x", "allowed_data_regions": []}, "allowed_data_regions"),
    ({"name": "x", "allowed_data_regions": ["mars"]}, "allowed_data_regions"),
    ({"name": "x", "allowed_models": "openai/gpt-4o"}, "allowed_models"),
    ({"name": "x", "enforce_zdr_openai": "sometimes"}, "enforce_zdr_openai"),
    ({"name": "x", "content_filters": [{"pattern": "a", "action": "explode"}]}, "content_filters"),
    ({"name": "x", "content_filter_builtins": [{"slug": "dna", "action": "block"}]}, "content_filter_builtins"),
    ({"name": "x", "content_filter_builtins": [{"slug": "ssn", "action": "block"},
                                               {"slug": "ssn", "action": "flag"}]}, "content_filter_builtins"),
])
def test_it_names_the_bad_field(api, body, field):
    response = api.post("/api/v1/guardrails", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["message"]
    assert Guardrail.objects.count() == 0


def test_it_refuses_a_body_that_is_not_json(api):
    response = api.generic("POST", "/api/v1/guardrails", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400


def test_it_refuses_another_organizations_workspace(callers, workspace):
    assert callers.outsider.get(f"/api/v1/guardrails?workspace_id={workspace.id}").status_code == 404
    response = callers.outsider.post("/api/v1/guardrails", {"name": "x", "workspace_id": str(workspace.id)},
                                     format="json")
    assert response.status_code == 404
    assert not Guardrail.objects.filter(name="x").exists()


def test_it_checks_access_to_one_guardrail(callers, org):
    guardrail = make_guardrail(org)
    response = callers.check("get", f"/api/v1/guardrails/{guardrail.id}")
    assert response.json()["data"]["name"] == "Existing"
    assert callers.management.get("/api/v1/guardrails/not-a-uuid").status_code == 404
    assert callers.management.get(f"/api/v1/guardrails/{org.id}").status_code == 404


def test_it_updates_only_the_fields_sent(callers, org, management_key):
    guardrail = make_guardrail(org, description="keep me", limit_usd=Decimal("5"), reset_interval="daily",
                               allowed_providers=["openai"])
    response = callers.check("patch", f"/api/v1/guardrails/{guardrail.id}",
                             {"name": "Renamed", "limit_usd": 7.25, "ignored_models": None})
    guardrail.refresh_from_db()
    assert guardrail.name == "Renamed" and guardrail.limit_usd == Decimal("7.25")
    assert guardrail.description == "keep me" and guardrail.reset_interval == "daily"
    assert guardrail.allowed_providers == ["openai"]
    assert response.json()["data"]["limit_usd"] == 7.25
    entry = AuditLogEntry.objects.get(organization=org, action="update", object_type="Guardrail")
    assert set(entry.changes) == {"name", "limit_usd"}


def test_it_keeps_limit_and_interval_paired_on_update(api, org):
    guardrail = make_guardrail(org, limit_usd=Decimal("5"), reset_interval="daily")
    response = api.patch(f"/api/v1/guardrails/{guardrail.id}", {"reset_interval": None}, format="json")
    assert response.status_code == 400
    response = api.patch(f"/api/v1/guardrails/{guardrail.id}", {"reset_interval": None, "limit_usd": None},
                         format="json")
    assert response.status_code == 200
    guardrail.refresh_from_db()
    assert guardrail.limit_usd is None and guardrail.reset_interval is None


def test_it_deletes_a_guardrail_and_its_assignments(callers, org, inference_key):
    guardrail = make_guardrail(org)
    GuardrailKeyAssignment.objects.create(guardrail=guardrail, api_key=inference_key[0])
    response = callers.check("delete", f"/api/v1/guardrails/{guardrail.id}")
    assert response.json() == {"deleted": True}
    assert not Guardrail.objects.filter(id=guardrail.id).exists()
    assert not GuardrailKeyAssignment.objects.exists()
    assert AuditLogEntry.objects.filter(organization=org, action="delete", object_id=str(guardrail.id)).exists()
    assert callers.management.delete(f"/api/v1/guardrails/{guardrail.id}").status_code == 404


def test_another_organization_cannot_change_or_delete_a_guardrail(callers, org):
    guardrail = make_guardrail(org)
    assert callers.outsider.patch(f"/api/v1/guardrails/{guardrail.id}", {"name": "pwned"},
                                  format="json").status_code == 404
    assert callers.outsider.delete(f"/api/v1/guardrails/{guardrail.id}").status_code == 404
    guardrail.refresh_from_db()
    assert guardrail.name == "Existing"


# --- the workspace default guardrail ---------------------------------------------------------------------

def test_the_default_guardrail_reads_before_it_exists(callers, workspace):
    response = callers.check("get", f"/api/v1/guardrails/{workspace.default_guardrail_id}")
    data = response.json()["data"]
    assert data["id"] == str(workspace.default_guardrail_id)
    assert data["name"] == f"Workspace {workspace.id} Default" and data["is_workspace_default"] is True
    assert data["workspace_id"] == str(workspace.id) and data["allowed_providers"] is None
    assert not Guardrail.objects.filter(id=workspace.default_guardrail_id).exists()


def test_the_default_guardrail_materializes_on_first_write(callers, org, workspace):
    path = f"/api/v1/guardrails/{workspace.default_guardrail_id}"
    response = callers.check("patch", path, {"allowed_providers": ["cheap"], "limit_usd": 3,
                                             "reset_interval": "monthly"})
    guardrail = Guardrail.objects.get(id=workspace.default_guardrail_id)
    assert guardrail.is_workspace_default and guardrail.workspace == workspace and guardrail.organization == org
    assert guardrail.allowed_providers == ["cheap"] and guardrail.limit_usd == Decimal("3")
    assert response.json()["data"]["is_workspace_default"] is True
    # A second write updates the same row.
    callers.management.patch(path, {"allowed_providers": ["pricey"]}, format="json")
    assert Guardrail.objects.filter(workspace=workspace, is_workspace_default=True).count() == 1
    guardrail.refresh_from_db()
    assert guardrail.allowed_providers == ["pricey"] and guardrail.limit_usd == Decimal("3")


def test_the_default_guardrail_takes_no_assignments(api, workspace, inference_key):
    response = api.post(f"/api/v1/guardrails/{workspace.default_guardrail_id}/assignments/keys",
                        {"key_hashes": [inference_key[0].hash]}, format="json")
    assert response.status_code == 400
    assert not GuardrailKeyAssignment.objects.exists()


def test_materializing_is_idempotent(workspace):
    from workspaces.policy_services import get_or_materialize_default_guardrail

    first = get_or_materialize_default_guardrail(workspace)
    second = get_or_materialize_default_guardrail(workspace)
    assert first.pk == second.pk == workspace.default_guardrail_id
    assert Guardrail.objects.filter(is_workspace_default=True).count() == 1


# --- assignments -------------------------------------------------------------------------------------------

def test_it_checks_access_to_key_assignments(callers, org, inference_key):
    guardrail = make_guardrail(org)
    path = f"/api/v1/guardrails/{guardrail.id}/assignments/keys"
    response = callers.check("post", path, {"key_hashes": [inference_key[0].hash]})
    assert response.json() == {"assigned_count": 1}
    assert GuardrailKeyAssignment.objects.get(api_key=inference_key[0]).guardrail == guardrail
    response = callers.check("get", path)
    assert response.json()["total_count"] == 1
    callers.check("post", f"{path}/remove", {"key_hashes": [inference_key[0].hash]})
    assert not GuardrailKeyAssignment.objects.exists()


def test_assigning_a_key_moves_it_from_its_old_guardrail(api, org, owner, inference_key):
    old, new = make_guardrail(org, name="old"), make_guardrail(org, name="new")
    other, _ = create_api_key(organization=org, name="Other", created_by=owner)
    key = inference_key[0]
    assert api.post(f"/api/v1/guardrails/{old.id}/assignments/keys", {"key_hashes": [key.hash]},
                    format="json").json() == {"assigned_count": 1}
    response = api.post(f"/api/v1/guardrails/{new.id}/assignments/keys", {"key_hashes": [key.hash, other.hash]},
                        format="json")
    assert response.json() == {"assigned_count": 2}
    assert GuardrailKeyAssignment.objects.get(api_key=key).guardrail == new
    assert not GuardrailKeyAssignment.objects.filter(guardrail=old).exists()
    # Assigning again changes nothing.
    assert api.post(f"/api/v1/guardrails/{new.id}/assignments/keys", {"key_hashes": [key.hash]},
                    format="json").json() == {"assigned_count": 0}
    rows = api.get(f"/api/v1/guardrails/{new.id}/assignments/keys").json()["data"]
    row = next(r for r in rows if r["key_hash"] == key.hash)
    assert row == {"id": row["id"], "guardrail_id": str(new.id), "key_hash": key.hash, "key_name": key.name,
                   "key_label": key.label, "assigned_by": str(org.owner_id), "created_at": row["created_at"]}


def test_it_refuses_keys_of_another_organization_and_management_keys(api, org, outsider, outsider_key,
                                                                     management_key):
    guardrail = make_guardrail(org)
    theirs, _ = create_api_key(organization=outsider.owned_organizations.get(), name="Theirs", created_by=outsider)
    for hashes in ([theirs.hash], ["f" * 64], [management_key[0].hash]):
        response = api.post(f"/api/v1/guardrails/{guardrail.id}/assignments/keys", {"key_hashes": hashes},
                            format="json")
        assert response.status_code == 400
        assert "key_hashes" in response.json()["error"]["message"]
    assert not GuardrailKeyAssignment.objects.exists()


def test_another_organization_cannot_assign_to_our_guardrail(callers, org, outsider):
    guardrail = make_guardrail(org)
    theirs, _ = create_api_key(organization=outsider.owned_organizations.get(), name="Theirs", created_by=outsider)
    response = callers.outsider.post(f"/api/v1/guardrails/{guardrail.id}/assignments/keys",
                                     {"key_hashes": [theirs.hash]}, format="json")
    assert response.status_code == 404
    assert callers.outsider.get(f"/api/v1/guardrails/{guardrail.id}/assignments/members").status_code == 404
    assert not GuardrailKeyAssignment.objects.exists()


def test_it_assigns_members_and_moves_them(callers, org, member, admin, owner):
    old, new = make_guardrail(org, name="old"), make_guardrail(org, name="new")
    path = f"/api/v1/guardrails/{old.id}/assignments/members"
    response = callers.check("post", path, {"member_user_ids": [str(member.id), str(admin.id)]})
    assert response.json() == {"assigned_count": 2}
    response = callers.management.post(f"/api/v1/guardrails/{new.id}/assignments/members",
                                       {"member_user_ids": [str(member.id)]}, format="json")
    assert response.json() == {"assigned_count": 1}
    assert GuardrailMemberAssignment.objects.get(user=member).guardrail == new
    assert GuardrailMemberAssignment.objects.get(user=admin).guardrail == old
    rows = callers.check("get", path).json()["data"]
    assert rows == [{"id": rows[0]["id"], "guardrail_id": str(old.id), "user_id": str(admin.id),
                     "organization_id": str(org.id), "assigned_by": str(owner.id), "created_at": rows[0]["created_at"]}]
    response = callers.check("post", f"{path}/remove", {"member_user_ids": [str(admin.id)]})
    assert response.json() == {"unassigned_count": 1}
    assert not GuardrailMemberAssignment.objects.filter(user=admin).exists()


def test_it_refuses_people_outside_the_organization(api, org, outsider):
    guardrail = make_guardrail(org)
    for ids in ([str(outsider.id)], ["not-a-uuid"]):
        response = api.post(f"/api/v1/guardrails/{guardrail.id}/assignments/members", {"member_user_ids": ids},
                            format="json")
        assert response.status_code == 400
        assert "member_user_ids" in response.json()["error"]["message"]
    assert not GuardrailMemberAssignment.objects.exists()


def test_it_lists_every_assignment_of_the_organization(callers, org, outsider, inference_key, member):
    first, second = make_guardrail(org, name="a"), make_guardrail(org, name="b")
    GuardrailKeyAssignment.objects.create(guardrail=first, api_key=inference_key[0])
    GuardrailMemberAssignment.objects.create(guardrail=second, organization=org, user=member)
    theirs = make_guardrail(outsider.owned_organizations.get())
    their_key, _ = create_api_key(organization=theirs.organization, name="Theirs", created_by=outsider)
    GuardrailKeyAssignment.objects.create(guardrail=theirs, api_key=their_key)
    keys = callers.check("get", "/api/v1/guardrails/assignments/keys", outsider_status=200).json()
    assert [r["key_hash"] for r in keys["data"]] == [inference_key[0].hash] and keys["total_count"] == 1
    members = callers.check("get", "/api/v1/guardrails/assignments/members", outsider_status=200).json()
    assert [r["user_id"] for r in members["data"]] == [str(member.id)]
    their_view = callers.outsider.get("/api/v1/guardrails/assignments/keys").json()
    assert [r["key_hash"] for r in their_view["data"]] == [their_key.hash]


def test_an_inference_key_cannot_manage_guardrails(inference_key, org):
    client = client_for(inference_key[1])
    response = client.post("/api/v1/guardrails", {"name": "sneaky"}, format="json")
    assert response.status_code == 403
    assert not Guardrail.objects.exists()
    assert inference_key[0].kind == KeyKind.INFERENCE


# --- the OpenAPI schema describes what is served -------------------------------------------------------------

def served_fields_match_schema(client, path, method, data, status="200"):
    """The fields of one served `data` object are exactly those the OpenAPI schema declares."""
    schema = client.get("/api/v1/openapi.json").json()
    components = schema["components"]["schemas"]

    def resolve(node):
        while "$ref" in node or "allOf" in node:
            node = components[node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node["allOf"][0]
        return node

    operation = schema["paths"][path][method]
    body = resolve(operation["responses"][status]["content"]["application/json"]["schema"])
    declared = resolve(body["properties"]["data"])
    if declared.get("type") == "array":
        declared = resolve(declared["items"])
    return set(data) == set(declared["properties"])


def test_the_schema_describes_the_served_fields(api, org, inference_key):
    guardrail = make_guardrail(org)
    GuardrailKeyAssignment.objects.create(guardrail=guardrail, api_key=inference_key[0])
    data = api.get(f"/api/v1/guardrails/{guardrail.id}").json()["data"]
    assert served_fields_match_schema(api, "/api/v1/guardrails/{guardrail_id}", "get", data)
    row = api.get("/api/v1/guardrails/assignments/keys").json()["data"][0]
    assert served_fields_match_schema(api, "/api/v1/guardrails/assignments/keys", "get", row)


# One value of each JSON kind a field might not expect.
GARBAGE = [None, 1e308, "é" * 300, [{"a": 1}], {"a": [1]}]


def never_a_server_error(client, method, path, base: dict, fields, values=GARBAGE) -> None:
    """Every field set to every kind of wrong value: a 2xx or a 4xx, never a 500."""
    for name in fields:
        for value in values:
            response = getattr(client, method)(path, {**base, name: value}, format="json")
            assert response.status_code < 500, (name, value, response.content[:300])


def test_no_input_makes_a_server_error(api, org, inference_key):
    fields = [*GuardrailIn().fields, "key_hashes"]
    never_a_server_error(api, "post", "/api/v1/guardrails", {"name": "fuzz"}, fields)
    guardrail = make_guardrail(org)
    never_a_server_error(api, "patch", f"/api/v1/guardrails/{guardrail.id}", {}, GuardrailIn().fields, [None, "x"])
    for suffix, name in (("keys", "key_hashes"), ("members", "member_user_ids")):
        never_a_server_error(api, "post", f"/api/v1/guardrails/{guardrail.id}/assignments/{suffix}", {}, [name])
