"""ASGI entry point: ``/w/`` through the workspace proxy, other HTTP through
Django, WebSockets through Channels.

Sockets pass the allowed-hosts origin check and the session auth middleware;
each consumer then decides what the connected user may see.
"""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from config.handlers import SyncChainASGIHandler  # noqa: E402

# Django's HTTP requests, as django.core.asgi.get_asgi_application() would
# serve them, but with the middleware chain in one thread (see there).
django_asgi_app = SyncChainASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from ops.proxy_traffic import ProxyTraffic  # noqa: E402
from proxy.asgi import WorkspaceProxy  # noqa: E402

# Everything imported so far lives for the life of the process; moving it out
# of the collector's view cuts full-GC pauses that showed up as the p95 tail
# of live updates (bench/ws_latency_bench.py).
gc.freeze()
# A change fanned out to 1,000 live sockets briefly holds tens of thousands
# of young objects; at the default 700 allocations the young generation was
# collected dozens of times per change and promoted most of it, so the older
# generations' collections ran too: about 40 ms of CPU per change and
# pauses of up to half a second. Collecting every 20,000 allocations leaves
# that burst to reference counting (bench/ws_latency_bench.py).
gc.set_threshold(20_000, 10, 10)

# /w/<workspace-id>/… (HTTP and WebSocket) goes to the workspace proxy
# before Django or Channels see it; the proxy hands back to Django the
# requests it does not forward, for their friendly pages. ProxyTraffic
# counts that traffic for /metrics.
application = ProxyTraffic(
    WorkspaceProxy(
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
)
