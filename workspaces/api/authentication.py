from rest_framework import authentication, exceptions

from workspaces.auth import bearer_token, check_key


class KeyActor:
    """The caller of the API: an API key (acting for its organization)."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key):
        self.api_key = api_key
        self.organization = api_key.organization
        self.user = api_key.created_by

    @property
    def is_management(self) -> bool:
        return self.api_key.is_management

    def __str__(self):
        return f"key {self.api_key.label}"


class ManagementKeyAuthentication(authentication.BaseAuthentication):
    """Any API key authenticates; permission classes decide which kind an endpoint takes."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        token = bearer_token(header)
        result = check_key(token)
        if result.api_key is None:
            raise exceptions.AuthenticationFailed(result.error)
        return KeyActor(result.api_key), result.api_key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
