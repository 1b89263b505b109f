"""A property-based state machine over the whole lifecycle: launch, stop,
delete, backend faults, lost and redelivered tasks, reapers and reconcile.

After every step: limits hold, no worker is ``stopped`` while its runtime
exists, and every status change is in the event log along an allowed path.
After a settle step (faults healed, time passed, reapers and reconcile run):
every worker is terminal or healthy and the backend agrees with the rows.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Count, Max, Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.factories import ProjectFactory, UserFactory
from tests.integration.lifecycle_support import (
    committed,
    gpu_plan,
    gpu_workspace,
)  # noqa: F401
from workers import services, states
from workers.models import Worker, WorkerEvent
from workspaces.models import Workspace
from workspaces.services import workspace_delete, workspace_start, workspace_stop

pytest_plugins = ["tests.integration.lifecycle_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]
LIMIT = 2
BREAKAGES = [
    *(
        (method, kind)
        for method in ("launch", "observe", "terminate", "list_runtimes")
        for kind in ("error", "retryable", "timeout")
    ),
    "unknown",
    "never_ready",
    "sticky",
    "sticky",
]
FAULT = st.one_of(st.none(), st.sampled_from(BREAKAGES))


class Lifecycle(RuleBasedStateMachine):
    fleet = None  # set by the test
    workspace_ids: list = []

    def __init__(self):
        super().__init__()
        self.savepoint = transaction.savepoint()
        self.fleet.backend.reset()
        self.fleet.tasks.take()
        self.fleet.probe.busy.clear()

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)

    def _workspace(self, index: int) -> Workspace | None:
        return Workspace.objects.filter(pk=self.workspace_ids[index]).first()

    def _worker(self, index: int) -> Worker | None:
        workers = list(Worker.objects.order_by("created_at", "id"))
        return workers[index % len(workers)] if workers else None

    @initialize(run=st.booleans())
    def some_workspaces_run(self, run):
        """Start from a fleet with running workers (or starting ones)."""
        for index in (0, 2):
            self.launch(index=index, run=run)

    def _break(self, fault) -> None:
        """Inject a backend fault before the step: a call raises (an error, a
        retryable error, a timeout), observe answers UNKNOWN, runtimes never
        get ready or survive terminate. Faults last until ``settle``."""
        if isinstance(fault, tuple):
            self.fleet.backend.fail(*fault)
        elif fault:
            self.fleet.backend.set_flag(fault, True)

    def _then(self, run: bool) -> None:
        if run:
            with committed():
                self.fleet.tasks.run_all()

    @rule(index=st.integers(0, 2), run=st.booleans(), fault=FAULT)
    def launch(self, index, run, fault=None):
        """Start a workspace; with ``run`` its task is delivered at once."""
        self._break(fault)
        workspace = self._workspace(index)
        if workspace is None:
            return
        try:
            with committed():
                workspace_start(workspace=workspace, actor=workspace.owner)
        except services.LaunchRefused:
            pass
        self._then(run)

    @rule(index=st.integers(0, 2), run=st.booleans(), fault=FAULT)
    def stop(self, index, run, fault):
        self._break(fault)
        if workspace := self._workspace(index):
            with committed():
                workspace_stop(workspace=workspace, actor=workspace.owner)
        self._then(run)

    @rule(index=st.integers(0, 2), run=st.booleans(), fault=FAULT)
    def delete(self, index, run, fault):
        self._break(fault)
        if workspace := self._workspace(index):
            with committed():
                workspace_delete(workspace=workspace, actor=workspace.owner)
        self._then(run)

    @rule(
        fate=st.sampled_from(["run", "run", "run", "lost", "redelivered"]), fault=FAULT
    )
    def deliver_one_task(self, fate, fault):
        """Run the oldest pending task, or lose it, or run it twice."""
        self._break(fault)
        sent = self.fleet.tasks.take()
        if not sent:
            return
        (first, *rest) = sent
        self.fleet.tasks.sent[:0] = rest
        if fate == "lost":
            return
        for _ in range(2 if fate == "redelivered" else 1):
            with committed():
                run_task(*first)

    @rule(index=st.integers(0, 50), lost=st.booleans())
    def runtime_changes(self, index, lost):
        """A runtime vanishes behind our back, or its kernels turn busy/idle."""
        if worker := self._worker(index):
            if lost:
                self.fleet.backend.lose(worker.id)
            else:
                self.fleet.probe.busy ^= {str(worker.id)}

    @rule(minutes=st.sampled_from([1, 11, 61]))
    def time_passes_and_reapers_run(self, minutes):
        self.fleet.clock.shift(timedelta(minutes=minutes))
        with committed():
            services.workers_probe()
            services.workers_reap_idle()
            services.workers_cleanup_stale()

    @rule()
    def reconcile(self):
        with committed():
            services.workers_reconcile(backends=["local"])

    @rule()
    def settle(self):
        """Faults stop: heal, let time pass, reap, reconcile, run tasks."""
        self.fleet.backend.heal()
        self.fleet.clock.shift(timedelta(minutes=20))
        with committed():
            services.workers_cleanup_stale()
            services.workers_reconcile(backends=["local"])
            self.fleet.tasks.run_all()
        unsettled = Worker.objects.exclude(
            status__in=[states.READY, states.BUSY, states.STOPPED, states.FAILED]
        )
        assert not unsettled.exists(), list(unsettled.values("status", "error_code"))
        with_runtime = {
            str(i)
            for i in Worker.objects.filter(
                status__in=states.ACTIVE_STATUSES
            ).values_list("id", flat=True)
        }
        assert self.fleet.backend.runtime_ids() == with_runtime

    @invariant()
    def limits_hold(self):
        allocated = Worker.objects.filter(status__in=states.ALLOCATED_STATUSES)
        per_user = allocated.values("owner").annotate(n=Count("id"))
        assert all(row["n"] <= LIMIT for row in per_user)
        per_project = allocated.values("project").annotate(
            units=Sum("gpu_units"), quota=Max("project__gpu_quota")
        )
        assert all(row["units"] <= row["quota"] for row in per_project)

    @invariant()
    def no_stopped_worker_has_a_runtime(self):
        stopped = {
            str(i)
            for i in Worker.objects.filter(status=states.STOPPED).values_list(
                "id", flat=True
            )
        }
        assert not stopped & self.fleet.backend.runtime_ids()

    @invariant()
    def every_transition_is_logged(self):
        paths: dict = {}
        for worker_id, src, dst in (
            WorkerEvent.objects.filter(kind="transition")
            .order_by("at", "id")
            .values_list("worker_id", "from_status", "to_status")
        ):
            assert states.can_transition(src, dst)
            assert paths.get(worker_id, states.STARTING) == src
            paths[worker_id] = dst
        for worker_id, status in Worker.objects.values_list("id", "status"):
            assert paths.get(worker_id, states.STARTING) == status


def run_task(task_name: str, worker_id: str) -> None:
    if task_name == "start_worker":
        services.worker_start_run(worker_id=worker_id)
    else:
        services.worker_stop_run(worker_id=worker_id)


# 100 runs of 30 steps take about 140 s on a quiet 2-core machine; the suite's
# 300 s default was hit when the machine was shared, and luck must not decide.
@pytest.mark.timeout(900)
def test_it_keeps_the_lifecycle_invariants(
    fleet, default_class, django_settings_fixture
):
    django_settings_fixture.NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER = LIMIT
    alice, bob = UserFactory(), UserFactory()
    shared = ProjectFactory(
        personal_owner=alice, plan=gpu_plan(), gpu_quota=Decimal("1.5")
    )
    workspaces = [
        gpu_workspace(project=shared, owner=alice, units=1),
        gpu_workspace(project=shared, owner=alice, units=1, sm=50),
        gpu_workspace(owner=bob, units=1),
    ]
    Lifecycle.fleet = fleet
    Lifecycle.workspace_ids = [ws.pk for ws in workspaces]
    run = Lifecycle.TestCase
    run.settings = settings(
        max_examples=100,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
        ],
    )
    run().runTest()


@pytest.fixture
def django_settings_fixture(settings):
    return settings
