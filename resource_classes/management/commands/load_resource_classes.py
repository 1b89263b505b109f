from pathlib import Path

import yaml
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from resource_classes.services import resource_classes_load


class Command(BaseCommand):
    help = (
        "Create or update resource classes from a YAML file: a list of classes, or a "
        "mapping with a 'resource_classes' list. All or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        try:
            data = yaml.safe_load(file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        if isinstance(data, dict):
            data = data.get("resource_classes")
        if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
            raise CommandError(f"{file}: expected a list of resource classes.")
        try:
            classes = resource_classes_load(data)
        except ValidationError as exc:
            raise CommandError(
                "Nothing was written:\n  " + "\n  ".join(exc.messages)
            ) from exc
        for rc in classes:
            self.stdout.write(f"{'*' if rc.is_default else ' '} {rc.id}: {rc}")
        self.stdout.write(
            self.style.SUCCESS(f"Loaded {len(classes)} resource classes.")
        )
