"""The organization: its members (read-only; invitations are a dashboard matter) and its settings."""

from drf_spectacular.utils import OpenApiParameter, extend_schema

from workspaces import services
from workspaces.models import Membership

from .base import ManagementView, ok
from .serializers import (ERRORS, OrganizationMemberSerializer, OrganizationSettingsSerializer,
                          OrganizationSettingsWriteSerializer, acting, envelope, parse_body)

OrganizationMemberListResponse = envelope("OrganizationMemberListResponse", OrganizationMemberSerializer,
                                          many=True, paged=True)
OrganizationSettingsResponse = envelope("OrganizationSettingsResponse", OrganizationSettingsSerializer)


def _settings(organization) -> dict:
    return OrganizationSettingsSerializer(organization).data


class OrganizationMembersView(ManagementView):
    @extend_schema(operation_id="listOrganizationMembers", summary="Members of the organization",
                   parameters=[OpenApiParameter("offset", int), OpenApiParameter("limit", int)],
                   responses={200: OrganizationMemberListResponse, **ERRORS})
    def get(self, request):
        members = (Membership.objects.filter(organization=self.organization).select_related("user")
                   .order_by("created_at", "id"))
        return self.paginate(members, lambda m: OrganizationMemberSerializer(m).data)


class OrganizationSettingsView(ManagementView):
    @extend_schema(operation_id="getOrganizationSettings", summary="Organization settings",
                   responses={200: OrganizationSettingsResponse, **ERRORS})
    def get(self, request):
        return ok(_settings(self.organization))

    @extend_schema(operation_id="updateOrganizationSettings", summary="Change organization settings",
                   request=OrganizationSettingsWriteSerializer,
                   responses={200: OrganizationSettingsResponse, **ERRORS})
    def patch(self, request):
        body = parse_body(OrganizationSettingsWriteSerializer, request, partial=True)
        organization = services.update_organization_settings(self.organization, **body, **acting(request))
        return ok(_settings(organization))
