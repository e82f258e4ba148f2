from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from workspaces import crypto
from workspaces.policy_services import reencrypt_secrets


class Command(BaseCommand):
    help = ("Re-encrypt every BYOK key and observability destination secret under the first ENCRYPTION_KEYS key. "
            "Rotation: put the new key first (keep the old ones after it), run this, then drop the old keys.")

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200, help="rows per transaction (default 200)")

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            crypto.fernet()
            counts = reencrypt_secrets(batch_size=batch_size)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        except crypto.DecryptionError:
            # Rows rotated so far stay rotated (each batch commits); the rest still open under the old keys.
            raise CommandError("a stored secret opens under none of ENCRYPTION_KEYS: keep every key that "
                               "encrypted existing data in the list, then run this again") from None
        self.stdout.write(f"Re-encrypted {counts['byok_keys']} BYOK key(s) and {counts['destinations']} "
                          f"observability destination secret set(s) under the first key.")
