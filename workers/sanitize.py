"""Redact secrets from text before it is stored or shown.

Error detail comes from backends, gateways and tracebacks; any of them may echo
a token, a password, an Authorization header or a URL with credentials.
"""

import re

REDACTED = "[REDACTED]"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # scheme://user:password@host -> scheme://[REDACTED]@host
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@"),
        rf"\1{REDACTED}@",
    ),
    # Authorization: Bearer xyz / Basic xyz / token xyz
    (
        re.compile(
            r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(bearer|basic|token)\s+[^\s\"',;]+"
        ),
        rf"\1\2 {REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    # ?token=..., &access_token=..., password: ..., "api_key": "..."
    (
        re.compile(
            r"(?i)([\"']?\b[a-z0-9_-]*(?:token|password|passwd|pwd|secret|api[_-]?key|"
            r"apikey|credential|private[_-]?key|session[_-]?id)[a-z0-9_-]*[\"']?\s*[:=]\s*[\"']?)"
            r"[^\s\"'&,;}]+"
        ),
        rf"\1{REDACTED}",
    ),
    # Well-known token shapes even without a key name.
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,})\b"), REDACTED),
    (re.compile(r"\b(xox[baprs]-[A-Za-z0-9-]{10,})\b"), REDACTED),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), REDACTED),
    (
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"),
        REDACTED,
    ),
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
            re.S,
        ),
        REDACTED,
    ),
]

MAX_DETAIL_CHARS = 4000


def sanitize(text: str | None, *, extra_secrets: tuple[str, ...] = ()) -> str:
    """Return ``text`` with secrets replaced by ``[REDACTED]``, size-capped.

    ``extra_secrets`` are exact values known to be secret (the worker's own
    access token), redacted wherever they appear.
    """
    if not text:
        return ""
    out = str(text)
    for secret in extra_secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        out = pattern.sub(replacement, out)
    if len(out) > MAX_DETAIL_CHARS:
        out = out[:MAX_DETAIL_CHARS] + "… (truncated)"
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
    if isinstance(value, list):
        return [sanitize_data(v, extra_secrets=extra_secrets) for v in value]
    if isinstance(value, str):
        return sanitize(value, extra_secrets=extra_secrets)
    return value


_SECRET_KEY = re.compile(
    r"(?i)(token|password|passwd|secret|api[_-]?key|credential|private[_-]?key)"
)
