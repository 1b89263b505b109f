from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from workspaces.selectors import (
    worker_idle_warning,
    workspace_list_for,
    workspace_state,
)


@login_required
def workspace_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    rows = []
    for workspace in workspace_list_for(user=request.user):
        state, worker = workspace_state(workspace)
        rows.append((workspace, state, worker, worker_idle_warning(worker, now=now)))
    idle_warnings = [(ws, stop_at) for ws, _, _, stop_at in rows if stop_at]
    return render(
        request, "workspaces/list.html", {"rows": rows, "idle_warnings": idle_warnings}
    )
