"""BYOK provider keys (management key). The credential goes in once and never comes back out."""

from django.db.models import Q
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from workspaces import policy_services as ps
from workspaces.models import ByokKey

from .base import ManagementView, created, deleted, is_uuid, ok
from .guardrails import PAGING, WORKSPACE_FILTER, nullable_bool, nullable_strings, parse, string_list
from .serializers import ERRORS, DeletedSerializer, envelope


class ByokKeyIn(serializers.Serializer):
    # Not trimmed or length-checked here: the service does both without echoing the value.
    key = serializers.CharField(trim_whitespace=False, allow_blank=True)
    provider = serializers.CharField(max_length=100)
    name = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200)
    workspace_id = serializers.CharField(required=False, allow_null=True, max_length=100)
    disabled = serializers.BooleanField(required=False)
    is_fallback = serializers.BooleanField(required=False)
    is_required = serializers.BooleanField(required=False)
    is_byok_only = serializers.BooleanField(required=False)
    allowed_models = string_list()
    allowed_api_key_hashes = string_list()
    allowed_user_ids = string_list()
    declared_region = serializers.ChoiceField(choices=ps.REGIONS, required=False, allow_null=True)
    declared_zdr = nullable_bool()


def byok_data(byok: ByokKey) -> dict:
    return {
        "id": str(byok.id),
        "provider": byok.provider,
        "name": byok.name or None,
        "label": byok.label,
        "disabled": byok.disabled,
        "sort_order": byok.sort_order,
        "is_fallback": byok.is_fallback,
        "is_required": byok.is_required,
        "is_byok_only": byok.is_byok_only,
        "allowed_models": byok.allowed_models,
        "allowed_api_key_hashes": byok.allowed_api_key_hashes,
        "allowed_user_ids": byok.allowed_user_ids,
        "declared_region": byok.declared_region,
        "declared_zdr": byok.declared_zdr,
        "workspace_id": str(byok.workspace_id) if byok.workspace_id else None,
        "created_at": byok.created_at,
        "updated_at": byok.updated_at,
    }


class ByokKeyOut(serializers.Serializer):
    id = serializers.CharField()
    provider = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    label = serializers.CharField()
    disabled = serializers.BooleanField()
    sort_order = serializers.IntegerField()
    is_fallback = serializers.BooleanField()
    is_required = serializers.BooleanField()
    is_byok_only = serializers.BooleanField()
    allowed_models = nullable_strings()
    allowed_api_key_hashes = nullable_strings()
    allowed_user_ids = nullable_strings()
    declared_region = serializers.CharField(allow_null=True)
    declared_zdr = serializers.BooleanField(allow_null=True)
    workspace_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(allow_null=True)


ByokKeyResponse = envelope("ByokKeyResponse", ByokKeyOut)
ByokKeyListResponse = envelope("ByokKeyListResponse", ByokKeyOut, many=True, paged=True)


class ByokListView(ManagementView):
    @extend_schema(operation_id="listBYOKKeys", summary="BYOK keys usable in a workspace (its own and global ones)",
                   parameters=[*PAGING, WORKSPACE_FILTER, OpenApiParameter("provider", str)],
                   responses={200: ByokKeyListResponse, **ERRORS})
    def get(self, request):
        workspace = self.workspace_or_default(request.query_params.get("workspace_id"))
        # A workspace sees its own keys and the organization's global ones (usable in every workspace).
        keys = ByokKey.objects.filter(Q(workspace=workspace) | Q(workspace__isnull=True),
                                      organization=self.organization)
        provider = request.query_params.get("provider")
        if provider:
            keys = keys.filter(provider=provider)
        return self.paginate(keys.order_by("provider", "sort_order", "created_at", "id"), byok_data)

    @extend_schema(operation_id="createBYOKKey", summary="Store a provider key (encrypted; never returned)",
                   request=ByokKeyIn, responses={201: ByokKeyResponse, **ERRORS})
    def post(self, request):
        data = parse(ByokKeyIn, request)
        # Omitted: the Default workspace. Explicit null: a global key, usable in every workspace.
        workspace = (None if "workspace_id" in data and data["workspace_id"] is None
                     else self.workspace_or_default(data.get("workspace_id")))
        data.pop("workspace_id", None)
        byok = ps.create_byok_key(actor=request.user, organization=self.organization,
                            workspace=workspace, provider=data.pop("provider"), key=data.pop("key"), data=data)
        return created(byok_data(byok))


class ByokDetailView(ManagementView):
    def get_byok(self, byok_id) -> ByokKey:
        found = (ByokKey.objects.filter(organization=self.organization, id=byok_id).first()
                 if is_uuid(byok_id) else None)
        if found is None:
            raise Http404(f"BYOK key {byok_id} not found.")
        return found

    @extend_schema(operation_id="getBYOKKey", summary="One BYOK key", responses={200: ByokKeyResponse, **ERRORS})
    def get(self, request, byok_id):
        return ok(byok_data(self.get_byok(byok_id)))

    @extend_schema(operation_id="updateBYOKKey", summary="Change a BYOK key (only the fields sent; `key` replaces it)",
                   request=ByokKeyIn(partial=True), responses={200: ByokKeyResponse, **ERRORS})
    def patch(self, request, byok_id):
        byok = self.get_byok(byok_id)
        data = parse(ByokKeyIn, request, partial=True)
        for fixed in ("provider", "workspace_id"):  # a credential keeps its provider and scope
            data.pop(fixed, None)
        byok = ps.update_byok_key(actor=request.user, byok=byok, key=data.pop("key", None),
                            data=data)
        return ok(byok_data(byok))

    @extend_schema(operation_id="deleteBYOKKey", summary="Delete a BYOK key",
                   responses={200: DeletedSerializer, **ERRORS})
    def delete(self, request, byok_id):
        ps.delete_byok_key(actor=request.user, byok=self.get_byok(byok_id))
        return deleted()
