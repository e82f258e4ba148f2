"""`GET /audit-log`: who changed what in the organization (our addition to the reference)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError

from workspaces.models import AuditLogEntry

from .base import ManagementView
from .serializers import ERRORS, AuditEntrySerializer, envelope

ACTIONS = ("create", "update", "delete")
AuditLogResponse = envelope("AuditLogResponse", AuditEntrySerializer, many=True, paged=True)


class AuditLogView(ManagementView):
    @extend_schema(
        operation_id="listAuditLog", summary="The organization's audit log, newest first",
        parameters=[OpenApiParameter("object_type", str, description="e.g. ApiKey, Workspace, WorkspaceBudget"),
                    OpenApiParameter("action", str, enum=ACTIONS),
                    OpenApiParameter("offset", int), OpenApiParameter("limit", int)],
        responses={200: AuditLogResponse, **ERRORS})
    def get(self, request):
        entries = AuditLogEntry.objects.filter(organization=self.organization).order_by("-created_at", "-id")
        object_type = request.query_params.get("object_type")
        if object_type:
            entries = entries.filter(object_type=object_type)
        action = request.query_params.get("action")
        if action:
            if action not in ACTIONS:
                raise ValidationError({"action": f"must be one of {', '.join(ACTIONS)}"})
            entries = entries.filter(action=action)
        return self.paginate(entries, lambda entry: AuditEntrySerializer(entry).data)
