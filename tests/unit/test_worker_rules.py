"""The row's business rules live on the model, not in templates."""

import uuid

import pytest

from workers import states
from workers.models import Worker

# status -> (can_stop, can_probe, can_start_again, can_access_server)
EXPECTED = {
    states.STARTING: (True, False, False, False),
    states.READY: (True, True, False, True),
    states.BUSY: (True, True, False, True),
    states.STOPPING: (False, False, False, False),
    states.STOPPED: (False, False, True, False),
    states.FAILED: (False, False, True, False),
}


@pytest.mark.parametrize("status", states.STATUSES)
def test_it_offers_each_action_only_in_the_statuses_that_allow_it(status):
    worker = Worker(status=status, workspace_id=uuid.uuid4())
    got = (
        worker.can_stop,
        worker.can_probe,
        worker.can_start_again,
        worker.can_access_server,
    )
    assert got == EXPECTED[status]


def test_a_worker_without_a_workspace_cannot_be_started_again_or_accessed():
    assert not Worker(status=states.FAILED).can_start_again
    assert not Worker(status=states.READY).can_access_server
