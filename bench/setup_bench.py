"""Benchmark: the workspace setup step for a repository with 20 small
requirements, cold cache vs warm cache vs no change (hash hit), p50 of 5.

    .venv/bin/python bench/setup_bench.py [--runs 5 --packages 20]

Runs ``workers/setup/workspace_setup.py`` as the local backend does (a
subprocess, no IDE exec'd) against a git repository made here and a simple
index of tiny wheels served on 127.0.0.1:

- ``cold``: a new workspace and an empty dependency cache (clone, venv,
  download and install);
- ``warm``: a new workspace, the cache of a previous run (clone, venv,
  install from the cache);
- ``hash hit``: the same workspace again with unchanged requirements
  (fetch, hash compare, nothing installed).

The issue's goals: a hash hit adds <= 1 s to a start, and warm is >= 5x
faster than cold. Numbers only, no assertion on speed. No database.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.setup_support import PackageIndex, Remote, make_wheel  # noqa: E402
from workers.backends import setup_step  # noqa: E402


def run_setup(config: dict, workspace: Path, scratch: Path) -> float:
    path = scratch / "setup.json"
    path.write_text(json.dumps(config))
    workspace.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(setup_step.SCRIPT), "--config", str(path)]
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603
        [*argv, "--workspace", str(workspace)],
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"setup failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--packages", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="setup-bench-") as tmp:
        root = Path(tmp)
        names = [f"pkg{i:02d}" for i in range(args.packages)]
        wheels = root / "wheels"
        wheels.mkdir()
        for name in names:
            make_wheel(wheels, name)
        remote = Remote(root)
        remote.commit({"requirements.txt": "\n".join(names) + "\n"})
        with PackageIndex(wheels) as index:
            times = measure(root, remote, index, args.runs)
    for label, values in times.items():
        print(
            f"{label:9} p50 {statistics.median(values):6.2f} s   "
            f"min {min(values):6.2f} s   max {max(values):6.2f} s   (n={len(values)})"
        )
    cold, warm = statistics.median(times["cold"]), statistics.median(times["warm"])
    print(f"warm is {cold / warm:.1f}x faster than cold (goal >= 5x)")
    print(f"hash hit p50 {statistics.median(times['hash hit']):.2f} s (goal <= 1 s)")


def measure(root: Path, remote: Remote, index: PackageIndex, runs: int) -> dict:
    base = {
        "repository_url": remote.url,
        "kernel_name": "bench",
        "fetch_policy": "online",
        "index_url": index.url,
        "kernel_packages": [],
        "allow_local_repository": True,
        "timeout_seconds": 300,
    }
    times: dict[str, list[float]] = {"cold": [], "warm": [], "hash hit": []}
    warm_cache = root / "warm-cache"
    run_setup({**base, "cache_dir": str(warm_cache)}, root / "prime", root)
    for i in range(runs):
        cold = {**base, "cache_dir": str(root / f"cold-cache-{i}")}
        times["cold"].append(run_setup(cold, root / f"cold-{i}", root))
        warm = {**base, "cache_dir": str(warm_cache)}
        times["warm"].append(run_setup(warm, root / f"warm-{i}", root))
        times["hash hit"].append(run_setup(warm, root / f"warm-{i}", root))
    return times


if __name__ == "__main__":
    main()
