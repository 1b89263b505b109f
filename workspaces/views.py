"""The user's workspace pages: list, launch form, detail, actions.

Thin: ``page_selectors`` read (and decide who sees what: anything else is
404), services write. One template per page; htmx requests get a named
partial of the same template, plain posts a redirect, so everything works
without JavaScript.
"""

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from workspaces import actions
from workspaces.forms import WorkspaceLaunchForm
from workspaces.page_selectors import (
    banners,
    can_manage,
    workspace_detail_for,
    workspace_row,
    workspace_rows,
)
from workspaces.services import workspaces_delete

LIST = "workspaces/list.html"
NEW = "workspaces/new.html"
DETAIL = "workspaces/detail.html"


def _list_context(request: HttpRequest, **extra) -> dict:
    now = timezone.now()
    rows = workspace_rows(user=request.user, now=now)
    return {
        "rows": rows,
        "banners": banners(rows, now=now),
        "manager": can_manage(request.user),
        "now": now,
        **extra,
    }


@login_required
@require_GET
def workspace_list(request: HttpRequest) -> HttpResponse:
    return render(request, LIST, _list_context(request))


@login_required
@require_POST
def bulk_delete(request: HttpRequest) -> HttpResponse:
    """Delete the ticked workspaces, each authorized on its own."""
    ids = request.POST.getlist("workspace")[:500]
    result = workspaces_delete(workspace_ids=ids, actor=request.user)
    context = _list_context(request, bulk=result)
    template = f"{LIST}#list_body" if request.htmx else LIST
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def workspace_new(request: HttpRequest) -> HttpResponse:
    """The launch form; a valid post creates, starts and redirects to the
    detail page. Refusals answer 400 with the form as typed. "Add another
    volume" (``add_mount``) redraws it with one more blank mount row."""
    if request.method == "GET":
        return render(request, NEW, {"form": WorkspaceLaunchForm(user=request.user)})
    form = WorkspaceLaunchForm(request.POST, user=request.user)
    if "add_mount" in request.POST:
        form.blank_mounts = 2
        return render(request, NEW, {"form": form, "errors_for": "-"})
    worker = form.save() if form.is_valid() else None
    if worker is None:
        return render(request, NEW, {"form": form}, status=400)
    messages.success(request, f"Workspace {worker.workspace.name} is starting.")
    return redirect("workspaces:detail", workspace_id=worker.workspace_id)


@login_required
@require_POST
def workspace_validate(request: HttpRequest) -> HttpResponse:
    """htmx: check the form as typed and redraw the field that changed (or
    the whole form when other fields depend on it). Never creates anything."""
    form = WorkspaceLaunchForm(request.POST, user=request.user)
    form.fields["mounts"].skip_incomplete = True
    form.is_valid()
    changed = request.GET.get("field", "")
    if changed == "mounts":
        form.blank_mounts = 2 if "add_mount" in request.GET else 1
        return render(request, f"{NEW}#mounts", {"form": form})
    if changed not in form.fields or changed in form.REDRAW:
        context = {"form": form, "errors_for": changed or "-"}
        return render(request, f"{NEW}#form_body", context)
    return render(request, f"{NEW}#field", {"form": form, "field": form[changed]})


@login_required
@require_GET
def workspace_detail(request: HttpRequest, workspace_id: UUID) -> HttpResponse:
    detail = workspace_detail_for(user=request.user, workspace_id=workspace_id)
    if detail is None:
        raise Http404("No such workspace.")
    return render(request, DETAIL, {"detail": detail, "row": detail.row})


@login_required
@require_POST
def workspace_action(
    request: HttpRequest, workspace_id: UUID, name: str
) -> HttpResponse:
    """Start, stop, delete or switch queue; htmx gets the updated row (or
    the detail panel), a plain post a redirect with a message."""
    row = workspace_row(user=request.user, workspace_id=workspace_id)
    if row is None or name not in actions.ACTIONS:
        raise Http404("No such workspace or action.")
    outcome = actions.run(name, row=row, actor=request.user)
    on_detail = request.POST.get("from") == "detail"
    if not request.htmx:
        messages.add_message(request, outcome.level, outcome.message)
        if on_detail and not outcome.deleted:
            return redirect("workspaces:detail", workspace_id=workspace_id)
        return redirect("workspaces:list")
    if outcome.deleted:
        if on_detail:
            messages.success(request, outcome.message)
            return HttpResponseClientRedirect(reverse("workspaces:list"))
        # Removes the row by its id, not the element htmx aimed at: a live
        # update may have replaced the row while this request was in flight,
        # and emptying the replaced element would leave the new one shown.
        row_id = f"workspace-{workspace_id}"
        return HttpResponse(f'<tr id="{row_id}" hx-swap-oob="delete"></tr>')
    return _action_answer(request, workspace_id, outcome, on_detail)


def _action_answer(request, workspace_id, outcome, on_detail) -> HttpResponse:
    status = 200 if outcome.ok else 409
    if on_detail:
        detail = workspace_detail_for(user=request.user, workspace_id=workspace_id)
        context = {"detail": detail, "row": detail.row, "outcome": outcome}
        return render(request, f"{DETAIL}#detail_body", context, status=status)
    row = workspace_row(user=request.user, workspace_id=workspace_id)
    row.outcome, row.outcome_ok = outcome.message, outcome.ok
    context = {"row": row, "manager": can_manage(request.user)}
    return render(request, f"{LIST}#row", context, status=status)
