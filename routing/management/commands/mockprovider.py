from django.core.management.base import BaseCommand

from routing.mockprovider import DEFAULT_HOST, DEFAULT_PORT, run


class Command(BaseCommand):
    help = "Run the offline mock upstream provider (OpenAI and Anthropic wire formats, faults on demand)."
    # It touches neither models nor the database: start fast, even before migrations.
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("--host", default=DEFAULT_HOST)
        parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")

    def handle(self, *args, host, port, **options):
        run(host, port)
