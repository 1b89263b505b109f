"""Scraping /metrics in tests: the samples of one scrape as a dict, and the
difference between two scrapes, series by series."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.factories import WorkspaceFactory
from tests.integration import lifecycle_support as lifecycle
from tests.integration.lifecycle_support import committed
from workers import services
from workers.models import Worker

TOKEN = "metrics-test-token-5b1e"


def samples_of(text: str) -> dict:
    """(sample name, labels) -> value of one exposition text."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scraper(client, settings):
    """What a test's ``scrape`` fixture returns: a function reading /metrics
    with the bearer token through the Django test ``client``."""
    settings.METRICS_TOKEN = TOKEN

    def read() -> dict:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        if response.status_code != 200:
            raise AssertionError(f"/metrics answered {response.status_code}")
        return samples_of(response.content.decode())

    return read


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def start(fleet, workspace=None, **kwargs) -> Worker:
    """Start ``workspace`` (a new one made with ``kwargs`` by default) as its
    owner and run the queued tasks; the worker fresh from the database."""
    return lifecycle.start(workspace or WorkspaceFactory(**kwargs), fleet)


def stop(fleet, worker: Worker) -> Worker:
    with committed():
        services.worker_request_stop(worker=worker, actor_type="user", reason="Stop")
    fleet.tasks.run_all()
    worker.refresh_from_db()
    return worker
