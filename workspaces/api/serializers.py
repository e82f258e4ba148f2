"""Request validation and response shapes of the management API.

Responses are rendered through these serializers too, so the OpenAPI schema describes exactly what is served.
Field names and nullability follow the official SDK's models: a required field is always present, null or not.
"""

import re
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.models import BudgetInterval
from workspaces.models import SLUG_RE, ProviderSort, ResetInterval


class BearerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "workspaces.api.authentication.ManagementKeyAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An API key: a management key for the management endpoints, any key for /key."}


def Money(**kwargs):  # noqa: N802 - a field factory, read like a field class
    """USD as an exact decimal in, a JSON number out."""
    kwargs.setdefault("max_digits", 24)
    kwargs.setdefault("decimal_places", 12)
    return serializers.DecimalField(coerce_to_string=False, **kwargs)


# --- errors and small envelopes -----------------------------------------------------------------------

class ErrorBodySerializer(serializers.Serializer):
    code = serializers.IntegerField()
    message = serializers.CharField()
    metadata = serializers.DictField(required=False)


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


class DeletedSerializer(serializers.Serializer):
    deleted = serializers.BooleanField()


ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}


def envelope(name: str, data, *, many: bool = False, paged: bool = False, **extra):
    """A `{"data": ...}` (and `total_count` when paged) response component for the schema."""
    fields = {"data": data(many=True) if many else data()}
    if paged:
        fields["total_count"] = serializers.IntegerField()
    fields.update(extra)
    return type(name, (serializers.Serializer,), fields)


# --- keys -----------------------------------------------------------------------------------------------

EXPIRES_AT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


class ExpiresAtField(serializers.Field):
    """An ISO 8601 UTC timestamp that carries seconds (`2027-01-01T00:00:00Z`); minute precision is refused."""

    default_error_messages = {"invalid": "must be an ISO 8601 timestamp with seconds, e.g. 2027-01-01T00:00:00Z"}

    def to_internal_value(self, data):
        if not isinstance(data, str) or not EXPIRES_AT_RE.match(data.strip()):
            self.fail("invalid")
        text = data.strip()
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            self.fail("invalid")
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt_timezone.utc)
        return value.astimezone(dt_timezone.utc)

    def to_representation(self, value):
        return serializers.DateTimeField().to_representation(value)


extend_schema_field(OpenApiTypes.DATETIME)(ExpiresAtField)


class ExternalSerializer(serializers.Serializer):
    user = serializers.CharField(max_length=256)
    api_key = serializers.CharField(required=False)

    def validate_api_key(self, value):
        raise serializers.ValidationError("partner-supplied key values are not supported; omit api_key")


class KeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    limit = Money(required=False, allow_null=True, min_value=Decimal(0))
    limit_reset = serializers.ChoiceField(ResetInterval.values, required=False, allow_null=True)
    include_byok_in_limit = serializers.BooleanField(required=False, default=False)
    expires_at = ExpiresAtField(required=False, allow_null=True)
    workspace_id = serializers.CharField(required=False, max_length=100)
    creator_user_id = serializers.UUIDField(required=False, allow_null=True)
    external = ExternalSerializer(required=False)


class KeyUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    disabled = serializers.BooleanField(required=False)
    limit = Money(required=False, allow_null=True, min_value=Decimal(0))
    limit_reset = serializers.ChoiceField(ResetInterval.values, required=False, allow_null=True)
    include_byok_in_limit = serializers.BooleanField(required=False)
    workspace_id = serializers.CharField(required=False, max_length=100)


class KeySerializer(serializers.Serializer):
    """An API key. Read from an ApiKey that carries `usage_counters` and `limit_left` (see keys.with_usage)."""

    hash = serializers.CharField()
    name = serializers.CharField()
    label = serializers.CharField()
    disabled = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    limit = Money(allow_null=True)
    limit_remaining = Money(allow_null=True, source="limit_left")
    limit_reset = serializers.CharField(allow_null=True)
    include_byok_in_limit = serializers.BooleanField()
    usage = Money(source="usage_counters.usage")
    usage_daily = Money(source="usage_counters.usage_daily")
    usage_weekly = Money(source="usage_counters.usage_weekly")
    usage_monthly = Money(source="usage_counters.usage_monthly")
    byok_usage = Money(source="usage_counters.byok_usage")
    byok_usage_daily = Money(source="usage_counters.byok_usage_daily")
    byok_usage_weekly = Money(source="usage_counters.byok_usage_weekly")
    byok_usage_monthly = Money(source="usage_counters.byok_usage_monthly")
    creator_user_id = serializers.CharField(source="created_by_id", allow_null=True)
    external_user = serializers.CharField(allow_null=True)
    workspace_id = serializers.CharField(allow_null=True)


class KeyBudgetSerializer(serializers.Serializer):
    scope = serializers.CharField()
    limit_usd = Money()
    spend_usd = Money()
    remaining_usd = Money()
    reset_interval = serializers.CharField(allow_null=True)
    resets_at = serializers.DateTimeField(allow_null=True)
    include_byok = serializers.BooleanField()
    guardrail_id = serializers.CharField(allow_null=True)
    budget_id = serializers.CharField(allow_null=True)


class FreeModelRequestsSerializer(serializers.Serializer):
    limit = serializers.IntegerField()
    used = serializers.IntegerField()
    remaining = serializers.IntegerField()


class RateLimitSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    interval = serializers.CharField()
    note = serializers.CharField()


class CurrentKeySerializer(serializers.Serializer):
    label = serializers.CharField()
    limit = Money(allow_null=True)
    limit_remaining = Money(allow_null=True)
    limit_reset = serializers.CharField(allow_null=True)
    include_byok_in_limit = serializers.BooleanField()
    usage = Money()
    usage_daily = Money()
    usage_weekly = Money()
    usage_monthly = Money()
    byok_usage = Money()
    byok_usage_daily = Money()
    byok_usage_weekly = Money()
    byok_usage_monthly = Money()
    expires_at = serializers.DateTimeField(allow_null=True)
    creator_user_id = serializers.CharField(allow_null=True)
    is_free_tier = serializers.BooleanField()
    is_management_key = serializers.BooleanField()
    is_provisioning_key = serializers.BooleanField(help_text="Deprecated: same as is_management_key.")
    organization_id = serializers.CharField(allow_null=True)
    workspace_id = serializers.CharField(allow_null=True)
    allowed_data_regions = serializers.ListField(child=serializers.CharField())
    free_model_daily_requests = FreeModelRequestsSerializer()
    rate_limit = RateLimitSerializer(help_text="Deprecated: always -1 requests.")
    budgets = KeyBudgetSerializer(many=True)
    effective_budget = KeyBudgetSerializer(allow_null=True)


# --- workspaces -----------------------------------------------------------------------------------------

SERVER_TOOL_RE = re.compile(r"^openrouter:[a-z0-9_]+$")


class ServerToolField(serializers.CharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not SERVER_TOOL_RE.match(value):
            raise serializers.ValidationError(f"'{value}' is not a server tool name such as openrouter:web_search")
        return value


class WorkspaceWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.RegexField(SLUG_RE, max_length=100, error_messages={
        "invalid": "use lowercase letters and digits in segments separated by single hyphens (e.g. team-search)"})
    description = serializers.CharField(max_length=2000, required=False, allow_null=True, allow_blank=True)
    default_text_model = serializers.CharField(max_length=200, required=False, allow_null=True)
    default_image_model = serializers.CharField(max_length=200, required=False, allow_null=True)
    default_provider_sort = serializers.ChoiceField(ProviderSort.values, required=False, allow_null=True)
    disabled_server_tools = serializers.ListField(child=ServerToolField(max_length=100), required=False,
                                                  allow_null=True, max_length=100)
    io_logging_api_key_ids = serializers.ListField(child=serializers.IntegerField(min_value=0), required=False,
                                                   allow_null=True, max_length=1000)
    io_logging_sampling_rate = serializers.DecimalField(max_digits=6, decimal_places=4, min_value=Decimal("0.0001"),
                                                        max_value=Decimal(1), required=False, coerce_to_string=False)
    is_data_discount_logging_enabled = serializers.BooleanField(required=False)
    is_observability_broadcast_enabled = serializers.BooleanField(required=False)
    is_observability_io_logging_enabled = serializers.BooleanField(required=False)

    def validate_disabled_server_tools(self, value):
        # The reference: an empty list clears it, like null.
        return sorted(set(value)) or None if value is not None else None


class WorkspaceSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    slug = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(allow_null=True)
    created_by = serializers.CharField(source="created_by_id", allow_null=True)
    default_guardrail_id = serializers.CharField()
    default_text_model = serializers.CharField(allow_null=True)
    default_image_model = serializers.CharField(allow_null=True)
    default_provider_sort = serializers.CharField(allow_null=True)
    disabled_server_tools = serializers.ListField(child=serializers.CharField(), allow_null=True)
    io_logging_api_key_ids = serializers.ListField(child=serializers.IntegerField(), allow_null=True)
    io_logging_sampling_rate = serializers.DecimalField(max_digits=6, decimal_places=4, coerce_to_string=False)
    is_data_discount_logging_enabled = serializers.BooleanField()
    is_observability_broadcast_enabled = serializers.BooleanField()
    is_observability_io_logging_enabled = serializers.BooleanField()
    include_byok_in_budgets = serializers.BooleanField()
    is_default = serializers.BooleanField(help_text="Our addition: the organization's Default workspace.")


class WorkspaceMemberSerializer(serializers.Serializer):
    id = serializers.CharField()
    workspace_id = serializers.CharField()
    user_id = serializers.CharField()
    role = serializers.CharField()
    created_at = serializers.DateTimeField()


class UserIdsSerializer(serializers.Serializer):
    user_ids = serializers.ListField(child=serializers.CharField(max_length=100), min_length=1, max_length=500)


class MembersAddedSerializer(serializers.Serializer):
    added_count = serializers.IntegerField()
    data = WorkspaceMemberSerializer(many=True)


class MembersRemovedSerializer(serializers.Serializer):
    removed_count = serializers.IntegerField()


# --- budgets --------------------------------------------------------------------------------------------

class BudgetWriteSerializer(serializers.Serializer):
    # The smallest amount counted (1e-10 USD) is the least a budget can be; the schema says so too.
    limit_usd = Money(max_digits=22, decimal_places=10, min_value=Decimal("1e-10"),
                      error_messages={"min_value": "must be greater than 0"})
    include_byok_in_budgets = serializers.BooleanField(required=False)


class BudgetSerializer(serializers.Serializer):
    id = serializers.CharField()
    workspace_id = serializers.CharField()
    limit_usd = Money()
    reset_interval = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(serializers.ChoiceField(choices=["daily", "weekly", "monthly"], allow_null=True))
    def get_reset_interval(self, budget):
        return None if budget.interval == BudgetInterval.LIFETIME else budget.interval


class BudgetResponseSerializer(serializers.Serializer):
    data = BudgetSerializer()
    include_byok_in_budgets = serializers.BooleanField()


class BudgetListSerializer(serializers.Serializer):
    data = BudgetSerializer(many=True)
    include_byok_in_budgets = serializers.BooleanField()


# --- organization ---------------------------------------------------------------------------------------

class OrganizationMemberSerializer(serializers.Serializer):
    id = serializers.CharField(source="user_id")
    email = serializers.CharField(source="user.email")
    first_name = serializers.SerializerMethodField()
    last_name = serializers.SerializerMethodField()
    role = serializers.SerializerMethodField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_first_name(self, membership):
        return membership.user.first_name or None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_last_name(self, membership):
        return membership.user.last_name or None

    @extend_schema_field(serializers.ChoiceField(choices=["org:admin", "org:member"]))
    def get_role(self, membership):
        return f"org:{membership.role}"


class OrganizationSettingsSerializer(serializers.Serializer):
    id = serializers.CharField()
    is_filtered_model_catalog_enabled = serializers.BooleanField()


class OrganizationSettingsWriteSerializer(serializers.Serializer):
    is_filtered_model_catalog_enabled = serializers.BooleanField()


# --- audit log ------------------------------------------------------------------------------------------

class ActorSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["user", "key", "system"])
    id = serializers.CharField(allow_null=True)
    label = serializers.CharField()


class AuditEntrySerializer(serializers.Serializer):
    id = serializers.CharField()
    created_at = serializers.DateTimeField()
    actor = serializers.SerializerMethodField()
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    object_repr = serializers.CharField()
    changes = serializers.DictField()

    @extend_schema_field(ActorSerializer)
    def get_actor(self, entry):
        if entry.actor_key_hash:
            return {"type": "key", "id": entry.actor_key_hash, "label": entry.actor_label}
        if entry.actor_user_id:
            return {"type": "user", "id": str(entry.actor_user_id), "label": entry.actor_label}
        return {"type": "system", "id": None, "label": entry.actor_label or "system"}


# --- helpers for the views ------------------------------------------------------------------------------

def parse_body(serializer_class, request, *, partial: bool = False) -> dict:
    """The validated body: only the fields sent when `partial`. A bad field raises a 400 naming it."""
    serializer = serializer_class(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def acting(request) -> dict:
    """The audit actor of a management API call: the key, which acts for the organization."""
    return {"by_key": getattr(request.user, "api_key", None)}
