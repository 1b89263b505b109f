"""Request context: a request id (the client's ``X-Request-ID`` when it
looks like one, else a new one) bound for every log line of the request
and echoed in the response; the user and the worker the request is about
bound once known; the time Django took, by view, in
``notebook_http_request_duration_seconds``; one access line per request."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

from ops import log_context
from ops.process_metrics import http_latency, status_class

HEADER = "X-Request-ID"
log = logging.getLogger("ops.access")
WORKER_KWARGS = ("worker_id",)


class RequestContextMiddleware:
    """First in MIDDLEWARE, so the id is bound before anything logs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = log_context.new_request_id(request.headers.get(HEADER))
        request.request_id = request_id
        started = time.perf_counter()
        request._log_tokens = [log_context.bind(request_id=request_id)]
        try:
            response = self.get_response(request)
            self._done(request, response, time.perf_counter() - started)
        finally:
            for tokens in reversed(request._log_tokens):
                log_context.unbind(tokens)
        response[HEADER] = request_id
        return response

    def process_view(self, request, view_func, view_args, view_kwargs) -> None:
        """Past authentication: bind who and which worker. ``request.user``
        is evaluated here only when a session cookie exists (otherwise it is
        anonymous and costs nothing)."""
        worker_id = next(
            (view_kwargs[k] for k in WORKER_KWARGS if k in view_kwargs), ""
        )
        user = getattr(request, "user", None)
        user_id = user.pk if user is not None and user.is_authenticated else ""
        tokens = log_context.bind(user_id=user_id, worker_id=worker_id)
        if hasattr(request, "_log_tokens"):
            request._log_tokens.append(tokens)

    @staticmethod
    def _done(request: HttpRequest, response: HttpResponse, seconds: float) -> None:
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match and match.view_name else "unresolved"
        http_latency.labels(
            view=view, method=request.method, status=status_class(response.status_code)
        ).observe(seconds)
        log.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            seconds * 1000,
            extra={"status": response.status_code, "view": view, **_who(request)},
        )


def _who(request: HttpRequest) -> dict:
    """The user id when authentication already loaded the user (never a
    query of its own: this runs for every request)."""
    user = getattr(request, "user", None)
    loaded = getattr(user, "_wrapped", user)
    if loaded is None or loaded is empty:
        return {}
    return {"user_id": str(loaded.pk)} if loaded.is_authenticated else {}
