"""Which spend limits apply to an inference key, in enforcement order (database reads only, no I/O else).

Every layer is a limit on one spender's spend in one UTC window. Spenders ("subjects"):
- `org:<org>`: the organization, against its credits (grants, refunds and adjustments),
- `key:<key>`: one API key (its `limit`, its guardrail, the workspace default guardrail per key),
- `member:<org>:<user>`: everything a member's keys spend in the organization (their assigned guardrail),
- `wsmember:<workspace>:<user>`: what a member's keys spend in one workspace (the default guardrail per member),
- `ws:<workspace>`: the workspace (its budgets).
A generation belongs to the spenders of the key, workspace and key creator it was made with.

Order (`GET /key` `budgets[]`, reference section 2): workspace_default_member, workspace_default_key,
member, api_key, workspace (broadest interval first), key_limit. Credits are checked before all of them.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db import close_old_connections, connection

from .windows import BROADEST_FIRST

CHAIN_SCOPES = ("workspace_default_member", "workspace_default_key", "member", "api_key", "workspace", "key_limit")


@dataclass(frozen=True)
class Layer:
    scope: str  # "credits" or one of CHAIN_SCOPES
    subject: str
    interval: str  # daily | weekly | monthly | lifetime
    limit: Decimal
    include_byok: bool = False
    guardrail_id: str | None = None
    guardrail_name: str = ""
    budget_id: str | None = None


@dataclass(frozen=True)
class KeyPolicy:
    """The spend limits of one key, loaded together and cached per process until the config version moves."""

    key_id: str
    organization_id: str
    workspace_id: str | None
    user_id: str | None
    layers: tuple[Layer, ...] = ()
    disabled_server_tools: frozenset = frozenset()
    subjects: tuple[str, ...] = field(default=())

    @property
    def chain(self) -> tuple[Layer, ...]:
        return tuple(layer for layer in self.layers if layer.scope != "credits")


def org_subject(org_id) -> str:
    return f"org:{org_id}"


def key_subject(key_id) -> str:
    return f"key:{key_id}"


def workspace_subject(workspace_id) -> str:
    return f"ws:{workspace_id}"


def member_subject(org_id, user_id) -> str:
    return f"member:{org_id}:{user_id}"


def workspace_member_subject(workspace_id, user_id) -> str:
    return f"wsmember:{workspace_id}:{user_id}"


def generation_filter(subject: str) -> dict:
    """The Generation filter of a spender's generations."""
    kind, _, rest = subject.partition(":")
    if kind == "org":
        return {"organization_id": rest}
    if kind == "key":
        return {"api_key_id": rest}
    if kind == "ws":
        return {"workspace_id": rest}
    if kind == "member":
        org_id, _, user_id = rest.partition(":")
        return {"organization_id": org_id, "user_id": user_id}
    if kind == "wsmember":
        workspace_id, _, user_id = rest.partition(":")
        return {"workspace_id": workspace_id, "user_id": user_id}
    raise ValueError(f"unknown subject {subject!r}")


def _guardrail_layer(scope: str, subject: str, guardrail) -> Layer | None:
    if guardrail is None or guardrail.limit_usd is None or not guardrail.reset_interval:
        return None
    return Layer(scope=scope, subject=subject, interval=guardrail.reset_interval, limit=guardrail.limit_usd,
                 include_byok=guardrail.include_byok_in_budgets, guardrail_id=str(guardrail.id),
                 guardrail_name=guardrail.name)


def chain_layers(api_key, workspace=None) -> list[Layer]:
    """The budget chain of a key (credits excluded), in enforcement order."""
    from workspaces.models import Guardrail, GuardrailKeyAssignment, GuardrailMemberAssignment

    from .models import WorkspaceBudget

    layers: list[Layer] = []
    key_id, user_id = api_key.pk, api_key.created_by_id
    workspace = workspace if workspace is not None else api_key.workspace
    if workspace is not None:
        default = Guardrail.objects.filter(id=workspace.default_guardrail_id).first()
        if user_id is not None:
            layers.append(_guardrail_layer("workspace_default_member",
                                           workspace_member_subject(workspace.pk, user_id), default))
        layers.append(_guardrail_layer("workspace_default_key", key_subject(key_id), default))
    if user_id is not None:
        assignment = (GuardrailMemberAssignment.objects.select_related("guardrail")
                      .filter(organization_id=api_key.organization_id, user_id=user_id).first())
        layers.append(_guardrail_layer("member", member_subject(api_key.organization_id, user_id),
                                       assignment.guardrail if assignment else None))
    assignment = GuardrailKeyAssignment.objects.select_related("guardrail").filter(api_key_id=key_id).first()
    layers.append(_guardrail_layer("api_key", key_subject(key_id), assignment.guardrail if assignment else None))
    if workspace is not None:
        budgets = {b.interval: b for b in WorkspaceBudget.objects.filter(workspace=workspace)}
        for interval in BROADEST_FIRST:
            budget = budgets.get(interval)
            if budget is not None:
                layers.append(Layer(scope="workspace", subject=workspace_subject(workspace.pk), interval=interval,
                                    limit=budget.limit_usd, include_byok=workspace.include_byok_in_budgets,
                                    budget_id=str(budget.pk)))
    if api_key.limit is not None:
        layers.append(Layer(scope="key_limit", subject=key_subject(key_id), interval=api_key.limit_reset or "lifetime",
                            limit=api_key.limit, include_byok=api_key.include_byok_in_limit))
    return [layer for layer in layers if layer is not None]


def spender_subjects(api_key) -> tuple[str, ...]:
    """Every spender a generation of this key belongs to."""
    subjects = [org_subject(api_key.organization_id), key_subject(api_key.pk)]
    if api_key.workspace_id is not None:
        subjects.append(workspace_subject(api_key.workspace_id))
    if api_key.created_by_id is not None:
        subjects.append(member_subject(api_key.organization_id, api_key.created_by_id))
        if api_key.workspace_id is not None:
            subjects.append(workspace_member_subject(api_key.workspace_id, api_key.created_by_id))
    return tuple(subjects)


def load_key_policy(key_id) -> KeyPolicy | None:
    """Everything admission needs about a key's limits; None if the key is gone."""
    from workspaces.models import ApiKey

    from .services import total_credits

    if not connection.in_atomic_block:
        close_old_connections()  # a connection the database dropped is checked and replaced before use
    api_key = ApiKey.objects.select_related("workspace", "organization").filter(pk=key_id).first()
    if api_key is None:
        return None
    credits = Layer(scope="credits", subject=org_subject(api_key.organization_id), interval="lifetime",
                    limit=total_credits(api_key.organization))
    workspace = api_key.workspace
    return KeyPolicy(
        key_id=str(api_key.pk), organization_id=str(api_key.organization_id),
        workspace_id=str(api_key.workspace_id) if api_key.workspace_id else None,
        user_id=str(api_key.created_by_id) if api_key.created_by_id else None,
        layers=(credits, *chain_layers(api_key, workspace)),
        disabled_server_tools=frozenset((workspace.disabled_server_tools or []) if workspace else ()),
        subjects=spender_subjects(api_key),
    )


def _bump_config_after_commit(**kwargs) -> None:
    from django.db import transaction

    from openrouter_ws import configversion

    transaction.on_commit(configversion.bump)


def connect_signals() -> None:
    """Each process caches a key's credit total with its policy: a grant or adjustment must reach every
    process on its next request, as any other configuration change does."""
    from django.db.models.signals import post_delete, post_save

    from .models import CreditEntry

    post_save.connect(_bump_config_after_commit, sender=CreditEntry, dispatch_uid="cfgver-save-CreditEntry")
    post_delete.connect(_bump_config_after_commit, sender=CreditEntry, dispatch_uid="cfgver-del-CreditEntry")
