"""Redis commands in flight share round-trips: each gets its own answer or its own error; a Redis that lost
the counter scripts gets them loaded again."""

import asyncio
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
            refused = await store.reserve("r-1", [counter], [Check(0, Decimal("1"), False)], Decimal("0.5"),
                                          Decimal(0), now + timedelta(minutes=15), now)
            await store.settle("r-1", [counter], [], Decimal("0.25"), Decimal(0), now)
            return refused, await store.read(counter)
        finally:
            await store.close()

    refused, values = loop.run_until_complete(main())
    assert refused is None
    assert (values["spend"], values["reserved"]) == (Decimal("0.25"), 0)
