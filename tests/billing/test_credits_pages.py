"""The operator's credits page (/staff/credits) and an organization's billing page (/o/<org>/billing)."""

from decimal import Decimal

import pytest
from django.test import Client

from billing.models import CreditEntry, CreditKind
from tests.billing.generations import day_ago, make_generation
from workspaces.models import AuditLogEntry, User

pytestmark = pytest.mark.django_db

STAFF_PAGE = "/staff/credits"
STAFF_POST = "/staff/credits/entries"


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def operator(db):
    return User.objects.create_superuser(email="operator@example.com", password="pw-operator-123")


@pytest.fixture
def staff(db):
    return User.objects.create_user(email="staff@example.com", password="pw-staff-123", is_staff=True)


def grant_form(org, **overrides) -> dict:
    return {"organization": org.slug, "kind": "grant", "amount": "250.50", "reason": "Invoice 2026-014", **overrides}


# --- /staff/credits ---------------------------------------------------------------------------------------

def test_anonymous_people_are_sent_to_log_in(org):
    for response in (client_for().get(STAFF_PAGE), client_for().post(STAFF_POST, grant_form(org))):
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not CreditEntry.objects.exists()


def test_people_who_are_not_staff_do_not_see_the_page(org, owner):
    assert client_for(owner).get(STAFF_PAGE).status_code == 404
    assert client_for(owner).post(STAFF_POST, grant_form(org)).status_code == 404
    assert not CreditEntry.objects.exists()


def test_staff_who_are_not_superusers_are_refused(org, staff):
    assert client_for(staff).get(STAFF_PAGE).status_code == 403
    assert client_for(staff).post(STAFF_POST, grant_form(org)).status_code == 403
    assert not CreditEntry.objects.exists()


def test_the_operator_sees_every_organizations_balance(operator, credits, outsider, workspace):
    make_generation(credits, workspace=workspace, created_at=day_ago(1), usage="1.25")

    response = client_for(operator).get(STAFF_PAGE)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Acme" in page and "Elsewhere" in page
    assert "$98.75" in page  # 100 granted by the fixture, 1.25 used
    assert "test" in page  # the fixture's reason, in the ledger


def test_the_operator_grants_credits_with_who_and_why(operator, org):
    response = client_for(operator).post(STAFF_POST, grant_form(org))

    assert response.status_code == 302 and response["Location"] == f"{STAFF_PAGE}?org={org.slug}"
    entry = CreditEntry.objects.get(organization=org)
    assert (entry.kind, entry.amount, entry.reason, entry.created_by) == (
        CreditKind.GRANT, Decimal("250.50"), "Invoice 2026-014", operator)
    audit = AuditLogEntry.objects.get(organization=org, object_type="CreditEntry")
    assert (audit.actor_user, audit.changes["amount"]) == (operator, "250.500000000000")
    page = client_for(operator).get(f"{STAFF_PAGE}?org={org.slug}").content.decode()
    assert "$250.50" in page and "operator@example.com" in page


def test_refunds_and_negative_adjustments_are_recorded(operator, credits):
    client = client_for(operator)
    client.post(STAFF_POST, grant_form(credits, kind="refund", amount="5", reason="Outage credit"))
    client.post(STAFF_POST, grant_form(credits, kind="adjustment", amount="-20.000001", reason="Double grant"))

    kinds = dict(CreditEntry.objects.exclude(reason="test").values_list("kind", "amount"))
    assert kinds == {"refund": Decimal("5"), "adjustment": Decimal("-20.000001")}
    from billing.services import total_credits

    assert total_credits(credits) == Decimal("84.999999")


@pytest.mark.parametrize("overrides, field", [
    ({"amount": "-5"}, "Grants and refunds add credits"),
    ({"kind": "refund", "amount": "-5"}, "Grants and refunds add credits"),
    ({"amount": "0"}, "must not be zero"),
    ({"reason": "   "}, "reason"),
    ({"amount": "lots"}, "Enter a number"),
    ({"amount": "NaN"}, "Enter a number"),
    ({"amount": "1e30"}, "less than or equal"),
    ({"kind": "usage"}, "Select a valid choice"),
    ({"organization": "no-such-org"}, "Select a valid choice"),
])
def test_bad_entries_are_refused_beside_the_form(operator, org, overrides, field):
    response = client_for(operator).post(STAFF_POST, grant_form(org, **overrides))

    assert response.status_code == 400
    assert field in response.content.decode() or field == "reason"
    assert not CreditEntry.objects.exists()


# --- /o/<org>/billing -------------------------------------------------------------------------------------

def billing_url(org) -> str:
    return f"/o/{org.slug}/billing"


def test_anonymous_people_are_sent_to_log_in_from_billing(org):
    response = client_for().get(billing_url(org))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_outsiders_get_404(org, outsider):
    assert client_for(outsider).get(billing_url(org)).status_code == 404


def test_members_get_403(org, member):
    assert client_for(member).get(billing_url(org)).status_code == 403


def test_admins_see_the_balance_and_the_ledger_read_only(credits, admin, workspace, outsider, operator):
    make_generation(credits, workspace=workspace, created_at=day_ago(1), usage="0.004")
    from billing.services import record_credit_entry

    record_credit_entry(credits, "adjustment", Decimal("-10"), reason="Correction", by=operator)
    record_credit_entry(outsider.owned_organizations.get(), "grant", Decimal("7"), reason="Theirs", by=operator)

    response = client_for(admin).get(billing_url(credits))

    assert response.status_code == 200
    page = response.content.decode()
    assert "$89.996" in page  # 100 - 10 - 0.004
    assert "Correction" in page and "-$10.00" in page
    assert "Theirs" not in page
    assert "<form" not in page.split("<main", 1)[1].split("</main>", 1)[0]  # nothing to change here


def test_the_owner_sees_billing_too_and_a_bad_page_number_is_not_an_error(credits, owner):
    assert client_for(owner).get(billing_url(credits)).status_code == 200
    assert client_for(owner).get(f"{billing_url(credits)}?page=oops").status_code == 200
    assert client_for(owner).get(f"{billing_url(credits)}?page=999").status_code == 200
