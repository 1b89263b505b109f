"""The ASGI handler for Django's HTTP requests."""

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler

# Idle request threads kept for the next requests; more concurrent requests
# than this still each get a thread, which ends after its request.
IDLE_REQUEST_THREADS = 32


class RequestThread(ThreadPoolExecutor):
    """One thread that runs one request's synchronous code at a time, and
    knows whether it still has work (a request whose client went away
    leaves its view running: that thread is not handed to another request
    until it is done)."""

    def __init__(self):
        super().__init__(max_workers=1, thread_name_prefix="django-request")
        self._lock = threading.Lock()
        self._pending = 0

    def submit(self, fn, /, *args, **kwargs):
        with self._lock:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future) -> None:
        with self._lock:
            self._pending -= 1

    @property
    def idle(self) -> bool:
        with self._lock:
            return self._pending == 0


class RequestThreads:
    """Threads for requests, reused: starting and joining a thread per
    request, as Django's handler does, cost about 0.8 ms of a 9 ms console
    page (bench/console_vs_jupyterhub.py). A request still has a thread of
    its own while it runs, as under a threaded WSGI server."""

    def __init__(self, keep: int = IDLE_REQUEST_THREADS):
        self._idle: deque[RequestThread] = deque()
        self._keep = keep

    def take(self) -> RequestThread:
        try:
            return self._idle.pop()  # the most recent: its caches are warm
        except IndexError:
            return RequestThread()

    def give_back(self, thread: RequestThread) -> None:
        if thread.idle and len(self._idle) < self._keep:
            self._idle.append(thread)
        else:
            thread.shutdown(wait=False)  # ends once its work is done


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler, running the middleware chain and the view as
    one synchronous call on the request's thread, as under WSGI.

    Every view here is synchronous, and most middleware is too. Stock
    Django runs each async-capable middleware as async, each
    ``MiddlewareMixin`` then hops to a thread and back for its
    ``process_request``/``process_response``, and each ``process_view`` and
    the view hop again: 38 thread hand-offs for one console page, which
    cost more than its SQL on a busy 2-core machine
    (bench/console_vs_jupyterhub.py). Here a request makes one, on a thread
    taken from ``RequestThreads`` rather than started for it.
    """

    def __init__(self):
        super().__init__()
        self.threads = RequestThreads()

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(
            self._middleware_chain, thread_sensitive=True
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django serves HTTP here, not {scope['type']}.")
        thread = self.threads.take()
        try:
            # asgiref's public way to give a request its executor: every
            # thread-sensitive call of this request (signals, the chain,
            # closing the response) runs on it.
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(thread)
