"""Activity: spend, tokens and requests per (UTC day, model, provider endpoint) over the last 30 complete days.

Read from the activity rollups (`billing.rollups`) for every generation row at or before the rollup watermark,
plus the tail of generation rows after it, in one consistent state: the numbers are the same whether the
rollup has run or not. Callers depend on `activity()` and the item shape, which is the reference's
ActivityItem; `totals()` serves other groupings (per workspace, key, member, day) from the same sources.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from datetime import timezone as dt_timezone

from django.db.models.functions import TruncDate
from django.utils import timezone

from . import rollups
from .models import ActivityRollup, Generation

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
    # Only these workspaces (a member's dashboard); None: every workspace.
    workspace_ids: tuple | None = None


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


# What `totals()` can group by: the rollup's dimensions, named as on Generation.
GROUPS = ("day", "workspace_id", "api_key_id", "user_id", "model", "provider_slug", "provider_name")


def _filtered(queryset, flt: ActivityFilter):
    if flt.api_key_id is not None:
        queryset = queryset.filter(api_key_id=flt.api_key_id)
    if flt.user_id is not None:
        queryset = queryset.filter(user_id=flt.user_id)
    if flt.workspace_id is not None:
        queryset = queryset.filter(workspace_id=flt.workspace_id)
    if flt.workspace_ids is not None:
        queryset = queryset.filter(workspace_id__in=list(flt.workspace_ids))
    return queryset


def _rolled(flt: ActivityFilter, group: tuple, first: date, last: date) -> list[dict]:
    rows = _filtered(ActivityRollup.objects.filter(organization=flt.organization, day__gte=first, day__lte=last),
                     flt)
    return list(rows.values(*group).order_by().annotate(**rollups.rollup_sums()))


def _tail(flt: ActivityFilter, group: tuple, first: date, last: date, mark) -> list[dict]:
    start = rollups.day_bounds(first)[0]
    end = rollups.day_bounds(last)[1]
    if not mark.is_start and mark.created_at > start:
        # One lower bound for the index range: the planner would otherwise scan from `start`.
        start = mark.created_at
    rows = _filtered(Generation.objects.filter(organization=flt.organization, created_at__gte=start,
                                               created_at__lt=end), flt).filter(mark.after())
    if "day" in group:
        rows = rows.annotate(day=TruncDate("created_at", tzinfo=dt_timezone.utc))
    return list(rows.values(*group).order_by().annotate(**rollups.generation_sums()))


def totals(flt: ActivityFilter, group: tuple, first: date, last: date) -> list[dict]:
    """Sums per `group` (names from GROUPS) over the UTC days `first`..`last`, from the rollups plus the
    not-yet-rolled tail: each row has the group's values and requests, prompt_tokens, completion_tokens,
    reasoning_tokens, cached_tokens, usage, byok_usage (Decimal), errors and cancelled. Unordered."""
    group = tuple(group)
    unknown = set(group) - set(GROUPS)
    if unknown:
        raise ValueError(f"cannot group activity by {', '.join(sorted(unknown))}")

    def read(mark) -> list[dict]:
        merged: dict[tuple, dict] = {}
        sources = [_tail(flt, group, first, last, mark)]
        if not mark.is_start:
            sources.append(_rolled(flt, group, first, last))
        for rows in sources:
            for row in rows:
                key = tuple(row[name] for name in group)
                sums = rollups.clean_sums(row)
                if key in merged:
                    for name in rollups.METRICS:
                        merged[key][name] += sums[name]
                else:
                    merged[key] = {**dict(zip(group, key)), **sums}
        return list(merged.values())

    return rollups.read_consistently(read)


def activity(flt: ActivityFilter, today: date | None = None) -> list[dict]:
    first, last = window(today)
    if flt.day is not None:
        first = last = flt.day
    group = ["day", "model", "provider_slug", "provider_name"]
    if flt.group_by_workspace:
        group.append("workspace_id")
    grouped = totals(flt, tuple(group), first, last)
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
            "usage": row["usage"],
            "byok_usage_inference": row["byok_usage"],
            "requests": row["requests"],
            "prompt_tokens": row["prompt_tokens"],
            "completion_tokens": row["completion_tokens"],
            "reasoning_tokens": row["reasoning_tokens"],
            "cached_tokens": row["cached_tokens"],
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
