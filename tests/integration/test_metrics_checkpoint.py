"""A process's first /metrics scrape continues from the fold another process
saved (``ops.fold_checkpoint``) and reads only the events past it, with the
same numbers as folding the whole log; a checkpoint of another log, or of
another fold definition, is ignored; gaps carry over."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ops import fold_checkpoint
from ops.event_metrics import CHECKPOINT_SECONDS, EventLogFold
from ops.models import EventFoldCheckpoint
from tests.integration.metrics_support import samples_of, start, stop
from workers.models import WorkerEvent

pytest_plugins = ["tests.integration.lifecycle_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


def exposition(fold: EventLogFold) -> dict:
    from prometheus_client import CollectorRegistry, generate_latest

    class One:
        def collect(self):
            return fold.families()

    registry = CollectorRegistry(auto_describe=False)
    registry.register(One())
    return samples_of(generate_latest(registry).decode())


def whole_log_fold() -> dict:
    """What a process folding the whole log reports (no checkpoint)."""
    EventFoldCheckpoint.objects.all().delete()
    fold = EventLogFold()
    fold.refresh()
    return exposition(fold)


def same_numbers(resumed: dict, whole: dict) -> bool:
    """The same series and values (sums of seconds added in another order
    may differ in the last bit)."""
    assert resumed.keys() == whole.keys()
    assert resumed == {k: pytest.approx(v, rel=1e-12) for k, v in whole.items()}
    return True


def drive(fleet) -> None:
    """A start, a failed start, a stop: starts, failures and durations."""
    stop(fleet, start(fleet))
    fleet.backend.fail("launch", "error", "no capacity")
    start(fleet)
    fleet.backend.heal()


def fold_queries(queries) -> list[str]:
    """The queries that read a range of the log (not MAX(id) or one row)."""
    return [
        q["sql"]
        for q in queries
        if '"workers_workerevent"' in q["sql"]
        and "MAX(" not in q["sql"]
        and '"workers_workerevent"."id" = ' not in q["sql"]
        and not q["sql"].startswith(("UPDATE", "INSERT"))
    ]


def test_a_new_process_continues_from_the_saved_fold(fleet, default_class):
    EventFoldCheckpoint.objects.all().delete()
    drive(fleet)
    first = EventLogFold()
    first.refresh()
    saved = first.watermark
    assert EventFoldCheckpoint.objects.get().watermark == saved
    drive(fleet)

    fresh = EventLogFold()
    with CaptureQueriesContext(connection) as queries:
        fresh.refresh()

    reads = fold_queries(queries.captured_queries)
    assert reads and all(f'"workers_workerevent"."id" > {saved}' in q for q in reads)
    assert fresh.watermark == WorkerEvent.objects.latest("id").id
    assert same_numbers(exposition(fresh), whole_log_fold())
    starts = (
        "notebook_worker_starts_total",
        frozenset({"backend": "local", "outcome": "ready"}.items()),
    )
    assert exposition(fresh)[starts] == 2


def test_a_checkpoint_of_another_log_is_ignored(fleet, default_class):
    EventFoldCheckpoint.objects.all().delete()
    drive(fleet)
    EventLogFold().refresh()
    row = EventFoldCheckpoint.objects.get()
    row.state["anchor_at"] = "2001-01-01T00:00:00+00:00"  # not the event it saw
    row.save()

    fresh = EventLogFold()
    with CaptureQueriesContext(connection) as queries:
        fresh.refresh()

    assert all('"id" > 0' in q for q in fold_queries(queries.captured_queries))
    assert same_numbers(exposition(fresh), whole_log_fold())


def test_a_checkpoint_of_another_fold_definition_is_ignored(
    fleet, default_class, monkeypatch
):
    EventFoldCheckpoint.objects.all().delete()
    drive(fleet)
    EventLogFold().refresh()
    monkeypatch.setattr(
        fold_checkpoint, "FOLD_VERSION", fold_checkpoint.FOLD_VERSION + 1
    )

    assert fold_checkpoint.load(WorkerEvent.objects.latest("id").id) is None


def test_a_gap_saved_with_the_checkpoint_is_folded_when_its_event_appears(
    fleet, default_class
):
    """An event committed late, with an id below the saved watermark (its
    transaction was still open when the other process folded)."""
    EventFoldCheckpoint.objects.all().delete()
    worker = start(fleet)
    late = WorkerEvent.objects.get(worker=worker, to_status="ready")
    fields = {f.attname: getattr(late, f.attname) for f in WorkerEvent._meta.fields}
    WorkerEvent.objects.filter(id=late.id).delete()  # not committed yet
    stop(fleet, worker)  # newer events: the watermark passes the missing id
    first = EventLogFold()
    first.refresh()
    assert late.id in first.gaps and first.watermark > late.id

    WorkerEvent.objects.bulk_create([WorkerEvent(**fields)])  # it commits
    fresh = EventLogFold()
    fresh.refresh()

    assert late.id not in fresh.gaps
    assert same_numbers(exposition(fresh), whole_log_fold())
    starts = (
        "notebook_worker_starts_total",
        frozenset({"backend": "local", "outcome": "ready"}.items()),
    )
    assert exposition(fresh)[starts] == 1


def test_a_process_saves_its_fold_at_most_once_a_minute(fleet, default_class):
    EventFoldCheckpoint.objects.all().delete()
    drive(fleet)
    fold = EventLogFold()
    fold.refresh()
    saved = EventFoldCheckpoint.objects.get().watermark
    drive(fleet)
    fold.refresh()
    assert EventFoldCheckpoint.objects.get().watermark == saved < fold.watermark
    fleet.clock.shift(CHECKPOINT_SECONDS)
    drive(fleet)
    fold.refresh()
    assert EventFoldCheckpoint.objects.get().watermark == fold.watermark
