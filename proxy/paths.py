"""Which workspace a ``/w/…`` path addresses, and whether it may be passed on.

Pure functions over the raw request path (bytes, percent-encoded as the
client sent it). The prefix is matched exactly (``/w/<id>x`` is not
``/w/<id>``) and nothing that could climb out of the prefix passes, in any
encoding: a runtime's own router may decode and normalise what we did not.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

_PREFIX = re.compile(
    r"^/w/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(/.*)?$"
)
# Decoded, these would let a path segment act as a separator or a climb.
_FORBIDDEN_DECODED = ("/", "\\", "\x00")
_DOT_SEGMENTS = (".", "..")


class PathRefused(ValueError):
    """A ``/w/<id>/`` path that tries to leave its prefix; answer 400."""


@dataclass(frozen=True)
class ProxyPath:
    workspace_id: uuid.UUID
    rest: str  # after the prefix, still percent-encoded; "" for the root

    @property
    def prefix(self) -> str:
        return prefix_for(self.workspace_id)


def prefix_for(workspace_id) -> str:
    return f"/w/{workspace_id}/"


def is_proxy_path(path: str) -> bool:
    """Cheap test for the ASGI router: anything under ``/w/`` is ours."""
    return path.startswith("/w/")


def parse(raw_path: str) -> ProxyPath | None:
    """The workspace and the rest of ``raw_path``; None when this is not a
    workspace path at all (``/w/<id>x``, ``/w/not-a-uuid/``, bare ``/w/<id>``:
    the caller answers 404 or adds the slash). Raises ``PathRefused`` for
    traversal or encoded separators anywhere after the prefix."""
    match = _PREFIX.match(raw_path)
    if not match or match.group(2) is None:
        return None
    rest = match.group(2)[1:]
    check_rest(rest)
    return ProxyPath(uuid.UUID(match.group(1)), rest)


def needs_slash(raw_path: str) -> uuid.UUID | None:
    """``/w/<id>`` exactly: the workspace to redirect to ``/w/<id>/``."""
    match = _PREFIX.match(raw_path)
    if match and match.group(2) is None:
        return uuid.UUID(match.group(1))
    return None


def check_rest(rest: str) -> None:
    if "\\" in rest or "\x00" in rest:
        raise PathRefused("backslash or NUL in the path")
    for segment in rest.split("/"):
        decoded = unquote(segment)
        if decoded in _DOT_SEGMENTS or any(c in decoded for c in _FORBIDDEN_DECODED):
            raise PathRefused("path traversal or an encoded separator")
