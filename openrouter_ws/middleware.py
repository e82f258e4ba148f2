"""Checks that hold for every page and endpoint Django serves."""

from django.http import HttpResponseBadRequest, JsonResponse

NUL_MESSAGE = "The request's path or query contains a NUL character."


def refuse_nul(get_response):
    """No URL of ours has a NUL character, and PostgreSQL refuses one in text: a lookup with it would fail
    late, as a 500. Refused first, for the API in its envelope."""

    def middleware(request):
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            if request.path.startswith("/api/"):
                return JsonResponse({"error": {"code": 400, "message": NUL_MESSAGE}}, status=400)
            return HttpResponseBadRequest(NUL_MESSAGE, content_type="text/plain; charset=utf-8")
        return get_response(request)

    return middleware
