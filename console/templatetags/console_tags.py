"""The console template's tags: the row partial, rendered by
``console.rows`` (see there for why in Python), and the filter form, kept
per set of filter values."""

from django import template
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import get_language

from console.rows import render_row, render_rows

register = template.Library()
# The fields the filter form shows; ``before`` (the page) is not among them.
FORM_FIELDS = ("status", "backend", "project", "user", "limit", "terminal", "runtime")
MAX_FORMS = 256
_forms: dict[tuple, str] = {}


@register.simple_tag
def console_row(worker, oob=False) -> SafeString:
    return SafeString(render_row(worker, oob=bool(oob)))


@register.simple_tag
def console_rows(rows) -> SafeString:
    return SafeString(render_rows(rows))


@register.simple_tag
def filter_form(form) -> SafeString:
    """The ``filters`` partial for ``form``.

    Its HTML depends only on the submitted filter values (the errors next
    to fields derive from them, and it has no token or per-user part), and
    Django renders each widget through a template of its own: a third of
    the page's rendering. So it is rendered once per value set and kept,
    at most ``MAX_FORMS`` of them per process.
    """
    key = (get_language(), *((n, tuple(form.data.getlist(n))) for n in FORM_FIELDS))
    html = _forms.get(key)
    if html is None:
        html = render_to_string("console/console.html#filters", {"form": form})
        if settings.DEBUG:  # templates change under a development server
            return SafeString(html)
        if len(_forms) >= MAX_FORMS:
            _forms.clear()
        _forms[key] = html
    return SafeString(html)
