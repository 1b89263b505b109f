"""The console's table row: what the page reads of a worker
(``ConsoleRow``) and the row as HTML, from the plain values that
``console.selectors`` sets on each worker.

This is the one row partial: ``console.html``'s ``row`` partial (the POST
response and the websocket's pushes) and the page's table both call
``render_row``. Written in Python rather than as a Django template because
the page renders it 100 times per request: the template cost about 0.3 ms a
row in variable lookups, this costs a few microseconds. Every value that
comes from the database is escaped here; nothing else writes a row.

``span`` is ``django.utils.timesince`` at depth 1, with its result per
(unit, count) cached: the row shows three or four of them, and Django's
lazy plural strings made them a tenth of the page's time.
"""

from datetime import datetime
from functools import lru_cache
from html import escape

from django.utils.html import avoid_wrapping
from django.utils.timesince import TIME_STRINGS, timesince
from django.utils.translation import get_language

from workers.models import Worker

DASH = "—"
# The columns the table shows; the selectors read only these for the page.
ROW_FIELDS = (
    "id",
    "name",
    "status",
    "backend",
    "error_code",
    "health",
    "health_checked_at",
    "last_activity_at",
    "created_at",
    "status_changed_at",
    "next_action",
    "next_action_at",
    "workspace_id",
)
NAME_FIELDS = ("owner_name", "project_name", "class_name")
# Those of ``ROW_FIELDS`` that are timestamps (aware UTC datetimes or None).
TIME_FIELDS = (
    "health_checked_at",
    "last_activity_at",
    "created_at",
    "status_changed_at",
    "next_action_at",
)


class ConsoleRow:
    """A worker as the page's table shows it: ``ROW_FIELDS`` and the names
    beside it, without building a model and its related objects per row.

    The rules are ``Worker``'s own properties, borrowed, so a row and a
    model cannot disagree on what a worker may do. The POST answer and the
    socket render full ``Worker`` objects through the same ``render_row``.
    """

    short_id = Worker.short_id
    is_terminal = Worker.is_terminal
    stop_failed = Worker.stop_failed
    can_stop = Worker.can_stop
    can_probe = Worker.can_probe
    can_start_again = Worker.can_start_again
    can_access_server = Worker.can_access_server
    is_stale = Worker.is_stale

    @classmethod
    def from_values(cls, names: tuple[str, ...], values: tuple) -> "ConsoleRow":
        row = cls.__new__(cls)
        row.__dict__.update(zip(names, values, strict=True))
        return row

    @property
    def pk(self):
        return self.id


_UNITS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60))
_MONTH_SECONDS = 28 * 86400  # below this no calendar month can have passed


def span(earlier: datetime, later: datetime, language: str | None = None) -> str:
    """``timesince(earlier, later, depth=1)``: "5\xa0minutes", "2\xa0days".
    ``language``: the active one, when the caller already looked it up."""
    delta = later - earlier
    seconds = delta.days * 86400 + delta.seconds
    if seconds >= _MONTH_SECONDS:  # months and years follow the calendar
        return timesince(earlier, later, depth=1)
    language = language or get_language()
    for unit, size in _UNITS:
        if seconds >= size:
            return _phrase(unit, seconds // size, language)
    return _phrase("minute", 0, language)


@lru_cache(maxsize=2048)
def _phrase(unit: str, count: int, language: str | None) -> str:
    return avoid_wrapping(TIME_STRINGS[unit] % {"num": count})


# For values from small sets (statuses, labels, class names, next actions):
# each row prints several, and escaping them anew was a tenth of a row.
_escaped = lru_cache(maxsize=4096)(escape)


def render_row(worker, *, oob: bool = False) -> str:
    """One ``<tr>`` for ``worker`` (a row from the console's selectors)."""
    # Not escaped, as made from safe parts: the path (the worker's UUID and
    # a slash) and the relative times (console.selectors, Django's phrases).
    path = worker.console_path
    wid = path[:-1]
    stop_failed = worker.stop_failed
    status = worker.status
    return "".join(
        (
            f'<tr id="worker-{wid}"',
            ' class="is-stop-failed"' if stop_failed else "",
            ' hx-swap-oob="true"' if oob else "",
            # console.js marks the link as a disclosure (aria-expanded): it
            # is one only where the script runs; without it, a plain link.
            f'><td><a class="expand" href="{path}">{wid[:8]}</a>'
            f"<div>{escape(worker.name or DASH)}</div></td>"
            f"<td>{escape(worker.owner_name)}</td>"
            f"<td>{escape(worker.project_name or DASH)}</td>"
            f"<td>{_escaped(worker.backend_label)}</td>"
            f'<td><span class="badge status-{_escaped(status)}">'
            f"{_escaped(worker.status_label)}</span>",
            (
                ' <span class="flag flag-bad" title="'
                f'{_escaped(worker.error_code)}">stop failed</span>'
                if stop_failed
                else ""
            ),
            ' <span class="flag flag-warn">stale</span>' if worker.stale else "",
            "</td><td>",
            _health(worker),
            f"</td><td>{_escaped(worker.class_name or DASH)}</td>"
            f"<td>{worker.age}</td>"
            f"<td>{worker.activity or DASH}</td><td>",
            (
                f"{_escaped(worker.next_action)}<small>{worker.due}</small>"
                if worker.next_action
                else DASH
            ),
            # The buttons belong to the #wa form around the table; they
            # submit it to their formaction.
            "</td><td>",
            *(
                f'<button formaction="{path}{_button(*action)}'
                for action in worker.actions
            ),
            (
                f'<a href="{escape(worker.access_url)}" '
                'target="_blank" rel="noopener">Access server</a>'
                if worker.access_url
                else ""
            ),
            "</td></tr>",
        )
    )


def render_rows(rows) -> str:
    return "".join([render_row(worker) for worker in rows])


def _health(worker) -> str:
    live = getattr(worker, "live", None)
    if live:
        latency = (
            f" · {escape(str(live.latency_ms))} ms"
            if live.latency_ms is not None
            else ""
        )
        health = escape(str(live.health))
        return (
            f'<span class="badge health-{health}" title="{escape(str(live.message))}">'
            f"{health}</span><small>live{latency}</small>"
        )
    if worker.health:
        health = _escaped(worker.health)
        return (
            f'<span class="badge health-{health}">{health}</span>'
            f"<small>{worker.checked}</small>"
        )
    return '<span class="muted">unknown</span>'


@lru_cache(maxsize=64)
def _button(action: str, label: str, confirm: str) -> str:
    """A button's markup after its row's path (the same on every row). One
    asking first is styled as dangerous by console.css."""
    return "".join(
        (
            f'{escape(action)}/"',
            f' data-confirm="{escape(confirm)}"' if confirm else "",
            f">{escape(label)}</button>",
        )
    )
