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
