"""Clients for the management API: anonymous, another organization's management key, an inference key, ours."""

import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The cast's accounts are created per test; a deliberately slow hasher would dominate the run."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def client_for(plaintext: str | None) -> APIClient:
    client = APIClient()
    if plaintext:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def api(management_key) -> APIClient:
    """Our organization's management key."""
    return client_for(management_key[1])


@pytest.fixture
def outsider_key(outsider):
    from workspaces.models import KeyKind
    from workspaces.services import create_api_key

    return create_api_key(organization=outsider.owned_organizations.get(), name="Theirs", kind=KeyKind.MANAGEMENT,
                          created_by=outsider)


@dataclass
class Callers:
    anonymous: APIClient
    outsider: APIClient
    inference: APIClient
    management: APIClient

    def call(self, who: str, method: str, path: str, data=None):
        client = getattr(self, who)
        return getattr(client, method)(path, data, format="json") if data is not None else \
            getattr(client, method)(path)

    def check(self, method: str, path: str, data=None, *, outsider_status: int = 404, ok_status: int = 200):
        """Anonymous 401, another organization 404 (or as given), an inference key 403; ours the response."""
        response = self.call("anonymous", method, path, data)
        assert response.status_code == 401, response.content
        assert response.json()["error"]["code"] == 401
        response = self.call("outsider", method, path, data)
        assert response.status_code == outsider_status, response.content
        response = self.call("inference", method, path, data)
        assert response.status_code == 403, response.content
        assert "management key" in response.json()["error"]["message"]
        response = self.call("management", method, path, data)
        assert response.status_code == ok_status, response.content
        return response


@pytest.fixture
def callers(api, outsider_key, inference_key) -> Callers:
    return Callers(anonymous=client_for(None), outsider=client_for(outsider_key[1]),
                   inference=client_for(inference_key[1]), management=api)


@pytest.fixture
def make_generation(org, workspace, inference_key, member):
    """Generation rows as the proxy writes them, with sensible defaults."""
    from billing.models import Generation

    def make(**fields):
        defaults = dict(id=f"gen-{uuid.uuid4().hex}", organization=org, workspace=workspace,
                        api_key=inference_key[0], user=member, model="test/chat", provider_name="Cheap",
                        provider_slug="cheap", upstream_model="mock-chat", tokens_prompt=10, tokens_completion=20,
                        total_cost=Decimal("0.001"), usage=Decimal("0.001"))
        defaults.update(fields)
        return Generation.objects.create(**defaults)

    return make


SECRET_MARKERS = ("digest", "pepper", "lookup_id", "encrypted")


def assert_no_secrets(response, *plaintexts):
    """No stored secret material and no key value anywhere in a raw response body."""
    body = response.content.decode()
    for marker in SECRET_MARKERS:
        assert marker not in body, f"{marker!r} in {body[:500]}"
    for plaintext in plaintexts:
        assert plaintext not in body
