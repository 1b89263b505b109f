"""Writes to resource classes, keeping exactly one enabled default."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from resource_classes.models import ResourceClass

DEFAULT_RULE = "Exactly one enabled resource class must be marked as the default."


def resource_class_default_errors(
    *, pk: str | None, is_default: bool, enabled: bool
) -> dict[str, list[str]]:
    """Errors in a form for what saving this class would do to the default rule.

    Ticking *default* on a class moves the default to it (see
    ``resource_class_save``); what is refused is leaving the platform with none.
    """
    errors: dict[str, list[str]] = {}
    if is_default and not enabled:
        errors["enabled"] = [
            "The default class must be enabled; make another class the default first."
        ]
        return errors
    if is_default:
        return errors
    others = ResourceClass.objects.exclude(pk=pk)
    if not others.filter(enabled=True, is_default=True).exists():
        errors["is_default"] = [
            f"{DEFAULT_RULE} No other class is the default, so this one must be: "
            "tick 'default' here, or tick it on another enabled class."
        ]
    return errors


@transaction.atomic
def resource_class_save(resource_class: ResourceClass) -> ResourceClass:
    """Validate and save; a new default takes over from the previous one."""
    resource_class.full_clean()
    errors = resource_class_default_errors(
        pk=resource_class.pk,
        is_default=resource_class.is_default,
        enabled=resource_class.enabled,
    )
    if errors:
        raise ValidationError(errors)
    if resource_class.is_default:
        ResourceClass.objects.select_for_update().filter(is_default=True).exclude(
            pk=resource_class.pk
        ).update(is_default=False)
    resource_class.save()
    return resource_class


@transaction.atomic
def resource_classes_load(entries: Iterable[dict]) -> list[ResourceClass]:
    """Create or update classes from plain dicts (a settings or YAML file).

    All or nothing: every entry is validated, and the file as a whole must name
    exactly one enabled default, before any row is written.
    """
    entries = list(entries)
    problems: list[str] = []
    defaults = [e for e in entries if e.get("default") or e.get("is_default")]
    if len(defaults) != 1:
        problems.append(f"{DEFAULT_RULE} The file marks {len(defaults)}.")
    known = {f.name for f in ResourceClass._meta.get_fields()} | {"default"}
    classes: list[ResourceClass] = []
    for index, entry in enumerate(entries):
        unknown = set(entry) - known
        if unknown or "id" not in entry:
            problems.append(
                f"entry {index}: needs 'id'; unknown keys: {', '.join(sorted(unknown)) or 'none'}"
            )
            continue
        values = {k: v for k, v in entry.items() if k not in ("id", "default")}
        values["is_default"] = bool(entry.get("default") or entry.get("is_default"))
        instance = ResourceClass.objects.filter(
            pk=entry["id"]
        ).first() or ResourceClass(id=entry["id"])
        for key, value in values.items():
            setattr(
                instance,
                key,
                str(value)
                if key.endswith(("_request", "_limit", "_storage"))
                else value,
            )
        try:
            instance.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                problems.extend(f"{entry['id']}.{field}: {m}" for m in messages)
        classes.append(instance)
    if problems:
        raise ValidationError(problems)
    ResourceClass.objects.filter(is_default=True).update(is_default=False)
    for instance in sorted(classes, key=lambda c: c.is_default):
        instance.save()
    return classes
