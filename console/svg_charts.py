"""Server-rendered SVG charts: pure functions from numbers to shapes, and
the shapes to SVG markup (``render_svg``), no Django. Colours come from CSS
classes (``c-<key>``), since the Content-Security-Policy allows no inline
style; the page around a chart is ``console/health.html``, partial
``chart``. The markup is built here rather than by template loops: a
24-hour page has ~350 shapes, which took Django templates ~35 ms.

Coordinates are SVG user units in a fixed ``viewBox`` that CSS scales to
the column width. Values are placed on a domain of bucket slots: a bar
fills slot ``i`` (``i`` to ``i + 1``); a line point sits at any position
in ``0 … n`` (a bucket's middle is ``i + 0.5``, a boundary ``i``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

WIDTH, HEIGHT = 640, 250
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 14, 46  # margins: ticks and axis titles


@dataclass(frozen=True)
class Series:
    key: str  # the CSS class suffix and the data key
    label: str
    values: list[float | None]


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str = ""


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    css: str = ""
    anchor: str = "middle"
    rotate: bool = False  # a vertical axis title


@dataclass(frozen=True)
class Segment:
    x1: float
    y1: float
    x2: float
    y2: float
    css: str = "gridline"


@dataclass(frozen=True)
class Polyline:
    points: str
    css: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    css: str
    title: str = ""


@dataclass
class Chart:
    """One chart's shapes plus what the page says around it."""

    id: str
    title: str
    legend: list[tuple[str, str]] = field(default_factory=list)  # (key, label)
    empty: str = ""  # the empty-state sentence; set when there is nothing
    note: str = ""
    width: int = WIDTH
    height: int = HEIGHT
    rects: list[Rect] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    lines: list[Polyline] = field(default_factory=list)
    dots: list[Dot] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    table_head: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)
    svg: str = ""  # the markup, once rendered


def nice_ticks(top: float, *, integers: bool = False, most: int = 5) -> list[float]:
    """0 up to a round number ≥ ``top`` in steps of 1, 2 or 5 × 10ⁿ, at most
    ``most`` steps (integer steps only when ``integers``)."""
    if top <= 0:
        return [0, 1]
    raw = top / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integers:
        step = max(1, math.ceil(step))
    count = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def tick_text(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Frame:
    """The plot area and the y scale of a chart over ``slots`` buckets."""

    slots: int
    ticks: list[float]
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def x0(self) -> float:
        return LEFT

    @property
    def x1(self) -> float:
        return self.width - RIGHT

    @property
    def y0(self) -> float:  # the bottom (value 0)
        return self.height - BOTTOM

    @property
    def y1(self) -> float:
        return TOP

    def x(self, position: float) -> float:
        return round(self.x0 + (self.x1 - self.x0) * position / self.slots, 2)

    def y(self, value: float) -> float:
        span = self.ticks[-1] or 1
        return round(self.y0 - (self.y0 - self.y1) * value / span, 2)


def _axes(chart: Chart, frame: Frame, *, x_ticks, x_title: str, y_title: str):
    for value in frame.ticks:
        y = frame.y(value)
        chart.segments.append(Segment(frame.x0, y, frame.x1, y, "gridline"))
        chart.texts.append(Text(frame.x0 - 6, y + 4, tick_text(value), "tick", "end"))
    chart.segments.append(Segment(frame.x0, frame.y0, frame.x1, frame.y0, "axis"))
    for position, label in x_ticks:
        x = frame.x(position)
        chart.segments.append(Segment(x, frame.y0, x, frame.y0 + 4, "axis"))
        chart.texts.append(Text(x, frame.y0 + 17, label, "tick"))
    chart.texts.append(
        Text((frame.x0 + frame.x1) / 2, frame.height - 6, x_title, "axis-title")
    )
    middle = (frame.y0 + frame.y1) / 2
    chart.texts.append(Text(14, middle, y_title, "axis-title", rotate=True))


def stacked_bars(
    chart: Chart,
    series: list[Series],
    *,
    slot_titles: list[str],
    x_ticks: list[tuple[float, str]],
    x_title: str,
    y_title: str,
) -> Chart:
    """One bar per slot, the series stacked bottom up in order; each piece
    titled "<slot>: <n> <label>" (the browser shows it on hover)."""
    slots = len(slot_titles)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(slots)]
    frame = Frame(slots, nice_ticks(max(totals, default=0), integers=True))
    _axes(chart, frame, x_ticks=x_ticks, x_title=x_title, y_title=y_title)
    gap = (frame.x(1) - frame.x(0)) * 0.18
    for i in range(slots):
        base = 0.0
        for s in series:
            value = s.values[i] or 0
            if not value:
                continue
            top, bottom = frame.y(base + value), frame.y(base)
            chart.rects.append(
                Rect(
                    frame.x(i) + gap, top, round(frame.x(i + 1) - frame.x(i) - 2 * gap, 2),
                    round(bottom - top, 2), f"c-{s.key}",
                    f"{slot_titles[i]}: {tick_text(value)} {s.label}",
                )
            )  # fmt: skip
            base += value
    chart.legend = [(s.key, s.label) for s in series]
    return chart


def lines(
    chart: Chart,
    series: list[Series],
    *,
    slots: int,
    positions: list[float],
    point_titles: list[str],
    x_ticks: list[tuple[float, str]],
    x_title: str,
    y_title: str,
    unit: str = "",
) -> Chart:
    """One line per series through ``values`` at ``positions``; a None
    value breaks the line (no data there is not zero)."""
    top = max((v for s in series for v in s.values if v is not None), default=0)
    frame = Frame(slots, nice_ticks(top))
    _axes(chart, frame, x_ticks=x_ticks, x_title=x_title, y_title=y_title)
    for s in series:
        run: list[str] = []
        for position, value, title in zip(
            positions, s.values, point_titles, strict=True
        ):
            if value is None:
                _close(chart, run, s.key)
                run = []
                continue
            x, y = frame.x(position), frame.y(value)
            run.append(f"{x},{y}")
            text = f"{title}: {s.label} {tick_text(value)}{unit}"
            chart.dots.append(Dot(x, y, f"c-{s.key}", text))
        _close(chart, run, s.key)
    chart.legend = [(s.key, s.label) for s in series]
    return chart


def _close(chart: Chart, run: list[str], key: str) -> None:
    if len(run) > 1:
        chart.lines.append(Polyline(" ".join(run), f"c-{key}"))


ROW_HEIGHT = 26
BAR_LEFT, BAR_RIGHT = 150, 150  # room for project names and "x of y"


def usage_bars(
    chart: Chart,
    rows: list[tuple[str, float, float]],
    *,
    x_title: str,
    used_label: str,
    limit_label: str,
) -> Chart:
    """One row per (name, used, limit): the limit as a pale bar, the use
    over it (``c-over`` past the limit), and "used of limit" beside it."""
    top = max((max(used, limit) for _, used, limit in rows), default=0)
    ticks = nice_ticks(top, most=4)
    height = TOP + ROW_HEIGHT * len(rows) + BOTTOM
    x0, x1 = BAR_LEFT, WIDTH - BAR_RIGHT
    chart.height = height

    def x(value: float) -> float:
        return round(x0 + (x1 - x0) * value / (ticks[-1] or 1), 2)

    bottom = height - BOTTOM
    for value in ticks:
        chart.segments.append(Segment(x(value), TOP, x(value), bottom, "gridline"))
        chart.texts.append(Text(x(value), bottom + 17, tick_text(value), "tick"))
    chart.segments.append(Segment(x0, bottom, x1, bottom, "axis"))
    chart.texts.append(Text((x0 + x1) / 2, height - 6, x_title, "axis-title"))
    for i, (name, used, limit) in enumerate(rows):
        y = TOP + i * ROW_HEIGHT + 5
        summary = f"{tick_text(used)} of {tick_text(limit)}"
        chart.texts.append(Text(x0 - 8, y + 12, name, "row-label", "end"))
        if limit:
            title = f"{name}: {limit_label} {tick_text(limit)}"
            chart.rects.append(Rect(x0, y, x(limit) - x0, 16, "c-quota", title))
        if used:
            css = "c-over" if used > limit else "c-in_use"
            title = f"{name}: {used_label} {summary}"
            chart.rects.append(Rect(x0, y + 3, x(used) - x0, 10, css, title))
        right = x(max(used, limit))
        chart.texts.append(Text(right + 8, y + 12, summary, "value", "start"))
    return chart


def render_svg(chart: Chart) -> str:
    """The chart's ``<svg>`` element; every text is escaped here. Each bar
    and point carries a ``<title>`` (shown on hover, read by screen
    readers); the drawing is labelled by the chart's heading."""
    parts = [
        f'<svg class="chart" viewBox="0 0 {chart.width} {chart.height}" '
        f'role="img" aria-labelledby="chart-{escape(chart.id)}-title">'
    ]
    parts += [
        f'<line class="{escape(s.css)}" x1="{s.x1}" y1="{s.y1}" x2="{s.x2}" y2="{s.y2}"/>'
        for s in chart.segments
    ]
    parts += [
        f'<rect class="{escape(r.css)}" x="{r.x}" y="{r.y}" width="{r.width}" '
        f'height="{r.height}"><title>{escape(r.title)}</title></rect>'
        for r in chart.rects
    ]
    parts += [
        f'<polyline class="{escape(line.css)}" points="{escape(line.points)}"/>'
        for line in chart.lines
    ]
    parts += [
        f'<circle class="{escape(d.css)}" cx="{d.x}" cy="{d.y}" r="3">'
        f"<title>{escape(d.title)}</title></circle>"
        for d in chart.dots
    ]
    parts += [_text(t) for t in chart.texts]
    parts.append("</svg>")
    return "".join(parts)


def _text(t: Text) -> str:
    turn = f' transform="rotate(-90 {t.x} {t.y})"' if t.rotate else ""
    return (
        f'<text class="{escape(t.css)}" x="{t.x}" y="{t.y}" '
        f'text-anchor="{t.anchor}"{turn}>{escape(t.text)}</text>'
    )
