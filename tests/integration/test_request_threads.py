"""config.handlers: a request's synchronous code runs on a thread of its
own while it runs, and threads are reused rather than started per request."""

import asyncio
import threading
import time

import pytest
from django.core.signals import request_finished, request_started

from config.handlers import RequestThread, RequestThreads, SyncChainASGIHandler


async def get(app, path="/healthz", *, sent=None, leaves=None) -> int | None:
    """The answer's status (None if there was none). ``leaves``: an event
    after which the client disconnects."""
    sent = [] if sent is None else sent
    asked = []

    async def receive():
        if not asked:
            asked.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        if leaves is None:
            await asyncio.Event().wait()  # the client stays until answered
        await leaves.wait()
        return {"type": "http.disconnect"}

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
    return sent[0]["status"] if sent else None


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


@pytest.fixture
def signals_seen(settings):
    """What happened to a request, in order: the signals and the views'
    notes (``handler_urls``), each with its thread."""
    from tests.integration import handler_urls

    settings.ALLOWED_HOSTS = ["testserver"]
    settings.ROOT_URLCONF = "tests.integration.handler_urls"
    handler_urls.events.clear()
    handler_urls.release.clear()

    def started(**kwargs):
        handler_urls.note("started")

    def finished(**kwargs):
        handler_urls.note("finished")

    request_started.connect(started)
    request_finished.connect(finished)
    yield handler_urls.events
    request_started.disconnect(started)
    request_finished.disconnect(finished)
    handler_urls.release.set()


def test_a_request_makes_one_hop_for_its_signals_and_view(signals_seen):
    app, sent = SyncChainASGIHandler(), []
    thread = app.threads.take()
    app.threads.give_back(thread)
    hops = []
    original = thread.submit
    thread.submit = lambda fn, *args, **kwargs: (
        hops.append(fn) or original(fn, *args, **kwargs)
    )
    assert asyncio.run(get(app, "/plain", sent=sent)) == 200
    assert len(hops) == 1  # Django's own handler: three
    assert [what for what, _ in signals_seen] == ["started", "view", "finished"]
    assert len({thread for _, thread in signals_seen}) == 1  # the request's
    assert signals_seen[0][1] is not threading.current_thread()
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"plain body"


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume")
def test_a_streamed_answer_is_closed_after_its_last_chunk(signals_seen):
    sent = []
    assert asyncio.run(get(SyncChainASGIHandler(), "/streamed", sent=sent)) == 200
    assert [what for what, _ in signals_seen] == [
        "started",
        "view",
        "last chunk",
        "finished",
    ]
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"first second"


def test_a_client_that_leaves_mid_view_still_gets_its_request_finished(
    signals_seen,
):
    from tests.integration import handler_urls

    async def leave_early():
        leaves = asyncio.Event()
        request = asyncio.create_task(
            get(SyncChainASGIHandler(), "/waits", leaves=leaves)
        )
        while not signals_seen:  # until the view runs
            await asyncio.sleep(0.01)
        leaves.set()
        await asyncio.sleep(0.05)
        handler_urls.release.set()  # the view ends after its client left
        return await asyncio.wait_for(request, 5)

    assert asyncio.run(leave_early()) is None  # nothing sent: it left
    seen = [what for what, _ in signals_seen]
    assert seen[:3] == ["started", "view", "view done"]
    assert "finished" in seen[3:]


def test_an_error_answer_is_logged_as_django_logs_it(signals_seen, caplog):
    assert asyncio.run(get(SyncChainASGIHandler(), "/no-such-page")) == 404
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Not Found: /no-such-page"
    assert [what for what, _ in signals_seen] == ["started", "finished"]
