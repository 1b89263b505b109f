"""``{{ value|redact }}``: the one display filter for anything that may hold a
secret (error detail, event reasons, gateway metadata). It sanitizes again at
display time, whatever was stored, so a row written before a sanitizer fix, or
by a path that forgot to sanitize, still shows no secret."""

from django import template

from workers.sanitize import sanitize, sanitize_data

register = template.Library()


@register.filter
def redact(value, secret: str = ""):
    """Sanitized text; ``secret`` is an exact value to redact too (a worker's
    own access token)."""
    extra = (secret,) if secret else ()
    if isinstance(value, dict | list):
        return sanitize_data(value, extra_secrets=extra)
    return sanitize(value, extra_secrets=extra)
