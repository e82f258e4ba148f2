"""What every management endpoint shares: the caller's organization, paging and the envelopes."""

import uuid

from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from workspaces.models import Workspace

from .permissions import IsManagementKey

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
# Beyond any real list, and within what every database accepts as an OFFSET (a bigger one is a 500, not a 400).
MAX_OFFSET = 10**9


def parse_int(request, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: f"must be an integer, got {raw!r}"}) from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ValidationError({name: f"must be {bound}"})
    return value


def parse_bool(request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValidationError({name: f"must be true or false, got {raw!r}"})


def ok(data, **extra) -> Response:
    return Response({"data": data, **extra})


def created(data, **extra) -> Response:
    return Response({"data": data, **extra}, status=status.HTTP_201_CREATED)


def deleted() -> Response:
    return Response({"deleted": True})


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


class ManagementView(APIView):
    """Base of management endpoints: a management key, acting as its organization's admin."""

    permission_classes = [IsManagementKey]

    @property
    def actor(self):
        return self.request.user

    @property
    def organization(self):
        return self.request.user.organization

    def paginate(self, queryset, serialize, **extra) -> Response:
        offset = parse_int(self.request, "offset", 0, maximum=MAX_OFFSET)
        limit = parse_int(self.request, "limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        total = queryset.count()
        items = [serialize(obj) for obj in queryset[offset:offset + limit]]
        return Response({"data": items, "total_count": total, **extra})

    def get_workspace(self, ref) -> Workspace:
        """A workspace of the caller's organization by UUID or slug; 404 for anything else."""
        workspaces = Workspace.objects.filter(organization=self.organization)
        found = (workspaces.filter(id=ref) if is_uuid(ref) else workspaces.filter(slug=ref)).first()
        if found is None:
            raise Http404(f"Workspace {ref} not found.")
        return found

    def workspace_or_default(self, ref) -> Workspace:
        if ref:
            return self.get_workspace(ref)
        default = self.organization.default_workspace
        if default is None:
            raise ValidationError({"workspace_id": "the organization has no Default workspace; name one"})
        return default
