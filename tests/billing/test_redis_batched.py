"""Redis commands in flight share round-trips: each gets its own answer or its own error; a Redis that lost
the counter scripts gets them loaded again."""

import asyncio
import uuid
from decimal import Decimal

import pytest
from django.conf import settings

from tests.billing.budget_helpers import loop  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="REDIS_URL is not set")


def test_concurrent_commands_share_pipelines_and_keep_their_own_results_and_errors():
    from openrouter_ws.configversion import Batched, async_client

    async def main():
        client = async_client(settings.REDIS_URL)
        batched = Batched(client)
        sent = []
        pipeline = client.pipeline

        def counting_pipeline(**kwargs):
            pipe = pipeline(**kwargs)
            sent.append(pipe)
            return pipe

        client.pipeline = counting_pipeline
        try:
            await client.delete("ows:test:batched", "ows:test:hash")
            await client.hset("ows:test:hash", "f", "v")
            calls = [batched.execute("INCR", "ows:test:batched") for _ in range(50)]
            calls.append(batched.execute("INCR", "ows:test:hash"))  # WRONGTYPE: fails alone
            results = await asyncio.gather(*calls, return_exceptions=True)
            return results, len(sent), await client.get("ows:test:batched")
        finally:
            await client.delete("ows:test:batched", "ows:test:hash")
            await client.aclose()

    results, round_trips, final = asyncio.run(main())
    assert sorted(results[:50]) == list(range(1, 51))
    assert "WRONGTYPE" in str(results[50])
    assert round_trips < 51 and final == b"50"


@pytest.mark.django_db
def test_counter_scripts_are_loaded_again_after_redis_lost_them(inference_key, loop):
    from datetime import datetime, timedelta, timezone

    import redis

    from billing.counters import Check, Counter, RedisCounters
    from billing.layers import key_subject
    from billing.windows import window
    from tests.billing.budget_helpers import inline_runner

    now = datetime(2026, 7, 15, 10, 30, tzinfo=timezone.utc)
    counter = Counter(key_subject(inference_key[0].pk), window("daily", now))

    async def main():
        store = RedisCounters(settings.REDIS_URL, inline_runner())
        try:
            redis.Redis.from_url(settings.REDIS_URL).script_flush()
            rid = uuid.uuid4().hex  # a settlement leaves a mark: a fixed id would be settled already next run
            refused = await store.reserve(rid, [counter], [Check(0, Decimal("1"), False)], Decimal("0.5"),
                                          Decimal(0), now + timedelta(minutes=15), now)
            await store.settle(rid, [counter], [], Decimal("0.25"), Decimal(0), now)
            return refused, await store.read(counter)
        finally:
            await store.close()

    refused, values = loop.run_until_complete(main())
    assert refused is None
    assert (values["spend"], values["reserved"]) == (Decimal("0.25"), 0)


@pytest.mark.django_db
def test_a_round_trip_whose_reply_was_lost_is_sent_again_and_counts_once(inference_key, loop):
    # Redis ran the admission and the settlement, and each time the connection dropped before the reply:
    # both are sent again, and the scripts see they already ran (one reservation, one charge).
    from datetime import datetime, timedelta, timezone

    import redis

    from billing.counters import Check, Counter, RedisCounters
    from billing.layers import key_subject
    from billing.windows import window
    from tests.billing.budget_helpers import inline_runner

    now = datetime(2026, 7, 16, 10, 30, tzinfo=timezone.utc)
    counter = Counter(key_subject(inference_key[0].pk), window("daily", now))
    rid = uuid.uuid4().hex

    async def main():
        store = RedisCounters(settings.REDIS_URL, inline_runner())
        pipeline, lost = store.client.pipeline, []  # the script of each reply lost: each once

        def losing_pipeline(**kwargs):
            pipe = pipeline(**kwargs)
            execute = pipe.execute

            async def execute_then_lose_the_reply(*args, **kw):
                scripts = {command[0][1] for command in pipe.command_stack}
                results = await execute(*args, **kw)
                if results == [[b"ok"]] and not scripts & set(lost):
                    lost.extend(scripts)
                    raise redis.exceptions.ConnectionError("Connection closed by server.")
                return results

            pipe.execute = execute_then_lose_the_reply
            return pipe

        try:
            await store.seed([counter], now)
            store.client.pipeline = losing_pipeline
            refused = await store.reserve(rid, [counter], [Check(0, Decimal("1"), False)], Decimal("0.5"),
                                          Decimal(0), now + timedelta(minutes=15), now)
            held = await store.read(counter)
            await store.settle(rid, [counter], [], Decimal("0.25"), Decimal(0), now)
            return refused, held, await store.read(counter), len(lost)
        finally:
            await store.close()

    refused, held, values, lost = loop.run_until_complete(main())
    assert refused is None and lost == 2
    assert held["reserved"] == Decimal("0.5")
    assert (values["spend"], values["reserved"]) == (Decimal("0.25"), 0)
