"""Benchmark: the Notebook Workers console against JupyterHub's users API,
side by side over HTTP on loopback, at 1k, 10k and 100k workers.

    .venv/bin/python bench/console_vs_jupyterhub.py [--sizes 1000 10000 100000]
        [--rounds 100] [--db-prefix bench_cvj_] [--fresh]

One scratch PostgreSQL database per system and size
(``<prefix>ours_<size>``, ``<prefix>jupyterhub_<size>`` on ``--pg``), filled
once and kept for later runs (``--fresh`` drops them first). JupyterHub is installed, pinned,
into ``var/jhvenv`` (never imported by the product) and configured by
``bench/jupyterhub_bench_config.py``: no proxy, a spawner that starts
nothing, one user per worker, every tenth user with a running server. Its
users are inserted with SQL, as its REST API would take hours at 100k. Ours
is grown with ``manage.py seed_load`` and served with ``manage.py serve``
(DEBUG off, plain HTTP, no in-process task worker).

Each size restarts both servers (their startup time and memory are
printed), then runs ``--rounds`` rounds; a round sends every case once, in
a new random order each round (seeded by the size), each client on one keep-alive connection with
``Accept-Encoding: gzip``. Printed per case: p50/p95 in ms from request to
last byte, the body before and on the wire, SQL statements per request
(ours: ``X-Query-Count``; JupyterHub: its statement counter before and
after) and the ratio of the case's p50 to JupyterHub's users-list p50. Not
a test: figures only.
"""

import argparse
import gzip
import http.client
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from urllib.parse import urlparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench-console-vs-jupyterhub"
JH_VENV = ROOT / "var" / "jhvenv"
JH_VERSION = "6.1.1"
JH_REQUIREMENTS = [f"jupyterhub=={JH_VERSION}", "psycopg[binary]==3.3.9"]
JH_CONFIG = ROOT / "bench" / "jupyterhub_bench_config.py"
OURS_PORT, JH_PORT, JH_PUBLIC_PORT, JH_STUB_PORT = 18711, 18712, 18713, 18714
CONSOLE = "/admin/notebook-workers/"
BASELINE = "jh users"  # the goal compares every line of ours with this one


@dataclass
class Case:
    system: str  # "ours" or "jh"
    name: str
    path: str
    headers: dict = field(default_factory=dict)
    times: list[float] = field(default_factory=list)
    body: int = 0
    wire: int = 0
    queries: int | None = None


def main() -> None:
    args = parse_args()
    sizes = sorted(args.sizes)
    VAR.mkdir(parents=True, exist_ok=True)
    ensure_jupyterhub()
    reports = []
    for size in sizes:
        ours_db = f"{args.pg}/{args.db_prefix}ours_{size}"
        jh_db = f"{args.pg}/{args.db_prefix}jupyterhub_{size}"
        for url in (ours_db, jh_db):
            if args.fresh:
                drop_database(url)
            create_database(url)
        ours, jh = Ours(ours_db), JupyterHub(jh_db)
        if ours.size() > size or jh.size() > size:
            sys.exit(f"{ours_db} or {jh_db} holds more than {size:,}: use --fresh.")
        ours.grow_to(size)
        jh.grow_to(size)
        reports.append(run_size(size, ours, jh, args.rounds))
        print(reports[-1], flush=True)
    if len(reports) > 1:
        print("\n".join(["", "=" * 78, *reports]))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db-prefix", default="bench_cvj_")
    parser.add_argument(
        "--fresh", action="store_true", help="drop both scratch databases first"
    )
    return parser.parse_args()


# --- databases -----------------------------------------------------------


def _admin_url(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed._replace(path="/postgres").geturl(), parsed.path.lstrip("/")


def create_database(url: str) -> None:
    admin, name = _admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    admin, name = _admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def vacuum(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# --- the two systems ---------------------------------------------------------


class Server:
    """A server process on loopback, in its own process group."""

    def __init__(self, name: str):
        self.name = name
        self.process: subprocess.Popen | None = None
        self.started_in = 0.0

    def spawn(self, command: list[str], env: dict, ready: str, port: int) -> None:
        log = open(VAR / f"{self.name}.log", "ab")  # noqa: SIM115 (child keeps it)
        start = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            cwd=VAR,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = start + 600
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"{self.name} exited; see {VAR / (self.name + '.log')}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", ready)
                if conn.getresponse().status < 500:
                    self.started_in = time.perf_counter() - start
                    return
            except OSError:
                time.sleep(0.2)
        sys.exit(f"{self.name} did not answer on {port} within 600 s")

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


class Ours(Server):
    def __init__(self, url: str):
        super().__init__("ours")
        self.url = url
        self.env = {
            "DATABASE_URL": url,
            "DEBUG": "0",
            "SECURE_HTTPS": "0",
            "REDIS_URL": "",
            "NOTEBOOK_FLEET_VAR_DIR": str(VAR / "ours-var"),
            "QUERY_COUNT_HEADER": "1",
            "ALLOWED_HOSTS": "127.0.0.1",
        }
        self.manage(["migrate", "--verbosity", "0"])
        self.manage(["collectstatic", "--noinput", "--verbosity", "0"])

    def manage(self, argv: list[str]) -> str:
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *argv],
            env={**os.environ, **self.env},
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            sys.exit(f"manage.py {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def size(self) -> int:
        with psycopg.connect(self.url) as conn:
            return conn.execute("SELECT count(*) FROM workers_worker").fetchone()[0]

    def grow_to(self, size: int) -> None:
        have = self.size()
        if have < size:
            print(f"ours: seeding {size - have:,} workers ...", flush=True)
            self.manage(
                ["seed_load", "--workers", str(size - have), "--seed", str(size)]
            )
            vacuum(self.url)

    def start(self) -> None:
        self.spawn(
            [sys.executable, str(ROOT / "manage.py"), "serve", "--port",
             str(OURS_PORT), "--no-embedded-workers"],
            self.env, "/healthz", OURS_PORT,
        )  # fmt: skip

    def session_cookie(self) -> str:
        """A staff superuser's session, made by Django itself."""
        script = (
            "from django.test import Client; from accounts.models import User\n"
            "u, _ = User.objects.get_or_create(username='bench-admin', defaults="
            "{'is_staff': True, 'is_superuser': True})\n"
            "c = Client(); c.force_login(u); print(c.cookies['sessionid'].value)"
        )
        return self.manage(["shell", "-c", script]).strip().splitlines()[-1]


class JupyterHub(Server):
    def __init__(self, url: str):
        super().__init__("jupyterhub")
        self.url = url
        self.token = secrets.token_hex(16)
        self.env = {
            "BENCH_JH_DB_URL": url.replace("postgres://", "postgresql+psycopg://"),
            "BENCH_JH_PORT": str(JH_PORT),
            "BENCH_JH_PUBLIC_PORT": str(JH_PUBLIC_PORT),
            "BENCH_JH_STUB_PORT": str(JH_STUB_PORT),
            "BENCH_JH_TOKEN": self.token,
            "BENCH_JH_COOKIE_SECRET_FILE": str(VAR / "jupyterhub_cookie_secret"),
            "BENCH_JH_PID_FILE": str(VAR / "jupyterhub.pid"),
        }

    def start(self) -> None:
        self.spawn(
            [str(JH_VENV / "bin" / "jupyterhub"), "-f", str(JH_CONFIG)],
            self.env, "/hub/api/", JH_PORT,
        )  # fmt: skip

    def size(self) -> int:
        with psycopg.connect(self.url) as conn:
            found = conn.execute("SELECT to_regclass('users')").fetchone()[0]
            if found is None:
                return 0
            return conn.execute("SELECT count(*) FROM users").fetchone()[0]

    def grow_to(self, size: int) -> None:
        """Users ``user-<n>`` up to ``size``, each with a default-server
        spawner row and the 'user' role, as the REST API would leave them;
        every tenth has a server row and ``started``: ``state=active``."""
        with psycopg.connect(self.url) as conn:
            if conn.execute("SELECT to_regclass('roles')").fetchone()[0] is None:
                print("jupyterhub: creating its schema ...", flush=True)
                self.start()  # its first start creates tables and roles
                self.stop()
        have = self.size()
        if have >= size:
            return
        print(f"jupyterhub: inserting {size - have:,} users ...", flush=True)
        with psycopg.connect(self.url) as conn:
            conn.execute(JH_INSERT, {"first": have + 1, "last": size})
        vacuum(self.url)


JH_INSERT = """
WITH n AS (SELECT i, 'user-' || lpad(i::text, 7, '0') AS name
           FROM generate_series(%(first)s::int, %(last)s::int) AS i),
u AS (
  INSERT INTO users (name, admin, created, last_activity, cookie_id, state)
  SELECT name, false, now() - make_interval(secs => i), now(),
         md5(random()::text || i), '{}'
  FROM n RETURNING id, name
),
r AS (
  INSERT INTO user_role_map (user_id, role_id, managed_by_auth)
  SELECT u.id, roles.id, false FROM u, roles WHERE roles.name = 'user'
),
s AS (
  INSERT INTO servers (proto, ip, port, base_url, cookie_name)
  SELECT 'http', '127.0.0.1', %(stub)s, '/user/' || n.name || '/',
         'jupyterhub-user-' || n.name
  FROM n WHERE n.i %% 10 = 0 RETURNING id, base_url
)
INSERT INTO spawners (user_id, server_id, state, name, started, last_activity,
                      user_options)
SELECT u.id, s.id, '{}', '', CASE WHEN s.id IS NULL THEN NULL ELSE now() END,
       now(), '{}'
FROM u LEFT JOIN s ON s.base_url = '/user/' || u.name || '/'
""".replace("%(stub)s", str(JH_STUB_PORT))


def ensure_jupyterhub() -> None:
    """The pinned JupyterHub in its own virtualenv under var/."""
    hub = JH_VENV / "bin" / "jupyterhub"
    if hub.exists():
        found = subprocess.run([str(hub), "--version"], capture_output=True, text=True)
        if found.stdout.strip() == JH_VERSION:
            return
    print(f"installing JupyterHub {JH_VERSION} into {JH_VENV} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(JH_VENV)], check=True)
    pip = [str(JH_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *JH_REQUIREMENTS], check=True)


# --- measuring ----------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection; reconnects if the server closed it."""

    def __init__(self, port: int, headers: dict):
        self.port = port
        self.headers = {"Accept-Encoding": "gzip", **headers}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str, headers: dict) -> tuple[float, int, bytes, dict]:
        for attempt in (1, 2):
            try:
                start = time.perf_counter()
                self.conn.request("GET", path, headers={**self.headers, **headers})
                response = self.conn.getresponse()
                raw = response.read()
                elapsed = (time.perf_counter() - start) * 1000
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port)
                if attempt == 2:
                    raise
        if response.status != 200:
            sys.exit(f"GET {path} on {self.port}: {response.status} {raw[:300]!r}")
        return elapsed, len(raw), raw, dict(response.getheaders())


def body_of(raw: bytes, headers: dict) -> bytes:
    encoding = {k.lower(): v for k, v in headers.items()}.get("content-encoding")
    return gzip.decompress(raw) if encoding == "gzip" else raw


def cases(size: int, second_page: str) -> list[Case]:
    partial = {"HX-Request": "true", "HX-Target": "results"}
    return [
        Case("ours", "page", CONSOLE),
        Case("jh", "jh users", "/hub/api/users?limit=100"),
        Case("ours", "partial", CONSOLE, partial),
        Case("jh", "jh active", "/hub/api/users?state=active&limit=100"),
        Case("ours", "filtered", f"{CONSOLE}?status=ready&backend=docker"),
        Case("jh", "jh offset", f"/hub/api/users?offset={size // 2}&limit=100"),
        Case("ours", "second page", second_page),
    ]


def run_size(size: int, ours: Ours, jh: JupyterHub, rounds: int) -> str:
    try:
        ours.start()
        jh.start()
        ours_client = Client(
            OURS_PORT, {"Cookie": f"sessionid={ours.session_cookie()}"}
        )
        jh_client = Client(
            JH_PORT,
            {
                "Authorization": f"token {jh.token}",
                # The paged form the admin UI asks for: one COUNT per call
                # instead of two (so this favours JupyterHub too).
                "Accept": "application/jupyterhub-pagination+json",
            },
        )
        all_cases = cases(size, older_path(ours_client))
        clients = {"ours": ours_client, "jh": jh_client}
        for case in all_cases:
            measure_once(case, clients[case.system], jh_client)
        for _ in range(5):  # warm both: caches, connections, JIT-less imports
            for case in all_cases:
                clients[case.system].get(case.path, case.headers)
        # A new order every round: a request that always followed the
        # same other one would inherit its after-effects (JupyterHub keeps
        # working after its heavier answers, on the same two cores).
        order = random.Random(size)
        for _ in range(rounds):
            for case in order.sample(all_cases, len(all_cases)):
                elapsed, *_ = clients[case.system].get(case.path, case.headers)
                case.times.append(elapsed)
        memory = {"ours": ours.rss_mib(), "jh": jh.rss_mib()}
    finally:
        ours.stop()
        jh.stop()
    return report(size, all_cases, ours, jh, memory, rounds)


def measure_once(case: Case, client: Client, jh_client: Client) -> None:
    """Body size and SQL statements of one request, outside the timings."""
    if case.system == "jh":
        before = jh_queries(jh_client)
    _, wire, raw, headers = client.get(case.path, case.headers)
    case.wire, case.body = wire, len(body_of(raw, headers))
    if case.system == "ours":
        case.queries = int(headers.get("X-Query-Count", headers.get("x-query-count")))
    else:
        # The counter's own request runs none; subtract nothing.
        case.queries = jh_queries(jh_client) - before


def jh_queries(client: Client) -> int:
    import json

    _, _, raw, headers = client.get("/hub/bench-queries", {})
    return json.loads(body_of(raw, headers))["queries"]


def older_path(client: Client) -> str:
    """The second page of every worker (terminal ones included, as
    JupyterHub's list has every user): the "Older" link a browser follows.
    The default view (active workers) has no second page at 1k."""
    _, _, raw, headers = client.get(f"{CONSOLE}?terminal=on", {})
    html = body_of(raw, headers).decode()
    match = re.search(r'id="older"[^>]* href="\?([^"]+)"', html)
    if not match:
        sys.exit("The console page has no Older link: fewer than 100 workers?")
    return f"{CONSOLE}?{unescape(match.group(1))}"


def report(size, all_cases, ours, jh, memory, rounds) -> str:
    base = statistics.median(next(c for c in all_cases if c.name == BASELINE).times)
    lines = [
        f"\n{size:,} workers, {rounds} rounds (ms; KB before/on the wire; "
        f"ratio = p50 / JupyterHub users-list p50 {base:.1f} ms)",
        f"{'case':<13}{'p50':>8}{'p95':>8}{'KB':>8}{'wire':>7}{'queries':>9}"
        f"{'ratio':>8}",
    ]
    for case in sorted(all_cases, key=lambda c: c.system != "ours"):
        p50 = statistics.median(case.times)
        p95 = statistics.quantiles(case.times, n=20)[-1]
        lines.append(
            f"{case.name:<13}{p50:>8.1f}{p95:>8.1f}{case.body / 1024:>8.1f}"
            f"{case.wire / 1024:>7.1f}{case.queries:>9}{p50 / base:>7.2f}x"
        )
    lines.append(
        f"startup: ours {ours.started_in:.1f} s, JupyterHub {jh.started_in:.1f} s; "
        f"RSS after the run: ours {memory['ours']:.0f} MiB, "
        f"JupyterHub {memory['jh']:.0f} MiB"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
