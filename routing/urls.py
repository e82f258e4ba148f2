from django.urls import path

from . import api

app_name = "routing"
urlpatterns = [
    path("models", api.list_models, name="models"),
    path("models/<str:author>/<str:slug>/endpoints", api.model_endpoints, name="model-endpoints"),
    path("providers", api.list_providers, name="providers"),
]
