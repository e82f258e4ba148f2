"""The inference endpoint in the OpenAPI schema.

`POST /api/v1/chat/completions` is served by the lean ASGI handler (`routing/proxy.py`), not by a DRF view, so
drf-spectacular cannot see it; this postprocessing hook adds its description to the generated schema.
"""

MESSAGE = {
    "type": "object", "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}},
                              {"type": "null"}]},
        "name": {"type": "string"}, "tool_call_id": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
    },
}

REQUEST = {
    "type": "object", "required": ["messages"],
    "description": "OpenAI-compatible. `model` may be omitted when the workspace has a default model; "
                   "unsupported parameters are dropped unless `provider.require_parameters` is set.",
    "properties": {
        "model": {"type": "string", "example": "demo/chat"},
        "models": {"type": "array", "items": {"type": "string"}, "description": "Fallback models, in order."},
        "messages": {"type": "array", "items": MESSAGE, "minItems": 1},
        "stream": {"type": "boolean", "default": False},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number"}, "top_p": {"type": "number"}, "stop": {},
        "n": {"type": "integer", "minimum": 1},
        "tools": {"type": "array", "items": {"type": "object"}}, "tool_choice": {},
        "response_format": {"type": "object"}, "user": {"type": "string", "maxLength": 128},
        "session_id": {"type": "string", "maxLength": 256},
        "provider": {"type": "object", "description": "Routing preferences: order, only, ignore, "
                     "allow_fallbacks, sort, data_collection, zdr, quantizations, max_price, require_parameters.",
                     "properties": {
                         "order": {"type": "array", "items": {"type": "string"}},
                         "only": {"type": "array", "items": {"type": "string"}},
                         "ignore": {"type": "array", "items": {"type": "string"}},
                         "allow_fallbacks": {"type": "boolean"},
                         "sort": {"type": "string", "enum": ["price", "throughput", "latency"]},
                         "require_parameters": {"type": "boolean"},
                     }},
        "preset": {"type": "string"}, "trace": {"type": "object"}, "metadata": {"type": "object"},
    },
}

USAGE = {
    "type": "object",
    "properties": {
        "prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"}, "cost": {"type": "number", "description": "USD charged"},
        "is_byok": {"type": "boolean"},
        "prompt_tokens_details": {"type": "object"}, "completion_tokens_details": {"type": "object"},
        "cost_details": {"type": "object"},
    },
}

RESPONSE = {
    "type": "object", "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "id": {"type": "string", "example": "gen-1796327407-abc"},
        "object": {"type": "string", "enum": ["chat.completion"]},
        "created": {"type": "integer"}, "model": {"type": "string"}, "provider": {"type": "string"},
        "choices": {"type": "array", "items": {"type": "object", "properties": {
            "index": {"type": "integer"}, "message": MESSAGE,
            "finish_reason": {"type": "string", "nullable": True},
            "native_finish_reason": {"type": "string", "nullable": True}}}},
        "usage": USAGE,
    },
}


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


OPERATION = {
    "operationId": "createChatCompletion",
    "summary": "A routed chat completion, streamed (SSE) or not",
    "description": "Authenticates an inference key, applies the workspace's policy, reserves the worst-case "
                   "cost on every budget, routes with fallbacks and records one generation. With `stream: true` "
                   "the answer is `text/event-stream`: `data:` chunks, `: OPENROUTER PROCESSING` comments while "
                   "waiting, a final chunk with `usage` and `choices: []`, then `data: [DONE]`. The response "
                   "carries the generation id in `X-Generation-Id`.",
    "tags": ["inference"],
    "security": [{"bearer": []}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": REQUEST}}},
    "responses": {
        "200": {"description": "The completion (or the event stream when `stream` is true).",
                "headers": {"X-Generation-Id": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": RESPONSE},
                            "text/event-stream": {"schema": {"type": "string"}}}},
        "400": _error("Invalid JSON or parameters, or an unknown model."),
        "401": _error("Missing, unknown, disabled or expired key."),
        "402": _error("Insufficient credits, or the key's limit is reached."),
        "403": _error("A workspace or guardrail budget, or the workspace's policy, refuses the request."),
        "404": _error("No endpoint of the model passes the data policy."),
        "413": _error("The body is larger than MAX_REQUEST_BYTES."),
        "429": _error("The upstream rate-limited the request (with its Retry-After)."),
        "502": _error("No upstream answered."),
        "503": _error("Spend limits cannot be checked right now (Retry-After: 2)."),
    },
}


def add_inference_paths(result, generator, request, public):
    """drf-spectacular postprocessing hook: describe the ASGI-served inference endpoint too."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"},
                       "metadata": {"type": "object", "additionalProperties": True}}}}})
    result.setdefault("paths", {})["/api/v1/chat/completions"] = {"post": OPERATION}
    return result
