"""Create or update the PriorityClass of every scheduling queue.

Run at each deploy (the migrate Job of deploy/kubernetes runs it) and after
adding or changing a queue: the API server refuses a pod whose
PriorityClass does not exist, which the kubernetes backend reports as
``priority_class_missing``.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from workers.backends.base import BackendError
from workers.backends.registry import get_backend
from workspaces.models import SchedulingQueue


class Command(BaseCommand):
    help = "Create or update notebook-fleet-<queue> PriorityClasses from the queues."

    def handle(self, *args, **options) -> None:
        queues = list(SchedulingQueue.objects.values("name", "priority", "preemptible"))
        try:
            names = get_backend("kubernetes").priority_classes_sync(queues)
        except BackendError as exc:
            raise CommandError(exc.message) from exc
        for name in names:
            self.stdout.write(f"PriorityClass {name} up to date")
