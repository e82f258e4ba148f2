"""Bad input answers 400 (or 404), never a 500: NUL characters, huge numbers, odd types."""

import pytest

pytestmark = pytest.mark.django_db

GETS = ["/api/v1/keys/%00", "/api/v1/workspaces/%00", "/api/v1/workspaces/%00/members", "/api/v1/generation?id=%00",
        "/api/v1/activity?api_key_hash=%00", "/api/v1/workspaces/production/budgets/%00",
        "/api/v1/audit-log?object_type=%00", "/api/v1/keys?workspace_id=%00",
        "/api/v1/keys?offset=100000000000000000000", "/api/v1/workspaces?offset=100000000000000000000",
        "/api/v1/organization/members?offset=100000000000000000000"]


@pytest.mark.parametrize("path", GETS)
def test_it_answers_400_to_a_bad_path_or_query(api, workspace, path):
    response = api.get(path)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == 400


@pytest.mark.parametrize("method,path,body,field", [
    ("post", "/api/v1/workspaces", {"name": "a\x00b", "slug": "ok"}, "name"),
    ("post", "/api/v1/keys", {"name": "a\x00b"}, "name"),
    ("post", "/api/v1/keys", {"name": "big", "limit": 1e30}, "limit"),
    ("put", "/api/v1/workspaces/production/budgets/daily", {"limit_usd": 1e30}, "limit_usd"),
    ("post", "/api/v1/workspaces/production/members/add", {"user_ids": ["\x00"]}, "user_ids"),
    ("patch", "/api/v1/workspaces/production", {"name": {"nested": 1}}, "name"),
    ("patch", "/api/v1/organization/settings", {"is_filtered_model_catalog_enabled": None},
     "is_filtered_model_catalog_enabled"),
])
def test_it_answers_400_to_a_bad_body(api, workspace, method, path, body, field):
    response = getattr(api, method)(path, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["message"]
