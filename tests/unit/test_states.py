"""The transition table and the user-facing mapping, against literal tables."""

import pytest

from workers import states

EXPECTED = {
    "starting": {"ready", "stopping", "failed"},
    "ready": {"busy", "stopping", "failed"},
    "busy": {"ready", "stopping", "failed"},
    "stopping": {"stopped"},
    "stopped": set(),
    "failed": set(),
}


def test_it_allows_exactly_the_expected_transitions():
    assert {k: set(v) for k, v in states.TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize("from_status", states.STATUSES)
@pytest.mark.parametrize("to_status", states.STATUSES)
def test_it_answers_can_transition_from_the_table(from_status, to_status):
    assert states.can_transition(from_status, to_status) == (
        to_status in EXPECTED[from_status]
    )


def test_it_never_leaves_a_terminal_status():
    for status in states.TERMINAL_STATUSES:
        assert not states.TRANSITIONS[status]


def test_it_ends_a_stop_only_in_stopped():
    assert states.TRANSITIONS[states.STOPPING] == {states.STOPPED}


def test_it_maps_worker_statuses_to_workspace_states():
    assert {s: states.workspace_state(s) for s in (None, *states.STATUSES)} == {
        None: "Stopped",
        "starting": "Starting",
        "ready": "Running",
        "busy": "Running",
        "stopping": "Stopping",
        "stopped": "Stopped",
        "failed": "Error",
    }


def test_it_counts_only_running_workers_against_limits():
    assert {"starting", "ready", "busy"} == states.ALLOCATED_STATUSES
    assert states.ALLOCATED_STATUSES | {"stopping"} == states.ACTIVE_STATUSES
