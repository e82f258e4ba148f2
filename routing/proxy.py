"""POST /api/v1/chat/completions: a lean ASGI handler (no Django request, middleware or ORM on the path).

Auth from the per-process key cache, routing from the cached catalog, the upstream through one pooled
aiohttp session, the answer streamed straight through, and the generation handed to the recorder.
See docs/architecture.md for why this is not a Django view.
"""

import asyncio
import logging
import secrets
import time
from decimal import Decimal

import aiohttp
import orjson
from django.utils import timezone

from billing import admission
from billing.admission import prompt_chars
from billing.pricing import Usage, charge_for, cost
from workspaces import keys as key_format

from . import policy as workspace_policy
from . import router
from .providers import anthropic, openai
from .providers.base import StreamError, UpstreamError, error_type_for, http_error

logger = logging.getLogger(__name__)
ADAPTERS = {"openai": openai, "anthropic": anthropic}
KEEPALIVE = b": OPENROUTER PROCESSING\n\n"
SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]
JSON_HEADERS = [(b"content-type", b"application/json")]


class ClientError(Exception):
    """A request the gateway refuses before anything goes upstream."""

    def __init__(self, status: int, message: str, metadata: dict | None = None, headers=None, extra=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.metadata = metadata
        self.headers = headers or []
        self.extra = extra or {}


def error_body(status: int, message: str, metadata: dict | None = None, **extra) -> bytes:
    error = {"code": status, "message": message}
    if metadata:
        error["metadata"] = metadata
    error.update(extra)
    return orjson.dumps({"error": error})


async def send_json(send, status: int, body: bytes, headers=()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


MAX_TRACE_BYTES = 8192


def trace_of(body: dict) -> dict | None:
    """The request's `trace` object for observability destinations, if it is one and not too large."""
    trace = body.get("trace")
    if not isinstance(trace, dict) or len(orjson.dumps(trace)) > MAX_TRACE_BYTES:
        return None
    return trace


def new_generation_id() -> str:
    return f"gen-{int(time.time())}-{secrets.token_urlsafe(15)}"


# --- request parsing --------------------------------------------------------------------------------------

async def read_body(scope, receive, limit: int) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                if int(value) > limit:
                    raise ClientError(413, f"Request body too large: the limit is {limit} bytes.",
                                      {"error_type": "payload_too_large"})
            except ValueError:
                raise ClientError(400, "Invalid Content-Length header.") from None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ClientError(413, f"Request body too large: the limit is {limit} bytes.",
                              {"error_type": "payload_too_large"})
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def invalid(message: str) -> ClientError:
    return ClientError(400, message, {"error_type": "invalid_request"})


def parse_request(raw: bytes) -> dict:
    if not raw:
        raise invalid("The request body is empty; send a JSON object with 'model' and 'messages'.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    messages = body.get("messages")
    if messages is None:
        raise invalid("'messages' is required.")
    if not isinstance(messages, list) or not messages:
        raise invalid("'messages' must be a non-empty array of message objects.")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid(f"messages[{index}] must be an object.")
        role = message.get("role")
        if not isinstance(role, str) or role not in ("system", "developer", "user", "assistant", "tool"):
            raise invalid(f"messages[{index}].role must be one of system, developer, user, assistant, tool.")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise invalid(f"messages[{index}].content must be a string or an array of content parts.")
    if "model" in body and body["model"] is not None and not isinstance(body["model"], str):
        raise invalid("'model' must be a string.")
    if "models" in body and body["models"] is not None:
        if not isinstance(body["models"], list) or not all(isinstance(m, str) for m in body["models"]):
            raise invalid("'models' must be an array of model slugs.")
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise invalid("'stream' must be true or false.")
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise invalid(f"'{name}' must be a positive integer.")
    for name in ("temperature", "top_p", "frequency_penalty", "presence_penalty"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise invalid(f"'{name}' must be a number.")
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise invalid("'tools' must be an array.")
    if body.get("user") is not None and (not isinstance(body["user"], str) or len(body["user"]) > 128):
        raise invalid("'user' must be a string of at most 128 characters.")
    if body.get("session_id") is not None and (not isinstance(body["session_id"], str)
                                              or len(body["session_id"]) > 256):
        raise invalid("'session_id' must be a string of at most 256 characters.")
    return body


def upstream_payload(body: dict, endpoint: router.EndpointInfo, require_parameters: bool) -> dict:
    """The body as the provider should see it: our own fields removed, unsupported parameters dropped."""
    payload = {}
    supported = endpoint.supported_parameters
    for name, value in body.items():
        if name in router.GATEWAY_FIELDS or name in ("model", "reasoning_effort"):
            continue
        if supported and name not in router.ALWAYS_SUPPORTED and name not in supported and not require_parameters:
            # Silently dropped, as the reference says, unless the caller required every parameter.
            if name not in ("max_completion_tokens",) or "max_tokens" not in supported:
                continue
        payload[name] = value
    cap = endpoint.max_completion_tokens
    if cap:
        # Never ask for more than the endpoint's maximum: admission reserved the worst case at that cap.
        for name in ("max_tokens", "max_completion_tokens"):
            asked = payload.get(name)
            if isinstance(asked, int) and not isinstance(asked, bool) and asked > cap:
                payload[name] = cap
    return payload


def estimate_tokens(text_len: int) -> int:
    return max(1, (text_len + 3) // 4)


# --- the handler ------------------------------------------------------------------------------------------

class Completion:
    """One chat completion request, from parsed body to settled generation."""

    def __init__(self, state, scope, receive, send):
        self.state = state
        self.scope = scope
        self.receive = receive
        self.send = send
        self.config = state.config
        self.generation_id = new_generation_id()
        self.started = time.monotonic()
        self.created = int(time.time())
        self.ctx = None
        self.body: dict = {}
        self.attempts_log: list[dict] = []
        self.endpoint: router.EndpointInfo | None = None
        self.attempt: router.Attempt | None = None
        self.preset_id = None
        self.models: list[str] = []
        self.usage: dict | None = None
        self.finish_reason = None
        self.native_finish_reason = None
        self.upstream_id = ""
        self.completion_chars = 0
        self.first_token_at: float | None = None
        self.disconnected = False
        self.on_disconnect = None  # what to stop when the client goes: the attempts, then the upstream stream
        self.in_flight: tuple[router.Attempt, float] | None = None
        self.response_started = False
        self.market_cost = Decimal(0)
        self.settled: Decimal | None = None
        self.reservation = None  # budgets: billing.admission

    # -- entry point
    async def run(self):
        try:
            await self._run()
        except ClientError as exc:
            if not self.response_started:
                await send_json(self.send, exc.status, error_body(exc.status, exc.message, exc.metadata,
                                                                  **exc.extra), exc.headers)
        except asyncio.CancelledError:
            self.abandoned()
            raise
        except Exception:
            # A defect of ours: still exactly one record for what reached an upstream, and a clean ending.
            logger.exception("chat completion failed")
            failure = ClientError(500, "Internal server error.", {"error_type": "server"})
            self.cut_in_flight(500)
            charged = self.settle(status="error", error=failure)
            if self.response_started:
                await self.send_error_chunk(500, failure.message, failure.metadata, charged)
                await self.finish_sse()
            else:
                await send_json(self.send, 500, error_body(500, failure.message, failure.metadata))
        finally:
            # --- budgets: a request that ends without settling (refused, failed, cancelled) frees its reservation
            admission.release(self.state, self.reservation)

    async def _run(self):
        try:
            await self.state.refresh()
        except Exception as exc:  # Redis (which holds the configuration's version) is unreachable
            logger.error("the configuration version cannot be read, refusing the request: %s", type(exc).__name__)
            raise ClientError(503, "The gateway cannot check its configuration right now; nothing was sent "
                              "upstream. Try again shortly.", {"error_type": "server"},
                              [(b"retry-after", b"2")]) from None
        self.ctx = await self.authenticate()
        raw = await read_body(self.scope, self.receive, self.config["MAX_REQUEST_BYTES"])
        self.body = parse_request(raw)
        plan = await self.plan()
        # --- budgets: reserve the worst case on credits, key limit, workspace and guardrail budgets
        try:
            self.reservation = await admission.admit(self.state, self.ctx, self.body, plan.attempts)
        except admission.Refused as exc:
            raise ClientError(exc.status, exc.message, exc.metadata, exc.headers) from None
        # ---
        watcher = asyncio.ensure_future(self.watch_disconnect())
        try:
            if self.body.get("stream"):
                await self.stream(plan)
            else:
                await self.complete(plan)
        finally:
            watcher.cancel()

    async def authenticate(self):
        token = None
        value = header(self.scope, b"authorization")
        if value:
            scheme, _, rest = value.strip().partition(" ")
            if scheme.lower() == "bearer":
                token = rest.strip()
        if not token:
            raise ClientError(401, "No API key. Send it as 'Authorization: Bearer <key>'.",
                              {"error_type": "authentication"})
        parsed = key_format.parse(token)
        invalid_key = ClientError(401, "Invalid API key.", {"error_type": "authentication"})
        if parsed is None:
            raise invalid_key
        _kind, lookup_id, secret = parsed
        ctx = await self.state.key_context(lookup_id)
        if ctx is None or not key_format.secret_matches(secret, ctx.pepper_id, ctx.digest):
            raise invalid_key
        if ctx.disabled:
            raise ClientError(401, "This API key is disabled.", {"error_type": "authentication"})
        if ctx.expires_at is not None and ctx.expires_at <= timezone.now():
            raise ClientError(401, "This API key has expired.", {"error_type": "authentication"})
        if ctx.kind != "inference":
            raise ClientError(403, "Management keys cannot call inference endpoints; use an inference key.",
                              {"error_type": "permission_denied"})
        return ctx

    def apply_workspace_policy(self) -> None:
        """Preset merge, disabled server tools and content filters: before routing, nothing forwarded yet."""
        slug, model = workspace_policy.preset_reference(self.body)
        self.preset_id = None
        if slug is not None:
            preset = self.ctx.presets.get(slug)
            if preset is None:
                raise ClientError(404, f"Preset {slug!r} not found in this workspace.", {"error_type": "not_found"})
            self.body = workspace_policy.apply_preset(self.body, preset, model)
            self.preset_id = preset.id
        disabled = set(self.ctx.disabled_server_tools)
        if disabled:
            for tool in self.body.get("tools") or []:
                if isinstance(tool, dict) and tool.get("type") in disabled:
                    raise ClientError(403, f"The server tool {tool['type']!r} is disabled in this workspace.",
                                      {"error_type": "permission_denied"})
        if self.ctx.filters:
            blocked, _redacted = workspace_policy.run_filters(self.body, self.ctx.filters)
            if blocked:
                raise ClientError(403, "Request blocked by a guardrail content filter.",
                                  {"error_type": "permission_denied", "patterns": blocked})

    async def plan(self) -> router.Plan:
        self.apply_workspace_policy()
        body = self.body
        models = []
        if body.get("model"):
            models.append(body["model"])
        for slug in body.get("models") or []:
            if slug not in models:
                models.append(slug)
        if not models and self.ctx.default_model:
            models.append(self.ctx.default_model)
        if not models:
            raise invalid("'model' is required (this workspace has no default model).")
        try:
            prefs = router.parse_provider_prefs(body.get("provider"), body.get("route"))
        except router.PrefsError as exc:
            raise invalid(str(exc)) from None
        self.prefs = prefs
        catalog = await self.state.catalog_snapshot()
        plan = router.plan(models, catalog, prefs, self.ctx.policy, set(body), self.state.unhealthy(),
                           self.config["MAX_ATTEMPTS"])
        self.models = models
        if plan.attempts:
            plan.attempts = router.with_credentials(plan.attempts, self.ctx.byok, self.config["MAX_ATTEMPTS"])
            if plan.attempts:
                return plan
        raise self.availability_error(models, plan)

    def availability_error(self, models, plan: router.Plan) -> ClientError:
        if plan.unknown_models and len(plan.unknown_models) == len(models):
            code, status = "model_not_found", 400
            message = f"Model {models[0]!r} not found. GET /api/v1/models lists the models you can use."
        elif plan.blocked_models and not plan.excluded_by:
            code, status = "constraint_filtered", 403
            message = f"Model {plan.blocked_models[0]!r} is not allowed for this key."
        elif "policy:allowed_providers" in plan.excluded_by and not plan.excluded_by - {"policy:allowed_providers"}:
            code, status = "constraint_filtered", 403
            message = "No provider of this model is allowed for this key by your organization's guardrails."
        elif {"data_policy:zdr", "data_policy:training"} & plan.excluded_by:
            code, status = "privacy_restricted", 404
            message = "No endpoint of this model meets your data policy (ZDR / data collection)."
        elif plan.excluded_by:
            code, status = "constraint_filtered", 404
            message = "No endpoint of this model meets your routing requirements."
        else:
            code, status = "no_endpoints", 404
            message = f"No endpoints found for {models[0]!r}."
        excluded = sorted({reason.removeprefix("policy:") for reason in plan.excluded_by})
        availability = {"code": code, "retryable": False, "requested_models": models, "excluded_by": excluded}
        error_type = {404: "not_found", 403: "permission_denied"}.get(status, "invalid_request")
        return ClientError(status, message, {"error_type": error_type},
                           extra={"availability": availability})

    # -- upstream
    def build(self, attempt: router.Attempt, stream: bool):
        ep = attempt.endpoint
        payload = upstream_payload(self.body, ep, self.prefs.require_parameters)
        credential = attempt.credential if attempt.is_byok else self.state.credential(ep.api_key_env)
        if ep.api_format == "anthropic":
            return anthropic.build_request(ep.base_url, ep.upstream_model, payload, credential, stream,
                                           ep.max_completion_tokens)
        return openai.build_request(ep.base_url, ep.upstream_model, payload, credential, stream)

    async def open(self, attempt: router.Attempt, stream: bool) -> aiohttp.ClientResponse:
        """Send the request; return the response once its headers say success, else raise UpstreamError."""
        ep = attempt.endpoint
        try:
            url, headers, data = self.build(attempt, stream)
        except (TypeError, AttributeError, ValueError, KeyError) as exc:
            # A field whose shape this provider's format cannot carry: skip the endpoint, say which problem.
            raise UpstreamError(400, f"The request cannot be sent to {ep.provider_name}: a field has the wrong "
                                f"shape for its API format ({type(exc).__name__}).", retryable=True,
                                error_type="invalid_request") from None
        read_timeout = self.config["UPSTREAM_READ_TIMEOUT"]
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.config["UPSTREAM_CONNECT_TIMEOUT"],
                                        sock_read=read_timeout)
        try:
            response = await asyncio.wait_for(
                self.state.session.post(url, data=data, headers=headers, timeout=timeout),
                self.config["UPSTREAM_FIRST_BYTE_TIMEOUT"] if stream else read_timeout)
        except asyncio.TimeoutError:
            raise UpstreamError(504, f"{ep.provider_name} did not answer in time.", error_type="timeout") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(502, f"Could not reach {ep.provider_name}: {type(exc).__name__}.") from None
        if response.status >= 400:
            try:
                raw = await asyncio.wait_for(response.read(), 10)
            except (asyncio.TimeoutError, aiohttp.ClientError):
                raw = b""
            finally:
                response.release()
            message, code = openai.error_message(raw)
            error = http_error(response.status, message, response.headers.get("Retry-After"))
            error.provider_code = code
            raise error
        return response

    def log_attempt(self, attempt: router.Attempt, status: int, started: float) -> None:
        ep = attempt.endpoint
        self.attempts_log.append({
            "provider_name": ep.provider_name, "status": status, "latency": int((time.monotonic() - started) * 1000),
            "is_byok": attempt.is_byok, "endpoint_id": str(ep.id), "model_permaslug": ep.model_slug,
            "id": self.generation_id,
        })

    def final_error(self, errors: list[UpstreamError]) -> ClientError:
        last = errors[-1]
        previous = [{"provider": e[0], "code": e[1].status, "status": e[1].status} for e in self._errors_by_provider]
        metadata = {"error_type": last.error_type, "previous_errors": previous}
        if last.provider_code:
            metadata["provider_code"] = last.provider_code
        headers = []
        if last.status == 429:
            status, message = 429, last.message or "Rate limited by the provider."
            metadata["error_type"] = "rate_limit_exceeded"
            if last.retry_after:
                headers.append((b"retry-after", last.retry_after.encode()))
        elif not last.retryable or last.error_type == "invalid_request":
            status, message = last.status, last.message
        elif last.status in (504, 408):
            status, message = 504, last.message
        else:
            status = 502
            message = f"All providers failed: {last.message}" if last.status == 502 else \
                "The provider returned an error (masked)."
        return ClientError(status, message, metadata, headers)

    async def attempt_loop(self, plan: router.Plan, stream: bool):
        """Try each attempt until one answers; return (endpoint, response, first item)."""
        errors: list[UpstreamError] = []
        self._errors_by_provider = []
        for attempt in plan.attempts:
            ep = attempt.endpoint
            started = time.monotonic()
            self.in_flight = (attempt, started)
            try:
                response = await self.open(attempt, stream)
                if stream:
                    iterator = self.adapter(ep).stream_chunks(response).__aiter__()
                    try:
                        first = await asyncio.wait_for(iterator.__anext__(), self.config["UPSTREAM_FIRST_BYTE_TIMEOUT"])
                    except asyncio.TimeoutError:
                        response.close()
                        raise UpstreamError(504, f"{ep.provider_name} sent nothing in time.",
                                            error_type="timeout") from None
                    except StopAsyncIteration:
                        response.close()
                        raise UpstreamError(502, f"{ep.provider_name} sent an empty stream.") from None
                    except StreamError as exc:
                        response.close()
                        raise UpstreamError(exc.status, exc.message, retryable=True,
                                            error_type=exc.error_type) from None
                    self.log_attempt(attempt, 200, started)
                    self.in_flight = None
                    self.state.mark_success(ep.provider_slug)
                    return attempt, response, (iterator, first)
                try:
                    raw = await response.read()
                finally:
                    response.release()
                try:
                    result = self.adapter(ep).parse_response(orjson.loads(raw))
                except (orjson.JSONDecodeError, StreamError, AttributeError, TypeError):
                    raise UpstreamError(502, f"{ep.provider_name} sent an invalid answer.") from None
                self.log_attempt(attempt, 200, started)
                self.in_flight = None
                self.state.mark_success(ep.provider_slug)
                return attempt, None, result
            except UpstreamError as exc:
                self.in_flight = None
                self.log_attempt(attempt, exc.status, started)
                errors.append(exc)
                self._errors_by_provider.append((ep.provider_name, exc))
                if exc.retryable:
                    self.state.mark_failure(ep.provider_slug)
                    continue
                break
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                self.in_flight = None
                self.log_attempt(attempt, 502, started)
                err = UpstreamError(502, f"{ep.provider_name} failed: {type(exc).__name__}.")
                errors.append(err)
                self._errors_by_provider.append((ep.provider_name, err))
                self.state.mark_failure(ep.provider_slug)
        raise self.final_error(errors)

    @staticmethod
    def adapter(ep):
        return ADAPTERS[ep.api_format]

    # -- non-streaming
    async def complete(self, plan: router.Plan):
        task = asyncio.ensure_future(self.attempt_loop(plan, stream=False))
        self.on_disconnect = task.cancel
        try:
            attempt, _response, result = await task
        except ClientError as exc:
            self.settle(status="error", error=exc)
            raise
        except asyncio.CancelledError:
            if not self.disconnected:
                raise
            self.abandoned()
            return
        finally:
            self.on_disconnect = None
        self.attempt = attempt
        ep = self.endpoint = attempt.endpoint
        self.usage = result.usage
        self.finish_reason = result.finish_reason
        self.native_finish_reason = result.native_finish_reason
        self.upstream_id = result.upstream_id
        body = result.body
        body["id"] = self.generation_id
        body["object"] = "chat.completion"
        body["model"] = ep.model_slug
        body["provider"] = ep.provider_name
        body.setdefault("created", self.created)
        body.setdefault("system_fingerprint", None)
        if not self.usage:
            self.usage = self.estimated_usage(self.message_chars(body))
        self.first_token_at = time.monotonic()
        charged = self.settle(status="success")
        body["usage"] = self.public_usage(charged)
        await send_json(self.send, 200, orjson.dumps(body), [(b"x-generation-id", self.generation_id.encode())])

    @staticmethod
    def message_chars(body: dict) -> int:
        total = 0
        for choice in body.get("choices") or []:
            content = (choice.get("message") or {}).get("content")
            if isinstance(content, str):
                total += len(content)
        return total

    # -- streaming
    async def send_sse(self, data: bytes) -> None:
        if self.disconnected:
            return
        try:
            await self.send({"type": "http.response.body", "body": data, "more_body": True})
        except Exception:  # the client went away
            self.disconnected = True

    async def start_sse(self) -> None:
        if not self.response_started:
            self.response_started = True
            await self.send({"type": "http.response.start", "status": 200,
                             "headers": [*SSE_HEADERS, (b"x-generation-id", self.generation_id.encode())]})

    async def watch_disconnect(self) -> None:
        """Runs once the body is read: the next message is the client going away."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                if self.on_disconnect is not None:
                    self.on_disconnect()
                return

    def cut_in_flight(self, status: int) -> None:
        """An attempt on its way to an upstream ends here: it is logged, and its endpoint is the record's."""
        if self.in_flight is not None:
            attempt, started = self.in_flight
            self.in_flight = None
            self.log_attempt(attempt, status, started)
            self.attempt, self.endpoint = attempt, attempt.endpoint

    def abandoned(self) -> None:
        """The client left (or the server stopped the request) while an attempt was on its way."""
        self.cut_in_flight(499)
        self.settle(status="cancelled")

    async def stream(self, plan: router.Plan):
        task = asyncio.ensure_future(self.attempt_loop(plan, stream=True))
        self.on_disconnect = task.cancel
        wait = self.config["KEEPALIVE_AFTER"]
        # Waiting on the upstream: errors stay real HTTP errors until we have to start the response to
        # keep the connection alive; after that they become an in-band error chunk.
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=wait)
                if done:
                    break
                await self.start_sse()
                await self.send_sse(KEEPALIVE)
                wait = self.config["KEEPALIVE_INTERVAL"]
        except asyncio.CancelledError:
            task.cancel()
            raise
        try:
            attempt, response, (iterator, first) = task.result()
        except asyncio.CancelledError:
            if not self.disconnected:
                raise
            self.abandoned()
            return
        except ClientError as exc:
            self.settle(status="error", error=exc)
            if not self.response_started:
                raise
            await self.send_error_chunk(exc.status, exc.message, exc.metadata or {}, None)
            await self.finish_sse()
            return
        self.attempt = attempt
        ep = self.endpoint = attempt.endpoint
        await self.start_sse()
        self.on_disconnect = response.close
        if self.disconnected:
            response.close()
        error: StreamError | None = None
        try:
            await self.forward(first)
            while not self.disconnected:
                try:
                    chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                await self.forward(chunk)
        except StreamError as exc:
            if not self.disconnected:
                error = exc
        finally:
            self.on_disconnect = None
            response.close()
        if self.disconnected:
            self.settle(status="cancelled")
            return
        if error is not None:
            charged = self.settle(status="error", error=ClientError(error.status, error.message))
            metadata = {"error_type": error.error_type}
            if error.provider_code and error.status < 500:
                metadata["provider_code"] = error.provider_code
            message = error.message if error.status < 500 else "The provider returned an error mid-stream."
            await self.send_error_chunk(error.status, message, metadata, charged)
            await self.finish_sse()
            return
        charged = self.settle(status="success")
        usage_chunk = {"id": self.generation_id, "object": "chat.completion.chunk", "created": self.created,
                       "model": ep.model_slug, "provider": ep.provider_name, "choices": [],
                       "usage": self.public_usage(charged)}
        await self.send_sse(b"data: " + orjson.dumps(usage_chunk) + b"\n\n")
        await self.finish_sse()

    async def forward(self, chunk: dict) -> None:
        usage = chunk.pop("usage", None)
        if usage:
            self.usage = usage  # cumulative: the last one wins
        choices = chunk.get("choices")
        if not choices:
            if chunk.get("id") and not self.upstream_id:
                self.upstream_id = chunk["id"]
            return
        if not self.upstream_id and chunk.get("id"):
            self.upstream_id = chunk["id"]
        for choice in choices:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                if self.first_token_at is None:
                    self.first_token_at = time.monotonic()
                self.completion_chars += len(content)
            reason = choice.get("finish_reason")
            if reason:
                self.native_finish_reason = choice.get("native_finish_reason", reason)
                self.finish_reason = openai.normalize_finish(reason)
                choice["finish_reason"] = self.finish_reason
                choice["native_finish_reason"] = self.native_finish_reason
        chunk["id"] = self.generation_id
        chunk["object"] = "chat.completion.chunk"
        chunk["created"] = self.created
        chunk["model"] = self.endpoint.model_slug
        chunk["provider"] = self.endpoint.provider_name
        await self.send_sse(b"data: " + orjson.dumps(chunk) + b"\n\n")

    async def send_error_chunk(self, status: int, message: str, metadata: dict, charged) -> None:
        chunk = {"id": self.generation_id, "object": "chat.completion.chunk", "created": self.created,
                 "model": self.endpoint.model_slug if self.endpoint else (self.models[0] if self.models else ""),
                 "provider": self.endpoint.provider_name if self.endpoint else None,
                 "error": {"code": status, "message": message, "metadata": metadata},
                 "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error",
                              "native_finish_reason": self.native_finish_reason}]}
        if charged is not None:
            chunk["usage"] = self.public_usage(charged)
        await self.send_sse(b"data: " + orjson.dumps(chunk) + b"\n\n")

    async def finish_sse(self) -> None:
        await self.send_sse(b"data: [DONE]\n\n")
        if not self.disconnected:
            try:
                await self.send({"type": "http.response.body", "body": b"", "more_body": False})
            except Exception:
                self.disconnected = True

    # -- settlement
    def estimated_usage(self, completion_chars: int) -> dict:
        prompt = estimate_tokens(prompt_chars(self.body.get("messages") or []))
        completion = estimate_tokens(completion_chars) if completion_chars else 0
        if self.endpoint is not None:
            # Never more than the request could produce (what its reservation assumed): 4 characters per
            # token overestimates short words.
            completion = min(completion, admission.completion_budget(self.body, [self.endpoint]))
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "estimated": True}

    def normalized_usage(self) -> Usage:
        u = self.usage or {}
        prompt_details = u.get("prompt_tokens_details") or {}
        completion_details = u.get("completion_tokens_details") or {}
        return Usage(prompt_tokens=int(u.get("prompt_tokens") or 0),
                     completion_tokens=int(u.get("completion_tokens") or 0),
                     reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
                     cached_tokens=int(prompt_details.get("cached_tokens") or 0),
                     cache_write_tokens=int(prompt_details.get("cache_write_tokens") or 0))

    def public_usage(self, charged: Decimal) -> dict:
        usage = self.normalized_usage()
        ep = self.endpoint
        prompt_cost = completion_cost = Decimal(0)
        if ep is not None:
            completion_cost = usage.completion_tokens * ep.price_completion
            prompt_cost = self.market_cost - completion_cost - ep.price_request
        return {
            "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens,
                                      "cache_write_tokens": usage.cache_write_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "cost": float(charged), "is_byok": self.is_byok,
            "cost_details": {"upstream_inference_cost": float(self.market_cost) if self.is_byok else None,
                             "upstream_inference_prompt_cost": float(prompt_cost),
                             "upstream_inference_completions_cost": float(completion_cost)},
        }

    @property
    def is_byok(self) -> bool:
        return bool(self.attempt and self.attempt.is_byok)

    def settle(self, *, status: str, error: ClientError | None = None) -> Decimal:
        """Hand the one generation record of this request to the recorder; return what it cost."""
        if not self.attempts_log:
            return Decimal(0)  # nothing reached an upstream
        if self.settled is not None:
            return self.settled  # exactly one record per request
        self.settled = Decimal(0)
        ep = self.endpoint
        estimated = False
        if ep is not None and not self.usage:
            self.usage = self.estimated_usage(self.completion_chars)
        if self.usage and self.usage.get("estimated"):
            estimated = True
        usage = self.normalized_usage()
        total = Decimal(0)
        if ep is not None:
            total = cost(usage, prompt=ep.price_prompt, completion=ep.price_completion, request=ep.price_request,
                         cache_read=ep.price_input_cache_read, cache_write=ep.price_input_cache_write)
        self.market_cost = total
        charged = charge_for(total, self.is_byok)
        now = time.monotonic()
        body = self.body
        # --- budgets: charges the counters, then hands the record to the recorder
        admission.settle(self.state, self.reservation, {
            "id": self.generation_id,
            "organization_id": self.ctx.organization_id,
            "workspace_id": self.ctx.workspace_id,
            "api_key_id": self.ctx.key_id,
            "user_id": self.ctx.creator_id,
            "created_at": timezone.now(),
            "model": ep.model_slug if ep else (self.models[0] if self.models else ""),
            "provider_name": ep.provider_name if ep else "",
            "provider_slug": ep.provider_slug if ep else "",
            "upstream_model": ep.upstream_model if ep else "",
            "upstream_id": self.upstream_id[:200],
            "status": status,
            "error_code": error.status if error else None,
            "error_message": (error.message if error else "")[:500],
            "tokens_prompt": usage.prompt_tokens,
            "tokens_completion": usage.completion_tokens,
            "tokens_reasoning": usage.reasoning_tokens,
            "tokens_cached": usage.cached_tokens,
            "tokens_cache_write": usage.cache_write_tokens,
            "usage_estimated": estimated,
            "total_cost": total,
            "usage": charged,
            "is_byok": self.is_byok,
            "upstream_inference_cost": total if self.is_byok else None,
            "preset_id": self.preset_id,
            "latency_ms": int(((self.first_token_at or now) - self.started) * 1000),
            "generation_time_ms": int((now - (self.first_token_at or now)) * 1000),
            "streamed": bool(body.get("stream")),
            "cancelled": status == "cancelled",
            "finish_reason": self.finish_reason if status != "error" else "error",
            "native_finish_reason": self.native_finish_reason,
            "provider_responses": self.attempts_log,
            "session_id": body.get("session_id") or header(self.scope, b"x-session-id"),
            "end_user": body.get("user"),
            "http_referer": (header(self.scope, b"http-referer") or header(self.scope, b"referer") or None),
            "app_title": header(self.scope, b"x-openrouter-title") or header(self.scope, b"x-title"),
            "user_agent": (header(self.scope, b"user-agent") or "")[:500] or None,
            "trace": trace_of(body),
            "broadcast": self.ctx.broadcast,
        })
        self.settled = charged
        return charged


async def handle(state, scope, receive, send) -> None:
    if scope["method"] != "POST":
        await send_json(send, 405, error_body(405, "Use POST for /api/v1/chat/completions."),
                        [(b"allow", b"POST")])
        return
    try:
        await Completion(state, scope, receive, send).run()
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("chat completion failed")
        try:
            await send_json(send, 500, error_body(500, "Internal server error."))
        except Exception:
            pass
