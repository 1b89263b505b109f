"""ASGI entry point: ``/w/`` through the workspace proxy, other HTTP through
Django, WebSockets through Channels.

Sockets pass the allowed-hosts origin check and the session auth middleware;
each consumer then decides what the connected user may see.
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from proxy.asgi import WorkspaceProxy  # noqa: E402

# Everything imported so far lives for the life of the process; moving it out
# of the collector's view cuts full-GC pauses that showed up as the p95 tail
# of live updates (bench/ws_latency_bench.py).
gc.freeze()

# /w/<workspace-id>/… (HTTP and WebSocket) goes to the workspace proxy
# before Django or Channels see it; the proxy hands back to Django the
# requests it does not forward, for their friendly pages.
application = WorkspaceProxy(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    ),
    pages=django_asgi_app,
)
