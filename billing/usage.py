"""What a key has spent, per UTC window, computed from its generations.

`usage*` is what the organization's credits were charged (`Generation.usage`); `byok_usage*` is the market
price (`Generation.total_cost`) of the generations served with the organization's own provider keys.
Windows are UTC: today, this ISO week (from Monday) and this month (from the 1st).
"""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone

from .models import Generation

ZERO = Decimal(0)
USAGE_FIELDS = ("usage", "usage_daily", "usage_weekly", "usage_monthly",
                "byok_usage", "byok_usage_daily", "byok_usage_weekly", "byok_usage_monthly")
# The window each `limit_reset` counts against; no reset means the whole lifetime of the key.
LIMIT_WINDOW = {"daily": "daily", "weekly": "weekly", "monthly": "monthly", None: None}


def window_starts(now: datetime | None = None) -> dict[str, datetime]:
    """Start of the current UTC day, ISO week and month."""
    now = (now or timezone.now()).astimezone(dt_timezone.utc)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return {"daily": day, "weekly": day - timedelta(days=day.weekday()), "monthly": day.replace(day=1)}


def _sums(now: datetime | None) -> dict:
    # Aliased: an annotation may not reuse the name of a model field (`usage`).
    starts = window_starts(now)
    byok = Q(is_byok=True)
    sums = {"sum_usage": Sum("usage"), "sum_byok_usage": Sum("total_cost", filter=byok)}
    for window, start in starts.items():
        since = Q(created_at__gte=start)
        sums[f"sum_usage_{window}"] = Sum("usage", filter=since)
        sums[f"sum_byok_usage_{window}"] = Sum("total_cost", filter=since & byok)
    return sums


def _clean(row: dict) -> dict:
    return {name: row.get(f"sum_{name}") or ZERO for name in USAGE_FIELDS}


def key_usage(api_key, now: datetime | None = None) -> dict:
    """The eight usage counters of one key (Decimal USD), in one aggregate query."""
    return _clean(Generation.objects.filter(api_key=api_key).aggregate(**_sums(now)))


def keys_usage(api_keys, now: datetime | None = None) -> dict:
    """{key pk: counters} for many keys in one grouped query (keys without generations get zeros)."""
    pks = [key.pk for key in api_keys]
    rows = (Generation.objects.filter(api_key_id__in=pks).values("api_key_id").order_by()
            .annotate(**_sums(now)))
    found = {row["api_key_id"]: _clean(row) for row in rows}
    return {pk: found.get(pk) or _clean({}) for pk in pks}


def limit_spend(api_key, usage: dict) -> Decimal:
    """What counts against the key's own limit in its current window."""
    window = LIMIT_WINDOW.get(api_key.limit_reset)
    suffix = f"_{window}" if window else ""
    spend = usage[f"usage{suffix}"]
    if api_key.include_byok_in_limit:
        spend += usage[f"byok_usage{suffix}"]
    return spend


def limit_remaining(api_key, usage: dict) -> Decimal | None:
    """None without a limit; never below zero."""
    if api_key.limit is None:
        return None
    return max(ZERO, api_key.limit - limit_spend(api_key, usage))


def budget_chain(api_key, now: datetime | None = None) -> list[dict]:
    """Every budget layer that admission checks for this key, in enforcement order, as KeyBudget dicts
    (`scope`, `limit_usd`, `spend_usd`, `remaining_usd`, `reset_interval`, `resets_at`, `include_byok`,
    `guardrail_id`, `budget_id`). Spend is the generations' in each layer's current UTC window, from the
    database (requests still running are not in it). Management keys spend nothing: an empty chain."""
    from .counters import spend_in_window
    from .layers import chain_layers
    from .windows import window

    if api_key.is_management:
        return []
    now = now or timezone.now()
    sums: dict = {}
    chain = []
    for layer in chain_layers(api_key):
        win = window(layer.interval, now)
        cache_key = (layer.subject, win.id)
        if cache_key not in sums:
            sums[cache_key] = spend_in_window(layer.subject, win)
        credit, byok = sums[cache_key]
        spend = credit + (byok if layer.include_byok else ZERO)
        chain.append({
            "scope": layer.scope,
            "limit_usd": layer.limit,
            "spend_usd": spend,
            "remaining_usd": max(ZERO, layer.limit - spend),
            "reset_interval": None if layer.interval == "lifetime" else layer.interval,
            "resets_at": win.end,
            "include_byok": layer.include_byok,
            "guardrail_id": layer.guardrail_id,
            "budget_id": layer.budget_id,
        })
    return chain


def effective_budget(chain: list[dict]) -> dict | None:
    """The layer that blocks first: one already spent, else the one with the least remaining."""
    if not chain:
        return None
    spent = [layer for layer in chain if Decimal(str(layer["remaining_usd"])) <= 0]
    if spent:
        return spent[0]
    return min(chain, key=lambda layer: Decimal(str(layer["remaining_usd"])))
