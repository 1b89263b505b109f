"""Views for tests/integration/test_request_threads.py: a plain answer, a
streamed one and one that waits, each noting the thread it ran on."""

import threading

from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path

events: list[tuple[str, threading.Thread]] = []
release = threading.Event()


def note(what: str) -> None:
    events.append((what, threading.current_thread()))


def plain(request):
    note("view")
    return HttpResponse(b"plain body")


def streamed(request):
    note("view")

    def chunks():
        yield b"first "
        note("last chunk")
        yield b"second"

    return StreamingHttpResponse(chunks())


def waits(request):
    note("view")
    release.wait(5)
    note("view done")
    return HttpResponse(b"late")


urlpatterns = [
    path("plain", plain),
    path("streamed", streamed),
    path("waits", waits),
]
