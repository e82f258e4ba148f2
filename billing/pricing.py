"""What a generation costs, from its usage and the endpoint's prices, and what of it credits pay. Pure,
Decimal only.

Costs are quantized to 1e-10 USD (ROUND_HALF_UP): the unit the budget counters count in, so a cost charged
to Redis as an integer and the same cost summed from generation rows in the database always agree.
"""

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

ZERO = Decimal(0)
QUANTUM = Decimal("1e-10")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0  # reasoning included
    reasoning_tokens: int = 0
    cached_tokens: int = 0  # cache reads, included in prompt_tokens
    cache_write_tokens: int = 0  # cache writes, included in prompt_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def quantize(amount: Decimal, rounding=ROUND_HALF_UP) -> Decimal:
    return Decimal(amount).quantize(QUANTUM, rounding=rounding)


def quantize_up(amount: Decimal) -> Decimal:
    """For worst-case estimates: never round a reservation down."""
    return quantize(amount, ROUND_CEILING)


def cost(usage: Usage, *, prompt: Decimal, completion: Decimal, request: Decimal = ZERO,
         cache_read: Decimal | None = None, cache_write: Decimal | None = None) -> Decimal:
    """prompt tokens less cache reads (and less cache writes when they have a price of their own) at the
    prompt price, cache reads at the cache-read price (the prompt price if the endpoint has none), cache
    writes at the cache-write price, completion tokens (reasoning included) at the completion price, plus
    the per-request price; quantized to 1e-10 USD."""
    reads = min(usage.cached_tokens, usage.prompt_tokens)
    writes = min(usage.cache_write_tokens, usage.prompt_tokens - reads) if cache_write is not None else 0
    uncached = usage.prompt_tokens - reads - writes
    total = uncached * prompt + reads * (cache_read if cache_read is not None else prompt)
    if writes:
        total += writes * cache_write
    total += usage.completion_tokens * completion + request
    return quantize(total)


def byok_fee_percent() -> Decimal:
    from django.conf import settings

    return Decimal(str(settings.GATEWAY.get("BYOK_FEE_PERCENT") or 0))


def charge_for(total_cost: Decimal, is_byok: bool, fee_percent: Decimal | None = None) -> Decimal:
    """What the organization's credits pay for a generation of market price `total_cost`: all of it, or for
    a request served with the organization's own provider key, the BYOK fee (`GATEWAY["BYOK_FEE_PERCENT"]`
    percent of the market price; 0 by default)."""
    if not is_byok:
        return quantize(total_cost)
    if fee_percent is None:
        fee_percent = byok_fee_percent()
    return quantize(total_cost * fee_percent / HUNDRED)
