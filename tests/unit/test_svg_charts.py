"""The SVG chart builder: scales, stacking, gaps in lines, usage rows, and
the fleet-health charts' words and time labels, without a database."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from console import svg_charts as svg
from console.health_charts import health_charts
from console.health_selectors import FleetHealth, GpuUse, health_window, percentile


@pytest.mark.parametrize(
    ("top", "integers", "expected"),
    [
        (0, True, [0, 1]),
        (1, True, [0, 1]),
        (7, True, [0, 2, 4, 6, 8]),
        (87, False, [0, 20, 40, 60, 80, 100]),
        (0.3, False, [0, 0.1, 0.2, 0.3]),
        (3, True, [0, 1, 2, 3]),
        (1000, True, [0, 200, 400, 600, 800, 1000]),
    ],
)
def test_ticks_are_round_and_reach_the_top(top, integers, expected):
    assert svg.nice_ticks(top, integers=integers) == expected


def test_tick_text_drops_needless_decimals():
    assert [svg.tick_text(v) for v in (0, 2.0, 0.25, 1500, 1.5)] == [
        "0", "2", "0.25", "1,500", "1.5",
    ]  # fmt: skip


def bars(values_a, values_b):
    chart = svg.Chart("t", "Test")
    series = [
        svg.Series("ready", "Ready", values_a),
        svg.Series("failed", "Failed", values_b),
    ]
    titles = [f"slot {i}" for i in range(len(values_a))]
    return svg.stacked_bars(
        chart, series, slot_titles=titles, x_ticks=[(0, "a"), (2, "c")],
        x_title="Hour", y_title="Starts",
    )  # fmt: skip


def test_stacked_bars_are_proportional_and_stack_in_order():
    chart = bars([3, 0, 1], [1, 0, 0])  # totals 4, 0, 1 → axis 0…4
    assert [(r.css, r.title) for r in chart.rects] == [
        ("c-ready", "slot 0: 3 Ready"),
        ("c-failed", "slot 0: 1 Failed"),
        ("c-ready", "slot 2: 1 Ready"),
    ]
    frame = svg.Frame(3, [0, 1, 2, 3, 4])
    ready, failed, small = chart.rects
    assert ready.y + ready.height == pytest.approx(frame.y0)  # on the axis
    assert failed.y + failed.height == pytest.approx(ready.y)  # on top of it
    assert failed.y == pytest.approx(frame.y1)  # the tallest reaches the top
    assert ready.height == pytest.approx(3 * small.height)
    assert small.x > ready.x and ready.width == small.width
    assert chart.legend == [("ready", "Ready"), ("failed", "Failed")]


def test_axes_carry_ticks_and_titles_in_words():
    chart = bars([3, 0, 1], [1, 0, 0])
    texts = [t.text for t in chart.texts]
    assert texts[:5] == ["0", "1", "2", "3", "4"]  # y ticks
    assert "a" in texts and "c" in texts and "Hour" in texts
    title = next(t for t in chart.texts if t.text == "Starts")
    assert title.rotate and title.css == "axis-title"


def test_the_markup_is_well_formed_svg_with_every_text_escaped():
    chart = bars([3, 0, 1], [1, 0, 0])
    chart.rects.append(svg.Rect(1, 2, 3, 4, "c-x", 'a <b> & "c"'))
    chart.texts.append(svg.Text(5, 6, "<script>", "tick"))
    markup = svg.render_svg(chart)
    assert "<b>" not in markup and "<script>" not in markup
    root = ET.fromstring(markup)  # noqa: S314 - our own markup; raises unless well formed
    assert root.tag == "svg"  # inline in HTML: no namespace needed
    assert root.get("viewBox") == f"0 0 {svg.WIDTH} {svg.HEIGHT}"
    assert root.get("aria-labelledby") == "chart-t-title"
    rects = root.findall("rect")
    assert len(rects) == 4 and rects[-1].find("title").text == 'a <b> & "c"'
    assert [t.text for t in root.findall("text")][-1] == "<script>"
    rotated = [t for t in root.findall("text") if t.get("transform")]
    assert [t.text for t in rotated] == ["Starts"]
    assert "style" not in markup  # the CSP allows no inline style


def test_a_line_breaks_where_there_is_no_value():
    chart = svg.Chart("d", "Duration")
    series = [svg.Series("p50", "Median", [10, 20, None, 30, None, 5])]
    svg.lines(
        chart, series, slots=6, positions=[i + 0.5 for i in range(6)],
        point_titles=[str(i) for i in range(6)], x_ticks=[], x_title="Hour",
        y_title="Seconds", unit=" s",
    )  # fmt: skip
    assert len(chart.lines) == 1  # 10-20; 30 and 5 stand alone
    assert len(chart.lines[0].points.split()) == 2
    assert [d.title for d in chart.dots] == [
        "0: Median 10 s", "1: Median 20 s", "3: Median 30 s", "5: Median 5 s",
    ]  # fmt: skip
    first, second = chart.dots[:2]
    assert second.y < first.y  # larger values are higher up


def test_usage_rows_show_the_limit_the_use_and_going_over():
    chart = svg.Chart("gpu", "GPUs")
    rows = [("ml-team", 3.0, 2.0), ("vision", 0.0, 4.0), ("cv", 1.0, 4.0)]
    svg.usage_bars(
        chart, rows, x_title="GPU units", used_label="in use", limit_label="quota"
    )
    assert chart.height == svg.TOP + 3 * svg.ROW_HEIGHT + svg.BOTTOM
    kinds = [r.css for r in chart.rects]
    assert kinds == ["c-quota", "c-over", "c-quota", "c-quota", "c-in_use"]
    quota, over = chart.rects[:2]
    assert over.width == pytest.approx(quota.width * 1.5)
    labels = [t.text for t in chart.texts]
    assert {"ml-team", "3 of 2", "0 of 4", "1 of 4"} <= set(labels)


def test_percentile_interpolates_like_postgres_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([90.0, 30.0], 0.5) == 60.0
    assert percentile([30.0, 90.0], 0.95) == pytest.approx(87.0)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


def _health(**numbers) -> FleetHealth:
    window = health_window(key="24h", now=datetime(2026, 3, 10, 14, 30, tzinfo=UTC))
    empty = [0] * 24
    health = FleetHealth(
        window=window,
        starts={"ready": list(empty), "failed": list(empty), "cancelled": list(empty)},
        ready_p50=[None] * 24,
        ready_p95=[None] * 24,
        points=[*window.starts, window.now],
        statuses={s: [0] * 25 for s in ("starting", "ready", "busy", "stopping")},
        reaper={"idle": list(empty)},
    )
    for name, value in numbers.items():
        setattr(health, name, value)
    return health


def test_every_chart_has_an_empty_state_in_words():
    charts = health_charts(_health())
    assert [c.empty for c in charts] == [
        "No starts in the last 24 hours.",
        "No start that became ready in the last 24 hours.",
        "No active workers in the last 24 hours.",
        "No reaper actions in the last 24 hours.",
        "No project has a GPU quota or GPUs in use.",
    ]
    assert all(not c.rects and not c.lines for c in charts)


def test_health_charts_label_hours_in_one_format_with_the_zone():
    starts = {"ready": [0] * 23 + [2], "failed": [1] + [0] * 23, "cancelled": [0] * 24}
    gpu = [GpuUse("ml-team", Decimal("1.5"), Decimal("2"))]
    chart, *_, gpu_chart = health_charts(_health(starts=starts, gpu=gpu))
    texts = [t.text for t in chart.texts]
    assert "Hour starting (UTC)" in texts and "Starts ended" in texts
    assert "15:00" in texts and "12:00" in texts  # every third hour
    assert chart.rects[0].title == "2026-03-09 15:00–16:00 UTC: 1 Failed"
    assert chart.rects[-1].title == "2026-03-10 14:00–15:00 UTC: 2 Ready"
    assert chart.note == (
        "3 starts ended: 2 ready, 1 failed (33.3%), 0 stopped while starting."
    )
    assert chart.table_rows[-1] == ["2026-03-10 14:00–15:00 UTC", "2", "0", "0"]
    assert gpu_chart.table_rows == [["ml-team", "1.5", "2"]]


def test_notes_count_one_thing_in_the_singular():
    starts = {"ready": [0] * 23 + [1], "failed": [0] * 24, "cancelled": [0] * 24}
    reaper = {"idle": [0] * 23 + [1]}
    charts = health_charts(_health(starts=starts, reaper=reaper))
    assert charts[0].note.startswith("1 start ended: 1 ready")
    assert charts[3].note == "1 worker stopped or cleaned up by automation."
