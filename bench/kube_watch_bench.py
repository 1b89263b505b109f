"""Benchmark: API requests by verb for concurrent starts and for reconcile
passes on the kubernetes backend, per-worker polling against the shared
watch.

    .venv/bin/python bench/kube_watch_bench.py [--starts 1000 --threads 200]
        [--passes 5 --orphans 10]

The real ``kubernetes`` client against the FakeKubeAPI of the tests (schema
checks off: this counts requests, it does not test manifests). Each start
is what ``start_worker`` does with the backend: launch, then observe every
``--poll`` seconds until the pod is running; a "kubelet" thread marks each
pod Running ``--ready-after`` seconds after it was created. Two rounds:

- ``polling``: the backend without the watch (a GET of the pod and a LIST
  of its events per observe);
- ``watch``: one shared list + watch per kind per process (pods, events,
  services, secrets, networkpolicies, resourceclaims).

Then ``--orphans`` half-finished launches (the pod create fails: a Secret
and a NetworkPolicy are left) and ``--passes`` reconcile passes: what
``workers_reconcile`` asks the backend, one ``list_runtimes`` per pass and a
``terminate`` per leftover it lists (the database's grace period is left
out: every leftover is old enough). Prints requests by verb (WATCH is a
long-lived GET ?watch=1) for the starts and for the passes, and the wall
time. Numbers only, no assertion.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.backends.conftest import kube_backend, make_spec  # noqa: E402
from tests.backends.fake_kube import PATH, FakeKubeAPI  # noqa: E402
from workers.backends.base import BackendError, Phase  # noqa: E402


def kubelet(api: FakeKubeAPI, ready_after: float, stop: threading.Event) -> None:
    """Mark pods Running once they are ``ready_after`` seconds old."""
    born: dict[str, float] = {}
    while not stop.wait(0.05):
        now = time.monotonic()
        with api.lock:
            pending = [
                k[2]
                for k, o in api.objects.items()
                if k[0] == "pods" and o.get("status", {}).get("phase") == "Pending"
            ]
        for name in pending:
            if now - born.setdefault(name, now) >= ready_after:
                api.set_pod_status(
                    name,
                    phase="Running",
                    podIP="127.0.0.1",
                    containerStatuses=[{"name": "runtime", "ready": True}],
                )


def one_start(backend, poll: float) -> None:
    spec = make_spec()
    ref = backend.launch(spec)
    while backend.observe(ref).phase != Phase.RUNNING:
        time.sleep(poll)


def reconcile_passes(api: FakeKubeAPI, backend, args) -> int:
    """Leave ``args.orphans`` half-finished launches, then run the passes;
    returns the leftovers removed."""
    orphans = set()
    for _ in range(args.orphans):
        spec = make_spec()
        api.fail_next("POST", "pods", 500, "etcdserver: request timed out")
        with contextlib.suppress(BackendError):
            backend.launch(spec)
        orphans.add(spec.worker_id)
    if backend.watch is not None:  # the watch delivers them in a moment
        while not orphans <= {r.ref.worker_id for r in backend.list_runtimes()}:
            time.sleep(0.05)
    removed = 0
    for _ in range(args.passes):
        for listed in backend.list_runtimes():
            if listed.phase == Phase.NOT_FOUND:
                backend.terminate(listed.ref)
                removed += 1
    return removed


def run_round(name: str, args, *, watch: bool) -> None:
    api = FakeKubeAPI(schema=False).start()
    stop = threading.Event()
    threading.Thread(
        target=kubelet, args=(api, args.ready_after, stop), daemon=True
    ).start()
    backend = kube_backend(api, watch=watch, request_timeout=30.0)
    api.requests.clear()  # counted from here: the watch's list included
    if watch:
        backend.watch.wait_synced(10)
    started = time.monotonic()
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(lambda _: one_start(backend, args.poll), range(args.starts)))
    elapsed = time.monotonic() - started
    print(f"{name:8} {args.starts} starts in {elapsed:6.1f} s: {_by_verb(api)}")
    api.requests.clear()
    started = time.monotonic()
    removed = reconcile_passes(api, backend, args)
    elapsed = time.monotonic() - started
    print(
        f"{name:8} {args.passes} reconcile passes ({args.orphans} orphans, "
        f"{removed} removed) in {elapsed:6.1f} s: {_by_verb(api)}"
    )
    stop.set()
    backend.close()
    api.stop()


def _by_verb(api: FakeKubeAPI) -> str:
    verbs = Counter(_verb(method, path) for method, path in list(api.requests))
    return ", ".join(f"{verb} {count}" for verb, count in sorted(verbs.items()))


def _verb(method: str, path: str) -> str:
    """ "LIST pods", "GET one pods", "WATCH events", "POST secrets"..."""
    match = PATH.match(path)
    kind = match["plural"] if match else path
    if method == "GET":
        return f"GET one {kind}" if match and match["name"] else f"LIST {kind}"
    return f"{method} {kind}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--ready-after", type=float, default=2.0)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--orphans", type=int, default=10)
    args = parser.parse_args()
    run_round("polling", args, watch=False)
    run_round("watch", args, watch=True)


if __name__ == "__main__":
    main()
