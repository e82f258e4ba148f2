"""Per-process state of the proxy: caches of keys and catalog, the upstream session, provider health.

Caches are dropped whenever the config version (openrouter_ws.configversion) moves, which every change to
keys, workspaces, guardrails, budgets or the catalog causes, so every process sees a change on its very
next request. Loading runs on a small thread pool, off the event loop.
"""

import asyncio
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
from django.conf import settings
from django.db import close_old_connections

from billing.admission import Ledger
from billing.recorder import GenerationRecorder
from openrouter_ws import configversion

from . import policy as workspace_policy
from .router import EndpointInfo, Policy

HEALTH_WINDOW_SECONDS = 30.0
NEGATIVE = object()


@dataclass
class KeyContext:
    """What the proxy needs to know about an inference key, its workspace and its organization."""

    key_id: uuid.UUID
    key_hash: str
    lookup_id: str
    digest: str
    pepper_id: str
    kind: str
    name: str
    disabled: bool
    expires_at: datetime | None
    organization_id: uuid.UUID
    workspace_id: uuid.UUID | None
    creator_id: uuid.UUID | None
    default_model: str | None = None
    default_sort: str | None = None
    disabled_server_tools: list = field(default_factory=list)
    broadcast: bool = False
    policy: Policy = field(default_factory=Policy)
    filters: list = field(default_factory=list)
    byok: list = field(default_factory=list)
    presets: dict = field(default_factory=dict)


def load_key_context(lookup_id: str) -> KeyContext | None:
    from workspaces.models import ApiKey

    close_old_connections()
    key = (ApiKey.objects.select_related("organization", "workspace")
           .filter(lookup_id=lookup_id).first())
    if key is None:
        return None
    ws = key.workspace
    resolved = workspace_policy.load(key)
    broadcast = bool(ws and ws.is_observability_broadcast_enabled and ws.destinations.filter(enabled=True).exists())
    return KeyContext(
        key_id=key.id, key_hash=key.hash, lookup_id=key.lookup_id, digest=key.digest, pepper_id=key.pepper_id,
        kind=key.kind, name=key.name, disabled=key.disabled, expires_at=key.expires_at,
        organization_id=key.organization_id, workspace_id=key.workspace_id, creator_id=key.created_by_id,
        default_model=ws.default_text_model if ws else None, default_sort=ws.default_provider_sort if ws else None,
        disabled_server_tools=list(ws.disabled_server_tools or []) if ws else [], broadcast=broadcast,
        policy=resolved.routing, filters=resolved.filters, byok=resolved.byok, presets=resolved.presets,
    )


def load_catalog_snapshot() -> dict[str, list[EndpointInfo]]:
    from .models import Endpoint

    close_old_connections()
    catalog: dict[str, list[EndpointInfo]] = {}
    for ep in Endpoint.objects.select_related("model", "provider").filter(is_enabled=True):
        catalog.setdefault(ep.model.slug, []).append(EndpointInfo(
            id=ep.id, model_slug=ep.model.slug, provider_slug=ep.provider.slug, provider_name=ep.provider.name,
            base_url=ep.provider.base_url.rstrip("/"), api_format=ep.provider.api_format,
            api_key_env=ep.provider.api_key_env, upstream_model=ep.upstream_model,
            price_prompt=ep.price_prompt, price_completion=ep.price_completion, price_request=ep.price_request,
            price_input_cache_read=ep.price_input_cache_read, price_input_cache_write=ep.price_input_cache_write,
            max_completion_tokens=ep.max_completion_tokens,
            context_length=ep.context_length or ep.model.context_length or None,
            supported_parameters=frozenset(ep.supported_parameters or []),
            data_collection=ep.provider.data_collection, zdr=ep.provider.zdr, quantization=ep.quantization,
        ))
    return catalog


class GatewayState:
    def __init__(self):
        self.session: aiohttp.ClientSession | None = None
        self.readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gateway-reader")
        self.recorder = GenerationRecorder()
        self.ledger = Ledger(self)  # budgets, limits and credits: billing.admission
        self.version = object()
        self.keys: dict[str, object] = {}
        self.catalog: dict[str, list[EndpointInfo]] | None = None
        self.failures: dict[str, float] = {}
        self._catalog_lock: asyncio.Lock | None = None
        self._key_loads: dict[str, asyncio.Future] = {}
        self.config = settings.GATEWAY

    async def start(self):
        if self.session is None:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=30)
            self.session = aiohttp.ClientSession(connector=connector, auto_decompress=True,
                                                 timeout=aiohttp.ClientTimeout(total=None))
            self._catalog_lock = asyncio.Lock()
            self.recorder.start()

    async def stop(self):
        await self.ledger.flush()  # settlements in flight hand their records to the recorder
        await self.recorder.flush()
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def refresh(self) -> None:
        """Drop every cache if the configuration changed since we last looked."""
        version = await configversion.current()
        if version != self.version:
            self.version = version
            self.keys.clear()
            self.catalog = None

    async def key_context(self, lookup_id: str) -> KeyContext | None:
        cached = self.keys.get(lookup_id)
        if cached is not None:
            ctx, loaded_at = cached
            if time.monotonic() - loaded_at < self.config["AUTH_CACHE_SECONDS"]:
                return None if ctx is NEGATIVE else ctx
        pending = self._key_loads.get(lookup_id)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = loop.run_in_executor(self.readers, load_key_context, lookup_id)
            self._key_loads[lookup_id] = pending
            try:
                ctx = await pending
            finally:
                self._key_loads.pop(lookup_id, None)
            self.keys[lookup_id] = (NEGATIVE if ctx is None else ctx, time.monotonic())
            return ctx
        return await pending

    async def catalog_snapshot(self) -> dict[str, list[EndpointInfo]]:
        if self.catalog is None:
            async with self._catalog_lock:
                if self.catalog is None:
                    loop = asyncio.get_running_loop()
                    self.catalog = await loop.run_in_executor(self.readers, load_catalog_snapshot)
        return self.catalog

    def unhealthy(self) -> set[str]:
        now = time.monotonic()
        return {slug for slug, at in self.failures.items() if now - at < HEALTH_WINDOW_SECONDS}

    def mark_failure(self, provider_slug: str) -> None:
        self.failures[provider_slug] = time.monotonic()

    def mark_success(self, provider_slug: str) -> None:
        self.failures.pop(provider_slug, None)

    @staticmethod
    def credential(env_name: str) -> str | None:
        return os.environ.get(env_name) if env_name else None
