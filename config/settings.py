"""Settings, read from the environment (12-factor).

Unset REDIS_URL means *embedded mode*: an in-memory channel layer and a Celery
worker + beat running as threads of the web process (``manage.py serve``), with
the same task code as production. Set, it means channels-redis and a Redis
broker shared by separate web, worker and beat processes.
"""

from pathlib import Path

import environ
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(
    environ.Env().str("NOTEBOOK_FLEET_VAR_DIR", default=str(BASE_DIR / "var"))
)
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once into var/."""
    if key := env.str("SECRET_KEY", default=""):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(get_random_secret_key())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_filters",
    "django_htmx",
    "template_partials",
    "accounts",
    "resource_classes",
    "workspaces",
    "workers",
    "console",
    # The project package itself: it owns the ``serve`` command.
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions serialise writers, which is what row locks give us
    # on PostgreSQL; WAL lets the embedded worker thread read while web writes.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security: secure by default whenever DEBUG is off ---------------------
SECURE_HTTPS = env.bool("SECURE_HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = SECURE_HTTPS
# Container health checks talk plain HTTP to the process itself.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_HSTS_SECONDS = env.int(
    "SECURE_HSTS_SECONDS", default=31536000 if SECURE_HTTPS else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_HSTS_PRELOAD = SECURE_HTTPS
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("BEHIND_TLS_PROXY", default=False)
    else None
)
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Embedded mode vs Redis --------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED_MODE = not REDIS_URL

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py pools default to 100 connections and then raise; a
            # burst of console sockets (a restart reconnecting every admin)
            # joins groups concurrently, so allow more.
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": env.int(
                            "CHANNEL_LAYER_MAX_CONNECTIONS", default=1000
                        ),
                    }
                ]
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request must fail fast with a clear error when the broker is down, not hang;
# the in-memory transport polls, so poll often.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
    if REDIS_URL
    else {"polling_interval": 0.1}
)
CELERY_BROKER_CONNECTION_TIMEOUT = 2

# --- Notebook runtime policy ---------------------------------------------------
NOTEBOOK_RUNTIME_DEFAULT_BACKEND = env.str(
    "NOTEBOOK_RUNTIME_DEFAULT_BACKEND", default="local"
)
NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER = env.int(
    "NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER", default=3
)
NOTEBOOK_RUNTIME_STALE_STARTING_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_STALE_STARTING_SECONDS", default=900
)
NOTEBOOK_RUNTIME_STALE_BUSY_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_STALE_BUSY_SECONDS", default=7200
)
NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS", default=300
)
NOTEBOOK_RUNTIME_IDLE_TIMEOUT_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_IDLE_TIMEOUT_SECONDS", default=3600
)
NOTEBOOK_RUNTIME_IDLE_WARNING_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_IDLE_WARNING_SECONDS", default=600
)
NOTEBOOK_RUNTIME_KERNEL_CULL_IDLE_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_KERNEL_CULL_IDLE_SECONDS", default=3600
)
NOTEBOOK_RUNTIME_KERNEL_CULL_INTERVAL_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_KERNEL_CULL_INTERVAL_SECONDS", default=300
)
NOTEBOOK_RUNTIME_PROBE_TIMEOUT_SECONDS = env.float(
    "NOTEBOOK_RUNTIME_PROBE_TIMEOUT_SECONDS", default=2.0
)
NOTEBOOK_RUNTIME_MIN_WORKSPACE_STORAGE = env.str(
    "NOTEBOOK_RUNTIME_MIN_WORKSPACE_STORAGE", default="1Gi"
)
NOTEBOOK_RUNTIME_MIN_TEMP_STORAGE = env.str(
    "NOTEBOOK_RUNTIME_MIN_TEMP_STORAGE", default="100Mi"
)
NOTEBOOK_WORKERS_REFRESH_SECONDS = env.int(
    "NOTEBOOK_WORKERS_REFRESH_SECONDS", default=10
)

# Runtime backends; each reads only its own block.
NOTEBOOK_RUNTIME_WORKSPACES_DIR = env.str(
    "NOTEBOOK_RUNTIME_WORKSPACES_DIR", default=str(VAR_DIR / "workspaces")
)
NOTEBOOK_RUNTIME_DOCKER_URL = env.str("NOTEBOOK_RUNTIME_DOCKER_URL", default="")
NOTEBOOK_RUNTIME_DOCKER_NETWORK = env.str("NOTEBOOK_RUNTIME_DOCKER_NETWORK", default="")
# Operator-trusted bind mounts ("host:container:ro") added to every worker
# container; never reachable from a user's launch request.
NOTEBOOK_RUNTIME_DOCKER_EXTRA_BINDS = env.list(
    "NOTEBOOK_RUNTIME_DOCKER_EXTRA_BINDS", default=[]
)
NOTEBOOK_RUNTIME_KUBE_NAMESPACE = env.str(
    "NOTEBOOK_RUNTIME_KUBE_NAMESPACE", default="notebooks"
)
NOTEBOOK_RUNTIME_GATEWAY_URL = env.str("NOTEBOOK_RUNTIME_GATEWAY_URL", default="")
NOTEBOOK_RUNTIME_GATEWAY_TOKEN = env.str("NOTEBOOK_RUNTIME_GATEWAY_TOKEN", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "celery": {"level": "WARNING"},
        "kombu": {"level": "WARNING"},
        "kombu.connection": {"level": "ERROR"},
    },
}

# --- Worker lifecycle (issue 4) -----------------------------------------------
# Effective GPU units per GPU model the platform may hand out at once, as JSON,
# e.g. {"RTX 5090": 8}; a model not listed is not capacity-limited.
NOTEBOOK_RUNTIME_GPU_CAPACITY = env.json("NOTEBOOK_RUNTIME_GPU_CAPACITY", default={})
# A runtime no active worker claims is terminated after this grace period
# (a start may have created it a moment before its row committed).
NOTEBOOK_RUNTIME_ORPHAN_GRACE_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_ORPHAN_GRACE_SECONDS", default=300
)
# Stop retries back off exponentially from this base up to the cap.
NOTEBOOK_RUNTIME_STOP_RETRY_BASE_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_STOP_RETRY_BASE_SECONDS", default=30
)
NOTEBOOK_RUNTIME_STOP_RETRY_MAX_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_STOP_RETRY_MAX_SECONDS", default=1800
)
# How often start_worker polls the backend and the probe while starting.
NOTEBOOK_RUNTIME_START_POLL_SECONDS = env.float(
    "NOTEBOOK_RUNTIME_START_POLL_SECONDS", default=2.0
)
# Beat intervals (seconds) of the periodic lifecycle tasks.
NOTEBOOK_RUNTIME_RECONCILE_INTERVAL_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_RECONCILE_INTERVAL_SECONDS", default=60
)
NOTEBOOK_RUNTIME_PROBE_INTERVAL_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_PROBE_INTERVAL_SECONDS", default=30
)
NOTEBOOK_RUNTIME_REAP_INTERVAL_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_REAP_INTERVAL_SECONDS", default=60
)
