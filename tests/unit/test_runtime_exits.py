"""How backends read a stopped runtime: pure mappings, no engine or API."""

from __future__ import annotations

import pytest

from workers.backends.base import Phase, describe_exit
from workers.backends.docker import stopped_observation
from workers.backends.kubernetes_status import listed_phase


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0, "exit code 0"),
        (1, "exit code 1"),
        (137, "exit code 137 (SIGKILL)"),
        (143, "exit code 143 (SIGTERM)"),
        (None, "exit code unknown"),
    ],
)
def test_it_describes_exit_codes(code, text):
    assert describe_exit(code) == text


def test_it_reads_a_container_that_exited_with_zero_as_failed():
    """What a container that had been running reports after the engine was
    killed and restarted: a notebook server never ends by itself while its
    worker should run, so this is no success."""
    state = {
        "Status": "exited",
        "ExitCode": 0,
        "Error": "",
        "OOMKilled": False,
        "FinishedAt": "2026-01-05T10:00:00Z",
    }
    observation = stopped_observation(state)
    assert observation.phase == Phase.FAILED
    assert "exit code 0" in observation.message
    assert "stopped from outside" in observation.message


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (
            {"ExitCode": 137, "OOMKilled": True},
            "exit code 137 (SIGKILL) (out of memory)",
        ),
        ({"ExitCode": 255, "Error": "shim died"}, "engine error: shim died"),
        ({"ExitCode": 1}, "exit code 1"),
    ],
)
def test_it_reads_every_stopped_container_as_failed(state, words):
    observation = stopped_observation({"Status": "exited", **state})
    assert observation.phase == Phase.FAILED
    assert words in observation.message


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Running"}, (Phase.RUNNING, "", None)),
        ({}, (Phase.PENDING, "", None)),
        ({"phase": "Unknown"}, (Phase.UNKNOWN, "", None)),
        (
            {
                "phase": "Failed",
                "containerStatuses": [
                    {"state": {"terminated": {"exitCode": 137}}},
                ],
            },
            (Phase.FAILED, "pod failed, exit code 137 (SIGKILL)", 137),
        ),
        (
            {"phase": "Succeeded"},
            (Phase.SUCCEEDED, "pod succeeded, exit code unknown", None),
        ),
    ],
)
def test_it_reads_a_listed_pods_phase_and_exit_code(status, expected):
    assert listed_phase({"status": status}) == expected
