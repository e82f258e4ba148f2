"""Who may see and change which organization and workspace.

`Membership` and `WorkspaceMembership` are the source of truth; django-guardian object permissions are the
index written from them by `services.sync_workspace_permissions`. Every check here reads that index, so the
dashboard, the management API and the proxy agree. An object the person may not see does not exist for them
(404); one they may see but not change is refused (403). Nothing here takes a request: only a user and refs.

Permissions:
- organization: `view_organization` (every member), `change_organization` (admins: workspaces, members,
  invitations, billing).
- workspace: `view_workspace` (its members, and every org admin), `change_workspace` (org admins).
"""

import uuid

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from guardian.shortcuts import get_objects_for_user

from .models import Membership, Organization, Role, User, Workspace

ORG_MEMBER_PERMS = ("view_organization",)
ORG_ADMIN_PERMS = ("view_organization", "change_organization")
WORKSPACE_MEMBER_PERMS = ("view_workspace",)
WORKSPACE_ADMIN_PERMS = ("view_workspace", "change_workspace")

VIEW_ORG = "view_organization"
CHANGE_ORG = "change_organization"
VIEW_WORKSPACE = "view_workspace"
CHANGE_WORKSPACE = "change_workspace"


def _full(perm: str) -> str:
    return perm if "." in perm else f"workspaces.{perm}"


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _can_act(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def organizations_for_user(user: User, perm: str = VIEW_ORG) -> QuerySet:
    """The organizations on which `user` holds `perm`, by name."""
    if not _can_act(user):
        return Organization.objects.none()
    return get_objects_for_user(user, _full(perm), klass=Organization, use_groups=False, with_superuser=False,
                                accept_global_perms=False).order_by("name", "slug")


def workspaces_for_user(user: User, organization: Organization | None = None,
                        perm: str = VIEW_WORKSPACE) -> QuerySet:
    """The workspaces (of `organization`, if given) on which `user` holds `perm`: Default first."""
    if not _can_act(user):
        return Workspace.objects.none()
    qs = get_objects_for_user(user, _full(perm), klass=Workspace, use_groups=False, with_superuser=False,
                              accept_global_perms=False)
    if organization is not None:
        qs = qs.filter(organization=organization)
    return qs.order_by("-is_default", "name")


def _lookup(queryset: QuerySet, ref):
    if isinstance(ref, queryset.model):
        return queryset.filter(pk=ref.pk).first()
    if ref is None or ref == "":
        return None
    ref = str(ref)
    if _is_uuid(ref):
        return queryset.filter(pk=ref).first()
    return queryset.filter(slug=ref).first()


def _has(user, perm: str, obj) -> bool:
    # Only object permissions count: a superuser or a global permission opens no organization.
    return get_objects_for_user(user, _full(perm), klass=type(obj).objects.filter(pk=obj.pk), use_groups=False,
                                with_superuser=False, accept_global_perms=False).exists()


def get_organization_for_user(user: User, org_ref, perm: str = VIEW_ORG) -> Organization:
    """The organization (slug, UUID or instance) if `user` holds `perm` on it.

    Raises Http404 when the person is not a member, PermissionDenied when the role is too low."""
    if not _can_act(user):
        raise Http404("No such organization.")
    org = _lookup(Organization.objects.all(), org_ref)
    if org is None or not _has(user, VIEW_ORG, org):
        raise Http404("No such organization.")
    if perm != VIEW_ORG and not _has(user, perm, org):
        raise PermissionDenied("Only organization admins can do this.")
    return org


def get_membership_for_user(user: User, org_ref, perm: str = VIEW_ORG) -> Membership:
    """The person's `Membership` (with its organization) after the same checks as get_organization_for_user."""
    org = get_organization_for_user(user, org_ref, perm)
    membership = Membership.objects.select_related("organization", "user").filter(organization=org,
                                                                                  user=user).first()
    if membership is None:
        # The permission index lags the source of truth: trust the source.
        raise Http404("No such organization.")
    return membership


def get_workspace_for_user(user: User, org: Organization, ws_ref, perm: str = VIEW_WORKSPACE) -> Workspace:
    """A workspace of `org` (slug, UUID or instance) if `user` holds `perm` on it.

    Raises Http404 when the person may not see it, PermissionDenied when they may see but not `perm` it."""
    if not _can_act(user) or org is None:
        raise Http404("No such workspace.")
    workspace = _lookup(Workspace.objects.filter(organization=org).select_related("organization"), ws_ref)
    if workspace is None or not _has(user, VIEW_WORKSPACE, workspace):
        raise Http404("No such workspace.")
    if perm != VIEW_WORKSPACE and not _has(user, perm, workspace):
        raise PermissionDenied("Only organization admins can do this in a workspace.")
    return workspace


def role_for(user: User, org: Organization) -> str | None:
    """The person's organization role, from the source of truth."""
    return Membership.objects.filter(organization=org, user=user).values_list("role", flat=True).first()


def is_org_admin(user: User, org: Organization) -> bool:
    return role_for(user, org) == Role.ADMIN
