"""A launch-ready world for the workspace page, form and socket tests:
alice's personal project with volumes and a plan (GPU models, a bound
queue, always open), a group project of the manager, bob's project, and a
CPU and a GPU resource class."""

from dataclasses import dataclass
from decimal import Decimal

import pytest

from resource_classes.models import ResourceClass
from tests.factories import ProjectFactory, ResourceClassFactory
from workspaces.models import Group, Plan, Project, SchedulingQueue, Volume

IMAGE = "jupyter/base-notebook:4.2"


@dataclass
class World:
    personal: Project
    team: Project
    bobs: Project
    plan: Plan
    interactive: SchedulingQueue
    other_queue: SchedulingQueue
    small: ResourceClass
    gpu: ResourceClass
    data: Volume
    scratch: Volume
    bobs_volume: Volume


@pytest.fixture
def world(personas, settings) -> World:
    settings.NOTEBOOK_RUNTIME_GPU_CAPACITY = {}
    small = ResourceClassFactory(id="small", is_default=True)
    gpu = ResourceClassFactory(
        id="gpu", gpu_count=2, gpu_resource_name="nvidia.com/gpu"
    )
    interactive = SchedulingQueue.objects.create(name="interactive", priority=10)
    other_queue = SchedulingQueue.objects.create(name="other-plans", priority=5)
    plan = Plan.objects.create(
        name="lab-plan",
        allowed_gpu_models=["RTX 5090"],
        default_cpu_limit="4",
        default_memory_limit="8Gi",
    )
    plan.queues.add(interactive)
    other = Plan.objects.create(name="other-plan", allowed_gpu_models=["H100"])
    other.queues.add(other_queue)
    alice, bob, manager = personas.alice, personas.bob, personas.manager
    personal = ProjectFactory(
        name="Alice personal",
        slug="alice",
        personal_owner=alice,
        image_allowlist=[IMAGE, "jupyter/scipy-notebook:4.2"],
        plan=plan,
        gpu_quota=Decimal("1.5"),
    )
    team = ProjectFactory(
        name="ML team",
        slug="ml-team",
        personal_owner=None,
        group=Group.objects.create(name="ML", slug="ml"),
        image_allowlist=[IMAGE],
        gpu_quota=Decimal(0),
    )
    team.members.add(alice, manager)
    bobs = ProjectFactory(name="Bob personal", slug="bob", personal_owner=bob)
    return World(
        personal=personal,
        team=team,
        bobs=bobs,
        plan=plan,
        interactive=interactive,
        other_queue=other_queue,
        small=small,
        gpu=gpu,
        data=Volume.objects.create(project=personal, name="data"),
        scratch=Volume.objects.create(project=personal, name="scratch"),
        bobs_volume=Volume.objects.create(project=bobs, name="bobs-data"),
    )


def launch_data(world: World, **overrides) -> dict:
    """A valid launch-form post for alice's personal project (HTML names;
    ``mounts`` as a list of (volume, path) turns into the repeated pairs)."""
    data = {
        "project": str(world.personal.pk),
        "name": "analysis",
        "ide_kind": "jupyterlab",
        "proxy_path": "",
        "image": IMAGE,
        "queue": "default",
        "resource_class": "small",
        "gpu_count": "0",
        "gpu_model": "",
        "gpu_sm_percentage": "100",
        "cpu_limit": "",
        "memory_limit": "",
    }
    mounts = overrides.pop("mounts", [(world.data, "/data")])
    data.update(overrides)
    data["mount_volume"] = [str(getattr(v, "pk", v)) for v, _ in mounts]
    data["mount_path"] = [p for _, p in mounts]
    return data
