"""Attribution faithfulness of a run against its retraining ground truth, recorded in RESULTS.md.

    python benchmarks/attribution_faithfulness.py [--run runs/default ...] [--no-dattri] [--dattri-checkpoints all,last]

Reads (or computes) ``RUN/evaluation`` with the same ``evaluate()`` as ``royaltysim attribution evaluate``
and records the LDS table, the similarity-vs-TDA numbers, the noise floor and the costs in
benchmarks/RESULTS.md under "Attribution faithfulness". The ground truth must exist
(``royaltysim attribution groundtruth RUN --config configs/groundtruth-default.yaml --workers 2``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from results import record  # noqa: E402

from attribution.evaluate import evaluate, lds_table  # noqa: E402


def _f(x: float) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.3f}"


def section(run: str, dattri: bool | None, dattri_checkpoints: tuple[str, ...], k: int, note: str = "",
            dattri_projection_seeds: int = 1) -> str:
    """Markdown for one run's evaluation (computed by ``evaluate``; dattri scores come from its cache)."""
    ev = evaluate(run, dattri=dattri, k=k, dattri_checkpoints=dattri_checkpoints,
                  dattri_projection_seeds=dattri_projection_seeds)
    t = lds_table(ev)
    f = ev.facts
    lines = [
        f"### `{run}`" + (f" ({note})" if note else ""),
        "",
        f"- {f['n_outputs']} generated outputs x {f['n_pieces']} training pieces; "
        f"ground truth {f['models']} retrained models ({f['ground_truth_core_seconds']:.0f} CPU-seconds of training, "
        f"median {f['seconds_per_model']:.0f} s a model): "
        f"LDS {f.get('lds_models', 0)} models on {f.get('lds_subsets', 0)} subsets of "
        f"{f.get('lds_fraction', 0):.0%} of the pieces (seeds {f.get('lds_seeds')}), "
        f"LOCO {f.get('loco_creators', 0)} creators (seeds {f.get('loco_seeds')}), "
        f"LOO {f.get('loo_pieces', 0)} pieces (seeds {f.get('loo_seeds')})",
        "- utility: log-likelihood of each whole output (the TRAK target); LDS = mean over outputs of the Spearman "
        "correlation across subsets, 95% bootstrap CI over outputs; seed sd = spread of the LDS across ground-truth "
        "training seeds (random: across its own seeds)",
        "",
        "| method | family | LDS | 95% CI | seed sd | LOCO per output | LOCO per output, centred | LOCO total | vs held-out value | LOO corr |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in t.itertuples(index=False):
        ci = f"[{r.ci_low:.3f}, {r.ci_high:.3f}]" if np.isfinite(r.ci_low) else ""
        lines.append(
            f"| {r.method} | {r.family} | {_f(r.lds)} | {ci} | {_f(r.lds_seed_sd)} | {_f(r.loco_per_output)} | "
            f"{_f(r.loco_per_output_centred)} | {_f(r.loco_total)} | {_f(r.loco_heldout_value)} | {_f(r.loo_corr)} |"
        )
    m = ev.metrics
    noise = m[m["family"] == "noise"]
    if len(noise):
        lines += ["", "Noise floor (the ground truth against itself):", ""]
        lines += [f"- {r.metric}: {_f(r.value)} (n = {r.n})" for r in noise.itertuples(index=False)]
    ours, peer = f.get("projection_lds", []), f.get("dattri_projection_lds", [])
    if ours or peer:
        seeds = sorted(set(f.get("projection_seeds", [])) | set(f.get("dattri_projection_seeds", [])))
        by_ours = dict(zip(f.get("projection_seeds", []), ours))
        by_peer = dict(zip(f.get("dattri_projection_seeds", []), peer))
        lines += ["", "Projection noise (final checkpoint, same model and ground truth; LDS under each projector seed):", "",
                  "| projector seed | trak_1ckpt | dattri_trak_1ckpt |", "|---:|---:|---:|"]
        lines += [f"| {s} | {_f(by_ours.get(s))} | {_f(by_peer.get(s))} |" for s in seeds]
        lines.append("| mean (sd) | " + " | ".join(
            f"{np.mean(v):.3f} ({np.std(v, ddof=1):.3f})" if len(v) > 1 else "" for v in (ours, peer)) + " |")
    k = f["k"]
    sim = m[m["metric"].isin([f"top{k}_overlap_with_trak", f"trak_mass_outside_top{k}"])]
    if len(sim):
        lines += ["", f"Similarity against TRAK (top {k} of {f['n_pieces']} pieces, mean over outputs):", "",
                  f"| measure | top-{k} overlap with TRAK | TRAK mass outside its top {k} |", "|---|---:|---:|"]
        for meth, g in sim.groupby("method", sort=False):
            v = g.set_index("metric")["value"]
            lines.append(f"| {meth} | {_f(v.get(f'top{k}_overlap_with_trak'))} | {_f(v.get(f'trak_mass_outside_top{k}'))} |")
    if len(ev.snr):
        lines += ["", f"Creator-level signal-to-noise ratio against leave-one-creator-out ({int(ev.snr['creators'].iloc[0])} "
                  "creators left out alone; per output the Pearson r across creators, mean over outputs, r² = max(r, 0)², "
                  "snr = r²/(1-r²), the scale of the economy's `source.attribution_snr`; corrected = r² divided by the "
                  "truth's reliability, where measured"
                  + (f", {f['loco_reliability']:.2f}" if np.isfinite(f.get("loco_reliability", np.nan)) else "") + "):", "",
                  "| method | r | SNR | 95% CI | SNR corrected |", "|---|---:|---:|---|---:|"]
        for r in ev.snr.sort_values("snr", ascending=False).itertuples(index=False):
            lines.append(f"| {r.method} | {_f(r.r)} | {_f(r.snr)} | [{_f(r.snr_low)}, {_f(r.snr_high)}] | {_f(r.snr_corrected)} |")
    lines += ["", f"Cost (CPU-seconds: wall seconds times threads; the build ran on {f['build_threads']} threads):", "",
              "| item | wall seconds | CPU-seconds |", "|---|---:|---:|"]
    lines += [f"| {r.item} | {r.seconds:.1f} | {r.core_seconds:.1f} |" for r in ev.costs.itertuples(index=False)]
    lines += ["", "Findings (computed from the numbers above):", ""] + [f"- {x}" for x in ev.findings]
    lines += ["", f"Report: `{run}/evaluation/report.html`.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", help="run folder (repeatable; default runs/default)")
    ap.add_argument("--note", action="append", default=[], help="a note per --run, shown in its heading")
    ap.add_argument("--no-dattri", action="store_true")
    ap.add_argument("--dattri-checkpoints", action="append", default=[],
                    help="per --run: all, last or all,last (default all); dattri is slow, see evaluate()")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--preamble", default="", help="text placed before the per-run sections")
    ap.add_argument("--dattri-projection-seeds", action="append", type=int, default=[],
                    help="per --run: dattri's final-checkpoint TRAK under this many projector seeds (default 1; "
                    "needs 'last' in --dattri-checkpoints; each extra seed is a full dattri pass)")
    args = ap.parse_args()
    runs = args.run or ["runs/default"]
    notes = args.note + [""] * (len(runs) - len(args.note))
    which = args.dattri_checkpoints + ["all"] * (len(runs) - len(args.dattri_checkpoints))
    proj = args.dattri_projection_seeds + [1] * (len(runs) - len(args.dattri_projection_seeds))
    body = args.preamble + "\n\n" + "\n".join(
        section(r, False if args.no_dattri else None, tuple(x.strip() for x in w.split(",") if x.strip()), args.k, n, p)
        for r, n, w, p in zip(runs, notes, which, proj)
    )
    print(body)
    record("Attribution faithfulness", body)


if __name__ == "__main__":
    main()
