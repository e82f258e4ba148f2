"""The official `openrouter` SDK, unchanged, against the live server: guardrails, BYOK, presets, destinations."""

import uuid

import pytest
import requests
from openrouter import OpenRouter, components, errors

from workspaces.models import ByokKey, Guardrail, GuardrailKeyAssignment, ObservabilityDestination, Preset
from workspaces.policy_services import byok_plaintext, destination_config


@pytest.fixture
def sdk(stack, management_key):
    with OpenRouter(api_key=management_key[1], server_url=stack.api) as client:
        yield client


def test_guardrails_through_the_sdk(sdk, org, workspace, inference_key, member):
    created = [sdk.guardrails.create(name=f"g{i}", limit_usd=10 + i, reset_interval="daily",
                                     allowed_providers=["cheap"], workspace_id=str(workspace.id),
                                     content_filters=[{"pattern": r"ACME-\d+", "action": "block"}],
                                     content_filter_builtins=[{"slug": "email", "action": "redact"}]).data
               for i in range(3)]
    assert created[0].limit_usd == 10 and created[0].content_filters[0].pattern == r"ACME-\d+"
    page = sdk.guardrails.list(workspace_id=str(workspace.id), limit=2)
    assert page.result.total_count == 3 and len(page.result.data) == 2
    rest = page.next()
    assert len(rest.result.data) == 1
    assert {g.id for g in page.result.data + rest.result.data} == {g.id for g in created}

    first = created[0]
    got = sdk.guardrails.get(id=first.id).data
    assert got.name == "g0" and got.workspace_id == str(workspace.id)
    updated = sdk.guardrails.update(id=first.id, name="renamed", ignored_models=["test/down"]).data
    assert updated.name == "renamed" and updated.limit_usd == 10 and updated.ignored_models == ["test/down"]
    assert Guardrail.objects.get(id=first.id).name == "renamed"

    # The workspace default guardrail: readable before it exists, created by its first update.
    default = sdk.guardrails.get(id=str(workspace.default_guardrail_id)).data
    assert default.name == f"Workspace {workspace.id} Default"
    sdk.guardrails.update(id=str(workspace.default_guardrail_id), allowed_providers=["pricey"])
    assert Guardrail.objects.get(id=workspace.default_guardrail_id).allowed_providers == ["pricey"]

    key = inference_key[0]
    assert sdk.guardrails.bulk_assign_keys(id=first.id, key_hashes=[key.hash]).assigned_count == 1
    assigned = sdk.guardrails.list_guardrail_key_assignments(id=first.id).result
    assert assigned.total_count == 1 and assigned.data[0].key_label == key.label
    assert sdk.guardrails.list_key_assignments().result.data[0].key_hash == key.hash
    assert sdk.guardrails.bulk_unassign_keys(id=first.id, key_hashes=[key.hash]).unassigned_count == 1
    assert not GuardrailKeyAssignment.objects.exists()
    assert sdk.guardrails.bulk_assign_members(id=first.id, member_user_ids=[str(member.id)]).assigned_count == 1
    members = sdk.guardrails.list_guardrail_member_assignments(id=first.id).result
    assert members.data[0].user_id == str(member.id) and members.data[0].organization_id == str(org.id)
    assert sdk.guardrails.list_member_assignments().result.total_count == 1
    assert sdk.guardrails.bulk_unassign_members(id=first.id, member_user_ids=[str(member.id)]).unassigned_count == 1

    assert sdk.guardrails.delete(id=first.id).DELETED is True
    assert not Guardrail.objects.filter(id=first.id).exists()
    with pytest.raises(errors.NotFoundResponseError):
        sdk.guardrails.get(id=first.id)
    with pytest.raises(errors.BadRequestResponseError) as excinfo:
        sdk.guardrails.create(name="half", limit_usd=5)
    assert "reset_interval" in excinfo.value.data.error.message
    with pytest.raises(errors.BadRequestResponseError) as excinfo:
        sdk.guardrails.create(name="slow", content_filters=[{"pattern": "(a+)+$", "action": "block"}])
    assert "invalid_regex_pattern" in excinfo.value.data.error.message


def test_byok_keys_through_the_sdk(sdk, stack, org, management_key):
    secret = f"sk-proj-{uuid.uuid4().hex}WxYz"
    created = sdk.byok.create(key=secret, provider="openai", name="Team", declared_region="europe").data
    assert created.label == "sk-...WxYz" and created.sort_order == 0 and created.declared_region == "europe"
    second = sdk.byok.create(key=secret + "2", provider="openai", is_fallback=True).data
    assert second.sort_order == 1 and second.workspace_id == str(org.default_workspace.id)
    page = sdk.byok.list(provider="openai", limit=1)
    assert page.result.total_count == 2 and page.next().result.data[0].id == second.id

    assert sdk.byok.get(id=created.id).data.name == "Team"
    rotated = f"sk-proj-{uuid.uuid4().hex}Qrst"
    updated = sdk.byok.update(id=created.id, key=rotated, disabled=True).data
    assert updated.label == "sk-...Qrst" and updated.disabled is True and updated.name == "Team"
    assert byok_plaintext(ByokKey.objects.get(id=created.id)) == rotated

    raw = requests.get(f"{stack.api}/byok", headers={"Authorization": f"Bearer {management_key[1]}"}, timeout=10)
    assert raw.status_code == 200 and secret not in raw.text and rotated not in raw.text
    assert "encrypted" not in raw.text

    assert sdk.byok.delete(id=second.id).DELETED is True
    with pytest.raises(errors.NotFoundResponseError):
        sdk.byok.get(id=second.id)
    with pytest.raises(errors.BadRequestResponseError) as excinfo:
        sdk.byok.create(key=secret, provider="openai", is_byok_only=True, is_fallback=True)
    assert secret not in str(excinfo.value.data)


def test_presets_through_the_sdk(sdk, org):
    saved = sdk.presets.create_presets_chat_completions(
        slug="terse", model="test/chat", temperature=0.2,
        messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}]).data
    assert saved.designated_version.version == 1 and saved.designated_version.system_prompt == "Be terse."
    assert saved.designated_version.config == {"model": "test/chat", "temperature": 0.2}
    again = sdk.presets.create_presets_messages(slug="terse", model="test/claude", max_tokens=50, system="Short.",
                                                messages=[{"role": "user", "content": "hi"}]).data
    assert again.designated_version.version == 2 and again.designated_version.system_prompt == "Short."
    sdk.presets.create_presets_responses(slug="other", model="test/chat", input="hi", instructions="Be kind.")

    listed = sdk.presets.list(limit=1)
    assert listed.result.total_count == 2 and listed.result.data[0].slug == "other"
    assert listed.next().result.data[0].slug == "terse"
    got = sdk.presets.get(slug="terse").data
    assert got.designated_version.config == {"max_tokens": 50, "model": "test/claude"}
    versions = sdk.presets.list_versions(slug="terse", limit=1)
    assert versions.result.total_count == 2 and versions.result.data[0].version == 1
    assert versions.next().result.data[0].version == 2
    assert sdk.presets.get_version(slug="terse", version="1").data.system_prompt == "Be terse."
    assert Preset.objects.get(slug="terse").designated_version.version == 2
    with pytest.raises(errors.NotFoundResponseError):
        sdk.presets.get(slug="missing")


def test_observability_destinations_through_the_sdk(sdk, stack, org, management_key):
    secret = "Bearer tok-" + uuid.uuid4().hex
    created = sdk.observability.create(
        name="Hook", type_="webhook", config={"url": "https://hooks.example.com/in", "headers": {"Authorization":
                                                                                                  secret}},
        sampling_rate=0.5, regions=["eu"],
        filter_rules={"groups": [{"logic": "and", "rules": [{"field": "model", "operator": "equals",
                                                             "value": "test/chat"}]}]}).data
    assert isinstance(created, components.ObservabilityWebhookDestination), created
    assert created.config.headers["Authorization"] != secret and created.regions == ["europe"]
    langfuse = sdk.observability.create(name="LF", type_="langfuse",
                                        config={"publicKey": "pk-lf-1", "secretKey": "sk-lf-" + "9" * 24}).data
    assert isinstance(langfuse, components.ObservabilityLangfuseDestination)
    assert langfuse.config.secret_key == "sk-l...9999"
    s3 = sdk.observability.create(name="S3", type_="s3", config={
        "bucketName": "b", "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "x" * 40,
        "region": "eu-west-1"}).data
    assert isinstance(s3, components.ObservabilityS3Destination)

    page = sdk.observability.list(limit=2)
    assert page.result.total_count == 3 and len(page.next().result.data) == 1
    assert all(not isinstance(d, components.UnknownObservabilityDestination) for d in page.result.data)
    got = sdk.observability.get(id=created.id).data
    assert got.config.url == "https://hooks.example.com/in" and got.sampling_rate == 0.5
    updated = sdk.observability.update(id=created.id, enabled=False, config={"method": "PUT"}).data
    assert updated.enabled is False and updated.config.method == "PUT"
    destination = ObservabilityDestination.objects.get(id=created.id)
    assert destination_config(destination)["headers"] == {"Authorization": secret}

    raw = requests.get(f"{stack.api}/observability/destinations",
                       headers={"Authorization": f"Bearer {management_key[1]}"}, timeout=10)
    assert raw.status_code == 200 and secret not in raw.text and "9" * 24 not in raw.text

    assert sdk.observability.delete(id=created.id).DELETED is True
    with pytest.raises(errors.NotFoundResponseError):
        sdk.observability.get(id=created.id)
    with pytest.raises(errors.BadRequestResponseError) as excinfo:
        sdk.observability.create(name="bad", type_="webhook", config={"url": "ftp://nope"})
    assert "config.url" in excinfo.value.data.error.message
