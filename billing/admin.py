from django.contrib import admin

from .models import CreditEntry, Generation, WorkspaceBudget


@admin.register(CreditEntry)
class CreditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organization", "kind", "amount", "reason", "created_by"]
    list_filter = ["kind"]
    readonly_fields = ["created_by"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(WorkspaceBudget)
class WorkspaceBudgetAdmin(admin.ModelAdmin):
    list_display = ["workspace", "interval", "limit_usd", "updated_at"]


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "model", "provider_name", "status", "tokens_prompt", "tokens_completion",
                    "total_cost", "usage", "latency_ms", "streamed", "cancelled", "workspace"]
    list_filter = ["status", "streamed", "cancelled", "provider_name"]
    search_fields = ["id", "model"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False
