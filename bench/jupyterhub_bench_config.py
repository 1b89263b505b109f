"""JupyterHub configuration for ``bench/console_vs_jupyterhub.py``.

Loaded by ``jupyterhub -f`` inside its own virtualenv (never by the
product). Everything comes from BENCH_JH_* variables set by the bench.

The setup favours JupyterHub: no proxy (a Proxy that routes nothing), a
spawner that never starts a process, no spawner polling and no periodic
activity sweep, so its API answers with nothing else running in the hub.
``/hub/bench-queries`` reports how many SQL statements the hub has run, so
the bench can print queries per request as it does for the console.
"""

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jupyterhub.proxy import Proxy
from jupyterhub.spawner import Spawner
from sqlalchemy import event
from sqlalchemy.engine import Engine
from tornado import web
from traitlets import Bool

c = get_config()  # noqa: F821 (provided by JupyterHub's config loader)
STUB_PORT = int(os.environ["BENCH_JH_STUB_PORT"])
QUERIES = [0]


@event.listens_for(Engine, "before_cursor_execute")
def _count(*_args) -> None:
    QUERIES[0] += 1


class QueryCount(web.RequestHandler):
    def get(self) -> None:
        self.write({"queries": QUERIES[0]})


class NoProxy(Proxy):
    """Routes nothing: the bench talks to the hub's own port."""

    should_start = Bool(False)

    async def add_route(self, routespec, target, data) -> None:
        pass

    async def delete_route(self, routespec) -> None:
        pass

    async def get_all_routes(self) -> dict:
        return {}


class BenchSpawner(Spawner):
    """A running server is a database row pointing at the stub below."""

    async def start(self):
        return ("127.0.0.1", STUB_PORT)

    async def stop(self, now=False) -> None:
        pass

    async def poll(self):
        return None if self.server else 0


class _Stub(BaseHTTPRequestHandler):
    """Answers the hub's startup check of each running server."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


_stub = ThreadingHTTPServer(("127.0.0.1", STUB_PORT), _Stub)
threading.Thread(target=_stub.serve_forever, daemon=True).start()

c.JupyterHub.db_url = os.environ["BENCH_JH_DB_URL"]
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{os.environ['BENCH_JH_PORT']}"
c.JupyterHub.bind_url = f"http://127.0.0.1:{os.environ['BENCH_JH_PUBLIC_PORT']}"
c.JupyterHub.proxy_class = NoProxy
c.JupyterHub.spawner_class = BenchSpawner
c.JupyterHub.authenticator_class = "null"
c.Authenticator.allow_all = True
c.JupyterHub.cleanup_servers = False
c.JupyterHub.last_activity_interval = 24 * 3600
c.Spawner.poll_interval = 0
c.JupyterHub.cookie_secret_file = os.environ["BENCH_JH_COOKIE_SECRET_FILE"]
c.JupyterHub.pid_file = os.environ["BENCH_JH_PID_FILE"]
c.JupyterHub.services = [{"name": "bench", "api_token": os.environ["BENCH_JH_TOKEN"]}]
c.JupyterHub.load_roles = [{"name": "admin", "services": ["bench"]}]
c.JupyterHub.extra_handlers = [(r"/bench-queries", QueryCount)]
