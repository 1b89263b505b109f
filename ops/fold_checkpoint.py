"""Where a process's first /metrics scrape starts folding the event log.

Folding the whole log costs time in proportion to its history (about half
a second at 200,000 events); every process used to pay it on its first
scrape. Each fold that moved forward saves its state (cumulative counters
and histograms, the watermark and the ids still missing below it) in one
row; a process starting afresh loads that row and folds only the events
past it, as the saving process itself would have on its next scrape.

This is not a cache of numbers: the row is exact for a stated set of events
(ids up to the watermark except the gaps) and every scrape still folds
everything newer, so a scrape never shows less than its snapshot holds.

The row is trusted only if it was made by the same fold definition (its key
is a digest of the metrics folded and ``FOLD_VERSION``) and the event at its
watermark is still the one it saw (a log reset or restore gives new events
the same ids).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime

from django.db import DatabaseError, transaction
from django.utils import timezone

from ops import metric_defs as m
from ops.models import EventFoldCheckpoint
from workers.models import WorkerEvent

log = logging.getLogger(__name__)
# Bump when what a folded series counts changes without its name, labels or
# buckets changing (a new reason, a different duration start).
FOLD_VERSION = 1


def checkpoint_key() -> str:
    folded = [
        (d.name, d.kind, d.labels, d.buckets) for d in m.ALL if d.source == m.EVENT_LOG
    ]
    text = json.dumps([FOLD_VERSION, folded])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def load(newest: int) -> dict | None:
    """The saved state this process may continue from, or None (fold from
    the beginning). ``newest`` is the newest event id of the caller's
    snapshot: a checkpoint past it belongs to another log."""
    row = (
        EventFoldCheckpoint.objects.filter(key=checkpoint_key(), watermark__lte=newest)
        .values("watermark", "state")
        .first()
    )
    if row is None:
        return None
    anchor = row["state"].get("anchor_at")
    seen = WorkerEvent.objects.filter(id=row["watermark"]).values_list("at", flat=True)
    if anchor is None or [datetime.fromisoformat(anchor)] != list(seen):
        log.info(
            "fold checkpoint at event %s ignored: the log changed", row["watermark"]
        )
        return None
    return row["state"]


def save(watermark: int, state: dict) -> None:
    """Store ``state`` unless a checkpoint past ``watermark`` exists
    (processes only move it forward; at the same watermark the newer state
    may have folded a gap). Never raises: a scrape that could not save
    still answered correctly."""
    key = checkpoint_key()
    now = timezone.now()
    try:
        with transaction.atomic():
            moved = EventFoldCheckpoint.objects.filter(
                key=key, watermark__lte=watermark
            ).update(watermark=watermark, state=state, saved_at=now)
            if not moved:
                EventFoldCheckpoint.objects.bulk_create(
                    [
                        EventFoldCheckpoint(
                            key=key, watermark=watermark, state=state, saved_at=now
                        )
                    ],
                    ignore_conflicts=True,
                )
    except DatabaseError:
        log.warning("fold checkpoint not saved", exc_info=True)


def anchor_at(watermark: int) -> str | None:
    """The time of the event at ``watermark``, which ``load`` checks."""
    at = WorkerEvent.objects.filter(id=watermark).values_list("at", flat=True).first()
    return at.isoformat() if at else None
