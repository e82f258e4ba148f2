"""The dashboard's activity pages: requests, tokens and spend by day and by model, the latest generations, and
CSV exports. Per workspace for its members; organization-wide, with a per-workspace breakdown and filters, for
admins.

The numbers come from `billing.activity.activity()`, the aggregation behind `GET /api/v1/activity`. The API
covers the 30 complete UTC days before today; the dashboard moves the window one day on, so today's requests
show up at once.
"""

import csv
from collections import defaultdict
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from billing import activity as billing_activity
from billing.models import Generation

from . import access
from .models import ApiKey, KeyKind, Membership, Workspace

RECENT = 50
TOP_MODELS = 10
ZERO = Decimal(0)
MONEY_PLACES = Decimal("1e-12")
CSV_FIELDS = ["date", "workspace", "model", "provider", "requests", "prompt_tokens", "completion_tokens",
              "reasoning_tokens", "cached_tokens", "usage_usd", "byok_usage_usd"]


def _today():
    return timezone.now().astimezone(dt_timezone.utc).date()


def _items(flt: billing_activity.ActivityFilter) -> list[dict]:
    return billing_activity.activity(flt, today=_today() + timedelta(days=1))


def _zero() -> dict:
    return {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "tokens": 0, "usage": ZERO,
            "byok_usage": ZERO}


def _add(row: dict, item: dict) -> None:
    row["requests"] += item["requests"]
    row["prompt_tokens"] += item["prompt_tokens"]
    row["completion_tokens"] += item["completion_tokens"]
    # Completion tokens already include reasoning tokens.
    row["tokens"] += item["prompt_tokens"] + item["completion_tokens"]
    row["usage"] += item["usage"]
    row["byok_usage"] += item["byok_usage_inference"]


def summarize(items: list[dict], workspace_names: dict | None = None) -> dict:
    """Totals, per-day rows (every day of the window, oldest first), per-model and per-workspace rows."""
    first, last = billing_activity.window(_today() + timedelta(days=1))
    days = {(first + timedelta(days=n)).isoformat(): _zero() for n in range((last - first).days + 1)}
    models: dict[str, dict] = defaultdict(_zero)
    workspaces: dict[str, dict] = defaultdict(_zero)
    totals = _zero()
    for item in items:
        _add(totals, item)
        _add(days.setdefault(item["date"], _zero()), item)
        _add(models[item["model"]], item)
        if "workspace_id" in item:
            _add(workspaces[item["workspace_id"] or ""], item)
    by_model = sorted(({"model": m, **row} for m, row in models.items()),
                      key=lambda r: (-r["usage"], -r["requests"], r["model"]))
    names = workspace_names or {}
    by_workspace = sorted(({"workspace_id": w, "name": names.get(w, "(deleted workspace)"), **row}
                           for w, row in workspaces.items()), key=lambda r: (-r["usage"], r["name"]))
    by_day = [{"date": d, **row} for d, row in sorted(days.items())]
    chart = {
        "days": [r["date"] for r in by_day],
        "series": {metric: [_chart_value(r, metric) for r in by_day] for metric in ("usage", "requests", "tokens")},
        "models": [{"label": r["model"], **{m: _chart_value(r, m) for m in ("usage", "requests", "tokens")}}
                   for r in by_model[:TOP_MODELS]],
        "workspaces": [{"label": r["name"], **{m: _chart_value(r, m) for m in ("usage", "requests", "tokens")}}
                       for r in by_workspace],
    }
    return {"totals": totals, "by_day": by_day, "active_days": [r for r in reversed(by_day) if r["requests"]],
            "by_model": by_model, "by_workspace": by_workspace, "chart": chart, "first": first, "last": last}


def _chart_value(row: dict, metric: str):
    # Money travels as a decimal string; the browser only draws it.
    return str(row[metric]) if metric == "usage" else row[metric]


def _recent(organization, **filters):
    """The latest generations within the page's window, so the list and the totals above it agree."""
    first, _last = billing_activity.window(_today() + timedelta(days=1))
    since = datetime.combine(first, datetime.min.time(), tzinfo=dt_timezone.utc)
    return list(Generation.objects.filter(organization=organization, created_at__gte=since, **filters)
                .select_related("api_key", "workspace").order_by("-created_at")[:RECENT])


def _csv_cell(value) -> str:
    if isinstance(value, Decimal):
        # Database sums come back with varying scales (SQLite): the same amount always reads the same.
        return format(value.quantize(MONEY_PLACES).normalize(), "f")
    text = str(value)
    # Spreadsheets run a cell that starts like a formula; model names come from requests.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(filename: str, items: list[dict], workspace_slugs: dict) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(CSV_FIELDS)
    for item in sorted(items, key=lambda i: (i["date"], i.get("workspace_id") or "", i["model"],
                                             i["provider_name"])):
        writer.writerow([_csv_cell(v) for v in (
            item["date"], workspace_slugs.get(item.get("workspace_id"), ""), item["model"], item["provider_name"],
            item["requests"], item["prompt_tokens"], item["completion_tokens"], item["reasoning_tokens"],
            item["cached_tokens"], item["usage"], item["byok_usage_inference"])])
    return response


def _wants_csv(request) -> bool:
    return request.GET.get("format") == "csv"


# --- one workspace --------------------------------------------------------------------------------------------

@login_required
def activity(request, org_slug, ws_slug):
    membership = access.get_membership_for_user(request.user, org_slug)
    org = membership.organization
    workspace = access.get_workspace_for_user(request.user, org, ws_slug)
    items = _items(billing_activity.ActivityFilter(organization=org, workspace_id=workspace.pk))
    if _wants_csv(request):
        filename = f"activity-{org.slug}-{workspace.slug}-{_today().isoformat()}.csv"
        return _csv(filename, items, {None: workspace.slug, str(workspace.pk): workspace.slug})
    return render(request, "workspaces/activity.html", {
        "org": org, "membership": membership, "workspace": workspace, "active_tab": "activity",
        "can_manage": membership.is_admin, "summary": summarize(items),
        "recent": _recent(org, workspace=workspace), "csv_query": "format=csv",
    })


# --- the whole organization (admins) ----------------------------------------------------------------------------

class OrgActivityFilterForm(forms.Form):
    workspace = forms.ChoiceField(required=False)
    key = forms.ChoiceField(required=False, label="API key")
    member = forms.ChoiceField(required=False)

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        workspaces = Workspace.objects.filter(organization=organization).order_by("-is_default", "name")
        self.fields["workspace"].choices = [("", "All workspaces")] + [(w.slug, w.name) for w in workspaces]
        api_keys = (ApiKey.objects.filter(organization=organization, kind=KeyKind.INFERENCE)
                    .select_related("workspace").order_by("name", "created_at"))
        self.fields["key"].choices = [("", "All keys")] + [
            (k.hash, f"{k.name} ({k.label}){' · ' + k.workspace.name if k.workspace else ''}") for k in api_keys]
        members = Membership.objects.filter(organization=organization).select_related("user").order_by("user__email")
        self.fields["member"].choices = [("", "All members")] + [(str(m.user_id), m.user.email) for m in members]


def _org_filters(form, organization) -> tuple[billing_activity.ActivityFilter, dict]:
    """The aggregation filter and the matching generation filters, from the valid fields of the form."""
    data = getattr(form, "cleaned_data", {})  # invalid fields are left out of it
    flt = billing_activity.ActivityFilter(organization=organization, group_by_workspace=True)
    filters = {}
    if data.get("workspace"):
        workspace = Workspace.objects.filter(organization=organization, slug=data["workspace"]).first()
        flt.workspace_id = filters["workspace_id"] = getattr(workspace, "pk", None)
    if data.get("key"):
        api_key = ApiKey.objects.filter(organization=organization, hash=data["key"]).first()
        flt.api_key_id = filters["api_key_id"] = getattr(api_key, "pk", None)
    if data.get("member"):
        flt.user_id = filters["user_id"] = data["member"]
    return flt, filters


@login_required
def org_activity(request, org_slug):
    membership = access.get_membership_for_user(request.user, org_slug, access.CHANGE_ORG)
    org = membership.organization
    form = OrgActivityFilterForm(request.GET or None, organization=org)
    valid = form.is_valid() if form.is_bound else True
    flt, filters = _org_filters(form, org)
    items = _items(flt)
    workspaces = list(Workspace.objects.filter(organization=org))
    slugs = {str(w.pk): w.slug for w in workspaces}
    if _wants_csv(request):
        if not valid:
            return HttpResponse("Unknown filter: " + "; ".join(sorted(form.errors)), status=400,
                                content_type="text/plain; charset=utf-8")
        return _csv(f"activity-{org.slug}-{_today().isoformat()}.csv", items, slugs)
    query = request.GET.copy()
    query["format"] = "csv"
    return render(request, "workspaces/org_activity.html", {
        "org": org, "membership": membership, "active_tab": "activity", "form": form,
        "summary": summarize(items, {str(w.pk): w.name for w in workspaces}),
        "recent": _recent(org, **filters), "csv_query": query.urlencode(), "org_wide": True,
    }, status=200 if valid else 400)
