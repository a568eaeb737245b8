"""Calibrate the economy's resource estimate (:mod:`royaltysim.resources`) against measured runs.

    python benchmarks/economy_resources.py [--only NAME,...] [--out benchmarks/economy_resources.json]

Each configuration runs in its own subprocess (so its peak RSS is that run's alone) through the same path
as ``royaltysim run``: validate, build the world, simulate every arm, make the tidy tables, write the
report. Configurations vary one size at a time from a small base (listeners, sessions, network edges,
creators x outputs, creator-months), which separates the estimate's terms. Prints, per configuration, the
measured peak RSS and time beside :func:`royaltysim.resources.estimate`'s, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "runs" / "default"


def _scenario(consumers=1000, sessions=30, steps=12, arms=1, network=None, fitted=None, outputs=0) -> dict:
    labels = ["causal", "similarity", "pro-rata"]
    ai = [{"name": "causal"}, {"name": "similarity", "params": {"top_k": 3}}, {"name": "pro_rata"}]
    source = {"kind": "corpus", "run": str(RUN)}
    if fitted:
        source = {"kind": "fitted", "run": str(RUN), "n_creators": fitted, "n_outputs": outputs}
    return {
        "question": "resource calibration",
        "seed": 0,
        "steps": steps,
        "source": source,
        "consumers": {"n": consumers, "sessions": sessions},
        "network": network or {"generator": "barabasi_albert_graph", "params": {"m": 3}},
        "schemes": [{"label": labels[i], "ai": ai[i]} for i in range(arms)],
    }


CONFIGS: dict[str, dict] = {
    "base": _scenario(),
    "users_30k": _scenario(consumers=30_000),
    "users_100k": _scenario(consumers=100_000),
    "sessions_100": _scenario(consumers=30_000, sessions=100),
    "edges_ba30": _scenario(consumers=30_000, network={"generator": "barabasi_albert_graph", "params": {"m": 30}}),
    "edges_gnp": _scenario(consumers=5_000, network={"generator": "fast_gnp_random_graph", "params": {"p": 0.05}}),
    "creators_5k": _scenario(fitted=5_000, outputs=32),
    "cells_5kx1k": _scenario(fitted=5_000, outputs=1_000),
    "months_5k": _scenario(fitted=5_000, outputs=32, steps=48, arms=3),
    # out of sample: several sizes at once, and the generator that visits every pair of listeners
    "mixed": _scenario(consumers=50_000, sessions=50, steps=24, arms=2, fitted=2_000, outputs=500,
                       network={"generator": "watts_strogatz_graph", "params": {"k": 10, "p": 0.1}}),
    "erdos_renyi": _scenario(consumers=6_000, network={"generator": "erdos_renyi_graph", "params": {"p": 0.01}}),
    "dense_gnp": _scenario(consumers=3_000, network={"generator": "fast_gnp_random_graph", "params": {"p": 0.5}}),
    # replicate seeds in worker processes (`seeds`, issue 14): several runs in memory at once
    "seeds_4": {**_scenario(fitted=5_000, outputs=32, steps=24, arms=2), "seeds": 4},
}


def one(name: str, out: Path) -> dict:
    """Run one configuration in this process, the way ``royaltysim run`` does; return its measurements."""
    from royaltysim.config import validate_scenario
    from royaltysim.report import write_report
    from royaltysim.resources import estimate
    from royaltysim.runner import run

    scenario = validate_scenario(CONFIGS[name], source=name)
    guess = estimate(scenario)  # (every seed the scenario names)
    t0 = time.perf_counter()
    results = run(scenario)
    t1 = time.perf_counter()
    results.save(out)
    try:
        write_report(results, out)
    except Exception as exc:  # noqa: BLE001 - the run's cost is still measured; say the report failed
        print(f"report failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    t2 = time.perf_counter()
    return {
        "name": name,
        "peak_mb": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024,
        "run_s": t1 - t0,
        "report_s": t2 - t1,
        "estimate_mb": guess.memory_bytes / 2**20,
        "estimate_s": guess.seconds,
        "sizes": guess.sizes.__dict__,
    }


def _tree_peak(proc: subprocess.Popen) -> float:
    """Largest total RSS (MB) of a process and its children at once, sampled every 20 ms until it ends."""
    import psutil

    peak = 0.0
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            total = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.Error:  # a child ended while being read
            continue
        peak = max(peak, total / 2**20)
        time.sleep(0.02)
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated configuration names (default: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "economy_resources.json")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.folder)))
        return
    import tempfile

    rows = []
    names = args.only.split(",") if args.only else list(CONFIGS)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, __file__, "--one", name, "--folder", str(Path(tmp) / name)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
            tree_mb = _tree_peak(proc)  # seeds run in worker processes: their memory adds up
            stdout, stderr = proc.communicate()
            if proc.returncode:
                print(stderr[-3000:], file=sys.stderr)
                continue
            row = json.loads(stdout.strip().splitlines()[-1])
            row["wall_s"] = time.perf_counter() - t0
            row["tree_peak_mb"] = tree_mb
            rows.append(row)
            print(f"{name:>14}: peak {row['peak_mb']:7.0f} MB, all processes {tree_mb:7.0f} MB (estimate "
                  f"{row['estimate_mb']:7.0f}), run "
                  f"{row['run_s']:6.1f} s + report {row['report_s']:5.1f} s, process {row['wall_s']:6.1f} s "
                  f"(estimate {row['estimate_s']:6.1f} s)", flush=True)
    load = os.getloadavg()[0]
    args.out.write_text(json.dumps({"load_average": load, "rows": rows}, indent=1))
    print(f"1-minute load average at the end: {load:.2f}; written to {args.out}")


if __name__ == "__main__":
    main()
