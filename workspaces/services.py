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
