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
from django.utils import timezone

from .layers import generation_filter
from .windows import GRACE, Window, counter_expiry

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
UNIT = Decimal("1e-10")
REDIS_PREFIX = "ows:bc:"
RESERVATION_PREFIX = "ows:br:"
EXPIRY_SET = "ows:br-expiry"
SETTLED_PREFIX = "ows:bs:"  # a settlement's mark: a retried settlement (its first reply lost) charges nothing
SETTLED_TTL = 600  # seconds; far longer than the settlement's retries
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

@dataclass
class _Held:
    keys: list
    amount: int
    amount_byok: int


class DatabaseCounters:
    """Counters as BudgetCounter rows, in integer units like Redis. `run(steps)` applies any number of
    reserve, settle and reclaim steps, in order, in one transaction: the gateway's ledger hands it every
    step that arrived while the previous transaction ran (group commit), so under load many requests share
    one write. Rows are locked in key order (SELECT ... FOR UPDATE where the database has it; on SQLite the
    IMMEDIATE transaction serializes writers), after the reservations the steps release, which every writer
    takes first: two transactions never wait on each other in a cycle.

    The methods `reserve`, `settle`, `reclaim`, `ensure` are the one-step forms. Everything here is
    synchronous: callers on the event loop run it on a thread."""

    MAX_STEPS = 200

    # -- one step at a time
    def reserve(self, reservation_id: str, counters: list[Counter], checks: list[Check], amount: Decimal,
                amount_byok: Decimal, expires_at: datetime, now: datetime) -> Refusal | None:
        return self.run([("reserve", (reservation_id, counters, checks, amount, amount_byok, expires_at, now))])[0]

    def settle(self, reservation_id: str | None, required: list[Counter], optional: list[Counter],
               amount: Decimal, amount_byok: Decimal, now: datetime) -> None:
        """Release the reservation (if it still exists) and charge `amount` to every required counter
        (created if missing) and every optional counter that exists."""
        self.run([("settle", (reservation_id, required, optional, amount, amount_byok, now))])

    def reclaim(self, now: datetime, limit: int = 100) -> int:
        """Release reservations past their expiry (their request's process died), and drop counters of
        windows long over. Returns how many reservations were reclaimed."""
        return self.run([("reclaim", (now, limit))])[0]

    def ensure(self, counters: list[Counter], now: datetime) -> None:
        """Create missing counters, seeded from the generations in their window."""
        with transaction.atomic():
            with connection.cursor() as cursor:
                _Batch(cursor).load({c.key: c for c in counters}, now)

    def read(self, counter: Counter) -> dict | None:
        from .models import BudgetCounter

        row = BudgetCounter.objects.filter(key=counter.key).values(*VALUE_FIELDS).first()
        return {name: from_units(row[name]) for name in VALUE_FIELDS} if row is not None else None

    def outstanding(self) -> int:
        from .models import BudgetReservation

        return BudgetReservation.objects.count()

    # -- a batch of steps in one transaction
    def run(self, steps: list[tuple[str, tuple]]) -> list:
        with transaction.atomic():
            with connection.cursor() as cursor:
                return _Batch(cursor).run(steps)


VALUE_FIELDS = ("spend", "spend_byok", "reserved", "reserved_byok")
KEY, WINDOW = '"key"', '"window"'  # quoted: keywords in some SQL dialects


def _tables():
    from .models import BudgetCounter, BudgetReservation

    return BudgetCounter._meta.db_table, BudgetReservation._meta.db_table


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


class _Batch:
    """One transaction's worth of steps; counters are read once, changed in memory, written once."""

    def __init__(self, cursor):
        self.cursor = cursor
        self.counters, self.reservations = _tables()
        self.lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        self.dt = connection.ops.adapt_datetimefield_value
        self.values: dict[str, list[int]] = {}  # key -> [spend, spend_byok, reserved, reserved_byok]
        self.dirty: set[str] = set()
        self.created: dict[str, tuple] = {}  # reservations made in this batch: id -> row

    def run(self, steps):
        now = max((args[-1] for kind, args in steps if kind != "reclaim"), default=None) or timezone.now()
        made = {args[0] for kind, args in steps if kind == "reserve"}
        released = [args[0] for kind, args in steps if kind == "settle" and args[0] and args[0] not in made]
        held = self._take(released)
        reclaimed = []
        for kind, args in steps:
            if kind == "reclaim":
                reclaimed.append(self._take_expired(*args))
        needed: dict[str, Counter] = {}
        optional: dict[str, Counter] = {}
        for kind, args in steps:
            if kind == "reserve":
                needed.update((c.key, c) for c in args[1])
            elif kind == "settle":
                needed.update((c.key, c) for c in args[1])
                optional.update((c.key, c) for c in args[2])
        extra = {key for h in held.values() for key in h.keys}
        extra |= {key for batch in reclaimed for h in batch for key in h.keys}
        self.load(needed, now, (set(optional) | extra) - set(needed))
        results = []
        expired = iter(reclaimed)
        for kind, args in steps:
            if kind == "reserve":
                results.append(self._reserve(*args))
            elif kind == "settle":
                results.append(self._settle(held, *args))
            else:
                batch = next(expired)
                for h in batch:
                    self._release(h)
                results.append(len(batch))
        self._write(now)
        if any(kind == "reclaim" for kind, _ in steps):
            self.cursor.execute(f"DELETE FROM {self.counters} WHERE expires_at < %s AND reserved = 0 "
                                "AND reserved_byok = 0", [self.dt(now)])
        return results

    # -- reading
    def _take(self, ids) -> dict[str, _Held]:
        """Delete the reservations these steps release, returning what they held (gone already: not listed)."""
        held = {}
        ids = list(dict.fromkeys(ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            self.cursor.execute(f"DELETE FROM {self.reservations} WHERE id IN ({_marks(len(chunk))}) "
                                "RETURNING id, counter_keys, amount, amount_byok", chunk)
            for rid, keys, amount, amount_byok in self.cursor.fetchall():
                held[rid] = _Held(keys.split(), int(amount), int(amount_byok))
        return held

    def _take_expired(self, now, limit) -> list[_Held]:
        skip = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
        self.cursor.execute(
            f"DELETE FROM {self.reservations} WHERE id IN (SELECT id FROM {self.reservations} "
            f"WHERE expires_at <= %s ORDER BY expires_at LIMIT %s{skip}) "
            "RETURNING id, counter_keys, amount, amount_byok", [self.dt(now), limit])
        return [_Held(keys.split(), int(amount), int(amount_byok)) for _, keys, amount, amount_byok in
                self.cursor.fetchall()]

    def _select(self, keys) -> None:
        keys = sorted(set(keys) - set(self.values))
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            self.cursor.execute(f"SELECT {KEY}, spend, spend_byok, reserved, reserved_byok FROM {self.counters} "
                                f"WHERE {KEY} IN ({_marks(len(chunk))}) ORDER BY {KEY}{self.lock}", chunk)
            for key, *values in self.cursor.fetchall():
                self.values[key] = [int(v) for v in values]

    def load(self, needed: dict[str, Counter], now, others=()) -> None:
        """Lock and read the counters; create the needed ones that are missing, seeded from the generations
        in their window (a concurrent creator wins: its seed was read no later than ours)."""
        self._select(set(needed) | set(others))
        # Created in key order, like the locks: two writers creating the same counters wait, never cycle.
        missing = sorted((c for key, c in needed.items() if key not in self.values), key=lambda c: c.key)
        if not missing:
            return
        rows = []
        for counter in missing:
            spend, spend_byok = spend_in_window(counter.subject, counter.window)
            end = counter.window.end
            rows.append([counter.key, counter.subject, counter.window.id, to_units(spend), to_units(spend_byok),
                         0, 0, self.dt((end + GRACE) if end else None), self.dt(now)])
        self.cursor.executemany(
            f"INSERT INTO {self.counters} ({KEY}, subject, {WINDOW}, spend, spend_byok, reserved, reserved_byok, "
            f"expires_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT ({KEY}) DO NOTHING",
            rows)
        self._select([c.key for c in missing])
        if any(c.key not in self.values for c in missing):
            raise CountersUnavailable("budget counters could not be created")

    # -- the steps, in memory
    def _reserve(self, reservation_id, counters, checks, amount, amount_byok, expires_at, now):
        keys = [c.key for c in counters]
        units, units_byok = to_units(amount), to_units(amount_byok)
        for index, check in enumerate(checks):
            spend, spend_byok, reserved, reserved_byok = self.values[keys[check.counter]]
            used, need = spend + reserved, units
            if check.include_byok:
                used += spend_byok + reserved_byok
                need += units_byok
            if refuses(used, to_units(check.limit), need):
                return Refusal(index, from_units(used))
        unique = sorted(set(keys))
        for key in unique:
            values = self.values[key]
            values[2] += units
            values[3] += units_byok
            self.dirty.add(key)
        self.created[reservation_id] = (reservation_id, "\n".join(unique), units, units_byok, self.dt(now),
                                        self.dt(expires_at))
        return None

    def _release(self, held: _Held) -> None:
        for key in held.keys:
            values = self.values.get(key)
            if values is not None:  # a counter dropped meanwhile is seeded again with nothing reserved
                values[2] = max(0, values[2] - held.amount)
                values[3] = max(0, values[3] - held.amount_byok)
                self.dirty.add(key)

    def _settle(self, held, reservation_id, required, optional, amount, amount_byok, now):
        if reservation_id in self.created:
            _, keys, units, units_byok, *_ = self.created.pop(reservation_id)
            self._release(_Held(keys.split(), units, units_byok))
        elif reservation_id in held:
            self._release(held.pop(reservation_id))
        units, units_byok = to_units(amount), to_units(amount_byok)
        if units or units_byok:
            for key in {c.key for c in required} | {c.key for c in optional}:
                values = self.values.get(key)
                if values is not None:
                    values[0] += units
                    values[1] += units_byok
                    self.dirty.add(key)
        return None

    # -- writing
    def _write(self, now) -> None:
        stamp = self.dt(now)
        if self.dirty:
            self.cursor.executemany(
                f"UPDATE {self.counters} SET spend = %s, spend_byok = %s, reserved = %s, reserved_byok = %s, "
                f"updated_at = %s WHERE {KEY} = %s",
                [[*self.values[key], stamp, key] for key in sorted(self.dirty)])
        if self.created:
            self.cursor.executemany(
                f"INSERT INTO {self.reservations} (id, counter_keys, amount, amount_byok, created_at, expires_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)", list(self.created.values()))


# --- Redis ------------------------------------------------------------------------------------------------
# Integers in units of 1e-10 USD. Every HINCRBY argument is passed through as the string Python sent: Lua
# numbers are doubles and print large values in exponent form, which HINCRBY would reject. Comparisons use
# doubles (exact up to 2^53 units, about $900,000 per counter; beyond that to 16 significant digits).
# Scripts touch reservation and counter keys they compute themselves: a single Redis server, not Cluster.
# Every script is idempotent, so a command whose reply was lost (a dropped connection) can be sent again: an
# admission whose reservation exists answers 'ok', a settlement whose mark exists charges nothing.

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
if redis.call('EXISTS', KEYS[2]) == 1 then return {'ok'} end
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

# KEYS: expiry set, reservation, settled mark, r required counters, then optional counters
# ARGV: reservation id, amount, amount_byok, r, expire-at per counter (required, then optional)
# A release is a settlement with no counters: it leaves no mark.
SETTLE = _RELEASE + """
local charges = #KEYS > 3 and ARGV[1] ~= ''
if charges and redis.call('EXISTS', KEYS[3]) == 1 then return {'ok'} end
local r = tonumber(ARGV[4])
local missing = {}
for i = 1, r do
  if redis.call('HEXISTS', KEYS[3 + i], 's') == 0 then missing[#missing + 1] = i end
end
if #missing > 0 then return {'miss', unpack(missing)} end
release(KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
for i = 4, #KEYS do
  local k = KEYS[i]
  if i <= 3 + r or redis.call('HEXISTS', k, 's') == 1 then
    if ARGV[2] ~= '0' then redis.call('HINCRBY', k, 'sc', ARGV[2]) end
    if ARGV[3] ~= '0' then redis.call('HINCRBY', k, 'sb', ARGV[3]) end
    redis.call('EXPIREAT', k, ARGV[1 + i])
  end
end
if charges then redis.call('SET', KEYS[3], '1', 'EX', %d) end
return {'ok'}
""" % SETTLED_TTL

RECLAIM = _RELEASE + """
return reclaim(KEYS[1], ARGV[2], tonumber(ARGV[1]))
"""


SCRIPT_LOADS = 3


class RedisCounters:
    """Counters as Redis hashes `ows:bc:<subject>@<window>` with fields s (seeded), sc, sb (spend), rc, rb
    (reserved); reservations as hashes `ows:br:<id>` listing their counters and amounts, with their expiry
    in the sorted set `ows:br-expiry`. One script call admits, one settles; a counter Redis does not hold is
    seeded from the database first (`run_sync` runs the query off the event loop)."""

    def __init__(self, url: str, run_sync, *, timeout: float = 2.0):
        from openrouter_ws.configversion import Batched, async_client

        self.client = async_client(url, timeout)
        self.batched = Batched(self.client)  # admissions and settlements in flight share round-trips
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
        await self._eval(self._seed, [self.key(c) for c in counters], args)

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
            result = await self._eval(self._admit, keys, args)
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
        keys = [EXPIRY_SET, RESERVATION_PREFIX + rid, SETTLED_PREFIX + rid, *[self.key(c) for c in counters]]
        args = [rid, to_units(amount), to_units(amount_byok), len(required),
                *[self.expiry(c, now) for c in counters]]
        for _ in range(3):
            result = await self._eval(self._settle, keys, args)
            if result[0] == b"ok":
                return
            await self.seed([required[int(i) - 1] for i in result[1:]], now)
        raise CountersUnavailable("budget counters could not be seeded")

    async def reclaim(self, now: datetime) -> int:
        return int(await self._eval(self._reclaim, [EXPIRY_SET], [f"{now.timestamp():.3f}", RESERVATION_PREFIX]))

    async def _eval(self, script, keys, args):
        from redis.exceptions import NoScriptError

        for _ in range(SCRIPT_LOADS):
            try:
                return await self.batched.execute("EVALSHA", script.sha, len(keys), *keys, *args)
            except NoScriptError:  # a new or restarted Redis, or SCRIPT FLUSH: load it and send it again
                await self.client.script_load(script.script)
        return await self.batched.execute("EVALSHA", script.sha, len(keys), *keys, *args)

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
