"""Benchmark: API requests by verb for concurrent starts on the kubernetes
backend, per-worker polling against the shared watch.

    .venv/bin/python bench/kube_watch_bench.py [--starts 1000 --threads 200]

The real ``kubernetes`` client against the FakeKubeAPI of the tests (schema
checks off: this counts requests, it does not test manifests). Each start
is what ``start_worker`` does with the backend: launch, then observe every
``--poll`` seconds until the pod is running; a "kubelet" thread marks each
pod Running ``--ready-after`` seconds after it was created. Two rounds:

- ``polling``: the backend without the watch (a GET of the pod and a LIST
  of its events per observe);
- ``watch``: one shared list + watch of pods and of events per process.

Prints requests by verb (WATCH is a long-lived GET ?watch=1) and the wall
time of each round. Numbers only, no assertion.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.backends.conftest import kube_backend, make_spec  # noqa: E402
from tests.backends.fake_kube import FakeKubeAPI  # noqa: E402
from workers.backends.base import Phase  # noqa: E402


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
    verbs = Counter(_verb(method, path) for method, path in list(api.requests))
    stop.set()
    backend.close()
    api.stop()
    print(
        f"{name:8} {args.starts} starts in {elapsed:6.1f} s: "
        + ", ".join(f"{verb} {count}" for verb, count in sorted(verbs.items()))
    )


def _verb(method: str, path: str) -> str:
    if method == "GET":
        last = path.rstrip("/").rsplit("/", 2)
        kinds = ("pods", "events", "services", "secrets", "resourceclaims")
        return f"LIST {last[-1]}" if last[-1] in kinds else "GET one"
    if method == "WATCH":
        return f"WATCH {path.rsplit('/', 1)[-1]}"
    return method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--ready-after", type=float, default=2.0)
    args = parser.parse_args()
    run_round("polling", args, watch=False)
    run_round("watch", args, watch=True)


if __name__ == "__main__":
    main()
