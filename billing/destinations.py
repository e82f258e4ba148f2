"""Delivering one generation to one observability destination (Broadcast).

`send_to_destination(destination, generation)` decides whether the event goes out at all (the destination is
enabled, the key is among its `api_key_hashes`, the sample includes it, its `filter_rules` match), builds the
payload the destination's platform expects and sends it with `requests`:

- webhook, otel-collector: OTLP JSON (`resourceSpans[].scopeSpans[].spans[]`, `gen_ai.*` attributes);
- langfuse: the public ingestion API (a `trace-create` and a `generation-create` event, basic auth);
- datadog: the LLM Observability spans intake; posthog: a `$ai_generation` capture event;
- s3 (and S3-compatible stores): one JSON object per generation, a SigV4-signed PUT;
- every other type is accepted by the API but not shipped yet (False, logged once per delivery).

A 2xx delivers (True). A 5xx, 429, timeout or connection error raises `DestinationUnavailable`, so the task
retries with backoff; any other status is logged and given up (False). Deliveries carry an idempotency key
derived from (destination, generation), so a retry the platform already received is not counted twice where
the platform deduplicates. Secrets (config values, headers) are never logged or put in an exception.

Prompts and completions are never stored by this gateway, so no payload carries them and `privacy_mode` has
nothing left to strip; the `input` and `output` filter fields are therefore always absent.
"""

import hashlib
import hmac
import json
import logging
import re
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal, InvalidOperation
from urllib.parse import quote, urlsplit

import requests

logger = logging.getLogger(__name__)

TIMEOUT = (3.05, 10)  # connect, read (seconds)
USER_AGENT = "openrouter_ws-broadcast/1"
SERVICE_NAME = "openrouter_ws"
# Every idempotency key and derived id lives under this namespace.
ID_NAMESPACE = uuid.UUID("0b8f5a4e-2f49-4d1e-9a55-6f2d1c7e3b90")
KNOWN_TRACE_KEYS = ("trace_id", "trace_name", "span_name", "generation_name", "parent_span_id")
MAX_METADATA_KEYS = 50
MAX_METADATA_VALUE = 1000
MAX_REGEX_SUBJECT = 10_000


class DestinationUnavailable(Exception):
    """The destination could not take the event now (5xx, 429, timeout, connection error): retry later."""


# --- who gets what ------------------------------------------------------------------------------------------

def sample_point(key: str) -> float:
    """A stable point in [0, 1) for a session or generation id: the same key always samples the same way."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def is_sampled(destination, generation) -> bool:
    """Whole sessions are in or out together; a generation without a session samples on its own id."""
    rate = Decimal(destination.sampling_rate)
    if rate >= 1:
        return True
    return Decimal(sample_point(generation.session_id or generation.id)) < rate


def _field_values(field: str, generation) -> list:
    """The values a filter rule's field has for this generation (more than one for provider: slug and name)."""
    if field == "model":
        return [generation.model]
    if field == "provider":
        return [v for v in (generation.provider_slug, generation.provider_name) if v] or [None]
    if field == "session_id":
        return [generation.session_id]
    if field == "user_id":
        return [generation.end_user]  # the request's `user`, as the reference's user.id
    if field == "api_key_name":
        return [generation.api_key.name if generation.api_key_id and generation.api_key else None]
    if field == "finish_reason":
        return [generation.finish_reason]
    if field == "total_cost":
        return [generation.total_cost]
    if field == "total_tokens":
        return [generation.tokens_prompt + generation.tokens_completion]
    if field == "prompt_tokens":
        return [generation.tokens_prompt]
    if field == "completion_tokens":
        return [generation.tokens_completion]
    return [None]  # input, output: never stored


def _number(value) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


def _absent(value) -> bool:
    return value is None or value == ""


NEGATED = {"not_equals": "equals", "not_contains": "contains"}


def _holds(operator: str, actual, expected) -> bool:
    if operator == "exists":
        return not _absent(actual)
    if operator == "not_exists":
        return _absent(actual)
    if _absent(actual):
        return False
    if operator in ("gt", "lt", "gte", "lte"):
        left, right = _number(actual), _number(expected)
        if left is None or right is None:
            return False
        return {"gt": left > right, "lt": left < right, "gte": left >= right, "lte": left <= right}[operator]
    if operator == "equals":
        left, right = _number(actual), _number(expected)
        if left is not None and right is not None and not isinstance(actual, str):
            return left == right
        return str(actual) == str(expected)
    text, wanted = str(actual), str(expected)
    if operator == "contains":
        return wanted in text
    if operator == "starts_with":
        return text.startswith(wanted)
    if operator == "ends_with":
        return text.endswith(wanted)
    if operator == "regex":
        try:
            return re.search(wanted, text[:MAX_REGEX_SUBJECT]) is not None
        except re.error:
            return False
    return False


def rule_matches(rule: dict, generation) -> bool:
    operator = rule.get("operator")
    values = _field_values(rule.get("field"), generation)
    if operator in NEGATED:
        return not any(_holds(NEGATED[operator], v, rule.get("value")) for v in values)
    if operator == "not_exists":
        return all(_holds(operator, v, None) for v in values)
    return any(_holds(operator, v, rule.get("value")) for v in values)


def filters_match(filter_rules, generation) -> bool:
    """Every group must match; inside a group its rules combine by the group's logic (and / or). No rules, or
    rules switched off, let everything through."""
    if not filter_rules or not filter_rules.get("enabled", True):
        return True
    for group in filter_rules.get("groups") or []:
        rules = group.get("rules") or []
        if not rules:
            continue
        results = (rule_matches(rule, generation) for rule in rules)
        if not (any(results) if group.get("logic") == "or" else all(results)):
            return False
    return True


def is_selected(destination, generation) -> bool:
    if not destination.enabled:
        return False
    if destination.api_key_hashes is not None:
        key_hash = generation.api_key.hash if generation.api_key_id and generation.api_key else None
        if key_hash not in destination.api_key_hashes:
            return False
    return is_sampled(destination, generation) and filters_match(destination.filter_rules, generation)


# --- the event ------------------------------------------------------------------------------------------------

def _hex_id(value, length: int) -> str:
    """An OTLP id (32 hex for a trace, 16 for a span): the value itself if it already is one, else a hash of it."""
    text = str(value).strip().lower()
    if re.fullmatch(f"[0-9a-f]{{{length}}}", text) and text.strip("0"):
        return text
    return hashlib.sha256(str(value).encode()).hexdigest()[:length]


def trace_object(generation) -> dict:
    trace = getattr(generation, "trace", None)
    return trace if isinstance(trace, dict) else {}


def trace_metadata(generation) -> dict:
    """The trace object's custom keys (everything but the known ones), as short strings."""
    out = {}
    for key, value in trace_object(generation).items():
        if key in KNOWN_TRACE_KEYS or len(out) >= MAX_METADATA_KEYS:
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        out[str(key)[:100]] = text[:MAX_METADATA_VALUE]
    return out


def ids_for(generation) -> dict:
    """trace_id, span_id and parent_span_id (hex, OTLP sizes), from the request's trace object if it has them,
    else derived from the generation id, so every retry of the same event carries the same ids."""
    trace = trace_object(generation)
    given = trace.get("trace_id")
    parent = trace.get("parent_span_id")
    return {
        "trace_id": _hex_id(given, 32) if not _absent(given) else _hex_id(f"trace:{generation.id}", 32),
        "span_id": _hex_id(f"span:{generation.id}", 16),
        "parent_span_id": _hex_id(parent, 16) if not _absent(parent) else None,
    }


def times_for(generation) -> tuple[datetime, datetime, datetime | None]:
    """(start, end, first token): the row is written when the request ends."""
    end = generation.created_at
    latency = timedelta(milliseconds=generation.latency_ms or 0)
    duration = latency + timedelta(milliseconds=generation.generation_time_ms or 0)
    start = end - duration
    first_token = start + latency if generation.latency_ms is not None else None
    return start, end, first_token


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt_timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _unix_nanos(moment: datetime) -> int:
    delta = moment.astimezone(dt_timezone.utc) - datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def external_trace_id(generation) -> str:
    """The trace id platforms that take any string see: the request's own, else the derived OTLP one."""
    given = trace_object(generation).get("trace_id")
    return str(given)[:200] if not _absent(given) else ids_for(generation)["trace_id"]


def span_name(generation) -> str:
    trace = trace_object(generation)
    name = trace.get("generation_name") or trace.get("span_name")
    return str(name)[:200] if name else f"chat {generation.model}"


def event_record(destination, generation) -> dict:
    """The generation as one flat JSON-ready dict (the S3 object; the base of the other payloads). The four
    `broadcast_generation_*` flags of the destination add their groups of fields."""
    start, end, first_token = times_for(generation)
    trace = trace_object(generation)
    record = {
        "generation_id": generation.id,
        "created_at": _iso(generation.created_at),
        "start_time": _iso(start),
        "end_time": _iso(end),
        "first_token_time": _iso(first_token),
        "model": generation.model,
        "upstream_model": generation.upstream_model or None,
        "provider_name": generation.provider_name or None,
        "provider": generation.provider_slug or None,
        "status": generation.status,
        "error_code": generation.error_code,
        "error_message": generation.error_message or None,
        "finish_reason": generation.finish_reason,
        "native_finish_reason": generation.native_finish_reason,
        "streamed": generation.streamed,
        "cancelled": generation.cancelled,
        "prompt_tokens": generation.tokens_prompt,
        "completion_tokens": generation.tokens_completion,
        "reasoning_tokens": generation.tokens_reasoning,
        "cached_tokens": generation.tokens_cached,
        "total_tokens": generation.tokens_prompt + generation.tokens_completion,
        "total_cost": str(generation.total_cost),
        "latency_ms": generation.latency_ms,
        "generation_time_ms": generation.generation_time_ms,
        "session_id": generation.session_id,
        "user": generation.end_user,
        # The request's trace object as sent (known keys and custom metadata), and the OTLP ids used for it.
        "trace": {**{k: trace[k] for k in KNOWN_TRACE_KEYS if not _absent(trace.get(k))},
                  "metadata": trace_metadata(generation)},
        "otlp_trace_id": ids_for(generation)["trace_id"],
        "otlp_span_id": ids_for(generation)["span_id"],
    }
    if destination.broadcast_generation_cost:
        record.update({"usage": str(generation.usage), "is_byok": generation.is_byok,
                       "upstream_inference_cost": (str(generation.upstream_inference_cost)
                                                   if generation.upstream_inference_cost is not None else None),
                       "usage_estimated": generation.usage_estimated})
    if destination.broadcast_generation_cost_allocation:
        api_key = generation.api_key if generation.api_key_id else None
        record.update({"workspace_id": str(generation.workspace_id) if generation.workspace_id else None,
                       "api_key_hash": api_key.hash if api_key else None,
                       "api_key_name": api_key.name if api_key else None})
    if destination.broadcast_generation_identity:
        record.update({"organization_id": str(generation.organization_id),
                       "member_id": str(generation.user_id) if generation.user_id else None})
    if destination.broadcast_generation_request_context:
        record.update({"http_referer": generation.http_referer, "app_title": generation.app_title,
                       "user_agent": generation.user_agent, "api_type": generation.api_type})
    return record


# --- OTLP JSON ------------------------------------------------------------------------------------------------

def _otlp_value(value) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 is a decimal string in OTLP JSON
    if isinstance(value, (float, Decimal)):
        return {"doubleValue": float(value)}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_otlp_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _otlp_attributes(pairs: dict) -> list:
    return [{"key": key, "value": _otlp_value(value)} for key, value in pairs.items() if value is not None]


# The flat record's optional fields, as span attributes.
_OPTIONAL_ATTRIBUTES = {
    "usage": "openrouter.usage", "is_byok": "openrouter.is_byok",
    "upstream_inference_cost": "openrouter.upstream_inference_cost", "usage_estimated": "openrouter.usage_estimated",
    "workspace_id": "openrouter.workspace_id", "api_key_hash": "openrouter.api_key.hash",
    "api_key_name": "openrouter.api_key.name", "organization_id": "openrouter.organization_id",
    "member_id": "openrouter.member_id", "http_referer": "http.request.header.referer",
    "app_title": "openrouter.app.title", "user_agent": "user_agent.original", "api_type": "openrouter.api_type",
}
_MONEY_ATTRIBUTES = ("usage", "upstream_inference_cost")


def otlp_span(destination, generation) -> dict:
    record = event_record(destination, generation)
    start, end, _first = times_for(generation)
    ids = ids_for(generation)
    trace = trace_object(generation)
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": generation.provider_slug or generation.provider_name or None,
        "gen_ai.provider.name": generation.provider_name or generation.provider_slug or None,
        "gen_ai.request.model": generation.model,
        "gen_ai.response.model": generation.upstream_model or generation.model,
        "gen_ai.response.id": generation.id,
        "gen_ai.response.finish_reasons": [generation.finish_reason] if generation.finish_reason else None,
        "gen_ai.usage.input_tokens": generation.tokens_prompt,
        "gen_ai.usage.output_tokens": generation.tokens_completion,
        "gen_ai.usage.total_tokens": generation.tokens_prompt + generation.tokens_completion,
        "gen_ai.usage.reasoning_tokens": generation.tokens_reasoning,
        "gen_ai.usage.cached_tokens": generation.tokens_cached,
        "gen_ai.usage.cost": generation.total_cost,
        "gen_ai.request.stream": generation.streamed,
        "session.id": generation.session_id,
        "user.id": generation.end_user,
        "trace.name": trace.get("trace_name"),
        "openrouter.generation_id": generation.id,
        "openrouter.provider_slug": generation.provider_slug or None,
        "openrouter.status": generation.status,
        "openrouter.cancelled": generation.cancelled,
        "openrouter.latency_ms": generation.latency_ms,
        "openrouter.generation_time_ms": generation.generation_time_ms,
    }
    if generation.error_code is not None:
        attributes["error.type"] = str(generation.error_code)
    for field, name in _OPTIONAL_ATTRIBUTES.items():
        if field in record and record[field] is not None:
            value = record[field]
            attributes[name] = Decimal(value) if field in _MONEY_ATTRIBUTES else value
    for key, value in trace_metadata(generation).items():
        attributes[f"trace.metadata.{key}"] = value
    span = {
        "traceId": ids["trace_id"],
        "spanId": ids["span_id"],
        "name": span_name(generation),
        "kind": 3,  # SPAN_KIND_CLIENT: a call out to a model provider
        "startTimeUnixNano": str(_unix_nanos(start)),
        "endTimeUnixNano": str(_unix_nanos(end)),
        "attributes": _otlp_attributes(attributes),
        "status": ({"code": 2, "message": (generation.error_message or "error")[:500]}
                   if generation.status == "error" else {"code": 1}),
    }
    if ids["parent_span_id"]:
        span["parentSpanId"] = ids["parent_span_id"]
    return span


def otlp_payload(destination, generation) -> dict:
    return {"resourceSpans": [{
        "resource": {"attributes": _otlp_attributes({"service.name": SERVICE_NAME})},
        "scopeSpans": [{"scope": {"name": f"{SERVICE_NAME}.broadcast", "version": "1"},
                        "spans": [otlp_span(destination, generation)]}],
    }]}


# --- delivering -------------------------------------------------------------------------------------------------

def idempotency_key(destination, generation) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{destination.id}:{generation.id}"))


def _headers(config: dict, destination, generation, extra: dict | None = None) -> dict:
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "Idempotency-Key": idempotency_key(destination, generation)}
    headers.update(extra or {})
    headers.update(config.get("headers") or {})  # the destination's own headers win (auth, routing)
    return headers


def _describe(destination, generation) -> str:
    # Names the delivery without its URL or config: either may carry a secret.
    return f"{destination.type} destination {destination.id} (generation {generation.id})"


def deliver(destination, generation, method: str, url: str, body: bytes, headers: dict,
            auth: tuple | None = None) -> requests.Response | None:
    """Send one request. Returns the response on 2xx, None when the destination refused for good (logged);
    raises DestinationUnavailable when it may take it later."""
    try:
        response = requests.request(method, url, data=body, headers=headers, auth=auth, timeout=TIMEOUT,
                                    allow_redirects=False)
    except requests.Timeout:
        raise DestinationUnavailable(f"{_describe(destination, generation)}: timed out") from None
    except (ValueError, UnicodeError) as exc:
        # An URL or header HTTP cannot carry: retrying would fail the same way until the config changes.
        logger.warning("%s cannot be sent (%s in its config); not retrying", _describe(destination, generation),
                       type(exc).__name__)
        return None
    except requests.RequestException as exc:
        raise DestinationUnavailable(f"{_describe(destination, generation)}: {type(exc).__name__}") from None
    status = response.status_code
    if status >= 500 or status == 429:
        raise DestinationUnavailable(f"{_describe(destination, generation)}: HTTP {status}")
    if not 200 <= status < 300:
        logger.warning("%s refused the event with HTTP %s; not retrying", _describe(destination, generation),
                       status)
        return None
    return response


def _json(payload) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def _url(base: str, default_path: str) -> str:
    """`base` as given when it names a path, else with the platform's default path appended."""
    parts = urlsplit(base)
    if parts.path and parts.path != "/":
        return base
    return base.rstrip("/") + default_path


def send_webhook(destination, generation, config: dict) -> bool:
    method = config.get("method") or "POST"
    body = _json(otlp_payload(destination, generation))
    return deliver(destination, generation, method, config["url"], body,
                   _headers(config, destination, generation)) is not None


def send_otel_collector(destination, generation, config: dict) -> bool:
    url = config["endpoint"]
    if not urlsplit(url).path.rstrip("/").endswith("/v1/traces"):
        url = url.rstrip("/") + "/v1/traces"
    body = _json(otlp_payload(destination, generation))
    return deliver(destination, generation, "POST", url, body,
                   _headers(config, destination, generation)) is not None


def langfuse_payload(destination, generation) -> dict:
    record = event_record(destination, generation)
    trace = trace_object(generation)
    trace_id = external_trace_id(generation)
    now = _iso(generation.created_at)
    metadata = {k: v for k, v in record.items()
                if k not in ("trace", "model", "start_time", "end_time", "first_token_time", "created_at")}
    metadata.update({f"trace.{k}": v for k, v in trace_metadata(generation).items()})
    trace_body = {"id": trace_id, "timestamp": record["start_time"], "sessionId": generation.session_id,
                  "userId": generation.end_user, "metadata": trace_metadata(generation) or None}
    if trace.get("trace_name"):
        trace_body["name"] = str(trace["trace_name"])[:200]
    generation_body = {
        "id": generation.id, "traceId": trace_id, "name": span_name(generation),
        "startTime": record["start_time"], "endTime": record["end_time"],
        "completionStartTime": record["first_token_time"], "model": generation.model,
        "usageDetails": {"input": generation.tokens_prompt, "output": generation.tokens_completion,
                         "total": generation.tokens_prompt + generation.tokens_completion},
        "costDetails": {"total": float(generation.total_cost)},
        "metadata": metadata,
        "level": "ERROR" if generation.status == "error" else "DEFAULT",
    }
    if generation.status == "error":
        generation_body["statusMessage"] = (generation.error_message or "error")[:500]
    if not _absent(trace.get("parent_span_id")):
        generation_body["parentObservationId"] = str(trace["parent_span_id"])[:200]
    key = idempotency_key(destination, generation)
    return {"batch": [
        {"id": str(uuid.uuid5(ID_NAMESPACE, f"{key}:trace")), "timestamp": now, "type": "trace-create",
         "body": {k: v for k, v in trace_body.items() if v is not None}},
        {"id": str(uuid.uuid5(ID_NAMESPACE, f"{key}:generation")), "timestamp": now, "type": "generation-create",
         "body": {k: v for k, v in generation_body.items() if v is not None}},
    ]}


def send_langfuse(destination, generation, config: dict) -> bool:
    url = (config.get("baseUrl") or "https://cloud.langfuse.com").rstrip("/") + "/api/public/ingestion"
    response = deliver(destination, generation, "POST", url, _json(langfuse_payload(destination, generation)),
                       _headers(config, destination, generation),
                       auth=(config["publicKey"], config["secretKey"]))
    if response is None:
        return False
    if response.status_code == 207:
        # Per-event results: the batch itself was accepted.
        try:
            errors = response.json().get("errors") or []
        except ValueError:
            errors = []
        if any(int(e.get("status") or 0) >= 500 for e in errors if isinstance(e, dict)):
            raise DestinationUnavailable(f"{_describe(destination, generation)}: event rejected with a 5xx")
        if errors:
            logger.warning("%s rejected %d event(s); not retrying", _describe(destination, generation),
                           len(errors))
            return False
    return True


def datadog_payload(destination, generation, config: dict) -> dict:
    record = event_record(destination, generation)
    ids = ids_for(generation)
    start, end, _first = times_for(generation)
    meta = {"kind": "llm", "model_name": generation.upstream_model or generation.model,
            "model_provider": generation.provider_slug or generation.provider_name or "unknown",
            "metadata": {k: v for k, v in record.items() if k not in ("trace",) and v is not None}}
    if generation.status == "error":
        meta["error"] = {"message": (generation.error_message or "error")[:500],
                         "type": str(generation.error_code or "error")}
    span = {
        "parent_id": ids["parent_span_id"] or "undefined",
        "trace_id": ids["trace_id"], "span_id": ids["span_id"], "name": span_name(generation),
        "start_ns": _unix_nanos(start), "duration": max(_unix_nanos(end) - _unix_nanos(start), 0),
        "status": "error" if generation.status == "error" else "ok",
        "meta": meta,
        "metrics": {"input_tokens": generation.tokens_prompt, "output_tokens": generation.tokens_completion,
                    "total_tokens": generation.tokens_prompt + generation.tokens_completion,
                    "total_cost": float(generation.total_cost)},
    }
    tags = [f"source:{SERVICE_NAME}", f"model:{generation.model}"]
    if generation.provider_slug:
        tags.append(f"provider:{generation.provider_slug}")
    attributes = {"ml_app": config["mlApp"], "tags": tags, "spans": [span]}
    if generation.session_id:
        attributes["session_id"] = generation.session_id
    return {"data": {"type": "span", "attributes": attributes}}


def send_datadog(destination, generation, config: dict) -> bool:
    url = _url(config.get("url") or "https://api.datadoghq.com", "/api/intake/llm-obs/v1/trace/spans")
    body = _json(datadog_payload(destination, generation, config))
    headers = _headers(config, destination, generation, {"DD-API-KEY": config["apiKey"]})
    return deliver(destination, generation, "POST", url, body, headers) is not None


def posthog_payload(destination, generation, config: dict) -> dict:
    record = event_record(destination, generation)
    properties = {
        "$ai_trace_id": external_trace_id(generation),
        "$ai_span_id": generation.id,
        "$ai_span_name": span_name(generation),
        "$ai_parent_id": record["trace"].get("parent_span_id"),
        "$ai_session_id": generation.session_id,
        "$ai_model": generation.model,
        "$ai_provider": generation.provider_slug or generation.provider_name or None,
        "$ai_input_tokens": generation.tokens_prompt,
        "$ai_output_tokens": generation.tokens_completion,
        "$ai_reasoning_tokens": generation.tokens_reasoning,
        "$ai_cache_read_input_tokens": generation.tokens_cached,
        "$ai_total_cost_usd": float(generation.total_cost),
        "$ai_latency": ((generation.latency_ms or 0) + (generation.generation_time_ms or 0)) / 1000,
        "$ai_time_to_first_token": (generation.latency_ms / 1000 if generation.streamed
                                    and generation.latency_ms is not None else None),
        "$ai_stream": generation.streamed,
        "$ai_is_error": generation.status == "error",
        "$ai_http_status": generation.error_code if generation.status == "error" else 200,
        "$ai_error": (generation.error_message or "error")[:500] if generation.status == "error" else None,
        # No person profile for events without an end user.
        "$process_person_profile": bool(generation.end_user),
    }
    properties.update({f"openrouter_{k}": v for k, v in record.items()
                       if k not in ("trace", "model") and not k.endswith("_time") and v is not None})
    properties.update({f"trace_metadata_{k}": v for k, v in trace_metadata(generation).items()})
    return {"api_key": config["apiKey"], "event": "$ai_generation",
            "distinct_id": generation.end_user or f"{SERVICE_NAME}:{generation.organization_id}",
            "timestamp": record["created_at"], "uuid": idempotency_key(destination, generation),
            "properties": {k: v for k, v in properties.items() if v is not None}}


def send_posthog(destination, generation, config: dict) -> bool:
    url = _url(config.get("endpoint") or "https://us.i.posthog.com", "/i/v0/e/")
    body = _json(posthog_payload(destination, generation, config))
    return deliver(destination, generation, "POST", url, body, _headers(config, destination, generation)) is not None


# --- S3: a minimal SigV4 PUT ----------------------------------------------------------------------------------

def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_authorization(method: str, url: str, headers: dict, payload_hash: str, *, access_key: str,
                        secret_key: str, region: str, service: str = "s3") -> str:
    """The Authorization header of AWS Signature Version 4 for this request. `headers` must already hold
    `x-amz-date` (YYYYMMDDTHHMMSSZ) and, for S3, `x-amz-content-sha256`; every header given is signed."""
    parts = urlsplit(url)
    canonical_uri = quote(parts.path or "/", safe="/-_.~")
    query = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                   for k, _, v in (pair.partition("=") for pair in parts.query.split("&") if pair))
    canonical_query = "&".join(f"{k}={v}" for k, v in query)
    signed = {name.lower(): " ".join(str(value).split()) for name, value in headers.items()}
    signed.setdefault("host", parts.netloc)
    names = sorted(signed)
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in names)
    signed_headers = ";".join(names)
    canonical_request = "\n".join([method, canonical_uri, canonical_query, canonical_headers, signed_headers,
                                   payload_hash])
    amz_date = signed["x-amz-date"]
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = _hmac(f"AWS4{secret_key}".encode(), amz_date[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope},SignedHeaders={signed_headers},"
            f"Signature={signature}")


def s3_object_key(config: dict, generation) -> str:
    day = generation.created_at.astimezone(dt_timezone.utc)
    key = f"{SERVICE_NAME}/{day:%Y/%m/%d}/{generation.id}.json"
    prefix = (config.get("prefix") or "").strip("/")
    return f"{prefix}/{key}" if prefix else key


def s3_url(config: dict, key: str) -> str:
    bucket = config["bucketName"]
    endpoint = config.get("endpoint")
    if endpoint:
        # Path style: what MinIO, R2 and most S3-compatible stores accept.
        return f"{endpoint.rstrip('/')}/{bucket}/{key}"
    region = config.get("region") or "us-east-1"
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


def send_s3(destination, generation, config: dict, now: datetime | None = None) -> bool:
    if config.get("authMode", "access_keys") != "access_keys":
        # Assuming an IAM role needs an STS call and its own credentials cache: not shipped yet.
        logger.warning("%s uses IAM role authentication, which is not shipped yet", _describe(destination,
                                                                                               generation))
        return False
    body = _json(event_record(destination, generation))
    url = s3_url(config, s3_object_key(config, generation))
    payload_hash = hashlib.sha256(body).hexdigest()
    amz_date = (now or datetime.now(dt_timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    headers = {"content-type": "application/json", "host": urlsplit(url).netloc,
               "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    if config.get("sessionToken"):
        headers["x-amz-security-token"] = config["sessionToken"]
    for name, value in (config.get("headers") or {}).items():
        headers[name.lower()] = value
    region = config.get("region") or ("auto" if config.get("provider") == "cloudflare_r2" else "us-east-1")
    headers["authorization"] = sigv4_authorization("PUT", url, headers, payload_hash,
                                                   access_key=config["accessKeyId"],
                                                   secret_key=config["secretAccessKey"], region=region)
    headers["user-agent"] = USER_AGENT
    return deliver(destination, generation, "PUT", url, body, headers) is not None


SENDERS = {
    "webhook": send_webhook,
    "otel-collector": send_otel_collector,
    "langfuse": send_langfuse,
    "datadog": send_datadog,
    "posthog": send_posthog,
    "s3": send_s3,
}


def send_to_destination(destination, generation) -> bool:
    """Ship one generation to one destination. True when delivered; False when not selected (disabled, another
    key, sampled out, filtered out), for a type not shipped yet, or refused for good (4xx, logged).
    Raises DestinationUnavailable when it is worth retrying later."""
    from workspaces.policy_services import destination_config

    if not is_selected(destination, generation):
        return False
    sender = SENDERS.get(destination.type)
    if sender is None:
        logger.info("%s: this destination type is accepted but not shipped yet", _describe(destination,
                                                                                           generation))
        return False
    return sender(destination, generation, destination_config(destination))

