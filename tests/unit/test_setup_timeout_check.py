"""The system check that keeps the setup step's timeout inside a start's."""

from django.core import checks
from django.test import override_settings


def _errors() -> list[str]:
    return [e.id for e in checks.run_checks(tags=[checks.Tags.compatibility])]


def test_it_accepts_a_setup_timeout_below_the_start_timeout():
    with override_settings(
        NOTEBOOK_RUNTIME_SETUP_TIMEOUT_SECONDS=240,
        NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS=300,
    ):
        assert "notebook_fleet.E001" not in _errors()


def test_it_refuses_a_setup_timeout_not_below_the_start_timeout():
    for setup in (300, 301, 0):
        with override_settings(
            NOTEBOOK_RUNTIME_SETUP_TIMEOUT_SECONDS=setup,
            NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS=300,
        ):
            found = [
                e
                for e in checks.run_checks(tags=[checks.Tags.compatibility])
                if e.id == "notebook_fleet.E001"
            ]
        assert len(found) == 1, setup
        assert f"NOTEBOOK_RUNTIME_SETUP_TIMEOUT_SECONDS is {setup}" in found[0].msg
        assert "below NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS (300)" in found[0].msg
