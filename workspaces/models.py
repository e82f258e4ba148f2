"""Organizations, their workspaces and members, API keys and per-workspace configuration."""

import uuid
from datetime import datetime

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

SLUG_RE = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
slug_validator = RegexValidator(
    SLUG_RE, "Use lowercase letters and digits in segments separated by single hyphens (e.g. team-search)."
)

# The deterministic id of a workspace's default guardrail (reference: "deterministic from workspace id").
DEFAULT_GUARDRAIL_NAMESPACE = uuid.UUID("5f0c7b1e-4d7a-4a57-9e0e-8b0c2b6f3a11")


def money_field(**kwargs):
    """USD amounts: exact decimals, never float."""
    kwargs.setdefault("max_digits", 24)
    kwargs.setdefault("decimal_places", 12)
    return models.DecimalField(**kwargs)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person. Logs in with e-mail; ids are UUID strings as the reference's `user_id`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    username = None
    email = models.EmailField("e-mail address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    def __str__(self):
        return self.email


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


ROLE_RANK = {Role.MEMBER: 1, Role.ADMIN: 2}


class ResetInterval(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"


class ProviderSort(models.TextChoices):
    PRICE = "price", "Price"
    THROUGHPUT = "throughput", "Throughput"
    LATENCY = "latency", "Latency"
    EXACTO = "exacto", "Exacto"


class Organization(models.Model):
    """The billing account: one credit pool, many workspaces."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    owner = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="owned_organizations")
    is_filtered_model_catalog_enabled = models.BooleanField(default=False)
    # Account privacy: the ceiling every workspace and guardrail can only narrow.
    allowed_providers = models.JSONField(null=True, blank=True)
    ignored_providers = models.JSONField(null=True, blank=True)
    allowed_models = models.JSONField(null=True, blank=True)
    ignored_models = models.JSONField(null=True, blank=True)
    enforce_zdr = models.BooleanField(default=False)
    deny_data_collection = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.name

    @property
    def default_workspace(self):
        return self.workspaces.filter(is_default=True).first()


class Membership(models.Model):
    """A person's role in an organization; the source of truth for access."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="membership_unique_user")]

    def __str__(self):
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_owner(self) -> bool:
        return self.organization.owner_id == self.user_id


class Workspace(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="workspaces")
    name = models.CharField(max_length=200)
    slug = models.CharField(max_length=100, validators=[slug_validator])
    description = models.TextField(null=True, blank=True)
    is_default = models.BooleanField(default=False)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="created_workspaces")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(null=True, blank=True)
    # Routing defaults
    default_text_model = models.CharField(max_length=200, null=True, blank=True)
    default_image_model = models.CharField(max_length=200, null=True, blank=True)
    default_provider_sort = models.CharField(max_length=16, choices=ProviderSort.choices, null=True, blank=True)
    # Plugins and observability
    disabled_server_tools = models.JSONField(null=True, blank=True)
    io_logging_api_key_ids = models.JSONField(null=True, blank=True)
    io_logging_sampling_rate = models.DecimalField(max_digits=6, decimal_places=4, default=1)
    is_data_discount_logging_enabled = models.BooleanField(default=False)
    is_observability_broadcast_enabled = models.BooleanField(default=True)
    is_observability_io_logging_enabled = models.BooleanField(default=False)
    include_byok_in_budgets = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="workspace_unique_slug"),
            models.UniqueConstraint(fields=["organization"], condition=models.Q(is_default=True),
                                    name="workspace_one_default"),
        ]
        ordering = ["-is_default", "name"]

    def __str__(self):
        return self.name

    @property
    def default_guardrail_id(self) -> uuid.UUID:
        return uuid.uuid5(DEFAULT_GUARDRAIL_NAMESPACE, str(self.id))


class WorkspaceMembership(models.Model):
    """A person's membership in one workspace; its role mirrors the organization role."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="workspace_memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="workspace_member_unique_user")]

    def __str__(self):
        return f"{self.user_id} in {self.workspace_id}"


class Invitation(models.Model):
    """A pending invitation to an organization; the token is stored only as a digest."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    workspaces = models.ManyToManyField(Workspace, blank=True, related_name="invitations")
    token_digest = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="sent_invitations")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="accepted_invitations")
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"Invitation of {self.email} to {self.organization_id}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class KeyKind(models.TextChoices):
    INFERENCE = "inference", "Inference"
    MANAGEMENT = "management", "Management"


class ApiKey(models.Model):
    """An API key. Only an HMAC digest of its secret is stored; `hash` is its public id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    hash = models.CharField(max_length=64, unique=True)
    lookup_id = models.CharField(max_length=32, unique=True)
    digest = models.CharField(max_length=64)
    pepper_id = models.CharField(max_length=16)
    kind = models.CharField(max_length=16, choices=KeyKind.choices, default=KeyKind.INFERENCE)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    # Inference keys belong to a workspace; management keys to the organization only.
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="api_keys")
    name = models.CharField(max_length=200)
    label = models.CharField(max_length=64)
    disabled = models.BooleanField(default=False)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="api_keys")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    limit = money_field(null=True, blank=True)
    limit_reset = models.CharField(max_length=16, choices=ResetInterval.choices, null=True, blank=True)
    include_byok_in_limit = models.BooleanField(default=False)
    external_user = models.CharField(max_length=256, null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="management", workspace__isnull=True) | models.Q(kind="inference"),
                name="apikey_management_has_no_workspace",
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.label})"

    @property
    def is_management(self) -> bool:
        return self.kind == KeyKind.MANAGEMENT

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def is_active(self) -> bool:
        return not self.disabled and not self.is_expired()


class Guardrail(models.Model):
    """Spend and policy limits, enforced once assigned to keys or members (or as a workspace default)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="guardrails")
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="guardrails")
    is_workspace_default = models.BooleanField(default=False)
    name = models.CharField(max_length=200)
    description = models.TextField(null=True, blank=True)
    limit_usd = money_field(null=True, blank=True)
    reset_interval = models.CharField(max_length=16, choices=ResetInterval.choices, null=True, blank=True)
    include_byok_in_budgets = models.BooleanField(default=False)
    allowed_models = models.JSONField(null=True, blank=True)
    ignored_models = models.JSONField(null=True, blank=True)
    allowed_providers = models.JSONField(null=True, blank=True)
    ignored_providers = models.JSONField(null=True, blank=True)
    enforce_zdr = models.BooleanField(null=True, blank=True)
    enforce_zdr_anthropic = models.BooleanField(null=True, blank=True)
    enforce_zdr_openai = models.BooleanField(null=True, blank=True)
    enforce_zdr_google = models.BooleanField(null=True, blank=True)
    enforce_zdr_xai = models.BooleanField(null=True, blank=True)
    enforce_zdr_other = models.BooleanField(null=True, blank=True)
    allow_safety_retention_google = models.BooleanField(null=True, blank=True)
    allow_safety_retention_other = models.BooleanField(null=True, blank=True)
    enable_free_model_publication = models.BooleanField(null=True, blank=True)
    enable_free_model_training = models.BooleanField(null=True, blank=True)
    enable_paid_model_training = models.BooleanField(null=True, blank=True)
    allowed_data_regions = models.JSONField(null=True, blank=True)
    content_filters = models.JSONField(null=True, blank=True)
    content_filter_builtins = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name


class GuardrailKeyAssignment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    guardrail = models.ForeignKey(Guardrail, on_delete=models.CASCADE, related_name="key_assignments")
    api_key = models.OneToOneField(ApiKey, on_delete=models.CASCADE, related_name="guardrail_assignment")
    assigned_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.guardrail_id} -> key {self.api_key_id}"


class GuardrailMemberAssignment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    guardrail = models.ForeignKey(Guardrail, on_delete=models.CASCADE, related_name="member_assignments")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="guardrail_assignments")
    assigned_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"],
                                               name="guardrail_member_one_per_user")]

    def __str__(self):
        return f"{self.guardrail_id} -> user {self.user_id}"


class ByokKey(models.Model):
    """A provider credential brought by the organization; stored encrypted, never returned."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="byok_keys")
    # Null: usable in every workspace of the organization.
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="byok_keys")
    provider = models.CharField(max_length=100)
    name = models.CharField(max_length=200, blank=True, default="")
    encrypted_key = models.TextField()
    label = models.CharField(max_length=64)
    disabled = models.BooleanField(default=False)
    sort_order = models.IntegerField(default=0)
    is_fallback = models.BooleanField(default=False)
    is_required = models.BooleanField(default=False)
    is_byok_only = models.BooleanField(default=False)
    allowed_models = models.JSONField(null=True, blank=True)
    allowed_api_key_hashes = models.JSONField(null=True, blank=True)
    allowed_user_ids = models.JSONField(null=True, blank=True)
    declared_region = models.CharField(max_length=16, null=True, blank=True)
    declared_zdr = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["provider", "sort_order", "created_at"]

    def __str__(self):
        return f"{self.provider} {self.label}"


class PresetStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"
    ARCHIVED = "archived", "Archived"


class Preset(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="presets")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="presets")
    slug = models.CharField(max_length=100, validators=[slug_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=PresetStatus.choices, default=PresetStatus.ACTIVE)
    status_updated_at = models.DateTimeField(null=True, blank=True)
    designated_version = models.ForeignKey("PresetVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="+")
    creator_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "slug"], name="preset_unique_slug")]
        ordering = ["-updated_at"]

    def __str__(self):
        return self.slug


class PresetVersion(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    preset = models.ForeignKey(Preset, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    config = models.JSONField(default=dict)
    system_prompt = models.TextField(null=True, blank=True)
    # A user id, or "key:<hash>" when a management key saved it.
    creator_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["preset", "version"], name="preset_version_unique")]
        ordering = ["-version"]

    def __str__(self):
        return f"{self.preset_id} v{self.version}"


class ObservabilityDestination(models.Model):
    """Where generation events are broadcast; `config` secrets are encrypted at rest."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="destinations")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="destinations")
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=32)
    enabled = models.BooleanField(default=True)
    # Non-secret config in clear; secret values replaced by markers and kept in encrypted_secrets.
    config = models.JSONField(default=dict)
    encrypted_secrets = models.TextField(blank=True, default="")
    api_key_hashes = models.JSONField(null=True, blank=True)
    sampling_rate = models.DecimalField(max_digits=6, decimal_places=4, default=1)
    privacy_mode = models.BooleanField(default=False)
    filter_rules = models.JSONField(null=True, blank=True)
    broadcast_generation_cost = models.BooleanField(default=True)
    broadcast_generation_cost_allocation = models.BooleanField(default=False)
    broadcast_generation_identity = models.BooleanField(default=True)
    broadcast_generation_request_context = models.BooleanField(default=True)
    regions = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.type}: {self.name}"


class AuditLogEntry(models.Model):
    """Who changed what, and when. Secret values are never recorded."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="audit_log")
    actor_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_key_hash = models.CharField(max_length=64, null=True, blank=True)
    actor_label = models.CharField(max_length=255, blank=True, default="")
    action = models.CharField(max_length=16)  # create, update, delete
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=100)
    object_repr = models.CharField(max_length=255, blank=True, default="")
    changes = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="audit_org_created")]

    def __str__(self):
        return f"{self.action} {self.object_type} {self.object_id}"
