"""Display helpers for the workspace pages."""

from django import template
from django.urls import reverse

from workers import states
from workspaces.explain import troubleshooting_anchor

register = template.Library()


@register.filter
def user_state(worker_status: str) -> str:
    """A worker status in the words the user sees ("ready" -> "Running")."""
    return states.USER_STATE.get(worker_status or None, worker_status)


@register.filter
def troubleshooting_url(error_code: str) -> str:
    """The troubleshooting entry for a worker's error code ("" if none)."""
    anchor = troubleshooting_anchor(error_code or "")
    return f"{reverse('troubleshooting')}#{anchor}" if anchor else ""
