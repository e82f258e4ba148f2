"""`/presets`: saving a preset from an inference request body, versions, reading them back.

Any API key may use presets (as the reference has it): a management key in every workspace of its
organization, an inference key only in its own workspace (anything else is a 404, never a 403)."""

import pytest

from workspaces.models import AuditLogEntry, KeyKind, Preset, PresetVersion
from workspaces.services import create_api_key

from .conftest import client_for

pytestmark = pytest.mark.django_db

CHAT = {"model": "openai/gpt-4o", "temperature": 0.3, "max_tokens": 200, "provider": {"sort": "price"},
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hello"}],
        "stream": True, "user": "customer-1", "session_id": "s-1"}


def save(client, slug="terse", body=None, path="chat/completions", **query):
    suffix = "".join(f"&{k}={v}" for k, v in query.items()).replace("&", "?", 1)
    return client.post(f"/api/v1/presets/{slug}/{path}{suffix}", body or CHAT, format="json")


def test_anonymous_callers_get_401(client, api, org):
    save(api)
    for path in ("/api/v1/presets", "/api/v1/presets/terse", "/api/v1/presets/terse/versions",
                 "/api/v1/presets/terse/versions/1"):
        assert client.get(path).status_code == 401, path
    for path in ("messages", "responses"):
        assert save(client_for(None), "terse", {"model": "x/y"}, path=path).status_code == 401
    assert Preset.objects.get().designated_version.version == 1
    Preset.objects.all().delete()
    response = save(client_for(None))
    assert response.status_code == 401 and response.json()["error"]["code"] == 401
    assert not Preset.objects.exists()


def test_it_saves_a_chat_request_as_a_preset(api, org, owner, management_key):
    response = save(api)
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    preset = Preset.objects.get(id=data["id"], organization=org)
    assert preset.workspace == org.default_workspace and preset.slug == "terse" and preset.name == "terse"
    assert preset.creator_user == owner
    version = preset.designated_version
    assert version.version == 1
    assert version.config == {"max_tokens": 200, "model": "openai/gpt-4o", "provider": {"sort": "price"},
                              "temperature": 0.3, "tools": CHAT["tools"]}
    assert version.system_prompt == "Be terse." and version.creator_id == str(owner.id)
    assert data["designated_version"]["config"] == version.config
    assert data["designated_version_id"] == str(version.id) and data["workspace_id"] == str(org.default_workspace.id)
    assert AuditLogEntry.objects.filter(organization=org, action="create", object_type="Preset",
                                        actor_key_hash=management_key[0].hash).exists()


def test_saving_again_adds_a_designated_version(api, org):
    save(api)
    response = save(api, body={"model": "anthropic/claude", "messages": [{"role": "user", "content": "x"}]})
    preset = Preset.objects.get()
    assert [v.version for v in preset.versions.order_by("version")] == [1, 2]
    assert preset.designated_version.version == 2
    assert preset.designated_version.config == {"model": "anthropic/claude"}
    assert preset.designated_version.system_prompt is None
    assert response.json()["data"]["designated_version"]["version"] == 2
    assert AuditLogEntry.objects.filter(organization=org, action="update", object_type="Preset").count() == 1


def test_it_takes_the_system_prompt_of_each_format(api):
    save(api, "msgs", {"model": "a/b", "system": [{"type": "text", "text": "Part one"}, {"type": "text",
                                                                                         "text": "part two"}],
                       "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}, path="messages")
    save(api, "resp", {"model": "a/b", "instructions": "Answer in French", "input": "bonjour",
                       "max_output_tokens": 50}, path="responses")
    msgs = Preset.objects.get(slug="msgs").designated_version
    assert msgs.system_prompt == "Part one\npart two" and msgs.config == {"max_tokens": 10, "model": "a/b"}
    resp = Preset.objects.get(slug="resp").designated_version
    assert resp.system_prompt == "Answer in French" and resp.config == {"max_output_tokens": 50, "model": "a/b"}


def test_a_key_without_a_creator_is_recorded_as_the_key(org, workspace):
    key, plaintext = create_api_key(organization=org, name="Robot", kind=KeyKind.MANAGEMENT)
    save(client_for(plaintext))
    version = PresetVersion.objects.get()
    assert version.creator_id == f"key:{key.hash}"
    assert version.preset.creator_user is None


def test_an_inference_key_saves_and_reads_in_its_own_workspace_only(org, workspace, inference_key, api):
    client = client_for(inference_key[1])
    response = save(client)
    assert response.status_code == 200
    assert Preset.objects.get().workspace == workspace
    assert client.get("/api/v1/presets/terse").status_code == 200
    assert save(client, "elsewhere", workspace_id="default").status_code == 404
    save(api, "in-default")
    assert client.get("/api/v1/presets/in-default").status_code == 404
    assert client.get("/api/v1/presets?workspace_id=default").status_code == 404
    assert [p["slug"] for p in client.get("/api/v1/presets").json()["data"]] == ["terse"]
    assert not Preset.objects.filter(slug="elsewhere").exists()


def test_another_organization_sees_nothing(org, workspace, api, outsider_key):
    save(api, workspace_id="production")
    theirs = client_for(outsider_key[1])
    assert theirs.get("/api/v1/presets").json() == {"data": [], "total_count": 0}
    assert theirs.get("/api/v1/presets/terse").status_code == 404
    assert theirs.get(f"/api/v1/presets/terse?workspace_id={workspace.id}").status_code == 404
    assert theirs.get("/api/v1/presets/terse/versions/1").status_code == 404
    response = save(theirs, workspace_id=str(workspace.id))
    assert response.status_code == 404
    assert Preset.objects.get().designated_version.version == 1


def test_the_workspace_can_come_from_the_body(api, workspace):
    response = save(api, body={**CHAT, "workspace_id": "production"})
    assert response.json()["data"]["workspace_id"] == str(workspace.id)
    assert "workspace_id" not in Preset.objects.get().designated_version.config


def test_it_lists_most_recently_updated_first_and_filters(api, org, workspace):
    for slug in ("first", "second", "third"):
        save(api, slug)
    save(api, "first")  # a new version bumps it to the top
    save(api, "prod", workspace_id="production")
    body = api.get("/api/v1/presets").json()
    assert [p["slug"] for p in body["data"]] == ["prod", "first", "third", "second"]
    assert body["total_count"] == 4
    assert [p["slug"] for p in api.get("/api/v1/presets?workspace_id=default&limit=2").json()["data"]] == [
        "first", "third"]
    assert [p["slug"] for p in api.get("/api/v1/presets?workspace_id=production").json()["data"]] == ["prod"]


def test_it_reads_a_preset_and_its_versions(api, org):
    for temperature in (0.1, 0.2, 0.3):
        save(api, body={"model": "a/b", "temperature": temperature})
    data = api.get("/api/v1/presets/terse").json()["data"]
    assert data["designated_version"]["version"] == 3 and data["designated_version"]["config"]["temperature"] == 0.3
    versions = api.get("/api/v1/presets/terse/versions?limit=2").json()
    assert versions["total_count"] == 3 and [v["version"] for v in versions["data"]] == [1, 2]
    one = api.get("/api/v1/presets/terse/versions/1").json()["data"]
    assert one["config"] == {"model": "a/b", "temperature": 0.1} and one["preset_id"] == data["id"]
    assert api.get("/api/v1/presets/terse/versions/9").status_code == 404
    response = api.get("/api/v1/presets/terse/versions/latest")
    assert response.status_code == 400 and "version" in response.json()["error"]["message"]
    assert api.get("/api/v1/presets/nothing").status_code == 404


def test_a_slug_in_several_workspaces_prefers_the_default_one(api, workspace):
    save(api, "shared", workspace_id="production")
    assert api.get("/api/v1/presets/shared").json()["data"]["workspace_id"] == str(workspace.id)
    save(api, "shared")
    data = api.get("/api/v1/presets/shared").json()["data"]
    assert data["workspace_id"] == str(workspace.organization.default_workspace.id)
    assert api.get("/api/v1/presets/shared?workspace_id=production").json()["data"]["workspace_id"] == str(
        workspace.id)


@pytest.mark.parametrize("slug, body, field", [
    ("Bad_Slug", CHAT, "slug"),
    ("ok", {"model": 42}, "model"),
    ("ok", {"model": "a/b", "temperature": "hot"}, "temperature"),
    ("ok", {"model": "a/b", "max_tokens": 1.5}, "max_tokens"),
    ("ok", {"model": "a/b", "tools": {"not": "a list"}}, "tools"),
    ("ok", {"model": "a/b", "messages": "hello"}, "messages"),
    ("ok", {"model": "a/b", "messages": [{"role": "system", "content": 7}]}, "messages[0].content"),
    ("ok", {"model": "a/b", "workspace_id": 12}, "workspace_id"),
])
def test_it_names_the_bad_field(api, slug, body, field):
    response = save(api, slug, body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["message"]
    assert not Preset.objects.exists()


def test_it_refuses_a_body_that_is_not_an_object(api):
    response = api.post("/api/v1/presets/ok/chat/completions", [1, 2], format="json")
    assert response.status_code == 400
    assert not Preset.objects.exists()


def test_the_schema_describes_the_served_fields(api):
    from .test_guardrails_api import served_fields_match_schema

    data = save(api).json()["data"]
    assert served_fields_match_schema(api, "/api/v1/presets/{slug}/chat/completions", "post", data)
    version = api.get("/api/v1/presets/terse/versions/1").json()["data"]
    assert served_fields_match_schema(api, "/api/v1/presets/{slug}/versions/{version}", "get", version)


def test_no_input_makes_a_server_error(api):
    from workspaces.policy_services import _INT_FIELDS, _NUMBER_FIELDS

    from .test_guardrails_api import never_a_server_error

    # The fields the service reads; any other one is stored as sent (JSON in, JSON out).
    fields = [*_NUMBER_FIELDS, *_INT_FIELDS, "model", "models", "tools", "plugins", "provider", "messages",
              "workspace_id"]
    never_a_server_error(api, "post", "/api/v1/presets/fuzz/chat/completions", {"model": "a/b"}, fields)
    never_a_server_error(api, "post", "/api/v1/presets/fuzz/messages", {"model": "a/b"}, ["system"])
    never_a_server_error(api, "post", "/api/v1/presets/fuzz/responses", {"model": "a/b"}, ["instructions"])
