"""factory-boy factories and the shared personas."""

from dataclasses import dataclass
from decimal import Decimal

import factory
from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.models import User
from resource_classes.models import ResourceClass
from workers.models import Worker
from workspaces.models import Project, SchedulingQueue, Workspace


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("pw-for-tests-1")


class ResourceClassFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ResourceClass
        django_get_or_create = ("id",)

    id = factory.Sequence(lambda n: f"class-{n}")
    display_name = factory.LazyAttribute(lambda rc: rc.id.replace("-", " ").title())
    cpu_request = "500m"
    cpu_limit = "2"
    memory_request = "1Gi"
    memory_limit = "4Gi"
    workspace_storage = "10Gi"
    temp_storage = "1Gi"


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    personal_owner = factory.SubFactory(UserFactory)
    image_allowlist = factory.LazyFunction(lambda: ["jupyter/base-notebook:4.2"])
    gpu_quota = Decimal("2")


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    project = factory.SubFactory(ProjectFactory)
    owner = factory.SelfAttribute("project.personal_owner")
    name = factory.Sequence(lambda n: f"ws-{n}")
    image = "jupyter/base-notebook:4.2"
    queue = factory.LazyFunction(SchedulingQueue.default)
    resource_class = factory.LazyFunction(
        lambda: (
            ResourceClass.objects.default()
            or ResourceClassFactory(id="small", is_default=True)
        )
    )


class WorkerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Worker

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.LazyAttribute(
        lambda w: w.workspace.name if w.workspace else "external"
    )
    owner = factory.LazyAttribute(lambda w: w.workspace.owner)
    project = factory.LazyAttribute(
        lambda w: w.workspace.project if w.workspace else None
    )
    backend = "local"
    status = "ready"
    resource_class = factory.LazyAttribute(lambda w: w.workspace.resource_class)
    resource_snapshot = factory.LazyAttribute(lambda w: w.resource_class.snapshot())
    status_changed_at = factory.LazyFunction(timezone.now)


@dataclass
class Personas:
    admin: User
    manager: User
    alice: User
    bob: User
    operator: User


def make_personas() -> Personas:
    """The demo's personas (workspaces/demo.py), same names and permissions."""
    admin = UserFactory(username="admin", is_staff=True, is_superuser=True)
    manager = UserFactory(username="manager")
    manager.user_permissions.add(Permission.objects.get(codename="manage_ide"))
    operator = UserFactory(username="operator", is_staff=True)
    operator.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="workers", codename="view_worker"
        )
    )
    return Personas(
        operator=operator,
        admin=admin,
        manager=manager,
        alice=UserFactory(username="alice", first_name="Alice"),
        bob=UserFactory(username="bob", first_name="Bob"),
    )
