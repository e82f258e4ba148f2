"""`GET /generation?id=`: one generation's tokens, cost, timing and attempts."""

import uuid
from decimal import Decimal

import pytest

from .conftest import assert_no_secrets

pytestmark = pytest.mark.django_db

REQUIRED = {"api_type", "app_id", "cache_discount", "cancelled", "created_at", "data_region", "external_user",
            "finish_reason", "generation_time", "http_referer", "id", "is_byok", "latency", "model",
            "moderation_latency", "native_finish_reason", "native_tokens_cached", "native_tokens_completion",
            "native_tokens_completion_images", "native_tokens_prompt", "native_tokens_reasoning", "num_fetches",
            "num_input_audio_prompt", "num_media_completion", "num_media_prompt", "num_search_results", "origin",
            "preset_id", "provider_name", "provider_responses", "router", "service_tier", "streamed",
            "tokens_completion", "tokens_prompt", "total_cost", "upstream_id", "upstream_inference_cost", "usage",
            "user_agent", "web_search_engine", "workspace_id"}


def test_it_returns_a_generation(callers, workspace, make_generation, inference_key):
    generation = make_generation(
        upstream_id="chatcmpl-1", tokens_prompt=11, tokens_completion=22, tokens_reasoning=3, tokens_cached=4,
        total_cost=Decimal("0.0123"), usage=Decimal("0.0123"), latency_ms=250, generation_time_ms=900, streamed=True,
        finish_reason="stop", native_finish_reason="stop", http_referer="https://app.example", user_agent="ua/1",
        end_user="customer-1", provider_responses=[
            {"provider_name": "Down", "status": 503, "latency": 12, "is_byok": False},
            {"provider_name": "Cheap", "status": 200, "latency": 250, "is_byok": False}])
    response = callers.check("get", f"/api/v1/generation?id={generation.pk}")
    data = response.json()["data"]
    assert set(data) >= REQUIRED
    assert data["id"] == generation.pk and data["model"] == "test/chat" and data["provider_name"] == "Cheap"
    assert (data["tokens_prompt"], data["tokens_completion"], data["native_tokens_reasoning"]) == (11, 22, 3)
    assert data["native_tokens_cached"] == 4
    assert data["total_cost"] == data["usage"] == 0.0123
    assert (data["latency"], data["generation_time"], data["streamed"]) == (250, 900, True)
    assert data["origin"] == "https://app.example" and data["external_user"] == "customer-1"
    assert data["workspace_id"] == str(workspace.pk) and data["data_region"] == "global"
    assert [a["status"] for a in data["provider_responses"]] == [503, 200]
    assert data["upstream_inference_cost"] is None and data["router"] is None
    assert_no_secrets(response, inference_key[1])


def test_it_answers_404_for_an_unknown_or_foreign_generation(api, outsider_key, make_generation):
    from billing.models import Generation

    theirs = Generation.objects.create(id="gen-theirs", organization=outsider_key[0].organization, model="m")
    assert api.get(f"/api/v1/generation?id=gen-{uuid.uuid4().hex}").status_code == 404
    response = api.get(f"/api/v1/generation?id={theirs.pk}")
    assert response.status_code == 404 and "not found" in response.json()["error"]["message"]


def test_it_requires_an_id(api):
    response = api.get("/api/v1/generation")
    assert response.status_code == 400
    assert "id" in response.json()["error"]["message"]


def test_it_tolerates_odd_attempt_records(api, make_generation):
    generation = make_generation(provider_responses=[{"provider_name": "Cheap"}, "garbage"], upstream_id="")
    data = api.get(f"/api/v1/generation?id={generation.pk}").json()["data"]
    [attempt] = data["provider_responses"]
    assert attempt["provider_name"] == "Cheap" and attempt["status"] is None
    assert data["upstream_id"] is None
