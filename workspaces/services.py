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
