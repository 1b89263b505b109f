"""How the API knows who calls: a personal API token in the Authorization
header, else the browser session with its CSRF token.

Token requests carry no cookie, so they need no CSRF check; session
requests are CSRF-checked, because a browser attaches the cookie to any
site's request. Tokens are never logged, and a token in a query string is
refused: URLs end up in access logs, proxies and browser history.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer
from ninja.security.session import SessionAuth
from ninja.utils import check_csrf

from accounts.services import api_token_authenticate

QUERY_TOKEN_PARAMS = ("token", "access_token", "api_token", "api_key")


class TokenRefused(HttpError):
    """401 with a reason; the API adds ``WWW-Authenticate: Bearer``."""

    def __init__(self, message: str):
        super().__init__(401, message)


class ApiTokenAuth(HttpBearer):
    """``Authorization: Bearer nf_…``. A request without that header goes on
    to the next method (the session); a bearer token that is wrong, expired
    or revoked is refused outright, never retried as a session."""

    def __call__(self, request: HttpRequest):
        if any(name in request.GET for name in QUERY_TOKEN_PARAMS):
            raise TokenRefused(
                "API tokens in the URL are refused (URLs are logged); send the "
                "token in the header: Authorization: Bearer <token>."
            )
        # Not HttpBearer.__call__: in DEBUG it logs the header's value.
        scheme, _, token = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme:
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str):
        user = api_token_authenticate(raw=token)
        if user is None:
            raise TokenRefused(
                "The API token is invalid, expired or revoked; create a new one "
                "on the API tokens page (/account/tokens/)."
            )
        return user


class CsrfSessionAuth(SessionAuth):
    """ninja's ``django_auth`` with ``csrf=True``, checking CSRF only for a
    logged-in session (an anonymous caller gets 401, not a CSRF 403) and
    saying what to send."""

    def __init__(self) -> None:
        super().__init__(csrf=True)

    def __call__(self, request: HttpRequest):
        if not request.user.is_authenticated:
            return None
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise HttpError(
                403,
                "CSRF check failed: a browser session must send the X-CSRFToken "
                "header; scripts use Authorization: Bearer <token> instead.",
            )
        return request.user
