"""/metrics (Prometheus) and /readyz (dependencies reachable)."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from ops.readiness import readiness
from ops.scrape import render

VIEW_PERMISSION = "workers.view_worker"
REFUSED = (
    "Metrics need a bearer token (METRICS_TOKEN) or a staff session with the "
    "“Can view worker” permission."
)


def _bearer_ok(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    scheme, _, offered = header.partition(" ")
    if not expected or scheme.lower() != "bearer" or not offered:
        return False
    return hmac.compare_digest(offered.strip().encode(), expected.encode())


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the scraper may read; else 401 (no credentials) or 403."""
    if _bearer_ok(request):
        return None
    user = request.user
    if user.is_authenticated:
        if user.is_active and user.is_staff and user.has_perm(VIEW_PERMISSION):
            return None
        return HttpResponse(REFUSED, status=403, content_type="text/plain")
    response = HttpResponse(REFUSED, status=401, content_type="text/plain")
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if (refused := _refusal(request)) is not None:
        return refused
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers; 503 naming the ones that do not."""
    checks = readiness()
    failing = sorted(name for name, result in checks.items() if result != "ok")
    body = {
        "status": "ok" if not failing else "unavailable",
        "failing": failing,
        "checks": checks,
    }
    return JsonResponse(body, status=503 if failing else 200)
