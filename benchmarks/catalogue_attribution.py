"""Creator-level faithfulness of catalogue-level group influence against leave-one-creator-out (issue 15).

    python benchmarks/catalogue_attribution.py --run RUN [--copy-from runs/default --weights /tmp/rebuild/default]
        [--folds K] [--n-boot 2000]

Evaluates RUN with the same ``evaluate()`` as ``royaltysim attribution evaluate`` (without the costly extras:
no dattri, no TRAK over other models, no extra projections) and prints, against LOCO and LOCO net of its matched
random control, the creator-level SNR of ``group_influence`` (first-order TRAK sum plus the catalogue's
second-order self-influence, cross-validated across creators), of the self-influence term alone, of TRAK and
its ridge variants, of the similarity proxies and of catalogue size; each one's partial correlation with the
truth controlling for catalogue size (95% bootstrap CI over outputs); the fitted parameters of every fold; and
the best method written to ``RUN/evaluation/best_method.yaml``. It prints Markdown for benchmarks/RESULTS.md.

``--copy-from SRC --weights W`` first makes RUN a copy of SRC's tables and ground truth with the model and TRAK
cache of W beside them (W: a rebuild of SRC with the same outputs), so SRC itself is never written to.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np


def prepare(run: Path, source: Path, weights: Path) -> None:
    """RUN = SRC's tables, outputs and ground truth (copied) + W's model and TRAK cache (linked, read only)."""
    run.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.is_file():
            shutil.copy2(f, run / f.name)
    for d in ("outputs", "ground_truth"):
        if not (run / d).exists():
            shutil.copytree(source / d, run / d, ignore=shutil.ignore_patterns("*.pt"))
    for d in ("model", "cache"):
        if not (run / d).exists():
            (run / d).symlink_to((weights / d).resolve(), target_is_directory=True)
    # the rebuild's outputs (whose gradients the TRAK cache holds) must be the ones the ground truth scored
    from attribution.groundtruth_files import is_stale
    from attribution.table import outputs_fingerprint

    if is_stale(run):
        raise SystemExit(f"{run}: the ground truth was measured on other outputs than {source}'s; not comparable")
    if (weights / "outputs.parquet").is_file() and outputs_fingerprint(weights) != outputs_fingerprint(source):
        raise SystemExit(f"{weights} generated other outputs than {source}: its TRAK features do not score the outputs "
                         "the ground truth measured")


def _f(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--copy-from", type=Path)
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--folds", type=int, default=None, help="folds over creators (default: leave one creator out)")
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args()
    if args.copy_from:
        if not args.weights:
            ap.error("--copy-from needs --weights (the rebuilt model and TRAK cache)")
        prepare(args.run, args.copy_from, args.weights)

    from attribution.evaluation import evaluate

    t0 = time.perf_counter()
    from attribution.evaluation.methods import run_meta, stored_trak_features
    from attribution.retrain import load_run_inputs

    if stored_trak_features(args.run, run_meta(args.run), load_run_inputs(args.run)) is None:
        raise SystemExit(f"{args.run}: no TRAK features for its checkpoints and windows in {args.run / 'cache'}; "
                         "group influence needs the build's cache (rebuild the run, or pass --weights)")
    ev = evaluate(args.run, dattri=False, models_ensemble=False, projection_seeds=0, report=False, n_boot=args.n_boot,
                  catalogue_folds=args.folds)
    seconds = time.perf_counter() - t0
    shown = ["group_influence_local", "group_influence", "group_self_influence", "trak", "trak_ridge0.01",
             "trak_ridge0.1", "trak_ridge1",
             "trak_1ckpt", "tracin", "sim_embedding", "sim_pitch_hist", "sim_interval_ngram", "catalogue_size", "random"]
    print(f"evaluated {args.run} in {seconds:.0f} s; LOCO order {ev.facts.get('loco_order')}, "
          f"{ev.facts.get('loco_creators')} creators, seeds {ev.facts.get('loco_seeds')}, reliability "
          f"{_f(ev.facts.get('loco_reliability', float('nan')))}")
    for truth, suffix in (("loco", ""), ("loco_net", "_net")):
        snr = ev.snr[ev.snr["truth"] == truth].set_index("method")
        if not len(snr):
            print(f"\n(no {truth} truth)")
            continue
        size = float(snr.loc["catalogue_size", "snr"])
        print(f"\n| method ({truth}) | SNR [95% CI] | x size | partial r given size [95% CI] |\n|---|---|---|---|")
        for m in [x for x in shown if x in snr.index]:
            r = snr.loc[m]
            p = ev.row(m, f"creator_partial_r_size{suffix}")
            part = f"{_f(p['value'])} [{_f(p['ci_low'])}, {_f(p['ci_high'])}]" if p is not None else ""
            print(f"| {m} | {_f(r['snr'])} [{_f(r['snr_low'])}, {_f(r['snr_high'])}] | "
                  f"{_f(r['snr'] / size) if size > 0 else 'n/a'} | {part} |")
        for method in ("group_influence", "group_influence_local"):
            fits = ev.facts.get(f"{method}{suffix}_folds", [])
            if fits:
                print(f"\n{method} fold fits ({truth}): " + "; ".join(
                    f"ridge {f['ridge']:g} w {f['weight']:g} (kappa {f['kappa']:.3g}, r {f['r']:.2f})" for f in fits))
    # the same estimator fitted on every creator and scored on them: NOT cross-validated, an upper bound only
    from attribution.evaluation.catalogue import fit_group_influence
    from attribution.evaluation.run import run_catalogue_terms
    from attribution.retrain import load_groundtruth
    from attribution.snr import creator_snr

    terms, _ = run_catalogue_terms(args.run, run_meta(args.run), load_run_inputs(args.run))
    gt = load_groundtruth(args.run)
    loco = gt.loco[(gt.loco["output_id"] != "__heldout__") & gt.loco["creator"].isin(terms.names)]
    wide = loco.groupby(["output_id", "creator"])["delta"].mean().unstack("creator").reindex(gt.output_ids)
    variants = {"group_influence": terms.columns(list(wide.columns))}
    if terms.local is not None:
        variants["group_influence_local"] = variants["group_influence"].localised()
    for method, t in variants.items():
        fit = fit_group_influence(t, wide.to_numpy())
        upper = creator_snr(fit.scores(t), wide.to_numpy(), n_boot=args.n_boot)
        print(f"\n{method} in-sample (not cross-validated, an upper bound): ridge {fit.ridge:g}, "
              f"w {fit.weight:g} (kappa {fit.kappa(t):.3g}), "
              f"SNR {_f(upper['snr'])} [{_f(upper['snr_low'])}, {_f(upper['snr_high'])}]")
    best = ev.facts.get("best_method")
    print(f"\nbest method: {best}")
    costs = ev.costs[ev.costs["item"].str.startswith("group influence")]
    print(costs.to_string(index=False))


if __name__ == "__main__":
    main()
