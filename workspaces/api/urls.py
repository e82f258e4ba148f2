from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from . import audit, keys, organization, workspaces

urlpatterns = [
    path("openapi.json", SpectacularJSONAPIView.as_view(authentication_classes=[], permission_classes=[AllowAny]),
         name="api-openapi"),
    path("docs", SpectacularSwaggerView.as_view(url_name="api-openapi", authentication_classes=[],
                                                permission_classes=[AllowAny]), name="api-docs"),
    path("key", keys.CurrentKeyView.as_view(), name="api-current-key"),
    path("keys", keys.KeysView.as_view(), name="api-keys"),
    path("keys/<str:key_hash>", keys.KeyDetailView.as_view(), name="api-key"),
    path("workspaces", workspaces.WorkspacesView.as_view(), name="api-workspaces"),
    path("workspaces/<str:ref>", workspaces.WorkspaceDetailView.as_view(), name="api-workspace"),
    path("workspaces/<str:ref>/members", workspaces.WorkspaceMembersView.as_view(), name="api-workspace-members"),
    path("workspaces/<str:ref>/members/add", workspaces.WorkspaceMembersAddView.as_view(),
         name="api-workspace-members-add"),
    path("workspaces/<str:ref>/members/remove", workspaces.WorkspaceMembersRemoveView.as_view(),
         name="api-workspace-members-remove"),
    path("organization/members", organization.OrganizationMembersView.as_view(), name="api-organization-members"),
    path("organization/settings", organization.OrganizationSettingsView.as_view(),
         name="api-organization-settings"),
    path("audit-log", audit.AuditLogView.as_view(), name="api-audit-log"),
]
