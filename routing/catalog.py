"""Loading the catalog file (see SPEC "load_catalog"): an idempotent upsert by slug."""

from decimal import Decimal, InvalidOperation

from django.db import transaction

from .models import ApiFormat, CatalogModel, Endpoint, Provider

PRICE_FIELDS = {
    "prompt": "price_prompt",
    "completion": "price_completion",
    "request": "price_request",
    "image": "price_image",
    "input_cache_read": "price_input_cache_read",
    "input_cache_write": "price_input_cache_write",
    "internal_reasoning": "price_internal_reasoning",
}
PROVIDER_OPTIONAL = ["privacy_policy_url", "terms_of_service_url", "status_page_url", "headquarters", "datacenters"]


class CatalogError(ValueError):
    pass


def _price(value, where: str) -> Decimal:
    if isinstance(value, float):
        raise CatalogError(f"{where}: prices are decimal strings (e.g. \"0.0000005\"), not floats")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise CatalogError(f"{where}: {value!r} is not a decimal number") from None
    if price < 0 or not price.is_finite():
        raise CatalogError(f"{where}: a price must be a non-negative number")
    return price


def _require(obj: dict, key: str, where: str):
    if key not in obj or obj[key] in (None, ""):
        raise CatalogError(f"{where}: '{key}' is required")
    return obj[key]


@transaction.atomic
def load_catalog(data: dict) -> dict:
    """Upsert providers, models and endpoints; returns counts. Raises CatalogError on a bad file."""
    if not isinstance(data, dict):
        raise CatalogError("the catalog must be an object with 'providers' and 'models'")
    counts = {"providers": 0, "models": 0, "endpoints": 0}
    for index, item in enumerate(data.get("providers", [])):
        where = f"providers[{index}]"
        slug = _require(item, "slug", where)
        api_format = item.get("api_format", ApiFormat.OPENAI)
        if api_format not in ApiFormat.values:
            raise CatalogError(f"{where}: api_format must be one of {', '.join(ApiFormat.values)}")
        data_collection = item.get("data_collection", "allow")
        if data_collection not in ("allow", "deny"):
            raise CatalogError(f"{where}: data_collection must be 'allow' or 'deny'")
        defaults = {
            "name": item.get("name") or slug,
            "base_url": str(_require(item, "base_url", where)).rstrip("/"),
            "api_format": api_format,
            "api_key_env": item.get("api_key_env") or "",
            "data_collection": data_collection,
            "zdr": bool(item.get("zdr", False)),
        }
        for key in PROVIDER_OPTIONAL:
            if key in item:
                defaults[key] = item[key]
        Provider.objects.update_or_create(slug=slug, defaults=defaults)
        counts["providers"] += 1

    providers = {p.slug: p for p in Provider.objects.all()}
    for index, item in enumerate(data.get("models", [])):
        where = f"models[{index}]"
        slug = _require(item, "slug", where)
        if "/" not in slug:
            raise CatalogError(f"{where}: slug must read 'author/name', got {slug!r}")
        model, _ = CatalogModel.objects.update_or_create(slug=slug, defaults={
            "name": item.get("name") or slug,
            "description": item.get("description", ""),
            "context_length": int(item.get("context_length") or 0),
            "input_modalities": item.get("input_modalities") or ["text"],
            "output_modalities": item.get("output_modalities") or ["text"],
            "tokenizer": item.get("tokenizer", ""),
            "hugging_face_id": item.get("hugging_face_id", ""),
        })
        counts["models"] += 1
        for e_index, ep in enumerate(item.get("endpoints", [])):
            e_where = f"{where}.endpoints[{e_index}]"
            provider_slug = _require(ep, "provider", e_where)
            if provider_slug not in providers:
                raise CatalogError(f"{e_where}: unknown provider {provider_slug!r}")
            pricing = ep.get("pricing") or {}
            unknown = set(pricing) - set(PRICE_FIELDS)
            if unknown:
                raise CatalogError(f"{e_where}.pricing: unknown price(s) {', '.join(sorted(unknown))}")
            defaults = {
                "upstream_model": _require(ep, "upstream_model", e_where),
                "quantization": ep.get("quantization") or "unknown",
                "context_length": ep.get("context_length"),
                "max_completion_tokens": ep.get("max_completion_tokens"),
                "supported_parameters": ep.get("supported_parameters") or [],
                "is_enabled": bool(ep.get("enabled", True)),
            }
            for name, field in PRICE_FIELDS.items():
                if name in pricing:
                    defaults[field] = _price(pricing[name], f"{e_where}.pricing.{name}")
                elif field in ("price_prompt", "price_completion", "price_request", "price_image"):
                    defaults[field] = Decimal(0)
                else:
                    defaults[field] = None
            Endpoint.objects.update_or_create(model=model, provider=providers[provider_slug], defaults=defaults)
            counts["endpoints"] += 1
    return counts
