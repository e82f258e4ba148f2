from decimal import Decimal

from billing.pricing import Usage, cost

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
