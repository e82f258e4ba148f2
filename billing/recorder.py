"""Writing generation records off the hot path.

The proxy hands each finished request's fields to `GenerationRecorder.record()` (no I/O); one background
task per server process drains the queue and writes everything waiting in one `bulk_create` on a
dedicated thread, so under load many records share one round-trip (group commit) and at low load each
is written within a millisecond or two of the response. A failed write is retried, never dropped; on
shutdown the queue is flushed. Key `last_used_at` is written here too, at most once a minute per key.
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, connection, models, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)
MAX_BATCH = 500
POISON_TRIES = 3  # failures (other than the database being unreachable) before a batch is split up


def _close_connection() -> None:
    """Run on the writer thread: closes that thread's connection (a fresh one is opened on next use)."""
    connection.close()


def _connection_usable() -> bool:
    if connection.connection is None:
        return True  # connects on first use
    return not (connection.errors_occurred or connection.needs_rollback)


def insert_generations(batch: list[dict]) -> None:
    """One `INSERT ... ON CONFLICT DO NOTHING` statement run for every record (an id already written is
    skipped): the values prepared field by field as the ORM would, without building model instances."""
    from .models import Generation

    fields = Generation._meta.concrete_fields
    quote = connection.ops.quote_name
    sql = (f"INSERT INTO {quote(Generation._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT ({quote(Generation._meta.pk.column)}) DO NOTHING")
    limits = _limits(fields)
    rows = []
    for record in batch:
        row = []
        for f, (longest, lowest, highest) in zip(fields, limits):
            value = record.get(f.attname, _MISSING)
            if value is _MISSING:
                value = record.get(f.name, _MISSING)
                if value is _MISSING:
                    value = f.get_default()
            row.append(f.get_db_prep_save(_fit(value, longest, lowest, highest), connection))
        rows.append(row)
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


_MISSING = object()
JSON = object()  # "longest" of a JSON column: no length, but strings inside are cleaned of NUL characters
_LIMITS: dict = {}


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def fitted(record: dict) -> dict:
    """The record with every value made to fit its column (see `_fit`)."""
    from .models import Generation

    fields = Generation._meta.concrete_fields
    out = dict(record)
    for f, limits in zip(fields, _limits(fields)):
        for name in (f.attname, f.name):
            if name in out:
                out[name] = _fit(out[name], *limits)
    return out


def _limits(fields) -> list[tuple]:
    """Per field: (longest string, lowest and highest integer) the column takes, None where unbounded."""
    key = (connection.vendor, tuple(f.attname for f in fields))
    if key not in _LIMITS:
        limits = []
        for f in fields:
            longest = getattr(f, "max_length", None) if isinstance(f, models.CharField) else None
            if isinstance(f, models.JSONField):
                longest = JSON
            lowest = highest = None
            if isinstance(f, models.IntegerField):
                lowest, highest = connection.ops.integer_field_range(f.get_internal_type())
            limits.append((longest, lowest, highest))
        _LIMITS[key] = limits
    return _LIMITS[key]


def _fit(value, longest, lowest, highest):
    """A value the column can hold: an over-long string (a header, an upstream's text) is cut, NUL characters
    (which PostgreSQL refuses in text and JSON) are dropped, an integer beyond the column's range (an
    upstream's absurd token count) is clamped. A record is never refused for what a client or upstream sent."""
    if longest is JSON:
        return _without_nul(value)
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        return value[:longest] if longest is not None and len(value) > longest else value
    if isinstance(value, int) and not isinstance(value, bool):
        if highest is not None and value > highest:
            return highest
        if lowest is not None and value < lowest:
            return lowest
    return value


def write_batch(batch: list[dict], touch_keys: list) -> None:
    from workspaces.models import ApiKey

    from .models import Generation
    from .tasks import enqueue_broadcasts

    # One long-lived connection on this dedicated thread (reconnecting only when it broke): opening one per
    # batch costs more than the insert.
    if not _connection_usable():
        connection.close()
    to_broadcast = [fields["id"] for fields in batch if fields.get("broadcast")]
    batch = [{k: v for k, v in fields.items() if k != "broadcast"} for fields in batch]
    try:
        with transaction.atomic():
            insert_generations(batch)
            if touch_keys:
                ApiKey.objects.filter(pk__in=touch_keys).update(last_used_at=timezone.now())
    except (IntegrityError, DataError):
        # A key, workspace or person was deleted while its request ran (or a value the database refused):
        # write row by row.
        for fields in batch:
            write_one(Generation(**fitted(fields)))
    if to_broadcast:
        enqueue_broadcasts(to_broadcast)


def write_one(row) -> None:
    from workspaces.models import ApiKey, Organization, User, Workspace

    try:
        with transaction.atomic():
            row.save(force_insert=True)
        return
    except DataError:
        # Nothing left to fix: keep the rest of the queue moving rather than retrying this row for ever.
        logger.exception("dropping generation %s: the database refused its values", row.pk)
        return
    except IntegrityError:
        pass
    if row.pk and type(row).objects.filter(pk=row.pk).exists():
        return  # already written
    if not Organization.objects.filter(pk=row.organization_id).exists():
        logger.warning("dropping generation %s: its organization no longer exists", row.pk)
        return
    for field, model in (("workspace_id", Workspace), ("api_key_id", ApiKey), ("user_id", User)):
        value = getattr(row, field)
        if value is not None and not model.objects.filter(pk=value).exists():
            setattr(row, field, None)
    with transaction.atomic():
        row.save(force_insert=True)


class GenerationRecorder:
    def __init__(self, executor: ThreadPoolExecutor | None = None):
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="generation-writer")
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self._last_touch: dict = {}
        self._pending = 0
        self._idle: asyncio.Event | None = None
        self.linger = settings.GATEWAY.get("RECORDER_LINGER_SECONDS", 0.02)

    def start(self):
        if self.task is None:
            self.queue = asyncio.Queue()
            self._idle = asyncio.Event()
            self._idle.set()
            self.task = asyncio.get_running_loop().create_task(self._run())

    def record(self, fields: dict) -> None:
        if self.task is None:
            self.start()
        self._pending += 1
        self._idle.clear()
        self.queue.put_nowait(fields)

    def _keys_to_touch(self, batch: list[dict]) -> list:
        now = time.monotonic()
        resolution = settings.GATEWAY["LAST_USED_RESOLUTION_SECONDS"]
        touch = []
        for fields in batch:
            key_id = fields.get("api_key_id")
            if key_id is not None and now - self._last_touch.get(key_id, -1e9) >= resolution:
                self._last_touch[key_id] = now
                touch.append(key_id)
        return touch

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            if self.linger and self.queue.qsize() < MAX_BATCH:
                # Let a few more records join this write: under load, many share one round-trip.
                await asyncio.sleep(self.linger)
            while len(batch) < MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            touch = self._keys_to_touch(batch)
            await self._write(loop, batch, touch)
            self._pending -= len(batch)
            if self._pending == 0:
                self._idle.set()

    async def _write(self, loop, batch: list[dict], touch: list) -> None:
        """Write the batch, retrying with backoff while the database is unreachable. A batch that keeps
        failing otherwise is written record by record, so one record the database refuses (which `fitted`
        did not foresee) is dropped with an error after a few tries instead of holding up everything."""
        delay, failures = 0.05, 0
        while True:
            try:
                await loop.run_in_executor(self.executor, write_batch, batch, touch)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                await loop.run_in_executor(self.executor, _close_connection)
                unreachable = isinstance(exc, (OperationalError, InterfaceError))
                if not unreachable and failures >= POISON_TRIES:
                    if len(batch) > 1:
                        for record in batch:
                            await self._write(loop, [record], touch)
                        return
                    logger.exception("dropping generation record %s: writing it failed %d times",
                                     batch[0].get("id"), failures)
                    return
                logger.exception("writing %d generation records failed; retrying in %.2fs", len(batch), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def flush(self, timeout: float = 30) -> None:
        if self.task is not None and self._pending:
            await asyncio.wait_for(self._idle.wait(), timeout)
