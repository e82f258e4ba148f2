"""Per-workspace policy: guardrails and their assignments, BYOK keys, presets, observability destinations.

Each write is one atomic `verb_noun` function: it locks the parent row, validates what only the domain
knows (the API's serializers check types first), writes, records the audit entry in the same
transaction and queues side effects after commit. A refusal raises `PolicyError` naming the field.
"""

import json
import re
import re._constants as sre_constants
import re._parser as sre_parser
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from openrouter_ws import configversion

from . import audit, crypto
from .models import (SLUG_RE, ApiKey, ByokKey, Guardrail, GuardrailKeyAssignment, GuardrailMemberAssignment,
                     KeyKind, Membership, ObservabilityDestination, Organization, Preset, PresetVersion, User,
                     Workspace)
from .services import ServiceError


class PolicyError(ServiceError, ValueError):
    """A request the domain refuses; `field` names the offending input for a 400."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message, field, status)


class PolicyNotFound(PolicyError):
    """An id that does not exist in the caller's organization (a 404, never a hint it exists elsewhere)."""

    def __init__(self, message: str):
        super().__init__(message, None, 404)


# --- actors and audit -------------------------------------------------------------------------------------

def actor_user(actor) -> User | None:
    """The person behind an API caller (a key's creator) or a dashboard user."""
    if actor is None:
        return None
    if getattr(actor, "api_key", None) is not None:
        return actor.user
    return actor if isinstance(actor, User) else None


def actor_creator_id(actor) -> str:
    """PresetVersion.creator_id: a user id, else `key:<hash>` for a key nobody is recorded as creating."""
    user = actor_user(actor)
    if user is not None:
        return str(user.pk)
    api_key = getattr(actor, "api_key", None)
    return f"key:{api_key.hash}" if api_key is not None else "system"


def _audit(actor, **kwargs) -> None:
    if actor is None:
        audit.record(**kwargs)
    else:
        audit.record_for_request_actor(actor, **kwargs)


def _bump_config_after_commit() -> None:
    # Bulk updates send no model signals; the proxy must still drop its cached policy.
    transaction.on_commit(configversion.bump)


def _changes(obj, data: dict, fields) -> dict:
    """{field: [old, new]} for the fields in `data` whose value differs."""
    out = {}
    for name in fields:
        if name in data and getattr(obj, name) != data[name]:
            out[name] = [getattr(obj, name), data[name]]
    return out


# --- masking ---------------------------------------------------------------------------------------------

def mask_secret(value: str) -> str:
    """`sk-l...AbCd`: enough to recognize a credential, never enough to use it."""
    if not isinstance(value, str) or len(value) < 16:
        return "********"
    return f"{value[:4]}...{value[-4:]}"


def mask_byok_key(key: str) -> str:
    """`sk-...AbCd`: the key's type prefix (up to the first hyphen) and its last four characters."""
    if len(key) < 12:
        return "..." if len(key) < 8 else f"...{key[-2:]}"
    head, dash, _rest = key.partition("-")
    prefix = f"{head}-" if dash and 0 < len(head) <= 6 else key[:3]
    return f"{prefix}...{key[-4:]}"


# --- shared validation --------------------------------------------------------------------------------------

REGIONS = ("global", "europe", "us")
MAX_REGEX_LENGTH = 100_000
_FORBIDDEN_AT = {sre_constants.AT_BEGINNING_STRING: r"\A", sre_constants.AT_END_STRING: r"\Z"}


def _walk_regex(items, inside_repeat: bool) -> str | None:
    for op, av in items:
        if op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            return "lookahead and lookbehind assertions are not allowed"
        if op in (sre_constants.GROUPREF, sre_constants.GROUPREF_EXISTS):
            return "backreferences are not allowed"
        if op is sre_constants.ATOMIC_GROUP or op is sre_constants.POSSESSIVE_REPEAT:
            return "atomic groups and possessive quantifiers are not JavaScript regex syntax"
        if op is sre_constants.AT and av in _FORBIDDEN_AT:
            return f"{_FORBIDDEN_AT[av]} is not JavaScript regex syntax (use ^ and $)"
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            _low, high, body = av
            repeats = high > 1
            if inside_repeat and repeats:
                # (a+)+ and friends backtrack exponentially on a near-miss.
                return "nested quantifiers are not allowed"
            reason = _walk_regex(body, inside_repeat or repeats)
        elif op is sre_constants.SUBPATTERN:
            _group, add_flags, del_flags, body = av
            if add_flags or del_flags:
                return "inline flags such as (?i) are not JavaScript regex syntax"
            reason = _walk_regex(body, inside_repeat)
        elif op is sre_constants.BRANCH:
            reason = next((r for b in av[1] if (r := _walk_regex(b, inside_repeat))), None)
        else:
            reason = None
        if reason:
            return reason
    return None


def regex_problem(pattern) -> str | None:
    """Why a content-filter pattern is refused, or None. Accepts what both JavaScript and Python's `re`
    understand, minus the constructs that make matching slow or unpredictable."""
    if not isinstance(pattern, str) or not pattern:
        return "the pattern must be a non-empty string"
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"the pattern is longer than {MAX_REGEX_LENGTH:,} characters"
    try:
        parsed = sre_parser.parse(pattern)
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        detail = exc.msg if isinstance(exc, re.error) else "the pattern is too deeply nested"
        return f"it does not compile: {detail}"
    if parsed.state.groupdict:
        return "named groups (?P<name>...) are Python-only syntax; use (...) or (?:...)"
    if parsed.state.flags & ~sre_constants.SRE_FLAG_UNICODE:
        return "inline flags such as (?i) are not JavaScript regex syntax"
    try:
        return _walk_regex(parsed, False)
    except RecursionError:
        return "the pattern is too deeply nested"


def check_regex(pattern, field_name: str) -> None:
    problem = regex_problem(pattern)
    if problem:
        raise PolicyError(f"invalid_regex_pattern: {problem}", field_name)


def check_key_hashes(organization: Organization, hashes, field_name: str, *, allow_management: bool = True):
    """The organization's keys with these public hashes; any other hash is a 400 naming it."""
    wanted = list(dict.fromkeys(hashes))
    found = {k.hash: k for k in ApiKey.objects.filter(organization=organization, hash__in=wanted)}
    unknown = [h for h in wanted if h not in found]
    if unknown:
        raise PolicyError(f"unknown API key hash(es) for this organization: {', '.join(unknown[:10])}", field_name)
    if not allow_management:
        management = [h for h, k in found.items() if k.kind == KeyKind.MANAGEMENT]
        if management:
            raise PolicyError(f"management keys cannot take a guardrail: {', '.join(management[:10])}", field_name)
    return [found[h] for h in wanted]


def check_member_ids(organization: Organization, user_ids, field_name: str) -> list[str]:
    """Ids of members of the organization, as strings; anything else is a 400 naming it."""
    wanted = list(dict.fromkeys(str(u) for u in user_ids))
    bad = [u for u in wanted if not _is_uuid(u)]
    if bad:
        raise PolicyError(f"not user ids: {', '.join(bad[:10])}", field_name)
    members = {str(u) for u in Membership.objects.filter(organization=organization, user_id__in=wanted)
               .values_list("user_id", flat=True)}
    unknown = [u for u in wanted if u not in members]
    if unknown:
        raise PolicyError(f"not members of this organization: {', '.join(unknown[:10])}", field_name)
    return wanted


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def _check_nonempty_list(data: dict, name: str) -> None:
    if name in data and data[name] is not None and len(data[name]) == 0:
        raise PolicyError("must contain at least one item, or be null for no restriction", name)


# --- guardrails ---------------------------------------------------------------------------------------------

GUARDRAIL_FIELDS = (
    "name", "description", "limit_usd", "reset_interval", "include_byok_in_budgets",
    "allowed_models", "ignored_models", "allowed_providers", "ignored_providers",
    "enforce_zdr", "enforce_zdr_anthropic", "enforce_zdr_openai", "enforce_zdr_google", "enforce_zdr_xai",
    "enforce_zdr_other", "allow_safety_retention_google", "allow_safety_retention_other",
    "enable_free_model_publication", "enable_free_model_training", "enable_paid_model_training",
    "allowed_data_regions", "content_filters", "content_filter_builtins",
)
ZDR_PROVIDER_FIELDS = ("enforce_zdr_anthropic", "enforce_zdr_openai", "enforce_zdr_google", "enforce_zdr_xai",
                       "enforce_zdr_other")
BUILTIN_FILTERS = {
    "email": "Email address", "phone": "Phone number", "ssn": "Social security number",
    "credit-card": "Credit card number", "ip-address": "IP address", "secrets": "Secret or credential",
    "person-name": "Person name", "address": "Postal address", "regex-prompt-injection": "Prompt injection",
}
FILTER_ACTIONS = ("redact", "block", "flag")


def default_guardrail_name(workspace: Workspace) -> str:
    return f"Workspace {workspace.id} Default"


def virtual_default_guardrail(workspace: Workspace) -> Guardrail:
    """The default guardrail of a workspace before anyone wrote it: unsaved, and enforcing nothing."""
    return Guardrail(id=workspace.default_guardrail_id, organization_id=workspace.organization_id,
                     workspace=workspace, is_workspace_default=True, name=default_guardrail_name(workspace),
                     created_at=workspace.created_at, updated_at=None)


def get_guardrail(organization: Organization, guardrail_id) -> Guardrail:
    """A guardrail of the organization, or a workspace's default guardrail (virtual until first written)."""
    if not _is_uuid(guardrail_id):
        raise PolicyNotFound(f"Guardrail {guardrail_id} not found.")
    wanted = uuid.UUID(str(guardrail_id))
    found = Guardrail.objects.filter(organization=organization, id=wanted).select_related("workspace").first()
    if found is not None:
        return found
    for workspace in Workspace.objects.filter(organization=organization):
        if workspace.default_guardrail_id == wanted:
            return virtual_default_guardrail(workspace)
    raise PolicyNotFound(f"Guardrail {guardrail_id} not found.")


@transaction.atomic
def get_or_materialize_default_guardrail(workspace: Workspace) -> Guardrail:
    """The row of the workspace's default guardrail, created (empty) on first write."""
    Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
    guardrail = Guardrail.objects.filter(id=workspace.default_guardrail_id).first()
    if guardrail is None:
        guardrail = virtual_default_guardrail(workspace)
        guardrail.created_at = timezone.now()
        guardrail.save(force_insert=True)
    return guardrail


def _clean_content_filters(filters) -> list | None:
    if filters is None:
        return None
    cleaned = []
    for index, entry in enumerate(filters):
        check_regex(entry.get("pattern"), f"content_filters[{index}].pattern")
        if entry.get("action") not in FILTER_ACTIONS:
            raise PolicyError(f"must be one of {', '.join(FILTER_ACTIONS)}", f"content_filters[{index}].action")
        item = {"pattern": entry["pattern"], "action": entry["action"]}
        if entry.get("label") is not None:
            item["label"] = entry["label"]
        cleaned.append(item)
    return cleaned


def _clean_builtins(builtins) -> list | None:
    if builtins is None:
        return None
    cleaned, seen = [], set()
    for index, entry in enumerate(builtins):
        slug = entry.get("slug")
        if slug not in BUILTIN_FILTERS:
            raise PolicyError(f"unknown builtin filter; one of {', '.join(BUILTIN_FILTERS)}",
                              f"content_filter_builtins[{index}].slug")
        if slug in seen:
            raise PolicyError(f"builtin filter {slug} is listed twice", f"content_filter_builtins[{index}].slug")
        seen.add(slug)
        if entry.get("action") not in FILTER_ACTIONS:
            raise PolicyError(f"must be one of {', '.join(FILTER_ACTIONS)}",
                              f"content_filter_builtins[{index}].action")
        # Labels are system-assigned: a caller's label is accepted and ignored, as the reference says.
        item = {"slug": slug, "action": entry["action"], "label": BUILTIN_FILTERS[slug]}
        if slug == "regex-prompt-injection":
            scope = entry.get("scan_scope") or "all_messages"
            if scope not in ("user_only", "all_messages"):
                raise PolicyError("must be user_only or all_messages",
                                  f"content_filter_builtins[{index}].scan_scope")
            item["scan_scope"] = scope
        cleaned.append(item)
    return cleaned


def _clean_guardrail_data(data: dict) -> dict:
    data = {k: v for k, v in data.items() if k in GUARDRAIL_FIELDS}
    if "enforce_zdr" in data:
        # The deprecated umbrella fills the per-provider flags the request did not set itself.
        for name in ZDR_PROVIDER_FIELDS:
            data.setdefault(name, data["enforce_zdr"])
    if "content_filters" in data:
        data["content_filters"] = _clean_content_filters(data["content_filters"])
    if "content_filter_builtins" in data:
        data["content_filter_builtins"] = _clean_builtins(data["content_filter_builtins"])
    if data.get("allowed_data_regions") is not None:
        if not data["allowed_data_regions"]:
            raise PolicyError("an empty list would refuse every request; use null for no restriction",
                              "allowed_data_regions")
        data["allowed_data_regions"] = list(dict.fromkeys(data["allowed_data_regions"]))
    if "name" in data and not (data["name"] or "").strip():
        raise PolicyError("must not be blank", "name")
    return data


def _check_limit_pair(limit_usd, reset_interval) -> None:
    if (limit_usd is None) != (reset_interval is None):
        raise PolicyError("limit_usd and reset_interval must be set together (or both null)",
                          "limit_usd" if limit_usd is None else "reset_interval")


@transaction.atomic
def create_guardrail(*, actor, organization: Organization, workspace: Workspace, data: dict) -> Guardrail:
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    data = _clean_guardrail_data(data)
    _check_limit_pair(data.get("limit_usd"), data.get("reset_interval"))
    now = timezone.now()
    guardrail = Guardrail.objects.create(organization=organization, workspace=workspace,
                                         created_by=actor_user(actor), created_at=now, updated_at=now, **data)
    _audit(actor, organization=organization, action="create", obj=guardrail,
           changes={"workspace_id": str(workspace.id), **data})
    return guardrail


@transaction.atomic
def update_guardrail(*, actor, guardrail: Guardrail, data: dict) -> Guardrail:
    """Change only the fields given. A workspace's default guardrail is materialized by its first update."""
    if guardrail.is_workspace_default and guardrail._state.adding:
        guardrail = get_or_materialize_default_guardrail(guardrail.workspace)
    guardrail = Guardrail.objects.select_for_update().get(pk=guardrail.pk)
    data = _clean_guardrail_data(data)
    _check_limit_pair(data.get("limit_usd", guardrail.limit_usd), data.get("reset_interval", guardrail.reset_interval))
    changes = _changes(guardrail, data, GUARDRAIL_FIELDS)
    for name, value in data.items():
        setattr(guardrail, name, value)
    guardrail.updated_at = timezone.now()
    guardrail.save()
    _audit(actor, organization=guardrail.organization, action="update", obj=guardrail, changes=changes)
    return guardrail


@transaction.atomic
def delete_guardrail(*, actor, guardrail: Guardrail) -> None:
    """Delete a guardrail and its assignments. Deleting a workspace default resets it to the empty default."""
    if guardrail._state.adding:
        return  # a default guardrail never written: already empty
    guardrail = Guardrail.objects.select_for_update().get(pk=guardrail.pk)
    _audit(actor, organization=guardrail.organization, action="delete", obj=guardrail,
           changes={"name": guardrail.name})
    guardrail.delete()


def _check_assignable(guardrail: Guardrail) -> None:
    if guardrail.is_workspace_default:
        raise PolicyError("a workspace's default guardrail applies to all of its traffic and takes no "
                          "assignments; assign another guardrail", "id")


@transaction.atomic
def assign_keys_to_guardrail(*, actor, guardrail: Guardrail, key_hashes) -> int:
    """Assign keys to the guardrail, moving each from any guardrail it had (a key has at most one).
    Returns how many keys were newly assigned here."""
    _check_assignable(guardrail)
    guardrail = Guardrail.objects.select_for_update().get(pk=guardrail.pk)
    api_keys = check_key_hashes(guardrail.organization, key_hashes, "key_hashes", allow_management=False)
    locked = list(ApiKey.objects.select_for_update().filter(pk__in=[k.pk for k in api_keys]))
    existing = {a.api_key_id: a for a in GuardrailKeyAssignment.objects.filter(api_key__in=locked)}
    by_user, now, assigned = actor_user(actor), timezone.now(), []
    for api_key in locked:
        current = existing.get(api_key.pk)
        if current is not None and current.guardrail_id == guardrail.pk:
            continue
        if current is not None:
            current.guardrail, current.assigned_by, current.created_at = guardrail, by_user, now
            current.save()
        else:
            GuardrailKeyAssignment.objects.create(guardrail=guardrail, api_key=api_key, assigned_by=by_user,
                                                  created_at=now)
        assigned.append(api_key.hash)
    if assigned:
        _audit(actor, organization=guardrail.organization, action="update", obj=guardrail,
               changes={"assigned_keys": assigned})
    return len(assigned)


@transaction.atomic
def unassign_keys_from_guardrail(*, actor, guardrail: Guardrail, key_hashes) -> int:
    if guardrail._state.adding:
        return 0
    guardrail = Guardrail.objects.select_for_update().get(pk=guardrail.pk)
    api_keys = check_key_hashes(guardrail.organization, key_hashes, "key_hashes")
    assignments = GuardrailKeyAssignment.objects.filter(guardrail=guardrail, api_key__in=api_keys)
    removed = list(assignments.values_list("api_key__hash", flat=True))
    assignments.delete()
    if removed:
        _audit(actor, organization=guardrail.organization, action="update", obj=guardrail,
               changes={"unassigned_keys": removed})
    return len(removed)


@transaction.atomic
def assign_members_to_guardrail(*, actor, guardrail: Guardrail, user_ids) -> int:
    """Assign members, moving each from any guardrail they had (a member has at most one)."""
    _check_assignable(guardrail)
    guardrail = Guardrail.objects.select_for_update().get(pk=guardrail.pk)
    organization = guardrail.organization
    ids = check_member_ids(organization, user_ids, "member_user_ids")
    list(Membership.objects.select_for_update().filter(organization=organization, user_id__in=ids))
    existing = {str(a.user_id): a for a in
                GuardrailMemberAssignment.objects.filter(organization=organization, user_id__in=ids)}
    by_user, now, assigned = actor_user(actor), timezone.now(), []
    for user_id in ids:
        current = existing.get(user_id)
        if current is not None and current.guardrail_id == guardrail.pk:
            continue
        if current is not None:
            current.guardrail, current.assigned_by, current.created_at = guardrail, by_user, now
            current.save()
        else:
            GuardrailMemberAssignment.objects.create(guardrail=guardrail, organization=organization,
                                                     user_id=user_id, assigned_by=by_user, created_at=now)
        assigned.append(user_id)
    if assigned:
        _audit(actor, organization=organization, action="update", obj=guardrail,
               changes={"assigned_members": assigned})
    return len(assigned)


@transaction.atomic
def unassign_members_from_guardrail(*, actor, guardrail: Guardrail, user_ids) -> int:
    if guardrail._state.adding:
        return 0
    guardrail = Guardrail.objects.select_for_update().get(pk=guardrail.pk)
    ids = check_member_ids(guardrail.organization, user_ids, "member_user_ids")
    assignments = GuardrailMemberAssignment.objects.filter(guardrail=guardrail, user_id__in=ids)
    removed = [str(u) for u in assignments.values_list("user_id", flat=True)]
    assignments.delete()
    if removed:
        _audit(actor, organization=guardrail.organization, action="update", obj=guardrail,
               changes={"unassigned_members": removed})
    return len(removed)


# --- BYOK keys ------------------------------------------------------------------------------------------------

# Provider slugs OpenRouter documents for BYOK, accepted even before the catalog lists the provider, so a
# credential can be stored first and the provider loaded later. Any slug of the loaded catalog is accepted too.
WELL_KNOWN_BYOK_PROVIDERS = frozenset("""
ai21 aion-labs akashml alibaba amazon-bedrock amazon-bedrock/claude-on-aws amazon-nova ambient anthropic
anthropic/2 arcee-ai assemblyai atlas-cloud avian azure baidu baseten black-forest-labs byteplus cerebras chutes
cirrascale clarifai claude-on-aws cloudflare cohere coreweave cosine crusoe darkbloom databricks decart deepgram
deepinfra deepseek dekallm digitalocean elevenlabs featherless fireworks fish-audio friendli gmicloud
google-ai-studio google-vertex groq heygen inception inceptron inferact-vllm inference-net infermatic inflection
io-net ionstream krea liquid makora mancer mara meta minimax mistral modal modelrun modular moonshotai morph
near-ai nebius nex-agi nextbit novita nvidia ollama open-inference openai parasail pareto-alpha perceptron
perplexity phala poolside primeintellect quiver recraft recursive reka relace respan runway sail-research sakana
sakana-ai sambanova scaledown seed siliconflow sourceful stepfun streamlake switchpoint tencent tenstorrent
thinkingmachines together typesafe unbiased upstage venice voyageai wafer wandb wandb-legacy xai xiaomi z-ai
""".split())
BYOK_FIELDS = ("name", "disabled", "is_fallback", "is_required", "is_byok_only", "allowed_models",
               "allowed_api_key_hashes", "allowed_user_ids", "declared_region", "declared_zdr")
MAX_BYOK_KEY_LENGTH = 20_000


def is_known_provider(slug: str) -> bool:
    from routing.models import Provider

    return slug in WELL_KNOWN_BYOK_PROVIDERS or Provider.objects.filter(slug=slug).exists()


def _clean_provider_key(key) -> str:
    if not isinstance(key, str) or not key.strip():
        raise PolicyError("must be a non-empty string", "key")
    key = key.strip()
    if len(key) > MAX_BYOK_KEY_LENGTH:
        raise PolicyError(f"is longer than {MAX_BYOK_KEY_LENGTH:,} characters", "key")
    return key


def _clean_byok_data(organization: Organization, data: dict) -> dict:
    data = {k: v for k, v in data.items() if k in BYOK_FIELDS}
    for name in ("allowed_models", "allowed_api_key_hashes", "allowed_user_ids"):
        _check_nonempty_list(data, name)
        if data.get(name) is not None:
            data[name] = list(dict.fromkeys(data[name]))
    if data.get("allowed_api_key_hashes") is not None:
        check_key_hashes(organization, data["allowed_api_key_hashes"], "allowed_api_key_hashes")
    if data.get("allowed_user_ids") is not None:
        data["allowed_user_ids"] = check_member_ids(organization, data["allowed_user_ids"], "allowed_user_ids")
    if "name" in data and data["name"] is None:
        data["name"] = ""
    return data


def _check_byok_flags(is_byok_only: bool, is_fallback: bool) -> None:
    if is_byok_only and is_fallback:
        raise PolicyError("is_byok_only cannot be combined with is_fallback: a BYOK-only provider has no "
                          "shared capacity to fall back from", "is_byok_only")


@transaction.atomic
def create_byok_key(*, actor, organization: Organization, workspace: Workspace | None, provider: str, key: str,
                    data: dict) -> ByokKey:
    """Store a provider credential (encrypted), last in its provider's order. `workspace` None: global."""
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    if not is_known_provider(provider):
        raise PolicyError(f"unknown provider {provider!r}: use a provider slug of the catalog (GET /providers) "
                          "or a well-known BYOK provider slug", "provider")
    key = _clean_provider_key(key)
    data = _clean_byok_data(organization, data)
    _check_byok_flags(data.get("is_byok_only", False), data.get("is_fallback", False))
    last = ByokKey.objects.filter(organization=organization, provider=provider).aggregate(m=Max("sort_order"))["m"]
    now = timezone.now()
    byok = ByokKey.objects.create(organization=organization, workspace=workspace, provider=provider,
                                  encrypted_key=crypto.encrypt(key), label=mask_byok_key(key),
                                  sort_order=0 if last is None else last + 1, created_at=now, updated_at=now,
                                  **data)
    _audit(actor, organization=organization, action="create", obj=byok,
           changes={"provider": provider, "label": byok.label,
                    "workspace_id": str(workspace.id) if workspace else None, **data})
    return byok


@transaction.atomic
def update_byok_key(*, actor, byok: ByokKey, data: dict, key: str | None = None) -> ByokKey:
    """Change only the fields given; a new `key` replaces the stored credential in place."""
    byok = ByokKey.objects.select_for_update().get(pk=byok.pk)
    data = _clean_byok_data(byok.organization, data)
    _check_byok_flags(data.get("is_byok_only", byok.is_byok_only), data.get("is_fallback", byok.is_fallback))
    changes = _changes(byok, data, BYOK_FIELDS)
    for name, value in data.items():
        setattr(byok, name, value)
    if key is not None:
        key = _clean_provider_key(key)
        new_label = mask_byok_key(key)
        changes["label"] = [byok.label, new_label]
        byok.encrypted_key, byok.label = crypto.encrypt(key), new_label
    byok.updated_at = timezone.now()
    byok.save()
    _audit(actor, organization=byok.organization, action="update", obj=byok, changes=changes)
    return byok


@transaction.atomic
def delete_byok_key(*, actor, byok: ByokKey) -> None:
    byok = ByokKey.objects.select_for_update().get(pk=byok.pk)
    _audit(actor, organization=byok.organization, action="delete", obj=byok,
           changes={"provider": byok.provider, "label": byok.label})
    byok.delete()


def byok_plaintext(byok: ByokKey) -> str:
    """The credential itself, for the request that sends it upstream. Never log or return it."""
    return crypto.decrypt(byok.encrypted_key)


# --- presets ---------------------------------------------------------------------------------------------------

# Request fields that configure a model call and so belong in a preset. Everything else (messages, input,
# prompt, stream, per-request identity, tracing, caching keys) is dropped silently, as the reference says.
PRESET_CONFIG_FIELDS = frozenset("""
model models provider route fallbacks temperature top_p top_k top_a min_p frequency_penalty presence_penalty
repetition_penalty max_tokens max_completion_tokens max_output_tokens max_tool_calls seed stop stop_sequences
logit_bias logprobs top_logprobs response_format text tools tool_choice parallel_tool_calls deferred_tools
stop_server_tools_when plugins reasoning reasoning_effort thinking verbosity modalities image_config
cache_control prompt_cache_options service_tier transforms usage include truncation context_management
output_config speed safeguards web_search_options
""".split())
PRESET_FORMATS = ("chat", "messages", "responses")
_NUMBER_FIELDS = ("temperature", "top_p", "top_a", "min_p", "frequency_penalty", "presence_penalty",
                  "repetition_penalty")
_INT_FIELDS = ("top_k", "max_tokens", "max_completion_tokens", "max_output_tokens", "max_tool_calls", "seed",
               "top_logprobs")
_slug_re = re.compile(SLUG_RE)


def _text_of(content) -> str | None:
    """Plain text of a message content: a string, or the text parts of a list of parts."""
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts) if parts else None
    raise PolicyError("must be a string or a list of text parts", "system")


def _preset_system_prompt(api_format: str, body: dict) -> str | None:
    if api_format == "chat":
        messages = body.get("messages")
        if messages is None:
            return None
        if not isinstance(messages, list):
            raise PolicyError("must be a list of messages", "messages")
        texts = []
        for index, message in enumerate(messages):
            if isinstance(message, dict) and message.get("role") in ("system", "developer"):
                try:
                    text = _text_of(message.get("content"))
                except PolicyError:
                    raise PolicyError("must be a string or a list of text parts",
                                      f"messages[{index}].content") from None
                if text:
                    texts.append(text)
        return "\n\n".join(texts) or None
    if api_format == "messages":
        return _text_of(body.get("system")) or None
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise PolicyError("must be a string", "instructions")
    return instructions or None


def preset_config_from_request(body: dict) -> dict:
    """The preset-config fields of an inference request body, type-checked where a wrong type is certain."""
    config = {k: v for k, v in body.items() if k in PRESET_CONFIG_FIELDS}
    if "model" in config and config["model"] is not None and not isinstance(config["model"], str):
        raise PolicyError("must be a model slug (a string)", "model")
    if config.get("models") is not None and (not isinstance(config["models"], list)
                                             or not all(isinstance(m, str) for m in config["models"])):
        raise PolicyError("must be a list of model slugs", "models")
    for name in _NUMBER_FIELDS:
        value = config.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise PolicyError("must be a number", name)
    for name in _INT_FIELDS:
        value = config.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise PolicyError("must be an integer", name)
    for name in ("tools", "plugins"):
        if config.get(name) is not None and not isinstance(config[name], list):
            raise PolicyError("must be a list", name)
    if config.get("provider") is not None and not isinstance(config["provider"], dict):
        raise PolicyError("must be an object of provider preferences", "provider")
    return {k: config[k] for k in sorted(config)}


@transaction.atomic
def save_preset(*, actor, workspace: Workspace, slug: str, api_format: str, body: dict) -> Preset:
    """Create the preset from an inference request body, or add a new designated version to it."""
    if not isinstance(slug, str) or len(slug) > 100 or not _slug_re.match(slug):
        raise PolicyError("use lowercase letters and digits in segments separated by single hyphens", "slug")
    if api_format not in PRESET_FORMATS:
        raise PolicyError(f"must be one of {', '.join(PRESET_FORMATS)}", "format")
    config = preset_config_from_request(body)
    system_prompt = _preset_system_prompt(api_format, body)
    Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
    now = timezone.now()
    preset = Preset.objects.select_for_update().filter(workspace=workspace, slug=slug).first()
    created = preset is None
    if created:
        preset = Preset.objects.create(organization_id=workspace.organization_id, workspace=workspace, slug=slug,
                                       name=slug, creator_user=actor_user(actor), created_at=now, updated_at=now)
    last = preset.versions.aggregate(m=Max("version"))["m"] or 0
    version = PresetVersion.objects.create(preset=preset, version=last + 1, config=config,
                                           system_prompt=system_prompt, creator_id=actor_creator_id(actor),
                                           created_at=now, updated_at=now)
    preset.designated_version = version
    preset.updated_at = now
    preset.save(update_fields=["designated_version", "updated_at"])
    _audit(actor, organization=workspace.organization, action="create" if created else "update", obj=preset,
           changes={"version": version.version, "config": config, "system_prompt": system_prompt})
    return preset


# --- observability destinations ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DestinationSchema:
    required: tuple = ()
    optional: tuple = ()
    secrets: tuple = ()
    urls: tuple = ()
    choices: dict = field(default_factory=dict)
    booleans: tuple = ()


DESTINATION_SCHEMAS = {
    "arize": DestinationSchema(("apiKey", "modelId", "spaceKey"), ("baseUrl",), ("apiKey", "spaceKey"),
                               ("baseUrl",)),
    "braintrust": DestinationSchema(("apiKey", "projectId"), ("baseUrl",), ("apiKey",), ("baseUrl",)),
    "clickhouse": DestinationSchema(("database", "host", "password", "username"),
                                    ("table", "shouldIncludeCacheWriteTokens"), ("password",),
                                    booleans=("shouldIncludeCacheWriteTokens",)),
    "datadog": DestinationSchema(("apiKey", "mlApp"), ("url",), ("apiKey",), ("url",)),
    "grafana": DestinationSchema(("apiKey", "instanceId"), ("baseUrl",), ("apiKey",), ("baseUrl",)),
    "langfuse": DestinationSchema(("publicKey", "secretKey"), ("baseUrl",), ("secretKey",), ("baseUrl",)),
    "langsmith": DestinationSchema(("apiKey",), ("endpoint", "project", "workspaceId"), ("apiKey",),
                                   ("endpoint",)),
    "newrelic": DestinationSchema(("licenseKey",), ("region",), ("licenseKey",), choices={"region": ("us", "eu")}),
    "opik": DestinationSchema(("apiKey", "projectName", "workspace"), (), ("apiKey",)),
    "otel-collector": DestinationSchema(("endpoint",), (), (), ("endpoint",)),
    "posthog": DestinationSchema(("apiKey",), ("endpoint",), ("apiKey",), ("endpoint",)),
    "ramp": DestinationSchema(("apiKey",), ("baseUrl",), ("apiKey",), ("baseUrl",)),
    "s3": DestinationSchema(("bucketName",),
                            ("accessKeyId", "secretAccessKey", "sessionToken", "authMode", "endpoint", "externalId",
                             "pathTemplate", "prefix", "provider", "region", "roleArn"),
                            ("accessKeyId", "secretAccessKey", "sessionToken"), ("endpoint",),
                            {"authMode": ("access_keys", "iam_role"),
                             "provider": ("aws", "cloudflare_r2", "gcs", "other")}),
    "sentry": DestinationSchema(("dsn", "otlpEndpoint"), (), ("dsn",), ("otlpEndpoint",)),
    "snowflake": DestinationSchema(("account", "token"),
                                   ("database", "schema", "table", "warehouse", "shouldIncludeCacheWriteTokens"),
                                   ("token",), booleans=("shouldIncludeCacheWriteTokens",)),
    "weave": DestinationSchema(("apiKey", "entity", "project"), ("baseUrl",), ("apiKey",), ("baseUrl",)),
    "webhook": DestinationSchema(("url",), ("method",), (), ("url",), {"method": ("POST", "PUT")}),
}
# Types the reference names without a published config shape: any flat config, secrets guessed by name.
GENERIC_DESTINATION_TYPES = ("bigquery", "raindrop")
DESTINATION_TYPES = tuple(DESTINATION_SCHEMAS) + GENERIC_DESTINATION_TYPES
_GENERIC_SECRET_NAME = re.compile(r"key|secret|token|password|credential|dsn", re.IGNORECASE)

FILTER_FIELDS = ("model", "provider", "session_id", "user_id", "api_key_name", "finish_reason", "input", "output",
                 "total_cost", "total_tokens", "prompt_tokens", "completion_tokens")
FILTER_OPERATORS = ("equals", "not_equals", "contains", "not_contains", "regex", "starts_with", "ends_with",
                    "gt", "lt", "gte", "lte", "exists", "not_exists")
_NUMERIC_OPERATORS = ("gt", "lt", "gte", "lte")
BROADCAST_FLAGS = ("broadcast_generation_cost", "broadcast_generation_cost_allocation",
                   "broadcast_generation_identity", "broadcast_generation_request_context")
DESTINATION_FIELDS = ("name", "enabled", "api_key_hashes", "sampling_rate", "privacy_mode", "filter_rules",
                      "regions", *BROADCAST_FLAGS)
MAX_CONFIG_VALUE = 4096


def _check_url(value, name: str) -> None:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(value) > 2048:
        raise PolicyError("must be an http(s) URL", name)


def _check_headers(headers) -> dict:
    if not isinstance(headers, dict):
        raise PolicyError("must be an object of header names to values", "config.headers")
    if len(headers) > 50:
        raise PolicyError("at most 50 headers", "config.headers")
    for name, value in headers.items():
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}", name):
            raise PolicyError(f"{name!r} is not a valid header name", "config.headers")
        if not isinstance(value, str) or len(value) > MAX_CONFIG_VALUE or "\n" in value or "\r" in value:
            raise PolicyError(f"the value of {name} must be a single-line string", f"config.headers.{name}")
    return dict(headers)


def _split_config(dest_type: str, config) -> tuple[dict, dict]:
    """Validate a full plaintext config; return (public config with secrets masked, the secrets)."""
    if not isinstance(config, dict):
        raise PolicyError("must be an object", "config")
    public, secrets = {}, {}
    if "headers" in config and config["headers"] is not None:
        headers = _check_headers(config["headers"])
        secrets["headers"] = headers
        public["headers"] = {name: mask_secret(value) for name, value in headers.items()}
    rest = {k: v for k, v in config.items() if k != "headers" and v is not None}
    schema = DESTINATION_SCHEMAS.get(dest_type)
    if schema is None:  # a generic type
        for name, value in rest.items():
            if isinstance(value, (dict, list)) or (isinstance(value, str) and len(value) > MAX_CONFIG_VALUE):
                raise PolicyError("must be a string, number or boolean", f"config.{name}")
            is_secret = isinstance(value, str) and _GENERIC_SECRET_NAME.search(name)
            if is_secret:
                secrets[name] = value
                public[name] = mask_secret(value)
            else:
                public[name] = value
        return public, secrets
    known = set(schema.required) | set(schema.optional)
    for name in rest:
        if name not in known:
            raise PolicyError(f"unknown field for a {dest_type} destination; expected some of "
                              f"{', '.join(sorted(known | {'headers'}))}", f"config.{name}")
    for name in schema.required:
        if name not in rest or rest[name] == "":
            raise PolicyError(f"is required for a {dest_type} destination", f"config.{name}")
    for name, value in rest.items():
        if name in schema.booleans:
            if not isinstance(value, bool):
                raise PolicyError("must be true or false", f"config.{name}")
        elif not isinstance(value, str) or len(value) > MAX_CONFIG_VALUE:
            raise PolicyError(f"must be a string of at most {MAX_CONFIG_VALUE} characters", f"config.{name}")
        if name in schema.urls:
            _check_url(value, f"config.{name}")
        if name in schema.choices and value not in schema.choices[name]:
            raise PolicyError(f"must be one of {', '.join(schema.choices[name])}", f"config.{name}")
        if name in schema.secrets:
            secrets[name] = value
            public[name] = mask_secret(value)
        else:
            public[name] = value
    if dest_type == "s3":
        _check_s3(public, secrets)
    if dest_type == "webhook":
        public.setdefault("method", "POST")
    if dest_type == "newrelic":
        public.setdefault("region", "us")
    return public, secrets


def _check_s3(public: dict, secrets: dict) -> None:
    mode = public.setdefault("authMode", "access_keys")
    if mode == "access_keys":
        for name in ("accessKeyId", "secretAccessKey"):
            if name not in secrets:
                raise PolicyError("is required when authMode is access_keys", f"config.{name}")
    else:
        if public.get("provider", "aws") != "aws":
            raise PolicyError("IAM role authentication is for AWS S3 only", "config.authMode")
        if not public.get("roleArn"):
            raise PolicyError("is required when authMode is iam_role", "config.roleArn")
        # The external id is ours to generate: the role's trust policy must require it.
        public.setdefault("externalId", f"ows-{uuid.uuid4().hex}")


def _clean_filter_rules(rules):
    if rules is None:
        return None
    if not isinstance(rules, dict):
        raise PolicyError("must be an object {enabled, groups} or null", "filter_rules")
    groups = rules.get("groups")
    if not isinstance(groups, list) or len(groups) > 20:
        raise PolicyError("must be a list of at most 20 rule groups", "filter_rules.groups")
    enabled = rules.get("enabled", True)
    if not isinstance(enabled, bool):
        raise PolicyError("must be true or false", "filter_rules.enabled")
    cleaned = []
    for g_index, group in enumerate(groups):
        where = f"filter_rules.groups[{g_index}]"
        if not isinstance(group, dict):
            raise PolicyError("must be an object {logic, rules}", where)
        logic = group.get("logic") or "and"
        if logic not in ("and", "or"):
            raise PolicyError("must be and or or", f"{where}.logic")
        items = group.get("rules")
        if not isinstance(items, list) or len(items) > 50:
            raise PolicyError("must be a list of at most 50 rules", f"{where}.rules")
        clean_items = []
        for r_index, rule in enumerate(items):
            at = f"{where}.rules[{r_index}]"
            if not isinstance(rule, dict):
                raise PolicyError("must be an object {field, operator, value}", at)
            if rule.get("field") not in FILTER_FIELDS:
                raise PolicyError(f"must be one of {', '.join(FILTER_FIELDS)}", f"{at}.field")
            operator = rule.get("operator")
            if operator not in FILTER_OPERATORS:
                raise PolicyError(f"must be one of {', '.join(FILTER_OPERATORS)}", f"{at}.operator")
            item = {"field": rule["field"], "operator": operator}
            if operator not in ("exists", "not_exists"):
                value = rule.get("value")
                if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                    raise PolicyError("must be a string or a number", f"{at}.value")
                if operator in _NUMERIC_OPERATORS:
                    try:
                        finite = Decimal(str(value)).is_finite()
                    except ArithmeticError:
                        finite = False
                    if not finite:
                        raise PolicyError("must be a number for a comparison", f"{at}.value")
                if operator == "regex":
                    check_regex(value, f"{at}.value")
                if isinstance(value, str) and len(value) > MAX_CONFIG_VALUE:
                    raise PolicyError(f"at most {MAX_CONFIG_VALUE} characters", f"{at}.value")
                item["value"] = value
            clean_items.append(item)
        cleaned.append({"logic": logic, "rules": clean_items})
    return {"enabled": enabled, "groups": cleaned}


def _clean_regions(regions) -> list:
    if not regions:
        raise PolicyError("must list at least one region", "regions")
    out = []
    for region in regions:
        region = "europe" if region == "eu" else region
        if region not in REGIONS:
            raise PolicyError(f"must be among {', '.join(REGIONS)}", "regions")
        if region not in out:
            out.append(region)
    return out


def _clean_destination_data(organization: Organization, data: dict) -> dict:
    data = {k: v for k, v in data.items() if k in DESTINATION_FIELDS}
    if "name" in data and not (data["name"] or "").strip():
        raise PolicyError("must not be blank", "name")
    if "regions" in data:
        data["regions"] = _clean_regions(data["regions"])
    if "filter_rules" in data:
        data["filter_rules"] = _clean_filter_rules(data["filter_rules"])
    _check_nonempty_list(data, "api_key_hashes")
    if data.get("api_key_hashes") is not None:
        data["api_key_hashes"] = [k.hash for k in
                                  check_key_hashes(organization, data["api_key_hashes"], "api_key_hashes")]
    return data


def destination_secrets(destination: ObservabilityDestination) -> dict:
    if not destination.encrypted_secrets:
        return {}
    return json.loads(crypto.decrypt(destination.encrypted_secrets))


def destination_config(destination: ObservabilityDestination) -> dict:
    """The full config with its secrets in clear, for the task that ships events. Never return or log it."""
    config = dict(destination.config)
    config.update(destination_secrets(destination))
    return config


def _seal(secrets: dict) -> str:
    return crypto.encrypt(json.dumps(secrets, sort_keys=True)) if secrets else ""


@transaction.atomic
def create_destination(*, actor, organization: Organization, workspace: Workspace, dest_type: str, config,
                       data: dict) -> ObservabilityDestination:
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    if dest_type not in DESTINATION_TYPES:
        raise PolicyError(f"must be one of {', '.join(DESTINATION_TYPES)}", "type")
    public, secrets = _split_config(dest_type, config)
    data = _clean_destination_data(organization, data)
    data.setdefault("regions", ["global"])
    for flag in BROADCAST_FLAGS:
        data.setdefault(flag, False)  # opt-in metadata, as the reference's clients default it
    now = timezone.now()
    destination = ObservabilityDestination.objects.create(
        organization=organization, workspace=workspace, type=dest_type, config=public,
        encrypted_secrets=_seal(secrets), created_at=now, updated_at=now, **data)
    _audit(actor, organization=organization, action="create", obj=destination,
           changes={"type": dest_type, "workspace_id": str(workspace.id), "config": public, **data})
    return destination


def _merge_config(destination: ObservabilityDestination, patch) -> dict:
    """The current plaintext config with the sent keys applied (null removes one). A secret sent back as
    its masked form, as GET shows it, keeps the stored value."""
    if not isinstance(patch, dict):
        raise PolicyError("must be an object", "config")
    current = destination_config(destination)
    masked = destination.config
    merged = dict(current)
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        elif name == "headers" and isinstance(value, dict):
            old_headers, old_masked = current.get("headers") or {}, masked.get("headers") or {}
            merged["headers"] = {h: (old_headers[h] if h in old_headers and v == old_masked.get(h) else v)
                                 for h, v in value.items()}
        elif name in current and name in masked and masked[name] != current[name] and value == masked[name]:
            continue
        else:
            merged[name] = value
    return merged


@transaction.atomic
def update_destination(*, actor, destination: ObservabilityDestination, data: dict,
                       config=None) -> ObservabilityDestination:
    """Change only the fields given; `config` merges into the current one."""
    destination = ObservabilityDestination.objects.select_for_update().get(pk=destination.pk)
    data = _clean_destination_data(destination.organization, data)
    changes = _changes(destination, data, DESTINATION_FIELDS)
    if config is not None:
        public, secrets = _split_config(destination.type, _merge_config(destination, config))
        if public != destination.config:
            changes["config"] = [destination.config, public]
        if secrets != destination_secrets(destination):
            changes["secrets"] = "changed"
        destination.config, destination.encrypted_secrets = public, _seal(secrets)
    for name, value in data.items():
        setattr(destination, name, value)
    destination.updated_at = timezone.now()
    destination.save()
    _audit(actor, organization=destination.organization, action="update", obj=destination, changes=changes)
    return destination


@transaction.atomic
def delete_destination(*, actor, destination: ObservabilityDestination) -> None:
    destination = ObservabilityDestination.objects.select_for_update().get(pk=destination.pk)
    _audit(actor, organization=destination.organization, action="delete", obj=destination,
           changes={"name": destination.name, "type": destination.type})
    destination.delete()


# --- key rotation ------------------------------------------------------------------------------------------------

def reencrypt_secrets(batch_size: int = 200) -> dict:
    """Re-encrypt every stored secret under the first ENCRYPTION_KEYS key. Idempotent; each batch commits
    on its own so a long run never holds many locks."""
    counts = {"byok_keys": 0, "destinations": 0}
    for model, column, name in ((ByokKey, "encrypted_key", "byok_keys"),
                                (ObservabilityDestination, "encrypted_secrets", "destinations")):
        ids = list(model.objects.exclude(**{column: ""}).order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(ids), batch_size):
            with transaction.atomic():
                for row in model.objects.select_for_update().filter(pk__in=ids[start:start + batch_size]):
                    rotated = crypto.rotate(getattr(row, column))
                    model.objects.filter(pk=row.pk).update(**{column: rotated})
                    counts[name] += 1
    return counts
