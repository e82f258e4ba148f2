"""Which generations a destination receives: enabled, api_key_hashes, sampling_rate and filter_rules."""

from decimal import Decimal

import pytest

from billing.destinations import filters_match, is_sampled, send_to_destination
from tests.billing.generations import day_ago, make_generation

pytestmark = pytest.mark.django_db


def create_destination(org, workspace, config, **data):
    from workspaces.policy_services import create_destination as create

    return create(actor=None, organization=org, workspace=workspace, dest_type="webhook", config=config, data=data)


@pytest.fixture
def keys(org, workspace, inference_key, admin):
    from workspaces.services import create_api_key

    other = create_api_key(organization=org, workspace=workspace, name="Batch jobs", created_by=admin)[0]
    return inference_key[0], other


def generation_for(org, workspace, api_key=None, **fields):
    return make_generation(org, workspace=workspace, api_key=api_key, created_at=day_ago(1), **fields)


def test_a_disabled_destination_receives_nothing(org, workspace, receiver):
    destination = create_destination(org, workspace, {"url": receiver.url}, enabled=False)
    assert send_to_destination(destination, generation_for(org, workspace)) is False
    assert receiver.requests == []


def test_only_the_listed_keys_are_sent(org, workspace, keys, receiver):
    chosen, other = keys
    destination = create_destination(org, workspace, {"url": receiver.url}, api_key_hashes=[chosen.hash])

    assert send_to_destination(destination, generation_for(org, workspace, chosen)) is True
    assert send_to_destination(destination, generation_for(org, workspace, other)) is False
    assert send_to_destination(destination, generation_for(org, workspace, None)) is False
    assert len(receiver.requests) == 1


def test_no_key_list_means_every_key(org, workspace, keys, receiver):
    destination = create_destination(org, workspace, {"url": receiver.url}, api_key_hashes=None)
    for key in (*keys, None):
        assert send_to_destination(destination, generation_for(org, workspace, key)) is True
    assert len(receiver.requests) == 3


def test_sampling_keeps_or_drops_whole_sessions(org, workspace):
    destination = create_destination(org, workspace, {"url": "http://127.0.0.1:9/"},
                                     sampling_rate=Decimal("0.5"))
    decisions = {}
    for n in range(120):
        session = f"session-{n}"
        first = is_sampled(destination, generation_for(org, workspace, session_id=session))
        again = is_sampled(destination, generation_for(org, workspace, session_id=session))
        assert first == again  # a whole session is in or out
        decisions[session] = first
    kept = sum(decisions.values())
    assert 35 <= kept <= 85  # about half (a deterministic hash, so this never flakes)


def test_sampling_without_a_session_is_stable_per_generation(org, workspace):
    destination = create_destination(org, workspace, {"url": "http://127.0.0.1:9/"},
                                     sampling_rate=Decimal("0.3"))
    rows = [generation_for(org, workspace) for _ in range(60)]
    first = [is_sampled(destination, g) for g in rows]
    assert first == [is_sampled(destination, g) for g in rows]
    assert 5 <= sum(first) <= 35


def test_a_full_rate_keeps_everything_and_a_tiny_rate_almost_nothing(org, workspace):
    full = create_destination(org, workspace, {"url": "http://127.0.0.1:9/"}, sampling_rate=Decimal("1"))
    tiny = create_destination(org, workspace, {"url": "http://127.0.0.1:9/"}, sampling_rate=Decimal("0.0001"))
    rows = [generation_for(org, workspace, session_id=f"s{n}") for n in range(50)]
    assert all(is_sampled(full, g) for g in rows)
    assert sum(is_sampled(tiny, g) for g in rows) <= 1


def rules(*groups, enabled=True) -> dict:
    return {"enabled": enabled, "groups": [{"logic": logic, "rules": [
        {"field": f, "operator": o, **({} if v is None else {"value": v})} for f, o, v in items]}
        for logic, items in groups]}


@pytest.fixture
def sample(org, workspace, keys):
    return generation_for(org, workspace, keys[0], model="openai/gpt-4o", provider="openai",
                          session_id="sess-9", end_user="user-1", finish_reason="stop", prompt=800, completion=200,
                          total_cost=Decimal("0.0125"))


CASES = [  # (field, operator, value, expected)
    ("model", "equals", "openai/gpt-4o", True),
    ("model", "equals", "openai/gpt-4o-mini", False),
    ("model", "not_equals", "openai/gpt-4o-mini", True),
    ("model", "contains", "gpt", True),
    ("model", "not_contains", "gpt", False),
    ("model", "starts_with", "openai/", True),
    ("model", "ends_with", "-mini", False),
    ("model", "regex", "^openai/gpt-4o$", True),
    ("model", "regex", "claude", False),
    ("provider", "equals", "openai", True),  # the slug
    ("provider", "equals", "Openai", True),  # or the display name
    ("provider", "not_equals", "openai", False),
    ("session_id", "equals", "sess-9", True),
    ("user_id", "equals", "user-1", True),
    ("api_key_name", "equals", "Member key", True),
    ("api_key_name", "equals", "Batch jobs", False),
    ("finish_reason", "equals", "stop", True),
    ("total_cost", "gt", "0.01", True),
    ("total_cost", "lt", 0.01, False),
    ("total_cost", "gte", "0.0125", True),
    ("total_cost", "lte", "0.0124", False),
    ("total_cost", "equals", 0.0125, True),
    ("total_tokens", "equals", 1000, True),
    ("prompt_tokens", "gt", 799, True),
    ("completion_tokens", "lt", 200, False),
    ("prompt_tokens", "gt", "many", False),  # not a number: no match, never an error
    ("session_id", "exists", None, True),
    ("session_id", "not_exists", None, False),
    ("input", "exists", None, False),  # prompts are never stored
    ("output", "not_exists", None, True),
    ("input", "contains", "secret", False),
]


def test_each_field_and_operator(sample):
    # One test over the table: the cast is set up once, not once per case.
    wrong = [case for case in CASES if filters_match(rules(("and", [case[:3]])), sample) is not case[3]]
    assert wrong == []


def test_an_absent_value_matches_only_not_exists_and_negations(org, workspace):
    bare = generation_for(org, workspace, session_id=None)
    assert filters_match(rules(("and", [("session_id", "equals", "x")])), bare) is False
    assert filters_match(rules(("and", [("session_id", "not_equals", "x")])), bare) is True
    assert filters_match(rules(("and", [("session_id", "not_exists", None)])), bare) is True


def test_and_groups_need_every_rule_and_or_groups_any(sample):
    assert filters_match(rules(("and", [("model", "contains", "gpt"), ("user_id", "equals", "user-1")])), sample)
    assert not filters_match(rules(("and", [("model", "contains", "gpt"), ("user_id", "equals", "x")])), sample)
    assert filters_match(rules(("or", [("model", "contains", "claude"), ("user_id", "equals", "user-1")])), sample)
    assert not filters_match(rules(("or", [("model", "contains", "claude"), ("user_id", "equals", "x")])), sample)


def test_every_group_must_match(sample):
    matching = ("or", [("model", "contains", "claude"), ("total_cost", "gt", 0.01)])
    failing = ("and", [("finish_reason", "equals", "length")])
    assert filters_match(rules(matching, ("and", [("provider", "equals", "openai")])), sample)
    assert not filters_match(rules(matching, failing), sample)


def test_switched_off_or_empty_rules_let_everything_through(sample):
    assert filters_match(rules(("and", [("model", "equals", "nope")]), enabled=False), sample)
    assert filters_match({"enabled": True, "groups": []}, sample)
    assert filters_match(None, sample)


def test_filter_rules_decide_what_is_sent(org, workspace, keys, receiver):
    destination = create_destination(org, workspace, {"url": receiver.url},
                                     filter_rules=rules(("and", [("model", "starts_with", "anthropic/")])))

    assert send_to_destination(destination, generation_for(org, workspace, model="anthropic/claude")) is True
    assert send_to_destination(destination, generation_for(org, workspace, model="openai/gpt-4o")) is False
    assert len(receiver.requests) == 1
