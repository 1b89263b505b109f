"""The ASGI handler for Django's HTTP requests."""

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler, running the middleware chain and the view as
    one synchronous call on the request's thread, as under WSGI.

    Every view here is synchronous, and most middleware is too. Stock
    Django runs each async-capable middleware as async, each
    ``MiddlewareMixin`` then hops to a thread and back for its
    ``process_request``/``process_response``, and each ``process_view`` and
    the view hop again: 38 thread hand-offs for one console page, which
    cost more than its SQL on a busy 2-core machine
    (bench/console_vs_jupyterhub.py). Here a request makes one.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(
            self._middleware_chain, thread_sensitive=True
        )
