"""Fleet health's numbers as charts: titles, axis words, time labels, the
empty states and a table of the same numbers under each chart. Geometry
is ``console.svg_charts``; the numbers are ``console.health_selectors``.

Times are shown one way: ``YYYY-MM-DD HH:MM`` in the display time zone,
named (``FULL_TIME``); tick labels shorten that and the axis names the zone.
"""

from __future__ import annotations

from datetime import datetime

from django.utils.safestring import mark_safe

from console.health_selectors import FULL_TIME, FleetHealth, Window
from console.svg_charts import (
    Chart,
    Series,
    lines,
    render_svg,
    stacked_bars,
    usage_bars,
)

START_LABELS = {
    "ready": "Ready",
    "failed": "Failed",
    "cancelled": "Stopped while starting",
}
STATUS_LABELS = {
    "starting": "Starting",
    "ready": "Ready",
    "busy": "Busy",
    "stopping": "Stopping",
}
REAPER_LABELS = {
    "idle": "Idle timeout",
    "plan_window": "Plan window closed",
    "stale": "Stale",
    "preempted": "Preempted",
    "orphan": "Orphaned runtime",
    "vanished": "Runtime vanished",
    "start_timeout": "Start timed out",
}
GPU_LEGEND = (("in_use", "In use"), ("over", "Over quota"), ("quota", "Quota"))
HOUR_TICK_EVERY = 3


def full_time(moment: datetime) -> str:
    return moment.strftime(FULL_TIME)


def health_charts(health: FleetHealth) -> list[Chart]:
    """The page's charts, each with ``svg``: its markup, safe to print."""
    charts = [
        starts_chart(health),
        duration_chart(health),
        status_chart(health),
        reaper_chart(health),
        gpu_chart(health),
    ]
    for chart in charts:
        # render_svg escapes every text it writes; the rest is numbers.
        chart.svg = "" if chart.empty else mark_safe(render_svg(chart))  # noqa: S308
    return charts


# --- time axes ---------------------------------------------------------------


def _x_title(window: Window) -> str:
    what = "Hour starting" if window.unit == "hour" else "Day"
    return f"{what} ({window.zone})"


def _x_ticks(window: Window) -> list[tuple[float, str]]:
    """Hours: every third boundary, "14:00"; days: under each day's middle,
    "Tue 10"."""
    if window.unit == "hour":
        return [
            (i, start.strftime("%H:%M"))
            for i, start in enumerate(window.starts)
            if i % HOUR_TICK_EVERY == 0
        ]
    return [(i + 0.5, f"{s:%a} {s.day}") for i, s in enumerate(window.starts)]


def _slot_titles(window: Window) -> list[str]:
    if window.unit == "hour":
        return [
            f"{s:%Y-%m-%d %H:%M}–{e:%H:%M %Z}"
            for s, e in zip(window.starts, window.ends, strict=True)
        ]
    return [f"{s:%Y-%m-%d %a} ({window.zone})" for s in window.starts]


def _nothing(window: Window, what: str) -> str:
    return f"No {what} in the {window.label.lower()}."


def _table(chart: Chart, first: str, titles: list[str], series: list[Series]):
    chart.table_head = [first, *(s.label for s in series)]
    chart.table_rows = [
        [title, *("–" if s.values[i] is None else f"{s.values[i]:g}" for s in series)]
        for i, title in enumerate(titles)
    ]


def _bars_per_bucket(chart: Chart, window: Window, series, *, y_title: str) -> Chart:
    titles = _slot_titles(window)
    stacked_bars(
        chart, series, slot_titles=titles, x_ticks=_x_ticks(window),
        x_title=_x_title(window), y_title=y_title,
    )  # fmt: skip
    _table(chart, _x_title(window), titles, series)
    return chart


# --- the charts -------------------------------------------------------------------


def starts_chart(health: FleetHealth) -> Chart:
    window = health.window
    chart = Chart("starts", "Starts and failures")
    series = [Series(k, START_LABELS[k], v) for k, v in health.starts.items()]
    totals = {k: sum(v) for k, v in health.starts.items()}
    ended = sum(totals.values())
    if not ended:
        chart.empty = _nothing(window, "starts")
        return chart
    share = 100 * totals["failed"] / ended
    chart.note = (
        f"{_counted(ended, 'start')} ended: {totals['ready']:,} ready, {totals['failed']:,} "
        f"failed ({share:.1f}%), {totals['cancelled']:,} stopped while starting."
    )
    return _bars_per_bucket(chart, window, series, y_title="Starts ended")


def duration_chart(health: FleetHealth) -> Chart:
    window = health.window
    chart = Chart("duration", "Time to ready: median and 95th percentile")
    series = [
        Series("p50", "Median (p50)", health.ready_p50),
        Series("p95", "95th percentile (p95)", health.ready_p95),
    ]
    if all(v is None for v in health.ready_p50):
        chart.empty = _nothing(window, "start that became ready")
        return chart
    chart.note = "From the start request to ready, for starts that became ready."
    titles = _slot_titles(window)
    n = len(window.starts)
    lines(
        chart, series, slots=n, positions=[i + 0.5 for i in range(n)],
        point_titles=titles, x_ticks=_x_ticks(window), x_title=_x_title(window),
        y_title="Seconds to ready", unit=" s",
    )  # fmt: skip
    _table(chart, _x_title(window), titles, series)
    return chart


def status_chart(health: FleetHealth) -> Chart:
    window = health.window
    chart = Chart("statuses", "Active workers by status")
    series = [Series(k, STATUS_LABELS[k], v) for k, v in health.statuses.items()]
    if not any(v for s in series for v in s.values):
        chart.empty = _nothing(window, "active workers")
        return chart
    chart.note = "At the start of the window, the end of each bucket, and now."
    titles = [full_time(p) for p in health.points]
    lines(
        chart, series, slots=len(window.starts), positions=_positions(health),
        point_titles=titles, x_ticks=_x_ticks(window), x_title=_x_title(window),
        y_title="Workers",
    )  # fmt: skip
    _table(chart, f"Time ({window.zone})", titles, series)
    return chart


def _positions(health: FleetHealth) -> list[float]:
    """Bucket boundaries 0 … n-1, then now inside the newest bucket."""
    window = health.window
    last = len(window.starts) - 1
    span = (window.stop - window.starts[-1]).total_seconds()
    into = (window.now - window.starts[-1]).total_seconds() / span
    return [*range(last + 1), last + min(max(into, 0), 1)]


def reaper_chart(health: FleetHealth) -> Chart:
    window = health.window
    chart = Chart("reaper", "Reaper actions by reason")
    series = [
        Series(k, REAPER_LABELS[k], v) for k, v in health.reaper.items() if any(v)
    ]
    if not series:
        chart.empty = _nothing(window, "reaper actions")
        return chart
    total = sum(sum(s.values) for s in series)
    chart.note = f"{_counted(total, 'worker')} stopped or cleaned up by automation."
    return _bars_per_bucket(chart, window, series, y_title="Actions")


def gpu_chart(health: FleetHealth) -> Chart:
    chart = Chart("gpu", "GPU units in use vs quota, now")
    if not health.gpu:
        chart.empty = "No project has a GPU quota or GPUs in use."
        return chart
    rows = [
        (g.project or "(no project)", float(g.in_use), float(g.quota))
        for g in health.gpu
    ]
    usage_bars(
        chart, rows, x_title="Effective GPU units (GPU count × SM% / 100)",
        used_label="in use", limit_label="quota",
    )  # fmt: skip
    shown = {r.css.removeprefix("c-") for r in chart.rects}
    chart.legend = [(k, label) for k, label in GPU_LEGEND if k in shown]
    more = (
        f" {health.gpu_more:,} more projects are not shown." if health.gpu_more else ""
    )
    chart.note = f"Allocated workers (starting, ready, busy), fullest first.{more}"
    chart.table_head = ["Project", "In use", "Quota"]
    chart.table_rows = [[name, f"{u:g}", f"{q:g}"] for name, u, q in rows]
    return chart


def _counted(number: int, noun: str) -> str:
    """``1 worker``, ``2,000 workers``."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
