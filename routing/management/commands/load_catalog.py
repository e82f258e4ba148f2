import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from routing.catalog import CatalogError, load_catalog


class Command(BaseCommand):
    help = "Load providers, models and endpoints from a catalog file (JSON, or YAML if PyYAML is installed)."

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, file, **options):
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        try:
            if path.suffix in (".yaml", ".yml"):
                try:
                    import yaml
                except ImportError:
                    raise CommandError("YAML catalogs need PyYAML (pip install pyyaml); or use JSON") from None
                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except ValueError as exc:
            raise CommandError(f"{file} is not valid: {exc}") from None
        try:
            counts = load_catalog(data)
        except CatalogError as exc:
            raise CommandError(f"{file}: {exc}") from None
        self.stdout.write(f"Loaded {counts['providers']} providers, {counts['models']} models, "
                          f"{counts['endpoints']} endpoints from {file}")
