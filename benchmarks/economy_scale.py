"""How the economy's cost grows with consumers and creators.

    python benchmarks/economy_scale.py [--steps 12] [--sizes 1000x100,10000x100,...] [--full]

Each size runs in its own subprocess (so peak memory is that run's alone) on a `fitted` population of
the shipped default attribution run, with one scheme arm (causal AI pool, pro-rata human pool). It
reports world-building time, seconds per simulated month, months per second and peak RSS, the
log-log slope of cost against consumers, and, with `--full`, the headline target: 100k consumers x
1k creators x 120 months end to end. Results go to benchmarks/RESULTS.md.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

DEFAULT_SIZES = ["1000x100", "10000x100", "100000x100", "1000x1000", "10000x1000", "100000x1000"]


def scenario(consumers: int, creators: int, steps: int) -> dict:
    return {
        "question": "benchmark",
        "seed": 0,
        "steps": steps,
        "source": {"kind": "fitted", "run": str(ROOT / "runs" / "default"), "n_creators": creators},
        "consumers": {"n": consumers},
        "schemes": [{"label": "causal", "human": {"name": "pro_rata"}, "ai": {"name": "causal"}}],
    }


def one(consumers: int, creators: int, steps: int) -> dict:
    """Run one size in this process and return its timings."""
    from royaltysim.config import validate_scenario
    from royaltysim.model import RoyaltyModel, build_world

    sc = validate_scenario(scenario(consumers, creators, steps), source="benchmark")
    t0 = time.perf_counter()
    world = build_world(sc, sc.seed)
    model = RoyaltyModel(sc, sc.schemes[0], seed=sc.seed, world=world)
    t1 = time.perf_counter()
    for _ in range(steps):
        model.step()
    t2 = time.perf_counter()
    return {
        "consumers": consumers,
        "creators": creators,
        "steps": steps,
        "build_s": t1 - t0,
        "step_s": (t2 - t1) / steps,
        "steps_per_s": steps / (t2 - t1),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(size: str, steps: int) -> dict:
    consumers, creators = (int(x) for x in size.split("x"))
    out = subprocess.run(
        [sys.executable, __file__, "--one", str(consumers), str(creators), str(steps)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=12, help="months per size (default 12)")
    ap.add_argument("--sizes", default=",".join(DEFAULT_SIZES), help="CONSUMERSxCREATORS,...")
    ap.add_argument("--full", action="store_true", help="also run 100k x 1k x 120 months end to end")
    ap.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    from results import record

    rows = []
    for size in args.sizes.split(","):
        r = measure(size, args.steps)
        rows.append(r)
        print(f"{r['consumers']:>7} consumers x {r['creators']:>5} creators: {r['step_s'] * 1000:8.1f} ms/month, "
              f"build {r['build_s']:.1f} s, peak {r['peak_mb']:.0f} MB", flush=True)
    lines = ["| consumers | creators | build (s) | ms per month | months/s | peak RSS (MB) |", "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['consumers']:,} | {r['creators']:,} | {r['build_s']:.1f} | {r['step_s'] * 1000:.1f} | "
                     f"{r['steps_per_s']:.2f} | {r['peak_mb']:.0f} |")
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    # the benchmark keeps one core busy itself: a load above that means other work shared the machine
    busy = "other jobs shared the cores" if load > 1.5 else "the benchmark's own process only"
    notes = [f"\n{args.steps} months per size, one arm (causal AI pool), fitted population of runs/default; "
             f"1-minute load average {load:.2f} at the end on {cores} cores ({busy})."]
    for creators in sorted({r["creators"] for r in rows}):
        sub = [r for r in rows if r["creators"] == creators]
        if len(sub) >= 2:
            slope = np.polyfit(np.log([r["consumers"] for r in sub]), np.log([r["step_s"] for r in sub]), 1)[0]
            notes.append(f"- cost per month grows as consumers^{slope:.2f} at {creators:,} creators (1.00 = linear)")
    if args.full:
        t0 = time.perf_counter()
        full = measure("100000x1000", 120)
        wall = time.perf_counter() - t0
        notes.append(f"- **100,000 consumers x 1,000 creators x 120 months: {wall:.0f} s end to end** "
                     f"(build {full['build_s']:.0f} s, {full['step_s']:.2f} s/month, peak {full['peak_mb']:.0f} MB)")
        print(notes[-1])
    body = "\n".join(lines) + "\n" + "\n".join(notes)
    print(body)
    record("Economy scale (vectorised hot path)", body)


if __name__ == "__main__":
    main()
