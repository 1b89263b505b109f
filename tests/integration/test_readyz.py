"""/healthz says the process is up; /readyz says whether its dependencies
answer, naming the ones that do not (503)."""

import pytest
from django.db import connections

from ops import readiness

pytestmark = [pytest.mark.django_db]


def test_healthz_answers_without_the_database(client, monkeypatch):
    monkeypatch.setattr(readiness, "connections", {})  # never consulted
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.needs_postgres
@pytest.mark.needs_redis
def test_it_is_ready_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["failing"] == []
    assert body["checks"] == {"database": "ok", "redis": "ok", "task_broker": "ok"}


@pytest.mark.needs_postgres
def test_it_names_an_unreachable_database(client, monkeypatch):
    down = connections.create_connection("default")
    down.settings_dict = {**down.settings_dict, "HOST": "127.0.0.1", "PORT": 1}
    monkeypatch.setattr(readiness, "connections", {"default": down})
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]
    assert response.json()["checks"]["database"] == "unreachable"
    down.close()


@pytest.mark.needs_redis
def test_it_names_an_unreachable_redis(client, settings):
    settings.REDIS_URL = "redis://:hunter2secret@127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "redis" in response.json()["failing"]
    assert "hunter2secret" not in response.content.decode()


def test_it_names_an_unreachable_task_broker(client, monkeypatch):
    from config.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "task_broker" in response.json()["failing"]
