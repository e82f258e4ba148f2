from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import (ApiKey, AuditLogEntry, ByokKey, Guardrail, Invitation, Membership,
                     ObservabilityDestination, Organization, Preset, PresetVersion, User, Workspace,
                     WorkspaceMembership)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class WorkspaceInline(admin.TabularInline):
    model = Workspace
    extra = 0
    fields = ["name", "slug", "is_default"]
    show_change_link = True


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "owner", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [WorkspaceInline, MembershipInline]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "organization", "is_default", "created_at"]
    list_filter = ["is_default"]
    search_fields = ["name", "slug", "organization__name"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]


@admin.register(WorkspaceMembership)
class WorkspaceMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "role", "created_at"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "created_at", "expires_at", "accepted_at", "revoked_at"]
    exclude = ["token_digest"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "label", "kind", "organization", "workspace", "disabled", "last_used_at", "created_at"]
    list_filter = ["kind", "disabled"]
    search_fields = ["name", "label", "hash"]
    # The digest and pepper never leave the database; keys are created through the dashboard or API.
    fields = ["name", "label", "hash", "kind", "organization", "workspace", "disabled", "expires_at",
              "limit", "limit_reset", "include_byok_in_limit", "created_by", "created_at", "last_used_at"]
    readonly_fields = ["label", "hash", "kind", "organization", "created_by", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False


@admin.register(Guardrail)
class GuardrailAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "workspace", "limit_usd", "reset_interval", "created_at"]


@admin.register(ByokKey)
class ByokKeyAdmin(admin.ModelAdmin):
    list_display = ["provider", "label", "name", "organization", "workspace", "disabled"]
    exclude = ["encrypted_key"]

    def has_add_permission(self, request):
        return False


class PresetVersionInline(admin.TabularInline):
    model = PresetVersion
    extra = 0
    readonly_fields = ["version", "config", "system_prompt", "creator_id", "created_at"]


@admin.register(Preset)
class PresetAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "workspace", "status", "updated_at"]
    inlines = [PresetVersionInline]


@admin.register(ObservabilityDestination)
class ObservabilityDestinationAdmin(admin.ModelAdmin):
    list_display = ["name", "type", "workspace", "enabled", "created_at"]
    exclude = ["encrypted_secrets"]


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organization", "actor_label", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
