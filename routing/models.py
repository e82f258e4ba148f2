"""The model catalog: providers, models and the endpoints that serve them."""

from django.db import models
from django.utils import timezone

from workspaces.models import money_field


class ApiFormat(models.TextChoices):
    OPENAI = "openai", "OpenAI-compatible"
    ANTHROPIC = "anthropic", "Anthropic Messages"


class Provider(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    base_url = models.URLField(max_length=500)
    api_format = models.CharField(max_length=16, choices=ApiFormat.choices, default=ApiFormat.OPENAI)
    # The environment variable that holds the platform credential; empty: no credential sent.
    api_key_env = models.CharField(max_length=100, blank=True, default="")
    data_collection = models.CharField(max_length=8, default="allow")  # "allow" | "deny"
    zdr = models.BooleanField(default=False)
    privacy_policy_url = models.URLField(max_length=500, null=True, blank=True)
    terms_of_service_url = models.URLField(max_length=500, null=True, blank=True)
    status_page_url = models.URLField(max_length=500, null=True, blank=True)
    headquarters = models.CharField(max_length=8, null=True, blank=True)
    datacenters = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.name


class CatalogModel(models.Model):
    """A model as clients name it (`author/slug`)."""

    slug = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    context_length = models.PositiveIntegerField(default=0)
    input_modalities = models.JSONField(default=list)
    output_modalities = models.JSONField(default=list)
    tokenizer = models.CharField(max_length=64, blank=True, default="")
    hugging_face_id = models.CharField(max_length=200, blank=True, default="")
    created = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class Endpoint(models.Model):
    """One provider's offer of a model: price, limits, capabilities."""

    model = models.ForeignKey(CatalogModel, on_delete=models.CASCADE, related_name="endpoints")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="endpoints")
    upstream_model = models.CharField(max_length=200)
    price_prompt = money_field(default=0)
    price_completion = money_field(default=0)
    price_request = money_field(default=0)
    price_image = money_field(default=0)
    price_input_cache_read = money_field(null=True, blank=True)
    price_input_cache_write = money_field(null=True, blank=True)
    price_internal_reasoning = money_field(null=True, blank=True)
    quantization = models.CharField(max_length=16, blank=True, default="unknown")
    context_length = models.PositiveIntegerField(null=True, blank=True)
    max_completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    supported_parameters = models.JSONField(default=list)
    status = models.IntegerField(default=0)  # 0: available; negative: degraded or down
    is_enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "provider"], name="endpoint_unique_provider")]
        ordering = ["model__slug", "provider__slug"]

    def __str__(self):
        return f"{self.model.slug} via {self.provider.slug}"
