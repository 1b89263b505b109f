"""Display helpers for the workspace pages."""

from django import template

from workers import states

register = template.Library()


@register.filter
def user_state(worker_status: str) -> str:
    """A worker status in the words the user sees ("ready" -> "Running")."""
    return states.USER_STATE.get(worker_status or None, worker_status)
