"""Billing endpoints of the management API: credits, activity, one generation, workspace budgets."""

import re
from datetime import date

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from workspaces.api.base import ManagementView, deleted, is_uuid, ok
from workspaces.api.serializers import ERRORS, BudgetSerializer, DeletedSerializer, Money, acting, parse_body
from workspaces.api.serializers import BudgetListSerializer, BudgetResponseSerializer, BudgetWriteSerializer
from workspaces.models import ApiKey, Membership

from . import activity as billing_activity
from . import services
from .models import BudgetInterval, Generation, WorkspaceBudget


class CreditsSerializer(serializers.Serializer):
    total_credits = Money()
    total_usage = Money()


class ActivityItemSerializer(serializers.Serializer):
    date = serializers.CharField()
    model = serializers.CharField()
    model_permaslug = serializers.CharField()
    endpoint_id = serializers.CharField()
    provider_name = serializers.CharField()
    usage = Money()
    byok_usage_inference = Money()
    requests = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    workspace_id = serializers.CharField(required=False, allow_null=True,
                                         help_text="Present only with group_by=workspace.")

    def to_representation(self, item):
        data = super().to_representation(item)
        if "workspace_id" not in item:
            data.pop("workspace_id", None)
        return data


class ProviderResponseSerializer(serializers.Serializer):
    provider_name = serializers.CharField(required=False)
    status = serializers.IntegerField(allow_null=True)
    latency = serializers.FloatField(required=False)
    is_byok = serializers.BooleanField(required=False)
    endpoint_id = serializers.CharField(required=False)
    model_permaslug = serializers.CharField(required=False)
    id = serializers.CharField(required=False)
    routed_service_tier = serializers.CharField(required=False, allow_null=True)


class AlwaysNull(serializers.Field):
    """What this gateway does not track: always null, which the SDK accepts for each of these fields."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, source="*", **kwargs)

    def to_representation(self, value):
        return None


@extend_schema_field({"type": "string", "nullable": True})
class NullString(AlwaysNull):
    pass


@extend_schema_field({"type": "integer", "nullable": True})
class NullInteger(AlwaysNull):
    pass


@extend_schema_field({"type": "number", "nullable": True})
class NullNumber(AlwaysNull):
    pass


def _none_if_blank(value):
    return value or None


class GenerationSerializer(serializers.Serializer):
    """One generation as the reference shows it, from a billing.Generation row."""

    id = serializers.CharField()
    request_id = NullString()
    session_id = serializers.CharField(allow_null=True)
    upstream_id = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    model = serializers.CharField()
    provider_name = serializers.SerializerMethodField()
    router = NullString()
    origin = serializers.SerializerMethodField()
    app_id = NullInteger()
    http_referer = serializers.CharField(allow_null=True)
    user_agent = serializers.CharField(allow_null=True)
    external_user = serializers.CharField(source="end_user", allow_null=True)
    api_type = serializers.CharField(allow_null=True)
    total_cost = Money()
    usage = Money()
    upstream_inference_cost = Money(allow_null=True)
    cache_discount = NullNumber()
    is_byok = serializers.BooleanField()
    tokens_prompt = serializers.IntegerField(allow_null=True)
    tokens_completion = serializers.IntegerField(allow_null=True)
    native_tokens_prompt = serializers.IntegerField(source="tokens_prompt", allow_null=True)
    native_tokens_completion = serializers.IntegerField(source="tokens_completion", allow_null=True)
    native_tokens_reasoning = serializers.IntegerField(source="tokens_reasoning", allow_null=True)
    native_tokens_cached = serializers.IntegerField(source="tokens_cached", allow_null=True)
    native_tokens_completion_images = NullInteger()
    latency = serializers.IntegerField(source="latency_ms", allow_null=True, help_text="milliseconds")
    generation_time = serializers.IntegerField(source="generation_time_ms", allow_null=True,
                                               help_text="milliseconds")
    moderation_latency = NullNumber()
    streamed = serializers.BooleanField(allow_null=True)
    cancelled = serializers.BooleanField(allow_null=True)
    finish_reason = serializers.CharField(allow_null=True)
    native_finish_reason = serializers.CharField(allow_null=True)
    num_media_prompt = NullInteger()
    num_media_completion = NullInteger()
    num_input_audio_prompt = NullInteger()
    num_search_results = NullInteger()
    num_fetches = NullInteger()
    web_search_engine = NullString()
    preset_id = serializers.CharField(allow_null=True)
    service_tier = NullString()
    response_cache_source_id = NullString()
    data_region = serializers.SerializerMethodField()
    workspace_id = serializers.CharField(allow_null=True)
    provider_responses = serializers.SerializerMethodField()

    def get_upstream_id(self, generation) -> str | None:
        return _none_if_blank(generation.upstream_id)

    def get_provider_name(self, generation) -> str | None:
        return _none_if_blank(generation.provider_name)

    def get_origin(self, generation) -> str:
        return generation.http_referer or ""

    def get_data_region(self, generation) -> str:
        return "global"

    def get_provider_responses(self, generation) -> list:
        attempts = []
        for attempt in generation.provider_responses or []:
            if isinstance(attempt, dict):
                attempts.append({**attempt, "status": attempt.get("status")})
        return ProviderResponseSerializer(attempts, many=True).data


class CreditsView(ManagementView):
    @extend_schema(operation_id="getCredits", summary="Credits granted and used, organization-wide",
                   responses={200: type("CreditsResponse", (serializers.Serializer,), {"data": CreditsSerializer()}),
                              **ERRORS})
    def get(self, request):
        return ok(CreditsSerializer({"total_credits": services.total_credits(self.organization),
                                     "total_usage": services.total_usage(self.organization)}).data)


class ActivityView(ManagementView):
    @extend_schema(
        operation_id="getUserActivity", summary="Activity per day, model and endpoint over the last 30 UTC days",
        parameters=[OpenApiParameter("date", str, description="YYYY-MM-DD, one of the last 30 complete days"),
                    OpenApiParameter("api_key_hash", str), OpenApiParameter("user_id", str),
                    OpenApiParameter("workspace_id", str), OpenApiParameter("group_by", str, enum=["workspace"])],
        responses={200: type("ActivityResponse", (serializers.Serializer,),
                             {"data": ActivityItemSerializer(many=True)}), **ERRORS})
    def get(self, request):
        params = request.query_params
        flt = billing_activity.ActivityFilter(organization=self.organization)
        if params.get("date"):
            flt.day = self._date(params["date"])
        if params.get("api_key_hash"):
            api_key = ApiKey.objects.filter(organization=self.organization, hash=params["api_key_hash"]).first()
            if api_key is None:
                raise Http404(f"API key {params['api_key_hash']} not found.")
            flt.api_key_id = api_key.pk
        if params.get("user_id"):
            if not is_uuid(params["user_id"]):
                raise ValidationError({"user_id": "must be a user id (UUID)"})
            if not Membership.objects.filter(organization=self.organization, user_id=params["user_id"]).exists():
                raise Http404(f"User {params['user_id']} is not a member of this organization.")
            flt.user_id = params["user_id"]
        if params.get("workspace_id"):
            flt.workspace_id = self.get_workspace(params["workspace_id"]).pk
        group_by = params.get("group_by")
        if group_by:
            if group_by != "workspace":
                raise ValidationError({"group_by": "the only grouping is 'workspace'"})
            flt.group_by_workspace = True
        items = billing_activity.activity(flt)
        return ok(ActivityItemSerializer(items, many=True).data)

    @staticmethod
    def _date(raw: str) -> date:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise ValidationError({"date": "must be YYYY-MM-DD"})
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise ValidationError({"date": "must be a real date, YYYY-MM-DD"}) from None
        first, last = billing_activity.window()
        if not first <= day <= last:
            raise ValidationError({"date": f"must be one of the last 30 complete UTC days ({first} to {last})"})
        return day


class GenerationView(ManagementView):
    @extend_schema(operation_id="getGeneration", summary="One generation: tokens, cost, timing, attempts",
                   parameters=[OpenApiParameter("id", str, required=True, description="gen-...")],
                   responses={200: type("GenerationResponse", (serializers.Serializer,),
                                        {"data": GenerationSerializer()}), **ERRORS})
    def get(self, request):
        generation_id = request.query_params.get("id")
        if not generation_id:
            raise ValidationError({"id": "is required (a generation id, gen-...)"})
        generation = Generation.objects.filter(organization=self.organization, pk=generation_id[:64]).first()
        if generation is None:
            raise Http404(f"Generation {generation_id[:64]} not found. Records are written a moment after the "
                          "response (usually within 50 ms): retry shortly if the request just finished.")
        return ok(GenerationSerializer(generation).data)


# --- workspace budgets ------------------------------------------------------------------------------------

def _interval(raw: str) -> str:
    if raw not in BudgetInterval.values:
        raise ValidationError({"interval": f"must be one of {', '.join(BudgetInterval.values)}"})
    return raw


class WorkspaceBudgetsView(ManagementView):
    @extend_schema(operation_id="listWorkspaceBudgets", summary="A workspace's budgets",
                   responses={200: BudgetListSerializer, **ERRORS})
    def get(self, request, ref):
        workspace = self.get_workspace(ref)
        order = {name: i for i, name in enumerate(services.BUDGET_ORDER)}
        budgets = sorted(WorkspaceBudget.objects.filter(workspace=workspace), key=lambda b: order[b.interval])
        return ok(BudgetSerializer(budgets, many=True).data,
                  include_byok_in_budgets=workspace.include_byok_in_budgets)


class WorkspaceBudgetView(ManagementView):
    def get_budget(self, workspace, interval):
        budget = WorkspaceBudget.objects.filter(workspace=workspace, interval=interval).first()
        if budget is None:
            raise Http404(f"No {interval} budget is set for this workspace.")
        return budget

    @extend_schema(operation_id="getWorkspaceBudget", summary="One budget of a workspace",
                   responses={200: BudgetResponseSerializer, **ERRORS})
    def get(self, request, ref, interval):
        workspace = self.get_workspace(ref)
        budget = self.get_budget(workspace, _interval(interval))
        return ok(BudgetSerializer(budget).data, include_byok_in_budgets=workspace.include_byok_in_budgets)

    @extend_schema(operation_id="upsertWorkspaceBudget", summary="Set a workspace budget (create or change)",
                   request=BudgetWriteSerializer, responses={200: BudgetResponseSerializer, **ERRORS})
    def put(self, request, ref, interval):
        workspace = self.get_workspace(ref)
        interval = _interval(interval)
        body = parse_body(BudgetWriteSerializer, request)
        budget, _ = services.set_workspace_budget(
            workspace, interval, body["limit_usd"], include_byok_in_budgets=body.get("include_byok_in_budgets"),
            **acting(request))
        workspace.refresh_from_db(fields=["include_byok_in_budgets"])
        return ok(BudgetSerializer(budget).data, include_byok_in_budgets=workspace.include_byok_in_budgets)

    @extend_schema(operation_id="deleteWorkspaceBudget", summary="Remove a workspace budget (idempotent)",
                   responses={200: DeletedSerializer, **ERRORS})
    def delete(self, request, ref, interval):
        workspace = self.get_workspace(ref)
        services.delete_workspace_budget(workspace, _interval(interval), **acting(request))
        return deleted()
