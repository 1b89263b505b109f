"""What every log line of the current request or task carries: its request
id, and the user and worker it acts for when known. Context variables, so
each request (an asyncio task or a thread) and each Celery task has its own;
``sync_to_async`` copies them into the thread that runs sync code."""

from __future__ import annotations

import contextlib
import re
import uuid
from contextvars import ContextVar

FIELDS = ("request_id", "user_id", "worker_id")
_vars: dict[str, ContextVar[str]] = {
    name: ContextVar(f"ops_{name}", default="") for name in FIELDS
}
# A request id a client may choose: short, printable, no separators that
# could forge a log field or a header.
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id(offered: str | None = None) -> str:
    """``offered`` (an X-Request-ID from the client or proxy) when it looks
    like an id, else a fresh one."""
    if offered and _CLIENT_ID.match(offered):
        return offered
    return uuid.uuid4().hex


def bind(**values) -> dict:
    """Set context fields (None/"" values are skipped); returns the previous
    values for ``unbind``. Not ContextVar tokens: under ASGI a middleware's
    request and view phases may run in different contexts, where a token
    cannot be reset."""
    previous = {}
    for name, value in values.items():
        if name in _vars and value not in (None, ""):
            previous[name] = _vars[name].get()
            _vars[name].set(str(value))
    return previous


def unbind(previous: dict) -> None:
    for name, value in previous.items():
        _vars[name].set(value)


@contextlib.contextmanager
def bound(**values):
    tokens = bind(**values)
    try:
        yield
    finally:
        unbind(tokens)


def get(name: str) -> str:
    return _vars[name].get()


def current() -> dict[str, str]:
    return {name: var.get() for name, var in _vars.items()}
