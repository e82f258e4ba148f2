from decimal import Decimal

import pytest

from billing.pricing import Usage, charge_for, cost

P, C = Decimal("0.000003"), Decimal("0.000015")


def test_it_charges_prompt_and_completion_tokens():
    assert cost(Usage(prompt_tokens=1000, completion_tokens=100), prompt=P, completion=C) == Decimal("0.0045")


def test_cached_reads_are_charged_at_the_cache_read_price():
    usage = Usage(prompt_tokens=1000, completion_tokens=0, cached_tokens=400)
    assert cost(usage, prompt=P, completion=C, cache_read=Decimal("0.0000003")) == \
        600 * P + 400 * Decimal("0.0000003")


def test_cached_reads_without_a_cache_price_are_charged_as_prompt_tokens():
    usage = Usage(prompt_tokens=1000, cached_tokens=400)
    assert cost(usage, prompt=P, completion=C) == 1000 * P


def test_cache_writes_are_charged_once_at_their_own_price():
    usage = Usage(prompt_tokens=1000, cache_write_tokens=200, cached_tokens=100)
    write, read = Decimal("0.00000375"), Decimal("0.0000003")
    assert cost(usage, prompt=P, completion=C, cache_read=read, cache_write=write) == \
        700 * P + 100 * read + 200 * write


def test_reasoning_is_billed_as_completion_and_the_request_price_is_added():
    usage = Usage(prompt_tokens=10, completion_tokens=50, reasoning_tokens=40)
    assert cost(usage, prompt=P, completion=C, request=Decimal("0.001")) == 10 * P + 50 * C + Decimal("0.001")


def test_money_stays_decimal():
    assert isinstance(cost(Usage(prompt_tokens=1), prompt=P, completion=C), Decimal)


def test_it_quantizes_to_a_ten_billionth_of_a_dollar_rounding_half_up():
    # 3 tokens at 0.00000000005 = 1.5e-10: half a unit rounds up; 1 token (0.5e-10) rounds up to one unit too.
    tiny = Decimal("0.00000000005")
    assert cost(Usage(prompt_tokens=3), prompt=tiny, completion=C) == Decimal("2E-10")
    assert cost(Usage(prompt_tokens=1), prompt=tiny, completion=C) == Decimal("1E-10")
    assert cost(Usage(prompt_tokens=1), prompt=Decimal("0.00000000004"), completion=C) == Decimal(0)
    assert cost(Usage(prompt_tokens=7), prompt=Decimal("0.000000000123"), completion=C).as_tuple().exponent == -10


def test_it_charges_the_market_price_without_byok():
    assert charge_for(Decimal("0.004"), False, Decimal(5)) == Decimal("0.004")


@pytest.mark.parametrize("percent,expected", [("0", "0"), ("5", "0.0002"), ("100", "0.004"), ("2.5", "0.0001")])
def test_it_charges_the_byok_fee_percent_of_the_market_price(percent, expected):
    assert charge_for(Decimal("0.004"), True, Decimal(percent)) == Decimal(expected)


def test_it_reads_the_byok_fee_from_the_settings(settings):
    settings.GATEWAY = {**settings.GATEWAY, "BYOK_FEE_PERCENT": Decimal("5")}
    assert charge_for(Decimal("1"), True) == Decimal("0.05")
    settings.GATEWAY = {**settings.GATEWAY, "BYOK_FEE_PERCENT": Decimal("0")}
    assert charge_for(Decimal("1"), True) == Decimal(0)
