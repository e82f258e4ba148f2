from django.urls import path

from . import api

urlpatterns = [
    path("credits", api.CreditsView.as_view(), name="api-credits"),
    path("activity", api.ActivityView.as_view(), name="api-activity"),
    path("generation", api.GenerationView.as_view(), name="api-generation"),
    path("workspaces/<str:ref>/budgets", api.WorkspaceBudgetsView.as_view(), name="api-workspace-budgets"),
    path("workspaces/<str:ref>/budgets/<str:interval>", api.WorkspaceBudgetView.as_view(),
         name="api-workspace-budget"),
]
