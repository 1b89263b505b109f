"""Pages for ``/w/…`` requests the proxy does not forward, and Access
server's confirmation. They decide with ``proxy.selectors.route_for``, the
same rule as the proxy, so the page and the proxy cannot disagree.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from proxy.selectors import (
    ACCESS_PERMISSION,
    OPEN_STATUSES,
    Access,
    Route,
    route_for,
    start_progress,
)
from proxy.services import access_grant_create
from workers.models import Worker

STARTING_REFRESH_SECONDS = 3
STATUS_FOR = {
    Access.NOT_FOUND: 404,
    Access.STARTING: 503,
    Access.OPEN: 503,  # became ready while this page was on its way
    Access.STOPPING: 409,
    Access.STOPPED: 409,
    Access.FAILED: 409,
}


@csrf_exempt  # renders a page, writes nothing, whatever the method
@never_cache
@login_required
def workspace_unavailable(request: HttpRequest, workspace_id, rest: str = ""):
    """Starting (refreshes itself), Stopping, Stopped, Error or 404."""
    route = route_for(
        user=request.user, workspace_id=workspace_id, session=request.session
    )
    waiting = route.access in (Access.STARTING, Access.OPEN)
    context = {
        "route": route,
        "state": "starting" if waiting else route.access.value,
        "progress": start_progress(route.worker_id) if waiting else [],
        "refresh_seconds": STARTING_REFRESH_SECONDS,
    }
    response = render(
        request, "proxy/unavailable.html", context, status=STATUS_FOR[route.access]
    )
    if waiting:
        response["Retry-After"] = str(STARTING_REFRESH_SECONDS)
    return response


def bad_gateway_page(*, route: Route) -> bytes:
    """The 502 page's HTML, rendered outside a request (the proxy's)."""
    html = render_to_string(
        "proxy/unavailable.html", {"route": route, "state": "bad_gateway"}
    )
    return html.encode()


@never_cache
@login_required
def access_server(request: HttpRequest, worker_id) -> HttpResponse:
    """Access server (Admin → Notebook Workers): GET asks for confirmation
    with the reference's warnings; POST grants this admin the worker's IDE
    through the proxy, records the access in the worker's timeline, and
    opens the IDE. Needs staff and ``workers.access_server``."""
    if not (request.user.is_staff and request.user.has_perm(ACCESS_PERMISSION)):
        raise PermissionDenied(
            "Access server needs the “Can open a worker's notebook server” "
            "permission; ask an administrator for it."
        )
    worker = get_object_or_404(
        Worker.objects.select_related("workspace", "owner"), pk=worker_id
    )
    running = worker.status in OPEN_STATUSES and worker.workspace is not None
    if request.method == "POST" and running:
        access_grant_create(
            worker=worker,
            user=request.user,
            session=request.session,
            address=request.META.get("REMOTE_ADDR", ""),
        )
        return redirect(worker.workspace.open_url)
    context = {"worker": worker, "running": running}
    return render(
        request, "proxy/access_server.html", context, status=200 if running else 409
    )
