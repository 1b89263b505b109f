"""The ASGI handler for Django's HTTP requests."""

import asyncio
import contextlib
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponse
from django.urls import set_script_prefix, set_urlconf
from django.utils.log import log_response

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
    """Django's ASGI handler, running a request's synchronous work as one
    call on the request's thread, as under WSGI.

    Every view here is synchronous, and most middleware is too. Stock
    Django runs each async-capable middleware as async, each
    ``MiddlewareMixin`` then hops to a thread and back for its
    ``process_request``/``process_response``, and each ``process_view`` and
    the view hop again: 38 thread hand-offs for one console page, which
    cost more than its SQL on a busy 2-core machine
    (bench/console_vs_jupyterhub.py). Beyond the chain, Django hops once
    more to send ``request_started`` and once more to close the response
    (``request_finished``, which returns the database connection): about
    0.12 ms each. Here a request makes one hop, on a thread taken from
    ``RequestThreads`` rather than started for it, which sends
    ``request_started``, runs the chain and closes a response held in
    memory. A streamed response (a file) is closed after its body is sent,
    as Django does.
    """

    def __init__(self):
        super().__init__()
        self.threads = RequestThreads()

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._serve = sync_to_async(self._serve_sync, thread_sensitive=True)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django serves HTTP here, not {scope['type']}.")
        thread = self.threads.take()
        try:
            # asgiref's public way to give a request its executor: every
            # thread-sensitive call of this request runs on it.
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(thread)

    async def handle(self, scope, receive, send):
        """Django's ``ASGIHandler.handle`` with the hops folded into one:
        the same body reading, client-disconnect watch and error answers."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        tasks = [
            # First: it raises nothing unexpected that would keep the
            # request from being cancelled (as in Django).
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(self._respond(scope, body_file, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass  # the client left
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()  # the client left mid-request
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if tasks[1].cancelled():
            # The request's thread may still be at work; it closes what it
            # made. Django's upkeep runs for this request all the same.
            await signals.request_finished.asend(sender=self.__class__)
        body_file.close()

    async def _respond(self, scope, body_file, send) -> None:
        response, closed = await self._serve(scope, body_file)
        with contextlib.suppress(asyncio.CancelledError):  # the client left
            await self.send_response(response, send)
        if not closed:
            await sync_to_async(response.close, thread_sensitive=True)()

    def _serve_sync(self, scope, body_file) -> tuple[HttpResponse, bool]:
        """On the request's thread: ``request_started``, the request, the
        middleware chain and view; then the response closed unless it
        streams. Returns it and whether it was closed."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            set_urlconf(settings.ROOT_URLCONF)
            response = self._middleware_chain(request)
            response._resource_closers.append(request.close)
            if response.status_code >= 400:
                log_response(
                    "%s: %s",
                    response.reason_phrase,
                    request.path,
                    response=response,
                    request=request,
                )
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if response.streaming:
            return response, False
        response.close()
        return response, True
