"""Validation for the Notebook Workers console's query string.

The FilterSet in ``workers.filters`` builds its form on top of
``ConsoleFilterForm``: the filters add status, backend, project (Space ID) and user, this
base adds the paging and display options that are not filters on a column.
Bad input is reported next to its field and never silently reset.
"""

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django import forms

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Query parameters that take exactly one value; repeating one is an error
# instead of "the last one wins", so a shared URL always means one thing.
SINGLE_VALUED = (
    "backend",
    "project",
    "user",
    "limit",
    "terminal",
    "runtime",
    "before",
)


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the (created_at, id) of the last row shown."""

    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = f"{self.created_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        """Raises ValueError for anything that is not a cursor we made.

        ``encode`` only ever sees UTC times from the database, so any other
        offset is a crafted link: Python accepts offsets up to ±23:59 that
        PostgreSQL refuses with a DataError.
        """
        try:
            padded = text + "=" * (-len(text) % 4)
            stamp, _, ident = base64.urlsafe_b64decode(padded).decode().partition("|")
            created_at = datetime.fromisoformat(stamp)
            cursor = cls(created_at=created_at, id=uuid.UUID(ident))
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise ValueError("not a cursor") from exc
        if created_at.utcoffset() != timedelta(0):
            raise ValueError("cursor time is not in UTC")
        return cursor


class CursorField(forms.CharField):
    def to_python(self, value) -> Cursor | None:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return Cursor.decode(text)
        except ValueError as exc:
            raise forms.ValidationError(
                "This paging link is damaged; go back to the newest workers.",
                code="invalid_cursor",
            ) from exc


class ConsoleFilterForm(forms.Form):
    limit = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        label="Limit",
        help_text=f"Rows per page, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT}).",
        widget=forms.NumberInput(attrs={"placeholder": str(DEFAULT_LIMIT)}),
    )
    terminal = forms.BooleanField(
        required=False,
        label="Include terminal workers",
        help_text="Also list stopped and failed workers.",
    )
    runtime = forms.BooleanField(
        required=False,
        label="Include runtime status",
        help_text="Probe listed workers' endpoints live; slower than stored status.",
    )
    before = CursorField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in SINGLE_VALUED:
            values = self.data.getlist(name) if hasattr(self.data, "getlist") else []
            if len(values) > 1:
                self.add_error(
                    name,
                    f"'{name}' was given {len(values)} times; give it once.",
                )
        return cleaned

    def clean_limit(self) -> int:
        return self.cleaned_data.get("limit") or DEFAULT_LIMIT


def _health_ranges() -> list[tuple[str, str]]:
    # Imported here: the selectors import this module.
    from console.health_selectors import RANGES

    return [(key, label) for key, (label, *_) in RANGES.items()]


class HealthRangeForm(forms.Form):
    """Fleet health's ``?range=``: one of the known windows, given at most
    once; absent means the last 24 hours."""

    range = forms.ChoiceField(
        required=False,
        choices=_health_ranges,
        error_messages={
            "invalid_choice": "Unknown range “%(value)s”: use 24h or 7d.",
        },
    )

    def clean_range(self) -> str:
        from console.health_selectors import DEFAULT_RANGE

        values = self.data.getlist("range") if hasattr(self.data, "getlist") else []
        if len(values) > 1:
            raise forms.ValidationError(
                f"'range' was given {len(values)} times; give it once."
            )
        return self.cleaned_data.get("range") or DEFAULT_RANGE
