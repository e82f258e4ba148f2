"""The ledger: every layer's refusal, in order; settlement charges then records; releases; BYOK; policy
changes picked up at once. Runs on the database rows, and on Redis when REDIS_URL is set."""

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from billing.admission import Refused
from billing.counters import Counter
from billing.layers import key_subject, workspace_subject
from billing.windows import window
from routing.router import Attempt
from tests.billing.budget_helpers import (default_guardrail, endpoint, guardrail, ledger, loop,  # noqa: F401
                                          make_generation, set_budget, store)

HELLO = {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 10}
WORST = Decimal("0.000027")  # 7 prompt tokens at $0.000001, 10 completion tokens at $0.000002
D = Decimal


@pytest.fixture
def key(inference_key):
    return inference_key[0]


def ctx(api_key):
    return SimpleNamespace(key_id=api_key.pk)


def admit(ledger, api_key, body=HELLO, attempts=None, **kw):
    return ledger.run(ledger.admit(ctx(api_key), body, attempts or [endpoint()], **kw))


def refused(ledger, api_key, **kw) -> Refused:
    with pytest.raises(Refused) as info:
        admit(ledger, api_key, **kw)
    return info.value


def settle(ledger, reservation, fields):
    async def inside_the_loop():
        ledger.settle(reservation, fields)
        await ledger.flush()

    ledger.run(inside_the_loop())


def release(ledger, reservation):
    async def inside_the_loop():
        ledger.release(reservation)
        await ledger.flush()

    ledger.run(inside_the_loop())


def reserved(store, subject, interval="daily"):
    values = store.read(Counter(subject, window(interval, timezone.now())))
    return None if values is None else values["reserved"]


def fields_for(api_key, cost, **extra):
    return {"id": "gen-x", "organization_id": api_key.organization_id, "workspace_id": api_key.workspace_id,
            "api_key_id": api_key.pk, "user_id": api_key.created_by_id, "created_at": timezone.now(),
            "total_cost": D(cost), "usage": D(cost), **extra}


def test_it_admits_within_every_limit_and_holds_the_worst_case(ledger, store, key):
    reservation = admit(ledger, key)
    assert reservation.amount == WORST
    assert store.read(Counter(f"org:{key.organization_id}", window("lifetime", timezone.now())))["reserved"] == WORST


def test_an_organization_without_credits_gets_402(ledger, org, key):
    from billing.services import grant_credits

    grant_credits(org, D("-100"), reason="spent elsewhere", kind="adjustment")
    error = refused(ledger, key)
    assert (error.status, error.metadata) == (402, {"error_type": "payment_required"})
    assert error.message == "Insufficient credits: the account has $0.00 available. Add credits to continue."


def test_credits_too_low_for_the_worst_case_get_402(ledger, org, key):
    make_generation(key, usage="99.99999")
    error = refused(ledger, key)
    assert error.status == 402 and error.message.startswith("Insufficient credits: this request may cost up to")


def test_a_spent_key_limit_gets_402(ledger, key):
    key.limit, key.limit_reset = D("0.5"), "daily"
    key.save()
    make_generation(key, usage="0.5")
    error = refused(ledger, key)
    assert (error.status, error.metadata) == (402, {"error_type": "payment_required"})
    assert error.message.startswith("Key limit exceeded: this key's daily limit is $0.50 and $0.00 remains")


def test_a_workspace_budget_gets_403_naming_the_broadest_interval_exceeded(ledger, org, key, workspace):
    from billing.services import grant_credits

    grant_credits(org, D("1000"), reason="test")
    set_budget(workspace, "monthly", "500")
    set_budget(workspace, "daily", "1")
    make_generation(key, usage="500")
    error = refused(ledger, key)
    assert (error.status, error.message, error.metadata) == (
        403, "Workspace monthly budget of $500.00 exceeded. Contact your org admin.",
        {"error_type": "permission_denied"})


def test_the_workspace_default_guardrail_applies_per_member(ledger, org, key, workspace, member):
    from workspaces.services import create_api_key

    limit = default_guardrail(workspace, "1")
    other, _ = create_api_key(organization=org, workspace=workspace, name="Other", created_by=member)
    make_generation(other, usage="1")
    error = refused(ledger, key)
    assert error.status == 403
    assert error.metadata == {"error_type": "permission_denied", "guardrail_id": str(limit.id),
                              "budget_scope": "workspace_default_member"}


def test_the_workspace_default_guardrail_applies_per_key(ledger, org, credits, workspace):
    from workspaces.services import create_api_key

    default_guardrail(workspace, "1")
    spent, _ = create_api_key(organization=org, workspace=workspace, name="System")  # nobody's key: no member
    fresh, _ = create_api_key(organization=org, workspace=workspace, name="Sibling")
    make_generation(spent, usage="1")
    assert admit(ledger, fresh) is not None  # each key has its own dollar
    assert refused(ledger, spent).metadata["budget_scope"] == "workspace_default_key"


def test_a_member_guardrail_counts_the_members_keys_everywhere(ledger, org, key, member, owner):
    from workspaces.models import Workspace
    from workspaces.services import create_api_key

    staging = Workspace.objects.create(organization=org, name="Staging", slug="staging")
    elsewhere, _ = create_api_key(organization=org, workspace=staging, name="Staging key", created_by=member)
    cap = guardrail(org, staging, "2", members=[member], name="Team cap")
    make_generation(elsewhere, usage="2")
    error = refused(ledger, key)
    assert error.status == 403 and error.metadata["budget_scope"] == "member"
    assert error.message == ("Guardrail budget exceeded: your member guardrail 'Team cap' allows $2.00 per day. "
                             "Contact your org admin.")
    assert error.metadata["guardrail_id"] == str(cap.id)
    owners_key, _ = create_api_key(organization=org, workspace=staging, name="Owner's", created_by=owner)
    assert admit(ledger, owners_key) is not None  # per member: the owner has not spent anything


def test_a_key_guardrail_gets_403(ledger, org, key, workspace):
    guardrail(org, workspace, "0.00002", "weekly", keys=[key], name="Tiny")
    error = refused(ledger, key)
    assert error.status == 403 and error.metadata["budget_scope"] == "api_key"
    assert "this key's guardrail 'Tiny' allows $0.00002 per week" in error.message


def test_a_refused_request_reserves_nothing(ledger, store, key, workspace):
    set_budget(workspace, "daily", "0.00001")
    refused(ledger, key)
    assert reserved(store, workspace_subject(workspace.pk)) == 0
    assert reserved(store, f"org:{key.organization_id}", "lifetime") == 0


def test_settlement_charges_the_counters_before_recording_the_generation(ledger, store, key, workspace):
    set_budget(workspace, "daily", "1")
    reservation = admit(ledger, key)
    seen = []
    ledger.state.recorder.on_record = lambda fields: seen.append(store.peek(Counter(
        workspace_subject(workspace.pk), window("daily", timezone.now()))))
    settle(ledger, reservation, fields_for(key, "0.00001"))
    assert seen == [{"spend": D("0.00001"), "spend_byok": 0, "reserved": 0, "reserved_byok": 0}]
    assert [r["usage"] for r in ledger.state.recorder.records] == [D("0.00001")]
    # Settling twice records twice (the proxy never does) but charges once.
    settle(ledger, reservation, fields_for(key, "0.00001"))
    assert store.read(Counter(workspace_subject(workspace.pk), window("daily", timezone.now())))["spend"] == \
        D("0.00001")


def test_a_budget_set_between_settlement_and_the_record_still_counts_the_request(ledger, store, key, workspace):
    first = admit(ledger, key)  # no workspace budget yet
    settle(ledger, first, fields_for(key, "0.00001"))  # charged, handed to the recorder, not written yet
    set_budget(workspace, "weekly", "1")
    ledger.state.version += 1  # the change every process sees on its next request
    second = admit(ledger, key)  # the new budget's counter is needed now, before the first record exists
    make_generation(key, usage="0.00001")  # the recorder writes the first request's generation
    counter = store.read(Counter(workspace_subject(workspace.pk), window("weekly", timezone.now())))
    assert (counter["spend"], counter["reserved"]) == (D("0.00001"), second.amount)


def test_a_released_reservation_frees_every_layer(ledger, store, key, workspace):
    set_budget(workspace, "daily", "1")
    reservation = admit(ledger, key)
    assert reserved(store, workspace_subject(workspace.pk)) == WORST
    release(ledger, reservation)
    release(ledger, reservation)
    assert reserved(store, workspace_subject(workspace.pk)) == 0
    assert ledger.state.recorder.records == []


def test_byok_counts_on_budgets_only_when_they_opt_in(ledger, store, key, workspace, settings):
    settings.GATEWAY = {**settings.GATEWAY, "BYOK_FEE_PERCENT": D("5")}
    set_budget(workspace, "daily", "0.00002")
    byok = [Attempt(endpoint=endpoint(), byok_id="b-1")]
    reservation = admit(ledger, key, attempts=byok)
    assert (reservation.amount, reservation.amount_byok) == (D("0.00000135"), WORST)
    settle(ledger, reservation, fields_for(key, "0.00002", is_byok=True))
    assert ledger.state.recorder.records[0]["usage"] == D("0.000001")  # 5% of the market price
    workspace.include_byok_in_budgets = True
    workspace.save()
    ledger.state.version += 1
    error = refused(ledger, key, attempts=byok)
    assert error.status == 403


def test_a_raised_limit_takes_effect_on_the_next_request(ledger, key, workspace):
    set_budget(workspace, "daily", "1")
    make_generation(key, usage="1")
    assert refused(ledger, key).status == 403
    set_budget(workspace, "daily", "2")
    ledger.state.version += 1  # what the config version bump does in a server process
    assert admit(ledger, key) is not None


def test_a_budget_set_while_a_request_runs_is_charged_when_it_settles(ledger, store, key, workspace):
    reservation = admit(ledger, key)
    set_budget(workspace, "weekly", "5")
    ledger.state.version += 1
    settle(ledger, reservation, fields_for(key, "0.00002"))
    assert store.read(Counter(workspace_subject(workspace.pk), window("weekly", timezone.now())))["spend"] == \
        D("0.00002")


def test_a_counter_left_by_a_removed_budget_stays_exact(ledger, store, key, workspace):
    from billing.services import delete_workspace_budget

    set_budget(workspace, "daily", "1")
    settle(ledger, admit(ledger, key), fields_for(key, "0.00002"))
    delete_workspace_budget(workspace, "daily")
    ledger.state.version += 1
    settle(ledger, admit(ledger, key), fields_for(key, "0.00001"))
    counter = Counter(workspace_subject(workspace.pk), window("daily", timezone.now()))
    assert store.read(counter)["spend"] == D("0.00003")


def test_it_fails_closed_when_the_counters_are_unreachable(ledger, key):
    class Broken:
        async def reserve(self, *args):
            raise ConnectionError("down")

        async def settle(self, *args):  # the release of what may have been reserved
            raise ConnectionError("down")

    ledger.store = Broken()
    error = refused(ledger, key)
    assert (error.status, error.headers) == (503, [(b"retry-after", b"2")])
    assert "nothing was sent upstream" in error.message


def test_the_window_of_a_charge_is_the_generations_own(ledger, store, key):
    key.limit, key.limit_reset = D("1"), "daily"
    key.save()
    reservation = admit(ledger, key)
    yesterday = timezone.now() - timedelta(days=1)
    settle(ledger, reservation, fields_for(key, "0.00002", created_at=yesterday))
    assert store.read(Counter(key_subject(key.pk), window("daily", yesterday)))["spend"] == D("0.00002")


def test_a_reservation_whose_reply_was_lost_is_released(ledger, store, key, workspace):
    # Redis ran the admission, then the connection dropped before its reply arrived: the client gets 503
    # and the reservation it never heard of is released at once, not held until it expires.
    if store.kind != "redis":
        pytest.skip("the database store answers in the transaction that wrote the reservation")
    set_budget(workspace, "daily", "1")
    backend = store.backend
    reserve = backend.reserve

    async def reserved_then_lost(*args):
        await reserve(*args)
        raise ConnectionError("the reply was lost")

    backend.reserve = reserved_then_lost
    before = store.outstanding()
    error = refused(ledger, key)
    assert error.status == 503
    ledger.run(ledger.flush())
    assert reserved(store, workspace_subject(workspace.pk)) == 0
    assert store.outstanding() == before
