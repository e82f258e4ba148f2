"""Writing generation rows directly, for rollup and broadcast tests (the proxy writes them in production)."""

import itertools
from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.utils import timezone

_ids = itertools.count(1)


def day_ago(days: int, hour: int = 12, minute: int = 0) -> datetime:
    """`days` UTC days before today, at hour:minute UTC."""
    today = timezone.now().astimezone(dt_timezone.utc).date()
    return datetime.combine(today - timedelta(days=days), time(hour, minute), tzinfo=dt_timezone.utc)


def make_generation(org, *, created_at: datetime, workspace=None, api_key=None, user=None, model="test/chat",
                    provider="cheap", usage="0.000123", prompt=10, completion=5, **fields):
    from billing.models import Generation

    usage = Decimal(usage)
    values = {
        "id": f"gen-{int(created_at.timestamp())}-{next(_ids):06d}",
        "organization": org, "workspace": workspace, "api_key": api_key,
        "user": user if user is not None else (api_key.created_by if api_key is not None else None),
        "created_at": created_at, "model": model, "provider_slug": provider,
        "provider_name": provider.title(), "tokens_prompt": prompt, "tokens_completion": completion,
        "tokens_reasoning": 1, "tokens_cached": 2, "total_cost": usage, "usage": usage,
        "latency_ms": 120, "generation_time_ms": 380,
    }
    values.update(fields)
    return Generation.objects.create(**values)
