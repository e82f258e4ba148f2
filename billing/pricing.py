"""What a generation costs, from its usage and the endpoint's prices. Pure, Decimal only."""

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


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


def cost(usage: Usage, *, prompt: Decimal, completion: Decimal, request: Decimal = ZERO,
         cache_read: Decimal | None = None, cache_write: Decimal | None = None) -> Decimal:
    """prompt tokens less cache reads (and less cache writes when they have a price of their own) at the
    prompt price, cache reads at the cache-read price (the prompt price if the endpoint has none), cache
    writes at the cache-write price, completion tokens (reasoning included) at the completion price, plus
    the per-request price."""
    reads = min(usage.cached_tokens, usage.prompt_tokens)
    writes = min(usage.cache_write_tokens, usage.prompt_tokens - reads) if cache_write is not None else 0
    uncached = usage.prompt_tokens - reads - writes
    total = uncached * prompt + reads * (cache_read if cache_read is not None else prompt)
    if writes:
        total += writes * cache_write
    total += usage.completion_tokens * completion + request
    return total
