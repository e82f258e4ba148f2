"""Activity: spend, tokens and requests per (UTC day, model, provider endpoint) over the last 30 complete days.

Computed from generation rows by aggregate queries. A rollup table may replace this later; callers depend only
on `activity()` and the item shape, which is the reference's ActivityItem.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from .models import Generation

DAYS = 30
SUMMED = ("usage", "byok_usage_inference", "requests", "prompt_tokens", "completion_tokens", "reasoning_tokens",
          "cached_tokens")


@dataclass
class ActivityFilter:
    organization: object
    day: date | None = None
    api_key_id: object = None
    user_id: object = None
    workspace_id: object = None
    group_by_workspace: bool = False


def window(today: date | None = None) -> tuple[date, date]:
    """First and last day covered: the 30 UTC days before today (today is not complete yet)."""
    today = today or timezone.now().astimezone(dt_timezone.utc).date()
    return today - timedelta(days=DAYS), today - timedelta(days=1)


def _endpoint_ids(pairs) -> dict:
    """(model slug, provider slug) -> catalog endpoint id, for the pairs that are still in the catalog."""
    from routing.models import Endpoint

    models = {model for model, _ in pairs}
    found = Endpoint.objects.filter(model__slug__in=models).values_list("model__slug", "provider__slug", "id")
    return {(model, provider): str(pk) for model, provider, pk in found}


def activity(flt: ActivityFilter, today: date | None = None) -> list[dict]:
    first, last = window(today)
    if flt.day is not None:
        first = last = flt.day
    start = datetime.combine(first, datetime.min.time(), tzinfo=dt_timezone.utc)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=dt_timezone.utc)
    rows = Generation.objects.filter(organization=flt.organization, created_at__gte=start, created_at__lt=end)
    if flt.api_key_id is not None:
        rows = rows.filter(api_key_id=flt.api_key_id)
    if flt.user_id is not None:
        rows = rows.filter(user_id=flt.user_id)
    if flt.workspace_id is not None:
        rows = rows.filter(workspace_id=flt.workspace_id)
    group = ["day", "model", "provider_slug", "provider_name"]
    if flt.group_by_workspace:
        group.append("workspace_id")
    grouped = (rows.annotate(day=TruncDate("created_at", tzinfo=dt_timezone.utc)).values(*group).order_by()
               .annotate(usage_sum=Sum("usage"), byok_sum=Sum("total_cost", filter=Q(is_byok=True)),
                         requests=Count("id"), prompt_tokens=Sum("tokens_prompt"),
                         completion_tokens=Sum("tokens_completion"), reasoning_tokens=Sum("tokens_reasoning"),
                         cached_tokens=Sum("tokens_cached")))
    grouped = list(grouped)
    endpoints = _endpoint_ids({(row["model"], row["provider_slug"]) for row in grouped})
    default_id = None
    if flt.group_by_workspace:
        default = flt.organization.default_workspace
        default_id = default.pk if default else None
    merged: dict[tuple, dict] = {}
    for row in grouped:
        day = row["day"]
        item = {
            "date": day.isoformat() if hasattr(day, "isoformat") else str(day),
            "model": row["model"],
            "model_permaslug": row["model"],
            "endpoint_id": endpoints.get((row["model"], row["provider_slug"]))
            or f"{row['provider_slug'] or 'unknown'}/{row['model']}",
            "provider_name": row["provider_name"] or row["provider_slug"] or "unknown",
            "usage": row["usage_sum"] or Decimal(0),
            "byok_usage_inference": row["byok_sum"] or Decimal(0),
            "requests": row["requests"],
            "prompt_tokens": row["prompt_tokens"] or 0,
            "completion_tokens": row["completion_tokens"] or 0,
            "reasoning_tokens": row["reasoning_tokens"] or 0,
            "cached_tokens": row["cached_tokens"] or 0,
        }
        if flt.group_by_workspace:
            # Generations without a workspace (it was deleted, or predates workspaces) count for the Default.
            workspace_id = row["workspace_id"] or default_id
            item["workspace_id"] = str(workspace_id) if workspace_id else None
        key = (item["date"], item["model"], item["endpoint_id"], item["provider_name"], item.get("workspace_id"))
        if key in merged:
            for field in SUMMED:
                merged[key][field] += item[field]
        else:
            merged[key] = item
    items = list(merged.values())
    # Newest day first; within a day the biggest spend first.
    items.sort(key=lambda i: (-i["usage"], i["model"], i["provider_name"], i.get("workspace_id") or ""))
    items.sort(key=lambda i: i["date"], reverse=True)
    return items
