import pytest

from tests.factories import WorkerFactory


@pytest.mark.django_db
def test_it_creates_a_worker_with_a_frozen_snapshot(default_class):
    worker = WorkerFactory()
    assert worker.resource_snapshot["id"] == "small"
    assert worker.resource_snapshot["cpu_limit_millicores"] == 2000
