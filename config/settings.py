"""Settings, read from the environment (12-factor).

Unset REDIS_URL means *embedded mode*: an in-memory channel layer and a Celery
worker + beat running as threads of the web process (``manage.py serve``), with
the same task code as production. Set, it means channels-redis and a Redis
broker shared by separate web, worker and beat processes.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
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
    "axes",
    "csp",
    # django-ninja's templates and vendored Swagger UI for /api/v1/docs.
    "ninja",
    "accounts",
    "resource_classes",
    "workspaces",
    "workers",
    "console",
    "proxy",
    # /metrics, /readyz, request ids, JSON logs (issue 13).
    "ops",
    # The project package itself: it owns the ``serve`` command.
    "config",
]

MIDDLEWARE = [
    # First: the request id is bound before anything logs; times the rest.
    "ops.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.RejectNulBytesMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.headers.ContentSecurityPolicyMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, with the common case read in one statement (accounts.middleware).
    "accounts.middleware.AuthenticationMiddleware",
    "config.headers.NoStoreForSignedInMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: turns a lockout into the login page.
    "axes.middleware.AxesMiddleware",
]
if env.bool("QUERY_COUNT_HEADER", default=False):
    # Benchmarks only: each response says how many SQL statements it ran.
    MIDDLEWARE.insert(0, "config.middleware.QueryCountHeaderMiddleware")

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

# An empty DATABASE_URL means the default too (an unset variable in a
# compose file or a shell export often arrives as "").
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
    )
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
    # 0: under ASGI every request may run its sync code on a different
    # thread, so a persistent connection is not reused but left open until it
    # ages out; 50 concurrent API clients exhausted PostgreSQL's 100 slots
    # (bench/api_bench.py). Celery workers may raise it (CONN_MAX_AGE=60).
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The web process (``manage.py serve``) borrows PostgreSQL connections from a
# pool of at most this many instead: a new connection per request cost 5-10
# ms, more than the console's queries (bench/console_vs_jupyterhub.py); each
# request returns its connection when it ends. A request finding every
# connection busy waits for one. 0 turns the pool off. Only the web process:
# tests and Celery keep their per-thread connections.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=10)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username+address before any password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
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
        "BACKEND": "config.storage.ManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security: secure by default whenever DEBUG is off ---------------------
SECURE_HTTPS = env.bool("SECURE_HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = SECURE_HTTPS
# Container health checks talk plain HTTP to the process itself.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
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
# Django's database sessions, read without the ORM (accounts/sessions.py).
SESSION_ENGINE = "accounts.sessions"
X_FRAME_OPTIONS = "DENY"

# --- Login throttling (django-axes) ------------------------------------------
# A username+address pair is locked after this many failed logins, for the
# cool-off; a failure during the lockout starts the cool-off again, so the
# wait shown on the login page is always the whole cool-off. Other users and
# other addresses are unaffected. Behind a proxy every client has the
# proxy's address, so the lock is then effectively per username.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Throttling needs only the failure records; a row per login would grow forever.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False  # no banner on every process start
AXES_LOCKOUT_CALLABLE = "accounts.lockout.login_locked_out"

# --- Content-Security-Policy (django-csp) and Permissions-Policy --------------
# No inline script or style anywhere and no eval (htmx is configured for it in
# base.html); config.headers adds this host's ws:/wss: origin to connect-src.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Features no page here uses, denied to the page and anything it embeds.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}

# --- Embedded mode vs Redis --------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED_MODE = not REDIS_URL

if REDIS_URL:
    # channels-redis 4.x receives all of a process's socket messages through
    # one BZPOPMIN at a time that blocks up to 5 s in Redis
    # (``RedisChannelLayer.brpop_timeout``). redis-py 8 abandons any read
    # after ``socket_timeout``, also 5 s by default: an idle wait timed out
    # just before Redis answered and killed every idle socket at +5 s. The
    # read timeout must exceed the blocking receive (a test asserts it); it
    # still bounds a read from a Redis that stopped answering. Extra host
    # keys reach redis-py's ``ConnectionPool.from_url`` unchanged.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": 15,
                        "socket_connect_timeout": 5,
                        "socket_keepalive": True,
                        # A pooled connection idle this long is PINGed before
                        # use: one cut by a Redis restart is replaced, not
                        # failed on.
                        "health_check_interval": 30,
                        # Connections are held per command, not per socket
                        # (the shared receive holds one): the pool bounds
                        # commands in flight, i.e. a burst of handshakes.
                        # Past it a handshake is refused (close 1013) and
                        # the page retries.
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
# The longest any task may run (each task's own limit is at most this).
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis hands a message that was delivered but never acked (tasks ack late, so
# a Celery worker killed mid-task leaves its message unacked) to another worker
# after visibility_timeout. Derived, not chosen: it must exceed the longest
# task's hard time limit, or a task still running is delivered twice; the
# margin covers the worker's own shutdown. kombu's default (3600 s) left a lost
# start waiting an hour. A lost start does not wait for it anyway:
# reconcile_workers fails a start past its deadline
# (NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS) and removes its runtime. A task
# waiting for its countdown is held unacked too, so stop_worker leaves retries
# that must wait longer than this to reconcile_workers.
_visibility_margin_seconds = 60  # lower case: not a setting of its own
# A request must fail fast with a clear error when the broker is down, not hang;
# the in-memory transport polls, so poll often.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.2,
        "visibility_timeout": CELERY_TASK_TIME_LIMIT + _visibility_margin_seconds,
    }
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
# The setup step's container (workers/backends/docker_setup.py): its image
# ("" = the workspace's own, whose Python the workspace's venv runs on; an
# override needs git and that same Python at the same path) and the shared
# dependency cache volume, mounted read-write into setup containers only.
NOTEBOOK_RUNTIME_DOCKER_SETUP_IMAGE = env.str(
    "NOTEBOOK_RUNTIME_DOCKER_SETUP_IMAGE", default=""
)
NOTEBOOK_RUNTIME_DOCKER_DEPENDENCY_CACHE_VOLUME = env.str(
    "NOTEBOOK_RUNTIME_DOCKER_DEPENDENCY_CACHE_VOLUME", default="nbf-dependency-cache"
)
NOTEBOOK_RUNTIME_KUBE_NAMESPACE = env.str(
    "NOTEBOOK_RUNTIME_KUBE_NAMESPACE", default="notebooks"
)
# Kubernetes (issue 12). Labels every object with this id, so two control
# planes sharing a namespace never list or reap each other's runtimes.
NOTEBOOK_FLEET_INSTALLATION_ID = env.str(
    "NOTEBOOK_FLEET_INSTALLATION_ID", default="default"
)
# The control plane's namespace (in a pod: its own, read from the service
# account). Runtimes are refused in it; their NetworkPolicy admits ingress
# only from its pods labelled notebook-fleet.io/runtime-access=true.
NOTEBOOK_RUNTIME_KUBE_CONTROL_PLANE_NAMESPACE = env.str(
    "NOTEBOOK_RUNTIME_KUBE_CONTROL_PLANE_NAMESPACE", default="notebook-fleet"
)
# "service" (control plane in the cluster) or "pod-ip".
NOTEBOOK_RUNTIME_KUBE_ENDPOINT_MODE = env.str(
    "NOTEBOOK_RUNTIME_KUBE_ENDPOINT_MODE", default="service"
)
# GPU resource name (a resource class's "GPU resource") -> DRA DeviceClass,
# the driver owning its devices, the attribute domain CEL reads, and the GPU
# nodes' tolerations / node selector. Empty: NVIDIA's DRA driver defaults
# (nvidia.com/gpu -> gpu.nvidia.com, nvidia.com/mig -> mig.nvidia.com, both
# of the gpu.nvidia.com driver). JSON, e.g. {"nvidia.com/gpu":
# {"device_class": "gpu.nvidia.com", "driver": "gpu.nvidia.com",
# "attribute_domain": "gpu.nvidia.com", "tolerations": [...],
# "node_selector": {"nvidia.com/gpu.present": "true"}}}
NOTEBOOK_RUNTIME_KUBE_GPU_PROFILES = env.json(
    "NOTEBOOK_RUNTIME_KUBE_GPU_PROFILES", default={}
)
# hostUsers: false (user namespaces; Kubernetes 1.33+ and a runtime with
# idmap mounts): a root shell is then root only inside its user namespace.
NOTEBOOK_RUNTIME_KUBE_USER_NAMESPACES = env.bool(
    "NOTEBOOK_RUNTIME_KUBE_USER_NAMESPACES", default=False
)
# Access mode of project volume PVCs (shared by a project's workspaces).
NOTEBOOK_RUNTIME_KUBE_VOLUME_ACCESS_MODE = env.str(
    "NOTEBOOK_RUNTIME_KUBE_VOLUME_ACCESS_MODE", default="ReadWriteMany"
)
# Optional PVC (ReadWriteMany, in the runtime namespace): the dependency
# cache of the setup step, mounted read-write into its init container only
# ("" = none: each start downloads afresh).
NOTEBOOK_RUNTIME_KUBE_DEPENDENCY_CACHE_PVC = env.str(
    "NOTEBOOK_RUNTIME_KUBE_DEPENDENCY_CACHE_PVC", default=""
)
# The setup init container's image ("" = the workspace's own; see
# NOTEBOOK_RUNTIME_DOCKER_SETUP_IMAGE for what an override needs).
NOTEBOOK_RUNTIME_KUBE_SETUP_IMAGE = env.str(
    "NOTEBOOK_RUNTIME_KUBE_SETUP_IMAGE", default=""
)
# One shared list + watch of runtime pods and their events per process
# (starts, probes and reconcile read it) instead of a GET per worker per poll.
NOTEBOOK_RUNTIME_KUBE_WATCH = env.bool("NOTEBOOK_RUNTIME_KUBE_WATCH", default=True)
# Workspace setup step (repository checkout + dependencies; workers/setup/).
NOTEBOOK_RUNTIME_DEPENDENCY_CACHE_DIR = env.str(
    "NOTEBOOK_RUNTIME_DEPENDENCY_CACHE_DIR", default=str(VAR_DIR / "dependency-cache")
)
# The index of the "online" fetch policy.
NOTEBOOK_RUNTIME_PACKAGE_INDEX_URL = env.str(
    "NOTEBOOK_RUNTIME_PACKAGE_INDEX_URL", default="https://pypi.org/simple"
)
# Installed into every workspace environment so the IDE can use it as a kernel.
NOTEBOOK_RUNTIME_SETUP_KERNEL_PACKAGES = env.list(
    "NOTEBOOK_RUNTIME_SETUP_KERNEL_PACKAGES", default=["ipykernel"]
)
NOTEBOOK_RUNTIME_SETUP_TIMEOUT_SECONDS = env.int(
    "NOTEBOOK_RUNTIME_SETUP_TIMEOUT_SECONDS", default=240
)
NOTEBOOK_RUNTIME_SETUP_MAX_REPOSITORY_BYTES = env.int(
    "NOTEBOOK_RUNTIME_SETUP_MAX_REPOSITORY_BYTES", default=500 * 1024 * 1024
)
# Admins only (tests, air-gapped demos): lets workspaces name file:/// repos,
# and plain http:// to a loopback host for the setup step.
NOTEBOOK_RUNTIME_SETUP_ALLOW_LOCAL_REPOSITORIES = env.bool(
    "NOTEBOOK_RUNTIME_SETUP_ALLOW_LOCAL_REPOSITORIES", default=False
)
NOTEBOOK_RUNTIME_GATEWAY_URL = env.str("NOTEBOOK_RUNTIME_GATEWAY_URL", default="")
NOTEBOOK_RUNTIME_GATEWAY_TOKEN = env.str("NOTEBOOK_RUNTIME_GATEWAY_TOKEN", default="")

# "plain" (human-readable, the default for `make run`) or "json" (one JSON
# object per line with request_id, user_id and worker_id, for collectors).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "ops.logs.JsonFormatter"},
    },
    # Every record is sanitized and given the bound ids before any format.
    "filters": {
        "context": {"()": "ops.logs.ContextFilter"},
        "sanitize": {"()": "ops.logs.SanitizeFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context", "sanitize"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # celery is not pinned: it follows the configured level (LOG_LEVEL, or a
    # worker's -l), so `celery worker -l info` shows each task received,
    # succeeded and retried. The transport stays quiet below a warning.
    "loggers": {
        "kombu": {"level": "WARNING"},
        "kombu.connection": {"level": "ERROR"},
        # uvicorn's own log config (used when something runs uvicorn without
        # ``log_config=None``) gives these handlers of their own and stops
        # propagation, past our sanitizing filter: always route them to root,
        # at root's level.
        "uvicorn": {"handlers": [], "propagate": True, "level": "NOTSET"},
        "uvicorn.access": {"handlers": [], "propagate": True, "level": "NOTSET"},
        "uvicorn.error": {"handlers": [], "propagate": True, "level": "NOTSET"},
    },
}

# --- The API (/api/v1/) --------------------------------------------------------
# Personal API tokens live at most this many days (the token page's maximum).
NOTEBOOK_API_TOKEN_MAX_DAYS = env.int("NOTEBOOK_API_TOKEN_MAX_DAYS", default=365)

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

# --- Workspace proxy /w/<workspace-id>/ (issue 10) -----------------------------
# The pooled client towards runtimes: "aiohttp" or "httpx" (bench/proxy_bench.py).
NOTEBOOK_PROXY_HTTP_CLIENT = env.str("NOTEBOOK_PROXY_HTTP_CLIENT", default="aiohttp")
# An open socket re-checks its route at least this often (a logout, an
# expired Access server grant); worker changes close it at once.
NOTEBOOK_PROXY_RECHECK_SECONDS = env.float(
    "NOTEBOOK_PROXY_RECHECK_SECONDS", default=30.0
)
# How long an admin's Access server grant to one worker lasts.
NOTEBOOK_PROXY_GRANT_SECONDS = env.int("NOTEBOOK_PROXY_GRANT_SECONDS", default=3600)

# --- Operations: /metrics, /readyz, logs (issue 13) -----------------------------
# Prometheus scrapes /metrics with "Authorization: Bearer <METRICS_TOKEN>";
# empty: only a staff session with "Can view worker" may read it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# A Celery worker keeps the LOGGING handlers (JSON lines) instead of its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"
