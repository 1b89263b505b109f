"""What crosses the proxy in each direction: pure header rewriting.

Towards the runtime nothing of the platform passes (its session and CSRF
cookies, the client's ``Authorization``); the worker's token is added here
and nowhere else. Back from the runtime, cookies stay inside the
workspace's prefix and redirects stay on this site inside the prefix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

# RFC 9110 §7.6.1 plus the ones servers still send; never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Set here from what the proxy itself knows; a client's values are dropped.
_OWN_REQUEST_HEADERS = frozenset(
    {
        "authorization",
        "cookie",
        "host",
        "origin",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-real-ip",
    }
)
# The websocket library writes these itself.
WEBSOCKET_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)


@dataclass(frozen=True)
class Incoming:
    """What the proxy knows about the client's request."""

    host: str  # the Host header as the client sent it
    scheme: str  # http or https (ws/wss are mapped)
    client_ip: str
    prefix: str  # /w/<workspace-id>/
    platform_cookies: tuple[str, ...]  # e.g. ("sessionid", "csrftoken")


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str:
    """The first value of ``name`` (lowercase) in ASGI headers, or ""."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return ""


def filter_cookies(value: str, drop: tuple[str, ...]) -> str:
    """A ``Cookie`` header without the cookies named in ``drop``."""
    kept = []
    for pair in value.split(";"):
        name = pair.split("=", 1)[0].strip()
        if name and name not in drop:
            kept.append(pair.strip())
    return "; ".join(kept)


def upstream_request_headers(
    headers: Iterable[tuple[bytes, bytes]],
    incoming: Incoming,
    *,
    token: str,
    upstream_host: str,
    websocket: bool = False,
) -> list[tuple[str, str]]:
    """Client headers as the runtime should see them: hop-by-hop, platform
    credentials and client-supplied forwarding headers dropped; the worker's
    token and our own ``X-Forwarded-*`` added.

    ``Host`` is the runtime's own (Jupyter on loopback refuses other hosts)
    and ``Origin`` is dropped: the proxy checked it against the client's
    host already (``same_origin``), which the runtime cannot do once the
    host changed. Websocket libraries write ``Host`` themselves."""
    out: list[tuple[str, str]] = []
    cookies: list[str] = []
    skip = (
        HOP_BY_HOP
        | _OWN_REQUEST_HEADERS
        | (WEBSOCKET_HANDSHAKE if websocket else set())
    )
    for raw_key, raw_value in headers:
        key = raw_key.decode("latin-1").lower()
        if key == "cookie":
            cookies.append(raw_value.decode("latin-1"))
        elif key not in skip:
            out.append((key, raw_value.decode("latin-1")))
    cookie = filter_cookies("; ".join(cookies), incoming.platform_cookies)
    if cookie:
        out.append(("cookie", cookie))
    if not websocket:
        out.append(("host", upstream_host))
    out += [
        ("authorization", f"token {token}"),
        ("x-forwarded-for", incoming.client_ip),
        ("x-forwarded-proto", incoming.scheme),
        ("x-forwarded-host", incoming.host),
        ("x-forwarded-prefix", incoming.prefix.rstrip("/")),
    ]
    return out


def rewrite_set_cookie(value: str, incoming: Incoming) -> str | None:
    """Keep a runtime's cookie inside its prefix: no Path → the prefix; a
    Path outside the prefix, a Domain, or a platform cookie's name → dropped
    (None)."""
    name, _, rest = value.partition("=")
    if name.strip() in incoming.platform_cookies:
        return None
    parts = [p.strip() for p in value.split(";")]
    attributes = [p.split("=", 1)[0].strip().lower() for p in parts[1:]]
    if "domain" in attributes:
        return None
    if "path" not in attributes:
        return f"{value.rstrip().rstrip(';')}; Path={incoming.prefix}"
    path = parts[1 + attributes.index("path")].split("=", 1)[1].strip()
    inside = path == incoming.prefix.rstrip("/") or path.startswith(incoming.prefix)
    return value if inside else None


def rewrite_location(
    value: str, incoming: Incoming, request_path: str, upstream_host: str
) -> str:
    """A redirect that stays on this site, inside the prefix: targets on
    this site or the runtime's own address become paths; anything else
    goes to the prefix."""
    base = f"{incoming.scheme}://{incoming.host}{request_path}"
    target = urlsplit(urljoin(base, value))
    same_site = target.scheme in ("http", "https") and target.netloc in (
        incoming.host,
        upstream_host,
    )
    path = target.path or "/"
    if not same_site or not (
        path.startswith(incoming.prefix) or path == incoming.prefix.rstrip("/")
    ):
        return incoming.prefix
    return path + (f"?{target.query}" if target.query else "")


def downstream_response_headers(
    headers: Iterable[tuple[str, str]],
    incoming: Incoming,
    request_path: str,
    upstream_host: str,
) -> list[tuple[bytes, bytes]]:
    """Runtime response headers for the client (ASGI form)."""
    out: list[tuple[bytes, bytes]] = []
    for key, value in headers:
        key = key.lower()
        if key in HOP_BY_HOP:
            continue
        if key == "set-cookie":
            value = rewrite_set_cookie(value, incoming)
            if value is None:
                continue
        elif key == "location":
            value = rewrite_location(value, incoming, request_path, upstream_host)
        out.append((key.encode("latin-1"), value.encode("latin-1")))
    return out


def same_origin(headers: Iterable[tuple[bytes, bytes]], incoming: Incoming) -> bool:
    """False for a cross-site request: an ``Origin`` naming another host, or
    ``Sec-Fetch-Site: cross-site``. The runtime skips its own XSRF check
    for token-authenticated requests, and every proxied request is, so the
    proxy checks instead (websockets and unsafe methods)."""
    headers = list(headers)
    if header(headers, b"sec-fetch-site") == "cross-site":
        return False
    origin = header(headers, b"origin")
    if not origin or origin == "null":
        return not origin
    return urlsplit(origin).netloc == incoming.host


class TokenScrubber:
    """Removes the worker's token from a streamed body (JupyterLab writes
    its server token into the page config of every HTML page). Holds back
    ``len(token) - 1`` bytes so a token split across chunks is caught."""

    def __init__(self, token: str):
        self.token = token.encode()
        self.tail = b""

    def feed(self, chunk: bytes) -> bytes:
        data = (self.tail + chunk).replace(self.token, b"")
        keep = len(self.token) - 1
        if len(data) <= keep:
            self.tail = data
            return b""
        self.tail = data[len(data) - keep :] if keep else b""
        return data[: len(data) - keep] if keep else data

    def flush(self) -> bytes:
        tail, self.tail = self.tail, b""
        return tail
