"""Live-update group names and payloads. Payloads carry ids only: each
consumer re-reads the row as its connected user and renders it itself."""

from typing import TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

STAFF_GROUP = "workers.staff"


def user_group(user_id) -> str:
    return f"workers.user.{user_id}"


class WorkerChanged(TypedDict):
    type: str  # "worker.changed": the consumer method worker_changed
    worker_id: str


def publish_worker_changed(worker_id, owner_id) -> None:
    """Tell open pages that a worker changed. Best effort: a down channel
    layer must never fail the state change that already committed."""
    layer = get_channel_layer()
    if layer is None:
        return
    message: WorkerChanged = {"type": "worker.changed", "worker_id": str(worker_id)}
    send = async_to_sync(layer.group_send)
    for group in (STAFF_GROUP, user_group(owner_id)):
        try:
            send(group, message)
        except Exception:  # noqa: BLE001 - live updates are advisory
            import logging

            logging.getLogger(__name__).warning(
                "live update to %s failed", group, exc_info=True
            )
