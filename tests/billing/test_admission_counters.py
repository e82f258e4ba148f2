"""The counter stores (database rows, and Redis when configured): reserve, refuse, settle, release, reclaim,
seed from generations, and reset per window. Every test runs on each store with a controlled clock."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from billing.counters import Check, Counter
from billing.layers import key_subject, workspace_subject
from billing.windows import window
from tests.billing.budget_helpers import loop, make_generation, store  # noqa: F401 (fixtures)

NOW = datetime(2026, 7, 15, 10, 30, tzinfo=timezone.utc)
LATER = NOW + timedelta(minutes=15)
D = Decimal


def rid():
    import uuid

    return uuid.uuid4().hex


@pytest.fixture
def key(inference_key):
    return inference_key[0]


def daily(subject, now=NOW):
    return Counter(subject, window("daily", now))


def test_it_reserves_then_settles_the_real_cost(store, key):
    counter = daily(key_subject(key.pk))
    assert store.reserve(res := rid(), [counter], [Check(0, D("1"), False)], D("0.3"), D(0), LATER, NOW) is None
    assert store.read(counter) == {"spend": 0, "spend_byok": 0, "reserved": D("0.3"), "reserved_byok": 0}
    store.settle(res, [counter], [], D("0.1"), D(0), NOW)
    assert store.read(counter) == {"spend": D("0.1"), "spend_byok": 0, "reserved": 0, "reserved_byok": 0}


def test_it_refuses_when_the_worst_case_would_pass_the_limit_and_reserves_nothing(store, key):
    counter = daily(key_subject(key.pk))
    assert store.reserve(rid(), [counter], [Check(0, D("1"), False)], D("0.6"), D(0), LATER, NOW) is None
    refusal = store.reserve(rid(), [counter], [Check(0, D("1"), False)], D("0.5"), D(0), LATER, NOW)
    assert (refusal.check, refusal.used) == (0, D("0.6"))
    assert store.read(counter)["reserved"] == D("0.6")
    # What still fits is admitted.
    assert store.reserve(rid(), [counter], [Check(0, D("1"), False)], D("0.4"), D(0), LATER, NOW) is None


def test_a_spent_layer_refuses_even_a_free_request(store, key):
    make_generation(key, usage="1", created_at=NOW - timedelta(hours=1))
    counter = daily(key_subject(key.pk))
    refusal = store.reserve(rid(), [counter], [Check(0, D("1"), False)], D(0), D(0), LATER, NOW)
    assert refusal is not None and refusal.used == D("1")


def test_it_names_the_first_failing_check_and_touches_no_counter(store, key, workspace):
    key_counter, ws_counter = daily(key_subject(key.pk)), daily(workspace_subject(workspace.pk))
    checks = [Check(0, D("10"), False), Check(1, D("0.2"), False), Check(1, D("0.1"), False)]
    refusal = store.reserve(rid(), [key_counter, ws_counter], checks, D("0.15"), D(0), LATER, NOW)
    assert refusal.check == 2
    assert store.read(key_counter)["reserved"] == 0 and store.read(ws_counter)["reserved"] == 0


def test_it_seeds_a_counter_from_the_generations_in_its_window(store, key):
    make_generation(key, usage="0.25", created_at=NOW - timedelta(hours=10))  # today
    make_generation(key, usage="0.5", created_at=NOW - timedelta(days=1))  # yesterday
    make_generation(key, usage="0", total_cost="2", is_byok=True, created_at=NOW - timedelta(hours=1))
    counter = daily(key_subject(key.pk))
    assert store.reserve(rid(), [counter], [Check(0, D("100"), False)], D(0), D(0), LATER, NOW) is None
    values = store.read(counter)
    assert (values["spend"], values["spend_byok"]) == (D("0.25"), D("2"))
    monthly = Counter(key_subject(key.pk), window("monthly", NOW))
    store.reserve(rid(), [monthly], [Check(0, D("100"), False)], D(0), D(0), LATER, NOW)
    assert store.read(monthly)["spend"] == D("0.75")


def test_byok_spend_counts_only_on_layers_that_include_it(store, key):
    make_generation(key, usage="0", total_cost="0.9", is_byok=True, created_at=NOW - timedelta(hours=1))
    counter = daily(key_subject(key.pk))
    assert store.reserve(rid(), [counter], [Check(0, D("1"), False)], D("0.5"), D(0), LATER, NOW) is None
    refusal = store.reserve(rid(), [counter], [Check(0, D("1"), True)], D(0), D("0.05"), LATER, NOW)
    # 0.9 of BYOK spend + 0.5 reserved for credits on a layer that includes BYOK.
    assert refusal is not None and refusal.used == D("1.4")


def test_a_new_window_starts_from_its_own_generations(store, key):
    counter = daily(key_subject(key.pk))
    store.reserve(res := rid(), [counter], [Check(0, D("1"), False)], D("1"), D(0), LATER, NOW)
    store.settle(res, [counter], [], D("1"), D(0), NOW)
    assert store.reserve(rid(), [counter], [Check(0, D("1"), False)], D(0), D(0), LATER, NOW) is not None
    tomorrow = datetime(2026, 7, 16, 0, 0, tzinfo=timezone.utc)
    fresh = daily(key_subject(key.pk), tomorrow)
    assert store.reserve(rid(), [fresh], [Check(0, D("1"), False)], D("0.5"), D(0), tomorrow + timedelta(minutes=15),
                         tomorrow) is None
    assert store.read(fresh)["spend"] == 0


def test_releasing_twice_or_settling_after_a_release_never_goes_negative(store, key):
    counter = daily(key_subject(key.pk))
    store.reserve(res := rid(), [counter], [Check(0, D("1"), False)], D("0.5"), D(0), LATER, NOW)
    store.settle(res, [], [], D(0), D(0), NOW)
    store.settle(res, [], [], D(0), D(0), NOW)
    store.settle(res, [counter], [], D("0.2"), D(0), NOW)
    assert store.read(counter) == {"spend": D("0.2"), "spend_byok": 0, "reserved": 0, "reserved_byok": 0}


def test_it_reclaims_reservations_past_their_expiry(store, key):
    counter = daily(key_subject(key.pk))
    store.reserve(rid(), [counter], [Check(0, D("1"), False)], D("0.5"), D(0), NOW + timedelta(seconds=5), NOW)
    store.reserve(rid(), [counter], [Check(0, D("1"), False)], D("0.25"), D(0), NOW + timedelta(hours=1), NOW)
    store.reclaim(NOW + timedelta(seconds=10))
    assert store.read(counter)["reserved"] == D("0.25")


def test_settlement_charges_optional_counters_only_where_they_exist(store, key, workspace):
    key_counter, ws_counter = daily(key_subject(key.pk)), daily(workspace_subject(workspace.pk))
    ws_monthly = Counter(workspace_subject(workspace.pk), window("monthly", NOW))
    store.reserve(rid(), [ws_counter], [Check(0, D("5"), False)], D(0), D(0), LATER, NOW)
    store.settle(None, [key_counter], [ws_counter, ws_monthly], D("0.1"), D("0.2"), NOW)
    assert store.read(key_counter)["spend"] == D("0.1")
    assert (store.read(ws_counter)["spend"], store.read(ws_counter)["spend_byok"]) == (D("0.1"), D("0.2"))
    assert store.read(ws_monthly) is None


def test_a_seeded_counter_and_its_generations_agree_after_settlement(store, key):
    counter = daily(key_subject(key.pk))
    make_generation(key, usage="0.125", created_at=NOW - timedelta(minutes=5))
    store.reserve(res := rid(), [counter], [Check(0, D("1"), False)], D("0.3"), D(0), LATER, NOW)
    # Settlement charges the counter first; the recorder writes the generation after.
    store.settle(res, [counter], [], D("0.0000000001"), D(0), NOW)
    make_generation(key, usage="0.0000000001", created_at=NOW)
    assert store.read(counter)["spend"] == D("0.1250000001")
