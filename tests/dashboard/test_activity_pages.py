"""The activity pages: a workspace's (its members) and the organization's (admins), with charts data and CSV."""

import csv
import io
import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Generation
from workspaces.services import create_api_key

from .conftest import assert_login_redirect


def ws_url(org, workspace):
    return f"/o/{org.slug}/w/{workspace.slug}/activity"


def org_url(org):
    return f"/o/{org.slug}/activity"


def generation(org, workspace, *, api_key=None, user=None, model="test/chat", usage="0.010000", prompt=100,
               completion=50, ago=timedelta(0), **extra):
    return Generation.objects.create(
        id=f"gen-{uuid.uuid4().hex}", organization=org, workspace=workspace, api_key=api_key, user=user,
        model=model, provider_slug="cheap", provider_name="Cheap", tokens_prompt=prompt,
        tokens_completion=completion, usage=Decimal(usage), total_cost=Decimal(usage),
        created_at=timezone.now() - ago, latency_ms=321, **extra)


def chart_data(response) -> dict:
    body = response.content.decode()
    start = body.index('<script id="activity-data" type="application/json">') + len(
        '<script id="activity-data" type="application/json">')
    return json.loads(body[start:body.index("</script>", start)])


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.fixture
def traffic(org, workspace, staging, member, admin, inference_key):
    """Production: two member requests today (test/chat) and one admin request 3 days ago (test/claude);
    Staging: one admin request; and one Production request older than the 30-day window."""
    member_key = inference_key[0]
    admin_key = create_api_key(organization=org, workspace=staging, name="Staging key", created_by=admin)[0]
    return {
        "today": [generation(org, workspace, api_key=member_key, user=member, usage="0.010000"),
                  generation(org, workspace, api_key=member_key, user=member, usage="0.020000", streamed=True)],
        "older": generation(org, workspace, user=admin, model="test/claude", usage="0.500000",
                            ago=timedelta(days=3), prompt=1000, completion=500),
        "staging": generation(org, staging, api_key=admin_key, user=admin, usage="2.000000", prompt=7,
                              completion=3),
        "ancient": generation(org, workspace, usage="9.000000", ago=timedelta(days=45)),
        "member_key": member_key, "admin_key": admin_key,
    }


# --- a workspace's activity ---------------------------------------------------------------------------------

def test_it_sends_anonymous_people_to_log_in(browser, org, workspace):
    assert_login_redirect(browser.get(ws_url(org, workspace)))
    assert_login_redirect(browser.get(ws_url(org, workspace) + "?format=csv"))


def test_it_hides_a_workspace_activity_from_outsiders(login, org, workspace, outsider, traffic):
    client = login(outsider)
    assert client.get(ws_url(org, workspace)).status_code == 404
    assert client.get(ws_url(org, workspace) + "?format=csv").status_code == 404


def test_it_hides_workspaces_the_member_is_not_in(login, org, staging, member, traffic):
    client = login(member)
    assert client.get(ws_url(org, staging)).status_code == 404
    assert client.get(ws_url(org, staging) + "?format=csv").status_code == 404


def test_it_shows_the_workspace_activity_to_its_members(login, org, workspace, member, traffic):
    response = login(member).get(ws_url(org, workspace))
    assert response.status_code == 200
    summary = response.context["summary"]
    # Production only, within 30 days, today included: 0.01 + 0.02 + 0.5.
    assert summary["totals"]["requests"] == 3
    assert summary["totals"]["usage"] == Decimal("0.53")
    assert summary["totals"]["tokens"] == 150 + 150 + 1500
    assert [(r["model"], r["requests"]) for r in summary["by_model"]] == [("test/claude", 1), ("test/chat", 2)]
    today = timezone.now().date().isoformat()
    assert summary["active_days"][0]["date"] == today and summary["active_days"][0]["requests"] == 2
    body = response.content.decode()
    assert "$0.5300" in body
    # The latest generations: Production's three, newest first, nothing from Staging.
    recent_ids = [g.id for g in response.context["recent"]]
    assert recent_ids == [traffic["today"][1].id, traffic["today"][0].id, traffic["older"].id]
    assert traffic["staging"].id not in body and traffic["ancient"].id not in body
    assert "streamed" in body


def test_it_hands_the_chart_its_numbers_as_json(login, org, workspace, member, traffic):
    data = chart_data(login(member).get(ws_url(org, workspace)))
    assert len(data["days"]) == 30
    assert data["days"][-1] == timezone.now().date().isoformat()
    assert data["series"]["requests"][-1] == 2
    assert Decimal(data["series"]["usage"][-1]) == Decimal("0.03")
    assert sum(data["series"]["requests"]) == 3
    assert {m["label"] for m in data["models"]} == {"test/chat", "test/claude"}
    assert all(isinstance(v, str) for v in data["series"]["usage"])  # money stays decimal text


def test_it_exports_the_workspace_activity_as_csv(login, org, workspace, member, traffic):
    response = login(member).get(ws_url(org, workspace) + "?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    today = timezone.now().date().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="activity-{org.slug}-production-{today}.csv"'
    rows = csv_rows(response)
    assert {(r["date"], r["model"], r["requests"], r["usage_usd"]) for r in rows} == {
        (today, "test/chat", "2", "0.03"),
        ((timezone.now() - timedelta(days=3)).date().isoformat(), "test/claude", "1", "0.5")}
    assert {r["workspace"] for r in rows} == {"production"}


def test_it_shows_an_empty_workspace(login, org, workspace, member):
    response = login(member).get(ws_url(org, workspace))
    assert response.status_code == 200
    assert response.context["summary"]["totals"]["requests"] == 0
    assert b"No requests yet." in response.content
    assert csv_rows(login(member).get(ws_url(org, workspace) + "?format=csv")) == []


def test_it_defuses_formulas_in_csv_cells(login, org, workspace, member):
    generation(org, workspace, model="=HYPERLINK(\"http://x\")")
    rows = csv_rows(login(member).get(ws_url(org, workspace) + "?format=csv"))
    assert rows[0]["model"].startswith("'=")


# --- the organization's activity -----------------------------------------------------------------------------

def test_it_sends_anonymous_people_to_log_in_for_the_organization(browser, org):
    assert_login_redirect(browser.get(org_url(org)))


def test_it_hides_the_organization_activity_from_outsiders(login, org, outsider, traffic):
    assert login(outsider).get(org_url(org)).status_code == 404
    assert login(outsider).get(org_url(org) + "?format=csv").status_code == 404


def test_it_forbids_the_organization_activity_to_members(login, org, member, traffic):
    client = login(member)
    assert client.get(org_url(org)).status_code == 403
    assert client.get(org_url(org) + "?format=csv").status_code == 403


def test_it_shows_admins_every_workspace_with_a_breakdown(login, org, admin, traffic):
    response = login(admin).get(org_url(org))
    assert response.status_code == 200
    summary = response.context["summary"]
    assert summary["totals"]["requests"] == 4
    assert summary["totals"]["usage"] == Decimal("2.53")
    assert [(r["name"], r["requests"], r["usage"]) for r in summary["by_workspace"]] == [
        ("Staging", 1, Decimal("2")), ("Production", 3, Decimal("0.53"))]
    assert {w["label"] for w in chart_data(response)["workspaces"]} == {"Staging", "Production"}
    assert len(response.context["recent"]) == 4
    assert traffic["ancient"].id not in response.content.decode()


@pytest.mark.parametrize("query, requests, usage", [
    ("workspace=staging", 1, "2"),
    ("workspace=production", 3, "0.53"),
    ("member={member}", 2, "0.03"),
    ("key={member_key}", 2, "0.03"),
    ("key={admin_key}&workspace=production", 0, "0"),
])
def test_it_filters_by_workspace_key_and_member(login, org, admin, member, traffic, query, requests, usage):
    query = query.format(member=member.pk, member_key=traffic["member_key"].hash,
                         admin_key=traffic["admin_key"].hash)
    client = login(admin)
    response = client.get(f"{org_url(org)}?{query}")
    assert response.status_code == 200
    assert response.context["summary"]["totals"]["requests"] == requests
    assert response.context["summary"]["totals"]["usage"] == Decimal(usage)
    assert len(response.context["recent"]) == requests
    rows = csv_rows(client.get(f"{org_url(org)}?{query}&format=csv"))
    assert sum(int(r["requests"]) for r in rows) == requests
    assert sum((Decimal(r["usage_usd"]) for r in rows), Decimal(0)) == Decimal(usage)


def test_it_exports_the_organization_activity_with_workspaces(login, org, admin, traffic):
    response = login(admin).get(org_url(org) + "?format=csv")
    assert response.status_code == 200
    today = timezone.now().date().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="activity-{org.slug}-{today}.csv"'
    rows = csv_rows(response)
    assert {(r["workspace"], r["model"], r["requests"]) for r in rows} == {
        ("production", "test/chat", "2"), ("production", "test/claude", "1"), ("staging", "test/chat", "1")}


def test_it_links_the_csv_export_with_the_same_filters(login, org, admin, traffic):
    response = login(admin).get(f"{org_url(org)}?workspace=staging")
    assert 'href="?workspace=staging&amp;format=csv"' in response.content.decode()


@pytest.mark.parametrize("query", ["workspace=nope", "key=0000", f"member={uuid.UUID(int=7)}", "member=x' OR 1=1"])
def test_it_refuses_unknown_filters(login, org, admin, traffic, query):
    client = login(admin)
    response = client.get(f"{org_url(org)}?{query}")
    assert response.status_code == 400
    assert response.context["form"].errors
    assert client.get(f"{org_url(org)}?{query}&format=csv").status_code == 400


def test_it_does_not_offer_another_organizations_keys_as_filters(login, org, admin, outsider, traffic):
    from workspaces.models import Organization

    elsewhere = Organization.objects.get(owner=outsider)
    foreign = create_api_key(organization=elsewhere, name="Foreign", created_by=outsider)[0]
    assert login(admin).get(f"{org_url(org)}?key={foreign.hash}").status_code == 400


def test_it_links_the_organization_activity_for_admins_only(login, org, admin, member):
    assert f'href="{org_url(org)}">Activity</a>' in login(admin).get(f"/o/{org.slug}/").content.decode()
    assert f'href="{org_url(org)}">Activity</a>' not in login(member).get(f"/o/{org.slug}/").content.decode()
