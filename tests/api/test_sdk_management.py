"""The official `openrouter` SDK, unchanged, against the live server: every management operation we serve."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from openrouter import OpenRouter, errors

from billing.models import Generation, WorkspaceBudget
from workspaces.models import ApiKey, Workspace, WorkspaceMembership


@pytest.fixture
def sdk(stack, management_key):
    with OpenRouter(api_key=management_key[1], server_url=stack.api) as client:
        yield client


def test_it_manages_keys_with_the_sdk(stack, sdk, org, workspace, member, inference_key):
    created = sdk.api_keys.create(name="From SDK", limit=5, limit_reset="daily", workspace_id=str(workspace.pk),
                                  creator_user_id=str(member.pk),
                                  expires_at=datetime(2099, 1, 1, tzinfo=dt_timezone.utc))
    assert created.key.startswith("sk-ows-v1-")
    assert created.data.workspace_id == str(workspace.pk) and created.data.limit == 5
    assert ApiKey.objects.get(hash=created.data.hash).created_by == member

    listed = sdk.api_keys.list(workspace_id=str(workspace.pk))
    assert {k.name for k in listed.data} == {"From SDK", "Member key"}
    assert [k.name for k in sdk.api_keys.list(workspace_id="production", offset=1).data] == ["Member key"]

    got = sdk.api_keys.get(hash=created.data.hash)
    assert got.data.name == "From SDK" and got.data.usage == 0 and got.data.limit_remaining == 5

    updated = sdk.api_keys.update(hash=created.data.hash, name="Renamed", disabled=True, workspace_id="default")
    assert updated.data.name == "Renamed" and updated.data.disabled is True
    assert updated.data.workspace_id == str(org.default_workspace.pk)
    assert ApiKey.objects.get(hash=created.data.hash).limit == Decimal(5)  # untouched

    me = sdk.api_keys.get_current_key_metadata()
    assert me.data.is_management_key is True and me.data.workspace_id is None

    with OpenRouter(api_key=inference_key[1], server_url=stack.api) as as_app:
        mine = as_app.api_keys.get_current_key_metadata()
    assert mine.data.workspace_id == str(workspace.pk) and mine.data.is_management_key is False

    assert sdk.api_keys.delete(hash=created.data.hash).DELETED is True
    assert not ApiKey.objects.filter(hash=created.data.hash).exists()
    with pytest.raises(errors.NotFoundResponseError):
        sdk.api_keys.get(hash=created.data.hash)
    with pytest.raises(errors.BadRequestResponseError) as bad:
        sdk.api_keys.create(name="x", creator_user_id="not-a-uuid")
    assert "creator_user_id" in bad.value.data.error.message


def test_it_manages_workspaces_and_members_with_the_sdk(stack, sdk, org, workspace, owner, admin, member):
    created = sdk.workspaces.create(name="Team Search", slug="team-search", description="search",
                                    default_provider_sort="latency", io_logging_sampling_rate=0.5,
                                    disabled_server_tools=["openrouter:web_search"])
    assert created.data.slug == "team-search" and created.data.default_provider_sort == "latency"
    assert created.data.default_guardrail_id

    first = sdk.workspaces.list(limit=2)
    assert first.result.total_count == 3 and len(first.result.data) == 2
    second = sdk.workspaces.list(offset=2, limit=2)
    assert [w.slug for w in second.result.data] == ["team-search"]

    assert sdk.workspaces.get(id="team-search").data.id == created.data.id
    updated = sdk.workspaces.update(id=created.data.id, name="Search", is_observability_io_logging_enabled=True)
    assert updated.data.name == "Search" and updated.data.description == "search"
    assert Workspace.objects.get(pk=created.data.id).is_observability_io_logging_enabled is True

    added = sdk.workspaces.bulk_add_members(id="team-search", user_ids=[str(member.pk), str(admin.pk)])
    assert added.added_count == 2
    members = sdk.workspaces.list_members(id="team-search")
    assert members.result.total_count == 3  # the creator too
    assert {m.role for m in members.result.data} == {"admin", "member"}
    removed = sdk.workspaces.bulk_remove_members(id="team-search", user_ids=[str(member.pk)])
    assert removed.removed_count == 1
    assert not WorkspaceMembership.objects.filter(workspace_id=created.data.id, user=member).exists()

    with pytest.raises(errors.BadRequestResponseError):
        sdk.workspaces.create(name="Bad", slug="Not A Slug")
    with pytest.raises(errors.NotFoundResponseError):
        sdk.workspaces.get(id="nowhere")
    with pytest.raises(errors.ForbiddenResponseError):
        sdk.workspaces.delete(id="default")

    assert sdk.workspaces.delete(id=created.data.id).DELETED is True
    assert not Workspace.objects.filter(pk=created.data.id).exists()


def test_it_manages_budgets_with_the_sdk(stack, sdk, workspace):
    monthly = sdk.workspaces.set_budget(workspace_ref="production", interval="monthly", limit_usd=500,
                                        include_byok_in_budgets=True)
    assert monthly.data.limit_usd == 500 and monthly.data.reset_interval == "monthly"
    assert monthly.include_byok_in_budgets is True
    lifetime = sdk.workspaces.set_budget(workspace_ref=str(workspace.pk), interval="lifetime", limit_usd=1000)
    assert lifetime.data.reset_interval is None

    with pytest.raises(errors.BadRequestResponseError) as refused:
        sdk.workspaces.set_budget(workspace_ref="production", interval="weekly", limit_usd=600)
    assert "strictly decreasing" in refused.value.data.error.message

    listed = sdk.workspaces.list_budgets(workspace_ref="production")
    assert [b.reset_interval for b in listed.data] == [None, "monthly"]
    assert sdk.workspaces.get_budget(workspace_ref="production", interval="monthly").data.id == monthly.data.id
    assert sdk.workspaces.delete_budget(workspace_ref="production", interval="monthly").DELETED is True
    assert sdk.workspaces.delete_budget(workspace_ref="production", interval="monthly").DELETED is True
    assert not WorkspaceBudget.objects.filter(workspace=workspace, interval="monthly").exists()
    with pytest.raises(errors.NotFoundResponseError):
        sdk.workspaces.get_budget(workspace_ref="production", interval="monthly")


def test_it_reads_the_organization_credits_activity_and_generations_with_the_sdk(stack, sdk, org, credits, workspace,
                                                                                  inference_key, member, admin):
    yesterday = datetime.now(dt_timezone.utc) - timedelta(days=1)
    generation = Generation.objects.create(
        id="gen-sdk-1", organization=org, workspace=workspace, api_key=inference_key[0], user=member,
        model="test/chat", provider_name="Cheap", provider_slug="cheap", tokens_prompt=3, tokens_completion=4,
        total_cost=Decimal("0.25"), usage=Decimal("0.25"), created_at=yesterday,
        provider_responses=[{"provider_name": "Cheap", "status": 200, "latency": 10}])

    members = sdk.organization.list_members(limit=2)
    assert members.result.total_count == 3 and len(members.result.data) == 2
    assert sdk.organization.get_settings().data.id == str(org.pk)
    assert sdk.organization.update_settings(is_filtered_model_catalog_enabled=True).data \
        .is_filtered_model_catalog_enabled is True

    balance = sdk.credits.get_credits()
    assert (balance.data.total_credits, balance.data.total_usage) == (100, 0.25)

    activity = sdk.analytics.get_user_activity(request={"group_by": "workspace"})
    [item] = activity.data
    assert (item.model, item.requests, item.usage, item.workspace_id) == ("test/chat", 1, 0.25, str(workspace.pk))

    got = sdk.generations.get_generation(id=generation.pk)
    assert got.data.id == "gen-sdk-1" and got.data.tokens_completion == 4 and got.data.total_cost == 0.25
    assert got.data.provider_responses[0].status == 200
    with pytest.raises(errors.NotFoundResponseError):
        sdk.generations.get_generation(id="gen-missing")
