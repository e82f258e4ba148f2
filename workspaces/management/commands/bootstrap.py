from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Sum

from billing.models import CreditEntry, CreditKind
from billing.services import grant_credits
from workspaces.models import KeyKind, Membership, Organization, Role, User, WorkspaceMembership
from workspaces.services import create_api_key, create_organization, sync_workspace_permissions

BOOTSTRAP_REASON = "bootstrap --credits"


class Command(BaseCommand):
    help = ("Create (or bring up to date) an organization, its Default workspace and its owner; grant credits; "
            "print a new management key as the last line.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization name")
        parser.add_argument("--email", required=True, help="the owner's e-mail (also the admin login)")
        parser.add_argument("--password", required=True)
        parser.add_argument("--credits", help="USD: the total granted by bootstrap (repeating it grants nothing more)")
        parser.add_argument("--inference-key", action="store_true",
                            help="also create an inference key in the Default workspace and print it")

    def handle(self, *args, org, email, password, credits, inference_key, **options):
        email = email.strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"--email: {email!r} is not an e-mail address") from None
        if not org.strip():
            raise CommandError("--org must not be empty")
        amount = None
        if credits is not None:
            try:
                amount = Decimal(credits)
            except InvalidOperation:
                raise CommandError(f"--credits must be a number of USD, got {credits!r}") from None
            if amount < 0 or not amount.is_finite():
                raise CommandError("--credits must not be negative")

        with transaction.atomic():
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_superuser(email=email, password=password)
                self.stdout.write(f"Created user {email} (superuser: can log in to /admin/)")
            else:
                user.set_password(password)
                user.is_staff = user.is_superuser = True
                user.save()
            self._mark_email_verified(user)
            organization = Organization.objects.filter(name=org.strip()).first()
            if organization is None:
                organization = create_organization(org.strip(), owner=user)
                self.stdout.write(f"Created organization {organization.name} with its Default workspace")
            Membership.objects.update_or_create(organization=organization, user=user,
                                                defaults={"role": Role.ADMIN})
            if organization.owner_id is None:
                organization.owner = user
                organization.save(update_fields=["owner"])
            default = organization.default_workspace
            WorkspaceMembership.objects.update_or_create(workspace=default, user=user, defaults={"role": Role.ADMIN})
            sync_workspace_permissions(user, organization)  # the dashboard reads this index
            if amount is not None:
                granted = (CreditEntry.objects.filter(organization=organization, reason=BOOTSTRAP_REASON)
                           .exclude(kind=CreditKind.USAGE).aggregate(total=Sum("amount"))["total"] or Decimal(0))
                if amount != granted:
                    kind = CreditKind.GRANT if amount > granted else CreditKind.ADJUSTMENT
                    grant_credits(organization, amount - granted, reason=BOOTSTRAP_REASON, by=user, kind=kind)
                self.stdout.write(f"Credits granted by bootstrap: ${amount}")
            if inference_key:
                _key, plaintext = create_api_key(organization=organization, workspace=default, name="Demo key",
                                                 created_by=user)
                self.stdout.write(f"Inference key (Default workspace): {plaintext}")
            _key, management = create_api_key(organization=organization, name="Bootstrap management key",
                                              kind=KeyKind.MANAGEMENT, created_by=user)
        self.stdout.write(management)

    @staticmethod
    def _mark_email_verified(user):
        from allauth.account.models import EmailAddress

        EmailAddress.objects.update_or_create(user=user, email=user.email,
                                              defaults={"verified": True, "primary": True})
