"""What the header needs on every page: the person's organizations and the current one's workspaces."""

from django.utils.functional import SimpleLazyObject

from . import access
from .models import Membership

SESSION_ORG_KEY = "current_org"


def current_org_for(request):
    """The organization the page is about (from the URL), else the one last used (from the session)."""
    user = request.user
    match = getattr(request, "resolver_match", None)
    org_slug = match.kwargs.get("org_slug") if match else None
    orgs = access.organizations_for_user(user)
    if org_slug:
        found = orgs.filter(slug=org_slug).first()
        if found is not None:
            return found
    org_id = request.session.get(SESSION_ORG_KEY)
    if org_id:
        found = orgs.filter(pk=org_id).first()
        if found is not None:
            return found
    return orgs.first()


def _nav(request) -> dict:
    user = request.user
    if not user.is_authenticated:
        return {}
    org = current_org_for(request)
    nav = {"orgs": list(access.organizations_for_user(user)), "org": org, "workspaces": [], "workspace": None,
           "is_admin": False}
    if org is None:
        return nav
    nav["workspaces"] = list(access.workspaces_for_user(user, org))
    nav["is_admin"] = Membership.objects.filter(organization=org, user=user, role="admin").exists()
    match = getattr(request, "resolver_match", None)
    ws_slug = match.kwargs.get("ws_slug") if match else None
    if ws_slug:
        nav["workspace"] = next((w for w in nav["workspaces"] if w.slug == ws_slug), None)
    return nav


def navigation(request) -> dict:
    # Lazy: pages that never render the header (redirects, JSON) pay nothing.
    return {"nav": SimpleLazyObject(lambda: _nav(request))}
