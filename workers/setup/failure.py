"""What a failed setup step says, and what it never says: its secrets.

Standard library only: shipped next to ``workspace_setup.py``.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://)[^\s/@]{1,256}@")


class SetupFailed(Exception):
    def __init__(self, reason: str, output: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.output = output


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[REDACTED]")
    return _USERINFO.sub(r"\1[REDACTED]@", text)
