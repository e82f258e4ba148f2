"""The OpenAPI schema and the docs page: public, local assets only, and describing what is served."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

OUR_PATHS = ["/api/v1/key", "/api/v1/keys", "/api/v1/keys/{key_hash}", "/api/v1/workspaces", "/api/v1/workspaces/{ref}",
             "/api/v1/workspaces/{ref}/members", "/api/v1/workspaces/{ref}/members/add",
             "/api/v1/workspaces/{ref}/members/remove", "/api/v1/workspaces/{ref}/budgets",
             "/api/v1/workspaces/{ref}/budgets/{interval}", "/api/v1/organization/members",
             "/api/v1/organization/settings", "/api/v1/credits", "/api/v1/activity", "/api/v1/generation",
             "/api/v1/audit-log"]


@pytest.fixture
def schema():
    response = APIClient().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def properties(schema, ref_or_schema):
    components = schema["components"]["schemas"]
    node = ref_or_schema
    while "$ref" in node or "allOf" in node:
        node = components[node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node["allOf"][0]
    return node


def data_fields(schema, path, method, status="200"):
    operation = schema["paths"][path][method]
    body = properties(schema, operation["responses"][status]["content"]["application/json"]["schema"])
    data = properties(schema, body["properties"]["data"])
    if data.get("type") == "array":
        data = properties(schema, data["items"])
    return set(data["properties"])


def test_it_serves_the_schema_without_a_key(schema):
    assert schema["openapi"].startswith("3.")
    for path in OUR_PATHS:
        assert path in schema["paths"], path
    assert "bearer" in schema["components"]["securitySchemes"]
    assert schema["paths"]["/api/v1/keys"]["post"]["responses"].keys() >= {"201", "400", "401", "403"}
    assert "200" in schema["paths"]["/api/v1/workspaces/{ref}/budgets/{interval}"]["put"]["responses"]


def test_it_serves_a_docs_page_with_local_assets():
    client = APIClient()
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/api/v1/openapi.json" in page
    assert "swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower() and "https://" not in page
    asset = page.split('src="', 2)[1].split('"', 1)[0] if 'src="' in page else None
    assert asset and asset.startswith("/static/")
    assert client.get(asset).status_code == 200


def test_it_describes_the_fields_that_are_served(schema, api, workspace, inference_key, make_generation):
    key = inference_key[0]
    generation = make_generation()
    served = {
        ("/api/v1/keys/{key_hash}", "get"): api.get(f"/api/v1/keys/{key.hash}").json()["data"],
        ("/api/v1/workspaces/{ref}", "get"): api.get("/api/v1/workspaces/production").json()["data"],
        ("/api/v1/generation", "get"): api.get(f"/api/v1/generation?id={generation.pk}").json()["data"],
        ("/api/v1/key", "get"): api.get("/api/v1/key").json()["data"],
        ("/api/v1/credits", "get"): api.get("/api/v1/credits").json()["data"],
        ("/api/v1/organization/settings", "get"): api.get("/api/v1/organization/settings").json()["data"],
        ("/api/v1/workspaces/{ref}/members", "get"): api.get("/api/v1/workspaces/production/members").json()["data"][0],
        ("/api/v1/organization/members", "get"): api.get("/api/v1/organization/members").json()["data"][0],
    }
    for (path, method), data in served.items():
        assert set(data) == data_fields(schema, path, method), path


def test_it_describes_the_inference_endpoint_served_outside_django(schema):
    operation = schema["paths"]["/api/v1/chat/completions"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert "messages" in body["required"] and {"model", "models", "stream", "provider"} <= set(body["properties"])
    assert {"200", "400", "401", "402", "403", "413", "429", "502", "503"} <= set(operation["responses"])
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    error = operation["responses"]["402"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert error in schema["components"]["schemas"]
