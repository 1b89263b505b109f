"""JSON logs (LOG_FORMAT=json): request id (the client's X-Request-ID,
echoed), user id and worker id on the lines they concern, carried into the
task a request enqueued; no token, cookie or password in any line, even
when an error text or a traceback carries one."""

import io
import json
import logging
import logging.config
import sys
import uuid

import pytest
from django.core.management import call_command
from django.urls import reverse

from ops import log_context
from tests.factories import WorkspaceFactory
from tests.integration.lifecycle_support import committed
from workers import states, tasks
from workers.models import Worker

pytest_plugins = ["tests.integration.lifecycle_support"]
TOKEN = "tok3n-5ecr3t-9f8e7d6c5b4a"
PASSWORD = "pa55w0rd-h13"
LEAKY = (
    f"gateway refused POST http://127.0.0.1:9/api/launch?token={TOKEN}; "
    f"state store postgres://fleet:{PASSWORD}@127.0.0.1:5432/fleet is down"
)


@pytest.fixture
def json_logs(settings):
    """The project's LOGGING with LOG_FORMAT=json, written to a buffer."""
    stream = io.StringIO()
    config = json.loads(json.dumps(settings.LOGGING))
    config["handlers"]["console"] = {
        **config["handlers"]["console"],
        "formatter": "json",
        "stream": stream,
    }
    logging.config.dictConfig(config)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.config.dictConfig(settings.LOGGING)
    assert TOKEN not in stream.getvalue() and PASSWORD not in stream.getvalue()


@pytest.mark.django_db
@pytest.mark.needs_postgres
def test_a_failing_start_logs_its_ids_and_no_secret(
    fleet, default_class, client, alice, json_logs
):
    workspace = WorkspaceFactory(owner=alice)
    client.force_login(alice)
    fleet.backend.fail("launch", "error", LEAKY)
    with committed():
        response = client.post(
            reverse("workspaces:action", args=[workspace.id, "start"]),
            HTTP_X_REQUEST_ID="req-13-abc",
        )
    assert response["X-Request-ID"] == "req-13-abc"
    [(_, worker_id)] = fleet.tasks.take()
    tasks.start_worker.apply(
        kwargs={"worker_id": worker_id}, headers={"request_id": "req-13-abc"}
    )

    assert Worker.objects.get(id=worker_id).status == states.FAILED
    lines = json_logs()
    [access] = [line for line in lines if line["logger"] == "ops.access"]
    assert access["request_id"] == "req-13-abc"
    assert access["user_id"] == str(alice.pk)
    [failed] = [line for line in lines if line["message"].startswith("worker failed")]
    assert failed["request_id"] == "req-13-abc"
    assert failed["worker_id"] == worker_id
    assert "[REDACTED]" in failed["message"]


@pytest.mark.django_db
def test_it_makes_a_request_id_when_the_client_offers_none_or_a_bad_one(client):
    made = client.get("/healthz")["X-Request-ID"]
    assert len(made) == 32
    forged = client.get("/healthz", HTTP_X_REQUEST_ID="a\nb c")["X-Request-ID"]
    assert forged != "a\nb c" and len(forged) == 32


def test_every_record_is_sanitized_whatever_the_format(json_logs):
    log = logging.getLogger("tests.leaky")
    try:
        raise RuntimeError(f"connect failed: {LEAKY}")
    except RuntimeError:
        log.exception("backend said %s", f"Cookie: sessionid={TOKEN}")
    log.warning("Authorization: Bearer %s", TOKEN)
    [first, second] = json_logs()[-2:]
    assert "[REDACTED]" in first["message"] and "[REDACTED]" in first["exc_info"]
    assert "RuntimeError" in first["exc_info"]
    assert second["message"] == "Authorization: Bearer [REDACTED]"


def test_a_task_carries_the_request_id_of_the_request_that_sent_it():
    """The header is added when the message is published (whatever the
    broker) and bound when the task runs."""
    from kombu.simple import SimpleQueue

    from config.celery import app

    queue = f"h13-{uuid.uuid4().hex[:8]}"
    with log_context.bound(request_id="req-sent-1"):
        tasks.probe_workers.apply_async(queue=queue)
    with app.connection_for_read() as conn:
        simple = SimpleQueue(conn, queue)
        message = simple.get(timeout=5)
        message.ack()
        simple.queue.delete()
        simple.close()
    assert message.headers["request_id"] == "req-sent-1"


def test_uvicorn_access_lines_lose_query_string_tokens(monkeypatch, json_logs):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    call_command("serve", "--no-embedded-workers", stdout=io.StringIO())
    assert seen["log_config"] is None  # Django's LOGGING formats uvicorn too
    # LOGGING routes uvicorn's loggers to root even after another uvicorn
    # in this process (a test's live server) configured them its own way.
    access = logging.getLogger("uvicorn.access")
    access.info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:50000",
        "GET",
        f"/w/0f0f/lab?token={TOKEN}",
        "1.1",
        200,
    )
    assert json_logs()[-1]["message"].endswith(
        '/w/0f0f/lab?token=[REDACTED] HTTP/1.1" 200'
    )
    assert sys.stderr  # the real handler is restored by the fixture


def test_ids_bound_in_one_context_are_unbound_from_another():
    """Under ASGI a middleware's view phase may run in another context than
    its request phase (a token reset there raised, every page was a 500)."""
    import contextvars

    previous = contextvars.copy_context().run(
        log_context.bind, user_id="7", worker_id="w"
    )
    log_context.unbind(previous)
    assert log_context.get("user_id") == ""
