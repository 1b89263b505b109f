"""Benchmark: probe 1,000 runtime endpoints on loopback.

800 answer at once like Jupyter Server's /api/status, 100 answer after
SLOW_SECONDS, 100 accept the connection and never answer (black-holed). The
endpoints run in a separate process (one listening port each), so the probe
gets the CPU it would have in production.

Sequential time is *extrapolated*: the first SAMPLE endpoints (the same 10%
black-holed / 10% slow mix) are probed one at a time, and that wall time is
scaled to the full count. The sum of latencies measured inside the concurrent
sweep is printed too, but it is inflated by queueing on a busy event loop.

    .venv/bin/python bench/probe_bench.py [--endpoints 1000] [--timeout 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers.probe import Health, ProbeTarget, probe_many  # noqa: E402

SLOW_SECONDS = 1.0
SAMPLE = 20
BODY = json.dumps(
    {"connections": 0, "kernels": 0, "last_activity": "2026-01-01T00:00:00Z"}
).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(BODY)
) + BODY


def kind_of(index: int) -> str:
    return {0: "blackhole", 1: "slow"}.get(index % 10, "fast")


async def serve(count: int) -> None:
    """Endpoint process: open ``count`` ports, print them, serve forever."""
    holes: list[asyncio.StreamWriter] = []

    def handler(kind: str):
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            await reader.readuntil(b"\r\n\r\n")
            if kind == "blackhole":
                holes.append(writer)  # keep it open, never answer
                return
            if kind == "slow":
                await asyncio.sleep(SLOW_SECONDS)
            writer.write(RESPONSE)
            await writer.drain()
            writer.close()

        return handle

    ports = []
    for index in range(count):
        server = await asyncio.start_server(handler(kind_of(index)), "127.0.0.1", 0)
        ports.append(server.sockets[0].getsockname()[1])
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_fd_limit()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(args.endpoints)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ports = json.loads(server.stdout.readline())
        run(ports, args.timeout, args.concurrency)
    finally:
        server.terminate()
        server.wait()


def run(ports: list[int], timeout: float, concurrency: int) -> None:
    targets = [
        ProbeTarget(f"http://127.0.0.1:{p}/w/ws{i}/", token="t" * 32)
        for i, p in enumerate(ports)
    ]
    started = time.perf_counter()
    results = asyncio.run(probe_many(targets, timeout=timeout, concurrency=concurrency))
    wall = time.perf_counter() - started
    in_sweep = sum(r.latency_seconds for r in results)
    sequential = sequential_estimate(targets, timeout)
    counts = {h.value: sum(r.health is h for r in results) for h in Health}
    print(f"endpoints: {len(targets)} (10% black-holed, 10% slow {SLOW_SECONDS:g} s)")
    print(f"results: {counts}")
    print(
        f"concurrent wall time: {wall:.2f} s (timeout {timeout:g} s, "
        f"concurrency {concurrency})"
    )
    print(
        f"sequential, {SAMPLE} endpoints run one at a time and scaled: "
        f"{sequential:.1f} s (sum of in-sweep latencies: {in_sweep:.1f} s)"
    )
    print(
        f"speed-up: {sequential / wall:.0f}x; budget 3 s: "
        f"{'OK' if wall <= 3.0 else 'EXCEEDED'}"
    )


def sequential_estimate(targets: list[ProbeTarget], timeout: float) -> float:
    async def one_by_one() -> None:
        for target in targets[:SAMPLE]:
            await probe_many([target], timeout=timeout, concurrency=1)

    started = time.perf_counter()
    asyncio.run(one_by_one())
    return (time.perf_counter() - started) * len(targets) / SAMPLE


if __name__ == "__main__":
    main()
