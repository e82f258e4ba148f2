"""Billing pages of the dashboard (namespace `billing`)."""

from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("staff/credits", views.staff_credits, name="staff-credits"),
    path("staff/credits/entries", views.staff_credit_create, name="staff-credit-create"),
    path("o/<slug:org_slug>/billing", views.org_billing, name="org-billing"),
]
