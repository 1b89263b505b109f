"""The ``auth_request`` endpoint for a front proxy: ``/w-auth/<id>/``.

nginx asks it before every ``/w/<id>/…`` request and websocket handshake
(deploy/nginx/notebook-fleet.conf). It is answered by the ASGI proxy itself,
outside Django's middleware, with the same lookup as the embedded proxy: the
two ways in cannot disagree, and neither queues behind Django's views.

Answers: 200 with ``X-Upstream`` (host:port), ``X-Upstream-Token`` and
``X-Upstream-Cookie`` (the client's cookies without the platform's) for
nginx to copy with ``auth_request_set``; 401 (log in) or 403 (anything
else, ``X-Proxy-Reason`` says why). nginx treats any other status as its
own error, so there is no 404: nginx hands refusals to the app, which
renders the login redirect or the friendly page.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

from proxy import headers as hdr
from proxy import paths
from proxy.selectors import Access, Route

_AUTH_PATH = re.compile(
    r"^/w-auth/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/$"
)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_auth_path(path: str) -> bool:
    return path.startswith("/w-auth/")


def workspace_of(path: str) -> uuid.UUID | None:
    match = _AUTH_PATH.match(path)
    return uuid.UUID(match.group(1)) if match else None


def check_original(headers, workspace_id: uuid.UUID, incoming: hdr.Incoming) -> str:
    """Why the original request (``X-Original-URI`` / ``-Method`` /
    ``-Upgrade`` from nginx) may not pass, or "": it must be under this
    workspace's prefix, without traversal, and same-site when it writes or
    opens a socket."""
    uri = hdr.header(headers, b"x-original-uri").split("?", 1)[0]
    try:
        target = paths.parse(uri)
    except paths.PathRefused as exc:
        return str(exc)
    if target is None or target.workspace_id != workspace_id:
        return "not this workspace's path"
    method = hdr.header(headers, b"x-original-method").upper() or "GET"
    socket = hdr.header(headers, b"x-original-upgrade").lower() == "websocket"
    if (method in WRITE_METHODS or socket) and not hdr.same_origin(headers, incoming):
        return "cross-site request"
    return ""


def answer(route: Route, workspace_id, incoming: hdr.Incoming, headers):
    """(status, response headers) for a resolved route."""
    if route.access is Access.LOGIN:
        return 401, [("x-proxy-reason", "login")]
    if route.access is not Access.OPEN:
        return 403, [("x-proxy-reason", route.access.value)]
    endpoint = urlsplit(route.endpoint)
    if endpoint.path.rstrip("/") + "/" != paths.prefix_for(workspace_id):
        return 403, [("x-proxy-reason", "runtime serves another base path")]
    cookies = hdr.filter_cookies(
        hdr.header(headers, b"cookie"), incoming.platform_cookies
    )
    return 200, [
        ("x-upstream", endpoint.netloc),
        ("x-upstream-token", route.token),
        ("x-upstream-cookie", cookies),
        ("cache-control", "no-store"),
    ]
