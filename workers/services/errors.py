"""Errors services raise to callers, and how numbers read in them."""

from decimal import Decimal

from workers import states


class LaunchRefused(Exception):
    """A launch hit a limit. ``limit`` names it (e.g. ``project_gpu_quota``),
    ``message`` says what was hit and what to do."""

    def __init__(self, limit: str, message: str):
        super().__init__(message)
        self.limit = limit
        self.message = message

    @property
    def code(self) -> str:
        """``limit`` under the name API callers map to a status code."""
        return self.limit


def start_refused_while_active(name: str, status: str, limit: str) -> LaunchRefused:
    """Why ``name`` cannot start while it has a worker in ``status``: a
    stopping one is released already and needs its stop to finish (or to
    be retried when it failed), not another stop."""
    if status == states.STOPPING:
        return LaunchRefused(limit, f"{name} is stopping; wait, or retry the stop.")
    return LaunchRefused(limit, f"{name} is already running; stop it first.")


def gpu_text(units: Decimal | int | None) -> str:
    """2 -> "2.0", 1.25 -> "1.25": how GPU units read in messages."""
    value = Decimal(units or 0).quantize(Decimal("0.01")).normalize()
    text = f"{value:f}"
    return text if "." in text else f"{text}.0"
