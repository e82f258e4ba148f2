"""The workspace policy of a key, resolved once per key and cached with it: guardrails combined with the
account's privacy settings, content filters, BYOK credentials and presets. Loaded on a worker thread."""

import logging
import re

import regex
from dataclasses import dataclass, field

from .router import ByokCredential, Policy

logger = logging.getLogger(__name__)
ZDR_GROUPS = ("anthropic", "openai", "google", "xai", "other")
BUILTIN_PATTERNS = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "phone": r"(?<!\d)(?:\+?\d{1,3}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]?\d{4}(?!\d)",
    "ssn": r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)",
    "credit-card": r"(?<!\d)(?:\d[ -]?){13,16}(?!\d)",
    "ip-address": r"(?<!\d)(?:\d{1,3}\.){3}\d{1,3}(?!\d)",
    "secrets": r"(?:sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{36})",
    "regex-prompt-injection": r"(?i)ignore (?:all )?(?:the )?previous instructions",
}


# A content filter that takes longer than this on one text blocks the request instead of stalling the server.
FILTER_TIMEOUT_SECONDS = 0.05


@dataclass(frozen=True)
class ContentFilter:
    regex: regex.Pattern
    action: str  # block | redact | flag
    label: str


@dataclass(frozen=True)
class PresetConfig:
    id: str
    config: dict
    system_prompt: str | None


@dataclass
class WorkspacePolicy:
    routing: Policy = field(default_factory=Policy)
    filters: list[ContentFilter] = field(default_factory=list)
    byok: list[ByokCredential] = field(default_factory=list)
    presets: dict[str, PresetConfig] = field(default_factory=dict)


def _intersect(current: set | None, allowed) -> set | None:
    if allowed is None:
        return current
    allowed = set(allowed)
    return allowed if current is None else current & allowed


def guardrails_for(api_key) -> list:
    """The guardrails that apply to a key: the workspace default, its creator's, its own."""
    from workspaces.models import Guardrail, GuardrailKeyAssignment, GuardrailMemberAssignment

    found = []
    if api_key.workspace_id:
        default = Guardrail.objects.filter(id=api_key.workspace.default_guardrail_id).first()
        if default is not None:
            found.append(default)
    if api_key.created_by_id:
        member = (GuardrailMemberAssignment.objects.select_related("guardrail")
                  .filter(organization_id=api_key.organization_id, user_id=api_key.created_by_id).first())
        if member is not None:
            found.append(member.guardrail)
    own = GuardrailKeyAssignment.objects.select_related("guardrail").filter(api_key=api_key).first()
    if own is not None:
        found.append(own.guardrail)
    return found


def combine(org, guardrails, default_sort=None) -> Policy:
    """Allow-lists intersect, ignore-lists and ZDR requirements add up: a guardrail only narrows the account."""
    allowed_models = set(org.allowed_models) if org.allowed_models is not None else None
    allowed_providers = set(org.allowed_providers) if org.allowed_providers is not None else None
    ignored_models = set(org.ignored_models or [])
    ignored_providers = set(org.ignored_providers or [])
    zdr = bool(org.enforce_zdr)
    zdr_groups: set[str] = set()
    deny = bool(org.deny_data_collection)
    for guardrail in guardrails:
        allowed_models = _intersect(allowed_models, guardrail.allowed_models)
        allowed_providers = _intersect(allowed_providers, guardrail.allowed_providers)
        ignored_models |= set(guardrail.ignored_models or [])
        ignored_providers |= set(guardrail.ignored_providers or [])
        for group in ZDR_GROUPS:
            specific = getattr(guardrail, f"enforce_zdr_{group}")
            if specific if specific is not None else guardrail.enforce_zdr:
                zdr_groups.add(group)
        if guardrail.enable_paid_model_training is False:
            deny = True
    return Policy(allowed_models=allowed_models, ignored_models=ignored_models,
                  allowed_providers=allowed_providers, ignored_providers=ignored_providers, zdr=zdr,
                  zdr_groups=frozenset(zdr_groups), deny_data_collection=deny, default_sort=default_sort)


def content_filters(guardrails) -> list[ContentFilter]:
    filters = []
    for guardrail in guardrails:
        for item in guardrail.content_filters or []:
            try:
                filters.append(ContentFilter(regex.compile(item["pattern"]), item.get("action", "block"),
                                             item.get("label") or item["pattern"][:100]))
            except (regex.error, KeyError, TypeError):
                logger.warning("guardrail %s has an unusable content filter; skipped", guardrail.id)
        for item in guardrail.content_filter_builtins or []:
            pattern = BUILTIN_PATTERNS.get(item.get("slug"))
            if pattern:
                filters.append(ContentFilter(regex.compile(pattern), item.get("action", "block"),
                                             item.get("label") or item["slug"]))
    return filters


def byok_credentials(api_key) -> list[ByokCredential]:
    from django.db.models import Q

    from workspaces.models import ByokKey
    from workspaces.policy_services import byok_plaintext

    rows = ByokKey.objects.filter(Q(workspace_id=api_key.workspace_id) | Q(workspace__isnull=True),
                                  organization_id=api_key.organization_id, disabled=False)
    creds = []
    for row in rows:
        if row.allowed_api_key_hashes is not None and api_key.hash not in row.allowed_api_key_hashes:
            continue
        if row.allowed_user_ids is not None and str(api_key.created_by_id) not in map(str, row.allowed_user_ids):
            continue
        try:
            secret = byok_plaintext(row)
        except Exception:
            logger.warning("BYOK key %s cannot be decrypted with the configured keys; skipped", row.id)
            continue
        creds.append(ByokCredential(
            id=str(row.id), provider_slug=row.provider, credential=secret, sort_order=row.sort_order,
            is_fallback=row.is_fallback, is_required=row.is_required, is_byok_only=row.is_byok_only,
            allowed_models=frozenset(row.allowed_models) if row.allowed_models is not None else None,
            declared_zdr=bool(row.declared_zdr)))
    return creds


def presets(workspace_id) -> dict[str, PresetConfig]:
    from workspaces.models import Preset, PresetStatus

    found = {}
    for preset in (Preset.objects.select_related("designated_version")
                   .filter(workspace_id=workspace_id, status=PresetStatus.ACTIVE)):
        version = preset.designated_version or preset.versions.order_by("-version").first()
        if version is not None:
            found[preset.slug] = PresetConfig(str(preset.id), dict(version.config or {}), version.system_prompt)
    return found


def load(api_key) -> WorkspacePolicy:
    guardrails = guardrails_for(api_key)
    ws = api_key.workspace
    return WorkspacePolicy(
        routing=combine(api_key.organization, guardrails, ws.default_provider_sort if ws else None),
        filters=content_filters(guardrails),
        byok=byok_credentials(api_key) if api_key.workspace_id else [],
        presets=presets(api_key.workspace_id) if api_key.workspace_id else {},
    )


# --- applying it to a request -----------------------------------------------------------------------------

PRESET_RE = re.compile(r"^(?P<model>[^@]*)@preset/(?P<slug>[a-z0-9-]+)$")


def preset_reference(body: dict) -> tuple[str | None, str | None]:
    """(slug, model) from `model: "@preset/x"`, `model: "a/b@preset/x"` or `preset: "x"`."""
    model = body.get("model")
    if isinstance(model, str):
        match = PRESET_RE.match(model)
        if match:
            return match["slug"], match["model"] or None
    preset = body.get("preset")
    if isinstance(preset, str) and preset:
        return preset, model
    return None, model


def apply_preset(body: dict, preset: PresetConfig, model: str | None) -> dict:
    """Request fields shallow-override the preset's; tools are a union where the request wins by name."""
    merged = {**preset.config, **{k: v for k, v in body.items() if k not in ("preset",)}}
    merged["model"] = model or preset.config.get("model")
    if model is None and not merged["model"]:
        merged.pop("model")
    preset_tools = preset.config.get("tools") or []
    request_tools = body.get("tools") or []
    if preset_tools and request_tools:
        def identity(tool):
            return ((tool.get("function") or {}).get("name") or tool.get("type")) if isinstance(tool, dict) else None
        names = {identity(t) for t in request_tools}
        merged["tools"] = [t for t in preset_tools if identity(t) not in names] + list(request_tools)
    messages = list(body.get("messages") or [])
    if preset.system_prompt and not any(m.get("role") in ("system", "developer") for m in messages):
        messages.insert(0, {"role": "system", "content": preset.system_prompt})
    merged["messages"] = messages
    return merged


def message_texts(message: dict):
    content = message.get("content")
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def run_filters(body: dict, filters: list[ContentFilter]) -> tuple[list[str], bool]:
    """(labels of blocking matches, whether anything was redacted); redacts in place."""
    blocked, redacted = [], False
    for message in body.get("messages") or []:
        if message.get("role") not in ("user", "system", "developer", "tool", "assistant"):
            continue
        for f in filters:
            for text in message_texts(message):
                try:
                    if not f.regex.search(text, timeout=FILTER_TIMEOUT_SECONDS):
                        continue
                except TimeoutError:
                    blocked.append(f"{f.label} (too slow to check)")
                    continue
                if f.action == "block":
                    blocked.append(f.label)
                elif f.action == "redact":
                    redacted = True
                    try:
                        _redact(message, f.regex)
                    except TimeoutError:
                        blocked.append(f"{f.label} (too slow to check)")
    return sorted(set(blocked)), redacted


def _redact(message: dict, pattern: regex.Pattern) -> None:
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = pattern.sub("[REDACTED]", content, timeout=FILTER_TIMEOUT_SECONDS)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                part["text"] = pattern.sub("[REDACTED]", part["text"], timeout=FILTER_TIMEOUT_SECONDS)
