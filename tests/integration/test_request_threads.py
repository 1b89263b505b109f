"""config.handlers: a request's synchronous code runs on a thread of its
own while it runs, and threads are reused rather than started per request."""

import asyncio
import threading
import time

import pytest
from django.core.signals import request_started

from config.handlers import RequestThread, RequestThreads, SyncChainASGIHandler


async def get(app, path="/healthz") -> int:
    sent, asked = [], []

    async def receive():
        if not asked:
            asked.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays until answered

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    return sent[0]["status"]


@pytest.fixture
def threads_seen():
    seen = []

    def record(**kwargs):
        seen.append(threading.current_thread())

    request_started.connect(record)
    yield seen
    request_started.disconnect(record)


def test_one_request_after_another_reuses_the_thread(threads_seen, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    app = SyncChainASGIHandler()

    async def three():
        return [await get(app) for _ in range(3)]

    assert asyncio.run(three()) == [200, 200, 200]
    assert len(threads_seen) == 3 and len(set(threads_seen)) == 1
    assert threads_seen[0] is not threading.current_thread()  # not the loop


def test_requests_at_once_each_get_a_thread(threads_seen, settings):
    """Two requests that block in synchronous code at the same time: were
    they to share a thread, the barrier would never fill."""
    settings.ALLOWED_HOSTS = ["testserver"]
    app = SyncChainASGIHandler()
    barrier = threading.Barrier(2, timeout=5)

    def meet(**kwargs):
        barrier.wait()

    request_started.connect(meet)
    try:

        async def two():
            return await asyncio.gather(get(app), get(app))

        assert asyncio.run(two()) == [200, 200]
    finally:
        request_started.disconnect(meet)
    assert len(set(threads_seen)) == 2


def test_a_thread_still_busy_is_not_handed_on():
    """A request whose client left may still be running its view."""
    threads = RequestThreads(keep=4)
    busy, idle = threads.take(), threads.take()
    release = threading.Event()
    busy.submit(release.wait, 5)
    threads.give_back(busy)
    threads.give_back(idle)
    assert threads.take() is idle
    assert threads.take() is not busy  # a new one
    release.set()


def test_no_more_idle_threads_are_kept_than_asked():
    threads = RequestThreads(keep=2)
    taken = [threads.take() for _ in range(4)]
    for thread in taken:
        threads.give_back(thread)
    assert {threads.take() for _ in range(2)} <= set(taken)
    assert threads.take() not in taken
    time.sleep(0.05)
    assert all(t._shutdown for t in taken[2:])


def test_a_request_thread_counts_its_work():
    thread = RequestThread()
    assert thread.idle
    release = threading.Event()
    future = thread.submit(release.wait, 5)
    assert not thread.idle
    release.set()
    future.result(timeout=5)
    time.sleep(0.01)  # the done callback runs on the worker after the result
    assert thread.idle
    thread.shutdown()
