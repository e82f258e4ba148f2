"""`/observability/destinations`: typed configs, secrets encrypted and shown masked, filter rules."""

from decimal import Decimal

import pytest

from workspaces.models import AuditLogEntry, ObservabilityDestination
from workspaces.policy_services import destination_config
from workspaces.services import create_api_key

from .conftest import assert_no_secrets

pytestmark = pytest.mark.django_db

SECRET = "sk-lf-4fB7cD9eF1gH3iJ5kL7mN9oP1qR3AbCd"
HEADER_SECRET = "Bearer tok_9s8d7f6g5h4j3k2l1AbCd"

# One valid config per typed destination; `secret` is a value that must never come back in clear.
CONFIGS = {
    "webhook": ({"url": "https://hooks.example.com/in", "method": "PUT",
                 "headers": {"Authorization": HEADER_SECRET}}, HEADER_SECRET),
    "otel-collector": ({"endpoint": "https://otel.example.com/v1/traces", "headers": {"x-api-key": SECRET}}, SECRET),
    "langfuse": ({"publicKey": "pk-lf-public", "secretKey": SECRET, "baseUrl": "https://cloud.langfuse.com"},
                 SECRET),
    "datadog": ({"apiKey": SECRET, "mlApp": "search", "url": "https://api.datadoghq.eu"}, SECRET),
    "posthog": ({"apiKey": SECRET, "endpoint": "https://eu.posthog.com"}, SECRET),
    "s3": ({"bucketName": "traces", "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": SECRET,
            "region": "eu-west-1", "endpoint": "https://minio.example.com", "prefix": "ows/"}, SECRET),
    "langsmith": ({"apiKey": SECRET, "project": "p"}, SECRET),
    "weave": ({"apiKey": SECRET, "entity": "team", "project": "p"}, SECRET),
    "braintrust": ({"apiKey": SECRET, "projectId": "p1"}, SECRET),
    "arize": ({"apiKey": SECRET, "modelId": "m", "spaceKey": "space-key-0123456789"}, SECRET),
    "clickhouse": ({"host": "https://ch.example.com:8443", "database": "obs", "username": "u",
                    "password": SECRET}, SECRET),
    "grafana": ({"apiKey": SECRET, "instanceId": "123"}, SECRET),
    "newrelic": ({"licenseKey": SECRET, "region": "eu"}, SECRET),
    "opik": ({"apiKey": SECRET, "projectName": "p", "workspace": "w"}, SECRET),
    "ramp": ({"apiKey": SECRET}, SECRET),
    "sentry": ({"dsn": f"https://{SECRET}@o1.ingest.sentry.io/1", "otlpEndpoint": "https://o1.ingest.sentry.io/otlp"},
               SECRET),
    "snowflake": ({"account": "acme-xy123", "token": SECRET, "warehouse": "wh"}, SECRET),
}


def create(client, dest_type="webhook", config=None, **fields):
    body = {"name": fields.pop("name", "Hook"), "type": dest_type, "config": CONFIGS[dest_type][0] if config is None else config,
            **fields}
    return client.post("/api/v1/observability/destinations", body, format="json")


def test_it_checks_access_and_creates_in_the_default_workspace(callers, org, management_key):
    body = {"name": "Hook", "type": "webhook", "config": CONFIGS["webhook"][0]}
    response = callers.check("post", "/api/v1/observability/destinations", body, outsider_status=201,
                             ok_status=201)
    data = response.json()["data"]
    destination = ObservabilityDestination.objects.get(id=data["id"], organization=org)
    assert destination.workspace == org.default_workspace
    assert data["config"] == {"url": "https://hooks.example.com/in", "method": "PUT",
                              "headers": {"Authorization": "Bear...AbCd"}}
    assert (data["regions"], data["sampling_rate"], data["enabled"], data["privacy_mode"]) == (["global"], 1, True,
                                                                                               False)
    assert data["broadcast_generation_cost"] is False and data["filter_rules"] is None
    assert data["api_key_hashes"] is None
    assert destination_config(destination)["headers"] == {"Authorization": HEADER_SECRET}
    assert_no_secrets(response, HEADER_SECRET, destination.encrypted_secrets)
    entry = AuditLogEntry.objects.get(organization=org, action="create", object_type="ObservabilityDestination")
    assert HEADER_SECRET not in str(entry.changes) and entry.actor_key_hash == management_key[0].hash


@pytest.mark.parametrize("dest_type", sorted(CONFIGS))
def test_it_stores_every_typed_destination_with_secrets_encrypted(api, dest_type):
    config, secret = CONFIGS[dest_type]
    response = create(api, dest_type)
    assert response.status_code == 201, response.content
    destination = ObservabilityDestination.objects.get(id=response.json()["data"]["id"])
    assert secret not in str(destination.config) and secret not in destination.encrypted_secrets
    assert {k: v for k, v in destination_config(destination).items() if k in config} == config
    for raw in (response, api.get(f"/api/v1/observability/destinations/{destination.id}"),
                api.get("/api/v1/observability/destinations")):
        assert_no_secrets(raw, secret, destination.encrypted_secrets)


def test_an_untyped_destination_of_the_reference_takes_a_flat_config(api):
    response = create(api, "bigquery", {"projectId": "p", "dataset": "d", "serviceAccountKey": SECRET})
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["config"] == {"projectId": "p", "dataset": "d", "serviceAccountKey": "sk-l...AbCd"}
    destination = ObservabilityDestination.objects.get()
    assert destination_config(destination)["serviceAccountKey"] == SECRET


def test_it_creates_a_destination_with_every_field(api, org, workspace, inference_key):
    rules = {"enabled": True, "groups": [{"logic": "or", "rules": [
        {"field": "model", "operator": "starts_with", "value": "openai/"},
        {"field": "total_cost", "operator": "gte", "value": 0.01},
        {"field": "user_id", "operator": "exists"},
        {"field": "output", "operator": "regex", "value": "error [0-9]+"}]}]}
    response = create(api, "langfuse", workspace_id="production", enabled=False,
                      api_key_hashes=[inference_key[0].hash], sampling_rate=0.25, privacy_mode=True,
                      filter_rules=rules, broadcast_generation_cost=True, broadcast_generation_cost_allocation=True,
                      broadcast_generation_identity=True, broadcast_generation_request_context=True,
                      regions=["eu", "us", "europe"])
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    destination = ObservabilityDestination.objects.get(id=data["id"])
    assert destination.workspace == workspace and destination.enabled is False
    assert destination.sampling_rate == Decimal("0.25") and destination.privacy_mode
    assert destination.api_key_hashes == [inference_key[0].hash]
    assert destination.regions == ["europe", "us"] and data["regions"] == ["europe", "us"]
    assert destination.filter_rules == rules and data["filter_rules"] == rules
    assert all(data[f"broadcast_generation_{n}"] for n in ("cost", "cost_allocation", "identity",
                                                           "request_context"))
    assert data["sampling_rate"] == 0.25 and data["workspace_id"] == str(workspace.id)


@pytest.mark.parametrize("dest_type, config, fields, field", [
    ("webhook", {"url": "ftp://x.example.com"}, {}, "config.url"),
    ("webhook", {"url": "not a url"}, {}, "config.url"),
    ("webhook", {}, {}, "config.url"),
    ("webhook", {"url": "https://x.example.com", "method": "GET"}, {}, "config.method"),
    ("webhook", {"url": "https://x.example.com", "headers": {"X": 5}}, {}, "config.headers"),
    ("webhook", {"url": "https://x.example.com", "headers": {"Bad Name": "v"}}, {}, "config.headers"),
    ("webhook", {"url": "https://x.example.com", "urll": "typo"}, {}, "config.urll"),
    ("langfuse", {"publicKey": "pk"}, {}, "config.secretKey"),
    ("datadog", {"apiKey": SECRET, "mlApp": 7}, {}, "config.mlApp"),
    ("s3", {"bucketName": "b"}, {}, "config.accessKeyId"),
    ("s3", {"bucketName": "b", "authMode": "iam_role"}, {}, "config.roleArn"),
    ("s3", {"bucketName": "b", "authMode": "magic"}, {}, "config.authMode"),
    ("carrier-pigeon", {"url": "https://x.example.com"}, {}, "type"),
    ("webhook", CONFIGS["webhook"][0], {"regions": []}, "regions"),
    ("webhook", CONFIGS["webhook"][0], {"regions": ["mars"]}, "regions"),
    ("webhook", CONFIGS["webhook"][0], {"sampling_rate": 0}, "sampling_rate"),
    ("webhook", CONFIGS["webhook"][0], {"sampling_rate": 1.5}, "sampling_rate"),
    ("webhook", CONFIGS["webhook"][0], {"sampling_rate": 1e40}, "sampling_rate"),
    ("webhook", CONFIGS["webhook"][0], {"sampling_rate": 0.00001}, "sampling_rate"),
    ("webhook", CONFIGS["webhook"][0], {"filter_rules": {"groups": [{"rules": [
        {"field": "total_cost", "operator": "gt", "value": "NaN"}]}]}}, "filter_rules.groups[0].rules[0].value"),
    ("webhook", CONFIGS["webhook"][0], {"api_key_hashes": []}, "api_key_hashes"),
    ("webhook", CONFIGS["webhook"][0], {"api_key_hashes": ["a" * 64]}, "api_key_hashes"),
    ("webhook", CONFIGS["webhook"][0], {"filter_rules": {"groups": [{"rules": [
        {"field": "password", "operator": "equals", "value": "x"}]}]}}, "filter_rules.groups[0].rules[0].field"),
    ("webhook", CONFIGS["webhook"][0], {"filter_rules": {"groups": [{"rules": [
        {"field": "model", "operator": "like", "value": "x"}]}]}}, "filter_rules.groups[0].rules[0].operator"),
    ("webhook", CONFIGS["webhook"][0], {"filter_rules": {"groups": [{"rules": [
        {"field": "model", "operator": "equals"}]}]}}, "filter_rules.groups[0].rules[0].value"),
    ("webhook", CONFIGS["webhook"][0], {"filter_rules": {"groups": [{"rules": [
        {"field": "total_cost", "operator": "gt", "value": "lots"}]}]}}, "filter_rules.groups[0].rules[0].value"),
    ("webhook", CONFIGS["webhook"][0], {"filter_rules": {"groups": [{"logic": "xor", "rules": []}]}},
     "filter_rules.groups[0].logic"),
    ("webhook", CONFIGS["webhook"][0], {"filter_rules": {"groups": [{"rules": [
        {"field": "input", "operator": "regex", "value": "(a+)+"}]}]}}, "filter_rules.groups[0].rules[0].value"),
    ("webhook", CONFIGS["webhook"][0], {"filter_rules": "everything"}, "filter_rules"),
    ("webhook", CONFIGS["webhook"][0], {"name": ""}, "name"),
])
def test_it_names_the_bad_field(api, dest_type, config, fields, field):
    response = create(api, dest_type, config, **fields)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["message"]
    assert SECRET not in response.content.decode()
    assert not ObservabilityDestination.objects.exists()


def test_an_iam_role_bucket_gets_an_external_id(api):
    response = create(api, "s3", {"bucketName": "b", "authMode": "iam_role",
                                  "roleArn": "arn:aws:iam::123456789012:role/obs"})
    assert response.status_code == 201
    assert response.json()["data"]["config"]["externalId"].startswith("ows-")


def test_it_refuses_keys_of_another_organization(api, outsider):
    theirs, _ = create_api_key(organization=outsider.owned_organizations.get(), name="Theirs", created_by=outsider)
    response = create(api, api_key_hashes=[theirs.hash])
    assert response.status_code == 400 and "api_key_hashes" in response.json()["error"]["message"]


def test_it_lists_by_workspace(callers, org, workspace):
    create(callers.management, name="default-1")
    create(callers.management, name="default-2")
    create(callers.management, name="prod", workspace_id="production")
    body = callers.check("get", "/api/v1/observability/destinations", outsider_status=200).json()
    assert body["total_count"] == 2 and {d["name"] for d in body["data"]} == {"default-1", "default-2"}
    body = callers.management.get("/api/v1/observability/destinations?workspace_id=production").json()
    assert [d["name"] for d in body["data"]] == ["prod"]
    assert len(callers.management.get("/api/v1/observability/destinations?limit=1").json()["data"]) == 1
    assert callers.outsider.get("/api/v1/observability/destinations").json() == {"data": [], "total_count": 0}
    assert callers.outsider.get(
        f"/api/v1/observability/destinations?workspace_id={workspace.id}").status_code == 404


def test_it_checks_access_to_one_destination(callers):
    destination_id = create(callers.management).json()["data"]["id"]
    response = callers.check("get", f"/api/v1/observability/destinations/{destination_id}")
    assert response.json()["data"]["id"] == destination_id
    assert callers.management.get("/api/v1/observability/destinations/zzz").status_code == 404


def test_it_updates_only_the_fields_sent(callers, org):
    created = create(callers.management, "langfuse").json()["data"]
    path = f"/api/v1/observability/destinations/{created['id']}"
    response = callers.check("patch", path, {"name": "Renamed", "sampling_rate": 0.5})
    destination = ObservabilityDestination.objects.get(id=created["id"])
    assert destination.name == "Renamed" and destination.sampling_rate == Decimal("0.5")
    assert destination_config(destination)["secretKey"] == SECRET and destination.regions == ["global"]
    assert response.json()["data"]["config"] == created["config"]
    entry = AuditLogEntry.objects.get(organization=org, action="update", object_type="ObservabilityDestination")
    assert set(entry.changes) == {"name", "sampling_rate"}


def test_a_config_patch_merges_and_keeps_masked_secrets(api, org):
    created = create(api, "langfuse").json()["data"]
    path = f"/api/v1/observability/destinations/{created['id']}"
    # What GET shows, sent back with one change: the masked secret keeps the stored one.
    response = api.patch(path, {"config": {**created["config"], "publicKey": "pk-new"}}, format="json")
    assert response.status_code == 200
    destination = ObservabilityDestination.objects.get()
    assert destination_config(destination) == {"publicKey": "pk-new", "secretKey": SECRET,
                                               "baseUrl": "https://cloud.langfuse.com"}
    new_secret = "sk-lf-rotated-000000000000WxYz"
    response = api.patch(path, {"config": {"secretKey": new_secret, "baseUrl": None}}, format="json")
    destination.refresh_from_db()
    assert destination_config(destination) == {"publicKey": "pk-new", "secretKey": new_secret}
    assert response.json()["data"]["config"]["secretKey"] == "sk-l...WxYz"
    assert_no_secrets(response, new_secret, SECRET)
    entries = AuditLogEntry.objects.filter(organization=org, action="update")
    assert all(new_secret not in str(e.changes) and SECRET not in str(e.changes) for e in entries)
    # A patch that breaks the config is refused as a whole.
    assert api.patch(path, {"config": {"secretKey": None}}, format="json").status_code == 400
    destination.refresh_from_db()
    assert destination_config(destination)["secretKey"] == new_secret


def test_the_type_cannot_change(api):
    created = create(api).json()["data"]
    response = api.patch(f"/api/v1/observability/destinations/{created['id']}", {"type": "datadog"}, format="json")
    assert response.status_code == 400 and "type" in response.json()["error"]["message"]
    assert ObservabilityDestination.objects.get().type == "webhook"


def test_it_deletes_a_destination(callers, org):
    destination_id = create(callers.management).json()["data"]["id"]
    response = callers.check("delete", f"/api/v1/observability/destinations/{destination_id}")
    assert response.json() == {"deleted": True}
    assert not ObservabilityDestination.objects.exists()
    assert AuditLogEntry.objects.filter(organization=org, action="delete",
                                        object_type="ObservabilityDestination").exists()


def test_another_organization_cannot_touch_a_destination(callers):
    created = create(callers.management).json()["data"]
    path = f"/api/v1/observability/destinations/{created['id']}"
    assert callers.outsider.patch(path, {"name": "pwned"}, format="json").status_code == 404
    assert callers.outsider.delete(path).status_code == 404
    assert ObservabilityDestination.objects.get().name == "Hook"


def test_the_schema_describes_the_served_fields(api):
    from .test_guardrails_api import served_fields_match_schema

    data = create(api).json()["data"]
    assert served_fields_match_schema(api, "/api/v1/observability/destinations", "post", data, status="201")


def test_no_input_makes_a_server_error(api):
    from workspaces.api.observability import DestinationIn

    from .test_guardrails_api import never_a_server_error

    base = {"name": "fuzz", "type": "webhook", "config": {"url": "https://x.example.com"}}
    never_a_server_error(api, "post", "/api/v1/observability/destinations", base, DestinationIn().fields)
    for dest_type in ("s3", "langfuse", "bigquery"):
        never_a_server_error(api, "post", "/api/v1/observability/destinations", {**base, "type": dest_type},
                             ["config"])
    path = f"/api/v1/observability/destinations/{create(api).json()['data']['id']}"
    never_a_server_error(api, "patch", path, {}, DestinationIn().fields, [None, "x"])
    for value in GARBAGE_RULES:
        response = api.patch(path, {"filter_rules": value}, format="json")
        assert response.status_code < 500, (value, response.content[:300])
    for value in ({"url": None}, {"headers": None}, {"headers": {"X": None}}, {"method": None}, {"zzz": None}):
        assert api.patch(path, {"config": value}, format="json").status_code < 500, value


GARBAGE_RULES = [{"groups": None}, {"groups": [None]}, {"groups": [{"rules": None}]}, {"groups": [{"rules": [None]}]},
                 {"groups": [{"rules": [{"field": "model", "operator": "regex", "value": 5}]}]},
                 {"groups": [{"rules": [{"field": ["x"], "operator": {}, "value": []}]}]},
                 {"enabled": "yes", "groups": []}, {"groups": [{"logic": [], "rules": []}]}]
