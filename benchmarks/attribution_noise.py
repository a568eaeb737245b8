"""How accurate must attribution be before causal royalties are worth it? The SNR study, recorded in RESULTS.md.

    .venv/bin/python benchmarks/attribution_noise.py [--scenario scenarios/attribution_noise.yaml] [--out out/attribution_noise]

Runs the scenario's sweep over ``source.attribution_snr`` (causal royalties paid on the true contribution
plus noise at each SNR; see ``royaltysim.population.with_attribution_noise``), writes its report, and
records under "Attribution noise" in benchmarks/RESULTS.md: each scheme's final-month AI-pool
misallocation, Gini, creators in the training set and platform margin by SNR (means and 95% CIs over
replicate seeds), the SNR measured for each real attribution method against leave-one-creator-out
(``RUN/evaluation/creator_snr.parquet``, from ``royaltysim attribution evaluate``) and the report's
findings, every number computed in this run. Finished runs in ``--out`` are reused (a sweep resumes).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import record  # noqa: E402

PARAM = "source.attribution_snr"
SHOWN = {"ai_misallocation_month": "AI-pool misallocation (final month)", "gini_income_month": "Gini of the final month's income",
         "opted_in": "creators in training", "platform_margin": "platform margin"}


def _cell(row: pd.Series) -> str:
    digits = 0 if abs(row["mean"]) >= 100 else 3
    return f"{row['mean']:,.{digits}f} [{row['ci_low']:,.{digits}f}, {row['ci_high']:,.{digits}f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "attribution_noise.yaml")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "attribution_noise")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()

    from royaltysim.config import load_scenario
    from royaltysim.sweep import run_sweep
    from royaltysim.sweep_report import measured_snr_markers, write_sweep_report

    scenario = load_scenario(args.scenario)
    if scenario.sweep is None or PARAM not in (scenario.sweep.grid or {}):
        raise SystemExit(f"{args.scenario}: needs a sweep grid over {PARAM}")
    base = scenario.model_dump(mode="json")
    base.pop("sweep")
    t0 = time.perf_counter()
    result = run_sweep(base, scenario.sweep, args.out, workers=args.workers, source=str(args.scenario))
    seconds = time.perf_counter() - t0
    report = write_sweep_report(result, title=scenario.question, run=scenario.source.run)
    summary = result.summary
    reference = result.table["reference"].iloc[0] if "reference" in result.table else "?"

    lines = [
        f"`{args.scenario.relative_to(REPO) if args.scenario.is_relative_to(REPO) else args.scenario}`: "
        f"{result.total} runs ({result.ran} run now, {len(result.failures)} failed) in {seconds:.0f} s; "
        f"{scenario.steps} months, {scenario.consumers.n:,} consumers, source `{scenario.source.run}`. "
        f"True contribution: {reference}. Causal royalties are paid on it plus noise at each SNR; "
        "misallocation is measured against it. Means over replicate seeds with 95% CIs, final month.",
        "",
    ]
    for metric, label in SHOWN.items():
        sub = summary[summary["metric"] == metric]
        if sub.empty:
            continue
        wide = sub.assign(cell=sub.apply(_cell, axis=1)).pivot(index=PARAM, columns="scheme", values="cell")
        lines += [f"**{label}** by SNR:", "", "| SNR | " + " | ".join(wide.columns) + " |",
                  "|---:|" + "---|" * len(wide.columns)]
        lines += [f"| {snr:g} | " + " | ".join(wide.loc[snr]) + " |" for snr in wide.index]
        lines.append("")
    markers = measured_snr_markers(scenario.source.run)
    if len(markers):
        lines += ["Measured creator-level SNR of each method (against leave-one-creator-out, "
                  f"{int(markers['creators'].iloc[0])} creators; `royaltysim attribution evaluate`):", "",
                  "| method | SNR | 95% CI |", "|---|---:|---|"]
        lines += [f"| {r.method} | {r.snr:.3f} | [{r.snr_low:.3f}, {r.snr_high:.3f}] |"
                  for r in markers.sort_values("snr", ascending=False).itertuples()]
        lines.append("")
    findings = re.findall(r"<li>(.*?)</li>", report.read_text().split("<h2>Findings</h2>")[1].split("</ul>")[0], re.S)
    lines += ["Findings (from the sweep report):", ""] + [f"- {re.sub('<[^>]+>', '', f)}" for f in findings]
    lines += ["", f"Report: `{report}`. Reproduce: `.venv/bin/python benchmarks/attribution_noise.py`."]
    body = "\n".join(lines)
    print(body)
    record("Attribution noise", body)


if __name__ == "__main__":  # the sweep starts a Dask cluster, whose workers are spawned
    main()
