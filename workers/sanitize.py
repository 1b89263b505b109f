"""Redact secrets from text before it is stored, logged or shown.

Error detail comes from backends, gateways and tracebacks; any of them may echo
a token, a password, an Authorization header or a URL with credentials.

Every pattern is linear in the length of its input: quantifiers that can
start at many positions are bounded, and repeated groups are unambiguous
(each repetition ends on a character the group cannot otherwise contain), so
a hostile string costs a few passes, never catastrophic backtracking.
"""

import json
import re

REDACTED = "[REDACTED]"
MAX_DETAIL_CHARS = 4000

# Names whose value is a secret, as a key (``password=``), a CLI flag
# (``--password``) or a JSON/dict key.
_SENSITIVE_NAME = (
    r"(?:token|password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?key"
    r"|credentials?|private[_-]?key|session[_-]?id|signature)"
)
_VALUE = r"""(?:"[^"\r\n]{0,1024}"|'[^'\r\n]{0,1024}'|[^\s"'&,;}]{1,1024})"""

_PRIVATE_KEY = re.compile(
    r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"[\s\S]*?(?:-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z)"
)
# scheme://user:password@host; the password may be empty or hold "@", so the
# user info runs to the last "@" before the path.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://)(?:[^\s/@]{0,256}@)+")
# user:password@host without a scheme (a DSN fragment, a git remote).
_BARE_USERINFO = re.compile(
    r"(?<![\w.+:/@-])[\w.+-]{1,64}:(?:[^\s/@]{0,256}@)+(?=[\w\[])"
)
_AUTHORIZATION = re.compile(
    r"(?i)\b((?:proxy-)?authorization[\"']?\s{0,8}[:=]\s{0,8}[\"']?)"
    r"(?:(bearer|basic|token|digest|negotiate|ntlm|aws4-hmac-sha256)\s{1,8})?"
    r"[^\s\"',;]{1,4096}"
)
_COOKIE = re.compile(
    r"(?i)\b((?:set-)?cookie[\"']?\s{0,8}[:=]\s{0,8})[^\r\n\"']{1,4096}"
)
_BEARER = re.compile(r"(?i)\b(bearer)\s{1,8}[A-Za-z0-9._~+/=-]{8,4096}")
# key=value, key: value, "key": "value" (the quotes are kept). The match
# starts at the secret word, not at the key's start: whatever precedes the
# word ("db_", "X-Api-") is kept anyway, and anchoring there keeps a run of
# key-like characters from being rescanned at every position.
_KEY_VALUE = re.compile(
    rf"(?i)({_SENSITIVE_NAME}[a-z0-9_-]{{0,40}}[\"']?\s{{0,8}}[:=]\s{{0,8}})({_VALUE})"
)
# --password value, -token value, --db-password=value (the value must not
# look like the next flag).
_FLAG = re.compile(
    rf"(?i)(?<![\w-])(--?(?:[a-z0-9]{{1,20}}[-_]){{0,4}}"
    rf"(?:{_SENSITIVE_NAME}|pass|auth)(?:[ \t]{{1,8}}|=))(?!-)({_VALUE})"
)
# aws_secret_access_key wJal...: a snake_case secret name, a space, and a
# value with a digit or symbol in it, so prose ("the access_token expired")
# is left alone.
_IDENTIFIER_SPACE = re.compile(
    r"(?i)(?<![\w-])((?:[a-z0-9]{1,20}_){0,5}"
    r"(?:(?:secret|access|private|api|auth|signing|encryption|master)_key"
    r"|(?<=_)(?:token|password|passwd|secret|credentials?))[ \t]{1,8})"
    r"(?=[^\s\"',;]{0,255}[\d+/=])([^\s\"',;]{6,1024})"
)
# Well-known token shapes even without a key name.
_TOKEN_SHAPES = [
    re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,255})\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,255}\b"),
    re.compile(r"\b(xox[baprs]-[A-Za-z0-9-]{10,255})\b"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(
        r"\beyJ[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]{8,4096}\b"
    ),
]
_SECRET_KEY = re.compile(
    r"(?i)(token|password|passwd|secret|api[_-]?key|access[_-]?key|credential"
    r"|private[_-]?key|authorization|cookie|session[_-]?id|signature)"
)


def _keep_quotes(match: re.Match) -> str:
    key, value = match.group(1), match.group(2)
    if len(value) > 1 and value[0] in "\"'" and value[-1] == value[0]:
        return f"{key}{value[0]}{REDACTED}{value[0]}"
    return f"{key}{REDACTED}"


def _authorization(match: re.Match) -> str:
    scheme = match.group(2)
    return (
        f"{match.group(1)}{scheme} {REDACTED}" if scheme else match.group(1) + REDACTED
    )


_PATTERNS: list[tuple[re.Pattern[str], object]] = [
    (_PRIVATE_KEY, REDACTED),
    (_URL_USERINFO, rf"\1{REDACTED}@"),
    (_BARE_USERINFO, f"{REDACTED}@"),
    (_AUTHORIZATION, _authorization),
    (_COOKIE, rf"\1{REDACTED}"),
    (_BEARER, rf"\1 {REDACTED}"),
    (_FLAG, _keep_quotes),
    (_KEY_VALUE, _keep_quotes),
    (_IDENTIFIER_SPACE, _keep_quotes),
    *((shape, REDACTED) for shape in _TOKEN_SHAPES),
]


# Every pattern above needs one of these in the text to match: the first
# set in ASCII text of any case (the patterns ignore case), the second as
# written (the token shapes are case-sensitive). ASCII text without any of
# them is returned as it is: most log lines (an access line went from
# about 150 to 15 microseconds). Not for other text: under IGNORECASE,
# Python's patterns match some non-ASCII letters to ASCII ones.
_TRIGGERS_ANY_CASE = (
    "@",
    "-----begin",
    "auth",
    "cookie",
    "bearer",
    "token",
    "pass",
    "pwd",
    "secret",
    "key",
    "credential",
    "session",
    "signature",
)
_TRIGGERS_AS_WRITTEN = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")
_TRIGGERS_AS_WRITTEN += ("xox", "AKIA", "eyJ")


def may_hold_secret(text: str) -> bool:
    """False only when no pattern can match ``text``."""
    if not text.isascii():
        return True
    lowered = text.lower()
    return any(t in lowered for t in _TRIGGERS_ANY_CASE) or any(
        t in text for t in _TRIGGERS_AS_WRITTEN
    )


def sanitize(
    text: str | None,
    *,
    extra_secrets: tuple[str, ...] = (),
    max_chars: int | None = MAX_DETAIL_CHARS,
) -> str:
    """Return ``text`` with secrets replaced by ``[REDACTED]``, capped at
    ``max_chars`` (None: no cap, for log lines and tracebacks).

    ``extra_secrets`` are exact values known to be secret (the worker's own
    access token), redacted wherever they appear. Idempotent: sanitizing
    sanitized text changes nothing.
    """
    if not text:
        return ""
    out = str(text)
    for secret in extra_secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, REDACTED)
    if may_hold_secret(out):
        for pattern, replacement in _PATTERNS:
            out = pattern.sub(replacement, out)
    if max_chars is not None and len(out) > max_chars:
        out = out[:max_chars] + "… (truncated)"
    return out


def sanitize_data(value, *, extra_secrets: tuple[str, ...] = ()):
    """``sanitize`` applied through JSON-like data; secret-named keys blanked."""
    if isinstance(value, dict):
        return {
            k: REDACTED
            if _SECRET_KEY.search(str(k)) and value[k] not in (None, "")
            else sanitize_data(value[k], extra_secrets=extra_secrets)
            for k in value
        }
    if isinstance(value, list | tuple):
        return [sanitize_data(v, extra_secrets=extra_secrets) for v in value]
    if isinstance(value, str):
        return sanitize(value, extra_secrets=extra_secrets)
    return value


def redact(value, *, secret: str = ""):
    """The one display path: text sanitized, JSON-like data walked, with
    ``secret`` (a worker's own access token) redacted too. The ``redact``
    template filter and the admin both call this, so a row stored before a
    sanitizer fix, or by a path that forgot to sanitize, shows no secret."""
    extra = (secret,) if secret else ()
    if isinstance(value, dict | list | tuple):
        return sanitize_data(value, extra_secrets=extra)
    return sanitize(value, extra_secrets=extra)


def redact_json(value, *, secret: str = "") -> str:
    """``redact`` of JSON-like data, as indented JSON text for display."""
    return json.dumps(
        redact({} if value is None else value, secret=secret),
        indent=2,
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )
