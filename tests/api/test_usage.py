"""billing.usage: a key's spend per UTC window, and what is left of its limit."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest

from billing.usage import effective_budget, key_usage, keys_usage, limit_remaining, window_starts

pytestmark = pytest.mark.django_db

# A Wednesday, mid-month.
NOW = datetime(2026, 7, 15, 10, 30, tzinfo=dt_timezone.utc)


def at(**delta):
    return NOW - timedelta(**delta)


def test_it_starts_windows_at_utc_day_monday_and_the_first():
    starts = window_starts(NOW)
    assert starts["daily"] == datetime(2026, 7, 15, tzinfo=dt_timezone.utc)
    assert starts["weekly"] == datetime(2026, 7, 13, tzinfo=dt_timezone.utc)
    assert starts["monthly"] == datetime(2026, 7, 1, tzinfo=dt_timezone.utc)


def test_it_sums_credits_and_byok_per_window(inference_key, make_generation):
    make_generation(created_at=at(minutes=5), usage=Decimal("1"), total_cost=Decimal("1"))
    make_generation(created_at=at(days=1), usage=Decimal("2"), total_cost=Decimal("2"))  # Tuesday
    make_generation(created_at=at(days=3), usage=Decimal("4"), total_cost=Decimal("4"))  # last week
    make_generation(created_at=at(days=20), usage=Decimal("8"), total_cost=Decimal("8"))  # last month
    make_generation(created_at=at(minutes=1), usage=Decimal("0"), total_cost=Decimal("16"), is_byok=True)
    make_generation(created_at=at(days=40), usage=Decimal("0"), total_cost=Decimal("32"), is_byok=True)
    usage = key_usage(inference_key[0], now=NOW)
    assert usage == {
        "usage": Decimal("15"), "usage_daily": Decimal("1"), "usage_weekly": Decimal("3"),
        "usage_monthly": Decimal("7"), "byok_usage": Decimal("48"), "byok_usage_daily": Decimal("16"),
        "byok_usage_weekly": Decimal("16"), "byok_usage_monthly": Decimal("16")}
    assert all(isinstance(v, Decimal) for v in usage.values())


def test_it_counts_only_the_keys_own_generations(org, workspace, inference_key, make_generation):
    from workspaces.services import create_api_key

    other, _ = create_api_key(organization=org, workspace=workspace, name="other")
    make_generation(created_at=at(minutes=1), usage=Decimal("1"))
    make_generation(created_at=at(minutes=1), usage=Decimal("5"), api_key=other)
    many = keys_usage([inference_key[0], other], now=NOW)
    assert many[inference_key[0].pk]["usage"] == Decimal("1")
    assert many[other.pk]["usage"] == Decimal("5")
    assert key_usage(other, now=NOW)["usage_daily"] == Decimal("5")


def test_it_gives_zeros_to_a_key_without_generations(inference_key):
    assert set(key_usage(inference_key[0]).values()) == {Decimal(0)}


@pytest.mark.parametrize("reset,byok,expected", [
    (None, False, "85"), ("daily", False, "99"), ("weekly", True, "81"), ("monthly", False, "95"),
])
def test_it_computes_the_remaining_limit_in_the_reset_window(inference_key, reset, byok, expected):
    key = inference_key[0]
    key.limit, key.limit_reset, key.include_byok_in_limit = Decimal("100"), reset, byok
    usage = {"usage": Decimal(15), "usage_daily": Decimal(1), "usage_weekly": Decimal(3),
             "usage_monthly": Decimal(5), "byok_usage": Decimal(50), "byok_usage_daily": Decimal(2),
             "byok_usage_weekly": Decimal(16), "byok_usage_monthly": Decimal(20)}
    assert limit_remaining(key, usage) == Decimal(expected)
    key.limit = Decimal("1")
    assert limit_remaining(key, usage) == Decimal(0)
    key.limit = None
    assert limit_remaining(key, usage) is None


def test_it_picks_the_layer_that_blocks_first():
    a = {"scope": "workspace", "remaining_usd": 5}
    b = {"scope": "api_key", "remaining_usd": 2}
    spent = {"scope": "member", "remaining_usd": 0}
    assert effective_budget([]) is None
    assert effective_budget([a, b]) is b
    assert effective_budget([a, spent, b]) is spent
