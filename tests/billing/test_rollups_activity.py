"""`GET /activity` (and the dashboard's `billing.activity`) give the same numbers whether the rollup ran or
not: rollups for the rows behind the watermark, generation rows for the tail."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from billing import activity as billing_activity
from billing import rollups
from billing.models import ActivityRollup
from tests.billing.generations import day_ago, make_generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(management_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {management_key[1]}")
    return client


@pytest.fixture
def keys(org, workspace, admin, inference_key):
    from workspaces.services import create_api_key

    admin_key = create_api_key(organization=org, workspace=org.default_workspace, name="Admin key",
                               created_by=admin)[0]
    return inference_key[0], admin_key


def views(api, member_key, member) -> dict:
    """Every shape of /activity the tests compare."""
    queries = {
        "all": "",
        "by_workspace": "group_by=workspace",
        "one_key": f"api_key_hash={member_key.hash}",
        "one_member": f"user_id={member.pk}",
        "one_day": f"date={day_ago(2).date().isoformat()}",
    }
    out = {}
    for name, query in queries.items():
        response = api.get(f"/api/v1/activity?{query}")
        assert response.status_code == 200, response.content
        out[name] = response.json()["data"]
    return out


def from_generations_only(monkeypatch, api, member_key, member) -> dict:
    """The same views computed with no rollup at all (every number straight from generation rows)."""
    with monkeypatch.context() as patch:
        patch.setattr(rollups, "current_mark", lambda: rollups.Mark(None))
        return views(api, member_key, member)


def requests_in(items) -> int:
    return sum(item["requests"] for item in items)


def seed(org, workspace, member_key, admin_key):
    default = org.default_workspace
    for days, hour in ((4, 9), (4, 15), (3, 10), (2, 8), (2, 10)):
        make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(days, hour),
                        usage="0.000137", prompt=11, completion=7)
    make_generation(org, workspace=default, api_key=admin_key, created_at=day_ago(3, 11), model="test/claude",
                    provider="anthro", usage="0.0021")
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(2, 9), is_byok=True,
                    total_cost="0.004", usage="0.0002")


def test_activity_is_identical_before_and_after_a_rollup_and_as_rows_arrive(monkeypatch, api, org, workspace,
                                                                             member, keys):
    member_key, admin_key = keys
    seed(org, workspace, member_key, admin_key)
    before = views(api, member_key, member)
    assert requests_in(before["all"]) == 7
    assert requests_in(before["one_key"]) == 6

    # Rolled up to mid-day two days ago: day 2 is split between the rollup and the tail.
    rollups.roll_up_activity(now=day_ago(2, 9, 30), lag_seconds=0)
    assert ActivityRollup.objects.exists()
    assert views(api, member_key, member) == before

    # More rows arrive after the watermark, on the split day and the next one.
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(2, 21), usage="0.00031")
    make_generation(org, workspace=org.default_workspace, api_key=admin_key, created_at=day_ago(1, 7),
                    model="test/claude", provider="anthro", usage="0.0009")
    grown = views(api, member_key, member)
    assert requests_in(grown["all"]) == 9
    assert requests_in(grown["one_key"]) == 7
    assert grown == from_generations_only(monkeypatch, api, member_key, member)

    rollups.roll_up_activity(lag_seconds=0)
    assert views(api, member_key, member) == grown
    table = list(ActivityRollup.objects.order_by("pk").values())
    rollups.roll_up_activity(lag_seconds=0)
    assert views(api, member_key, member) == grown
    assert list(ActivityRollup.objects.order_by("pk").values()) == table


def test_the_dashboard_window_including_today_adds_todays_tail(org, workspace, keys):
    member_key, _ = keys
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 10))
    rollups.roll_up_activity(lag_seconds=0)
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(0, 0, 1))

    today = day_ago(0).date()
    items = billing_activity.activity(billing_activity.ActivityFilter(organization=org),
                                      today=today + timedelta(days=1))

    assert [(i["date"], i["requests"]) for i in items] == [(today.isoformat(), 1),
                                                          ((today - timedelta(days=1)).isoformat(), 1)]


def test_totals_group_by_any_dimension_from_rollups_and_tail(org, workspace, keys, member, admin):
    member_key, admin_key = keys
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(2, 10), status="error")
    make_generation(org, workspace=org.default_workspace, api_key=admin_key, created_at=day_ago(2, 11))
    rollups.roll_up_activity(lag_seconds=0)
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 10), cancelled=True)

    flt = billing_activity.ActivityFilter(organization=org)
    by_user = {row["user_id"]: row for row in
               billing_activity.totals(flt, ("user_id",), day_ago(3).date(), day_ago(1).date())}

    assert {uid: (r["requests"], r["errors"], r["cancelled"]) for uid, r in by_user.items()} == {
        member.pk: (2, 1, 1), admin.pk: (1, 0, 0)}
    only_production = billing_activity.ActivityFilter(organization=org, workspace_ids=(workspace.pk,))
    rows = billing_activity.totals(only_production, ("workspace_id",), day_ago(3).date(), day_ago(1).date())
    assert [(r["workspace_id"], r["requests"]) for r in rows] == [(workspace.pk, 2)]


def test_totals_refuse_an_unknown_grouping(org):
    with pytest.raises(ValueError):
        billing_activity.totals(billing_activity.ActivityFilter(organization=org), ("password",),
                                day_ago(2).date(), day_ago(1).date())


def test_a_rollup_committing_while_activity_is_read_is_not_counted_twice(monkeypatch, org, workspace, keys):
    member_key, _ = keys
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(2, 10))
    rollups.roll_up_activity(lag_seconds=0)
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(2, 12))
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 12))

    real_tail = billing_activity._tail
    calls = []

    def tail_then_rollup(*args, **kwargs):
        rows = real_tail(*args, **kwargs)
        if not calls:  # the rollup commits between this reader's tail and rollup queries
            rollups.roll_up_activity(lag_seconds=0)
        calls.append(1)
        return rows

    monkeypatch.setattr(billing_activity, "_tail", tail_then_rollup)
    items = billing_activity.activity(billing_activity.ActivityFilter(organization=org))

    assert sum(i["requests"] for i in items) == 3
    assert len(calls) == 2  # read again after the version moved
