"""The one place where django-allauth is customized."""

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib import messages


def pending_invitation(request):
    """The invitation whose link this browser opened (kept in the session), while it can still be accepted."""
    from .models import Invitation
    from .services import invitation_problem

    invitation_id = request.session.get("invitation_id")
    if not invitation_id:
        return None
    invitation = Invitation.objects.select_related("organization").filter(pk=invitation_id).first()
    if invitation is None or invitation_problem(invitation):
        return None
    return invitation


class AccountAdapter(DefaultAccountAdapter):
    def is_email_verified(self, request, email):
        # Opening the invitation link proves the person reads that address's mail.
        if super().is_email_verified(request, email):
            return True
        invitation = pending_invitation(request)
        return invitation is not None and invitation.email.lower() == (email or "").lower()

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        invitation = pending_invitation(request)
        if commit and invitation is not None and invitation.email.lower() == user.email.lower():
            from .context_processors import SESSION_ORG_KEY
            from .services import ServiceError, accept_invitation

            try:
                accept_invitation(invitation, user=user)
            except ServiceError as error:
                messages.error(request, error.message)
            else:
                # The invitation is used up now; allauth marks the address verified from this stash.
                request.session.pop("invitation_id", None)
                self.stash_verified_email(request, invitation.email)
                request.session[SESSION_ORG_KEY] = str(invitation.organization_id)
                messages.success(request, f"Welcome to {invitation.organization.name}.")
        return user
