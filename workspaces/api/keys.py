"""API keys: `/keys` (management key) and `/key` (the calling key, any kind)."""

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import usage as billing_usage
from billing.models import CreditEntry, CreditKind, Generation
from workspaces import services
from workspaces.models import ApiKey, KeyKind, User

from .base import MAX_OFFSET, ManagementView, created, deleted, ok, parse_bool, parse_int
from .permissions import IsAnyKey
from .serializers import (ERRORS, CurrentKeySerializer, DeletedSerializer, KeyCreateSerializer, KeySerializer,
                          KeyUpdateSerializer, acting, envelope, parse_body)

# `/keys` answers the most recent keys from `offset`, a page at a time (the reference pages it by offset only).
KEYS_PAGE = 100
# Free-model daily request quotas as the reference describes them (accounts that never bought credits get
# fewer). Informational here: this gateway does not meter free models separately.
FREE_MODEL_DAILY = {True: 50, False: 1000}

KeyListResponse = envelope("KeyListResponse", KeySerializer, many=True)
KeyResponse = envelope("KeyResponse", KeySerializer)
KeyCreatedResponse = envelope("KeyCreatedResponse", KeySerializer,
                              key=serializers.CharField(help_text="The key itself; shown this once only."))
CurrentKeyResponse = envelope("CurrentKeyResponse", CurrentKeySerializer)


def with_usage(api_keys, now=None):
    """Attach the usage counters and remaining limit the Key serializer reads, in one query for all keys."""
    api_keys = list(api_keys)
    counters = billing_usage.keys_usage(api_keys, now)
    for api_key in api_keys:
        api_key.usage_counters = counters[api_key.pk]
        api_key.limit_left = billing_usage.limit_remaining(api_key, api_key.usage_counters)
    return api_keys


def render_key(api_key) -> dict:
    return KeySerializer(with_usage([api_key])[0]).data


class KeysView(ManagementView):
    @extend_schema(
        operation_id="listKeys", summary="List the API keys of a workspace",
        parameters=[
            OpenApiParameter("workspace_id", str, description="Workspace id or slug (default: the Default one)"),
            OpenApiParameter("include_disabled", bool), OpenApiParameter("include_expired", bool),
            OpenApiParameter("offset", int)],
        responses={200: KeyListResponse, **ERRORS})
    def get(self, request):
        workspace = self.workspace_or_default(request.query_params.get("workspace_id"))
        offset = parse_int(request, "offset", 0, maximum=MAX_OFFSET)
        keys = ApiKey.objects.filter(organization=self.organization, workspace=workspace, kind=KeyKind.INFERENCE)
        if not parse_bool(request, "include_disabled"):
            keys = keys.filter(disabled=False)
        if not parse_bool(request, "include_expired"):
            keys = keys.exclude(expires_at__lte=timezone.now())
        page = with_usage(keys.order_by("-created_at", "-id")[offset:offset + KEYS_PAGE])
        return ok(KeySerializer(page, many=True).data)

    @extend_schema(operation_id="createKeys", summary="Create an inference key", request=KeyCreateSerializer,
                   responses={201: KeyCreatedResponse, **ERRORS})
    def post(self, request):
        body = parse_body(KeyCreateSerializer, request)
        workspace = self.workspace_or_default(body.get("workspace_id"))
        creator = None
        if body.get("creator_user_id"):
            creator = User.objects.filter(pk=body["creator_user_id"]).first() or User(pk=body["creator_user_id"])
        external = body.get("external") or {}
        api_key, plaintext = services.issue_api_key(
            organization=self.organization, name=body["name"], workspace=workspace, creator=creator,
            limit=body.get("limit"), limit_reset=body.get("limit_reset"),
            include_byok_in_limit=body.get("include_byok_in_limit", False), expires_at=body.get("expires_at"),
            external_user=external.get("user"), **acting(request))
        return created(render_key(api_key), key=plaintext)


class KeyDetailView(ManagementView):
    def get_key(self, key_hash: str) -> ApiKey:
        # Management keys are administered in the dashboard; here only inference keys exist.
        api_key = (ApiKey.objects.filter(organization=self.organization, hash=key_hash, kind=KeyKind.INFERENCE)
                   .first())
        if api_key is None:
            raise Http404(f"API key {key_hash} not found.")
        return api_key

    @extend_schema(operation_id="getKey", summary="One API key", responses={200: KeyResponse, **ERRORS})
    def get(self, request, key_hash):
        return ok(render_key(self.get_key(key_hash)))

    @extend_schema(operation_id="updateKeys", summary="Change an API key (only the fields sent)",
                   request=KeyUpdateSerializer, responses={200: KeyResponse, **ERRORS})
    def patch(self, request, key_hash):
        api_key = self.get_key(key_hash)
        fields = parse_body(KeyUpdateSerializer, request, partial=True)
        if "workspace_id" in fields:
            fields["workspace"] = self.get_workspace(fields.pop("workspace_id"))
        api_key = services.update_api_key(api_key, **fields, **acting(request))
        return ok(render_key(api_key))

    @extend_schema(operation_id="deleteKeys", summary="Delete an API key",
                   responses={200: DeletedSerializer, **ERRORS})
    def delete(self, request, key_hash):
        services.delete_api_key(self.get_key(key_hash), **acting(request))
        return deleted()


class CurrentKeyView(APIView):
    """`GET /key`: what the calling key may spend and has spent. Works with inference and management keys."""

    permission_classes = [IsAnyKey]

    @extend_schema(operation_id="getCurrentKey", summary="The calling key", responses={200: CurrentKeyResponse,
                                                                                       401: ERRORS[401]})
    def get(self, request):
        api_key = request.user.api_key
        counters = billing_usage.key_usage(api_key)
        chain = billing_usage.budget_chain(api_key)
        free_tier = not CreditEntry.objects.filter(organization_id=api_key.organization_id,
                                                   kind=CreditKind.GRANT, amount__gt=0).exists()
        day_start = billing_usage.window_starts()["daily"]
        free_used = Generation.objects.filter(organization_id=api_key.organization_id, created_at__gte=day_start,
                                              model__endswith=":free").count()
        free_limit = FREE_MODEL_DAILY[free_tier]
        data = {
            "label": api_key.label,
            "limit": api_key.limit,
            "limit_remaining": billing_usage.limit_remaining(api_key, counters),
            "limit_reset": api_key.limit_reset,
            "include_byok_in_limit": api_key.include_byok_in_limit,
            **counters,
            "expires_at": api_key.expires_at,
            "creator_user_id": str(api_key.created_by_id) if api_key.created_by_id else None,
            "is_free_tier": free_tier,
            "is_management_key": api_key.is_management,
            "is_provisioning_key": api_key.is_management,
            "organization_id": str(api_key.organization_id),
            "workspace_id": str(api_key.workspace_id) if api_key.workspace_id else None,
            "allowed_data_regions": ["global"],
            "free_model_daily_requests": {"limit": free_limit, "used": free_used,
                                          "remaining": max(0, free_limit - free_used)},
            "rate_limit": {"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."},
            "budgets": chain,
            "effective_budget": billing_usage.effective_budget(chain),
        }
        return Response({"data": CurrentKeySerializer(data).data})
