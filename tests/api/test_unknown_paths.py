"""Unknown paths under /api/ answer in the API's error envelope, whether DEBUG is on or off."""

import pytest


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("method,path", [("get", "/api/v1/nope"), ("post", "/api/v1/keys/a/b/c"),
                                         ("get", "/api/v2/models")])
def test_unknown_api_paths_are_json_404s(client, settings, debug, method, path):
    settings.DEBUG = debug
    response = getattr(client, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == 404
    assert path in response.json()["error"]["message"]


def test_known_api_paths_still_answer(client, db):
    assert client.get("/api/v1/models").status_code == 200
