from django.contrib import admin
from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.urls import include, path, re_path

from .errors import not_found


def healthz(request):
    return JsonResponse({"status": "ok"})


def favicon(request):
    # Browsers ask for /favicon.ico on every page without an icon link (the admin's, say). Resolved per request:
    # with DEBUG off the static URL comes from the collected manifest, which need not exist at import.
    return HttpResponsePermanentRedirect(static("favicon.svg"))


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("routing.urls")),
    path("api/v1/", include("billing.urls")),
    path("api/v1/", include("workspaces.api.urls")),
    # Anything else under /api/ answers in the API's envelope, DEBUG or not (not Django's HTML page).
    re_path(r"^api/", not_found),
    path("", include("billing.urls_dashboard")),
    path("", include("workspaces.urls")),
]

handler404 = "openrouter_ws.errors.not_found"
handler500 = "openrouter_ws.errors.server_error"
