"""Actions that touch several rows: each one atomic, side effects after commit."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from . import keys
from .models import ApiKey, KeyKind, Membership, Organization, Role, User, Workspace, WorkspaceMembership


def unique_org_slug(name: str) -> str:
    base = slugify(name)[:80] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def create_organization(name: str, owner: User, slug: str | None = None) -> Organization:
    """A new organization with its Default workspace; the owner is its first admin."""
    org = Organization.objects.create(name=name, slug=slug or unique_org_slug(name), owner=owner)
    workspace = Workspace.objects.create(organization=org, name="Default", slug="default", is_default=True,
                                         created_by=owner, description="The default workspace.")
    Membership.objects.create(organization=org, user=owner, role=Role.ADMIN)
    WorkspaceMembership.objects.create(workspace=workspace, user=owner, role=Role.ADMIN)
    sync_workspace_permissions(owner, org)
    return org


@transaction.atomic
def create_api_key(*, organization: Organization, name: str, kind: str = KeyKind.INFERENCE,
                   workspace: Workspace | None = None, created_by: User | None = None,
                   limit: Decimal | None = None, limit_reset: str | None = None,
                   include_byok_in_limit: bool = False, expires_at=None,
                   external_user: str | None = None) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never available again."""
    if kind == KeyKind.INFERENCE and workspace is None:
        workspace = organization.default_workspace
        if workspace is None:
            raise ValueError("The organization has no Default workspace; name a workspace for the key.")
    if kind == KeyKind.MANAGEMENT:
        workspace = None
    new = keys.generate(kind)
    api_key = ApiKey.objects.create(
        hash=new.hash, lookup_id=new.lookup_id, digest=new.digest, pepper_id=new.pepper_id, label=new.label,
        kind=kind, organization=organization, workspace=workspace, name=name, created_by=created_by,
        limit=limit, limit_reset=limit_reset, include_byok_in_limit=include_byok_in_limit,
        expires_at=expires_at, external_user=external_user, updated_at=timezone.now(),
    )
    return api_key, new.plaintext


# --- management actions shared by the API and the dashboard ---------------------------------------------

class ServiceError(Exception):
    """A refusal the caller can fix: the API answers 400 (or `status`), the dashboard shows a form error."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


def _audit(organization, action: str, obj, by_user=None, by_key=None, changes=None, object_type=None):
    from . import audit

    # A key acts for the organization, not for the person who once created it.
    return audit.record(organization=organization, action=action, obj=obj, changes=changes,
                        actor_key=by_key, actor_user=None if by_key is not None else by_user,
                        object_type=object_type)


def _apply(instance, fields: dict) -> dict:
    """Set the given fields; return only those whose value really changed (for the audit)."""
    changed = {}
    for name, value in fields.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed[name] = value
    return changed


def _lock_org(organization: Organization) -> Organization:
    return Organization.objects.select_for_update().get(pk=organization.pk)


def _member_of(organization: Organization, user_id) -> Membership | None:
    return Membership.objects.filter(organization=organization, user_id=user_id).select_related("user").first()


@transaction.atomic
def issue_api_key(*, organization: Organization, name: str, workspace: Workspace | None = None,
                  creator: User | None = None, limit: Decimal | None = None, limit_reset: str | None = None,
                  include_byok_in_limit: bool = False, expires_at=None, external_user: str | None = None,
                  by_user: User | None = None, by_key: ApiKey | None = None) -> tuple[ApiKey, str]:
    """An inference key in `workspace` (Default when omitted), audited. Returns (key, plaintext-once)."""
    _lock_org(organization)
    if workspace is None:
        workspace = organization.default_workspace
        if workspace is None:
            raise ServiceError("The organization has no Default workspace; name a workspace.", "workspace_id")
    if workspace.organization_id != organization.pk:
        raise ServiceError("No such workspace in this organization.", "workspace_id")
    if creator is not None and _member_of(organization, creator.pk) is None:
        raise ServiceError("The creator must be a member of the organization.", "creator_user_id")
    if expires_at is not None and expires_at <= timezone.now():
        raise ServiceError("The expiry must be in the future.", "expires_at")
    api_key, plaintext = create_api_key(
        organization=organization, name=name, kind=KeyKind.INFERENCE, workspace=workspace, created_by=creator,
        limit=limit, limit_reset=limit_reset, include_byok_in_limit=include_byok_in_limit,
        expires_at=expires_at, external_user=external_user)
    _audit(organization, "create", api_key, by_user, by_key, changes={
        "name": name, "workspace_id": str(workspace.pk), "limit": limit, "limit_reset": limit_reset,
        "include_byok_in_limit": include_byok_in_limit, "expires_at": expires_at,
        "creator_user_id": str(creator.pk) if creator else None})
    return api_key, plaintext


KEY_FIELDS = {"name", "disabled", "limit", "limit_reset", "include_byok_in_limit", "workspace"}


@transaction.atomic
def update_api_key(api_key: ApiKey, *, by_user: User | None = None, by_key: ApiKey | None = None,
                   **fields) -> ApiKey:
    """Change only the given fields. Moving a key (`workspace=`) keeps its value and guardrail."""
    unknown = set(fields) - KEY_FIELDS
    if unknown:
        raise ValueError(f"not key fields: {sorted(unknown)}")
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    workspace = fields.get("workspace")
    if "workspace" in fields:
        if api_key.is_management:
            raise ServiceError("Management keys belong to the organization, not a workspace.", "workspace_id")
        if workspace is None or workspace.organization_id != api_key.organization_id:
            raise ServiceError("No such workspace in this organization.", "workspace_id")
    changed = _apply(api_key, fields)
    if changed:
        api_key.updated_at = timezone.now()
        api_key.save()
        if "workspace" in changed:
            changed["workspace_id"] = str(changed.pop("workspace").pk)
        _audit(api_key.organization, "update", api_key, by_user, by_key, changes=changed)
    return api_key


@transaction.atomic
def delete_api_key(api_key: ApiKey, *, by_user: User | None = None, by_key: ApiKey | None = None) -> None:
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    _audit(api_key.organization, "delete", api_key, by_user, by_key,
           changes={"name": api_key.name, "label": api_key.label})
    api_key.delete()


WORKSPACE_FIELDS = {"name", "slug", "description", "default_text_model", "default_image_model",
                    "default_provider_sort", "disabled_server_tools", "io_logging_api_key_ids",
                    "io_logging_sampling_rate", "is_data_discount_logging_enabled",
                    "is_observability_broadcast_enabled", "is_observability_io_logging_enabled"}


def _check_slug(organization: Organization, slug: str, exclude_pk=None) -> None:
    from .api.base import is_uuid

    if is_uuid(slug):
        # Workspace references accept an id or a slug; a slug that reads as an id would be unreachable.
        raise ServiceError("A slug cannot look like a UUID.", "slug")
    taken = Workspace.objects.filter(organization=organization, slug=slug).exclude(pk=exclude_pk)
    if taken.exists():
        raise ServiceError(f"A workspace with the slug '{slug}' already exists.", "slug")


@transaction.atomic
def create_workspace(organization: Organization, *, name: str, slug: str, created_by: User | None = None,
                     by_user: User | None = None, by_key: ApiKey | None = None, **fields) -> Workspace:
    """A new workspace; its creator (if an org member) joins it with their organization role."""
    unknown = set(fields) - WORKSPACE_FIELDS
    if unknown:
        raise ValueError(f"not workspace fields: {sorted(unknown)}")
    _lock_org(organization)
    _check_slug(organization, slug)
    now = timezone.now()
    workspace = Workspace.objects.create(organization=organization, name=name, slug=slug, created_by=created_by,
                                         created_at=now, updated_at=now, **fields)
    membership = _member_of(organization, created_by.pk) if created_by else None
    if membership is not None:
        WorkspaceMembership.objects.create(workspace=workspace, user=created_by, role=membership.role)
    sync_workspace_admins(workspace)
    _audit(organization, "create", workspace, by_user, by_key, changes={"name": name, "slug": slug, **fields})
    return workspace


@transaction.atomic
def update_workspace(workspace: Workspace, *, by_user: User | None = None, by_key: ApiKey | None = None,
                     **fields) -> Workspace:
    unknown = set(fields) - WORKSPACE_FIELDS
    if unknown:
        raise ValueError(f"not workspace fields: {sorted(unknown)}")
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    if "slug" in fields and fields["slug"] != workspace.slug:
        _check_slug(workspace.organization, fields["slug"], exclude_pk=workspace.pk)
    changed = _apply(workspace, fields)
    if changed:
        workspace.updated_at = timezone.now()
        workspace.save()
        _audit(workspace.organization, "update", workspace, by_user, by_key, changes=changed)
    return workspace


@transaction.atomic
def delete_workspace(workspace: Workspace, *, confirm_default: bool = False, by_user: User | None = None,
                     by_key: ApiKey | None = None) -> None:
    """Delete a workspace with its budgets, guardrails, presets and destinations.

    Refused while it holds active keys: traffic must be moved or stopped first. Its disabled or expired keys
    go with it, so that every remaining inference key has a workspace. The Default workspace needs an
    explicit confirmation; without it, keys and guardrails would fall back to a workspace that is gone.
    """
    _lock_org(workspace.organization)
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    if workspace.is_default and not confirm_default:
        raise ServiceError("The Default workspace can only be deleted with confirm_default_workspace_deletion=true.",
                           "confirm_default_workspace_deletion", status=403)
    now = timezone.now()
    keys_in_workspace = ApiKey.objects.filter(workspace=workspace)
    active = keys_in_workspace.filter(disabled=False).exclude(expires_at__lte=now)
    count = active.count()
    if count:
        raise ServiceError(f"The workspace still has {count} active API key{'s' if count != 1 else ''}; "
                           "delete or disable them, or move them to another workspace, first.")
    removed_keys = keys_in_workspace.count()
    _audit(workspace.organization, "delete", workspace, by_user, by_key,
           changes={"name": workspace.name, "slug": workspace.slug, "inactive_keys_deleted": removed_keys})
    keys_in_workspace.delete()
    drop_workspace_permissions(workspace)
    workspace.delete()


def _parse_user_ids(organization: Organization, user_ids) -> dict:
    """user id -> Membership, refusing anything that is not a member of the organization."""
    import uuid as uuid_module

    bad, wanted = [], []
    for raw in user_ids:
        try:
            wanted.append(uuid_module.UUID(str(raw)))
        except ValueError:
            bad.append(str(raw))
    found = {m.user_id: m for m in Membership.objects.filter(organization=organization, user_id__in=wanted)}
    bad.extend(str(u) for u in wanted if u not in found)
    if bad:
        raise ServiceError(f"Not members of this organization: {', '.join(sorted(set(bad)))}.", "user_ids")
    return found


@transaction.atomic
def add_workspace_members(workspace: Workspace, user_ids, *, by_user: User | None = None,
                          by_key: ApiKey | None = None) -> list[WorkspaceMembership]:
    """Add organization members to a workspace with their organization role. Returns the memberships
    created or brought in line with that role; members already there unchanged are not repeated."""
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    members = _parse_user_ids(workspace.organization, user_ids)
    existing = {m.user_id: m for m in WorkspaceMembership.objects.filter(workspace=workspace,
                                                                        user_id__in=list(members))}
    touched = []
    for user_id, membership in members.items():
        current = existing.get(user_id)
        if current is None:
            touched.append(WorkspaceMembership.objects.create(workspace=workspace, user_id=user_id,
                                                              role=membership.role))
        elif current.role != membership.role:
            current.role = membership.role
            current.save(update_fields=["role"])
            touched.append(current)
    for m in touched:
        sync_workspace_permissions(m.user, workspace.organization)
    if touched:
        _audit(workspace.organization, "update", workspace, by_user, by_key,
               changes={"members_added": [str(m.user_id) for m in touched]})
    return touched


@transaction.atomic
def remove_workspace_members(workspace: Workspace, user_ids, *, by_user: User | None = None,
                             by_key: ApiKey | None = None) -> int:
    """Remove members from a workspace. Refused for anyone who still holds active keys there, and for the
    Default workspace, which every organization member belongs to for as long as they are in the org."""
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    members = _parse_user_ids(workspace.organization, user_ids)
    if workspace.is_default:
        raise ServiceError("Members of the organization always belong to the Default workspace; "
                           "remove them from the organization instead.", "user_ids")
    now = timezone.now()
    holders = (ApiKey.objects.filter(workspace=workspace, created_by_id__in=list(members), disabled=False)
               .exclude(expires_at__lte=now).values_list("created_by__email", "created_by_id").distinct())
    holders = sorted({f"{email} ({user_id})" for email, user_id in holders})
    if holders:
        raise ServiceError(f"These members still hold active API keys in this workspace (delete the keys "
                           f"first): {', '.join(holders)}.", "user_ids")
    removed, _ = WorkspaceMembership.objects.filter(workspace=workspace, user_id__in=list(members)).delete()
    for membership in members.values():
        sync_workspace_permissions(membership.user, workspace.organization)
    if removed:
        _audit(workspace.organization, "update", workspace, by_user, by_key,
               changes={"members_removed": sorted(str(u) for u in members)})
    return removed


@transaction.atomic
def update_organization_settings(organization: Organization, *, by_user: User | None = None,
                                 by_key: ApiKey | None = None, **fields) -> Organization:
    allowed = {"is_filtered_model_catalog_enabled"}
    if set(fields) - allowed:
        raise ValueError(f"not organization settings: {sorted(set(fields) - allowed)}")
    organization = _lock_org(organization)
    changed = _apply(organization, fields)
    if changed:
        organization.save()
        _audit(organization, "update", organization, by_user, by_key, changes=changed,
               object_type="OrganizationSettings")
    return organization


@transaction.atomic
def sync_workspace_permissions(user: User, organization: Organization) -> None:
    """Rewrite the person's object permissions on the organization and its workspaces from their roles.

    Call it after any change to `Membership` or `WorkspaceMembership` (and after creating a workspace, for
    every admin): the django-guardian rows are only an index of those tables, read by `workspaces.access`."""
    from guardian.models import UserObjectPermission
    from guardian.shortcuts import assign_perm

    from . import access

    membership = Membership.objects.filter(organization=organization, user=user).first()
    is_admin = membership is not None and membership.role == Role.ADMIN
    want: dict[tuple[type, object], set[str]] = {}
    if membership is not None:
        want[(Organization, organization.pk)] = set(access.ORG_ADMIN_PERMS if is_admin else access.ORG_MEMBER_PERMS)
    ws_roles = dict(WorkspaceMembership.objects.filter(workspace__organization=organization, user=user)
                    .values_list("workspace_id", "role"))
    workspace_ids = list(Workspace.objects.filter(organization=organization).values_list("pk", flat=True))
    for ws_id in workspace_ids:
        if membership is None:
            continue
        if is_admin or ws_roles.get(ws_id) == Role.ADMIN:
            want[(Workspace, ws_id)] = set(access.WORKSPACE_ADMIN_PERMS)
        elif ws_id in ws_roles:
            want[(Workspace, ws_id)] = set(access.WORKSPACE_MEMBER_PERMS)

    from django.contrib.contenttypes.models import ContentType

    org_ct = ContentType.objects.get_for_model(Organization)
    ws_ct = ContentType.objects.get_for_model(Workspace)
    existing = (UserObjectPermission.objects.filter(user=user)
                .filter(models_q(org_ct, [organization.pk]) | models_q(ws_ct, workspace_ids))
                .select_related("permission", "content_type"))
    have: dict[tuple[type, str], set[str]] = {}
    for row in existing:
        model = Organization if row.content_type_id == org_ct.id else Workspace
        key = (model, row.object_pk)
        codename = row.permission.codename
        wanted = want.get((model, _pk_from_str(model, row.object_pk)), set())
        if codename not in wanted:
            row.delete()
        else:
            have.setdefault(key, set()).add(codename)
    for (model, pk), perms in want.items():
        missing = perms - have.get((model, str(pk)), set())
        if missing:
            obj = model.objects.get(pk=pk)
            for codename in sorted(missing):
                assign_perm(f"workspaces.{codename}", user, obj)


def models_q(content_type, pks):
    from django.db.models import Q

    return Q(content_type=content_type, object_pk__in=[str(pk) for pk in pks])


def _pk_from_str(model, value: str):
    import uuid

    try:
        return uuid.UUID(value)
    except ValueError:
        return value


def sync_organization_permissions(organization: Organization) -> None:
    """sync_workspace_permissions for every member, and for anyone who still holds a stale permission."""
    from django.contrib.contenttypes.models import ContentType
    from guardian.models import UserObjectPermission

    user_ids = set(Membership.objects.filter(organization=organization).values_list("user_id", flat=True))
    org_ct = ContentType.objects.get_for_model(Organization)
    user_ids |= set(UserObjectPermission.objects.filter(content_type=org_ct, object_pk=str(organization.pk))
                    .values_list("user_id", flat=True))
    for user in User.objects.filter(pk__in=user_ids):
        sync_workspace_permissions(user, organization)


def sync_workspace_admins(workspace: Workspace) -> None:
    """After a workspace is created: its members and every org admin get their permissions on it."""
    user_ids = set(Membership.objects.filter(organization=workspace.organization_id, role=Role.ADMIN)
                   .values_list("user_id", flat=True))
    user_ids |= set(WorkspaceMembership.objects.filter(workspace=workspace).values_list("user_id", flat=True))
    for user in User.objects.filter(pk__in=user_ids):
        sync_workspace_permissions(user, workspace.organization)


def drop_workspace_permissions(workspace: Workspace) -> None:
    """Before a workspace is deleted: its permission rows point at nothing once it is gone."""
    from django.contrib.contenttypes.models import ContentType
    from guardian.models import UserObjectPermission

    UserObjectPermission.objects.filter(content_type=ContentType.objects.get_for_model(Workspace),
                                        object_pk=str(workspace.pk)).delete()


# --- members and invitations (dashboard) -------------------------------------------------------------------

INVITATION_DAYS = 7


def _invitation_digest(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


def _new_invitation_token() -> tuple[str, str]:
    import secrets

    token = secrets.token_urlsafe(32)
    return token, _invitation_digest(token)


def invitation_url(token: str) -> str:
    from django.conf import settings
    from django.urls import reverse

    return settings.SITE_URL + reverse("workspaces:invite-accept", args=[token])


def _send_invitation(invitation_id, token: str) -> None:
    from django.conf import settings
    from django.core.mail import EmailMultiAlternatives
    from django.template.loader import render_to_string

    from .models import Invitation

    invitation = Invitation.objects.select_related("organization", "invited_by").get(pk=invitation_id)
    context = {"invitation": invitation, "organization": invitation.organization, "url": invitation_url(token),
               "inviter": invitation.invited_by, "days": INVITATION_DAYS}
    subject = " ".join(render_to_string("emails/invite-subject.txt", context).split())
    message = EmailMultiAlternatives(subject, render_to_string("emails/invite-body.txt", context),
                                     settings.DEFAULT_FROM_EMAIL, [invitation.email])
    message.attach_alternative(render_to_string("emails/invite-body.html", context), "text/html")
    message.send()


def _queue_invitation_mail(invitation, token: str) -> None:
    invitation_id = invitation.pk
    transaction.on_commit(lambda: _send_invitation(invitation_id, token))


def _require_rank(actor_membership: Membership | None, role: str) -> None:
    from .models import ROLE_RANK

    if role not in ROLE_RANK:
        raise ServiceError(f"Unknown role '{role}'.", "role")
    if actor_membership is None or ROLE_RANK[role] > ROLE_RANK[actor_membership.role]:
        raise ServiceError("You cannot give a role above your own.", "role", status=403)


@transaction.atomic
def invite_member(organization: Organization, *, email: str, role: str, workspaces=(), by_user: User):
    """Invite someone by e-mail with a role and the workspaces to join. Returns (invitation, token): the
    token exists only in the e-mailed link; the database keeps its SHA-256."""
    from datetime import timedelta

    from .models import Invitation

    organization = _lock_org(organization)
    _require_rank(_member_of(organization, by_user.pk), role)
    email = email.strip().lower()
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise ServiceError(f"{email} is already a member of {organization.name}.", "email")
    now = timezone.now()
    pending = Invitation.objects.filter(organization=organization, email__iexact=email, accepted_at=None,
                                        revoked_at=None, expires_at__gt=now)
    if pending.exists():
        raise ServiceError(f"{email} already has a pending invitation; resend it instead.", "email")
    workspaces = list(workspaces)
    if any(w.organization_id != organization.pk for w in workspaces):
        raise ServiceError("No such workspace in this organization.", "workspaces")
    token, digest = _new_invitation_token()
    invitation = Invitation.objects.create(organization=organization, email=email, role=role, token_digest=digest,
                                           invited_by=by_user, created_at=now, sent_at=now,
                                           expires_at=now + timedelta(days=INVITATION_DAYS))
    invitation.workspaces.set([w for w in workspaces if not w.is_default])
    _audit(organization, "create", invitation, by_user, changes={
        "email": email, "role": role, "workspace_ids": sorted(str(w.pk) for w in workspaces)})
    _queue_invitation_mail(invitation, token)
    return invitation, token


@transaction.atomic
def resend_invitation(invitation, *, by_user: User) -> str:
    """A new token and a new expiry, mailed again; the old link stops working."""
    from datetime import timedelta

    from .models import Invitation

    _lock_org(invitation.organization)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise ServiceError("This invitation was already accepted.")
    if invitation.revoked_at is not None:
        raise ServiceError("This invitation was revoked; invite the person again.")
    _require_rank(_member_of(invitation.organization, by_user.pk), invitation.role)
    token, invitation.token_digest = _new_invitation_token()
    invitation.sent_at = timezone.now()
    invitation.expires_at = invitation.sent_at + timedelta(days=INVITATION_DAYS)
    invitation.save(update_fields=["token_digest", "sent_at", "expires_at"])
    _audit(invitation.organization, "update", invitation, by_user,
           changes={"resent": True, "expires_at": invitation.expires_at})
    _queue_invitation_mail(invitation, token)
    return token


@transaction.atomic
def revoke_invitation(invitation, *, by_user: User) -> None:
    from .models import Invitation

    _lock_org(invitation.organization)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise ServiceError("This invitation was already accepted; remove the member instead.")
    if invitation.revoked_at is not None:
        return
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    _audit(invitation.organization, "update", invitation, by_user, changes={"revoked": True})


def find_invitation(token: str):
    """The invitation behind a link's token, whatever its state; None for an unknown token."""
    from .models import Invitation

    if not token or len(token) > 200:
        return None
    return (Invitation.objects.select_related("organization", "invited_by")
            .filter(token_digest=_invitation_digest(token)).first())


def invitation_problem(invitation) -> str | None:
    """Why an invitation cannot be accepted any more, or None."""
    if invitation.revoked_at is not None:
        return "This invitation was revoked."
    if invitation.accepted_at is not None:
        return "This invitation was already accepted."
    if invitation.expires_at <= timezone.now():
        return "This invitation has expired. Ask an admin of the organization to send a new one."
    return None


def user_has_email(user: User, email: str) -> bool:
    from allauth.account.models import EmailAddress

    email = email.strip().lower()
    if user.email.lower() == email:
        return True
    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


@transaction.atomic
def accept_invitation(invitation, *, user: User) -> Membership:
    """Join the organization (and the invitation's workspaces, plus Default) as the invited person."""
    from .models import Invitation

    organization = _lock_org(invitation.organization)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    problem = invitation_problem(invitation)
    if problem:
        raise ServiceError(problem, status=410)
    if not user_has_email(user, invitation.email):
        raise ServiceError(f"This invitation is for {invitation.email}, but you are logged in as {user.email}. "
                           "Log out and log in (or sign up) with the invited address.", status=403)
    membership = _member_of(organization, user.pk)
    if membership is None:
        membership = Membership.objects.create(organization=organization, user=user, role=invitation.role)
        _audit(organization, "create", membership, user, changes={
            "user_id": str(user.pk), "role": invitation.role, "invitation_id": str(invitation.pk)})
    workspaces = [w for w in [organization.default_workspace, *invitation.workspaces.all()] if w is not None]
    for workspace in workspaces:
        WorkspaceMembership.objects.get_or_create(workspace=workspace, user=user,
                                                  defaults={"role": membership.role})
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    sync_workspace_permissions(user, organization)
    return membership


def _admin_count(organization: Organization) -> int:
    return Membership.objects.filter(organization=organization, role=Role.ADMIN).count()


@transaction.atomic
def set_role(organization: Organization, user: User, role: str, *, by_user: User) -> Membership:
    """Change someone's organization role; their workspace roles follow. The owner's role never changes."""
    organization = _lock_org(organization)
    membership = _member_of(organization, user.pk)
    if membership is None:
        raise ServiceError("Not a member of this organization.", "user_id", status=404)
    _require_rank(_member_of(organization, by_user.pk), role)
    if organization.owner_id == user.pk:
        raise ServiceError("The owner of the organization is always an admin.", "role", status=403)
    old = membership.role
    if old == role:
        return membership
    if old == Role.ADMIN and _admin_count(organization) <= 1:
        raise ServiceError("The organization needs at least one admin.", "role")
    membership.role = role
    membership.save(update_fields=["role"])
    WorkspaceMembership.objects.filter(workspace__organization=organization, user=user).update(role=role)
    sync_workspace_permissions(user, organization)
    _audit(organization, "update", membership, by_user, changes={"role": [old, role]})
    return membership


@transaction.atomic
def remove_member(organization: Organization, user: User, *, by_user: User) -> int:
    """Remove someone from the organization and all its workspaces. The keys they created there are
    disabled (not deleted: their history stays), so nobody outside keeps spending the organization's
    credits. Returns how many keys were disabled."""
    from .models import GuardrailMemberAssignment

    organization = _lock_org(organization)
    membership = _member_of(organization, user.pk)
    if membership is None:
        raise ServiceError("Not a member of this organization.", "user_id", status=404)
    if organization.owner_id == user.pk:
        raise ServiceError("The owner of the organization cannot be removed.", status=403)
    if membership.role == Role.ADMIN and _admin_count(organization) <= 1:
        raise ServiceError("The organization needs at least one admin.")
    disabled = 0
    now = timezone.now()
    for api_key in ApiKey.objects.select_for_update().filter(organization=organization, created_by=user,
                                                            disabled=False):
        api_key.disabled = True
        api_key.updated_at = now
        api_key.save(update_fields=["disabled", "updated_at"])  # save(): the proxy's key cache hears of it
        disabled += 1
    WorkspaceMembership.objects.filter(workspace__organization=organization, user=user).delete()
    GuardrailMemberAssignment.objects.filter(organization=organization, user=user).delete()
    _audit(organization, "delete", membership, by_user, changes={
        "user_id": str(user.pk), "email": user.email, "role": membership.role, "keys_disabled": disabled})
    membership.delete()
    sync_workspace_permissions(user, organization)
    return disabled


@transaction.atomic
def add_workspace_member(workspace: Workspace, user: User, *, by_user: User) -> WorkspaceMembership:
    add_workspace_members(workspace, [user.pk], by_user=by_user)
    sync_workspace_permissions(user, workspace.organization)
    return WorkspaceMembership.objects.get(workspace=workspace, user=user)


@transaction.atomic
def remove_workspace_member(workspace: Workspace, user: User, *, by_user: User) -> None:
    if remove_workspace_members(workspace, [user.pk], by_user=by_user) == 0:
        raise ServiceError("Not a member of this workspace.", "user_id", status=404)
    sync_workspace_permissions(user, workspace.organization)


@transaction.atomic
def create_organization_for(user: User, name: str) -> Organization:
    """A person creates their own organization from the dashboard (a verified e-mail is required)."""
    from allauth.account.models import EmailAddress

    if not EmailAddress.objects.filter(user=user, verified=True).exists():
        raise ServiceError("Verify your e-mail address before creating an organization.")
    organization = create_organization(name, owner=user)
    _audit(organization, "create", organization, user, changes={"name": name, "slug": organization.slug})
    return organization


@transaction.atomic
def issue_management_key(*, organization: Organization, name: str, creator: User, expires_at=None,
                         by_user: User | None = None) -> tuple[ApiKey, str]:
    """A management key for the organization, audited. Returns (key, plaintext-once). Only admins hold them:
    a management key acts on every workspace."""
    _lock_org(organization)
    membership = _member_of(organization, creator.pk)
    if membership is None or membership.role != Role.ADMIN:
        raise ServiceError("Only organization admins can create management keys.", status=403)
    if expires_at is not None and expires_at <= timezone.now():
        raise ServiceError("The expiry must be in the future.", "expires_at")
    api_key, plaintext = create_api_key(organization=organization, name=name, kind=KeyKind.MANAGEMENT,
                                        created_by=creator, expires_at=expires_at)
    _audit(organization, "create", api_key, by_user, changes={
        "name": name, "kind": KeyKind.MANAGEMENT, "expires_at": expires_at, "creator_user_id": str(creator.pk)})
    return api_key, plaintext
