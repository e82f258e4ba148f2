"""`GET /activity`: the last 30 complete UTC days, per day, model and provider endpoint."""

from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.utils import timezone

from workspaces.services import create_api_key

pytestmark = pytest.mark.django_db

ITEM_FIELDS = {"date", "model", "model_permaslug", "endpoint_id", "provider_name", "usage", "byok_usage_inference",
               "requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens"}


def day(n: int) -> datetime:
    """Noon UTC, n days ago."""
    today = timezone.now().astimezone(dt_timezone.utc).date()
    return datetime.combine(today - timedelta(days=n), time(12), tzinfo=dt_timezone.utc)


def test_it_groups_by_day_model_and_endpoint(callers, make_generation):
    make_generation(created_at=day(1), usage=Decimal("1"), tokens_prompt=5, tokens_completion=7, tokens_reasoning=2,
                    tokens_cached=1)
    make_generation(created_at=day(1) + timedelta(hours=3), usage=Decimal("2"), tokens_prompt=5)
    make_generation(created_at=day(1), model="test/claude", provider_slug="anthro", provider_name="Anthro",
                    usage=Decimal("0.5"), total_cost=Decimal("4"), is_byok=True)
    make_generation(created_at=day(2), usage=Decimal("3"))
    make_generation(created_at=timezone.now(), usage=Decimal("100"))  # today is not complete
    make_generation(created_at=day(31), usage=Decimal("100"))  # too old
    response = callers.check("get", "/api/v1/activity", outsider_status=200)
    items = response.json()["data"]
    assert [(i["date"], i["model"], i["requests"], i["usage"]) for i in items] == [
        (day(1).date().isoformat(), "test/chat", 2, 3),
        (day(1).date().isoformat(), "test/claude", 1, 0.5),
        (day(2).date().isoformat(), "test/chat", 1, 3),
    ]
    first = items[0]
    assert set(first) == ITEM_FIELDS
    assert (first["prompt_tokens"], first["completion_tokens"], first["reasoning_tokens"], first["cached_tokens"]) == (
        10, 27, 2, 1)
    assert first["provider_name"] == "Cheap" and first["model_permaslug"] == "test/chat"
    assert items[1]["byok_usage_inference"] == 4
    assert callers.outsider.get("/api/v1/activity").json() == {"data": []}


def test_it_filters_by_date_key_user_and_workspace(api, org, workspace, member, admin, make_generation):
    other_key, _ = create_api_key(organization=org, name="default key", created_by=admin)
    make_generation(created_at=day(1), usage=Decimal("1"))
    make_generation(created_at=day(3), usage=Decimal("2"))
    make_generation(created_at=day(1), usage=Decimal("4"), api_key=other_key, user=admin,
                    workspace=org.default_workspace)

    def total(query):
        response = api.get(f"/api/v1/activity?{query}")
        assert response.status_code == 200, response.content
        return sum(i["usage"] for i in response.json()["data"])

    assert total("") == 7
    assert total(f"date={day(1).date().isoformat()}") == 5
    assert total(f"api_key_hash={other_key.hash}") == 4
    assert total(f"user_id={member.pk}") == 3
    assert total("workspace_id=production") == 3
    assert total(f"workspace_id={org.default_workspace.pk}") == 4


def test_it_splits_per_workspace_on_request(api, org, workspace, make_generation):
    make_generation(created_at=day(1), usage=Decimal("1"))
    make_generation(created_at=day(1), usage=Decimal("2"), workspace=org.default_workspace)
    make_generation(created_at=day(1), usage=Decimal("4"), workspace=None)
    items = api.get("/api/v1/activity?group_by=workspace").json()["data"]
    # Generations without a workspace count for the Default one.
    assert sorted((i["workspace_id"], i["usage"]) for i in items) == sorted(
        [(str(workspace.pk), 1), (str(org.default_workspace.pk), 6)])
    assert "workspace_id" not in api.get("/api/v1/activity").json()["data"][0]


@pytest.mark.parametrize("query,field,status", [
    ("date=yesterday", "date", 400), ("date=2026-02-30", "date", 400), ("date=2000-01-01", "date", 400),
    ("user_id=abc", "user_id", 400), ("group_by=model", "group_by", 400),
    ("api_key_hash=" + "0" * 64, "API key", 404), ("workspace_id=nowhere", "Workspace", 404),
])
def test_it_rejects_bad_filters(api, query, field, status):
    response = api.get(f"/api/v1/activity?{query}")
    assert response.status_code == status
    assert field in response.json()["error"]["message"]


def test_it_refuses_filters_on_another_organization(api, outsider, outsider_key):
    theirs = outsider.owned_organizations.get()
    assert api.get(f"/api/v1/activity?user_id={outsider.pk}").status_code == 404
    assert api.get(f"/api/v1/activity?api_key_hash={outsider_key[0].hash}").status_code == 404
    assert api.get(f"/api/v1/activity?workspace_id={theirs.default_workspace.pk}").status_code == 404
