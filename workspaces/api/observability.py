"""Observability (Broadcast) destinations (management key). Secret config values are shown masked."""

from decimal import ROUND_HALF_UP, Decimal

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from workspaces import policy_services as ps
from workspaces.models import ObservabilityDestination

from .base import ManagementView, created, deleted, is_uuid, ok
from .guardrails import PAGING, WORKSPACE_FILTER, nullable_strings, parse, string_list
from .serializers import ERRORS, DeletedSerializer, envelope


class SamplingRateField(serializers.DecimalField):
    """A share between 0.0001 and 1, kept to four decimal places."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=None, decimal_places=None, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if abs(value) <= 1:
            value = value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        if not Decimal("0.0001") <= value <= 1:
            raise serializers.ValidationError("must be between 0.0001 and 1")
        return value


class DestinationIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    type = serializers.CharField(max_length=32)
    config = serializers.DictField()
    workspace_id = serializers.CharField(required=False, allow_null=True, max_length=100)
    enabled = serializers.BooleanField(required=False)
    api_key_hashes = string_list()
    sampling_rate = SamplingRateField(required=False)
    privacy_mode = serializers.BooleanField(required=False)
    # Checked field by field (names and operators from the reference) by the service.
    filter_rules = serializers.JSONField(required=False, allow_null=True)
    broadcast_generation_cost = serializers.BooleanField(required=False)
    broadcast_generation_cost_allocation = serializers.BooleanField(required=False)
    broadcast_generation_identity = serializers.BooleanField(required=False)
    broadcast_generation_request_context = serializers.BooleanField(required=False)
    regions = serializers.ListField(child=serializers.CharField(max_length=16), required=False, max_length=10)


def destination_data(destination: ObservabilityDestination) -> dict:
    return {
        "id": str(destination.id),
        "name": destination.name,
        "type": destination.type,
        "enabled": destination.enabled,
        "workspace_id": str(destination.workspace_id),
        "config": destination.config,  # secrets were masked before they were stored here
        "api_key_hashes": destination.api_key_hashes,
        "sampling_rate": destination.sampling_rate,
        "privacy_mode": destination.privacy_mode,
        "filter_rules": destination.filter_rules,
        "broadcast_generation_cost": destination.broadcast_generation_cost,
        "broadcast_generation_cost_allocation": destination.broadcast_generation_cost_allocation,
        "broadcast_generation_identity": destination.broadcast_generation_identity,
        "broadcast_generation_request_context": destination.broadcast_generation_request_context,
        "regions": destination.regions,
        "created_at": destination.created_at,
        "updated_at": destination.updated_at or destination.created_at,
    }


class DestinationOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    type = serializers.CharField()
    enabled = serializers.BooleanField()
    workspace_id = serializers.CharField()
    config = serializers.DictField(help_text="Type-specific; secret values are masked (e.g. sk-l...AbCd)")
    api_key_hashes = nullable_strings()
    sampling_rate = serializers.FloatField()
    privacy_mode = serializers.BooleanField()
    filter_rules = serializers.DictField(allow_null=True)
    broadcast_generation_cost = serializers.BooleanField()
    broadcast_generation_cost_allocation = serializers.BooleanField()
    broadcast_generation_identity = serializers.BooleanField()
    broadcast_generation_request_context = serializers.BooleanField()
    regions = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


DestinationResponse = envelope("DestinationResponse", DestinationOut)
DestinationListResponse = envelope("DestinationListResponse", DestinationOut, many=True, paged=True)


class DestinationListView(ManagementView):
    @extend_schema(operation_id="listObservabilityDestinations", summary="Destinations of a workspace",
                   parameters=[*PAGING, WORKSPACE_FILTER], responses={200: DestinationListResponse, **ERRORS})
    def get(self, request):
        workspace = self.workspace_or_default(request.query_params.get("workspace_id"))
        destinations = ObservabilityDestination.objects.filter(organization=self.organization, workspace=workspace)
        return self.paginate(destinations.order_by("-created_at", "id"), destination_data)

    @extend_schema(operation_id="createObservabilityDestination", summary="Create a destination",
                   request=DestinationIn, responses={201: DestinationResponse, **ERRORS})
    def post(self, request):
        data = parse(DestinationIn, request)
        workspace = self.workspace_or_default(data.pop("workspace_id", None))
        destination = ps.create_destination(actor=request.user, organization=self.organization,
                                   workspace=workspace, dest_type=data.pop("type"), config=data.pop("config"),
                                   data=data)
        return created(destination_data(destination))


class DestinationDetailView(ManagementView):
    def get_destination(self, destination_id) -> ObservabilityDestination:
        found = (ObservabilityDestination.objects.filter(organization=self.organization, id=destination_id).first()
                 if is_uuid(destination_id) else None)
        if found is None:
            raise Http404(f"Observability destination {destination_id} not found.")
        return found

    @extend_schema(operation_id="getObservabilityDestination", summary="One destination",
                   responses={200: DestinationResponse, **ERRORS})
    def get(self, request, destination_id):
        return ok(destination_data(self.get_destination(destination_id)))

    @extend_schema(operation_id="updateObservabilityDestination",
                   summary="Change a destination (only the fields sent; `config` merges)",
                   request=DestinationIn(partial=True), responses={200: DestinationResponse, **ERRORS})
    def patch(self, request, destination_id):
        destination = self.get_destination(destination_id)
        data = parse(DestinationIn, request, partial=True)
        if "type" in data and data["type"] != destination.type:
            raise serializers.ValidationError({"type": "cannot be changed; create a new destination"})
        data.pop("type", None)
        data.pop("workspace_id", None)  # a destination stays in its workspace
        destination = ps.update_destination(actor=request.user, destination=destination,
                                   config=data.pop("config", None), data=data)
        return ok(destination_data(destination))

    @extend_schema(operation_id="deleteObservabilityDestination", summary="Delete a destination",
                   responses={200: DeletedSerializer, **ERRORS})
    def delete(self, request, destination_id):
        ps.delete_destination(actor=request.user, destination=self.get_destination(destination_id))
        return deleted()
