"""Admin → Notebook Workers. Thin: selectors read, services write, one
template (``workers/console.html``) whose named partials serve htmx."""

from uuid import UUID

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from console import actions, runtime
from console.selectors import (
    console_page,
    resource_class_usage,
    worker_detail,
    worker_row,
)

TEMPLATE = "console/console.html"


@staff_member_required
@require_GET
def console(request: HttpRequest) -> HttpResponse:
    """The page, or the part of it an htmx request targets.

    Bad filter input answers 400 with the page and the message next to the
    field; the rows are not shown rather than shown for other filters.
    """
    page = console_page(user=request.user, data=request.GET)
    if page.is_valid and page.filterset.form.cleaned_data.get("runtime"):
        runtime.attach_live_health(page.rows)
    context = {
        "page": page,
        "classes": resource_class_usage(),
        "refresh_seconds": settings.NOTEBOOK_WORKERS_REFRESH_SECONDS,
        "next_path": request.get_full_path(),
    }
    status = 200 if page.is_valid else 400
    return render(request, _console_template(request), context, status=status)


def _console_template(request: HttpRequest) -> str:
    if not request.htmx or request.htmx.history_restore_request:
        return TEMPLATE
    if request.htmx.target == "results":
        return f"{TEMPLATE}#results"
    return f"{TEMPLATE}#console_body"


@staff_member_required
@require_GET
def row(request: HttpRequest, worker_id: UUID) -> HttpResponse:
    worker = worker_row(user=request.user, worker_id=worker_id)
    if worker is None:
        raise Http404("No such worker.")
    return render(request, f"{TEMPLATE}#row", {"worker": worker})


@staff_member_required
@require_GET
def detail(request: HttpRequest, worker_id: UUID) -> HttpResponse:
    """The expanded panel; without htmx, a page of its own."""
    info = worker_detail(user=request.user, worker_id=worker_id)
    if info is None:
        raise Http404("No such worker.")
    context = {"info": info, "backend_view": runtime.backend_view(info.worker)}
    if request.htmx:
        return render(request, f"{TEMPLATE}#detail", context)
    return render(request, TEMPLATE, {**context, "standalone_detail": True})


@staff_member_required
@require_POST
def action(request: HttpRequest, worker_id: UUID, name: str) -> HttpResponse:
    """Run one admin action and answer with the updated row.

    Without htmx (a plain form post) it redirects back to the console.
    """
    worker = worker_row(user=request.user, worker_id=worker_id)
    if worker is None or name not in actions.ACTIONS:
        raise Http404("No such worker or action.")
    outcome = actions.run(name, worker=worker, actor=request.user)
    if not request.htmx:
        return redirect(_safe_next(request))
    fresh = worker_row(user=request.user, worker_id=worker_id) or worker
    context = {"worker": fresh, "outcome": outcome}
    return render(request, f"{TEMPLATE}#row", context, status=outcome.http_status)


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return target
    return reverse("console:console")
