"""Generations (one per request that reached an upstream), the credit ledger and budgets."""

import uuid

from django.db import models
from django.utils import timezone

from workspaces.models import ApiKey, Organization, User, Workspace, money_field


class CreditKind(models.TextChoices):
    GRANT = "grant", "Grant"
    USAGE = "usage", "Usage charge"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"


class CreditEntry(models.Model):
    """One movement of the organization's credits. Grants are positive, charges negative."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="credit_entries")
    kind = models.CharField(max_length=16, choices=CreditKind.choices)
    amount = money_field()
    reason = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "kind"], name="credit_org_kind")]

    def __str__(self):
        return f"{self.kind} {self.amount}"


class BudgetInterval(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    LIFETIME = "lifetime", "Lifetime"


class WorkspaceBudget(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="budgets")
    interval = models.CharField(max_length=16, choices=BudgetInterval.choices)
    limit_usd = money_field()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "interval"], name="budget_one_per_interval")]

    def __str__(self):
        return f"{self.interval} {self.limit_usd}"


class GenerationStatus(models.TextChoices):
    SUCCESS = "success", "Success"
    ERROR = "error", "Error"
    CANCELLED = "cancelled", "Cancelled"


class Generation(models.Model):
    """What one request did upstream and what it cost. Exactly one per request that reached an upstream."""

    id = models.CharField(max_length=64, primary_key=True)  # gen-...
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="generations")
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="generations")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="generations")
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="generations")
    created_at = models.DateTimeField(default=timezone.now)
    model = models.CharField(max_length=200)
    provider_name = models.CharField(max_length=200, blank=True, default="")
    provider_slug = models.CharField(max_length=100, blank=True, default="")
    upstream_model = models.CharField(max_length=200, blank=True, default="")
    upstream_id = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, choices=GenerationStatus.choices, default=GenerationStatus.SUCCESS)
    error_code = models.IntegerField(null=True, blank=True)
    error_message = models.CharField(max_length=500, blank=True, default="")
    tokens_prompt = models.PositiveIntegerField(default=0)
    tokens_completion = models.PositiveIntegerField(default=0)
    tokens_reasoning = models.PositiveIntegerField(default=0)
    tokens_cached = models.PositiveIntegerField(default=0)
    tokens_cache_write = models.PositiveIntegerField(default=0)
    usage_estimated = models.BooleanField(default=False)
    # Market price of the tokens, and what the organization's credits were charged.
    total_cost = money_field(default=0)
    usage = money_field(default=0)
    is_byok = models.BooleanField(default=False)
    upstream_inference_cost = money_field(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    generation_time_ms = models.PositiveIntegerField(null=True, blank=True)
    streamed = models.BooleanField(default=False)
    cancelled = models.BooleanField(default=False)
    finish_reason = models.CharField(max_length=32, null=True, blank=True)
    native_finish_reason = models.CharField(max_length=64, null=True, blank=True)
    provider_responses = models.JSONField(default=list)
    preset_id = models.UUIDField(null=True, blank=True)
    session_id = models.CharField(max_length=256, null=True, blank=True)
    end_user = models.CharField(max_length=128, null=True, blank=True)
    http_referer = models.CharField(max_length=500, null=True, blank=True)
    app_title = models.CharField(max_length=200, null=True, blank=True)
    user_agent = models.CharField(max_length=500, null=True, blank=True)
    api_type = models.CharField(max_length=32, default="completions")
    # The request's `trace` object (trace_id, span names, custom metadata) for observability destinations.
    trace = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The rollup finds what arrived since its watermark across all organizations.
            models.Index(fields=["created_at"], name="gen_created"),
            models.Index(fields=["organization", "created_at"], name="gen_org_created"),
            models.Index(fields=["workspace", "created_at"], name="gen_workspace_created"),
            models.Index(fields=["api_key", "created_at"], name="gen_key_created"),
        ]

    def __str__(self):
        return self.id


class ActivityRollup(models.Model):
    """The sums of one (UTC day, organization, workspace, key, member, model, provider)'s generations.

    Written only by `billing.rollups`, which rebuilds whole (day, organization) buckets; never edited in place.
    Deleting a workspace, key or person nulls it here exactly as on the generation rows.
    """

    day = models.DateField()
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="activity_rollups",
                                     db_index=False)  # the (organization, day) index serves it
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="activity_rollups")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="activity_rollups")
    # The key's creator, as on Generation.user.
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="activity_rollups")
    model = models.CharField(max_length=200)
    provider_slug = models.CharField(max_length=100, blank=True, default="")
    provider_name = models.CharField(max_length=200, blank=True, default="")
    requests = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    reasoning_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    usage = money_field(default=0)
    byok_usage = money_field(default=0)
    errors = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="rollup_org_day")]

    def __str__(self):
        return f"{self.day} {self.model} x{self.requests}"


class RollupWatermark(models.Model):
    """How far generations are rolled up: every row at or before (created_at, generation_id) is counted in
    ActivityRollup, every later row is the tail that readers take from Generation. `version` changes with
    every rollup commit, so a reader can tell that its two reads saw the same state."""

    name = models.CharField(max_length=32, primary_key=True)
    created_at = models.DateTimeField(null=True, blank=True)
    # Empty when the mark is a day boundary rather than a row: it then sorts before every row at that instant.
    generation_id = models.CharField(max_length=64, blank=True, default="")
    version = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.name} at {self.created_at} {self.generation_id}"


class BudgetCounter(models.Model):
    """Spend and outstanding reservations of one spender (organization, workspace, key, member) in one UTC
    window: the row admission locks when there is no Redis (see docs/budgets.md). Seeded from generations
    the first time it is needed, then kept by settlement; `spend` is what credits paid (Generation.usage),
    `spend_byok` the market price of generations served with the organization's own provider keys.
    Amounts are integers in units of 1e-10 USD (what Generation costs are quantized to), as in Redis: the
    counters add up exactly in SQL, whatever the database's decimal type."""

    key = models.CharField(max_length=200, unique=True)  # "<subject>@<window id>"
    subject = models.CharField(max_length=180)  # org:<id>, ws:<id>, key:<id>, member:<org>:<user>, ...
    window = models.CharField(max_length=16)  # d20260715, w20260713, m202607, life
    spend = models.BigIntegerField(default=0)
    spend_byok = models.BigIntegerField(default=0)
    reserved = models.BigIntegerField(default=0)
    reserved_byok = models.BigIntegerField(default=0)
    # After this the window is over and the row may be deleted; null for lifetime counters.
    expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.key


class BudgetReservation(models.Model):
    """What one admitted request holds on each counter (in units of 1e-10 USD) until it settles; reclaimed
    once expired (a process that died mid-request never settles)."""

    id = models.CharField(max_length=64, primary_key=True)
    counter_keys = models.TextField(default="")  # the counters' keys, one per line
    amount = models.BigIntegerField(default=0)
    amount_byok = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return self.id
