"""Credits: grants and adjustments are ledger entries; usage is the sum of generation charges."""

from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from workspaces.models import Organization, User

from .models import CreditEntry, CreditKind, Generation


def total_credits(organization: Organization) -> Decimal:
    """Everything put into the pool: grants, refunds and adjustments (usage charges excluded)."""
    total = (CreditEntry.objects.filter(organization=organization).exclude(kind=CreditKind.USAGE)
             .aggregate(total=Sum("amount"))["total"])
    return total or Decimal(0)


def total_usage(organization: Organization) -> Decimal:
    return Generation.objects.filter(organization=organization).aggregate(total=Sum("usage"))["total"] or Decimal(0)


@transaction.atomic
def grant_credits(organization: Organization, amount: Decimal, *, reason: str, by: User | None = None,
                  kind: str = CreditKind.GRANT) -> CreditEntry:
    Organization.objects.select_for_update().get(pk=organization.pk)
    return CreditEntry.objects.create(organization=organization, kind=kind, amount=amount, reason=reason,
                                      created_by=by)


# --- workspace budgets -----------------------------------------------------------------------------------

# Broadest first: each limit must be strictly greater than every narrower one that is set.
BUDGET_ORDER = ["lifetime", "monthly", "weekly", "daily"]


def _usd(amount: Decimal) -> str:
    """$500, $150.25, $0.0002: whole dollars bare, else as many decimals as the amount has."""
    from .admission import usd

    text = usd(amount)
    return text[:-3] if text.endswith(".00") else text


def _check_budget_order(limits: dict) -> None:
    from workspaces.services import ServiceError

    ordered = [(interval, limits[interval]) for interval in BUDGET_ORDER if limits.get(interval) is not None]
    for i, (broad, broad_limit) in enumerate(ordered):
        for narrow, narrow_limit in ordered[i + 1:]:
            if broad_limit <= narrow_limit:
                raise ServiceError(
                    "Budget limits must be strictly decreasing as scope narrows: the "
                    f"{broad} limit ({_usd(broad_limit)}) must be greater than the {narrow} limit "
                    f"({_usd(narrow_limit)}).", "limit_usd")


@transaction.atomic
def set_workspace_budget(workspace, interval: str, limit_usd: Decimal, *, include_byok_in_budgets=None,
                         by_user=None, by_key=None):
    """Create or change the workspace's budget for one interval. `include_byok_in_budgets` is workspace-wide;
    None leaves it as it is. Returns (budget, created)."""
    from django.utils import timezone

    from workspaces.models import Workspace
    from workspaces.services import ServiceError, _apply, _audit

    from .models import BudgetInterval, WorkspaceBudget

    if interval not in BudgetInterval.values:
        raise ServiceError(f"Unknown interval '{interval}'; use one of {', '.join(BudgetInterval.values)}.",
                           "interval")
    if limit_usd is None or limit_usd <= 0:
        raise ServiceError("The limit must be greater than 0.", "limit_usd")
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    current = {b.interval: b for b in WorkspaceBudget.objects.filter(workspace=workspace)}
    limits = {name: budget.limit_usd for name, budget in current.items()}
    limits[interval] = limit_usd
    _check_budget_order(limits)
    now = timezone.now()
    budget = current.get(interval)
    changes = {}
    created = budget is None
    if created:
        budget = WorkspaceBudget.objects.create(workspace=workspace, interval=interval, limit_usd=limit_usd,
                                                created_at=now, updated_at=now)
        changes["limit_usd"] = limit_usd
    elif budget.limit_usd != limit_usd:
        budget.limit_usd = limit_usd
        budget.updated_at = now
        budget.save(update_fields=["limit_usd", "updated_at"])
        changes["limit_usd"] = limit_usd
    if include_byok_in_budgets is not None:
        byok_change = _apply(workspace, {"include_byok_in_budgets": include_byok_in_budgets})
        if byok_change:
            workspace.updated_at = now
            workspace.save(update_fields=["include_byok_in_budgets", "updated_at"])
            changes.update(byok_change)
    if changes:
        _audit(workspace.organization, "create" if created else "update", budget, by_user, by_key,
               changes={"workspace_id": str(workspace.pk), "interval": interval, **changes})
    return budget, created


@transaction.atomic
def delete_workspace_budget(workspace, interval: str, *, by_user=None, by_key=None) -> bool:
    """Remove one interval's budget; True if there was one. Deleting twice is not an error."""
    from workspaces.models import Workspace
    from workspaces.services import ServiceError, _audit

    from .models import BudgetInterval, WorkspaceBudget

    if interval not in BudgetInterval.values:
        raise ServiceError(f"Unknown interval '{interval}'; use one of {', '.join(BudgetInterval.values)}.",
                           "interval")
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    budget = WorkspaceBudget.objects.filter(workspace=workspace, interval=interval).first()
    if budget is None:
        return False
    _audit(workspace.organization, "delete", budget, by_user, by_key,
           changes={"workspace_id": str(workspace.pk), "interval": interval})
    budget.delete()
    return True


# --- the operator's ledger entries ------------------------------------------------------------------------

OPERATOR_CREDIT_KINDS = (CreditKind.GRANT, CreditKind.REFUND, CreditKind.ADJUSTMENT)
MAX_CREDIT_ENTRY = Decimal(10) ** 9


@transaction.atomic
def record_credit_entry(organization: Organization, kind: str, amount: Decimal, *, reason: str,
                        by: User) -> CreditEntry:
    """An operator's grant, refund or adjustment (negative to take credits back), with who and why, also in
    the organization's audit log."""
    from workspaces import audit
    from workspaces.services import ServiceError

    if kind not in OPERATOR_CREDIT_KINDS:
        raise ServiceError(f"Choose one of {', '.join(OPERATOR_CREDIT_KINDS)}.", "kind")
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Say why: the reason is kept in the ledger.", "reason")
    if len(reason) > 500:
        raise ServiceError("Keep the reason under 500 characters.", "reason")
    if not amount.is_finite() or abs(amount) > MAX_CREDIT_ENTRY:
        raise ServiceError(f"The amount must be at most {_usd(MAX_CREDIT_ENTRY)}.", "amount")
    amount = amount.quantize(Decimal("1e-12"))
    if amount == 0:
        raise ServiceError("The amount must not be zero.", "amount")
    if kind != CreditKind.ADJUSTMENT and amount < 0:
        raise ServiceError("Grants and refunds add credits; use an adjustment to take credits back.", "amount")
    entry = grant_credits(organization, amount, reason=reason, by=by, kind=kind)
    audit.record(organization=organization, action="create", obj=entry, actor_user=by,
                 changes={"kind": kind, "amount": str(amount), "reason": reason})
    return entry
