"""Spend counters and reservations, atomically: in Redis (one Lua script per step) or in database rows.

A counter is one spender's spend and outstanding reservations in one UTC window (billing.layers names the
spenders, billing.windows the windows). Admission checks every layer of a request and, only if all pass,
adds the request's worst-case cost to the `reserved` of each layer's counter, in one atomic step.
Settlement removes the reservation and adds the real cost to `spend`, again in one step.

Both stores keep the same numbers: `spend` is what credits paid (sum of `Generation.usage`), `spend_byok`
the market price of BYOK generations (sum of `Generation.total_cost` where `is_byok`); a layer counts
`spend (+ spend_byok if it includes BYOK) + reserved (+ reserved_byok)`.

The database is the truth: a counter is a cache of "the generations in this window", seeded from them the
first time it is needed (or after Redis lost it) and from then on kept by settlement. Settlement charges the
counters *before* the generation row is handed to the recorder, so a generation is either already in a
counter or not yet in the database when that counter is seeded: never both, never neither (see
docs/budgets.md for the exact guarantee and its limits).
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import Q, Sum

from .layers import generation_filter
from .windows import GRACE, Window, counter_expiry

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
UNIT = Decimal("1e-10")
REDIS_PREFIX = "ows:bc:"
RESERVATION_PREFIX = "ows:br:"
EXPIRY_SET = "ows:br-expiry"
RECLAIM_BATCH = 50
MIN_TTL_SECONDS = 86400


def to_units(amount: Decimal) -> int:
    """USD -> integer units of 1e-10 USD (amounts are already quantized to that; round half up if not)."""
    return int(Decimal(amount).scaleb(10).to_integral_value(ROUND_HALF_UP))


def from_units(units) -> Decimal:
    return Decimal(int(units)).scaleb(-10)


@dataclass(frozen=True)
class Counter:
    subject: str
    window: Window

    @property
    def key(self) -> str:
        return f"{self.subject}@{self.window.id}"


@dataclass(frozen=True)
class Check:
    """One layer's limit on one of the counters of a reservation."""

    counter: int  # index into the reservation's counters
    limit: Decimal
    include_byok: bool


@dataclass(frozen=True)
class Refusal:
    check: int  # index of the first failing check
    used: Decimal  # spend + reserved on that layer before this request


class CountersUnavailable(Exception):
    """The store could not be read or written; admission fails closed."""


def used_of(values: dict, include_byok: bool) -> Decimal:
    used = values["spend"] + values["reserved"]
    if include_byok:
        used += values["spend_byok"] + values["reserved_byok"]
    return used


def refuses(used: Decimal, limit: Decimal, need: Decimal) -> bool:
    """A layer refuses once it is spent (spend >= limit, even for a free request) or when the worst case of
    this request would take it over its limit."""
    return used >= limit or used + need > limit


def spend_in_window(subject: str, window: Window) -> tuple[Decimal, Decimal]:
    """(credits spend, BYOK market spend) of a spender's generations in a window, from the database."""
    from .models import Generation

    rows = Generation.objects.filter(**generation_filter(subject))
    if window.start is not None:
        rows = rows.filter(created_at__gte=window.start)
    if window.end is not None:
        rows = rows.filter(created_at__lt=window.end)
    # Aliased: an aggregate may not reuse a model field's name (`usage`).
    sums = rows.aggregate(credit_sum=Sum("usage"), byok_sum=Sum("total_cost", filter=Q(is_byok=True)))
    return sums["credit_sum"] or ZERO, sums["byok_sum"] or ZERO


# --- database rows ----------------------------------------------------------------------------------------

class DatabaseCounters:
    """Counters as BudgetCounter rows, locked with SELECT ... FOR UPDATE in key order (so two transactions
    never wait on each other in a cycle); on SQLite the IMMEDIATE transaction mode serializes writers.
    Every method is synchronous: callers on the event loop run them on a thread pool."""

    def _lock(self, keys) -> dict:
        from .models import BudgetCounter

        rows = BudgetCounter.objects.select_for_update().filter(key__in=sorted(set(keys))).order_by("key")
        return {row.key: row for row in rows}

    def ensure(self, counters: list[Counter], now: datetime) -> None:
        """Create missing counters, seeded from the generations in their window. A concurrent creator wins
        and ours is dropped (its seed was read no later than ours, and settlement charges what came after)."""
        from .models import BudgetCounter

        if not counters:
            return
        rows = []
        with transaction.atomic():
            for counter in {c.key: c for c in counters}.values():
                spend, spend_byok = spend_in_window(counter.subject, counter.window)
                end = counter.window.end
                rows.append(BudgetCounter(key=counter.key, subject=counter.subject, window=counter.window.id,
                                          spend=spend, spend_byok=spend_byok, updated_at=now,
                                          expires_at=(end + GRACE) if end else None))
            BudgetCounter.objects.bulk_create(rows, ignore_conflicts=True)

    def reserve(self, reservation_id: str, counters: list[Counter], checks: list[Check], amount: Decimal,
                amount_byok: Decimal, expires_at: datetime, now: datetime) -> Refusal | None:
        from .models import BudgetCounter, BudgetReservation

        keys = [c.key for c in counters]
        for _ in range(3):
            with transaction.atomic():
                rows = self._lock(keys)
                if len(rows) == len(set(keys)):
                    for index, check in enumerate(checks):
                        row = rows[keys[check.counter]]
                        used = used_of(_row_values(row), check.include_byok)
                        need = amount + (amount_byok if check.include_byok else ZERO)
                        if refuses(used, check.limit, need):
                            return Refusal(index, used)
                    for row in rows.values():
                        row.reserved += amount
                        row.reserved_byok += amount_byok
                        row.updated_at = now
                    BudgetCounter.objects.bulk_update(list(rows.values()),
                                                      ["reserved", "reserved_byok", "updated_at"])
                    BudgetReservation.objects.create(id=reservation_id, counter_keys=sorted(rows),
                                                     amount=amount, amount_byok=amount_byok, created_at=now,
                                                     expires_at=expires_at)
                    return None
            self.ensure([c for c in counters if c.key not in rows], now)
        raise CountersUnavailable("budget counters could not be created")

    def settle(self, reservation_id: str | None, required: list[Counter], optional: list[Counter],
               amount: Decimal, amount_byok: Decimal, now: datetime) -> None:
        """Release the reservation (if it still exists) and charge `amount` to every required counter
        (created if missing) and every optional counter that exists."""
        from .models import BudgetCounter, BudgetReservation

        for _ in range(3):
            with transaction.atomic():
                held = None
                if reservation_id:
                    held = BudgetReservation.objects.select_for_update().filter(id=reservation_id).first()
                keys = {c.key for c in required} | {c.key for c in optional}
                if held is not None:
                    keys |= set(held.counter_keys)
                rows = self._lock(keys)
                missing = [c for c in required if c.key not in rows]
                if not missing:
                    touched = {}
                    if held is not None:
                        for key in held.counter_keys:
                            row = rows.get(key)
                            if row is not None:
                                row.reserved = max(ZERO, row.reserved - held.amount)
                                row.reserved_byok = max(ZERO, row.reserved_byok - held.amount_byok)
                                touched[key] = row
                        held.delete()
                    if amount or amount_byok:
                        for key in {c.key for c in required} | {c.key for c in optional}:
                            row = rows.get(key)
                            if row is not None:
                                row.spend += amount
                                row.spend_byok += amount_byok
                                touched[key] = row
                    for row in touched.values():
                        row.updated_at = now
                    if touched:
                        BudgetCounter.objects.bulk_update(
                            list(touched.values()), ["spend", "spend_byok", "reserved", "reserved_byok", "updated_at"])
                    return
            self.ensure(missing, now)
        raise CountersUnavailable("budget counters could not be created")

    def reclaim(self, now: datetime, limit: int = 100) -> int:
        """Release reservations past their expiry (their request's process died), and drop counters of
        windows long over. Returns how many reservations were reclaimed."""
        from .models import BudgetCounter, BudgetReservation

        with transaction.atomic():
            expired = BudgetReservation.objects.filter(expires_at__lte=now).order_by("expires_at")
            if connection.features.has_select_for_update_skip_locked:
                expired = expired.select_for_update(skip_locked=True)
            expired = list(expired[:limit])
            if expired:
                rows = self._lock({key for held in expired for key in held.counter_keys})
                for held in expired:
                    for key in held.counter_keys:
                        row = rows.get(key)
                        if row is not None:
                            row.reserved = max(ZERO, row.reserved - held.amount)
                            row.reserved_byok = max(ZERO, row.reserved_byok - held.amount_byok)
                            row.updated_at = now
                BudgetCounter.objects.bulk_update(list(rows.values()), ["reserved", "reserved_byok", "updated_at"])
                BudgetReservation.objects.filter(id__in=[held.id for held in expired]).delete()
        BudgetCounter.objects.filter(expires_at__lt=now, reserved=0, reserved_byok=0).delete()
        return len(expired)

    def read(self, counter: Counter) -> dict | None:
        from .models import BudgetCounter

        row = BudgetCounter.objects.filter(key=counter.key).first()
        return _row_values(row) if row is not None else None

    def outstanding(self) -> int:
        from .models import BudgetReservation

        return BudgetReservation.objects.count()


def _row_values(row) -> dict:
    return {"spend": row.spend, "spend_byok": row.spend_byok, "reserved": row.reserved,
            "reserved_byok": row.reserved_byok}


# --- Redis ------------------------------------------------------------------------------------------------
# Integers in units of 1e-10 USD. Every HINCRBY argument is passed through as the string Python sent: Lua
# numbers are doubles and print large values in exponent form, which HINCRBY would reject. Comparisons use
# doubles (exact up to 2^53 units, about $900,000 per counter; beyond that to 16 significant digits).
# Scripts touch reservation and counter keys they compute themselves: a single Redis server, not Cluster.

_RELEASE = """
local function release(rkey)
  local data = redis.call('HGETALL', rkey)
  if #data == 0 then return 0 end
  local c, b, keys = '0', '0', {}
  for i = 1, #data, 2 do
    if data[i] == '_c' then c = data[i + 1]
    elseif data[i] == '_b' then b = data[i + 1]
    else keys[#keys + 1] = data[i] end
  end
  for _, k in ipairs(keys) do
    -- A counter Redis lost is seeded again with nothing reserved: never create one here.
    if redis.call('EXISTS', k) == 1 then
      if c ~= '0' and redis.call('HINCRBY', k, 'rc', '-' .. c) < 0 then redis.call('HSET', k, 'rc', '0') end
      if b ~= '0' and redis.call('HINCRBY', k, 'rb', '-' .. b) < 0 then redis.call('HSET', k, 'rb', '0') end
    end
  end
  redis.call('DEL', rkey)
  return 1
end
local function reclaim(zkey, prefix, now)
  local expired = redis.call('ZRANGEBYSCORE', zkey, '-inf', now, 'LIMIT', 0, %d)
  for _, rid in ipairs(expired) do
    release(prefix .. rid)
    redis.call('ZREM', zkey, rid)
  end
  return #expired
end
""" % RECLAIM_BATCH

# KEYS: expiry set, reservation, counters...
# ARGV: now, reservation id, reservation expires at, reservation ttl, amount, amount_byok, reservation prefix,
#       n, n counter expire-at times, m, m checks as (counter index, limit, include_byok)
ADMIT = _RELEASE + """
reclaim(KEYS[1], ARGV[7], tonumber(ARGV[1]))
local n = tonumber(ARGV[8])
local missing = {}
for i = 1, n do
  if redis.call('HEXISTS', KEYS[2 + i], 's') == 0 then missing[#missing + 1] = i end
end
if #missing > 0 then return {'miss', unpack(missing)} end
local amount, amount_b = tonumber(ARGV[5]), tonumber(ARGV[6])
local m = tonumber(ARGV[9 + n])
for j = 1, m do
  local base = 9 + n + (j - 1) * 3
  local v = redis.call('HMGET', KEYS[2 + tonumber(ARGV[base + 1])], 'sc', 'sb', 'rc', 'rb')
  local limit = tonumber(ARGV[base + 2])
  local used = tonumber(v[1] or '0') + tonumber(v[3] or '0')
  local need = amount
  if ARGV[base + 3] == '1' then
    used = used + tonumber(v[2] or '0') + tonumber(v[4] or '0')
    need = need + amount_b
  end
  if used >= limit or used + need > limit then
    return {'refuse', j, v[1] or '0', v[2] or '0', v[3] or '0', v[4] or '0'}
  end
end
for i = 1, n do
  local k = KEYS[2 + i]
  if ARGV[5] ~= '0' then redis.call('HINCRBY', k, 'rc', ARGV[5]) end
  if ARGV[6] ~= '0' then redis.call('HINCRBY', k, 'rb', ARGV[6]) end
  redis.call('EXPIREAT', k, ARGV[8 + i])
  redis.call('HSET', KEYS[2], k, '1')
end
redis.call('HSET', KEYS[2], '_c', ARGV[5], '_b', ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
return {'ok'}
"""

# KEYS: counters...; ARGV: (spend, spend_byok, expire-at) per counter. Only a counter nobody seeded yet.
SEED = """
for i = 1, #KEYS do
  if redis.call('HEXISTS', KEYS[i], 's') == 0 then
    local b = (i - 1) * 3
    redis.call('HSET', KEYS[i], 's', '1', 'sc', ARGV[b + 1], 'sb', ARGV[b + 2])
    redis.call('EXPIREAT', KEYS[i], ARGV[b + 3])
  end
end
return 1
"""

# KEYS: expiry set, reservation, r required counters, then optional counters
# ARGV: reservation id, amount, amount_byok, r, expire-at per counter (required, then optional)
SETTLE = _RELEASE + """
local r = tonumber(ARGV[4])
local missing = {}
for i = 1, r do
  if redis.call('HEXISTS', KEYS[2 + i], 's') == 0 then missing[#missing + 1] = i end
end
if #missing > 0 then return {'miss', unpack(missing)} end
release(KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
for i = 3, #KEYS do
  local k = KEYS[i]
  if i <= 2 + r or redis.call('HEXISTS', k, 's') == 1 then
    if ARGV[2] ~= '0' then redis.call('HINCRBY', k, 'sc', ARGV[2]) end
    if ARGV[3] ~= '0' then redis.call('HINCRBY', k, 'sb', ARGV[3]) end
    redis.call('EXPIREAT', k, ARGV[2 + i])
  end
end
return {'ok'}
"""

RECLAIM = _RELEASE + """
return reclaim(KEYS[1], ARGV[2], tonumber(ARGV[1]))
"""


class RedisCounters:
    """Counters as Redis hashes `ows:bc:<subject>@<window>` with fields s (seeded), sc, sb (spend), rc, rb
    (reserved); reservations as hashes `ows:br:<id>` listing their counters and amounts, with their expiry
    in the sorted set `ows:br-expiry`. One script call admits, one settles; a counter Redis does not hold is
    seeded from the database first (`run_sync` runs the query off the event loop)."""

    def __init__(self, url: str, run_sync, *, timeout: float = 2.0):
        from openrouter_ws.configversion import async_client

        self.client = async_client(url, timeout)
        self.run_sync = run_sync
        self._admit = self.client.register_script(ADMIT)
        self._seed = self.client.register_script(SEED)
        self._settle = self.client.register_script(SETTLE)
        self._reclaim = self.client.register_script(RECLAIM)

    @staticmethod
    def key(counter: Counter) -> str:
        return REDIS_PREFIX + counter.key

    @staticmethod
    def expiry(counter: Counter, now: datetime) -> int:
        # Never in the past by the server's clock, whatever `now` the caller passed (a skewed clock, a test).
        return max(counter_expiry(counter.window, now), int(time.time()) + MIN_TTL_SECONDS)

    async def seed(self, counters: list[Counter], now: datetime) -> None:
        counters = list({c.key: c for c in counters}.values())
        sums = await self.run_sync(_spend_many, counters)
        args = []
        for counter, (spend, spend_byok) in zip(counters, sums):
            args += [to_units(spend), to_units(spend_byok), self.expiry(counter, now)]
        await self._seed(keys=[self.key(c) for c in counters], args=args)

    async def reserve(self, reservation_id: str, counters: list[Counter], checks: list[Check], amount: Decimal,
                      amount_byok: Decimal, expires_at: datetime, now: datetime) -> Refusal | None:
        units, units_byok = to_units(amount), to_units(amount_byok)
        ttl = max(60, int((expires_at - now).total_seconds()) * 2 + 3600)
        args = [f"{now.timestamp():.3f}", reservation_id, f"{expires_at.timestamp():.3f}", ttl, units, units_byok,
                RESERVATION_PREFIX, len(counters), *[self.expiry(c, now) for c in counters], len(checks)]
        for check in checks:
            args += [check.counter + 1, to_units(check.limit), "1" if check.include_byok else "0"]
        keys = [EXPIRY_SET, RESERVATION_PREFIX + reservation_id, *[self.key(c) for c in counters]]
        for _ in range(3):
            result = await self._admit(keys=keys, args=args)
            kind = result[0]
            if kind == b"ok":
                return None
            if kind == b"refuse":
                index = int(result[1]) - 1
                sc, sb, rc, rb = (from_units(v) for v in result[2:6])
                values = {"spend": sc, "spend_byok": sb, "reserved": rc, "reserved_byok": rb}
                return Refusal(index, used_of(values, checks[index].include_byok))
            await self.seed([counters[int(i) - 1] for i in result[1:]], now)
        raise CountersUnavailable("budget counters could not be seeded")

    async def settle(self, reservation_id: str | None, required: list[Counter], optional: list[Counter],
                     amount: Decimal, amount_byok: Decimal, now: datetime) -> None:
        required = list({c.key: c for c in required}.values())
        wanted = {c.key for c in required}
        optional = [c for c in {c.key: c for c in optional}.values() if c.key not in wanted]
        counters = required + optional
        rid = reservation_id or ""
        keys = [EXPIRY_SET, RESERVATION_PREFIX + rid, *[self.key(c) for c in counters]]
        args = [rid, to_units(amount), to_units(amount_byok), len(required),
                *[self.expiry(c, now) for c in counters]]
        for _ in range(3):
            result = await self._settle(keys=keys, args=args)
            if result[0] == b"ok":
                return
            await self.seed([required[int(i) - 1] for i in result[1:]], now)
        raise CountersUnavailable("budget counters could not be seeded")

    async def reclaim(self, now: datetime) -> int:
        return int(await self._reclaim(keys=[EXPIRY_SET], args=[f"{now.timestamp():.3f}", RESERVATION_PREFIX]))

    async def read(self, counter: Counter) -> dict | None:
        values = await self.client.hgetall(self.key(counter))
        if not values or b"s" not in values:
            return None
        return {"spend": from_units(values.get(b"sc", 0)), "spend_byok": from_units(values.get(b"sb", 0)),
                "reserved": from_units(values.get(b"rc", 0)), "reserved_byok": from_units(values.get(b"rb", 0))}

    async def outstanding(self) -> int:
        return int(await self.client.zcard(EXPIRY_SET))

    async def close(self) -> None:
        await self.client.aclose()


def _spend_many(counters: list[Counter]) -> list[tuple[Decimal, Decimal]]:
    return [spend_in_window(c.subject, c.window) for c in counters]
