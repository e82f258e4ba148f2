"""Presets and their versions. Any API key may use them, as the reference has it: a management key across
the organization's workspaces, an inference key only in its own workspace."""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from workspaces import policy_services as ps
from workspaces.models import Preset, Workspace

from .base import ManagementView, ok
from .guardrails import PAGING
from .permissions import IsAnyKey
from .serializers import ERRORS, envelope

PRESET_WORKSPACE = OpenApiParameter("workspace_id", str, description=(
    "Workspace id or slug. Default: the Default workspace (a management key) or the key's own (an inference key)"))


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


class PresetVersionOut(serializers.Serializer):
    id = serializers.CharField()
    preset_id = serializers.CharField()
    version = serializers.IntegerField()
    config = serializers.DictField()
    system_prompt = serializers.CharField(allow_null=True)
    creator_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PresetOut(serializers.Serializer):
    id = serializers.CharField()
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    status_updated_at = serializers.DateTimeField(allow_null=True)
    designated_version_id = serializers.CharField(allow_null=True)
    creator_user_id = serializers.CharField(allow_null=True)
    workspace_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PresetWithVersionOut(PresetOut):
    designated_version = PresetVersionOut(allow_null=True)


PresetListResponse = envelope("PresetListResponse", PresetOut, many=True, paged=True)
PresetResponse = envelope("PresetResponse", PresetWithVersionOut)
PresetVersionListResponse = envelope("PresetVersionListResponse", PresetVersionOut, many=True, paged=True)
PresetVersionResponse = envelope("PresetVersionResponse", PresetVersionOut)


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
    @extend_schema(operation_id="listPresets", summary="Presets, most recently updated first",
                   parameters=[*PAGING, PRESET_WORKSPACE], responses={200: PresetListResponse, **ERRORS})
    def get(self, request):
        ref = request.query_params.get("workspace_id")
        presets = Preset.objects.filter(organization=self.organization)
        if ref or not self.api_key.is_management:
            presets = presets.filter(workspace=self.scoped_workspace(ref))
        return self.paginate(presets.order_by("-updated_at", "id"), preset_data)


class PresetDetailView(PresetView):
    @extend_schema(operation_id="getPreset", summary="A preset with its designated version",
                   parameters=[PRESET_WORKSPACE], responses={200: PresetResponse, **ERRORS})
    def get(self, request, slug):
        return ok(preset_data(self.find_preset(slug), with_version=True))


class PresetVersionListView(PresetView):
    @extend_schema(operation_id="listPresetVersions", summary="Versions of a preset, oldest first",
                   parameters=[*PAGING, PRESET_WORKSPACE], responses={200: PresetVersionListResponse, **ERRORS})
    def get(self, request, slug):
        preset = self.find_preset(slug)
        return self.paginate(preset.versions.order_by("version"), version_data)


class PresetVersionDetailView(PresetView):
    @extend_schema(operation_id="getPresetVersion", summary="One version of a preset",
                   parameters=[PRESET_WORKSPACE], responses={200: PresetVersionResponse, **ERRORS})
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


def _save_schema(operation_id: str, body: str):
    return extend_schema(operation_id=operation_id, parameters=[PRESET_WORKSPACE], request=OpenApiTypes.OBJECT,
                         summary=f"Save a {body} body as the preset's new designated version (runs no inference)",
                         responses={200: PresetResponse, **ERRORS})


class ChatPresetSaveView(PresetSaveView):
    api_format = "chat"

    @_save_schema("createPresetsChatCompletions", "chat completions")
    def post(self, request, slug):
        return super().post(request, slug)


class MessagesPresetSaveView(PresetSaveView):
    api_format = "messages"

    @_save_schema("createPresetsMessages", "messages")
    def post(self, request, slug):
        return super().post(request, slug)


class ResponsesPresetSaveView(PresetSaveView):
    api_format = "responses"

    @_save_schema("createPresetsResponses", "responses")
    def post(self, request, slug):
        return super().post(request, slug)
