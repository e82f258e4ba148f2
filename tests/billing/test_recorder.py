"""The recorder's batch write: plain SQL for many records at once, and the row-by-row path when a record
points at something deleted while its request ran."""

import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Generation
from billing.recorder import write_batch


def record(org, key, **fields):
    return {"id": f"gen-{uuid.uuid4().hex}", "organization_id": org.pk, "workspace_id": key.workspace_id,
            "api_key_id": key.pk, "user_id": key.created_by_id, "created_at": timezone.now(),
            "model": "test/chat", "total_cost": Decimal("0.0000290000"), "usage": Decimal("0.0000290000"),
            "provider_responses": [{"provider": "mock", "status": 200}], "trace": {"trace_id": "t-1"},
            "broadcast": False, **fields}


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_written_with_every_field_and_an_id_written_twice_once(org, inference_key):
    key, _ = inference_key
    first, second = record(org, key, tokens_prompt=5, streamed=True), record(org, key, status="cancelled")
    write_batch([first, second], [key.pk])
    write_batch([dict(first)], [])  # a retried batch: the row is already there
    rows = {g.id: g for g in Generation.objects.all()}
    assert set(rows) == {first["id"], second["id"]}
    row = rows[first["id"]]
    assert (row.tokens_prompt, row.streamed, row.usage, row.trace) == (5, True, Decimal("0.000029"), {"trace_id": "t-1"})
    assert row.provider_responses == [{"provider": "mock", "status": 200}]
    assert rows[second["id"]].status == "cancelled" and rows[second["id"]].finish_reason is None
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_record_whose_key_was_deleted_meanwhile_is_kept_without_it(org, inference_key):
    key, _ = inference_key
    kept = record(org, key)
    orphan = record(org, key, api_key_id=uuid.uuid4())
    write_batch([kept, orphan], [])
    assert Generation.objects.get(id=kept["id"]).api_key_id == key.pk
    assert Generation.objects.get(id=orphan["id"]).api_key_id is None


@pytest.mark.django_db(transaction=True)
def test_values_a_column_cannot_hold_are_made_to_fit_and_the_queue_keeps_moving(org, inference_key):
    key, _ = inference_key
    odd = record(org, key, app_title="T" * 300, end_user="bob\x00", session_id="s\x00" * 200,
                 tokens_prompt=10 ** 12, trace={"trace_id": "t\x00", "k\x00": ["a\x00b"]},
                 provider_responses=[{"message": "boom\x00"}])
    plain = record(org, key)
    write_batch([odd, plain], [])
    row = Generation.objects.get(id=odd["id"])
    assert row.app_title == "T" * 200 and row.end_user == "bob" and row.session_id == "s" * 200
    from django.db import connection

    highest = connection.ops.integer_field_range("PositiveIntegerField")[1]  # PostgreSQL: 2^31 - 1
    assert row.tokens_prompt == min(highest, 10 ** 12)
    assert row.trace == {"trace_id": "t", "k": ["ab"]} and row.provider_responses == [{"message": "boom"}]
    assert Generation.objects.filter(id=plain["id"]).exists()


def test_a_record_that_keeps_failing_is_dropped_alone_and_the_recorder_goes_on(monkeypatch, settings):
    import asyncio

    from billing import recorder as module

    settings.GATEWAY = {**settings.GATEWAY, "RECORDER_LINGER_SECONDS": 0.05}
    written = []

    def write_batch(batch, touch):
        if any(r["id"] == "gen-bad" for r in batch):
            raise ValueError("a value nobody foresaw")
        written.extend(r["id"] for r in batch)

    monkeypatch.setattr(module, "write_batch", write_batch)
    monkeypatch.setattr(asyncio, "sleep", _no_wait(asyncio.sleep))

    async def main():
        rec = module.GenerationRecorder()
        for gid in ("gen-1", "gen-bad", "gen-2"):
            rec.record({"id": gid})
        await rec.flush(timeout=10)
        rec.record({"id": "gen-3"})
        await rec.flush(timeout=10)
        alive = not rec.task.done()
        rec.task.cancel()
        return alive

    assert asyncio.run(main()) is True
    assert written == ["gen-1", "gen-2", "gen-3"]


def _no_wait(sleep):
    async def short(delay, *args, **kwargs):
        return await sleep(min(delay, 0.001), *args, **kwargs)

    return short
