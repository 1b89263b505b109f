"""The embedded proxy: ``/w/<workspace-id>/…`` over HTTP and WebSocket.

``WorkspaceProxy`` wraps the platform's ASGI app and takes every scope under
``/w/``. Per request and per socket it reads the session cookie, asks
``proxy.selectors`` (the database, at that moment) where this user may go,
and either streams to the workspace's current worker with the worker's
token added, or hands the request to Django, which renders the friendly
Starting / Stopped / Error / 404 page or the login redirect. Nothing here
runs inside Django's middleware, so the platform's Content-Security-Policy
and cookies never reach a runtime's pages.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings

from proxy import dbpool, frontauth, paths, selectors, upstream
from proxy import headers as hdr
from proxy.owner_route import owner_route
from proxy.selectors import Access, Route
from proxy.sockets import proxy_websocket

log = logging.getLogger(__name__)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A 502 asks for a probe unless the worker was probed this recently.
PROBE_AFTER_SECONDS = 15


class ClientGone(Exception):
    """The client disconnected while its body was being forwarded."""


def _raw_path(scope) -> str:
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw else scope["path"]


def incoming_for(scope, prefix: str) -> hdr.Incoming:
    client = scope.get("client") or ("", 0)
    scheme = {"ws": "http", "wss": "https"}.get(scope["scheme"], scope["scheme"])
    return hdr.Incoming(
        host=hdr.header(scope["headers"], b"host"),
        scheme=scheme,
        client_ip=client[0] or "",
        prefix=prefix,
        platform_cookies=(settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME),
    )


def session_key(scope) -> str:
    from django.http.cookie import parse_cookie

    cookies = parse_cookie(hdr.header(scope["headers"], b"cookie"))
    return cookies.get(settings.SESSION_COOKIE_NAME, "")


async def resolve(scope, workspace_id) -> Route:
    """The route for this scope's session, from the database now: the
    owner's in one query on the event loop, anyone else's through Django's
    auth in a worker thread (not the single sync thread: proxy lookups must
    not queue behind Django views)."""
    key = session_key(scope)
    if not key:
        return Route(Access.LOGIN, workspace_id)
    route = await owner_route(session_key=key, workspace_id=workspace_id)
    if route is not None:
        return route
    lookup = sync_to_async(selectors.route_for_session, thread_sensitive=False)
    return await lookup(session_key=key, workspace_id=workspace_id)


def upstream_host(route: Route) -> str:
    return urlsplit(route.endpoint).netloc


def upstream_url(route: Route, rest: str, query: bytes) -> str:
    base = route.endpoint if route.endpoint.endswith("/") else route.endpoint + "/"
    return base + rest + (f"?{query.decode('latin-1')}" if query else "")


class WorkspaceProxy:
    """ASGI app: ``/w/…`` here, everything else to ``app``; ``pages`` (the
    Django ASGI app) renders whatever is not proxied."""

    def __init__(self, app, pages):
        self.app = app
        self.pages = pages

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "lifespan":
            return await self._lifespan(receive, send)
        if kind == "http" and frontauth.is_auth_path(scope["path"]):
            return await self._front_auth(scope, send)
        if kind not in ("http", "websocket") or not paths.is_proxy_path(scope["path"]):
            return await self.app(scope, receive, send)
        raw = _raw_path(scope)
        try:
            target = paths.parse(raw)
        except paths.PathRefused as exc:
            return await self._refuse(kind, send, 400, str(exc))
        if kind == "websocket":
            return await self._websocket(scope, receive, send, target)
        if target is None:
            return await self._no_target(scope, receive, send, raw)
        route = await resolve(scope, target.workspace_id)
        if route.access is not Access.OPEN:
            return await self.pages(scope, receive, send)
        incoming = incoming_for(scope, target.prefix)
        if scope["method"] in UNSAFE_METHODS and not hdr.same_origin(
            scope["headers"], incoming
        ):
            return await self._refuse(kind, send, 403, "cross-site request refused")
        await forward_http(scope, receive, send, route, target, incoming)

    async def _front_auth(self, scope, send):
        workspace_id = frontauth.workspace_of(scope["path"])
        if workspace_id is None:
            return await send_simple(send, 403, b"", [(b"x-proxy-reason", b"path")])
        incoming = incoming_for(scope, paths.prefix_for(workspace_id))
        reason = frontauth.check_original(scope["headers"], workspace_id, incoming)
        if reason:
            status, headers = 403, [("x-proxy-reason", reason)]
        else:
            route = await resolve(scope, workspace_id)
            status, headers = frontauth.answer(
                route, workspace_id, incoming, scope["headers"]
            )
        encoded = [(k.encode(), v.encode("latin-1")) for k, v in headers]
        await send_simple(send, status, b"", encoded)

    async def _lifespan(self, receive, send):
        """Startup is a no-op (clients open on first use); shutdown closes
        the pooled connections. The platform app has no lifespan of its own
        (Channels' router refuses the scope), so it is answered here."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await upstream.close()
                await dbpool.close()
                return await send({"type": "lifespan.shutdown.complete"})

    async def _no_target(self, scope, receive, send, raw: str):
        workspace_id = paths.needs_slash(raw)
        if workspace_id is None:  # /w/<id>x, /w/junk/: Django's 404 page
            return await self.pages(scope, receive, send)
        query = scope.get("query_string", b"")
        location = paths.prefix_for(workspace_id) + (
            f"?{query.decode('latin-1')}" if query else ""
        )
        await send_simple(send, 302, b"", [(b"location", location.encode())])

    async def _websocket(self, scope, receive, send, target):
        if target is None:
            return await self._refuse("websocket", send, 404, "no such workspace")
        route = await resolve(scope, target.workspace_id)
        incoming = incoming_for(scope, target.prefix)
        if route.access is not Access.OPEN:
            return await self._refuse("websocket", send, 403, route.access.value)
        if not hdr.same_origin(scope["headers"], incoming):
            return await self._refuse("websocket", send, 403, "cross-site socket")
        await proxy_websocket(scope, receive, send, route, target, incoming)

    async def _refuse(self, kind: str, send, status: int, reason: str):
        log.info("proxy refused (%s): %s", status, reason)
        if kind == "websocket":  # closing before accept: HTTP 403 to the client
            return await send({"type": "websocket.close", "code": 1008})
        body = f"{reason}\n".encode()
        await send_simple(send, status, body, [(b"content-type", b"text/plain")])


async def send_simple(send, status: int, body: bytes, headers) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _request_body(scope, receive):
    """The client's body as an async iterator, or None when it has none
    (so a GET is not sent chunked)."""
    length = hdr.header(scope["headers"], b"content-length")
    chunked = "chunked" in hdr.header(scope["headers"], b"transfer-encoding").lower()
    if not chunked and length in ("", "0"):
        return None

    async def body():
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone("client went away mid-upload")
            if message.get("body"):
                yield message["body"]
            if not message.get("more_body"):
                return

    return body()


async def forward_http(scope, receive, send, route, target, incoming) -> None:
    """Stream one request to the runtime and its answer back."""
    request_headers = hdr.upstream_request_headers(
        scope["headers"],
        incoming,
        token=route.token,
        upstream_host=upstream_host(route),
    )
    url = upstream_url(route, target.rest, scope.get("query_string", b""))
    try:
        response = await upstream.send(
            scope["method"], url, request_headers, _request_body(scope, receive)
        )
    except ClientGone:
        return None
    except upstream.UpstreamError as exc:
        return await bad_gateway(send, route, exc)
    try:
        await _stream_back(send, response, route, incoming, scope)
    finally:
        await response.aclose()


async def _stream_back(send, response, route, incoming, scope) -> None:
    headers = hdr.downstream_response_headers(
        response.headers, incoming, _raw_path(scope), upstream_host(route)
    )
    content_type = dict(headers).get(b"content-type", b"")
    scrubber = hdr.TokenScrubber(route.token) if b"text/html" in content_type else None
    if scrubber:  # the body may shrink
        headers = [(k, v) for k, v in headers if k != b"content-length"]
    await send(
        {"type": "http.response.start", "status": response.status, "headers": headers}
    )
    try:
        async for chunk in response.body:
            chunk = scrubber.feed(chunk) if scrubber else chunk
            if chunk:
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": True}
                )
    except upstream.UpstreamError as exc:
        log.info("runtime broke off a response: %s", exc)
    tail = scrubber.flush() if scrubber else b""
    await send({"type": "http.response.body", "body": tail, "more_body": False})


async def bad_gateway(send, route: Route, exc: Exception) -> None:
    """The 502 page, and a probe so the worker's health shows it too."""
    from proxy import views

    log.warning("runtime of worker %s not answering: %s", route.worker_id, exc)
    body = await sync_to_async(views.bad_gateway_page, thread_sensitive=False)(
        route=route
    )
    await send_simple(send, 502, body, [(b"content-type", b"text/html; charset=utf-8")])
    await sync_to_async(probe_soon, thread_sensitive=False)(worker_id=route.worker_id)


def probe_soon(*, worker_id) -> None:
    """Probe the worker now unless it was probed in the last
    ``PROBE_AFTER_SECONDS`` (a burst of 502s makes one probe), so its
    health in the console and on the workspace page says unreachable."""
    from datetime import timedelta

    from django.db.models import Q
    from django.utils import timezone

    from workers.models import Worker
    from workers.services import worker_probe_now

    recent = timezone.now() - timedelta(seconds=PROBE_AFTER_SECONDS)
    worker = Worker.objects.filter(
        Q(health_checked_at__isnull=True) | Q(health_checked_at__lt=recent),
        pk=worker_id,
    ).first()
    if worker is not None:
        worker_probe_now(worker=worker, actor=None)
