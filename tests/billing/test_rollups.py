"""The activity rollup: buckets per (UTC day, organization, workspace, key, member, model, provider), rebuilt
whole and idempotently from generation rows behind a watermark."""

from collections import defaultdict
from datetime import timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import rollups
from billing.models import ActivityRollup, Generation, RollupWatermark
from tests.billing.generations import day_ago, make_generation

pytestmark = pytest.mark.django_db

DIMENSIONS = ("day", "organization_id", "workspace_id", "api_key_id", "user_id", "model", "provider_slug",
              "provider_name")
METRICS = ("requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "usage",
           "byok_usage", "errors", "cancelled")


@pytest.fixture
def admin_key(org, workspace, admin):
    from workspaces.services import create_api_key

    return create_api_key(organization=org, workspace=workspace, name="Admin key", created_by=admin)[0]


@pytest.fixture
def member_key(inference_key):
    return inference_key[0]


def rollup_table() -> list[tuple]:
    rows = ActivityRollup.objects.values_list(*DIMENSIONS, *METRICS)
    return sorted(rows, key=lambda row: tuple(str(v) for v in row))


def expected_from_generations() -> list[tuple]:
    """The buckets computed here in Python, independently of the rollup's SQL."""
    buckets = defaultdict(lambda: dict.fromkeys(METRICS, 0))
    for g in Generation.objects.all():
        key = (g.created_at.astimezone(dt_timezone.utc).date(), g.organization_id, g.workspace_id, g.api_key_id,
               g.user_id, g.model, g.provider_slug, g.provider_name)
        b = buckets[key]
        b["requests"] += 1
        b["prompt_tokens"] += g.tokens_prompt
        b["completion_tokens"] += g.tokens_completion
        b["reasoning_tokens"] += g.tokens_reasoning
        b["cached_tokens"] += g.tokens_cached
        b["usage"] += g.usage
        b["byok_usage"] += g.total_cost if g.is_byok else 0
        b["errors"] += g.status == "error"
        b["cancelled"] += g.cancelled
    rows = [(*key, *(b[m] for m in METRICS)) for key, b in buckets.items()]
    return sorted(rows, key=lambda row: tuple(str(v) for v in row))


def test_it_sums_generations_per_day_workspace_key_member_model_and_provider(org, workspace, member_key,
                                                                                  admin_key):
    default = org.default_workspace
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(3, 9))
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(3, 23, 59), usage="0.5")
    make_generation(org, workspace=workspace, api_key=admin_key, created_at=day_ago(3, 10), model="test/claude",
                    provider="anthro", status="error", error_code=502)
    make_generation(org, workspace=default, api_key=None, created_at=day_ago(2, 0, 0), cancelled=True,
                    status="cancelled")
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(2, 8), is_byok=True,
                    total_cost=Decimal("0.75"), usage=Decimal("0.0375"))
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 8), provider="pricey",
                    prompt=1000, completion=2000)

    rebuilt = rollups.roll_up_activity(lag_seconds=0)

    assert rebuilt == 3  # (day, organization) buckets: three days of one organization
    assert rollup_table() == expected_from_generations()
    member_day3 = ActivityRollup.objects.get(day=day_ago(3).date(), api_key=member_key)
    assert (member_day3.requests, member_day3.usage) == (2, Decimal("0.500123"))
    assert member_day3.user_id == member_key.created_by_id
    assert ActivityRollup.objects.get(day=day_ago(3).date(), api_key=admin_key).errors == 1
    assert ActivityRollup.objects.get(day=day_ago(2).date(), api_key=None).cancelled == 1
    byok = ActivityRollup.objects.get(day=day_ago(2).date(), api_key=member_key)
    assert (byok.usage, byok.byok_usage) == (Decimal("0.0375"), Decimal("0.75"))


def test_it_changes_nothing_when_run_twice(org, workspace, member_key):
    for days in (3, 2, 1):
        make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(days))
    rollups.roll_up_activity(lag_seconds=0)
    rows = list(ActivityRollup.objects.order_by("pk").values())
    mark = RollupWatermark.objects.get()

    assert rollups.roll_up_activity(lag_seconds=0) == 0

    assert list(ActivityRollup.objects.order_by("pk").values()) == rows
    again = RollupWatermark.objects.get()
    assert (again.created_at, again.generation_id, again.version) == (mark.created_at, mark.generation_id,
                                                                      mark.version)


def test_rebuilding_a_day_again_writes_the_same_numbers(org, workspace, member_key):
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(2, 9))
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(2, 11), model="test/claude")
    rollups.roll_up_activity(lag_seconds=0)
    before = rollup_table()

    assert rollups.reroll_day(day_ago(2).date()) == 1
    assert rollups.reroll_day(day_ago(2).date()) == 1

    assert rollup_table() == before


def test_it_moves_the_watermark_one_day_per_transaction_to_the_last_row(org, workspace, member_key):
    for days in (3, 2, 1):
        make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(days, 6))
    last = make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 7))

    rollups.roll_up_activity(lag_seconds=0)

    mark = RollupWatermark.objects.get()
    assert (mark.created_at, mark.generation_id) == (last.created_at, last.id)
    assert mark.version == 3  # one commit per day that had new rows


def test_rows_younger_than_the_lag_stay_in_the_tail(org, workspace, member_key):
    now = timezone.now()
    old = make_generation(org, workspace=workspace, api_key=member_key, created_at=now - timedelta(minutes=5))
    make_generation(org, workspace=workspace, api_key=member_key, created_at=now - timedelta(seconds=10))

    rollups.roll_up_activity(now=now, lag_seconds=60)

    mark = RollupWatermark.objects.get()
    assert (mark.created_at, mark.generation_id) == (old.created_at, old.id)
    assert ActivityRollup.objects.get().requests == 1


def test_only_buckets_with_new_rows_are_rebuilt(org, workspace, member_key, outsider):
    theirs = outsider.owned_organizations.get()
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 8))
    make_generation(theirs, workspace=theirs.default_workspace, created_at=day_ago(1, 9))
    rollups.roll_up_activity(lag_seconds=0)
    their_row = ActivityRollup.objects.get(organization=theirs)

    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 10))
    assert rollups.roll_up_activity(lag_seconds=0) == 1

    assert ActivityRollup.objects.get(organization=theirs).pk == their_row.pk  # untouched
    assert ActivityRollup.objects.get(organization=org).requests == 2


def test_a_row_written_late_is_counted_when_its_day_is_rebuilt(org, workspace, member_key):
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(2, 10))
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(2, 12))
    rollups.roll_up_activity(lag_seconds=0)
    # Committed after the rollup with a timestamp before the watermark (its writer was held up).
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(2, 11))
    assert rollups.roll_up_activity(lag_seconds=0) == 0
    assert ActivityRollup.objects.get().requests == 2

    rollups.reroll_day(day_ago(2).date())  # the nightly re-roll

    assert ActivityRollup.objects.get().requests == 3


def test_a_new_row_of_the_same_day_also_picks_up_a_late_one(org, workspace, member_key):
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 10))
    rollups.roll_up_activity(lag_seconds=0)
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 9))  # late
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 13))  # new

    rollups.roll_up_activity(lag_seconds=0)

    assert ActivityRollup.objects.get().requests == 3


def test_reroll_drops_buckets_whose_generations_are_gone(org, workspace, member_key):
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(3, 10))
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 10))
    rollups.roll_up_activity(lag_seconds=0)
    Generation.objects.filter(created_at__lt=day_ago(2, 0)).delete()

    rollups.reroll_day(day_ago(3).date())

    assert list(ActivityRollup.objects.values_list("day", flat=True)) == [day_ago(1).date()]


def test_a_day_entirely_after_the_watermark_is_not_rolled_by_reroll(org, workspace, member_key):
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(3, 10))
    rollups.roll_up_activity(now=day_ago(2, 0), lag_seconds=0)
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 10))

    assert rollups.reroll_day(day_ago(1).date()) == 0

    assert not ActivityRollup.objects.filter(day=day_ago(1).date()).exists()  # still the tail's


def test_deleting_a_key_nulls_it_in_rollups_as_in_generations(org, workspace, member_key):
    make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 10))
    rollups.roll_up_activity(lag_seconds=0)

    member_key.delete()

    assert ActivityRollup.objects.get().api_key_id is None
    assert rollup_table() == expected_from_generations()


def test_the_rollup_is_one_grouped_query_per_day_not_a_loop_over_rows(org, workspace, member_key,
                                                                        django_assert_max_num_queries):
    for minute in range(0, 60, 2):
        make_generation(org, workspace=workspace, api_key=member_key, created_at=day_ago(1, 10, minute))
    with django_assert_max_num_queries(15):
        rollups.roll_up_activity(lag_seconds=0)
    assert ActivityRollup.objects.get().requests == 30
