"""``{% path "name" %}``: ``{% url "name" %}`` for a URL without arguments,
reversed once per process and script prefix. The console page reversed a
dozen such names per request (the navigation, its own address, the admin
links), about half a millisecond of its rendering."""

from functools import lru_cache

from django import template
from django.urls import get_script_prefix, reverse

register = template.Library()


@register.simple_tag
def path(name: str) -> str:
    return _reversed(name, get_script_prefix())


@lru_cache(maxsize=256)
def _reversed(name: str, prefix: str) -> str:
    return reverse(name)  # reverse() itself prepends the current prefix
