"""Error pages: JSON in the API's envelope under /api/, HTML elsewhere."""

from django.http import JsonResponse
from django.shortcuts import render


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse({"error": {"code": 404, "message": f"No such endpoint: {request.method} {request.path}"}},
                            status=404)
    return render(request, "404.html", status=404)


def server_error(request):
    if _is_api(request):
        return JsonResponse({"error": {"code": 500, "message": "Internal server error."}}, status=500)
    return render(request, "500.html", status=500)
