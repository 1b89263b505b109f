"""Admin → Notebook Workers. Thin: selectors read, services write, one
template (``workers/console.html``) whose named partials serve htmx."""

from collections.abc import Callable
from functools import wraps
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from config.compression import gzip_page
from console import actions, runtime
from console.forms import HealthRangeForm
from console.health_charts import health_charts
from console.health_selectors import RANGES, fleet_health
from console.selectors import (
    can_manage_workers,
    can_view_console,
    console_page,
    worker_detail,
    worker_row,
)
from workers.sanitize import sanitize

TEMPLATE = "console/console.html"
HEALTH_TEMPLATE = "console/health.html"


def _requires(allowed: Callable[[object], bool], refusal: str):
    """Anonymous users go to the admin login; a signed-in user ``allowed``
    refuses gets 403 with ``refusal`` (a login redirect would loop)."""

    def decorator(view):
        @wraps(view)
        def checked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                login = reverse("admin:login")
                return redirect_to_login(request.get_full_path(), login)
            if not allowed(request.user):
                raise PermissionDenied(refusal)
            return view(request, *args, **kwargs)

        return checked

    return decorator


viewer_required = _requires(
    can_view_console,
    "Notebook Workers needs staff status and the “Can view worker” "
    "permission; ask an administrator for them.",
)
manager_required = _requires(
    can_manage_workers,
    "Acting on workers needs the “Can stop, retry, probe and start workers "
    "again” permission; ask an administrator for it.",
)


@gzip_page
@viewer_required
@require_GET
def console(request: HttpRequest) -> HttpResponse:
    """The page, or the part of it an htmx request targets.

    Compressed when the client accepts it (~76 KB to ~10 KB for 100 rows;
    ``config.compression``, a faster level than Django's).
    The page carries the CSRF token; Django masks it per response and
    ``config.compression`` pads the gzip output with random bytes as Django
    does, both against BREACH. Only this
    view: a site-wide GZipMiddleware would also buffer-compress the /w/
    proxy's streamed responses.

    Bad filter input answers 400 with the page and the message next to the
    field; the rows are not shown rather than shown for other filters.
    """
    page = console_page(user=request.user, data=request.GET)
    if page.is_valid and page.filterset.form.cleaned_data.get("runtime"):
        runtime.attach_live_health(page.rows)
    context = {
        "page": page,
        "classes": page.classes,
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


@viewer_required
@require_GET
def row(request: HttpRequest, worker_id: UUID) -> HttpResponse:
    worker = worker_row(user=request.user, worker_id=worker_id)
    if worker is None:
        raise Http404("No such worker.")
    return render(request, f"{TEMPLATE}#row", {"worker": worker})


@viewer_required
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


@manager_required
@require_POST
def action(request: HttpRequest, worker_id: UUID, name: str) -> HttpResponse:
    """Run one admin action; answer with the updated row and, out of band,
    the outcome in ``#action-outcome``, outside the row: the socket renders
    the same row moments later, and must not erase the message.

    Without htmx (a plain form post) the outcome becomes a flash message and
    it redirects back to the console.
    """
    worker = worker_row(user=request.user, worker_id=worker_id)
    if worker is None or name not in actions.ACTIONS:
        raise Http404("No such worker or action.")
    outcome = actions.run(name, worker=worker, actor=request.user)
    if not request.htmx:
        level = messages.SUCCESS if outcome.ok else messages.ERROR
        text = f"Worker {worker.short_id}: {outcome.message}"
        messages.add_message(request, level, sanitize(text))
        return redirect(_safe_next(request))
    fresh = worker_row(user=request.user, worker_id=worker_id) or worker
    context = {"worker": fresh, "outcome": outcome}
    template = f"{TEMPLATE}#action_result"
    return render(request, template, context, status=outcome.http_status)


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return target
    return reverse("console:console")


@viewer_required
@require_GET
def health(request: HttpRequest) -> HttpResponse:
    """Fleet health: charts over the last 24 hours or 7 days. An unknown
    ``range`` answers 400 with the message and links to the known ones."""
    form = HealthRangeForm(request.GET)
    context = {"form": form, "ranges": RANGES}
    if not form.is_valid():
        return render(request, HEALTH_TEMPLATE, context, status=400)
    data = fleet_health(user=request.user, key=form.cleaned_data["range"])
    context.update(health=data, charts=health_charts(data))
    template = HEALTH_TEMPLATE
    if request.htmx and not request.htmx.history_restore_request:
        template = f"{HEALTH_TEMPLATE}#health_body"
    return render(request, template, context)


@viewer_required
@require_GET
def health_data(request: HttpRequest) -> HttpResponse:
    """The charts' numbers as JSON (``FleetHealth.as_json``)."""
    form = HealthRangeForm(request.GET)
    if not form.is_valid():
        errors = {name: list(messages) for name, messages in form.errors.items()}
        return JsonResponse({"errors": errors}, status=400)
    data = fleet_health(user=request.user, key=form.cleaned_data["range"])
    return JsonResponse(data.as_json())
