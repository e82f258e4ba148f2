"""The worst case admission reserves, and how a refusal reads. Pure functions, no database."""

from decimal import Decimal

from billing.admission import completion_budget, estimate_prompt_tokens, refusal, usd, worst_case_cost
from billing.layers import Layer
from routing.router import EndpointInfo


def endpoint(prompt="0.000001", completion="0.000002", request="0", max_completion=None, cache_write=None):
    return EndpointInfo(id=1, model_slug="test/chat", provider_slug="cheap", provider_name="Cheap",
                        base_url="http://x", api_format="openai", api_key_env="", upstream_model="m",
                        price_prompt=Decimal(prompt), price_completion=Decimal(completion),
                        price_request=Decimal(request), max_completion_tokens=max_completion,
                        price_input_cache_write=Decimal(cache_write) if cache_write else None)


HELLO = [{"role": "user", "content": "Say hello"}]  # 9 characters: 3 tokens, plus 4 of framing


def test_it_estimates_the_prompt_as_characters_over_four_plus_message_framing():
    assert estimate_prompt_tokens(HELLO) == 3 + 4
    parts = [{"role": "user", "content": [{"type": "text", "text": "a" * 8}, {"type": "image_url"}]},
             {"role": "system", "content": "b" * 5}]
    assert estimate_prompt_tokens(parts) == 4 + 8
    assert estimate_prompt_tokens(None) == 0


def test_it_takes_max_tokens_or_the_endpoint_maximum_or_4096():
    assert completion_budget({"max_tokens": 50}, [endpoint(max_completion=1000)]) == 50
    assert completion_budget({"max_completion_tokens": 70, "max_tokens": 50}, [endpoint()]) == 70
    # An endpoint never produces more than its own maximum, whatever was asked.
    assert completion_budget({"max_tokens": 5000}, [endpoint(max_completion=1000)]) == 1000
    assert completion_budget({}, [endpoint(max_completion=1000), endpoint(max_completion=3000)]) == 3000
    assert completion_budget({}, [endpoint(max_completion=1000), endpoint()]) == 4096


def test_each_of_n_choices_may_use_the_whole_completion_budget():
    assert completion_budget({"max_tokens": 50, "n": 3}, [endpoint(max_completion=1000)]) == 150
    assert completion_budget({"n": 2}, [endpoint(max_completion=1000)]) == 2000
    assert completion_budget({"max_tokens": 50, "n": True}, [endpoint()]) == 50  # not a count


def test_what_is_forwarded_never_asks_for_more_than_the_endpoint_maximum():
    from routing.proxy import upstream_payload

    capped = endpoint(max_completion=1000)
    assert upstream_payload({"model": "m", "max_tokens": 5000}, capped, False)["max_tokens"] == 1000
    assert upstream_payload({"max_completion_tokens": 20000}, capped, True)["max_completion_tokens"] == 1000
    assert upstream_payload({"max_tokens": 20}, capped, False)["max_tokens"] == 20
    assert upstream_payload({"max_tokens": 5000}, endpoint(max_completion=None), False)["max_tokens"] == 5000


def test_it_prices_the_worst_case_at_the_highest_prices_of_the_planned_attempts():
    cheap, pricey = endpoint("0.000001", "0.000002"), endpoint("0.000003", "0.000004", request="0.01")
    cost = worst_case_cost({"messages": HELLO, "max_tokens": 20}, [cheap, pricey])
    assert cost == 7 * Decimal("0.000003") + 20 * Decimal("0.000004") + Decimal("0.01")
    # Cache writes may cost more than plain prompt tokens: the prompt is priced at the higher of the two.
    anthropic = endpoint("0.000003", "0.000015", cache_write="0.00000375")
    assert worst_case_cost({"messages": HELLO, "max_tokens": 1}, [anthropic]) == \
        7 * Decimal("0.00000375") + Decimal("0.000015")
    assert worst_case_cost({"messages": HELLO}, []) == 0


def test_it_rounds_a_worst_case_up_to_the_counter_unit():
    tiny = endpoint("0.00000000001", "0")
    assert worst_case_cost({"messages": HELLO, "max_tokens": 1}, [tiny]) == Decimal("1E-10")


def test_it_writes_dollars_with_cents_and_more_decimals_only_when_needed():
    assert usd(Decimal("500")) == "$500.00"
    assert usd(Decimal("1234.5")) == "$1,234.50"
    assert usd(Decimal("0.0003")) == "$0.0003"
    assert usd(Decimal("-0.5")) == "-$0.50"


def layer(scope, interval="daily", limit="500", **kw):
    return Layer(scope=scope, subject="ws:x", interval=interval, limit=Decimal(limit), **kw)


def test_a_workspace_refusal_is_a_403_naming_the_interval_and_limit():
    refused = refusal(layer("workspace", "monthly"), Decimal("500"), Decimal("0.01"))
    assert (refused.status, refused.message, refused.metadata) == (
        403, "Workspace monthly budget of $500.00 exceeded. Contact your org admin.",
        {"error_type": "permission_denied"})


def test_a_budget_the_worst_case_would_pass_says_what_remains_and_what_to_do():
    workspace = refusal(layer("workspace", "daily", "0.0002"), Decimal("0.000031"), Decimal("0.0246"))
    assert (workspace.status, workspace.message) == (
        403, "Workspace daily budget of $0.0002 would be exceeded: $0.000169 remains and this request may cost "
             "up to $0.0246. Request fewer max_tokens or contact your org admin.")
    guard = refusal(layer("api_key", "weekly", "5", guardrail_id="g-2", guardrail_name="Bot"), Decimal("4.5"),
                    Decimal("1"))
    assert guard.status == 403 and guard.metadata["guardrail_id"] == "g-2"
    assert guard.message == ("Guardrail budget would be exceeded: this key's guardrail 'Bot' allows $5.00 per "
                             "week. $0.50 remains and this request may cost up to $1.00. Request fewer max_tokens "
                             "or contact your org admin.")


def test_credits_and_key_limits_are_402_payment_required():
    broke = refusal(layer("credits", "lifetime", "10"), Decimal("10"), Decimal("0.01"))
    assert broke.status == 402 and broke.metadata == {"error_type": "payment_required"}
    assert broke.message.startswith("Insufficient credits")
    short = refusal(layer("credits", "lifetime", "10"), Decimal("9.99"), Decimal("0.05"))
    assert "may cost up to $0.05" in short.message and "$0.01 available" in short.message
    key = refusal(layer("key_limit", "weekly", "2"), Decimal("2"), Decimal("0.01"))
    assert key.status == 402 and key.metadata == {"error_type": "payment_required"}
    assert key.message.startswith("Key limit exceeded: this key's weekly limit is $2.00")


def test_a_guardrail_refusal_is_a_403_naming_the_guardrail():
    refused = refusal(layer("member", "daily", "50", guardrail_id="g-1", guardrail_name="Team cap"),
                      Decimal("50"), Decimal("0.01"))
    assert refused.status == 403
    assert refused.message == ("Guardrail budget exceeded: your member guardrail 'Team cap' allows $50.00 per day. "
                               "Contact your org admin.")
    assert refused.metadata == {"error_type": "permission_denied", "guardrail_id": "g-1", "budget_scope": "member"}
