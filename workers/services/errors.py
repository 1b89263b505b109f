"""Errors services raise to callers, and how numbers read in them."""

from decimal import Decimal


class LaunchRefused(Exception):
    """A launch hit a limit. ``limit`` names it (e.g. ``project_gpu_quota``),
    ``message`` says what was hit and what to do."""

    def __init__(self, limit: str, message: str):
        super().__init__(message)
        self.limit = limit
        self.message = message


def gpu_text(units: Decimal | int | None) -> str:
    """2 -> "2.0", 1.25 -> "1.25": how GPU units read in messages."""
    value = Decimal(units or 0).quantize(Decimal("0.01")).normalize()
    text = f"{value:f}"
    return text if "." in text else f"{text}.0"
