from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from . import audit, keys, organization, workspaces
from . import byok, guardrails, observability, presets

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

urlpatterns += [
    path("guardrails", guardrails.GuardrailListView.as_view(), name="api-guardrails"),
    path("guardrails/assignments/keys", guardrails.OrganizationKeyAssignmentsView.as_view(),
         name="api-guardrail-key-assignments-all"),
    path("guardrails/assignments/members", guardrails.OrganizationMemberAssignmentsView.as_view(),
         name="api-guardrail-member-assignments-all"),
    path("guardrails/<str:guardrail_id>", guardrails.GuardrailDetailView.as_view(), name="api-guardrail"),
    path("guardrails/<str:guardrail_id>/assignments/keys", guardrails.GuardrailKeyAssignmentsView.as_view(),
         name="api-guardrail-key-assignments"),
    path("guardrails/<str:guardrail_id>/assignments/keys/remove", guardrails.GuardrailKeyUnassignView.as_view(),
         name="api-guardrail-key-unassign"),
    path("guardrails/<str:guardrail_id>/assignments/members", guardrails.GuardrailMemberAssignmentsView.as_view(),
         name="api-guardrail-member-assignments"),
    path("guardrails/<str:guardrail_id>/assignments/members/remove",
         guardrails.GuardrailMemberUnassignView.as_view(), name="api-guardrail-member-unassign"),
    path("byok", byok.ByokListView.as_view(), name="api-byok-keys"),
    path("byok/<str:byok_id>", byok.ByokDetailView.as_view(), name="api-byok-key"),
    path("presets", presets.PresetListView.as_view(), name="api-presets"),
    path("presets/<str:slug>", presets.PresetDetailView.as_view(), name="api-preset"),
    path("presets/<str:slug>/versions", presets.PresetVersionListView.as_view(), name="api-preset-versions"),
    path("presets/<str:slug>/versions/<str:version>", presets.PresetVersionDetailView.as_view(),
         name="api-preset-version"),
    path("presets/<str:slug>/chat/completions", presets.ChatPresetSaveView.as_view(),
         name="api-preset-save-chat"),
    path("presets/<str:slug>/messages", presets.MessagesPresetSaveView.as_view(),
         name="api-preset-save-messages"),
    path("presets/<str:slug>/responses", presets.ResponsesPresetSaveView.as_view(),
         name="api-preset-save-responses"),
    path("observability/destinations", observability.DestinationListView.as_view(), name="api-destinations"),
    path("observability/destinations/<str:destination_id>", observability.DestinationDetailView.as_view(),
         name="api-destination"),
]
