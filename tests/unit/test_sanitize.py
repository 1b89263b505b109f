"""The sanitizer: a table of formats that must come out redacted, text that
must stay untouched, and hostile input that must not backtrack."""

import logging
import sys

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from workers.sanitize import (
    REDACTED,
    may_hold_secret,
    redact,
    redact_json,
    sanitize,
    sanitize_data,
)

R = REDACTED
# (text, the sanitized text): every format issue 8 lists, and its neighbours.
REDACTED_CASES = [
    # URLs with credentials: empty user, "@" inside the password, no password
    ("redis://:pw@host:6379/0", f"redis://{R}@host:6379/0"),
    (
        "connect redis://:redispassSECRET18@redis:6379/0 failed",
        f"connect redis://{R}@redis:6379/0 failed",
    ),
    ("postgres://user:p@ss@db.local:5432/app", f"postgres://{R}@db.local:5432/app"),
    ("amqp://guest:gu@e@st@mq/vhost", f"amqp://{R}@mq/vhost"),
    ("https://bob:hunter2@git.example.org/r.git", f"https://{R}@git.example.org/r.git"),
    # user:password@host without a scheme
    ("dsn user:p@ss@host:5432", f"dsn {R}@host:5432"),
    ("admin:s3cret@10.0.0.5", f"{R}@10.0.0.5"),
    # CLI flags, space or "=" separated, quoted or not
    ("retry with --password clipwSECRET17", f"retry with --password {R}"),
    ("jupyter lab --token abc123def", f"jupyter lab --token {R}"),
    ("--ServerApp.token=abc123 --port 8888", f"--ServerApp.token={R} --port 8888"),
    ('mysql --password "two words" -h db', f'mysql --password "{R}" -h db'),
    ("run -token s3cr3t now", f"run -token {R} now"),
    ("--db-password hunter2 --verbose", f"--db-password {R} --verbose"),
    ("--api-key AKzz99 --region eu", f"--api-key {R} --region eu"),
    # key value with a space instead of "=" (a config file, an env dump)
    (
        "aws_secret_access_key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        f"aws_secret_access_key {R}",
    ),
    ("AWS_SECRET_ACCESS_KEY wJalr/K7MDENG", f"AWS_SECRET_ACCESS_KEY {R}"),
    ("client_secret 9f8e7d6c5b", f"client_secret {R}"),
    # key=value, key: value, JSON
    ("password=correct-horse-battery", f"password={R}"),
    ('{"api_key": "AKzz-99-qq"}', f'{{"api_key": "{R}"}}'),
    ('{"password": "two words"}', f'{{"password": "{R}"}}'),
    (
        "http://127.0.0.1:8888/api?token=s3cr3t&x=1",
        f"http://127.0.0.1:8888/api?token={R}&x=1",
    ),
    ("db_password: hunter2", f"db_password: {R}"),
    # Authorization headers, plain and inside JSON; API key headers; cookies
    ("Authorization: Bearer abcdef123456789", f"Authorization: Bearer {R}"),
    ('{"Authorization": "Basic dXNlcjpwYXNz"}', f'{{"Authorization": "Basic {R}"}}'),
    (
        "headers={'authorization': 'token 0123456789abcdef'}",
        f"headers={{'authorization': 'token {R}'}}",
    ),
    ("Proxy-Authorization: Digest abc123", f"Proxy-Authorization: Digest {R}"),
    ("Authorization: s3cr3t-raw", f"Authorization: {R}"),
    ("X-Api-Key: 0123456789abcdef", f"X-Api-Key: {R}"),
    ('{"X-Api-Key": "k-123"}', f'{{"X-Api-Key": "{R}"}}'),
    ("X-Auth-Token: abc.def", f"X-Auth-Token: {R}"),
    ("Cookie: sessionid=abc; csrftoken=def", f"Cookie: {R}"),
    # private keys, whole or cut off, and token shapes without a name
    (
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n"
        "-----END RSA PRIVATE KEY-----\nok",
        f"key:\n{R}\nok",
    ),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk", R),
    ("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----", R),
    ("pushed with ghp_abcdefghijklmnopqrstuvwxyz0123", f"pushed with {R}"),
    ("AWS AKIAABCDEFGHIJKLMNOP denied", f"AWS {R} denied"),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJlc2ln",
        f"jwt {R}",
    ),
    ("slack xoxb-1234567890-abcdef", f"slack {R}"),
]
UNTOUCHED = [
    "GET https://example.org/docs/page?x=1#top returned 404",
    "http://127.0.0.1:8888/w/ws1/lab is starting",
    "worker 3f2b8c1e-1d2a-4e5f-9a8b-7c6d5e4f3a2b is ready",
    "Send a password reset link to the user",
    "the access_token expired; sign in again",
    "client_secret missing from the request",
    "Runtime Pending: 0/3 nodes are available: Insufficient nvidia.com/gpu",
    "ssh git@github.com:org/repo.git failed",
    "mail alice@example.org about it",
    "jupyter lab --port 8888 --no-browser --passive",
    "Error: connect ECONNREFUSED 127.0.0.1:6379",
    "Back-off pulling image jupyter/pytorch-notebook:cuda12-2024.10",
    "Basic authentication is not enabled",
    "2026-11-27T10:00:00+00:00 exit code 137 (OOMKilled)",
]


@pytest.mark.parametrize(("text", "expected"), REDACTED_CASES)
def test_it_redacts_each_format(text, expected):
    assert sanitize(text) == expected


@pytest.mark.parametrize("text", UNTOUCHED)
def test_it_leaves_ordinary_text_alone(text):
    assert sanitize(text) == text


@pytest.mark.parametrize("text", [t for t, _ in REDACTED_CASES] + UNTOUCHED)
def test_sanitizing_twice_changes_nothing(text):
    assert sanitize(sanitize(text)) == sanitize(text)


def test_the_table_is_big_enough():
    assert len(REDACTED_CASES) + len(UNTOUCHED) >= 30


# Inputs built to make a backtracking regex go quadratic or worse: long runs
# of the characters the patterns repeat over, and many openings that never
# close. Linear patterns finish these in well under a second; a catastrophic
# one would not finish within the timeout (a hang guard, not a speed check).
HOSTILE = [
    "a." * 50_000,
    "a-" * 50_000,
    "a:" * 50_000,
    "a:a@" * 25_000,
    "a://" * 25_000,
    "x://" + "a@" * 50_000,
    "--a-" * 25_000,
    "--password " * 10_000,
    "password=" * 10_000,
    "aws_secret_access_key " * 5_000,
    "authorization: " * 5_000,
    "-----BEGIN PRIVATE KEY-----" * 4_000,
    'password="' + "a" * 100_000,
    "password" + " " * 100_000,
    "eyJaaaaaaaaa." * 7_000,
    "a:" + "@" * 100_000,
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:12]))
def test_hostile_input_does_not_backtrack(text):
    out = sanitize(text)
    assert len(out) <= 4000 + len("… (truncated)")
    assert sanitize(text + " password=hunter2").count("hunter2") == 0


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET https://bob:hunter2@git.example.org/repo failed", "hunter2"),
        ("Authorization: Bearer abcdef123456789", "abcdef123456789"),
        ("headers={'authorization': 'token 0123456789abcdef'}", "0123456789abcdef"),
        ("http://10.0.0.1:8888/api/status?token=s3cr3tvalue&x=1", "s3cr3tvalue"),
        ("password=correct-horse-battery", "correct-horse-battery"),
        ('{"api_key": "AKzz-99-qq"}', "AKzz-99-qq"),
        (
            "pushed with ghp_abcdefghijklmnopqrstuvwxyz0123",
            "ghp_abcdefghijklmnopqrstuvwxyz0123",
        ),
        ("AWS AKIAABCDEFGHIJKLMNOP denied", "AKIAABCDEFGHIJKLMNOP"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJlc2ln",
            "eyJhbGciOiJIUzI1NiJ9",
        ),
    ],
)
def test_it_redacts_secrets(text, secret):
    out = sanitize(text)
    assert secret not in out
    assert REDACTED in out


def test_it_keeps_the_useful_part_of_the_message():
    out = sanitize("ImagePullBackOff: pull https://u:p@registry.example/img:1 denied")
    assert (
        out
        == f"ImagePullBackOff: pull https://{REDACTED}@registry.example/img:1 denied"
    )


def test_it_redacts_a_known_secret_value_anywhere():
    assert sanitize("started with abcd1234efgh", extra_secrets=("abcd1234efgh",)) == (
        f"started with {REDACTED}"
    )


def test_it_caps_size():
    assert len(sanitize("x" * 10_000)) < 4100


def test_it_walks_json_data_and_blanks_secret_keys():
    data = {
        "gateway": "gw-1",
        "auth_token": "abc",
        "nested": [{"url": "http://a:b@h/"}],
    }
    assert sanitize_data(data) == {
        "gateway": "gw-1",
        "auth_token": REDACTED,
        "nested": [{"url": f"http://{REDACTED}@h/"}],
    }


def test_redact_is_the_display_path_for_text_and_data():
    token = "tok-worker-0123456789"
    assert redact(f"echo {token}", secret=token) == f"echo {R}"
    assert redact({"url": "redis://:pw@h/0", "n": 1}) == {
        "url": f"redis://{R}@h/0",
        "n": 1,
    }
    assert redact(None) == ""
    assert redact_json({"b": token, "a": 1}, secret=token) == (
        f'{{\n  "a": 1,\n  "b": "{R}"\n}}'
    )


def test_json_keys_for_headers_are_blanked():
    assert sanitize_data({"Authorization": "Basic dXNlcg==", "Cookie": "a=b"}) == {
        "Authorization": R,
        "Cookie": R,
    }


def test_a_celery_workers_own_log_handlers_sanitize(capsys):
    """A Celery worker in the plain log format writes through handlers of
    its own; ``config.celery`` gives them the sanitizing filter when Celery
    sets them up (``after_setup_logger``), once."""
    from celery.signals import after_setup_logger

    from config import celery

    logger = logging.getLogger("test.sanitize.celery")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    logger.addHandler(handler)
    try:
        after_setup_logger.send(sender=None, logger=logger, loglevel=20)
        assert len(handler.filters) == 1  # the receiver is connected
        celery._sanitize_worker_logs(logger=logger)
        assert len(handler.filters) == 1  # and adds it once
        logger.warning("task failed: %s", "connect redis://:pw123@r:1/0")
    finally:
        logger.removeHandler(handler)
    assert (
        capsys.readouterr().out == f"[WARNING] task failed: connect redis://{R}@r:1/0\n"
    )


# --- The fast path: text no pattern can match is returned without them ------

FRAGMENTS = [
    *("tok", "en", "pass", "wd", "word", "p", "secret", "key", "api", "_", "-"),
    *("auth", "Authorization", "Cookie", "sess", "ion", "id", "signature"),
    *("Bearer ", "@", ":", "://", "https", "=", " ", '"', "'", "--", "aws"),
    *("A1b2C3d4E5f6G7h8", "AKIA", "ghp_", "github_pat_", "xoxb-", "eyJ", "."),
    *("-----BEGIN", " PRIVATE KEY-----", "-----END", "\n", "credential", "x"),
]


def _every_pattern(text: str) -> str:
    from workers.sanitize import _PATTERNS

    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
@hypothesis_settings(max_examples=400, deadline=None)
def test_the_fast_path_gives_what_every_pattern_gives(text):
    assert sanitize(text, max_chars=None) == _every_pattern(text)


@pytest.mark.parametrize("text", [t for t, _ in REDACTED_CASES])
def test_every_redacted_format_takes_the_full_path(text):
    assert may_hold_secret(text)


def test_an_access_line_takes_the_fast_path_and_a_token_in_it_does_not():
    line = '127.0.0.1:5555 - "GET /w/3f1c2a9e/api/status HTTP/1.1" 200'
    assert not may_hold_secret(line)
    assert may_hold_secret(line.replace("status", "status?token=abc"))


def test_non_ascii_text_always_takes_the_full_path():
    # Under IGNORECASE "ſ" (long s) matches "s": "paſsword" is a password key.
    assert may_hold_secret("paſsword=hunter2")
    assert sanitize("paſsword=hunter2") == f"paſsword={R}"
