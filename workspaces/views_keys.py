"""The dashboard's key pages: inference keys per workspace, management keys per organization.

Members see and manage the keys they created in their workspaces; admins every key of the workspace. A key's
plaintext exists only in the response to its creation (never stored, never cached by the browser). Every write
goes through the same services as the management API, which also record the audit entries.
"""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing import usage as billing_usage

from . import access, services
from .models import ApiKey, KeyKind, ResetInterval
from .services import ServiceError

EXPIRY_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


class ManagementKeyForm(forms.Form):
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"placeholder": "CI deploys"}))
    expires_at = forms.DateTimeField(
        required=False, label="Expires (UTC)", input_formats=EXPIRY_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Optional. The key stops working at this time.")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the key a name.")
        return name


class KeyForm(ManagementKeyForm):
    limit = forms.DecimalField(
        required=False, label="Credit limit (USD)", min_value=Decimal(0), max_digits=24, decimal_places=12,
        widget=forms.NumberInput(attrs={"step": "0.01", "placeholder": "No limit"}),
        help_text="Optional. The key is refused once it has spent this much in the reset period.")
    limit_reset = forms.ChoiceField(
        required=False, label="Limit resets", choices=[("", "Never")] + list(ResetInterval.choices),
        help_text="At midnight UTC; weeks start on Monday, months on the 1st.")
    field_order = ["name", "limit", "limit_reset", "expires_at"]

    def clean_limit_reset(self):
        return self.cleaned_data.get("limit_reset") or None

    def clean(self):
        data = super().clean()
        if data.get("limit_reset") and data.get("limit") is None:
            self.add_error("limit_reset", "Set a credit limit for it to reset.")
        return data


def _form_error(form, error: ServiceError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


def _state(api_key: ApiKey) -> str:
    if api_key.disabled:
        return "disabled"
    return "expired" if api_key.is_expired() else "active"


def _no_store(response):
    # The page holds a plaintext key: no cache, and no back-button copy of it.
    response["Cache-Control"] = "no-store"
    return response


# --- inference keys of a workspace -----------------------------------------------------------------------------

def _workspace_page(request, org_slug, ws_slug):
    membership = access.get_membership_for_user(request.user, org_slug)
    workspace = access.get_workspace_for_user(request.user, membership.organization, ws_slug)
    manages_all = access.workspaces_for_user(request.user, membership.organization, access.CHANGE_WORKSPACE) \
        .filter(pk=workspace.pk).exists()
    return membership, workspace, manages_all


def _key_rows(api_keys, url_args, action_prefix) -> list[dict]:
    api_keys = list(api_keys)
    counters = billing_usage.keys_usage(api_keys)
    rows = []
    for api_key in api_keys:
        usage = counters[api_key.pk]
        args = [*url_args, api_key.hash]
        rows.append({
            "key": api_key, "state": _state(api_key), "usage": usage["usage"],
            "limit_spend": billing_usage.limit_spend(api_key, usage) if api_key.limit is not None else None,
            "limit_remaining": billing_usage.limit_remaining(api_key, usage),
            "disable_url": reverse(f"workspaces:{action_prefix}-disable", args=args),
            "enable_url": reverse(f"workspaces:{action_prefix}-enable", args=args),
            "delete_url": reverse(f"workspaces:{action_prefix}-delete", args=args),
        })
    return rows


def _render_keys(request, membership, workspace, manages_all, form, status=200):
    org = membership.organization
    api_keys = (ApiKey.objects.filter(organization=org, workspace=workspace, kind=KeyKind.INFERENCE)
                .select_related("created_by").order_by("-created_at", "-id"))
    if not manages_all:
        api_keys = api_keys.filter(created_by=request.user)
    return render(request, "workspaces/keys.html", {
        "org": org, "membership": membership, "workspace": workspace, "active_tab": "keys",
        "can_manage": membership.is_admin, "manages_all": manages_all, "form": form,
        "rows": _key_rows(api_keys, [org.slug, workspace.slug], "key"),
    }, status=status)


@login_required
def keys(request, org_slug, ws_slug):
    membership, workspace, manages_all = _workspace_page(request, org_slug, ws_slug)
    return _render_keys(request, membership, workspace, manages_all, KeyForm())


@login_required
@require_POST
def key_create(request, org_slug, ws_slug):
    membership, workspace, manages_all = _workspace_page(request, org_slug, ws_slug)
    org = membership.organization
    form = KeyForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            api_key, plaintext = services.issue_api_key(
                organization=org, name=data["name"], workspace=workspace, creator=request.user,
                limit=data["limit"], limit_reset=data["limit_reset"], expires_at=data["expires_at"],
                by_user=request.user)
        except ServiceError as error:
            _form_error(form, error)
        else:
            return _no_store(render(request, "workspaces/keys_created.html", {
                "org": org, "membership": membership, "workspace": workspace, "active_tab": "keys",
                "can_manage": membership.is_admin, "api_key": api_key, "plaintext": plaintext,
                "back_url": reverse("workspaces:keys", args=[org.slug, workspace.slug]),
            }, status=201))
    return _render_keys(request, membership, workspace, manages_all, form, status=400)


def _workspace_key(request, org_slug, ws_slug, key_hash):
    """(workspace, key) when the person may act on it: their own key, or any key there for an admin."""
    membership, workspace, manages_all = _workspace_page(request, org_slug, ws_slug)
    api_key = ApiKey.objects.filter(organization=membership.organization, workspace=workspace,
                                    kind=KeyKind.INFERENCE, hash=key_hash).first()
    if api_key is None:
        raise Http404("No such key in this workspace.")
    if not manages_all and api_key.created_by_id != request.user.pk:
        raise PermissionDenied("Members manage only the keys they created; ask an admin.")
    return workspace, api_key


def _back_to_keys(workspace):
    return redirect("workspaces:keys", workspace.organization.slug, workspace.slug)


@login_required
@require_POST
def key_disable(request, org_slug, ws_slug, key_hash):
    workspace, api_key = _workspace_key(request, org_slug, ws_slug, key_hash)
    services.update_api_key(api_key, disabled=True, by_user=request.user)
    messages.success(request, f"Disabled the key {api_key.name}; requests with it are refused from now on.")
    return _back_to_keys(workspace)


@login_required
@require_POST
def key_enable(request, org_slug, ws_slug, key_hash):
    workspace, api_key = _workspace_key(request, org_slug, ws_slug, key_hash)
    services.update_api_key(api_key, disabled=False, by_user=request.user)
    messages.success(request, f"Enabled the key {api_key.name} again.")
    return _back_to_keys(workspace)


@login_required
@require_POST
def key_delete(request, org_slug, ws_slug, key_hash):
    workspace, api_key = _workspace_key(request, org_slug, ws_slug, key_hash)
    services.delete_api_key(api_key, by_user=request.user)
    messages.success(request, f"Deleted the key {api_key.name}.")
    return _back_to_keys(workspace)


# --- management keys of an organization (admins) ----------------------------------------------------------------

def _render_management_keys(request, membership, form, status=200):
    org = membership.organization
    api_keys = (ApiKey.objects.filter(organization=org, kind=KeyKind.MANAGEMENT).select_related("created_by")
                .order_by("-created_at", "-id"))
    return render(request, "workspaces/management_keys.html", {
        "org": org, "membership": membership, "active_tab": "management-keys", "form": form,
        "rows": _key_rows(api_keys, [org.slug], "management-key"),
    }, status=status)


@login_required
def management_keys(request, org_slug):
    membership = access.get_membership_for_user(request.user, org_slug, access.CHANGE_ORG)
    return _render_management_keys(request, membership, ManagementKeyForm())


@login_required
@require_POST
def management_key_create(request, org_slug):
    membership = access.get_membership_for_user(request.user, org_slug, access.CHANGE_ORG)
    org = membership.organization
    form = ManagementKeyForm(request.POST)
    if form.is_valid():
        try:
            api_key, plaintext = services.issue_management_key(
                organization=org, name=form.cleaned_data["name"], creator=request.user,
                expires_at=form.cleaned_data["expires_at"], by_user=request.user)
        except ServiceError as error:
            _form_error(form, error)
        else:
            return _no_store(render(request, "workspaces/management_keys_created.html", {
                "org": org, "membership": membership, "active_tab": "management-keys", "api_key": api_key,
                "plaintext": plaintext, "back_url": reverse("workspaces:management-keys", args=[org.slug]),
            }, status=201))
    return _render_management_keys(request, membership, form, status=400)


def _management_key(request, org_slug, key_hash):
    org = access.get_organization_for_user(request.user, org_slug, access.CHANGE_ORG)
    api_key = ApiKey.objects.filter(organization=org, kind=KeyKind.MANAGEMENT, hash=key_hash).first()
    if api_key is None:
        raise Http404("No such management key.")
    return org, api_key


@login_required
@require_POST
def management_key_disable(request, org_slug, key_hash):
    org, api_key = _management_key(request, org_slug, key_hash)
    services.update_api_key(api_key, disabled=True, by_user=request.user)
    messages.success(request, f"Disabled the management key {api_key.name}.")
    return redirect("workspaces:management-keys", org.slug)


@login_required
@require_POST
def management_key_enable(request, org_slug, key_hash):
    org, api_key = _management_key(request, org_slug, key_hash)
    services.update_api_key(api_key, disabled=False, by_user=request.user)
    messages.success(request, f"Enabled the management key {api_key.name} again.")
    return redirect("workspaces:management-keys", org.slug)


@login_required
@require_POST
def management_key_delete(request, org_slug, key_hash):
    org, api_key = _management_key(request, org_slug, key_hash)
    services.delete_api_key(api_key, by_user=request.user)
    messages.success(request, f"Deleted the management key {api_key.name}.")
    return redirect("workspaces:management-keys", org.slug)
