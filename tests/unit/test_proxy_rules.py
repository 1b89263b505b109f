"""The proxy's pure rules: which paths pass, what crosses in each direction."""

import uuid

import pytest

from proxy import headers as hdr
from proxy import paths

WS = uuid.UUID("6af1e95e-380d-46b0-be74-e24bc6927a51")
PREFIX = f"/w/{WS}/"
INCOMING = hdr.Incoming(
    host="fleet.test",
    scheme="https",
    client_ip="127.0.0.1",
    prefix=PREFIX,
    platform_cookies=("sessionid", "csrftoken"),
)


@pytest.mark.parametrize(
    "raw, rest",
    [
        (f"{PREFIX}lab", "lab"),
        (PREFIX, ""),
        (f"{PREFIX}files/a%20b.txt", "files/a%20b.txt"),
    ],
)
def test_it_parses_workspace_paths(raw, rest):
    assert paths.parse(raw) == paths.ProxyPath(WS, rest)


@pytest.mark.parametrize(
    "raw", [f"/w/{WS}x/lab", f"/w/{WS}", "/w/not-a-uuid/lab", f"/w/{str(WS).upper()}/"]
)
def test_it_does_not_take_other_paths(raw):
    assert paths.parse(raw) is None


@pytest.mark.parametrize(
    "rest",
    ["../../admin", "a/../../b", "%2e%2e/x", "%2E%2e/x", ".", "a%2fb", "a%2Fb",
     "a%5cb", "a\\b", "a%00b", "./x"],
)  # fmt: skip
def test_it_refuses_traversal_in_every_encoding(rest):
    with pytest.raises(paths.PathRefused):
        paths.parse(PREFIX + rest)


def test_platform_credentials_never_cross_and_the_token_does():
    headers = [
        (b"cookie", b"sessionid=s; _xsrf=x; csrftoken=c"),
        (b"authorization", b"Bearer platform"),
        (b"x-forwarded-for", b"127.0.0.9"),
        (b"origin", b"https://fleet.test"),
        (b"connection", b"keep-alive"),
        (b"accept", b"*/*"),
    ]
    out = hdr.upstream_request_headers(
        headers, INCOMING, token="t0k", upstream_host="127.0.0.1:9"
    )
    assert out == [
        ("accept", "*/*"),
        ("cookie", "_xsrf=x"),
        ("host", "127.0.0.1:9"),
        ("authorization", "token t0k"),
        ("x-forwarded-for", "127.0.0.1"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "fleet.test"),
        ("x-forwarded-prefix", PREFIX.rstrip("/")),
    ]


@pytest.mark.parametrize(
    "cookie, expected",
    [
        ("_xsrf=1", f"_xsrf=1; Path={PREFIX}"),
        (f"a=1; Path={PREFIX}lab", f"a=1; Path={PREFIX}lab"),
        (f"a=1; path={PREFIX.rstrip('/')}", f"a=1; path={PREFIX.rstrip('/')}"),
        ("a=1; Path=/", None),
        (f"a=1; Path=/w/{uuid.uuid4()}/", None),
        (f"a=1; Path={PREFIX.rstrip('/')}x", None),
        (f"a=1; Domain=fleet.test; Path={PREFIX}", None),
        (f"sessionid=x; Path={PREFIX}", None),
    ],
)
def test_runtime_cookies_stay_in_the_prefix(cookie, expected):
    assert hdr.rewrite_set_cookie(cookie, INCOMING) == expected


def test_the_scrubber_finds_a_token_split_across_chunks():
    scrubber = hdr.TokenScrubber("secret-token")
    out = b"".join(scrubber.feed(c) for c in (b"a secret-", b"tok", b"en b", b"!"))
    assert out + scrubber.flush() == b"a  b!"


@pytest.mark.parametrize(
    "headers, same",
    [
        ([], True),
        ([(b"origin", b"https://fleet.test")], True),
        ([(b"origin", b"https://evil.test")], False),
        ([(b"origin", b"null")], False),
        ([(b"sec-fetch-site", b"cross-site")], False),
    ],
)
def test_cross_site_requests_are_recognised(headers, same):
    assert hdr.same_origin(headers, INCOMING) is same
