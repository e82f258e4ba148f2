"""Admission: reserve a request's worst-case cost on every spend limit before anything goes upstream, and
settle it (release the reservation, charge the real cost) whatever happens to the request.

The proxy calls three functions, each given the per-process `GatewayState` (whose `ledger` is a `Ledger`):
- `await admit(state, ctx, body, attempts)` -> `Reservation`, or raises `Refused` (402, 403,
  or 503 when the counters cannot be reached: fail closed);
- `settle(state, reservation, fields)` with the generation record's fields: sets `usage` (what credits pay,
  `pricing.charge_for`), charges the counters, then hands the record to the recorder;
- `release(state, reservation)`: for a request that ends without a generation record (a no-op once settled).

Layers (billing.layers) in the order checked: the organization's credits (402), then the budget chain:
workspace default guardrail per member and per key, the member's guardrail, the key's guardrail (403),
the workspace budgets broadest first (403), the key's own limit (402). docs/budgets.md has the details.
"""

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from .counters import Check, Counter, DatabaseCounters, RedisCounters
from .layers import KeyPolicy, Layer, load_key_policy
from .pricing import ZERO, charge_for, quantize_up
from .windows import INTERVALS, window

logger = logging.getLogger(__name__)
DEFAULT_COMPLETION_TOKENS = 4096
# Chat formats wrap every message in a few tokens of their own (role, separators).
MESSAGE_OVERHEAD_TOKENS = 4
RESERVATION_SECONDS = 900
DB_RECLAIM_EVERY = 30.0
RECLAIM_BATCH = 200  # expired reservations released per step
RECLAIM_ROUNDS = 50  # steps in a row while each comes back full
SETTLE_RETRIES = (0.05, 0.25, 1.0, 2.0)


class Refused(Exception):
    """A request the spend limits refuse; nothing was reserved and nothing may go upstream."""

    def __init__(self, status: int, message: str, metadata: dict | None = None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.metadata = metadata or {}
        self.headers = headers or []


@dataclass
class Reservation:
    id: str
    policy: KeyPolicy
    amount: Decimal  # worst case charged to credits
    amount_byok: Decimal  # worst-case market price, when served with the organization's own provider key
    settled: bool = False
    layers: tuple[Layer, ...] = field(default=())


# --- the worst case --------------------------------------------------------------------------------------

def prompt_chars(messages) -> int:
    total = 0
    for message in messages or []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += len(part["text"])
    return total


def estimate_prompt_tokens(messages) -> int:
    """Characters / 4 (rounded up), plus each message's framing."""
    count = len(messages) if isinstance(messages, list) else 0
    return (prompt_chars(messages) + 3) // 4 + MESSAGE_OVERHEAD_TOKENS * count


def completion_budget(body: dict, attempts) -> int:
    """The most completion tokens any planned attempt may produce: what the request asks for (capped by an
    endpoint's own maximum, which the proxy also caps what it forwards at), else the endpoint's maximum,
    else 4096; times `n`, the number of choices asked for."""
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    asked = asked if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0 else None
    most = 0
    for ep in attempts:
        cap = ep.max_completion_tokens or None
        if asked is not None:
            most = max(most, min(asked, cap) if cap else asked)
        else:
            most = max(most, cap or DEFAULT_COMPLETION_TOKENS)
    choices = body.get("n")
    if isinstance(choices, int) and not isinstance(choices, bool) and choices > 1:
        most *= choices
    return most


def worst_case_cost(body: dict, attempts) -> Decimal:
    """Estimated prompt at the highest prompt (or cache-write) price among the planned attempts, plus the
    completion budget at the highest completion price, plus the highest per-request price."""
    attempts = list(attempts)
    if not attempts:
        return ZERO
    prompt_price = max(max(ep.price_prompt, ep.price_input_cache_write or ZERO) for ep in attempts)
    completion_price = max(ep.price_completion for ep in attempts)
    request_price = max(ep.price_request or ZERO for ep in attempts)
    total = (estimate_prompt_tokens(body.get("messages")) * prompt_price
             + completion_budget(body, attempts) * completion_price + request_price)
    return quantize_up(total)


# --- refusals --------------------------------------------------------------------------------------------

def usd(amount: Decimal) -> str:
    """$500.00; more decimals only when the amount has them ($0.0003)."""
    amount = Decimal(amount)
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount == amount.quantize(Decimal("0.01")):
        return f"{sign}${amount:,.2f}"
    return f"{sign}${amount.normalize():f}"


INTERVAL_NOUN = {"daily": "day", "weekly": "week", "monthly": "month"}
GUARDRAIL_WHO = {
    "workspace_default_member": "the workspace's default guardrail (for each member)",
    "workspace_default_key": "the workspace's default guardrail (for each key)",
    "member": "your member guardrail",
    "api_key": "this key's guardrail",
}


def refusal(layer: Layer, used: Decimal, need: Decimal) -> Refused:
    if layer.scope == "credits":
        available = layer.limit - used
        if available <= 0:
            message = (f"Insufficient credits: the account has {usd(max(available, ZERO))} available. "
                       "Add credits to continue.")
        else:
            message = (f"Insufficient credits: this request may cost up to {usd(need)} and the account has "
                       f"{usd(available)} available. Add credits or request fewer max_tokens.")
        return Refused(402, message, {"error_type": "payment_required"})
    if layer.scope == "key_limit":
        period = "" if layer.interval == "lifetime" else f"{layer.interval} "
        remaining = max(layer.limit - used, ZERO)
        message = (f"Key limit exceeded: this key's {period}limit is {usd(layer.limit)} and {usd(remaining)} "
                   f"remains; this request may cost up to {usd(need)}.")
        return Refused(402, message, {"error_type": "payment_required"})
    # A budget already spent is "exceeded"; one this request's worst case would take over says what remains.
    spent = used >= layer.limit
    advice = ("Contact your org admin." if spent else
              f"{usd(layer.limit - used)} remains and this request may cost up to {usd(need)}. "
              "Request fewer max_tokens or contact your org admin.")
    if layer.scope == "workspace":
        verb = "exceeded." if spent else "would be exceeded:"
        return Refused(403, f"Workspace {layer.interval} budget of {layer_limit(layer)} {verb} {advice}",
                       {"error_type": "permission_denied"})
    per = INTERVAL_NOUN.get(layer.interval, layer.interval)
    name = f" '{layer.guardrail_name}'" if layer.guardrail_name and layer.scope in ("member", "api_key") else ""
    verb = "exceeded" if spent else "would be exceeded"
    return Refused(403, f"Guardrail budget {verb}: {GUARDRAIL_WHO[layer.scope]}{name} allows "
                        f"{layer_limit(layer)} per {per}. {advice}",
                   {"error_type": "permission_denied", "guardrail_id": layer.guardrail_id,
                    "budget_scope": layer.scope})


def layer_limit(layer: Layer) -> str:
    return usd(layer.limit)


def unavailable() -> Refused:
    return Refused(503, "Spend limits cannot be checked right now; nothing was sent upstream. Try again shortly.",
                   {"error_type": "server"}, [(b"retry-after", b"2")])


# --- the ledger ------------------------------------------------------------------------------------------

def _call(fn, *args):
    # The ledger's threads keep their connections (opening one per call cost more than the work); a
    # connection that failed is dropped and the next call opens a new one.
    try:
        return fn(*args)
    except DatabaseError:
        close_old_connections()
        from django.db import connection

        connection.close()
        raise


class GroupCommit:
    """The database store's steps, written by one thread: steps that arrive while a transaction runs wait
    and go together in the next one. At low load each step is written at once; under load many requests
    share one transaction, and the process never has two writers contending for the database's lock."""

    def __init__(self, store, executor):
        self.store = store
        self.executor = executor
        self.waiting: list[tuple[tuple, asyncio.Future]] = []
        self.writing: asyncio.Task | None = None

    def enqueue(self, kind: str, *args) -> asyncio.Future:
        """Queue a step now (behind everything queued before it); the future gets its result."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append(((kind, args), future))
        if self.writing is None:
            self.writing = loop.create_task(self._write())
        return future

    async def submit(self, kind: str, *args):
        return await self.enqueue(kind, *args)

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.waiting:
                batch = self.waiting[:self.store.MAX_STEPS]
                del self.waiting[:len(batch)]
                try:
                    results = await loop.run_in_executor(self.executor, _call, self.store.run,
                                                         [step for step, _ in batch])
                except Exception as exc:  # every step of the transaction failed with it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (_, future), result in zip(batch, results):
                        if not future.done():
                            future.set_result(result)
        finally:
            self.writing = None


class Ledger:
    """Per process: the key policy cache, the counter store, and the settlements in flight."""

    def __init__(self, state=None, *, store=None, run_sync=None):
        self.state = state
        self._run_sync = run_sync  # tests: run database work on their own connection
        self.executor: ThreadPoolExecutor | None = None
        self.group: GroupCommit | None = None
        self.store = store
        self.policies: dict = {}
        self._version = object()
        self.tasks: set[asyncio.Task] = set()
        self._last_reclaim = 0.0

    # -- plumbing
    def get_store(self):
        if self.store is None:
            if settings.REDIS_URL:
                self.store = RedisCounters(settings.REDIS_URL, self.run_sync)
            else:
                self.store = DatabaseCounters()
        return self.store

    async def run_sync(self, fn, *args):
        if self._run_sync is not None:
            return await self._run_sync(fn, *args)
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ledger")
        return await asyncio.get_running_loop().run_in_executor(self.executor, _call, fn, *args)

    async def _store_call(self, method: str, *args):
        store = self.get_store()
        if not isinstance(store, DatabaseCounters):
            return await getattr(store, method)(*args)
        if self._run_sync is not None:
            return await self._run_sync(getattr(store, method), *args)
        return await self._group().submit(method, *args)

    def _group(self) -> GroupCommit:
        if self.group is None:
            # The writer thread is the recorder's: one process, one thread writing to the database.
            recorder = getattr(self.state, "recorder", None)
            executor = getattr(recorder, "executor", None)
            if executor is None:
                executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")
            self.group = GroupCommit(self.get_store(), executor)
        return self.group

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def flush(self, timeout: float = 30) -> None:
        """Wait for settlements in flight (each ends by handing its record to the recorder)."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)

    def _current_version(self):
        return getattr(self.state, "version", None)

    async def policy(self, key_id) -> KeyPolicy | None:
        version = self._current_version()
        if version != self._version:
            self._version = version
            self.policies.clear()
        key = str(key_id)
        if key not in self.policies:
            self.policies[key] = await self.run_sync(load_key_policy, key)
        return self.policies[key]

    def _maybe_reclaim(self) -> None:
        # Redis reclaims inside every admission; rows are swept every half minute per process.
        if not isinstance(self.get_store(), DatabaseCounters) or self._run_sync is not None:
            return
        if time.monotonic() - self._last_reclaim < DB_RECLAIM_EVERY:
            return
        self._last_reclaim = time.monotonic()
        # Queued now, ahead of the admission that noticed it was due: that request already sees the
        # reservations of dead processes released.
        self.spawn(self._reclaim(self._group().enqueue("reclaim", timezone.now(), RECLAIM_BATCH)))

    async def _reclaim(self, first: asyncio.Future) -> None:
        try:
            reclaimed = await first
            for _ in range(RECLAIM_ROUNDS):  # a backlog (a process died under load) is cleared at once
                if reclaimed < RECLAIM_BATCH:
                    break
                reclaimed = await self._group().submit("reclaim", timezone.now(), RECLAIM_BATCH)
        except Exception:
            logger.exception("reclaiming expired budget reservations failed")

    # -- admission
    async def admit(self, ctx, body: dict, attempts, *, is_byok: bool | None = None,
                    now: datetime | None = None) -> Reservation | None:
        """Reserve the worst case on every layer, or raise Refused. `attempts` are the planned endpoints (or
        attempts carrying `.endpoint` and `.is_byok`); `is_byok` overrides what they say: True when every
        attempt uses the organization's own provider key."""
        try:
            policy = await self.policy(ctx.key_id)
        except DatabaseError:
            logger.exception("loading the spend limits of a key failed")
            raise unavailable() from None
        if policy is None:
            return None  # the key was deleted a moment ago; authentication already let this request in
        now = now or timezone.now()
        endpoints = [getattr(a, "endpoint", a) for a in attempts]
        byok_flags = [bool(getattr(a, "is_byok", False)) for a in attempts]
        if is_byok is not None:
            byok_flags = [is_byok] * len(byok_flags)
        estimate = worst_case_cost(body, endpoints)
        # Credits pay the market price unless every attempt is BYOK; a BYOK attempt may count its market price
        # on layers that include BYOK.
        amount = charge_for(estimate, bool(byok_flags) and all(byok_flags))
        amount_byok = estimate if any(byok_flags) else ZERO
        counters: dict[str, int] = {}
        ordered: list[Counter] = []
        checks: list[Check] = []
        for layer in policy.layers:
            counter = Counter(layer.subject, window(layer.interval, now))
            if counter.key not in counters:
                counters[counter.key] = len(ordered)
                ordered.append(counter)
            checks.append(Check(counters[counter.key], layer.limit, layer.include_byok))
        reservation = Reservation(id=uuid.uuid4().hex, policy=policy, amount=amount, amount_byok=amount_byok,
                                  layers=policy.layers)
        seconds = settings.GATEWAY.get("RESERVATION_SECONDS", RESERVATION_SECONDS)
        self._maybe_reclaim()
        try:
            result = await self._store_call("reserve", reservation.id, ordered, checks, amount, amount_byok,
                                            now + timedelta(seconds=seconds), now)
        except asyncio.CancelledError:
            # The reservation may or may not have been written: release it (a no-op if it was not).
            self.release(reservation)
            raise
        except Exception as exc:
            logger.error("budget counters unavailable, refusing the request: %s", type(exc).__name__)
            # The reservation may have been written before the reply was lost: release it (a no-op if not).
            self.release(reservation)
            raise unavailable() from None
        if result is not None:
            layer = policy.layers[result.check]
            need = amount + (amount_byok if layer.include_byok else ZERO)
            raise refusal(layer, result.used, need)
        return reservation

    # -- settlement
    def settle(self, reservation: Reservation | None, fields: dict) -> None:
        """Set what credits pay, then charge the counters and record the generation (in that order: a
        counter seeded from the database never counts a generation twice)."""
        is_byok = bool(fields.get("is_byok"))
        fields["usage"] = charge_for(fields.get("total_cost") or ZERO, is_byok)
        if reservation is None or reservation.settled:
            self.state.recorder.record(fields)
            return
        reservation.settled = True
        self.spawn(self._settle_then_record(reservation, fields))

    def release(self, reservation: Reservation | None) -> None:
        if reservation is None or reservation.settled:
            return
        reservation.settled = True
        try:
            self.spawn(self._apply(reservation, [], [], ZERO, ZERO, timezone.now()))
        except RuntimeError:  # no running loop: the process is going away; expiry reclaims it
            pass

    async def _settle_then_record(self, reservation: Reservation, fields: dict) -> None:
        try:
            now = fields.get("created_at") or timezone.now()
            required, optional = self._charged_counters(reservation, now)
            is_byok = bool(fields.get("is_byok"))
            amount_byok = Decimal(fields.get("total_cost") or 0) if is_byok else ZERO
            await self._apply(reservation, required, optional, fields["usage"], amount_byok, now)
        finally:
            self.state.recorder.record(fields)

    def _charged_counters(self, reservation: Reservation, now: datetime):
        """Every counter of every spender of the request, in every window that contains `now`, created if
        missing: whatever budget exists now or is set later in this window finds the request counted.
        (Charging only existing counters would leave a gap: a counter first created, from the generations,
        between this settlement and the recorder writing this generation would never count it.) The
        organization only ever has its lifetime credits counter."""
        required = {}
        for layer in reservation.layers:
            counter = Counter(layer.subject, window(layer.interval, now))
            required[counter.key] = counter
        for subject in reservation.policy.subjects:
            for interval in (("lifetime",) if subject.startswith("org:") else INTERVALS):
                counter = Counter(subject, window(interval, now))
                required[counter.key] = counter
        return list(required.values()), []

    async def _apply(self, reservation, required, optional, amount, amount_byok, now) -> None:
        for attempt, delay in enumerate((*SETTLE_RETRIES, None)):
            try:
                await self._store_call("settle", reservation.id, required, optional, amount, amount_byok, now)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if delay is None:
                    # The reservation expires and is reclaimed; the counters may miss this charge until
                    # they are seeded again from the generations (docs/budgets.md, failure modes).
                    logger.error("settling reservation %s failed after %d attempts: %s", reservation.id,
                                 attempt + 1, type(exc).__name__)
                    return
                await asyncio.sleep(delay)


# --- what the proxy calls --------------------------------------------------------------------------------

def ledger_of(state) -> Ledger:
    ledger = getattr(state, "ledger", None)
    if ledger is None:
        ledger = state.ledger = Ledger(state)
    return ledger


async def admit(state, ctx, body: dict, attempts, *, is_byok: bool | None = None) -> Reservation | None:
    return await ledger_of(state).admit(ctx, body, attempts, is_byok=is_byok)


def settle(state, reservation: Reservation | None, fields: dict) -> None:
    ledger_of(state).settle(reservation, fields)


def release(state, reservation: Reservation | None) -> None:
    ledger_of(state).release(reservation)
