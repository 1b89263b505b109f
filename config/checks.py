"""System checks of settings that only make sense together."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.compatibility)
def setup_timeout_within_start_timeout(app_configs=None, **kwargs):
    """The setup step (checkout and dependencies) runs inside a start, so its
    timeout must leave the IDE time to come up before the start timeout."""
    setup = settings.NOTEBOOK_RUNTIME_SETUP_TIMEOUT_SECONDS
    start = settings.NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS
    if 0 < setup < start:
        return []
    return [
        checks.Error(
            f"NOTEBOOK_RUNTIME_SETUP_TIMEOUT_SECONDS is {setup}; it must be above 0 "
            f"and below NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS ({start}): the "
            "setup step counts inside the start, and the IDE still has to start "
            "after it.",
            hint="Lower the setup timeout or raise the start timeout "
            "(the defaults are 240 and 300 seconds).",
            id="notebook_fleet.E001",
        )
    ]
