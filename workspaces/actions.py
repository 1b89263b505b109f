"""The workspace actions of the list and detail pages, mapped onto the
workspace services. The services write and audit; this module names the
actions and turns a refusal into a message for the row."""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages

from workers.services import InvalidTransition, LaunchRefused
from workspaces import services
from workspaces.page_selectors import Row


@dataclass(frozen=True)
class Outcome:
    message: str
    ok: bool = True
    deleted: bool = False

    @property
    def level(self) -> int:
        return messages.SUCCESS if self.ok else messages.ERROR


def _start(row: Row, actor) -> Outcome:
    services.workspace_start(workspace=row.workspace, actor=actor)
    return Outcome(f"{row.workspace.name} is starting.")


def _stop(row: Row, actor) -> Outcome:
    services.workspace_stop(workspace=row.workspace, actor=actor)
    return Outcome(
        f"Stopping {row.workspace.name}; its volumes are kept and you can "
        "start it again."
    )


def _delete(row: Row, actor) -> Outcome:
    services.workspace_delete(workspace=row.workspace, actor=actor)
    return Outcome(f"Deleted {row.workspace.name}; its volumes are kept.", deleted=True)


def _switch_queue(row: Row, actor) -> Outcome:
    worker = services.workspace_switch_to_default_queue(
        workspace=row.workspace, actor=actor
    )
    started = " and started it again" if worker else ""
    return Outcome(f"Moved {row.workspace.name} to the default queue{started}.")


ACTIONS: dict[str, Callable[[Row, object], Outcome]] = {
    "start": _start,
    "stop": _stop,
    "delete": _delete,
    "switch-queue": _switch_queue,
}


def run(name: str, *, row: Row, actor) -> Outcome:
    """Run action ``name`` on ``row``'s workspace as ``actor``; a refused
    start or a stale row answers with the reason instead of an error page."""
    try:
        return ACTIONS[name](row, actor)
    except LaunchRefused as refused:
        return Outcome(refused.message, ok=False)
    except InvalidTransition as exc:
        return Outcome(str(exc), ok=False)
