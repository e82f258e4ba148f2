"""Presets and their versions. Any API key may use them, as the reference has it: a management key across
the organization's workspaces, an inference key only in its own workspace."""

from django.http import Http404
from rest_framework.exceptions import ValidationError

from workspaces import policy_services as ps
from workspaces.models import Preset, Workspace

from .base import ManagementView, ok
from .permissions import IsAnyKey


def version_data(version) -> dict | None:
    if version is None:
        return None
    return {
        "id": str(version.id),
        "preset_id": str(version.preset_id),
        "version": version.version,
        "config": version.config,
        "system_prompt": version.system_prompt,
        "creator_id": version.creator_id,
        "created_at": version.created_at,
        "updated_at": version.updated_at,
    }


def preset_data(preset: Preset, *, with_version: bool = False) -> dict:
    data = {
        "id": str(preset.id),
        "slug": preset.slug,
        "name": preset.name,
        "description": preset.description,
        "status": preset.status,
        "status_updated_at": preset.status_updated_at,
        "designated_version_id": str(preset.designated_version_id) if preset.designated_version_id else None,
        "creator_user_id": str(preset.creator_user_id) if preset.creator_user_id else None,
        "workspace_id": str(preset.workspace_id),
        "created_at": preset.created_at,
        "updated_at": preset.updated_at,
    }
    if with_version:
        data["designated_version"] = version_data(preset.designated_version)
    return data


class PresetView(ManagementView):
    permission_classes = [IsAnyKey]

    @property
    def api_key(self):
        return self.request.user.api_key

    def key_workspace(self) -> Workspace:
        if self.api_key.workspace is None:
            raise Http404("This key's workspace no longer exists.")
        return self.api_key.workspace

    def scoped_workspace(self, ref) -> Workspace:
        """The workspace a call acts in: the named one (default: Default), an inference key's own only."""
        if self.api_key.is_management:
            return self.workspace_or_default(ref)
        workspace = self.key_workspace()
        if ref and ref not in (str(workspace.id), workspace.slug):
            raise Http404(f"Workspace {ref} not found.")
        return workspace

    def find_preset(self, slug) -> Preset:
        ref = self.request.query_params.get("workspace_id")
        presets = Preset.objects.filter(organization=self.organization, slug=slug).select_related(
            "designated_version", "workspace")
        if ref or not self.api_key.is_management:
            presets = presets.filter(workspace=self.scoped_workspace(ref))
        found = list(presets[:10])
        if not found:
            raise Http404(f"Preset {slug} not found.")
        if len(found) > 1:
            defaults = [p for p in found if p.workspace.is_default]
            if not defaults:
                raise ValidationError({"workspace_id": f"several workspaces have a preset {slug}; name one"})
            return defaults[0]
        return found[0]


class PresetListView(PresetView):
    def get(self, request):
        ref = request.query_params.get("workspace_id")
        presets = Preset.objects.filter(organization=self.organization)
        if ref or not self.api_key.is_management:
            presets = presets.filter(workspace=self.scoped_workspace(ref))
        return self.paginate(presets.order_by("-updated_at", "id"), preset_data)


class PresetDetailView(PresetView):
    def get(self, request, slug):
        return ok(preset_data(self.find_preset(slug), with_version=True))


class PresetVersionListView(PresetView):
    def get(self, request, slug):
        preset = self.find_preset(slug)
        return self.paginate(preset.versions.order_by("version"), version_data)


class PresetVersionDetailView(PresetView):
    def get(self, request, slug, version):
        preset = self.find_preset(slug)
        try:
            number = int(version)
        except ValueError:
            raise ValidationError({"version": f"must be a version number, got {version!r}"}) from None
        found = preset.versions.filter(version=number).first() if 0 < number < 2**31 else None
        if found is None:
            raise Http404(f"Preset {slug} has no version {version}.")
        return ok(version_data(found))


class PresetSaveView(PresetView):
    """POST /presets/{slug}/{chat/completions|messages|responses}: save the body's configuration as the
    preset's new designated version (creating the preset). Runs no inference; 200, as the SDK expects."""

    api_format = "chat"

    def post(self, request, slug):
        body = request.data
        if not isinstance(body, dict):
            raise ValidationError({"body": "must be a JSON object (an inference request)"})
        ref = request.query_params.get("workspace_id") or body.get("workspace_id")
        if ref is not None and not isinstance(ref, str):
            raise ValidationError({"workspace_id": "must be a workspace id or slug"})
        workspace = self.scoped_workspace(ref)
        preset = ps.save_preset(actor=request.user, workspace=workspace, slug=slug,
                              api_format=self.api_format, body=body)
        preset = Preset.objects.select_related("designated_version").get(pk=preset.pk)
        return ok(preset_data(preset, with_version=True))
