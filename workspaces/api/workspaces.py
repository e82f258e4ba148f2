"""Workspaces and their members: `/workspaces`, `/workspaces/{id|slug}`, `/workspaces/{id}/members...`."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from workspaces import services
from workspaces.models import Workspace, WorkspaceMembership

from .base import ManagementView, created, deleted, ok, parse_bool
from .serializers import (ERRORS, DeletedSerializer, MembersAddedSerializer, MembersRemovedSerializer,
                          UserIdsSerializer, WorkspaceMemberSerializer, WorkspaceSerializer, WorkspaceWriteSerializer,
                          acting, envelope, parse_body)

PAGING = [OpenApiParameter("offset", int), OpenApiParameter("limit", int, description="1-100, default 50")]
WorkspaceResponse = envelope("WorkspaceResponse", WorkspaceSerializer)
WorkspaceListResponse = envelope("WorkspaceListResponse", WorkspaceSerializer, many=True, paged=True)
WorkspaceMemberListResponse = envelope("WorkspaceMemberListResponse", WorkspaceMemberSerializer, many=True,
                                       paged=True)


def _write_fields(body: dict) -> dict:
    if body.get("description") == "":
        body["description"] = None
    return body


class WorkspacesView(ManagementView):
    @extend_schema(operation_id="listWorkspaces", summary="List workspaces", parameters=PAGING,
                   responses={200: WorkspaceListResponse, **ERRORS})
    def get(self, request):
        workspaces = Workspace.objects.filter(organization=self.organization).order_by("-is_default", "name", "id")
        return self.paginate(workspaces, lambda ws: WorkspaceSerializer(ws).data)

    @extend_schema(operation_id="createWorkspace", summary="Create a workspace", request=WorkspaceWriteSerializer,
                   responses={201: WorkspaceResponse, **ERRORS})
    def post(self, request):
        body = _write_fields(parse_body(WorkspaceWriteSerializer, request))
        workspace = services.create_workspace(self.organization, created_by=request.user.user, **body,
                                              **acting(request))
        return created(WorkspaceSerializer(workspace).data)


class WorkspaceDetailView(ManagementView):
    @extend_schema(operation_id="getWorkspace", summary="One workspace, by id or slug",
                   responses={200: WorkspaceResponse, **ERRORS})
    def get(self, request, ref):
        return ok(WorkspaceSerializer(self.get_workspace(ref)).data)

    @extend_schema(operation_id="updateWorkspace", summary="Change a workspace (only the fields sent)",
                   request=WorkspaceWriteSerializer(partial=True), responses={200: WorkspaceResponse, **ERRORS})
    def patch(self, request, ref):
        workspace = self.get_workspace(ref)
        body = _write_fields(parse_body(WorkspaceWriteSerializer, request, partial=True))
        workspace = services.update_workspace(workspace, **body, **acting(request))
        return ok(WorkspaceSerializer(workspace).data)

    @extend_schema(
        operation_id="deleteWorkspace", summary="Delete a workspace (refused while it has active keys)",
        parameters=[OpenApiParameter("confirm_default_workspace_deletion", bool,
                                     description="Required (true) to delete the Default workspace; else 403.")],
        responses={200: DeletedSerializer, **ERRORS})
    def delete(self, request, ref):
        workspace = self.get_workspace(ref)
        services.delete_workspace(workspace, confirm_default=parse_bool(request, "confirm_default_workspace_deletion"),
                                  **acting(request))
        return deleted()


def _member(membership) -> dict:
    return WorkspaceMemberSerializer({"id": membership.pk, "workspace_id": membership.workspace_id,
                                      "user_id": membership.user_id, "role": membership.role,
                                      "created_at": membership.created_at}).data


class WorkspaceMembersView(ManagementView):
    @extend_schema(operation_id="listWorkspaceMembers", summary="Members of a workspace", parameters=PAGING,
                   responses={200: WorkspaceMemberListResponse, **ERRORS})
    def get(self, request, ref):
        workspace = self.get_workspace(ref)
        members = WorkspaceMembership.objects.filter(workspace=workspace).order_by("created_at", "id")
        return self.paginate(members, _member)


class WorkspaceMembersAddView(ManagementView):
    @extend_schema(operation_id="bulkAddWorkspaceMembers", summary="Add organization members to a workspace",
                   request=UserIdsSerializer, responses={200: MembersAddedSerializer, **ERRORS})
    def post(self, request, ref):
        workspace = self.get_workspace(ref)
        body = parse_body(UserIdsSerializer, request)
        added = services.add_workspace_members(workspace, body["user_ids"], **acting(request))
        return Response({"added_count": len(added), "data": [_member(m) for m in added]})


class WorkspaceMembersRemoveView(ManagementView):
    @extend_schema(operation_id="bulkRemoveWorkspaceMembers", summary="Remove members from a workspace",
                   request=UserIdsSerializer, responses={200: MembersRemovedSerializer, **ERRORS})
    def post(self, request, ref):
        workspace = self.get_workspace(ref)
        body = parse_body(UserIdsSerializer, request)
        removed = services.remove_workspace_members(workspace, body["user_ids"], **acting(request))
        return Response({"removed_count": removed})
