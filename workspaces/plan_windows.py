"""Plan schedule windows, as pure functions of a time.

A window is either weekly rules ({"days": [0..6], "start": "HH:MM", "end":
"HH:MM"}, Monday = 0, in the plan's time zone; an end at or before the start
runs past midnight) or a one-off start/end. No window means always open.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class WindowState:
    open: bool
    closes_at: datetime | None = None
    opens_at: datetime | None = None


class WindowRuleError(ValueError):
    pass


def parse_rule(rule: dict) -> tuple[frozenset[int], time, time]:
    if not isinstance(rule, dict):
        raise WindowRuleError(f"A weekly rule must be an object, got {rule!r}.")
    days = rule.get("days")
    if (
        not isinstance(days, list)
        or not days
        or not all(isinstance(d, int) and 0 <= d <= 6 for d in days)
    ):
        raise WindowRuleError(
            f"'days' must be a non-empty list of 0 (Mon) .. 6 (Sun): {days!r}."
        )
    try:
        start = time.fromisoformat(rule["start"])
        end = time.fromisoformat(rule["end"])
    except (KeyError, TypeError, ValueError) as exc:
        raise WindowRuleError(f"'start' and 'end' must be HH:MM: {rule!r}.") from exc
    return frozenset(days), start, end


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise WindowRuleError(f"Unknown time zone {name!r}.") from exc


def _weekly_intervals(rules: list[dict], tz: ZoneInfo, around: datetime):
    """Concrete [start, end) intervals from a week before to a week after."""
    local = around.astimezone(tz)
    base = local.date()
    for rule in rules:
        days, start, end = parse_rule(rule)
        for offset in range(-8, 9):
            day = base + timedelta(days=offset)
            if day.weekday() not in days:
                continue
            begin = datetime.combine(day, start, tzinfo=tz)
            finish = datetime.combine(day, end, tzinfo=tz)
            if finish <= begin:
                finish += timedelta(days=1)
            yield begin, finish


def window_state(
    *,
    kind: str,
    now: datetime,
    tz_name: str = "UTC",
    rules: list[dict] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> WindowState:
    if kind == "none":
        return WindowState(open=True)
    if kind == "one_off":
        if start and end and start <= now < end:
            return WindowState(open=True, closes_at=end)
        return WindowState(
            open=False, opens_at=start if start and now < start else None
        )
    tz = zone(tz_name)
    intervals = sorted(_weekly_intervals(rules or [], tz, now))
    current = [(b, e) for b, e in intervals if b <= now < e]
    if current:
        # Adjacent or overlapping intervals extend the open window.
        closes = max(e for _, e in current)
        for b, e in intervals:
            if b <= closes < e:
                closes = e
        return WindowState(open=True, closes_at=closes)
    upcoming = [b for b, _ in intervals if b > now]
    return WindowState(open=False, opens_at=min(upcoming) if upcoming else None)
