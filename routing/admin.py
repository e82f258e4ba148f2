from django.contrib import admin

from .models import CatalogModel, Endpoint, Provider


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "base_url", "api_format", "api_key_env", "data_collection", "zdr"]
    search_fields = ["slug", "name"]


class EndpointInline(admin.TabularInline):
    model = Endpoint
    extra = 0
    fields = ["provider", "upstream_model", "price_prompt", "price_completion", "max_completion_tokens",
              "quantization", "is_enabled"]


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "context_length"]
    search_fields = ["slug", "name"]
    inlines = [EndpointInline]


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ["model", "provider", "upstream_model", "price_prompt", "price_completion", "is_enabled"]
    list_filter = ["provider", "is_enabled"]
