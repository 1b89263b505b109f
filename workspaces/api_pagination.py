"""Cursor pagination for the API: ninja's ``CursorPagination`` (a page
starts at a position of the first ordering field, not at an offset into the
whole list), with a tampered or stale cursor answered 400 instead of 500."""

from __future__ import annotations

import pydantic
from django.core.exceptions import ValidationError as DjangoValidationError
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import CursorPagination

BAD_CURSOR = (
    "Invalid cursor: pass back the `next` or `previous` link exactly as given, "
    "or start again without a cursor."
)


class KeysetCursorPagination(CursorPagination):
    def paginate_queryset(self, queryset, pagination, request, **params):
        self._check_cursor(queryset, pagination.cursor)
        return super().paginate_queryset(queryset, pagination, request, **params)

    def _check_cursor(self, queryset, encoded: str | None) -> None:
        """Decode the cursor and parse its position as the ordering field
        would, so a bad one fails here rather than in the query."""
        try:
            cursor = self.Cursor.from_encoded_param(encoded)
            if cursor.p is not None:
                field = queryset.model._meta.get_field(self._order_attribute)
                field.to_python(cursor.p)
        except (
            NinjaValidationError,
            pydantic.ValidationError,
            DjangoValidationError,
            ValueError,
        ) as exc:
            raise HttpError(400, BAD_CURSOR) from exc
