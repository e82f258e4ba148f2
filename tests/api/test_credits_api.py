"""`GET /credits`: everything granted to the organization and everything its generations used."""

from decimal import Decimal

import pytest

from billing.services import grant_credits

pytestmark = pytest.mark.django_db


def test_it_reports_credits_and_usage(callers, org, credits, make_generation):
    grant_credits(org, Decimal("0.5"), reason="top-up")
    make_generation(usage=Decimal("1.25"))
    make_generation(usage=Decimal("0.25"))
    response = callers.check("get", "/api/v1/credits", outsider_status=200)
    assert response.json() == {"data": {"total_credits": 100.5, "total_usage": 1.5}}
    assert callers.outsider.get("/api/v1/credits").json() == {"data": {"total_credits": 0, "total_usage": 0}}
