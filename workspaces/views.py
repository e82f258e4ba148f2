"""The web dashboard: organizations, workspaces, members and invitations.

Each view checks access first (an outsider gets 404, a role too low 403), calls one service, then renders
or redirects. Refusals a person can fix come back from services as ServiceError and are shown beside the
form field or as a flash message.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import access, services
from .context_processors import SESSION_ORG_KEY, current_org_for
from .forms import (AddWorkspaceMemberForm, InviteForm, OrganizationForm, RoleForm, SwitchOrganizationForm,
                    WorkspaceForm, WorkspaceSettingsForm)
from .models import ApiKey, Invitation, Membership, Role, User, Workspace, WorkspaceMembership
from .services import ServiceError

SESSION_INVITATION_KEY = "invitation_id"


def _remember_org(request, org) -> None:
    if request.session.get(SESSION_ORG_KEY) != str(org.pk):
        request.session[SESSION_ORG_KEY] = str(org.pk)


def _form_error(form, error: ServiceError) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


def _active_keys(queryset):
    now = timezone.now()
    return queryset.filter(disabled=False).exclude(expires_at__lte=now)


def _member_or_404(org, user_id) -> Membership:
    return get_object_or_404(Membership.objects.select_related("user"), organization=org, user_id=user_id)


# --- home, organizations ------------------------------------------------------------------------------------

def home(request):
    if not request.user.is_authenticated:
        return redirect("account_login")
    org = current_org_for(request)
    if org is None:
        return redirect("workspaces:org-create")
    return redirect("workspaces:org", org.slug)


@login_required
def org_create(request):
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            org = services.create_organization_for(request.user, form.cleaned_data["name"])
        except ServiceError as error:
            _form_error(form, error)
        else:
            _remember_org(request, org)
            messages.success(request, f"Created {org.name} with its Default workspace.")
            return redirect("workspaces:org", org.slug)
    has_orgs = access.organizations_for_user(request.user).exists()
    return render(request, "workspaces/org_create.html", {"form": form, "has_orgs": has_orgs},
                  status=400 if form.errors else 200)


@login_required
@require_POST
def switch_org(request):
    form = SwitchOrganizationForm(request.POST)
    if not form.is_valid():
        raise Http404("No such organization.")
    org = access.get_organization_for_user(request.user, form.cleaned_data["org"])
    _remember_org(request, org)
    return redirect("workspaces:org", org.slug)


@login_required
def org_overview(request, org_slug):
    membership = access.get_membership_for_user(request.user, org_slug)
    org = membership.organization
    _remember_org(request, org)
    now = timezone.now()
    active = Q(api_keys__disabled=False) & ~Q(api_keys__expires_at__lte=now)
    workspaces = (access.workspaces_for_user(request.user, org)
                  .annotate(member_count=Count("memberships", distinct=True),
                            active_key_count=Count("api_keys", filter=active, distinct=True)))
    return render(request, "workspaces/org_overview.html", {
        "org": org, "membership": membership, "active_tab": "workspaces", "workspaces": workspaces,
        "member_count": Membership.objects.filter(organization=org).count(),
    })


@login_required
def org_members(request, org_slug):
    membership = access.get_membership_for_user(request.user, org_slug)
    org = membership.organization
    members = (Membership.objects.filter(organization=org).select_related("user")
               .order_by("user__email"))
    ws_counts = dict(WorkspaceMembership.objects.filter(workspace__organization=org)
                     .values_list("user_id").annotate(n=Count("id")))
    rows = [{"membership": m, "is_owner": m.user_id == org.owner_id, "workspace_count": ws_counts.get(m.user_id, 0),
             "role_form": RoleForm(initial={"role": m.role}, prefix=str(m.user_id))} for m in members]
    return render(request, "workspaces/org_members.html", {
        "org": org, "membership": membership, "active_tab": "members", "rows": rows,
        "roles": Role.choices,
    })


@login_required
@require_POST
def member_set_role(request, org_slug, user_id):
    org = access.get_organization_for_user(request.user, org_slug, access.CHANGE_ORG)
    target = _member_or_404(org, user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role: admin or member.")
        return redirect("workspaces:org-members", org.slug)
    try:
        services.set_role(org, target.user, form.cleaned_data["role"], by_user=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{target.user.email} is now {form.cleaned_data['role']}.")
    return redirect("workspaces:org-members", org.slug)


@login_required
@require_POST
def member_remove(request, org_slug, user_id):
    org = access.get_organization_for_user(request.user, org_slug, access.CHANGE_ORG)
    target = _member_or_404(org, user_id)
    try:
        disabled = services.remove_member(org, target.user, by_user=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
        return redirect("workspaces:org-members", org.slug)
    note = f" Their {disabled} active key{'s' if disabled != 1 else ''} were disabled." if disabled else ""
    messages.success(request, f"Removed {target.user.email} from {org.name}.{note}")
    if target.user_id == request.user.pk:
        request.session.pop(SESSION_ORG_KEY, None)
        return redirect("workspaces:home")
    return redirect("workspaces:org-members", org.slug)


# --- invitations ---------------------------------------------------------------------------------------------

def _render_invitations(request, membership, form, status=200):
    org = membership.organization
    invitations = (Invitation.objects.filter(organization=org).select_related("invited_by", "accepted_by")
                   .prefetch_related("workspaces").order_by("-created_at"))
    now = timezone.now()
    pending = [i for i in invitations if i.accepted_at is None and i.revoked_at is None and i.expires_at > now]
    expired = [i for i in invitations if i.accepted_at is None and i.revoked_at is None and i.expires_at <= now]
    closed = [i for i in invitations if i.accepted_at is not None or i.revoked_at is not None][:50]
    return render(request, "workspaces/org_invitations.html", {
        "org": org, "membership": membership, "active_tab": "invitations", "form": form,
        "pending": pending, "expired": expired, "closed": closed,
    }, status=status)


@login_required
def org_invitations(request, org_slug):
    membership = access.get_membership_for_user(request.user, org_slug, access.CHANGE_ORG)
    form = InviteForm(organization=membership.organization, inviter_role=membership.role)
    return _render_invitations(request, membership, form)


@login_required
@require_POST
def invitation_create(request, org_slug):
    membership = access.get_membership_for_user(request.user, org_slug, access.CHANGE_ORG)
    org = membership.organization
    form = InviteForm(request.POST, organization=org, inviter_role=membership.role)
    if form.is_valid():
        try:
            services.invite_member(org, email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                                   workspaces=form.cleaned_data["workspaces"], by_user=request.user)
        except ServiceError as error:
            _form_error(form, error)
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect("workspaces:org-invitations", org.slug)
    return _render_invitations(request, membership, form, status=400)


@login_required
@require_POST
def invitation_resend(request, org_slug, invitation_id):
    org = access.get_organization_for_user(request.user, org_slug, access.CHANGE_ORG)
    invitation = get_object_or_404(Invitation, organization=org, pk=invitation_id)
    try:
        services.resend_invitation(invitation, by_user=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Sent a new invitation link to {invitation.email}; the old link no longer works.")
    return redirect("workspaces:org-invitations", org.slug)


@login_required
@require_POST
def invitation_revoke(request, org_slug, invitation_id):
    org = access.get_organization_for_user(request.user, org_slug, access.CHANGE_ORG)
    invitation = get_object_or_404(Invitation, organization=org, pk=invitation_id)
    try:
        services.revoke_invitation(invitation, by_user=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Revoked the invitation of {invitation.email}.")
    return redirect("workspaces:org-invitations", org.slug)


def invite_accept(request, token):
    """GET shows what the invitation is and who it is for; only POST joins."""
    invitation = services.find_invitation(token)
    if invitation is None:
        return render(request, "workspaces/invite_invalid.html",
                      {"problem": "This invitation link is not valid. Check that you copied all of it."}, status=404)
    problem = services.invitation_problem(invitation)
    if problem:
        return render(request, "workspaces/invite_invalid.html", {"problem": problem, "invitation": invitation},
                      status=410)
    context = {"invitation": invitation, "org": invitation.organization, "token": token,
               "workspaces": invitation.workspaces.order_by("name")}
    user = request.user
    if not user.is_authenticated:
        if request.method == "POST":
            return redirect(f"{reverse('account_login')}?next={request.path}")
        # The person proved they read this address's mail: signing up with it needs no second verification
        # (the adapter reads this).
        request.session[SESSION_INVITATION_KEY] = str(invitation.pk)
        context["has_account"] = User.objects.filter(email__iexact=invitation.email).exists()
        return render(request, "workspaces/invite_confirm.html", context)
    if not services.user_has_email(user, invitation.email):
        return render(request, "workspaces/invite_wrong_user.html", context, status=403)
    if request.method != "POST":
        context["already_member"] = Membership.objects.filter(organization=invitation.organization,
                                                              user=user).exists()
        return render(request, "workspaces/invite_confirm.html", context)
    try:
        services.accept_invitation(invitation, user=user)
    except ServiceError as error:
        return render(request, "workspaces/invite_invalid.html", {"problem": error.message, "invitation": invitation},
                      status=error.status)
    request.session.pop(SESSION_INVITATION_KEY, None)
    _remember_org(request, invitation.organization)
    messages.success(request, f"Welcome to {invitation.organization.name}.")
    return redirect("workspaces:org", invitation.organization.slug)


# --- workspaces ----------------------------------------------------------------------------------------------

def _workspace_page(request, org_slug, ws_slug, perm=access.VIEW_WORKSPACE):
    """(membership, workspace) after the access checks every workspace page starts with."""
    membership = access.get_membership_for_user(request.user, org_slug)
    workspace = access.get_workspace_for_user(request.user, membership.organization, ws_slug, perm)
    _remember_org(request, membership.organization)
    return membership, workspace


def _workspace_context(membership, workspace, tab, **extra):
    return {"org": membership.organization, "membership": membership, "workspace": workspace, "active_tab": tab,
            "can_manage": membership.is_admin, **extra}


@login_required
def workspace_create(request, org_slug):
    membership = access.get_membership_for_user(request.user, org_slug, access.CHANGE_ORG)
    org = membership.organization
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            workspace = services.create_workspace(org, name=data["name"], slug=data["slug"],
                                                  description=data["description"], created_by=request.user,
                                                  by_user=request.user)
        except ServiceError as error:
            _form_error(form, error)
        else:
            messages.success(request, f"Created the workspace {workspace.name}.")
            return redirect("workspaces:workspace", org.slug, workspace.slug)
    return render(request, "workspaces/workspace_create.html",
                  {"org": org, "membership": membership, "form": form}, status=400 if form.errors else 200)


@login_required
def workspace_overview(request, org_slug, ws_slug):
    membership, workspace = _workspace_page(request, org_slug, ws_slug)
    keys = ApiKey.objects.filter(workspace=workspace)
    context = _workspace_context(
        membership, workspace, "overview",
        member_count=WorkspaceMembership.objects.filter(workspace=workspace).count(),
        active_key_count=_active_keys(keys).count(),
        my_active_key_count=_active_keys(keys.filter(created_by=request.user)).count(),
    )
    return render(request, "workspaces/workspace_overview.html", context)


def _render_workspace_members(request, membership, workspace, add_form=None, status=200):
    org = membership.organization
    rows = (WorkspaceMembership.objects.filter(workspace=workspace).select_related("user")
            .order_by("user__email"))
    now = timezone.now()
    key_holders = set(ApiKey.objects.filter(workspace=workspace, disabled=False).exclude(expires_at__lte=now)
                      .values_list("created_by_id", flat=True))
    candidates = (User.objects.filter(memberships__organization=org)
                  .exclude(workspace_memberships__workspace=workspace).order_by("email"))
    if add_form is None and membership.is_admin:
        add_form = AddWorkspaceMemberForm(candidates=candidates)
    return render(request, "workspaces/workspace_members.html", _workspace_context(
        membership, workspace, "members", rows=rows, key_holders=key_holders, add_form=add_form,
        has_candidates=candidates.exists(), owner_id=org.owner_id,
    ), status=status)


@login_required
def workspace_members(request, org_slug, ws_slug):
    membership, workspace = _workspace_page(request, org_slug, ws_slug)
    return _render_workspace_members(request, membership, workspace)


@login_required
@require_POST
def workspace_member_add(request, org_slug, ws_slug):
    membership, workspace = _workspace_page(request, org_slug, ws_slug, access.CHANGE_WORKSPACE)
    org = membership.organization
    candidates = User.objects.filter(memberships__organization=org).exclude(
        workspace_memberships__workspace=workspace)
    form = AddWorkspaceMemberForm(request.POST, candidates=candidates)
    if form.is_valid():
        user = candidates.get(pk=form.cleaned_data["user"])
        try:
            services.add_workspace_member(workspace, user, by_user=request.user)
        except ServiceError as error:
            _form_error(form, error)
        else:
            messages.success(request, f"Added {user.email} to {workspace.name}.")
            return redirect("workspaces:workspace-members", org.slug, workspace.slug)
    return _render_workspace_members(request, membership, workspace, add_form=form, status=400)


@login_required
@require_POST
def workspace_member_remove(request, org_slug, ws_slug, user_id):
    membership, workspace = _workspace_page(request, org_slug, ws_slug, access.CHANGE_WORKSPACE)
    target = get_object_or_404(WorkspaceMembership.objects.select_related("user"), workspace=workspace,
                               user_id=user_id)
    try:
        services.remove_workspace_member(workspace, target.user, by_user=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Removed {target.user.email} from {workspace.name}.")
    return redirect("workspaces:workspace-members", membership.organization.slug, workspace.slug)


@login_required
def workspace_settings(request, org_slug, ws_slug):
    membership, workspace = _workspace_page(request, org_slug, ws_slug, access.CHANGE_WORKSPACE)
    form = WorkspaceSettingsForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        try:
            workspace = services.update_workspace(workspace, by_user=request.user, **form.cleaned_data)
        except ServiceError as error:
            _form_error(form, error)
        else:
            messages.success(request, "Saved the workspace settings.")
            return redirect("workspaces:workspace-settings", membership.organization.slug, workspace.slug)
    active_keys = _active_keys(ApiKey.objects.filter(workspace=workspace)).count()
    return render(request, "workspaces/workspace_settings.html", _workspace_context(
        membership, workspace, "settings", form=form, active_key_count=active_keys,
    ), status=400 if form.errors else 200)


@login_required
@require_POST
def workspace_delete(request, org_slug, ws_slug):
    membership, workspace = _workspace_page(request, org_slug, ws_slug, access.CHANGE_WORKSPACE)
    org = membership.organization
    if workspace.is_default:
        messages.error(request, "The Default workspace cannot be deleted from the dashboard.")
        return redirect("workspaces:workspace-settings", org.slug, workspace.slug)
    if request.POST.get("confirm_slug", "").strip() != workspace.slug:
        messages.error(request, f"Type the workspace's slug ({workspace.slug}) to confirm the deletion.")
        return redirect("workspaces:workspace-settings", org.slug, workspace.slug)
    try:
        services.delete_workspace(workspace, by_user=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
        return redirect("workspaces:workspace-settings", org.slug, workspace.slug)
    messages.success(request, f"Deleted the workspace {workspace.name}.")
    return redirect("workspaces:org", org.slug)
