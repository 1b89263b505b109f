from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from workspaces.selectors import workspace_list_for, workspace_state


@login_required
def workspace_list(request: HttpRequest) -> HttpResponse:
    rows = [(ws, *workspace_state(ws)) for ws in workspace_list_for(user=request.user)]
    return render(request, "workspaces/list.html", {"rows": rows})
