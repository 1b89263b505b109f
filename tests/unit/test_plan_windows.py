from datetime import UTC, datetime

import pytest

from workspaces.plan_windows import WindowRuleError, parse_rule, window_state

WEEKDAYS = [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "20:00"}]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_it_is_open_inside_a_weekly_rule_and_says_when_it_closes():
    # Monday 2026-11-23 10:00 UTC = 11:00 in Berlin.
    state = window_state(
        kind="weekly",
        now=at("2026-11-23T10:00"),
        tz_name="Europe/Berlin",
        rules=WEEKDAYS,
    )
    assert state.open
    assert state.closes_at == at("2026-11-23T19:00")


def test_it_is_closed_at_the_weekend_and_says_when_it_opens():
    state = window_state(
        kind="weekly",
        now=at("2026-11-28T12:00"),
        tz_name="Europe/Berlin",
        rules=WEEKDAYS,
    )
    assert not state.open
    assert state.opens_at == at("2026-11-30T07:00")


def test_it_runs_an_overnight_rule_past_midnight():
    rules = [{"days": [4], "start": "22:00", "end": "06:00"}]
    state = window_state(kind="weekly", now=at("2026-11-28T03:00"), rules=rules)
    assert state.open and state.closes_at == at("2026-11-28T06:00")


def test_it_handles_one_off_windows():
    start, end = at("2026-12-01T00:00"), at("2026-12-02T00:00")
    assert window_state(
        kind="one_off", now=at("2026-12-01T05:00"), start=start, end=end
    ).open
    after = window_state(
        kind="one_off", now=at("2026-12-03T00:00"), start=start, end=end
    )
    assert not after.open and after.opens_at is None


def test_no_window_is_always_open():
    assert window_state(kind="none", now=at("2026-01-01T00:00")).open


@pytest.mark.parametrize(
    "rule",
    [
        {"days": [7], "start": "08:00", "end": "09:00"},
        {"days": [], "start": "08:00", "end": "09:00"},
        {"days": [1], "start": "8am", "end": "09:00"},
        "mon-fri",
    ],
)
def test_it_rejects_bad_rules(rule):
    with pytest.raises(WindowRuleError):
        parse_rule(rule)
