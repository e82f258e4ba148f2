"""Small validation forms for the dashboard. They parse and validate; services write."""

from decimal import Decimal

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from .models import ROLE_RANK, ProviderSort, Role, Workspace, slug_validator


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=200, label="Organization name",
                           widget=forms.TextInput(attrs={"autofocus": True, "placeholder": "Acme Inc."}))

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the organization a name.")
        return name


class SwitchOrganizationForm(forms.Form):
    org = forms.CharField(max_length=100)


class WorkspaceForm(forms.Form):
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"placeholder": "Production"}))
    slug = forms.CharField(max_length=100, validators=[slug_validator],
                           help_text="Used in URLs and the API. Lowercase letters and digits, "
                                     "separated by single hyphens.",
                           widget=forms.TextInput(attrs={"placeholder": "production", "pattern": r"[a-z0-9]+(-[a-z0-9]+)*"}))
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the workspace a name.")
        return name

    def clean_description(self):
        return self.cleaned_data.get("description", "").strip() or None


def _model_choices(current: list[str]) -> list[tuple[str, str]]:
    from routing.models import CatalogModel

    choices = [("", "No default (the request names the model)")]
    slugs = list(CatalogModel.objects.order_by("slug").values_list("slug", "name"))
    known = {slug for slug, _name in slugs}
    # A default that left the catalog stays selectable, so saving other fields does not drop it.
    for value in current:
        if value and value not in known:
            choices.append((value, f"{value} (not in the catalog)"))
    choices.extend((slug, f"{slug} — {name}") for slug, name in slugs)
    return choices


class WorkspaceSettingsForm(WorkspaceForm):
    default_text_model = forms.ChoiceField(required=False, label="Default text model")
    default_image_model = forms.ChoiceField(required=False, label="Default image model")
    default_provider_sort = forms.ChoiceField(
        required=False, label="Default provider sort",
        choices=[("", "No preference (balanced)")] + list(ProviderSort.choices),
        help_text="How providers are ordered when a request does not say.")
    disabled_server_tools = forms.CharField(
        required=False, label="Disabled server tools",
        help_text="Comma-separated, e.g. <code>openrouter:web_search</code>. A request naming one is refused.")
    io_logging_sampling_rate = forms.DecimalField(
        label="I/O logging sampling rate", max_digits=6, decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("1"))],
        help_text="Between 0.0001 and 1.")
    is_data_discount_logging_enabled = forms.BooleanField(required=False, label="Data discount logging")
    is_observability_broadcast_enabled = forms.BooleanField(required=False, label="Broadcast to observability "
                                                                                  "destinations")
    is_observability_io_logging_enabled = forms.BooleanField(required=False, label="I/O logging")

    def __init__(self, *args, workspace: Workspace, **kwargs):
        kwargs.setdefault("initial", {
            "name": workspace.name, "slug": workspace.slug, "description": workspace.description or "",
            "default_text_model": workspace.default_text_model or "",
            "default_image_model": workspace.default_image_model or "",
            "default_provider_sort": workspace.default_provider_sort or "",
            "disabled_server_tools": ", ".join(workspace.disabled_server_tools or []),
            "io_logging_sampling_rate": workspace.io_logging_sampling_rate,
            "is_data_discount_logging_enabled": workspace.is_data_discount_logging_enabled,
            "is_observability_broadcast_enabled": workspace.is_observability_broadcast_enabled,
            "is_observability_io_logging_enabled": workspace.is_observability_io_logging_enabled,
        })
        super().__init__(*args, **kwargs)
        choices = _model_choices([workspace.default_text_model, workspace.default_image_model])
        self.fields["default_text_model"].choices = choices
        self.fields["default_image_model"].choices = choices

    def clean_default_text_model(self):
        return self.cleaned_data.get("default_text_model") or None

    def clean_default_image_model(self):
        return self.cleaned_data.get("default_image_model") or None

    def clean_default_provider_sort(self):
        return self.cleaned_data.get("default_provider_sort") or None

    def clean_disabled_server_tools(self):
        raw = self.cleaned_data.get("disabled_server_tools") or ""
        tools = [t.strip() for t in raw.split(",") if t.strip()]
        for tool in tools:
            if len(tool) > 100 or any(c.isspace() for c in tool):
                raise forms.ValidationError(f"'{tool[:40]}' is not a tool name.")
        return list(dict.fromkeys(tools)) or None


def roles_up_to(role: str) -> list[tuple[str, str]]:
    """The roles someone holding `role` may hand out: never one above their own."""
    rank = ROLE_RANK.get(role, 0)
    return [(value, label) for value, label in Role.choices if ROLE_RANK[value] <= rank]


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address",
                             widget=forms.EmailInput(attrs={"placeholder": "teammate@example.com"}))
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)
    workspaces = forms.ModelMultipleChoiceField(
        queryset=Workspace.objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Everyone joins the Default workspace. Admins can reach every workspace.")

    def __init__(self, *args, organization, inviter_role: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = roles_up_to(inviter_role)
        self.fields["workspaces"].queryset = organization.workspaces.filter(is_default=False).order_by("name")

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class AddWorkspaceMemberForm(forms.Form):
    user = forms.ChoiceField(label="Organization member")

    def __init__(self, *args, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [("", "Choose a member…")] + [(str(u.pk), u.email) for u in candidates]
