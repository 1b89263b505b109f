"""Settings for the test suite: production settings with plain HTTP and
static files served from the source tree (no collectstatic manifest).

Production defaults themselves are tested by running `check --deploy` in a
subprocess with the documented production environment.
"""

import os

os.environ.setdefault("SECURE_HTTPS", "0")

from config.settings import *  # noqa: E402, F403

STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
