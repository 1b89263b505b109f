"""Scrape time of /metrics's collectors at fleet size N (goal: <= 200 ms at
100k workers). The first scrape of a process folds the whole event log;
later ones read only new events, so both are reported.

    DATABASE_URL=postgres://.../scratch .venv/bin/python bench/metrics_bench.py \
        --workers 100000 [--keep]

--keep reuses the fleet already in the scratch database (no reseed).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if args.keep:
        import django

        django.setup()
    else:
        import scratch_db  # noqa: F401 - sets up Django, empties the fleet
        from django.core.management import call_command

        call_command("seed_load", workers=args.workers, seed=13, verbosity=0)
    from ops.event_metrics import FOLD
    from ops.scrape import render
    from workers.models import Worker, WorkerEvent

    started = time.perf_counter()
    size = len(render())
    cold = (time.perf_counter() - started) * 1000
    warm = []
    for _ in range(args.runs):
        started = time.perf_counter()
        render()
        warm.append((time.perf_counter() - started) * 1000)
    print(
        f"workers={Worker.objects.count()} events={WorkerEvent.objects.count()} "
        f"bytes={size} first scrape={cold:.0f} ms; later scrapes "
        f"p50={statistics.median(warm):.0f} ms max={max(warm):.0f} ms "
        f"(fold watermark {FOLD.watermark})"
    )


if __name__ == "__main__":
    main()
