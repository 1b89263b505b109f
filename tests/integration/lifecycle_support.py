"""Fixtures and builders shared by the lifecycle, launch, reaper, reconcile
and state-machine tests."""

from decimal import Decimal

import pytest
from django.test import TestCase

from tests.factories import ProjectFactory, UserFactory, WorkspaceFactory
from tests.fakes import installed_fleet
from workspaces.models import Plan, SchedulingQueue


@pytest.fixture
def fleet(monkeypatch, settings):
    settings.NOTEBOOK_RUNTIME_DEFAULT_BACKEND = "local"
    settings.NOTEBOOK_RUNTIME_GPU_CAPACITY = {}
    with installed_fleet(monkeypatch) as fleet:
        yield fleet


def committed(execute: bool = True):
    """Run what the block registers with ``transaction.on_commit`` at its
    end, as a real commit would (tests run inside a transaction)."""
    return TestCase.captureOnCommitCallbacks(execute=execute)


def start(workspace, fleet):
    """Start ``workspace`` as its owner and run the queued tasks: the worker
    as the start left it (ready with the fake backend), fresh from the
    database."""
    from workspaces.services import workspace_start

    with committed():
        worker = workspace_start(workspace=workspace, actor=workspace.owner)
    fleet.tasks.run_all()
    worker.refresh_from_db()
    return worker


def gpu_plan(*, models=("RTX 5090",), queues=(), **window) -> Plan:
    plan = Plan.objects.create(
        name=f"plan-{Plan.objects.count()}", allowed_gpu_models=list(models), **window
    )
    plan.queues.set(queues)
    return plan


def queue(name: str, *, priority: int = 0, preemptible: bool = False, deserved=None):
    return SchedulingQueue.objects.create(
        name=name,
        priority=priority,
        preemptible=preemptible,
        deserved_gpu_limit=deserved,
    )


def gpu_workspace(*, owner=None, project=None, units: int = 1, sm: int = 100, **kwargs):
    """A workspace asking for ``units`` RTX 5090 GPUs in a project whose plan
    allows them (2.0 GPUs of quota unless the project says otherwise)."""
    if project is None:
        owner = owner or UserFactory()
        project = ProjectFactory(
            personal_owner=owner, plan=gpu_plan(), gpu_quota=Decimal(2)
        )
    return WorkspaceFactory(
        project=project,
        owner=owner or project.personal_owner,
        gpu_count=units,
        gpu_model="RTX 5090",
        gpu_sm_percentage=sm,
        **kwargs,
    )
