"""Reservations under load, on the live server's two processes and the configured store: a small budget is
never exceeded by simultaneous requests, and after any mix of outcomes nothing stays reserved and every
counter's spend equals the sum of its generations' charges."""

import asyncio
from decimal import Decimal

import aiohttp
from django.db.models import Sum

from billing.layers import key_subject, org_subject, workspace_subject
from tests.billing.budget_helpers import live_counter, outstanding_reservations, set_budget, wait_until

D = Decimal
# Each request reserves 12 estimated prompt tokens at $0.000001 and 20 completion tokens at $0.000002
# ($0.000052); it costs 8 prompt and 12 completion tokens ($0.000032). The reservation is a true worst case.
BUDGET = D("0.0003")


def chat(text: str, **extra) -> dict:
    return {"model": "test/chat", "messages": [{"role": "user", "content": text}], "max_tokens": 20,
            "provider": {"only": ["cheap"]}, **extra}


async def fire(api: str, plaintext: str, bodies: list[dict]) -> list[int]:
    headers = {"Authorization": f"Bearer {plaintext}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def one(body):
            async with session.post(f"{api}/chat/completions", json=body) as response:
                await response.read()
                return response.status

        return await asyncio.gather(*(one(body) for body in bodies))


def spend_of(**filters) -> Decimal:
    from billing.models import Generation

    return Generation.objects.filter(**filters).aggregate(total=Sum("usage"))["total"] or D(0)


def test_simultaneous_requests_never_overspend_a_small_budget(stack, org, workspace, inference_key):
    from billing.models import Generation

    key, plaintext = inference_key
    set_budget(workspace, "daily", str(BUDGET))
    # Slow answers keep many requests in flight at once.
    statuses = asyncio.run(fire(stack.api, plaintext, [chat("Say hello [[mock delay_ms=300]]")] * 40))
    assert set(statuses) <= {200, 403}, statuses
    admitted = statuses.count(200)
    # At least as many as fit side by side at their worst case; never so many that they could overspend.
    assert int(BUDGET / D("0.000052")) <= admitted < 40
    wait_until(lambda: Generation.objects.filter(api_key=key).count() == admitted, what="every generation")
    spent = spend_of(workspace=workspace)
    assert spent <= BUDGET
    layers = [(org_subject(org.pk), "lifetime"), (workspace_subject(workspace.pk), "daily")]
    wait_until(lambda: outstanding_reservations(*layers) == 0, what="reservations released")
    assert live_counter(workspace_subject(workspace.pk), "daily")["spend"] == spent


async def mixed_outcomes(api: str, plaintext: str) -> dict:
    headers = {"Authorization": f"Bearer {plaintext}"}
    outcomes = {"ok": 0, "upstream_error": 0, "mid_stream_error": 0, "disconnected": 0}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def success():
            async with session.post(f"{api}/chat/completions", json=chat("Say hello")) as response:
                await response.read()
                assert response.status == 200
                outcomes["ok"] += 1

        async def upstream_error():
            body = {**chat("Say hello"), "model": "test/down", "provider": None}
            async with session.post(f"{api}/chat/completions", json=body) as response:
                await response.read()
                assert response.status >= 500
                outcomes["upstream_error"] += 1

        async def mid_stream_error():
            body = chat("Say hello [[mock error_after=2]]", stream=True)
            async with session.post(f"{api}/chat/completions", json=body) as response:
                text = (await response.read()).decode()
                assert response.status == 200 and '"error"' in text
                outcomes["mid_stream_error"] += 1

        async def disconnect():
            body = chat("Say hello [[mock words=200,chunk_delay_ms=20]]", stream=True, max_tokens=300)
            response = await session.post(f"{api}/chat/completions", json=body)
            assert response.status == 200
            seen = 0
            async for _line in response.content:
                seen += 1
                if seen >= 6:
                    break
            response.close()  # the client goes away mid-stream
            outcomes["disconnected"] += 1

        jobs = [success, upstream_error, mid_stream_error, disconnect] * 4
        await asyncio.gather(*(job() for job in jobs))
    return outcomes


def test_nothing_leaks_after_successes_errors_and_disconnects(stack, org, workspace, inference_key):
    from billing.models import Generation

    key, plaintext = inference_key
    key.limit, key.limit_reset = D("5"), "daily"
    key.save()
    set_budget(workspace, "daily", "5")
    outcomes = asyncio.run(mixed_outcomes(stack.api, plaintext))
    assert outcomes == {"ok": 4, "upstream_error": 4, "mid_stream_error": 4, "disconnected": 4}
    # Every request that reached an upstream leaves exactly one generation, the failed ones included.
    wait_until(lambda: Generation.objects.filter(api_key=key).count() == 16, what="sixteen generations")
    layers = [(org_subject(org.pk), "lifetime"), (workspace_subject(workspace.pk), "daily"),
              (key_subject(key.pk), "daily")]
    wait_until(lambda: outstanding_reservations(*layers) == 0, what="reservations released")
    charged = spend_of(api_key=key)
    assert charged > 0
    assert Generation.objects.filter(api_key=key, cancelled=True, usage__gt=0).count() == 4
    for subject, interval in layers:
        assert live_counter(subject, interval)["spend"] == charged, subject
