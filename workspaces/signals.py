"""Any change to what the proxy caches bumps the config version once the transaction commits."""

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from openrouter_ws import configversion


def _bump_after_commit(**kwargs):
    transaction.on_commit(configversion.bump)


def connect():
    from billing.models import WorkspaceBudget
    from routing.models import CatalogModel, Endpoint, Provider

    from .models import (ApiKey, ByokKey, Guardrail, GuardrailKeyAssignment, GuardrailMemberAssignment,
                         Membership, Organization, Preset, PresetVersion, Workspace, WorkspaceMembership)

    for model in (Organization, Workspace, Membership, WorkspaceMembership, ApiKey, Guardrail,
                  GuardrailKeyAssignment, GuardrailMemberAssignment, ByokKey, Preset, PresetVersion,
                  WorkspaceBudget, Provider, CatalogModel, Endpoint):
        post_save.connect(_bump_after_commit, sender=model, dispatch_uid=f"cfgver-save-{model.__name__}")
        post_delete.connect(_bump_after_commit, sender=model, dispatch_uid=f"cfgver-del-{model.__name__}")
    m2m_changed.connect(_bump_after_commit, dispatch_uid="cfgver-m2m")


connect()
