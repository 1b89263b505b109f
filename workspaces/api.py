"""The workspace API, ``/api/v1/``: django-ninja routes over the same
services and rules as the pages (the launch form validates a create).

Auth: a personal API token (``Authorization: Bearer``) or the browser
session with CSRF. Every route reads the caller's own workspaces only:
another user's id is a 404, exactly like an id that does not exist.
"""

from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Query, Router
from ninja.errors import AuthenticationError, ValidationError
from ninja.openapi.docs import Swagger
from ninja.pagination import paginate
from ninja.responses import Status

from accounts.api_auth import ApiTokenAuth, CsrfSessionAuth, TokenRefused
from workers.services import LaunchRefused
from workspaces import api_selectors as selectors
from workspaces.api_pagination import KeysetCursorPagination
from workspaces.api_schemas import (
    EventOut,
    InvalidInput,
    Message,
    Refusal,
    WorkspaceFilters,
    WorkspaceIn,
    WorkspaceOut,
)
from workspaces.forms import WorkspaceLaunchForm
from workspaces.services import workspace_delete, workspace_start, workspace_stop

api = NinjaAPI(
    title="Notebook Fleet API",
    version="1",
    description=(
        "Your workspaces: list, create and start, stop, start again, delete, "
        "and their event timeline. Authenticate with a personal API token "
        "(`Authorization: Bearer <token>`, created on /account/tokens/) or a "
        "logged-in browser session with its CSRF token."
    ),
    urls_namespace="api",
    auth=[ApiTokenAuth(), CsrfSessionAuth()],
    # Swagger UI from our own static files (ninja ships them): no CDN, which
    # neither an offline machine nor our Content-Security-Policy allows.
    docs=Swagger(settings={"persistAuthorization": False}),
)
ide = Router(tags=["ide"])

AUTH_ERRORS = {401: Message, 403: Message}
ONE_WORKSPACE = {**AUTH_ERRORS, 404: Message, 422: InvalidInput}
# Refusals counted over running workers at save time: the request was valid,
# the fleet's state refused it (409). Any other refusal is bad input (422).
CONFLICTS = frozenset(
    {
        "max_workers_per_user",
        "project_gpu_quota",
        "queue_deserved_gpu_limit",
        "gpu_capacity",
        "workspace_active",
        "name_taken",
    }
)


@ide.get(
    "",
    response={200: list[WorkspaceOut], 400: Message, **AUTH_ERRORS, 422: InvalidInput},
    summary="List your workspaces",
)
@paginate(KeysetCursorPagination, ordering=("-created_at", "-id"), page_size=50)
def list_workspaces(request: HttpRequest, filters: Query[WorkspaceFilters]):
    """Newest first, one page at a time: follow `next` (an opaque cursor)."""
    return selectors.workspaces_owned_by(
        user=request.auth,
        state=filters.status.value if filters.status else None,
        project_id=filters.project,
    )


@ide.post(
    "",
    response={
        201: WorkspaceOut,
        400: Message,
        **AUTH_ERRORS,
        409: Refusal,
        422: InvalidInput,
    },
    summary="Create and start a workspace",
)
def create_workspace(request: HttpRequest, payload: WorkspaceIn):
    """Validated by the launch form (same rules and messages as the page);
    422 lists messages per field, 409 names the limit that refused."""
    form = WorkspaceLaunchForm(_form_data(request, payload), user=request.auth)
    worker = form.save() if form.is_valid() else None
    if worker is None and form.refusal is not None and form.refusal.code in CONFLICTS:
        body = {"detail": form.refusal.message, "limit": form.refusal.code}
        return Status(409, {**body, "errors": _messages(form)})
    if worker is None:
        body = {"detail": "The workspace was not created; see errors per field."}
        return Status(422, {**body, "errors": _messages(form)})
    return Status(201, _reread(request, worker.workspace_id))


def _form_data(request: HttpRequest, payload: WorkspaceIn) -> dict:
    """The payload as the form reads it, with the form's own defaults (the
    personal project, the default queue and class) for what was left out."""
    data = payload.model_dump(mode="json")
    missing = [n for n in ("project", "queue", "resource_class") if data[n] is None]
    if missing:
        defaults = WorkspaceLaunchForm(user=request.auth).initial
        for name in missing:
            data[name] = getattr(defaults.get(name), "pk", defaults.get(name))
    return data


def _messages(form: WorkspaceLaunchForm) -> dict[str, list[str]]:
    errors = form.errors.get_json_data()
    return {field: [e["message"] for e in items] for field, items in errors.items()}


@ide.get("/{workspace_id}", response={200: WorkspaceOut, **ONE_WORKSPACE})
def get_workspace(request: HttpRequest, workspace_id: UUID):
    return selectors.workspace_owned_by(user=request.auth, workspace_id=workspace_id)


@ide.delete("/{workspace_id}", response={204: None, **ONE_WORKSPACE})
def delete_workspace(request: HttpRequest, workspace_id: UUID):
    """Delete for good, never the volumes; a running workspace is stopped
    first. Works even when its last stop failed: the runtime is then left
    for reconcile to remove."""
    workspace = selectors.workspace_owned_by(
        user=request.auth, workspace_id=workspace_id
    )
    workspace_delete(workspace=workspace, actor=request.auth)
    return Status(204, None)


@ide.post(
    "/{workspace_id}/start",
    response={202: WorkspaceOut, 409: Refusal, **ONE_WORKSPACE},
)
def start_workspace(request: HttpRequest, workspace_id: UUID):
    """Start (again) with a new runtime; 409 names the limit that refused."""
    workspace = selectors.workspace_owned_by(
        user=request.auth, workspace_id=workspace_id
    )
    workspace_start(workspace=workspace, actor=request.auth)
    return Status(202, _reread(request, workspace_id))


@ide.post("/{workspace_id}/stop", response={202: WorkspaceOut, **ONE_WORKSPACE})
def stop_workspace(request: HttpRequest, workspace_id: UUID):
    """Stop the runtime, keep the workspace and its volumes (idempotent)."""
    workspace = selectors.workspace_owned_by(
        user=request.auth, workspace_id=workspace_id
    )
    workspace_stop(workspace=workspace, actor=request.auth)
    return Status(202, _reread(request, workspace_id))


@ide.get(
    "/{workspace_id}/events",
    response={200: list[EventOut], 400: Message, **ONE_WORKSPACE},
    summary="The workspace's event timeline",
)
@paginate(KeysetCursorPagination, ordering=("-at", "-id"), page_size=100)
def workspace_events(request: HttpRequest, workspace_id: UUID):
    """Every start's transitions and actions, newest first; reasons are
    sanitized."""
    workspace = selectors.workspace_owned_by(
        user=request.auth, workspace_id=workspace_id
    )
    return selectors.workspace_events(workspace=workspace)


def _reread(request: HttpRequest, workspace_id: UUID):
    return selectors.workspace_owned_by(user=request.auth, workspace_id=workspace_id)


api.add_router("/ide", ide)


# --- Errors: one shape per status, as the OpenAPI document says ------------


def _unauthorized(request: HttpRequest, message: str) -> HttpResponse:
    response = api.create_response(request, {"detail": message}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@api.exception_handler(TokenRefused)
def token_refused(request: HttpRequest, exc: TokenRefused) -> HttpResponse:
    return _unauthorized(request, exc.message)


@api.exception_handler(AuthenticationError)
def not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _unauthorized(
        request,
        "Log in, or send a personal API token: Authorization: Bearer <token> "
        "(create one on /account/tokens/).",
    )


@api.exception_handler(LaunchRefused)
def launch_refused(request: HttpRequest, exc: LaunchRefused) -> HttpResponse:
    body = {"detail": exc.message, "limit": exc.limit}
    return api.create_response(request, body, status=409)


@api.exception_handler(ValidationError)
def invalid_input(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        errors.setdefault(_field_name(error.get("loc", ())), []).append(
            str(error.get("msg", "Invalid value."))
        )
    body = {"detail": "Invalid input; see errors per field.", "errors": errors}
    return api.create_response(request, body, status=422)


def _field_name(loc) -> str:
    """("body", "payload", "mounts", 0, "mount_path") -> "mounts.0.mount_path";
    where the value came from (body, query, path) and the parameter's name
    are noise for the caller."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        parts = parts[1:]
    if parts and parts[0] in ("payload", "filters"):
        parts = parts[1:]
    return ".".join(parts) or "__all__"
