"""Project-wide request middleware."""

from collections.abc import Callable, Iterable

from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

NUL = "\x00"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
NUL_MESSAGE = (
    "The request contains a NUL character (%00) in its {where}; "
    "no field accepts one. Remove it and try again."
)


class RejectNulBytesMiddleware:
    """Answer 400 for a NUL character in the path, a query parameter, a form
    field or a cookie, before any view sees it.

    PostgreSQL cannot store or compare a string with NUL in it, so such a value
    reaching a lookup (an admin filter, an object id, an autocomplete term, a
    session key) raised an error and a 500. One rule here covers every view,
    including the ones Django's admin builds. Request bodies other than forms
    (JSON, uploads' contents) are left to the view: a NUL is valid inside them.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = self._where_nul(request)
        if where:
            return HttpResponseBadRequest(
                NUL_MESSAGE.format(where=where), content_type="text/plain"
            )
        return self.get_response(request)

    @staticmethod
    def _where_nul(request: HttpRequest) -> str | None:
        if NUL in request.path_info:
            return "path"
        if _has_nul(request.GET.lists()):
            return "query string"
        if _has_nul((k, [v]) for k, v in request.COOKIES.items()):
            return "cookies"
        if request.content_type in FORM_TYPES and (
            _has_nul(request.POST.lists())
            or _has_nul(
                (k, [f.name or "" for f in fs]) for k, fs in request.FILES.lists()
            )
        ):
            return "form fields"
        return None


def _has_nul(items: Iterable[tuple[str, list[str]]]) -> bool:
    return any(NUL in key or any(NUL in v for v in values) for key, values in items)


class QueryCountHeaderMiddleware:
    """``X-Query-Count``: the SQL statements this request ran, for
    benchmarks over HTTP (``bench/console_vs_jupyterhub.py``).

    Installed only when ``QUERY_COUNT_HEADER`` is set, first in the chain so
    session and user loads count too. It tells a client how much work a page
    costs, so production never sets it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        count = 0

        def counted(execute, sql, params, many, context):
            nonlocal count
            count += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counted):
            response = self.get_response(request)
        response["X-Query-Count"] = str(count)
        return response
