"""Writes for accounts: personal API tokens.

A token reads ``nf_<key_id>_<secret>``: ``key_id`` finds the row, and the
SHA-256 of the whole token is compared in constant time. The token is
returned once by ``api_token_create`` and never stored, logged or shown
again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import ApiToken, User

TOKEN_PREFIX = "nf"  # noqa: S105 - the public part of every token
# last_used_at is a hint, not an audit log: writing it on every request of a
# busy script would turn reads into writes, so it moves at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(
    *, user: User, name: str, expires_in_days: int
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the token itself,
    which the caller shows once. ``expires_in_days`` is capped by
    ``NOTEBOOK_API_TOKEN_MAX_DAYS`` (the form says so first)."""
    days = max(1, min(expires_in_days, settings.NOTEBOOK_API_TOKEN_MAX_DAYS))
    key_id = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user,
        name=name,
        key_id=key_id,
        token_hash=_digest(raw),
        expires_at=timezone.now() + timedelta(days=days),
    )
    return token, raw


def api_token_revoke(*, user: User, token_id: int) -> ApiToken:
    """Revoke one of ``user``'s tokens (idempotent); another user's id is a
    404, as if it did not exist."""
    token = get_object_or_404(ApiToken, pk=token_id, user=user)
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    token.refresh_from_db()
    return token


def api_token_authenticate(*, raw: str) -> User | None:
    """The active user a token belongs to, or None when the token is
    malformed, unknown, wrong, expired or revoked (callers answer 401 alike,
    so nothing tells which). Touches ``last_used_at`` at most once a minute."""
    prefix, _, rest = raw.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or len(key_id) != 8 or not secret:
        return None
    token = ApiToken.objects.select_related("user").filter(key_id=key_id).first()
    if token is None or not hmac.compare_digest(token.token_hash, _digest(raw)):
        return None
    now = timezone.now()
    if not token.is_usable(now) or not token.user.is_active:
        return None
    _touch(token, now)
    return token.user


def _touch(token: ApiToken, now) -> None:
    stale = now - LAST_USED_RESOLUTION
    if token.last_used_at is not None and token.last_used_at > stale:
        return
    # Conditional: concurrent requests of one script write once.
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
    ).update(last_used_at=now)
