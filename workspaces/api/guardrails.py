"""Guardrails and their key and member assignments (management key)."""

from decimal import ROUND_HALF_UP, Decimal

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from workspaces import policy_services as ps
from workspaces.models import GuardrailKeyAssignment, GuardrailMemberAssignment, ResetInterval

from .base import ManagementView, created, deleted, ok
from .serializers import ERRORS, DeletedSerializer, envelope

PAGING = [OpenApiParameter("offset", int), OpenApiParameter("limit", int, description="1-100, default 50")]
WORKSPACE_FILTER = OpenApiParameter("workspace_id", str, description="Workspace id or slug (default: the Default one)")

# --- shared by the policy endpoints (guardrails, BYOK, presets, observability) ----------------------------


def parse(serializer_class, request, *, partial: bool = False) -> dict:
    """The request body checked for types: only the fields sent when `partial`."""
    serializer = serializer_class(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def ok_count(name: str, count: int) -> Response:
    return Response({name: count})


class MoneyField(serializers.DecimalField):
    """USD as an exact Decimal: clients send JSON numbers, so float noise past 12 places is rounded off."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", Decimal(0))
        kwargs.setdefault("max_value", Decimal(10) ** 12)
        super().__init__(max_digits=None, decimal_places=None, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if abs(value) > self.max_value:
            raise serializers.ValidationError(f"must be at most {self.max_value:,}")  # before quantize overflows
        return value.quantize(Decimal("1e-12"), rounding=ROUND_HALF_UP)


def string_list(**kwargs):
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_null", True)
    kwargs.setdefault("max_length", 1000)
    return serializers.ListField(child=serializers.CharField(max_length=200), **kwargs)


def nullable_bool():
    return serializers.BooleanField(required=False, allow_null=True)


# --- guardrails ------------------------------------------------------------------------------------------


class ContentFilterIn(serializers.Serializer):
    # The pattern itself is judged by the service, which answers invalid_regex_pattern.
    pattern = serializers.CharField(trim_whitespace=False, allow_blank=True)
    action = serializers.ChoiceField(choices=ps.FILTER_ACTIONS)
    label = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200)


class ContentFilterBuiltinIn(serializers.Serializer):
    slug = serializers.ChoiceField(choices=list(ps.BUILTIN_FILTERS))
    action = serializers.ChoiceField(choices=ps.FILTER_ACTIONS)
    label = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200)
    scan_scope = serializers.ChoiceField(choices=["user_only", "all_messages"], required=False, allow_null=True)


class GuardrailIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=10_000)
    workspace_id = serializers.CharField(required=False, allow_null=True, max_length=100)
    limit_usd = MoneyField(required=False, allow_null=True)
    reset_interval = serializers.ChoiceField(choices=ResetInterval.values, required=False, allow_null=True)
    include_byok_in_budgets = serializers.BooleanField(required=False)
    allowed_models = string_list()
    ignored_models = string_list()
    allowed_providers = string_list()
    ignored_providers = string_list()
    enforce_zdr = nullable_bool()
    enforce_zdr_anthropic = nullable_bool()
    enforce_zdr_openai = nullable_bool()
    enforce_zdr_google = nullable_bool()
    enforce_zdr_xai = nullable_bool()
    enforce_zdr_other = nullable_bool()
    allow_safety_retention_google = nullable_bool()
    allow_safety_retention_other = nullable_bool()
    enable_free_model_publication = nullable_bool()
    enable_free_model_training = nullable_bool()
    enable_paid_model_training = nullable_bool()
    allowed_data_regions = serializers.ListField(child=serializers.ChoiceField(choices=ps.REGIONS),
                                                 required=False, allow_null=True)
    content_filters = serializers.ListField(child=ContentFilterIn(), required=False, allow_null=True,
                                            max_length=100)
    content_filter_builtins = serializers.ListField(child=ContentFilterBuiltinIn(), required=False,
                                                    allow_null=True, max_length=20)


class KeyHashesIn(serializers.Serializer):
    key_hashes = serializers.ListField(child=serializers.CharField(max_length=64), max_length=1000)


class MemberIdsIn(serializers.Serializer):
    member_user_ids = serializers.ListField(child=serializers.CharField(max_length=64), max_length=1000)


def guardrail_data(guardrail) -> dict:
    return {
        "id": str(guardrail.id),
        "name": guardrail.name,
        "description": guardrail.description,
        "workspace_id": str(guardrail.workspace_id) if guardrail.workspace_id else None,
        "is_workspace_default": guardrail.is_workspace_default,
        "limit_usd": guardrail.limit_usd,
        "reset_interval": guardrail.reset_interval,
        "include_byok_in_budgets": guardrail.include_byok_in_budgets,
        **{name: getattr(guardrail, name) for name in (
            "allowed_models", "ignored_models", "allowed_providers", "ignored_providers", "enforce_zdr",
            "enforce_zdr_anthropic", "enforce_zdr_openai", "enforce_zdr_google", "enforce_zdr_xai",
            "enforce_zdr_other", "allow_safety_retention_google", "allow_safety_retention_other",
            "enable_free_model_publication", "enable_free_model_training", "enable_paid_model_training",
            "allowed_data_regions", "content_filters", "content_filter_builtins")},
        "created_at": guardrail.created_at,
        "updated_at": guardrail.updated_at,
    }


def key_assignment_data(assignment) -> dict:
    return {
        "id": str(assignment.id),
        "guardrail_id": str(assignment.guardrail_id),
        "key_hash": assignment.api_key.hash,
        "key_name": assignment.api_key.name,
        "key_label": assignment.api_key.label,
        "assigned_by": str(assignment.assigned_by_id) if assignment.assigned_by_id else None,
        "created_at": assignment.created_at,
    }


def member_assignment_data(assignment) -> dict:
    return {
        "id": str(assignment.id),
        "guardrail_id": str(assignment.guardrail_id),
        "user_id": str(assignment.user_id),
        "organization_id": str(assignment.organization_id),
        "assigned_by": str(assignment.assigned_by_id) if assignment.assigned_by_id else None,
        "created_at": assignment.created_at,
    }


# --- what the schema says is served (the dicts above render it) -------------------------------------------

def nullable_strings():
    return serializers.ListField(child=serializers.CharField(), allow_null=True)


class ContentFilterOut(serializers.Serializer):
    pattern = serializers.CharField()
    action = serializers.CharField()
    label = serializers.CharField(required=False, allow_null=True)


class ContentFilterBuiltinOut(serializers.Serializer):
    slug = serializers.CharField()
    action = serializers.CharField()
    label = serializers.CharField()
    scan_scope = serializers.CharField(required=False)


GuardrailOut = type("GuardrailOut", (serializers.Serializer,), {
    "id": serializers.CharField(), "name": serializers.CharField(),
    "description": serializers.CharField(allow_null=True), "workspace_id": serializers.CharField(allow_null=True),
    "is_workspace_default": serializers.BooleanField(), "limit_usd": serializers.FloatField(allow_null=True),
    "reset_interval": serializers.CharField(allow_null=True), "include_byok_in_budgets": serializers.BooleanField(),
    **{name: nullable_strings() for name in ("allowed_models", "ignored_models", "allowed_providers",
                                             "ignored_providers", "allowed_data_regions")},
    **{name: serializers.BooleanField(allow_null=True) for name in (
        "enforce_zdr", "enforce_zdr_anthropic", "enforce_zdr_openai", "enforce_zdr_google", "enforce_zdr_xai",
        "enforce_zdr_other", "allow_safety_retention_google", "allow_safety_retention_other",
        "enable_free_model_publication", "enable_free_model_training", "enable_paid_model_training")},
    "content_filters": serializers.ListField(child=ContentFilterOut(), allow_null=True),
    "content_filter_builtins": serializers.ListField(child=ContentFilterBuiltinOut(), allow_null=True),
    "created_at": serializers.DateTimeField(), "updated_at": serializers.DateTimeField(allow_null=True),
})


class KeyAssignmentOut(serializers.Serializer):
    id = serializers.CharField()
    guardrail_id = serializers.CharField()
    key_hash = serializers.CharField()
    key_name = serializers.CharField()
    key_label = serializers.CharField()
    assigned_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class MemberAssignmentOut(serializers.Serializer):
    id = serializers.CharField()
    guardrail_id = serializers.CharField()
    user_id = serializers.CharField()
    organization_id = serializers.CharField()
    assigned_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


GuardrailResponse = envelope("GuardrailResponse", GuardrailOut)
GuardrailListResponse = envelope("GuardrailListResponse", GuardrailOut, many=True, paged=True)
KeyAssignmentListResponse = envelope("KeyAssignmentListResponse", KeyAssignmentOut, many=True, paged=True)
MemberAssignmentListResponse = envelope("MemberAssignmentListResponse", MemberAssignmentOut, many=True, paged=True)
AssignedCount = type("AssignedCount", (serializers.Serializer,), {"assigned_count": serializers.IntegerField()})
UnassignedCount = type("UnassignedCount", (serializers.Serializer,), {"unassigned_count": serializers.IntegerField()})


class GuardrailViewMixin:
    def get_guardrail(self, guardrail_id):
        return ps.get_guardrail(organization=self.organization, guardrail_id=guardrail_id)


class GuardrailListView(ManagementView):
    @extend_schema(operation_id="listGuardrails", summary="Guardrails of a workspace",
                   parameters=[*PAGING, WORKSPACE_FILTER], responses={200: GuardrailListResponse, **ERRORS})
    def get(self, request):
        workspace = self.workspace_or_default(request.query_params.get("workspace_id"))
        guardrails = workspace.guardrails.filter(organization=self.organization).order_by("-created_at", "id")
        return self.paginate(guardrails, guardrail_data)

    @extend_schema(operation_id="createGuardrail", summary="Create a guardrail", request=GuardrailIn,
                   responses={201: GuardrailResponse, **ERRORS})
    def post(self, request):
        data = parse(GuardrailIn, request)
        workspace = self.workspace_or_default(data.pop("workspace_id", None))
        guardrail = ps.create_guardrail(actor=request.user, organization=self.organization,
                                 workspace=workspace, data=data)
        return created(guardrail_data(guardrail))


class GuardrailDetailView(GuardrailViewMixin, ManagementView):
    @extend_schema(operation_id="getGuardrail", summary="One guardrail (a workspace's default one too)",
                   responses={200: GuardrailResponse, **ERRORS})
    def get(self, request, guardrail_id):
        return ok(guardrail_data(self.get_guardrail(guardrail_id)))

    @extend_schema(operation_id="updateGuardrail", summary="Change a guardrail (only the fields sent)",
                   request=GuardrailIn(partial=True), responses={200: GuardrailResponse, **ERRORS})
    def patch(self, request, guardrail_id):
        guardrail = self.get_guardrail(guardrail_id)
        data = parse(GuardrailIn, request, partial=True)
        data.pop("workspace_id", None)  # a guardrail stays in its workspace
        guardrail = ps.update_guardrail(actor=request.user, guardrail=guardrail, data=data)
        return ok(guardrail_data(guardrail))

    @extend_schema(operation_id="deleteGuardrail", summary="Delete a guardrail and its assignments",
                   responses={200: DeletedSerializer, **ERRORS})
    def delete(self, request, guardrail_id):
        guardrail = self.get_guardrail(guardrail_id)
        ps.delete_guardrail(actor=request.user, guardrail=guardrail)
        return deleted()


class GuardrailKeyAssignmentsView(GuardrailViewMixin, ManagementView):
    @extend_schema(operation_id="listGuardrailKeyAssignments", summary="Keys assigned to a guardrail",
                   parameters=PAGING, responses={200: KeyAssignmentListResponse, **ERRORS})
    def get(self, request, guardrail_id):
        guardrail = self.get_guardrail(guardrail_id)
        assignments = (GuardrailKeyAssignment.objects.filter(guardrail_id=guardrail.id)
                       .select_related("api_key").order_by("-created_at", "id"))
        return self.paginate(assignments, key_assignment_data)

    @extend_schema(operation_id="bulkAssignKeysToGuardrail", summary="Assign keys (moving them from any other)",
                   request=KeyHashesIn, responses={200: AssignedCount, **ERRORS})
    def post(self, request, guardrail_id):
        guardrail = self.get_guardrail(guardrail_id)
        hashes = parse(KeyHashesIn, request)["key_hashes"]
        count = ps.assign_keys_to_guardrail(actor=request.user, guardrail=guardrail,
                             key_hashes=hashes)
        return ok_count("assigned_count", count)


class GuardrailKeyUnassignView(GuardrailViewMixin, ManagementView):
    @extend_schema(operation_id="bulkUnassignKeysFromGuardrail", summary="Unassign keys", request=KeyHashesIn,
                   responses={200: UnassignedCount, **ERRORS})
    def post(self, request, guardrail_id):
        guardrail = self.get_guardrail(guardrail_id)
        hashes = parse(KeyHashesIn, request)["key_hashes"]
        count = ps.unassign_keys_from_guardrail(actor=request.user, guardrail=guardrail,
                             key_hashes=hashes)
        return ok_count("unassigned_count", count)


class GuardrailMemberAssignmentsView(GuardrailViewMixin, ManagementView):
    @extend_schema(operation_id="listGuardrailMemberAssignments", summary="Members assigned to a guardrail",
                   parameters=PAGING, responses={200: MemberAssignmentListResponse, **ERRORS})
    def get(self, request, guardrail_id):
        guardrail = self.get_guardrail(guardrail_id)
        assignments = GuardrailMemberAssignment.objects.filter(guardrail_id=guardrail.id).order_by("-created_at",
                                                                                                   "id")
        return self.paginate(assignments, member_assignment_data)

    @extend_schema(operation_id="bulkAssignMembersToGuardrail", summary="Assign members (moving them)",
                   request=MemberIdsIn, responses={200: AssignedCount, **ERRORS})
    def post(self, request, guardrail_id):
        guardrail = self.get_guardrail(guardrail_id)
        user_ids = parse(MemberIdsIn, request)["member_user_ids"]
        count = ps.assign_members_to_guardrail(actor=request.user, guardrail=guardrail,
                             user_ids=user_ids)
        return ok_count("assigned_count", count)


class GuardrailMemberUnassignView(GuardrailViewMixin, ManagementView):
    @extend_schema(operation_id="bulkUnassignMembersFromGuardrail", summary="Unassign members",
                   request=MemberIdsIn, responses={200: UnassignedCount, **ERRORS})
    def post(self, request, guardrail_id):
        guardrail = self.get_guardrail(guardrail_id)
        user_ids = parse(MemberIdsIn, request)["member_user_ids"]
        count = ps.unassign_members_from_guardrail(actor=request.user, guardrail=guardrail,
                             user_ids=user_ids)
        return ok_count("unassigned_count", count)


class OrganizationKeyAssignmentsView(ManagementView):
    @extend_schema(operation_id="listKeyAssignments", summary="Every key assignment of the organization",
                   parameters=PAGING, responses={200: KeyAssignmentListResponse, **ERRORS})
    def get(self, request):
        assignments = (GuardrailKeyAssignment.objects.filter(guardrail__organization=self.organization)
                       .select_related("api_key").order_by("-created_at", "id"))
        return self.paginate(assignments, key_assignment_data)


class OrganizationMemberAssignmentsView(ManagementView):
    @extend_schema(operation_id="listMemberAssignments", summary="Every member assignment of the organization",
                   parameters=PAGING, responses={200: MemberAssignmentListResponse, **ERRORS})
    def get(self, request):
        assignments = GuardrailMemberAssignment.objects.filter(organization=self.organization).order_by(
            "-created_at", "id")
        return self.paginate(assignments, member_assignment_data)

