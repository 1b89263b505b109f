"""The console's row renderer and its relative times (``console.rows``)."""

import random
import uuid
from datetime import UTC, datetime, timedelta

from django.utils.timesince import timesince, timeuntil

from console.rows import NAME_FIELDS, ROW_FIELDS, ConsoleRow, render_row, span

NOW = datetime(2026, 3, 31, 12, 0, 30, 500, tzinfo=UTC)


def test_span_says_what_timesince_says_at_depth_one():
    """Month ends, leap days, seconds under a minute, the future."""
    rng = random.Random(11)
    moments = [NOW - timedelta(seconds=rng.uniform(-600, 4e7)) for _ in range(5000)]
    moments += [datetime(2024, 2, 29, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)]
    for moment in moments:
        assert span(moment, NOW) == timesince(moment, NOW, depth=1)
        assert span(NOW, moment) == timeuntil(moment, NOW, depth=1)


def _row(**values) -> ConsoleRow:
    defaults = dict.fromkeys(ROW_FIELDS + NAME_FIELDS, "")
    defaults.update(
        id=uuid.UUID(int=7), status="ready", workspace_id=None, owner_name="bob",
        console_path=f"{uuid.UUID(int=7)}/", stale=False, backend_label="Docker",
        status_label="Ready", age="1\xa0day", activity="", checked="", due="",
        actions=(), access_url="",
    )  # fmt: skip
    row = ConsoleRow.from_values(tuple(defaults), tuple(defaults.values()))
    row.__dict__.update(values)
    return row


def test_it_escapes_every_value_from_the_database():
    html = render_row(
        _row(
            name='<script>alert("n")</script>',
            owner_name="o&'",
            project_name="<p>",
            class_name='"c"',
            status="stopping",
            error_code="<e>",
            health="<h>",
            checked="<c>",
            next_action="<a>",
            due="<d>",
        )
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;n&quot;)&lt;/script&gt;" in html
    for text in ("o&amp;&#x27;", "&lt;p&gt;", "&quot;c&quot;", "&lt;e&gt;"):
        assert text in html
    assert '<span class="badge health-&lt;h&gt;">' in html


def test_it_borrows_the_worker_rules():
    """A row may do what a ``Worker`` with the same values may do."""
    assert _row(status="stopping", error_code="stop_failed").stop_failed
    assert not _row(status="stopping").stop_failed
    assert _row(status="ready").can_stop
    assert _row(status="stopped", workspace_id=uuid.uuid4()).can_start_again
    assert not _row(status="stopped").can_start_again


def test_the_socket_variant_swaps_out_of_band():
    assert ' hx-swap-oob="true">' in render_row(_row(), oob=True)
    assert "hx-swap-oob" not in render_row(_row())
