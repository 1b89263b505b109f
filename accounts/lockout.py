"""What a locked-out login sees: the login page with the reason and the
wait, answered 429 (django-axes' ``AXES_LOCKOUT_CALLABLE``).

Axes' own answer is a bare text page; people need the form back, told why
and for how long.
"""

import math

from axes.helpers import get_cool_off
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

TOO_MANY_REQUESTS = 429


def login_locked_out(
    request: HttpRequest, original_response=None, credentials=None
) -> HttpResponse:
    """Render the login page refusing this username from this address.

    Called by ``AxesMiddleware`` after the failed attempt that caused or hit
    the lock; that attempt restarted the cool-off, so the whole cool-off is
    what is left. Nothing here authenticates again.
    """
    username = request.POST.get("username", "")
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next") or request.GET.get("next", ""),
        "lockout_message": lockout_message(request),
    }
    return render(request, "registration/login.html", context, status=TOO_MANY_REQUESTS)


def lockout_message(request: HttpRequest) -> str:
    cool_off = get_cool_off(request)
    minutes = max(1, math.ceil(cool_off.total_seconds() / 60)) if cool_off else 0
    wait = f"try again in {minutes} minute{'s' if minutes != 1 else ''}"
    if not minutes:
        wait = "ask an administrator to unlock it"
    return f"Too many failed logins for this account from your address; {wait}."
