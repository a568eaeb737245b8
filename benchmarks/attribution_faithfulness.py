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

from attribution.evaluation import evaluate, lds_table, leaveout_table  # noqa: E402


def _f(x: float) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.3f}"


def section(run: str, dattri: bool | None, dattri_checkpoints: tuple[str, ...], k: int, note: str = "",
            dattri_projection_seeds: int = 1) -> str:
    """Markdown for one run's evaluation (computed by ``evaluate``; dattri scores come from its cache)."""
    ev = evaluate(run, dattri=dattri, k=k, dattri_checkpoints=dattri_checkpoints,
                  dattri_projection_seeds=dattri_projection_seeds)
    t = lds_table(ev)
    f = ev.facts
    modes = f.get("lds_modes", {})
    lines = [
        f"### `{run}`" + (f" ({note})" if note else ""),
        "",
        f"- {f['n_outputs']} generated outputs x {f['n_pieces']} training pieces; "
        f"ground truth {f['models']} retrained models ({f['ground_truth_core_seconds']:.0f} CPU-seconds of training, "
        f"median {f['seconds_per_model']:.0f} s a model)",
    ]
    lines += [f"- LDS, mode {mode}: {x.get('models', 0)} models on {x.get('subsets', 0)} subsets of "
              f"{x.get('fraction', 0):.0%} of the pieces (seeds {x.get('seeds')}"
              + (f"; {x['noise_subsets']} subsets trained with two seeds" if x.get("noise_subsets") else "") + ")"
              for mode, x in modes.items()]
    lines += [
        f"- leave-one-creator-out, mode {f.get('loco_order', '')}: {f.get('loco_creators', 0)} creators (seeds "
        f"{f.get('loco_seeds')})" + (f", each with {f['control_draws']} matched random control(s)" if "control_draws" in f else "")
        + f"; leave-one-piece-out, mode {f.get('loo_order', '')}: {f.get('loo_pieces', 0)} pieces (seeds {f.get('loo_seeds')})",
        "- utility: log-likelihood of each whole output (the TRAK target); LDS = mean over outputs of the Spearman "
        "correlation across subsets, 95% bootstrap CI over outputs; seed sd = spread of the LDS across ground-truth "
        "training seeds (random: across its own seeds); same / cross seed = the LDS against the utilities of the run's "
        "own training seed / of the other seed, on the subsets trained with both",
    ]
    if "replay_max_abs_nats" in f:
        lines.append(
            f"- replay exactness (mode fixed): the reference of seed(s) {f.get('replay_seeds')} replayed with nothing "
            f"removed differs from it by at most {f['replay_max_abs_nats']:.2g} nats on an output (mean "
            f"{f['replay_mean_abs_nats']:.2g}; held-out {f['replay_heldout_abs_nats']:.2g} nats per event)"
            + (f"; one piece left out moves an output by a median {f['loo_median_abs_nats']:.3g} nats"
               if "loo_median_abs_nats" in f else ""))
    lines += ["", "| mode | method | family | LDS | 95% CI | seed sd | same seed | cross seed |", "|---|---|---|---:|---|---:|---:|---:|"]
    for r in t.itertuples(index=False):
        ci = f"[{r.ci_low:.3f}, {r.ci_high:.3f}]" if np.isfinite(r.ci_low) else ""
        lines.append(f"| {r.mode} | {r.method} | {r.family} | {_f(r.lds)} | {ci} | {_f(r.lds_seed_sd)} | "
                     f"{_f(r.lds_same_seed)} | {_f(r.lds_cross_seed)} |")
    lo = leaveout_table(ev)
    if len(lo):
        cols = [c for c in ("loco_per_output", "loco_per_output_centred", "loco_total", "loco_heldout_value",
                            "loco_net_per_output", "loo_corr") if c in lo]
        lines += ["", f"Leave-outs (mode {f.get('loco_order', '')}; loco_net = leave-one-creator-out minus its matched "
                  "random control):", "", "| method | family | " + " | ".join(cols) + " |", "|---|---|" + "---:|" * len(cols)]
        lines += [f"| {r['method']} | {r['family']} | " + " | ".join(_f(r[c]) for c in cols) + " |" for _, r in lo.iterrows()]
    if len(ev.controls):
        lines += ["", f"Matched random controls (mode {ev.controls['mode'].iloc[0]}; mean drop over outputs in nats, held-out "
                  "per event; net = LOCO minus control):", "",
                  "| creator | events | LOCO | control | net | LOCO held-out | control held-out | net held-out |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r.creator} | {r.events:.0f} | {_f(r.loco_outputs)} | {_f(r.control_outputs)} | {_f(r.net_outputs)} | "
                  f"{_f(r.loco_heldout)} | {_f(r.control_heldout)} | {_f(r.net_heldout)} |" for r in ev.controls.itertuples()]
    m = ev.metrics
    noise = m[m["family"] == "noise"]
    if len(noise):
        lines += ["", "The ground truth against itself (noise floors, replay exactness, controls):", ""]
        lines += [f"- {r.metric} (mode {r.mode}): {_f(r.value)} (n = {r.n})" for r in noise.itertuples(index=False)]
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
    sizes = f.get("trak_models_sizes", [])
    if len(sizes) > 1:  # TRAK over the first k independently trained models: LDS and cost against k
        from attribution.best_method import method_cost
        from attribution.evaluation import ensemble_method

        names = {k: ensemble_method(k, f["trak_models"]) for k in sizes}
        items = ev.costs["item"].astype(str)
        mode_list = [x for x in (f.get("headline_mode"), "reshuffled", "fixed") if x in modes]
        mode_list = list(dict.fromkeys(mode_list))
        lines += ["", "TRAK over the first k independently trained models (the run's own, then the ground truth's kept "
                  "full-data references; CPU-seconds of traker, k/n of the measured n-model pass, and of training the "
                  "k - 1 extra models):", "",
                  "| k | " + " | ".join(f"LDS {x} [95% CI]" for x in mode_list) + " | traker CPU-s | training CPU-s | total |",
                  "|---:|" + "---|" * len(mode_list) + "---:|---:|---:|"]
        for k in sizes:
            name = names[k]
            traker = float(ev.costs.loc[items.str.startswith(name + ":"), "core_seconds"].sum())
            training = float(ev.costs.loc[items.str.startswith(name + " training"), "core_seconds"].sum())
            cells = []
            for x in mode_list:
                r = ev.row(name, "lds", x)
                cells.append("" if r is None else f"{_f(r['value'])} [{_f(r['ci_low'])}, {_f(r['ci_high'])}]")
            lines.append(f"| {k} | " + " | ".join(cells) + f" | {traker:,.0f} | {training:,.0f} | "
                         f"{method_cost(name, ev.costs):,.0f} |")
    k = f["k"]
    sim = m[m["metric"].isin([f"top{k}_overlap_with_trak", f"trak_mass_outside_top{k}"])]
    if len(sim):
        lines += ["", f"Similarity against TRAK (top {k} of {f['n_pieces']} pieces, mean over outputs):", "",
                  f"| measure | top-{k} overlap with TRAK | TRAK mass outside its top {k} |", "|---|---:|---:|"]
        for meth, g in sim.groupby("method", sort=False):
            v = g.set_index("metric")["value"]
            lines.append(f"| {meth} | {_f(v.get(f'top{k}_overlap_with_trak'))} | {_f(v.get(f'trak_mass_outside_top{k}'))} |")
    for truth, label in (("loco", "leave-one-creator-out"), ("loco_net", "leave-one-creator-out minus its matched control")):
        snr = ev.snr[ev.snr["truth"] == truth] if len(ev.snr) else ev.snr
        if not len(snr):
            continue
        rel = float(snr["reliability"].iloc[0])
        lines += ["", f"Creator-level signal-to-noise ratio against {label} (mode {snr['mode'].iloc[0]}; "
                  f"{int(snr['creators'].iloc[0])} creators left out alone; per output the Pearson r across creators, mean "
                  "over outputs, r² = max(r, 0)², snr = r²/(1-r²), the scale of the economy's `source.attribution_snr`; "
                  "corrected = r² divided by the truth's reliability, where measured"
                  + (f", {rel:.2f}" if np.isfinite(rel) else "") + "):", "",
                  "| method | r | SNR | 95% CI | SNR corrected |", "|---|---:|---:|---|---:|"]
        for r in snr.sort_values("snr", ascending=False).itertuples(index=False):
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
