"""The catalog endpoints: GET /models, /models/{author}/{slug}/endpoints, /providers.

Public, as on OpenRouter; with a key they honour the organization's filtered-catalog setting and
account-level model/provider allow-lists.
"""

from decimal import Decimal

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from workspaces.auth import bearer_token, check_key

from .models import CatalogModel, Endpoint, Provider
from .router import Policy, model_allowed

NO_STATS = None


def decimal_str(value: Decimal | None) -> str:
    if value is None:
        return "0"
    text = format(value.normalize(), "f")
    return text


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": status, "message": message}}, status=status)


def _caller_policy(request):
    """(policy, filtered, error response): the organization's restrictions when a key is sent."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if not header:
        return None, False, None
    result = check_key(bearer_token(header))
    if result.api_key is None:
        return None, False, error(401, result.error)
    org = result.api_key.organization
    policy = Policy(
        allowed_models=set(org.allowed_models) if org.allowed_models is not None else None,
        ignored_models=set(org.ignored_models or []),
        allowed_providers=set(org.allowed_providers) if org.allowed_providers is not None else None,
        ignored_providers=set(org.ignored_providers or []),
    )
    return policy, org.is_filtered_model_catalog_enabled, None


def _pricing(ep: Endpoint) -> dict:
    pricing = {"prompt": decimal_str(ep.price_prompt), "completion": decimal_str(ep.price_completion),
               "request": decimal_str(ep.price_request), "image": decimal_str(ep.price_image)}
    if ep.price_input_cache_read is not None:
        pricing["input_cache_read"] = decimal_str(ep.price_input_cache_read)
    if ep.price_input_cache_write is not None:
        pricing["input_cache_write"] = decimal_str(ep.price_input_cache_write)
    if ep.price_internal_reasoning is not None:
        pricing["internal_reasoning"] = decimal_str(ep.price_internal_reasoning)
    return pricing


def _architecture(model: CatalogModel) -> dict:
    inputs = model.input_modalities or ["text"]
    outputs = model.output_modalities or ["text"]
    return {"modality": f"{'+'.join(inputs)}->{'+'.join(outputs)}", "input_modalities": inputs,
            "output_modalities": outputs, "tokenizer": model.tokenizer or "Other", "instruct_type": None}


def model_json(model: CatalogModel, endpoints: list[Endpoint]) -> dict:
    cheapest = min(endpoints, key=lambda e: e.price_prompt + e.price_completion) if endpoints else None
    top = max(endpoints, key=lambda e: e.context_length or model.context_length) if endpoints else None
    parameters = sorted({p for e in endpoints for p in (e.supported_parameters or [])})
    author, _, _name = model.slug.partition("/")
    return {
        "id": model.slug, "canonical_slug": model.slug, "name": model.name, "created": int(model.created.timestamp()),
        "description": model.description, "context_length": model.context_length,
        "architecture": _architecture(model),
        "pricing": _pricing(cheapest) if cheapest else {"prompt": "0", "completion": "0"},
        "top_provider": {"context_length": (top.context_length or model.context_length) if top else None,
                         "max_completion_tokens": top.max_completion_tokens if top else None,
                         "is_moderated": False},
        "per_request_limits": None, "supported_parameters": parameters, "supported_voices": None,
        "default_parameters": None, "expiration_date": None, "knowledge_cutoff": None,
        "hugging_face_id": model.hugging_face_id or None,
        "links": {"details": f"/api/v1/models/{model.slug}/endpoints"},
        "object": "model", "owned_by": author,
    }


def endpoint_json(model: CatalogModel, ep: Endpoint) -> dict:
    parameters = ep.supported_parameters or []
    return {
        "name": f"{ep.provider.name} | {model.slug}", "model_id": model.slug, "model_name": model.name,
        "provider_name": ep.provider.name, "tag": ep.provider.slug,
        "context_length": ep.context_length or model.context_length,
        "max_completion_tokens": ep.max_completion_tokens, "max_prompt_tokens": None,
        "pricing": _pricing(ep), "quantization": ep.quantization or None, "supported_parameters": parameters,
        "supports_implicit_caching": ep.price_input_cache_read is not None, "status": ep.status,
        "service_tier": None, "native_tools": {}, "supports_diarization": False,
        "supports_tool_choice": {"auto": "tool_choice" in parameters, "function": "tool_choice" in parameters,
                                 "none": "tool_choice" in parameters, "required": "tool_choice" in parameters},
        "uptime_last_5m": None, "uptime_last_30m": None, "uptime_last_1d": None,
        "latency_last_30m": NO_STATS, "throughput_last_30m": NO_STATS,
    }


def _visible_endpoints(model, policy):
    endpoints = [e for e in model.endpoints.all() if e.is_enabled]
    if policy is not None:
        endpoints = [e for e in endpoints
                     if (policy.allowed_providers is None or e.provider.slug in policy.allowed_providers)
                     and e.provider.slug not in policy.ignored_providers]
    return endpoints


@require_GET
def list_models(request):
    policy, filtered, failure = _caller_policy(request)
    if failure:
        return failure
    models = CatalogModel.objects.prefetch_related("endpoints__provider").order_by("slug")
    data = []
    for model in models:
        endpoints = _visible_endpoints(model, policy if filtered else None)
        if not endpoints:
            continue
        if filtered and policy is not None and not model_allowed(model.slug, policy):
            continue
        data.append(model_json(model, endpoints))
    query = (request.GET.get("q") or "").lower()
    if query:
        data = [m for m in data if query in m["id"].lower() or query in m["name"].lower()]
    wanted = request.GET.get("supported_parameters")
    if wanted:
        needed = {p.strip() for p in wanted.split(",") if p.strip()}
        data = [m for m in data if needed <= set(m["supported_parameters"])]
    total = len(data)
    try:
        offset = int(request.GET.get("offset", 0))
        limit = int(request.GET["limit"]) if "limit" in request.GET else None
    except ValueError:
        return error(400, "offset and limit must be integers")
    if offset < 0 or (limit is not None and not 1 <= limit <= 1000):
        return error(400, "offset must be at least 0 and limit between 1 and 1000")
    page = data[offset:offset + limit] if limit is not None else data[offset:]
    has_next = limit is not None and offset + limit < total
    next_link = f"/api/v1/models?offset={offset + limit}&limit={limit}" if has_next else None
    return JsonResponse({"data": page, "total_count": total, "links": {"next": next_link}})


@require_GET
def model_endpoints(request, author, slug):
    policy, filtered, failure = _caller_policy(request)
    if failure:
        return failure
    model = CatalogModel.objects.prefetch_related("endpoints__provider").filter(slug=f"{author}/{slug}").first()
    if model is None or (filtered and policy is not None and not model_allowed(model.slug, policy)):
        return error(404, f"Model {author}/{slug} not found.")
    endpoints = _visible_endpoints(model, policy if filtered else None)
    data = {"id": model.slug, "name": model.name, "created": int(model.created.timestamp()),
            "description": model.description, "architecture": _architecture(model),
            "endpoints": [endpoint_json(model, e) for e in endpoints]}
    return JsonResponse({"data": data})


@require_GET
def list_providers(request):
    _policy, _filtered, failure = _caller_policy(request)
    if failure:
        return failure
    data = [{"name": p.name, "slug": p.slug, "privacy_policy_url": p.privacy_policy_url,
             "terms_of_service_url": p.terms_of_service_url, "status_page_url": p.status_page_url,
             "headquarters": p.headquarters, "datacenters": p.datacenters}
            for p in Provider.objects.order_by("slug")]
    return JsonResponse({"data": data})
