"""``{{ value|redact }}``: the one display filter for anything that may hold a
secret (error detail, event reasons, gateway metadata). It sanitizes again at
display time, whatever was stored, so a row written before a sanitizer fix, or
by a path that forgot to sanitize, still shows no secret.

``{{ data|redact_json:worker.access_token }}`` is the same for JSON-like data
shown as indented JSON (gateway metadata, runtime ref, launch spec)."""

from django import template

from workers import sanitize

register = template.Library()


@register.filter
def redact(value, secret: str = ""):
    """Sanitized text or data; ``secret`` is an exact value to redact too (a
    worker's own access token)."""
    return sanitize.redact(value, secret=secret or "")


@register.filter
def redact_json(value, secret: str = "") -> str:
    """Sanitized JSON-like data as indented JSON text."""
    return sanitize.redact_json(value, secret=secret or "")
