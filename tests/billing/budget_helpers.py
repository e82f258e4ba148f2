"""Shared by the budget tests: the counter stores, a ledger on a fake gateway state, generation rows."""

import asyncio
import uuid
from decimal import Decimal

import pytest
from django.conf import settings

from billing.admission import Ledger
from billing.counters import DatabaseCounters, RedisCounters

STORES = ["database", "redis"]


def inline_runner():
    """Database work from coroutines on the test's own connection (and so inside its transaction): a
    coroutine would otherwise get a connection of its own."""
    from django.db import connections

    connection = connections["default"]

    async def run(fn, *args):
        connections["default"] = connection
        return fn(*args)

    return run


@pytest.fixture
def loop(monkeypatch):
    # The stores' database work runs inline on this loop's thread, inside the test's transaction.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


class Store:
    """One counter store behind a synchronous face, whichever it is."""

    def __init__(self, kind: str, loop):
        self.kind, self.loop = kind, loop
        self.backend = DatabaseCounters() if kind == "database" else RedisCounters(settings.REDIS_URL, inline_runner())

    def __getattr__(self, name):
        method = getattr(self.backend, name)
        if self.kind == "database":
            return method
        return lambda *args: self.loop.run_until_complete(method(*args))

    def peek(self, counter):
        """`read` from inside the loop (a recorder callback): a synchronous Redis client of its own."""
        if self.kind == "database":
            return self.backend.read(counter)
        import redis

        from billing.counters import from_units

        values = redis.Redis.from_url(settings.REDIS_URL).hgetall(self.backend.key(counter))
        return {"spend": from_units(values.get(b"sc", 0)), "spend_byok": from_units(values.get(b"sb", 0)),
                "reserved": from_units(values.get(b"rc", 0)), "reserved_byok": from_units(values.get(b"rb", 0))}

    def close(self):
        if self.kind == "redis":
            self.loop.run_until_complete(self.backend.close())


@pytest.fixture(params=STORES)
def store(request, db, loop):
    """Each test runs on the database rows, and on Redis when REDIS_URL is set."""
    if request.param == "redis" and not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    store = Store(request.param, loop)
    yield store
    store.close()


class FakeRecorder:
    def __init__(self):
        self.records = []
        self.on_record = None

    def record(self, fields):
        if self.on_record:
            self.on_record(fields)
        self.records.append(fields)


class FakeState:
    def __init__(self):
        self.version = 1
        self.recorder = FakeRecorder()


@pytest.fixture
def ledger(store, loop):
    """A ledger over the test's store, running database work inline."""
    state = FakeState()
    ledger = Ledger(state, store=store.backend, run_sync=inline_runner())
    ledger.run = lambda coro: loop.run_until_complete(coro)
    state.ledger = ledger
    return ledger


def make_generation(api_key, *, usage="0", total_cost=None, is_byok=False, created_at=None, **fields):
    from django.utils import timezone

    from billing.models import Generation

    usage = Decimal(usage)
    return Generation.objects.create(
        id=f"gen-{uuid.uuid4().hex}", organization_id=api_key.organization_id, workspace_id=api_key.workspace_id,
        api_key=api_key, user_id=api_key.created_by_id, model="test/chat", usage=usage,
        total_cost=Decimal(total_cost) if total_cost is not None else usage, is_byok=is_byok,
        created_at=created_at or timezone.now(), **fields)


def endpoint(prompt="0.000001", completion="0.000002", max_completion=1000):
    from routing.router import EndpointInfo

    return EndpointInfo(id=1, model_slug="test/chat", provider_slug="cheap", provider_name="Cheap",
                        base_url="http://127.0.0.1:9/v1", api_format="openai", api_key_env="", upstream_model="m",
                        price_prompt=Decimal(prompt), price_completion=Decimal(completion),
                        max_completion_tokens=max_completion)


def set_budget(workspace, interval, limit):
    from billing.services import set_workspace_budget

    return set_workspace_budget(workspace, interval, Decimal(limit))[0]


def guardrail(org, workspace, limit, interval="daily", *, keys=(), members=(), name="Cap", include_byok=False):
    from workspaces import policy_services

    created = policy_services.create_guardrail(
        actor=None, organization=org, workspace=workspace,
        data={"name": name, "limit_usd": Decimal(limit), "reset_interval": interval,
              "include_byok_in_budgets": include_byok})
    if keys:
        policy_services.assign_keys_to_guardrail(actor=None, guardrail=created, key_hashes=[k.hash for k in keys])
    if members:
        policy_services.assign_members_to_guardrail(actor=None, guardrail=created, user_ids=[m.pk for m in members])
    return created


def default_guardrail(workspace, limit, interval="daily"):
    from workspaces import policy_services

    current = policy_services.get_or_materialize_default_guardrail(workspace)
    current.limit_usd, current.reset_interval = Decimal(limit), interval
    current.save()
    return current


def live_counter(subject: str, interval: str):
    """A counter as the live server keeps it, in whichever store this run is configured with."""
    from django.utils import timezone

    from billing.counters import Counter
    from billing.windows import window

    counter = Counter(subject, window(interval, timezone.now()))
    if not settings.REDIS_URL:
        return DatabaseCounters().read(counter)

    async def read():
        store = RedisCounters(settings.REDIS_URL, inline_runner())
        try:
            return await store.read(counter)
        finally:
            await store.close()

    return asyncio.run(read())


def outstanding_reservations(*subjects_and_intervals) -> Decimal:
    """Everything still reserved on these counters (and, without Redis, every reservation row left)."""
    from billing.models import BudgetReservation

    total = Decimal(0)
    for subject, interval in subjects_and_intervals:
        values = live_counter(subject, interval) or {}
        total += values.get("reserved", 0) + values.get("reserved_byok", 0)
    if not settings.REDIS_URL:
        total += BudgetReservation.objects.count()
    return total


def wait_until(predicate, timeout: float = 15.0, what: str = "condition"):
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout}s")
        time.sleep(0.05)
