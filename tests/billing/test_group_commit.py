"""The database store's group commit: many steps in one transaction, applied in the order they arrived, and
the gateway's writer handing a transaction everything that waited for it."""

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from billing.admission import GroupCommit
from billing.counters import Check, Counter, DatabaseCounters
from billing.layers import key_subject
from billing.models import BudgetReservation
from billing.windows import window

NOW = datetime(2026, 7, 15, 10, 30, tzinfo=timezone.utc)
LATER = NOW + timedelta(minutes=15)
D = Decimal


def rid():
    return uuid.uuid4().hex


def reserve(res, counter, amount, limit="1"):
    return ("reserve", (res, [counter], [Check(0, D(limit), False)], D(amount), D(0), LATER, NOW))


def settle(res, counter, amount):
    return ("settle", (res, [counter], [], D(amount), D(0), NOW))


@pytest.fixture
def writer():
    """The writer thread; its database connection is closed with it (PostgreSQL drops the test database)."""
    from django.db import connection

    executor = ThreadPoolExecutor(max_workers=1)
    yield executor
    executor.submit(lambda: connection.close()).result()  # the thread's own connection
    executor.shutdown()


def submit(group, step):
    kind, args = step
    return group.submit(kind, *args)


@pytest.fixture
def counter(inference_key):
    return Counter(key_subject(inference_key[0].pk), window("daily", NOW))


def test_steps_of_one_batch_see_each_other_in_order(db, counter):
    store = DatabaseCounters()
    a, b, c = rid(), rid(), rid()
    results = store.run([reserve(a, counter, "0.7"), reserve(b, counter, "0.5"), settle(a, counter, "0.2"),
                         reserve(c, counter, "0.5")])
    # b does not fit beside a's reservation; once a settled at 0.2, c does.
    assert results[0] is None and results[2] is None and results[3] is None
    assert (results[1].check, results[1].used) == (0, D("0.7"))
    assert store.read(counter) == {"spend": D("0.2"), "spend_byok": 0, "reserved": D("0.5"), "reserved_byok": 0}
    assert list(BudgetReservation.objects.values_list("id", flat=True)) == [c]


def test_a_reservation_released_in_the_batch_that_made_it_leaves_nothing(db, counter):
    store = DatabaseCounters()
    res = rid()
    store.run([reserve(res, counter, "0.4"), settle(res, counter, "0")])
    assert store.read(counter)["reserved"] == 0
    assert not BudgetReservation.objects.exists()


def test_a_released_reservation_is_released_once(db, counter):
    store = DatabaseCounters()
    res, other = rid(), rid()
    store.run([reserve(res, counter, "0.4"), reserve(other, counter, "0.3")])
    store.run([settle(res, counter, "0.1"), settle(res, counter, "0")])
    assert store.read(counter) == {"spend": D("0.1"), "spend_byok": 0, "reserved": D("0.3"), "reserved_byok": 0}


@pytest.mark.django_db(transaction=True)
def test_the_writer_groups_what_waited_and_answers_each_step(counter, writer):
    store = DatabaseCounters()
    sizes = []
    run = store.run

    def counting_run(steps):
        sizes.append(len(steps))
        return run(steps)

    store.run = counting_run
    async def main():
        group = GroupCommit(store, writer)
        ids = [rid() for _ in range(40)]
        results = await asyncio.gather(*[submit(group, reserve(res, counter, "0.1", limit="2")) for res in ids])
        admitted = [res for res, result in zip(ids, results) if result is None]
        await asyncio.gather(*[submit(group, settle(res, counter, "0.05")) for res in admitted])
        return results

    results = asyncio.run(main())
    # Twenty fit under the $2 limit (0.1 each), the other twenty are refused, in arrival order.
    assert results[:20] == [None] * 20 and all(r is not None for r in results[20:])
    assert sum(sizes) == 60 and len(sizes) < 60  # steps shared transactions
    assert store.read(counter) == {"spend": D("1.00"), "spend_byok": 0, "reserved": 0, "reserved_byok": 0}
    assert not BudgetReservation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_failed_transaction_fails_every_step_in_it_and_the_next_one_runs(counter, writer):
    store = DatabaseCounters()
    calls = []
    run = store.run

    def failing_once(steps):
        calls.append(len(steps))
        if len(calls) == 1:
            raise RuntimeError("disk full")
        return run(steps)

    store.run = failing_once
    async def main():
        group = GroupCommit(store, writer)
        first = await asyncio.gather(submit(group, reserve(rid(), counter, "0.1")), return_exceptions=True)
        second = await submit(group, reserve(rid(), counter, "0.1"))
        return first, second

    first, second = asyncio.run(main())
    assert isinstance(first[0], RuntimeError) and second is None
    assert store.read(counter)["reserved"] == D("0.1")


@pytest.mark.django_db(transaction=True)
def test_a_reclaim_queued_before_an_admission_frees_what_dead_processes_held_for_it(counter, writer):
    store = DatabaseCounters()
    dead = rid()
    store.run([("reserve", (dead, [counter], [Check(0, D("1"), False)], D("0.6"), D(0), NOW - timedelta(seconds=1),
                            NOW - timedelta(minutes=20)))])

    async def main():
        group = GroupCommit(store, writer)
        reclaimed = group.enqueue("reclaim", NOW, 200)
        admitted = await submit(group, reserve(rid(), counter, "0.6"))
        return await reclaimed, admitted

    reclaimed, admitted = asyncio.run(main())
    assert (reclaimed, admitted) == (1, None)
    assert store.read(counter)["reserved"] == D("0.6")
