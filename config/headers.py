"""Response headers every page gets: the Content-Security-Policy with this
host's websocket origin, and ``Cache-Control: no-store`` for signed-in users.

The policy itself is ``CONTENT_SECURITY_POLICY`` in settings (django-csp);
``Permissions-Policy`` comes from django-permissions-policy.
"""

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import add_never_cache_headers
from django.utils.deprecation import MiddlewareMixin


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, plus ``ws(s)://<this host>`` in connect-src.

    CSP level 3 counts a same-host websocket as 'self', but older browsers
    (Safari before 15.4) do not, and the console's live updates need it.
    """

    def get_policy_parts(
        self,
        request: HttpRequest,
        response: HttpResponseBase,
        report_only: bool = False,
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        origin = websocket_origin(request)
        if origin and not report_only:
            update = dict(parts.update or {})
            update["connect-src"] = [*update.get("connect-src", ()), origin]
            parts.update = update
        return parts


def websocket_origin(request: HttpRequest) -> str | None:
    """The websocket origin of the host the page was served from, if it can
    be written as a CSP source (an IPv6 literal cannot)."""
    try:
        host = request.get_host()
    except DisallowedHost:
        return None
    if not host or host.startswith("["):
        return None
    return f"{'wss' if request.is_secure() else 'ws'}://{host}"


class NoStoreForSignedInMiddleware(MiddlewareMixin):
    """``Cache-Control: no-store`` on every response to a signed-in user.

    Such pages carry private data (workers, workspaces, tokens, the admin),
    which neither a shared proxy nor the browser's back/forward cache may
    keep. A view that chose its own caching keeps it; anonymous responses
    and static files (served by WhiteNoise before this) are left alone.
    """

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        user = getattr(request, "user", None)
        if user is None or response.has_header("Cache-Control"):
            return response
        if user.is_authenticated:
            add_never_cache_headers(response)
        return response
