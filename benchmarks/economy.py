"""Benchmark the economy: wall time of every shipped scenario on the shipped attribution run.

Usage::

    .venv/bin/python benchmarks/economy.py            # all scenarios, baseline CLI timed 3 times
    .venv/bin/python benchmarks/economy.py --repeats 1

Times ``royaltysim run scenarios/baseline.yaml`` end to end as a user runs it (a fresh process:
Python start-up, imports, world, simulation, parquet, report), then each scenario through the Python
API split into simulation and report. Writes the ``## Economy`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import record  # noqa: E402


def _cli_seconds(scenario: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).with_name("royaltysim")), "run", str(scenario), "--out", str(out)],
        check=True, cwd=REPO, capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed CLI runs of the baseline")
    args = parser.parse_args()

    import royaltysim
    from royaltysim.report import write_report

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        baseline = REPO / "scenarios" / "baseline.yaml"
        cli = [_cli_seconds(baseline, Path(tmp) / f"cli{i}") for i in range(args.repeats)]
        for path in sorted((REPO / "scenarios").glob("*.yaml")):
            results = royaltysim.run(path)
            start = time.perf_counter()
            write_report(results, Path(tmp) / path.stem)
            report_s = time.perf_counter() - start
            sc = results.scenario
            rows.append(
                f"| {path.name} | {sc.source.kind} | {results.creators['creator'].nunique():,} | {sc.consumers.n:,} "
                f"| {len(sc.schemes)} | {sc.steps} | {results.runtime_s:.1f} | {report_s:.1f} |"
            )
            print(rows[-1], flush=True)

    body = "\n".join(
        [
            f"`nproc` = {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}, "
            f"`python -V` = {sys.version.split()[0]}; machine shared with other work while measured "
            f"(1-minute load average {os.getloadavg()[0]:.1f} at the end).",
            "",
            f"Baseline end to end (`royaltysim run scenarios/baseline.yaml`, fresh process incl. imports and "
            f"report), {len(cli)} run(s): median **{statistics.median(cli):.1f} s** "
            f"(min {min(cli):.1f}, max {max(cli):.1f}); target: under 60 s.",
            "",
            "Per scenario through the Python API (simulation = world + every scheme x month; report = figures + HTML):",
            "",
            "| scenario | source | creators | listeners | schemes | months | simulation s | report s |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "Reproduce: `.venv/bin/python benchmarks/economy.py`.",
        ]
    )
    record("Economy", body)
    print(body)


if __name__ == "__main__":
    main()
