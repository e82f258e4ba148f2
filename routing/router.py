"""Routing as pure functions: a request, the catalog and recent provider health -> ordered attempts.

No database, no I/O: everything here is unit-tested with plain data.
"""

import random
from dataclasses import dataclass, field
from decimal import Decimal

# Request fields that are OpenRouter's own and never forwarded upstream.
GATEWAY_FIELDS = frozenset({
    "models", "provider", "plugins", "route", "transforms", "usage", "session_id", "trace", "debug", "preset",
    "stream_options", "cache_control", "image_config", "stop_server_tools_when", "deferred_tools",
})
# Load balancing's coin: one per process (seeding a new one per request costs more than the plan).
_RNG = random.Random()
# Parameters every endpoint accepts whatever its `supported_parameters` say.
ALWAYS_SUPPORTED = frozenset({"model", "messages", "stream", "user", "n", "metadata"})


@dataclass(frozen=True)
class EndpointInfo:
    """One provider endpoint of a model, as the proxy needs it (a snapshot of the catalog rows)."""

    id: int
    model_slug: str
    provider_slug: str
    provider_name: str
    base_url: str
    api_format: str
    api_key_env: str
    upstream_model: str
    price_prompt: Decimal
    price_completion: Decimal
    price_request: Decimal = Decimal(0)
    price_input_cache_read: Decimal | None = None
    price_input_cache_write: Decimal | None = None
    max_completion_tokens: int | None = None
    context_length: int | None = None
    supported_parameters: frozenset = frozenset()
    data_collection: str = "allow"
    zdr: bool = False
    quantization: str = "unknown"

    @property
    def blended_price(self) -> Decimal:
        return self.price_prompt + self.price_completion


@dataclass
class ProviderPrefs:
    order: list[str] | None = None
    only: list[str] | None = None
    ignore: list[str] | None = None
    allow_fallbacks: bool = True
    sort: str | None = None
    partition: str = "model"
    data_collection: str = "allow"
    zdr: bool = False
    require_parameters: bool = False
    quantizations: list[str] | None = None
    max_price: dict | None = None


@dataclass
class Policy:
    """Restrictions from the account, workspace and guardrails (None = unrestricted)."""

    allowed_models: set[str] | None = None
    ignored_models: set[str] = field(default_factory=set)
    allowed_providers: set[str] | None = None
    ignored_providers: set[str] = field(default_factory=set)
    zdr: bool = False
    # ZDR required only for these provider groups (anthropic, openai, google, xai, other).
    zdr_groups: frozenset = frozenset()
    deny_data_collection: bool = False
    default_sort: str | None = None


@dataclass
class Plan:
    attempts: list[EndpointInfo]
    # Why endpoints were left out: the reference's `excluded_by` vocabulary.
    excluded_by: set[str] = field(default_factory=set)
    unknown_models: list[str] = field(default_factory=list)
    blocked_models: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Attempt:
    """One try: an endpoint with the credential to use (a BYOK key, or the platform's)."""

    endpoint: EndpointInfo
    byok_id: str | None = None
    credential: str | None = None

    @property
    def is_byok(self) -> bool:
        return self.byok_id is not None


@dataclass(frozen=True)
class ByokCredential:
    id: str
    provider_slug: str
    credential: str
    sort_order: int = 0
    is_fallback: bool = False
    is_required: bool = False
    is_byok_only: bool = False
    allowed_models: frozenset | None = None
    declared_zdr: bool = False


PROVIDER_GROUPS = ("anthropic", "openai", "google", "xai")


def provider_group(slug: str) -> str:
    base = slug.split("/", 1)[0]
    for group in PROVIDER_GROUPS:
        if base == group or base.startswith(group + "-"):
            return group
    return "other"


class PrefsError(ValueError):
    """A malformed `provider` object; the message names the field."""


def _str_list(value, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PrefsError(f"provider.{name} must be a list of strings")
    return [v.lower() for v in value]


def parse_provider_prefs(raw, route: str | None = None) -> ProviderPrefs:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PrefsError("provider must be an object")
    prefs = ProviderPrefs(
        order=_str_list(raw.get("order"), "order"),
        only=_str_list(raw.get("only"), "only"),
        ignore=_str_list(raw.get("ignore"), "ignore"),
        quantizations=_str_list(raw.get("quantizations"), "quantizations"),
    )
    for name in ("allow_fallbacks", "zdr", "require_parameters"):
        value = raw.get(name)
        if value is not None:
            if not isinstance(value, bool):
                raise PrefsError(f"provider.{name} must be true or false")
            setattr(prefs, name, value)
    data_collection = raw.get("data_collection")
    if data_collection is not None:
        if data_collection not in ("allow", "deny"):
            raise PrefsError("provider.data_collection must be 'allow' or 'deny'")
        prefs.data_collection = data_collection
    sort = raw.get("sort")
    if isinstance(sort, dict):
        partition = sort.get("partition", "model")
        if partition not in ("model", "none"):
            raise PrefsError("provider.sort.partition must be 'model' or 'none'")
        prefs.partition = partition
        sort = sort.get("by")
    if sort is not None:
        if sort not in ("price", "throughput", "latency", "exacto"):
            raise PrefsError("provider.sort must be one of price, throughput, latency, exacto")
        prefs.sort = sort
    if route in ("fallback", "sort"):
        prefs.partition = "model" if route == "fallback" else "none"
    max_price = raw.get("max_price")
    if max_price is not None:
        if not isinstance(max_price, dict):
            raise PrefsError("provider.max_price must be an object")
        parsed = {}
        for key, value in max_price.items():
            try:
                parsed[key] = Decimal(str(value))
            except ArithmeticError:
                raise PrefsError(f"provider.max_price.{key} must be a number") from None
        prefs.max_price = parsed
    return prefs


def _provider_matches(slug: str, names: list[str] | set[str]) -> bool:
    # A base slug matches its variants ("google-vertex" matches "google-vertex/us-east5").
    return any(slug == n or slug.startswith(n + "/") for n in names)


def filter_endpoints(endpoints: list[EndpointInfo], prefs: ProviderPrefs, policy: Policy,
                     request_params: set[str]) -> tuple[list[EndpointInfo], set[str]]:
    kept, excluded = [], set()
    for ep in endpoints:
        slug = ep.provider_slug
        if prefs.only is not None and not _provider_matches(slug, prefs.only):
            excluded.add("allowed_providers")
            continue
        if prefs.ignore and _provider_matches(slug, prefs.ignore):
            excluded.add("allowed_providers")
            continue
        if policy.allowed_providers is not None and not _provider_matches(slug, policy.allowed_providers):
            excluded.add("policy:allowed_providers")
            continue
        if policy.ignored_providers and _provider_matches(slug, policy.ignored_providers):
            excluded.add("policy:allowed_providers")
            continue
        if (prefs.zdr or policy.zdr or provider_group(slug) in policy.zdr_groups) and not ep.zdr:
            excluded.add("data_policy:zdr")
            continue
        if (prefs.data_collection == "deny" or policy.deny_data_collection) and ep.data_collection != "deny":
            excluded.add("data_policy:training")
            continue
        if prefs.quantizations and ep.quantization not in prefs.quantizations:
            excluded.add("quantization")
            continue
        if prefs.max_price and _too_expensive(ep, prefs.max_price):
            excluded.add("max_price")
            continue
        if prefs.require_parameters:
            wanted = request_params - ALWAYS_SUPPORTED - GATEWAY_FIELDS
            if not wanted <= ep.supported_parameters:
                excluded.add("require_parameters")
                continue
        kept.append(ep)
    return kept, excluded


def _too_expensive(ep: EndpointInfo, max_price: dict) -> bool:
    per_million = Decimal(1_000_000)
    if "prompt" in max_price and ep.price_prompt * per_million > max_price["prompt"]:
        return True
    if "completion" in max_price and ep.price_completion * per_million > max_price["completion"]:
        return True
    if "request" in max_price and ep.price_request > max_price["request"]:
        return True
    return False


def order_endpoints(endpoints: list[EndpointInfo], prefs: ProviderPrefs, policy: Policy,
                    unhealthy: set[str], rng: random.Random) -> list[EndpointInfo]:
    """Explicit `order` first; else a strict sort; else inverse-square-price load balancing.
    Recently failing providers go last in every case but an explicit order."""
    if prefs.order:
        rank = {slug: i for i, slug in enumerate(prefs.order)}
        listed = sorted((ep for ep in endpoints if _rank(ep, rank) is not None), key=lambda ep: _rank(ep, rank))
        rest = [ep for ep in endpoints if _rank(ep, rank) is None]
        return listed + _healthy_first(sorted(rest, key=lambda ep: ep.blended_price), unhealthy)
    sort = prefs.sort or policy.default_sort
    if sort == "price":
        return _healthy_first(sorted(endpoints, key=lambda ep: (ep.blended_price, ep.provider_slug)), unhealthy)
    return _healthy_first(_weighted_shuffle(endpoints, rng), unhealthy)


def _rank(ep: EndpointInfo, rank: dict) -> int | None:
    if ep.provider_slug in rank:
        return rank[ep.provider_slug]
    base = ep.provider_slug.split("/", 1)[0]
    return rank.get(base)


def _healthy_first(endpoints: list[EndpointInfo], unhealthy: set[str]) -> list[EndpointInfo]:
    return [ep for ep in endpoints if ep.provider_slug not in unhealthy] + \
           [ep for ep in endpoints if ep.provider_slug in unhealthy]


def _weighted_shuffle(endpoints: list[EndpointInfo], rng: random.Random) -> list[EndpointInfo]:
    """Pick the first at random weighted by 1/price^2 (free endpoints first), keep the rest cheapest first."""
    if len(endpoints) <= 1:
        return list(endpoints)
    free = [ep for ep in endpoints if ep.blended_price == 0]
    if free:
        paid = sorted((ep for ep in endpoints if ep.blended_price > 0), key=lambda ep: ep.blended_price)
        return free + paid
    weights = [float(1 / (ep.blended_price * ep.blended_price)) for ep in endpoints]
    first = rng.choices(range(len(endpoints)), weights=weights, k=1)[0]
    rest = sorted((ep for i, ep in enumerate(endpoints) if i != first), key=lambda ep: ep.blended_price)
    return [endpoints[first], *rest]


def model_allowed(slug: str, policy: Policy) -> bool:
    if policy.allowed_models is not None and slug not in policy.allowed_models:
        return False
    return slug not in policy.ignored_models


def plan(models: list[str], catalog: dict[str, list[EndpointInfo]], prefs: ProviderPrefs, policy: Policy,
         request_params: set[str], unhealthy: set[str] = frozenset(), max_attempts: int = 4,
         rng: random.Random | None = None) -> Plan:
    """The ordered attempts for a request: each model of the fallback list in turn, its endpoints ordered."""
    rng = rng or _RNG
    result = Plan(attempts=[])
    per_model: list[list[EndpointInfo]] = []
    for slug in models:
        if slug not in catalog:
            result.unknown_models.append(slug)
            continue
        if not model_allowed(slug, policy):
            result.blocked_models.append(slug)
            continue
        kept, excluded = filter_endpoints(catalog[slug], prefs, policy, request_params)
        result.excluded_by |= excluded
        if not prefs.allow_fallbacks and prefs.order:
            kept = [ep for ep in kept if _rank(ep, {s: i for i, s in enumerate(prefs.order)}) is not None]
        per_model.append(order_endpoints(kept, prefs, policy, unhealthy, rng))
    if prefs.partition == "none" and (prefs.sort or policy.default_sort) == "price":
        merged = sorted((ep for eps in per_model for ep in eps), key=lambda ep: (ep.blended_price, ep.provider_slug))
        attempts = _healthy_first(merged, unhealthy)
    else:
        attempts = [ep for eps in per_model for ep in eps]
    if not prefs.allow_fallbacks:
        # Only the primary (or the `order` providers) of the first routable model.
        attempts = attempts[:max(1, len(prefs.order or []))] if attempts else []
    result.attempts = attempts[:max_attempts]
    return result


def with_credentials(attempts: list[EndpointInfo], byok: list[ByokCredential],
                     max_attempts: int) -> list[Attempt]:
    """BYOK keys first (prioritized keys before shared capacity, whatever the order), then the shared
    endpoints, then fallback BYOK keys. `is_required` drops shared capacity for the models a key covers;
    `is_byok_only` drops shared capacity on its provider for every model."""
    def covers(key: ByokCredential, ep: EndpointInfo) -> bool:
        return key.provider_slug == ep.provider_slug and (key.allowed_models is None
                                                         or ep.model_slug in key.allowed_models)

    prioritized, shared, fallback = [], [], []
    for ep in attempts:
        keys = sorted((k for k in byok if covers(k, ep)), key=lambda k: k.sort_order)
        prioritized += [Attempt(ep, k.id, k.credential) for k in keys if not k.is_fallback]
        fallback += [Attempt(ep, k.id, k.credential) for k in keys if k.is_fallback]
        shared_blocked = any(k.is_required for k in keys) or any(
            k.is_byok_only and k.provider_slug == ep.provider_slug for k in byok)
        if not shared_blocked:
            shared.append(Attempt(ep))
    return (prioritized + shared + fallback)[:max_attempts]
