"""Credits in the dashboard: the operator's credits page and an organization's billing page.

The operator (a superuser) grants credits to an organization and records refunds and adjustments, each with
who and why, on `/staff/credits`. An organization's admins read its balance and ledger on
`/o/<org>/billing`; members get 403, everyone else 404. Each view checks access first, then calls one
service or reads, then renders.
"""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from workspaces import access
from workspaces.models import Organization
from workspaces.services import ServiceError

from . import services
from .models import CreditEntry, CreditKind, Generation

LEDGER_PAGE_SIZE = 50
STAFF_LEDGER_SIZE = 100


def usd(amount: Decimal) -> str:
    """Dollars with cents, and the sub-cent digits a usage charge needs (never float)."""
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    cents = f"{amount:,.2f}"
    if amount == amount.quantize(Decimal("0.01")):
        return f"{sign}${cents}"
    fine = f"{amount:,.6f}".rstrip("0")
    return f"{sign}${fine}"


def _balance(organization: Organization) -> dict:
    credits = services.total_credits(organization)
    usage = services.total_usage(organization)
    return {"credits": usd(credits), "usage": usd(usage), "balance": usd(credits - usage),
            "is_negative": credits - usage < 0}


def _entry_rows(entries) -> list[dict]:
    return [{"entry": e, "amount": usd(e.amount), "by": e.created_by.email if e.created_by else "system"}
            for e in entries]


# --- the operator -----------------------------------------------------------------------------------------

def _require_superuser(user) -> None:
    # Staff who are not superusers see that the page exists but may not use it; anyone else does not see it.
    if not user.is_superuser:
        if user.is_staff:
            raise PermissionDenied("Only superusers manage credits.")
        raise Http404("No such page.")


class CreditEntryForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=Organization.objects.order_by("name", "slug"),
                                          to_field_name="slug", empty_label="Choose…")
    kind = forms.ChoiceField(choices=[(kind.value, kind.label) for kind in services.OPERATOR_CREDIT_KINDS],
                             initial=CreditKind.GRANT,
                             help_text="Grants and refunds add credits; an adjustment may be negative.")
    amount = forms.DecimalField(label="Amount (USD)", max_digits=24, decimal_places=12,
                                min_value=-services.MAX_CREDIT_ENTRY, max_value=services.MAX_CREDIT_ENTRY,
                                widget=forms.NumberInput(attrs={"step": "any", "placeholder": "100.00"}))
    reason = forms.CharField(max_length=500, help_text="Kept in the ledger and the organization's audit log.",
                             widget=forms.TextInput(attrs={"placeholder": "Invoice 2026-014, paid"}))


def _staff_page(request, form, status=200):
    organizations = list(Organization.objects.order_by("name", "slug"))
    granted = dict(CreditEntry.objects.exclude(kind=CreditKind.USAGE).values("organization_id").order_by()
                   .annotate(total=Sum("amount")).values_list("organization_id", "total"))
    used = dict(Generation.objects.values("organization_id").order_by().annotate(total=Sum("usage"))
                .values_list("organization_id", "total"))
    rows = []
    for org in organizations:
        credits, usage = granted.get(org.pk) or Decimal(0), used.get(org.pk) or Decimal(0)
        rows.append({"org": org, "credits": usd(credits), "usage": usd(usage), "balance": usd(credits - usage),
                     "is_negative": credits - usage < 0})
    entries = CreditEntry.objects.exclude(kind=CreditKind.USAGE).select_related("organization", "created_by")
    chosen = None
    slug = request.GET.get("org")
    if slug:
        chosen = next((o for o in organizations if o.slug == slug), None)
        if chosen is not None:
            entries = entries.filter(organization=chosen)
    return render(request, "billing/staff_credits.html", {
        "form": form, "rows": rows, "chosen": chosen,
        "entries": _entry_rows(entries.order_by("-created_at")[:STAFF_LEDGER_SIZE]),
    }, status=status)


@login_required
def staff_credits(request):
    _require_superuser(request.user)
    initial = {"organization": request.GET["org"]} if request.GET.get("org") else None
    return _staff_page(request, CreditEntryForm(initial=initial))


@login_required
@require_POST
def staff_credit_create(request):
    _require_superuser(request.user)
    form = CreditEntryForm(request.POST)
    if form.is_valid():
        org = form.cleaned_data["organization"]
        try:
            entry = services.record_credit_entry(org, form.cleaned_data["kind"], form.cleaned_data["amount"],
                                                 reason=form.cleaned_data["reason"], by=request.user)
        except ServiceError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, f"Recorded a {entry.get_kind_display().lower()} of {usd(entry.amount)} "
                                      f"for {org.name}.")
            return redirect(f"{reverse('billing:staff-credits')}?org={org.slug}")
    return _staff_page(request, form, status=400)


# --- an organization's admins -----------------------------------------------------------------------------

@login_required
def org_billing(request, org_slug):
    membership = access.get_membership_for_user(request.user, org_slug, access.CHANGE_ORG)
    org = membership.organization
    entries = (CreditEntry.objects.filter(organization=org).exclude(kind=CreditKind.USAGE)
               .select_related("created_by").order_by("-created_at"))
    page = Paginator(entries, LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "billing/org_billing.html", {
        "org": org, "membership": membership, "active_tab": "billing", "page": page,
        "entries": _entry_rows(page.object_list), **_balance(org),
    })
