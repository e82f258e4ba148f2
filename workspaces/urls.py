"""The web dashboard (namespace `workspaces`)."""

from django.urls import path

from . import views

app_name = "workspaces"

urlpatterns = [
    path("", views.home, name="home"),
    path("orgs/new", views.org_create, name="org-create"),
    path("switch-org", views.switch_org, name="switch-org"),
    path("invite/<str:token>", views.invite_accept, name="invite-accept"),
    path("o/<slug:org_slug>/", views.org_overview, name="org"),
    path("o/<slug:org_slug>/members", views.org_members, name="org-members"),
    path("o/<slug:org_slug>/members/<uuid:user_id>/role", views.member_set_role, name="member-role"),
    path("o/<slug:org_slug>/members/<uuid:user_id>/remove", views.member_remove, name="member-remove"),
    path("o/<slug:org_slug>/invitations", views.org_invitations, name="org-invitations"),
    path("o/<slug:org_slug>/invitations/new", views.invitation_create, name="invitation-create"),
    path("o/<slug:org_slug>/invitations/<uuid:invitation_id>/resend", views.invitation_resend,
         name="invitation-resend"),
    path("o/<slug:org_slug>/invitations/<uuid:invitation_id>/revoke", views.invitation_revoke,
         name="invitation-revoke"),
    path("o/<slug:org_slug>/w/new", views.workspace_create, name="workspace-create"),
    path("o/<slug:org_slug>/w/<str:ws_slug>/", views.workspace_overview, name="workspace"),
    path("o/<slug:org_slug>/w/<str:ws_slug>/members", views.workspace_members, name="workspace-members"),
    path("o/<slug:org_slug>/w/<str:ws_slug>/members/add", views.workspace_member_add,
         name="workspace-member-add"),
    path("o/<slug:org_slug>/w/<str:ws_slug>/members/<uuid:user_id>/remove", views.workspace_member_remove,
         name="workspace-member-remove"),
    path("o/<slug:org_slug>/w/<str:ws_slug>/settings", views.workspace_settings, name="workspace-settings"),
    path("o/<slug:org_slug>/w/<str:ws_slug>/delete", views.workspace_delete, name="workspace-delete"),
]

from . import views_activity, views_keys  # noqa: E402

urlpatterns += [
    path("o/<slug:org_slug>/activity", views_activity.org_activity, name="org-activity"),
    path("o/<slug:org_slug>/management-keys", views_keys.management_keys, name="management-keys"),
    path("o/<slug:org_slug>/management-keys/new", views_keys.management_key_create, name="management-key-create"),
    path("o/<slug:org_slug>/management-keys/<str:key_hash>/disable", views_keys.management_key_disable,
         name="management-key-disable"),
    path("o/<slug:org_slug>/management-keys/<str:key_hash>/enable", views_keys.management_key_enable,
         name="management-key-enable"),
    path("o/<slug:org_slug>/management-keys/<str:key_hash>/delete", views_keys.management_key_delete,
         name="management-key-delete"),
    path("o/<slug:org_slug>/w/<str:ws_slug>/keys", views_keys.keys, name="keys"),
    path("o/<slug:org_slug>/w/<str:ws_slug>/keys/new", views_keys.key_create, name="key-create"),
    path("o/<slug:org_slug>/w/<str:ws_slug>/keys/<str:key_hash>/disable", views_keys.key_disable,
         name="key-disable"),
    path("o/<slug:org_slug>/w/<str:ws_slug>/keys/<str:key_hash>/enable", views_keys.key_enable, name="key-enable"),
    path("o/<slug:org_slug>/w/<str:ws_slug>/keys/<str:key_hash>/delete", views_keys.key_delete, name="key-delete"),
    path("o/<slug:org_slug>/w/<str:ws_slug>/activity", views_activity.activity, name="activity"),
]
