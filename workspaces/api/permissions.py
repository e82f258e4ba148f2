from rest_framework import permissions

MANAGEMENT_ONLY = ("This endpoint needs a management key. Inference keys can call only the inference "
                   "endpoints (chat/completions, models, providers, key).")


class IsManagementKey(permissions.BasePermission):
    message = MANAGEMENT_ONLY

    def has_permission(self, request, view):
        actor = request.user
        return bool(actor and getattr(actor, "is_management", False))


class IsAnyKey(permissions.BasePermission):
    def has_permission(self, request, view):
        return bool(request.user and getattr(request.user, "is_authenticated", False))
