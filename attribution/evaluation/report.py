"""Report: an :class:`~attribution.evaluation.run.Evaluation` told in words, tables and figures.

* :func:`findings` -- plain-language statements, every number read from the evaluation's tables and each
  naming the retraining mode it was measured against;
* :func:`lds_table` (one row per mode and method) and :func:`leaveout_table` (one row per method against
  leave-one-creator-out, its matched-control net and leave-one-piece-out): the tables the CLI prints;
* :func:`write_report` -- the figures (PNG) and ``report.html`` (from ``attribution/report_template.html``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..best_method import method_cost
from ..table import is_similarity_method
from .trak_variants import ensemble_method

__all__ = ["FIGURES", "MODE_DESCRIPTIONS", "findings", "lds_table", "leaveout_table", "write_report"]

FIGURES = {
    "lds.png": "Linear datamodeling score per method, one panel per retraining mode (mean over outputs, 95% bootstrap CI)",
    "rank_profile.png": "Average similarity of the training pieces at each TDA rank",
    "creators.png": "Creators: TRAK share vs similarity share vs leave-creator-out value",
    "controls.png": "Leave-one-creator-out beside its matched random control (same training events left out), per creator",
    "costs.png": "Cost of each method next to the retraining it approximates",
}
MODE_DESCRIPTIONS = {
    "reshuffled": "each subset a fresh training run of the recipe with its own batch order",
    "fixed": "each subset a trajectory-exact replay of the full-data run of the same seed, the missing windows removed "
             "from every batch",
}
NOISE = "retraining (seed vs seed)"


def _fmt_ci(ev, method: str, metric: str, mode: str | None = None) -> str:
    row = ev.row(method, metric, mode)
    if row is None:
        return "n/a"
    if np.isfinite(row["ci_low"]):
        return f"{row['value']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
    return f"{row['value']:.3f}"


def _lds_findings(ev, mode: str, detailed: bool) -> list[str]:
    """The LDS statements of one mode; ``detailed`` adds the peer, projection, ridge and ensemble comparisons."""
    out: list[str] = []
    m = ev.metrics[ev.metrics["mode"] == mode]
    lds = m[m["metric"] == "lds"].set_index("method")["value"]
    if not len(lds):
        return out
    f = ev.facts.get("lds_modes", {}).get(mode, {})
    tag = f"[mode: {mode}]"
    best = lds.drop(labels=["random"], errors="ignore").idxmax()
    out.append(
        f"{tag} Against {f.get('models')} models retrained on {f.get('subsets')} random {f.get('fraction', 0):.0%} subsets of "
        f"the pieces ({MODE_DESCRIPTIONS.get(mode, mode)}), the most faithful method is {best} with LDS "
        f"{_fmt_ci(ev, best, 'lds', mode)} (mean over {ev.facts['n_outputs']} outputs, 95% bootstrap CI); the random "
        f"baseline scores {_fmt_ci(ev, 'random', 'lds', mode)}"
        + (f"; TRAK {_fmt_ci(ev, 'trak', 'lds', mode)}." if "trak" in lds and best != "trak" else ".")
    )
    if detailed:
        proj, peer_proj = f.get("trak_1ckpt_projection_lds"), f.get("dattri_trak_1ckpt_projection_lds")
        over_projections = bool(proj and peer_proj and len(proj) > 1 and len(peer_proj) > 1)
        for ours, peer, what in (("trak", "dattri_trak", "all checkpoints"), ("trak_1ckpt", "dattri_trak_1ckpt", "the final checkpoint")):
            if ours in lds and peer in lds:
                verdict = "at least matches" if lds[ours] >= lds[peer] else "falls below"
                one_draw = over_projections and ours == "trak_1ckpt"
                out.append(
                    f"{tag} Our TRAK via traker ({ours}) {verdict} dattri's TRAK on the same model, {what} and ground truth: "
                    f"{_fmt_ci(ev, ours, 'lds', mode)} vs {_fmt_ci(ev, peer, 'lds', mode)}; the two differ only in their random "
                    "projections and numerics, so a gap inside the intervals is projection noise"
                    + (" (one projection each: the comparison over projections follows)." if one_draw else ".")
                )
                ridged = [x for x in lds.index if x.startswith(f"{ours}_ridge")]
                if lds[ours] < lds[peer] and ridged and not one_draw:
                    best_r = max(ridged, key=lambda x: lds[x])
                    verdict = "closes the gap" if lds[best_r] >= lds[peer] else "does not close the gap"
                    out.append(f"{tag} A relative ridge on our kernel {verdict}: {best_r} {_fmt_ci(ev, best_r, 'lds', mode)} "
                               f"vs {peer} {_fmt_ci(ev, peer, 'lds', mode)}.")
        if proj:
            avg = next((x for x in lds.index if x.startswith("trak_1ckpt_proj")), None)
            line = (f"{tag} Projection noise: trak_1ckpt under {len(proj)} projector seeds scores LDS {np.mean(proj):.3f} on "
                    f"average (sd {np.std(proj, ddof=1):.3f}, range {min(proj):.3f} to {max(proj):.3f}) on the same checkpoint.")
            if avg is not None:
                line += f" Averaging their scores ({avg}) gives {_fmt_ci(ev, avg, 'lds', mode)}"
                if "dattri_trak_1ckpt" in lds and not over_projections:
                    verdict = "at least matches" if lds[avg] >= lds["dattri_trak_1ckpt"] else "falls below"
                    line += f", which {verdict} dattri's one projection, {_fmt_ci(ev, 'dattri_trak_1ckpt', 'lds', mode)}"
                line += "."
            out.append(line)
        if over_projections:
            # one projection each is one draw each: compare the two estimators over their projector seeds
            diff = float(np.mean(proj) - np.mean(peer_proj))
            se = float(np.sqrt(np.var(proj, ddof=1) / len(proj) + np.var(peer_proj, ddof=1) / len(peer_proj)))
            verdict = "at least matches" if diff >= 0 else "falls below"
            within = "within" if abs(diff) < 2 * se else "beyond"
            line = (f"{tag} Over projections, like for like on the final checkpoint: ours (trak_1ckpt) {verdict} dattri's "
                    f"TRAK, LDS {np.mean(proj):.3f} (sd {np.std(proj, ddof=1):.3f}, {len(proj)} projector seeds) vs "
                    f"{np.mean(peer_proj):.3f} (sd {np.std(peer_proj, ddof=1):.3f}, {len(peer_proj)} seeds; "
                    f"range {min(peer_proj):.3f} to {max(peer_proj):.3f}); the difference {diff:+.3f} is {within} two "
                    f"standard errors ({se:.3f}) of projection noise.")
            ours_avg = next((x for x in lds.index if x.startswith("trak_1ckpt_proj")), None)
            peer_avg = next((x for x in lds.index if x.startswith("dattri_trak_1ckpt_proj")), None)
            if ours_avg and peer_avg:
                line += (f" Averaged over their projections: {ours_avg} {_fmt_ci(ev, ours_avg, 'lds', mode)} vs {peer_avg} "
                         f"{_fmt_ci(ev, peer_avg, 'lds', mode)}.")
            out.append(line)
        for base in ("trak", "trak_1ckpt"):
            ridge = [x for x in lds.index if x.startswith(f"{base}_ridge")]
            if ridge and base in lds:
                best_r = max(ridge, key=lambda x: lds[x])
                out.append(
                    f"{tag} Regularising {base}'s kernel (recomputed from the stored features, no new gradients): "
                    + ", ".join(f"{x} {_fmt_ci(ev, x, 'lds', mode)}" for x in ridge)
                    + f" against {lds[base]:.3f} unregularised; best {best_r}."
                )
        if "trak_models" in lds and "trak" in lds:
            verdict = "beats" if lds["trak_models"] > lds["trak"] else "does not beat"
            n_models = ev.facts.get("trak_models")
            curve = [(k, ensemble_method(k, n_models)) for k in ev.facts.get("trak_models_sizes", [n_models])]
            out.append(
                f"{tag} TRAK over {n_models} independently trained models (trak_models) {verdict} TRAK over "
                f"the run's own checkpoints: {_fmt_ci(ev, 'trak_models', 'lds', mode)} vs {_fmt_ci(ev, 'trak', 'lds', mode)}."
                + (" Over the first k models (cost: traker, plus training the k - 1 extra models): "
                   + "; ".join(f"k = {k}: LDS {_fmt_ci(ev, name, 'lds', mode)}, "
                               f"{method_cost(name, ev.costs):,.0f} CPU-s"
                               for k, name in curve if name in lds) + "." if len(curve) > 1 else "")
            )
        if "trak_margin" in lds and "trak" in lds:
            d, lo, hi = paired_lds_difference(ev, "trak_margin", "trak", mode)
            better = ("more" if lo > 0 else "less" if hi < 0 else "not detectably more or less") if np.isfinite(d) else "?"
            out.append(
                f"{tag} Output function: TRAK attributing the per-event margin (trak_margin) is {better} faithful than "
                f"attributing the log-likelihood (paired over outputs: {d:+.3f} [{lo:+.3f}, {hi:+.3f}]): "
                f"{_fmt_ci(ev, 'trak_margin', 'lds', mode)} vs {_fmt_ci(ev, 'trak', 'lds', mode)}"
                + (f" (final checkpoint: {_fmt_ci(ev, 'trak_margin_1ckpt', 'lds', mode)} vs "
                   f"{_fmt_ci(ev, 'trak_1ckpt', 'lds', mode)})" if {"trak_margin_1ckpt", "trak_1ckpt"} <= set(lds.index) else "")
                + "."
            )
        if "trak" in lds and "trak_1ckpt" in lds:
            verdict = "helps" if lds["trak"] > lds["trak_1ckpt"] else "does not help here"
            out.append(
                f"{tag} Ensembling checkpoints {verdict}: TRAK over all checkpoints {_fmt_ci(ev, 'trak', 'lds', mode)} vs the "
                f"final checkpoint alone {_fmt_ci(ev, 'trak_1ckpt', 'lds', mode)}."
            )
        influence = [x for x in ("ekfac", "logra") if x in lds]
        if influence:  # the opt-in estimators of attribution.estimators
            est, what = ev.facts.get("estimators", {}), {"ekfac": "EK-FAC via kronfluence", "logra": "LoGra via dattri"}
            out.append(
                f"{tag} Influence functions on the final checkpoint, over the Linear layers: "
                + ", ".join(f"{x} ({what[x]}, {est.get(x, {}).get('n_params')} parameters) {_fmt_ci(ev, x, 'lds', mode)}"
                            for x in influence)
                + (f"; TRAK on the same checkpoint {_fmt_ci(ev, 'trak_1ckpt', 'lds', mode)}" if "trak_1ckpt" in lds else "") + "."
            )
    ceiling = ev.value(NOISE, "lds_noise_ceiling", mode)
    if np.isfinite(ceiling):
        out.append(
            f"{tag} Noise floor: two training seeds of the same {f.get('noise_subsets')} subsets rank them alike with "
            f"Spearman {_fmt_ci(ev, NOISE, 'lds_noise_ceiling', mode)}, so retraining noise alone caps what any method can "
            "reach; LDS differences smaller than the CIs above are not meaningful."
        )
    if "own_seed" in f:
        shown = [x for x in ("trak_models", "trak", "trak_1ckpt", "random") if x in lds.index]
        out.append(
            f"{tag} Cross-seed: on the {f.get('seed_subsets')} subsets trained with both seeds, each method's LDS against the "
            f"utilities of seed {f['own_seed']} (the seed of the run's own model) vs seed(s) {f.get('cross_seeds')}: "
            + ", ".join(f"{x} {_fmt_ci(ev, x, 'lds_same_seed', mode)} vs {_fmt_ci(ev, x, 'lds_cross_seed', mode)}" for x in shown)
            + "."
        )
    if detailed:
        halves = m[m["metric"].isin(["lds_half_a", "lds_half_b"]) & (m["method"] == "trak")]["value"].to_numpy()
        if len(halves) == 2:
            out.append(
                f"{tag} On two disjoint halves of the subsets TRAK's LDS is {halves[0]:.3f} and {halves[1]:.3f} "
                "(how much the score moves with the choice of subsets)."
            )
        sims = [x for x in lds.index if is_similarity_method(x)]
        if sims and "trak" in lds:
            out.append(
                f"{tag} Similarity as a counterfactual predictor: "
                + ", ".join(f"{s} LDS {lds[s]:.3f}" for s in sims)
                + f", against TRAK's {lds['trak']:.3f}."
            )
    return out


def _catalogue_findings(ev) -> list[str]:
    """Group influence against catalogue size (cross-validated), the partial correlations, and the best method."""
    out = []
    mode = ev.facts.get("loco_order", "")
    for truth, suffix, label in (("loco", "", "LOCO"), ("loco_net", "_net", "LOCO net of its matched control")):
        snr = ev.snr[ev.snr["truth"] == truth].set_index("method") if len(ev.snr) else pd.DataFrame()
        if "catalogue_size" not in snr.index:
            continue
        size = snr.loc["catalogue_size"]
        for method, what in (("group_influence", "the catalogue's second-order self-influence"),
                             ("group_influence_local", "the second-order term in each output's own Fisher, from its "
                                                       "passages' gradients"),
                             ("group_influence_local_1ckpt", "each output's own second-order term, from the final "
                                                             "checkpoint's features alone")):
            if method not in snr.index:
                continue
            g = snr.loc[method]
            ratio = g["snr"] / size["snr"] if size["snr"] > 0 else float("nan")
            partial = ev.row(method, f"creator_partial_r_size{suffix}")
            part = (f"; its partial correlation with the truth controlling for catalogue size {partial['value']:.2f} "
                    f"[{partial['ci_low']:.2f}, {partial['ci_high']:.2f}]" if partial is not None else "")
            cost = method_cost(method, ev.costs)
            truth_cost = (ev.facts.get("best_method") or {}).get("ground_truth_core_seconds", float("nan"))
            priced = (f"; cost {cost:,.0f} CPU-s, {cost / truth_cost:.0%} of the leave-one-creator-out retraining "
                      f"(target ≤ 10%)" if suffix == "" and np.isfinite(cost) and truth_cost and np.isfinite(truth_cost)
                      else "")
            out.append(
                f"[mode: {mode}] Catalogue-level group influence ({method}: first-order TRAK sum plus {what}, "
                f"ridge and scale fitted on the other creators only) against {label}: SNR {g['snr']:.2f} "
                f"[{g['snr_low']:.2f}, {g['snr_high']:.2f}], {ratio:.2f}x catalogue size's {size['snr']:.2f} (target "
                f"≥ 1.5x){part}{priced}.")
    best = ev.facts.get("best_method")
    if best:
        out.append(
            f"[mode: {mode}] Most faithful causal method at creator level (what `causal_method: best` pays on): "
            f"{best['method']}, SNR {best['snr']:.2f} [{best['snr_low']:.2f}, {best['snr_high']:.2f}] against LOCO "
            f"(catalogue size {best['catalogue_size_snr']:.2f}); cost {best['cost_core_seconds']:.0f} CPU-s against "
            f"{best['ground_truth_core_seconds']:.0f} CPU-s of leave-one-creator-out retraining.")
    return out


def paired_lds_difference(ev, a: str, b: str, mode: str) -> tuple[float, float, float]:
    """Mean over outputs of LDS(a) - LDS(b) in ``mode``, with its bootstrap CI (the two on the same outputs)."""
    from ..snr import bootstrap_mean_ci

    per = ev.lds[(ev.lds["mode"] == mode) & ev.lds["method"].isin([a, b])]
    wide = per.pivot_table(index="output_id", columns="method", values="lds")
    if a not in wide or b not in wide:
        return float("nan"), float("nan"), float("nan")
    return bootstrap_mean_ci((wide[a] - wide[b]).to_numpy(), n_boot=2000)


def findings(ev) -> list[str]:
    """Plain-language statements; every number in them is read from ``ev``'s tables, and names its mode."""
    out: list[str] = []
    m = ev.metrics
    modes = list(ev.facts.get("lds_modes", {}))
    headline = ev.facts.get("headline_mode")
    for mode in sorted(modes, key=lambda x: x != headline):  # the headline first, in full
        out += _lds_findings(ev, mode, detailed=mode == headline)
    agree = m[m["metric"] == "lds_mode_agreement"]
    if len(agree):
        r = agree.iloc[0]
        out.append(f"[mode: {r['mode']}] The two retraining modes rank the same subsets alike with Spearman "
                   f"{_fmt_ci(ev, r['method'], 'lds_mode_agreement', r['mode'])} (same training seed, "
                   f"{ev.facts.get('lds_mode_agreement', {}).get('subsets')} subsets): they measure related but different "
                   "counterfactuals.")
    f = ev.facts
    if "replay_max_abs_nats" in f:
        line = (f"[mode: fixed] Trajectory-exact: replaying the full-data reference of seed(s) {f.get('replay_seeds')} with "
                f"nothing removed reproduces its output log-likelihoods to {f['replay_max_abs_nats']:.2g} nats at most "
                f"(mean {f['replay_mean_abs_nats']:.2g}; held-out music {f['replay_heldout_abs_nats']:.2g} nats per event)")
        if "loo_median_abs_nats" in f:
            line += (f", while leaving one piece out (fixed order, {f.get('loo_fixed_models')} models) moves them by a median "
                     f"{f['loo_median_abs_nats']:.3g} nats")
        out.append(line + ".")
    elif "loo_median_abs_nats" in f:
        out.append(f"[mode: fixed] Leaving one piece out moves the outputs by a median {f['loo_median_abs_nats']:.3g} nats "
                   "(no replay check in this ground truth: set full.replay_check to prove exactness).")
    loco = m[m["metric"] == "loco_per_output"].set_index("method")["value"]
    lmode = f.get("loco_order", "")
    tag = f"[mode: {lmode}]"
    if len(loco) and "trak" in loco:
        out.append(
            f"{tag} Leave-one-creator-out ({f.get('loco_creators')} creators, seeds {f.get('loco_seeds')}): "
            f"per output, TRAK's catalogue attribution ranks creators like retraining with Spearman "
            f"{_fmt_ci(ev, 'trak', 'loco_per_output')} (random {_fmt_ci(ev, 'random', 'loco_per_output')})."
        )
        centred = m[m["metric"] == "loco_per_output_centred"].set_index("method")["value"]
        if "trak" in centred:
            best = centred.idxmax()
            out.append(
                f"{tag} With each creator's mean over outputs removed on both sides (which outputs a creator matters more for "
                f"than usual), TRAK agrees with Spearman {_fmt_ci(ev, 'trak', 'loco_per_output_centred')}; best "
                f"{best} {_fmt_ci(ev, best, 'loco_per_output_centred')}."
            )
        ceiling = ev.value(NOISE, "loco_noise_ceiling")
        if np.isfinite(ceiling):
            out.append(f"{tag} Between two LOCO seeds the per-output creator ranking agrees with Spearman {ceiling:.3f}.")
        rel = f.get("loco_reliability")
        if rel is not None and np.isfinite(rel) and "loco_noise_sd" not in f:
            out.append(f"{tag} Two LOCO seeds agree on each output's creator differences well enough that their mean is "
                       f"{rel:.0%} signal (split-half reliability, Spearman-Brown).")
        elif "fixed" in lmode and len(f.get("loco_seeds", [])) < 2:
            out.append(f"{tag} The leave-one-creator-out models replay the reference run with the creator's windows removed "
                       "(fixed order), so their differences are free of batch-order noise; their remaining noise (chaotic "
                       "divergence of training) is not measured with one seed: add a second seed to loco.seeds to measure it.")
        if rel is not None and np.isfinite(rel) and "loco_noise_sd" in f:
            out.append(
                f"{tag} Seed noise in the truth: two full-data training seeds differ by {f['loco_noise_sd']:.2f} nats on an "
                f"output's log-likelihood, against a spread of {f['loco_signal_sd']:.2f} nats across creators' "
                f"leave-out differences, so {rel:.0%} of that spread is signal (the rest bounds every method's agreement)."
            )
    if len(ev.controls):
        c = ev.controls
        alone = c[c["creator"] != "__rest__"]
        out.append(
            f"{tag} Matched random controls ({f.get('control_draws')} per catalogue, the same training events left out at "
            f"random from other creators): over the {len(alone)} catalogues, removing that much random music accounts for "
            f"{f.get('control_share_outputs', float('nan')):.0%} of the leave-one-creator-out drop on the outputs and "
            f"{f.get('control_share_heldout', float('nan')):.0%} on held-out music; what the creators' own music did beyond "
            f"it averages {alone['net_outputs'].mean():.2f} nats per output (LOCO {alone['loco_outputs'].mean():.2f}, "
            f"control {alone['control_outputs'].mean():.2f})."
        )
        net = m[m["metric"] == "loco_net_per_output"].set_index("method")["value"]
        if "trak" in net:
            out.append(
                f"{tag} Against LOCO minus its control, TRAK ranks creators per output with Spearman "
                f"{_fmt_ci(ev, 'trak', 'loco_net_per_output')} (against LOCO {_fmt_ci(ev, 'trak', 'loco_per_output')}); "
                f"catalogue size {_fmt_ci(ev, 'catalogue_size', 'loco_net_per_output')} (against LOCO "
                f"{_fmt_ci(ev, 'catalogue_size', 'loco_per_output')})."
            )
    for truth, label in (("loco", "leave-one-creator-out"), ("loco_net", "leave-one-creator-out minus its matched control")):
        snr = ev.snr[ev.snr["truth"] == truth].set_index("method") if len(ev.snr) else pd.DataFrame()
        if not len(snr):
            continue
        shown = [x for x in ("group_influence_local", "group_influence_local_1ckpt", "group_influence",
                             "group_self_influence", "trak_models", "trak",
                             "trak_1ckpt", "ekfac",
                             "logra", "tracin", "grad_cos", "dattri_trak", "sim_embedding", "sim_pitch_hist", "sim_interval_ngram",
                             "catalogue_size", "random") if x in snr.index]
        out.append(
            f"[mode: {snr['mode'].iloc[0]}] Creator-level signal-to-noise ratio against {label} (per output, correlation r "
            f"across {int(snr['creators'].iloc[0])} creators, mean over outputs; snr = r²/(1-r²), as the economy's noise "
            "sweep injects it; catalogue_size credits creators by training events, the training-data-share baseline): "
            + ", ".join(f"{x} {snr.loc[x, 'snr']:.2f} [{snr.loc[x, 'snr_low']:.2f}, {snr.loc[x, 'snr_high']:.2f}]" for x in shown)
            + ("; corrected for the truth's seed noise: "
               + ", ".join(f"{x} {snr.loc[x, 'snr_corrected']:.2f}" for x in shown if np.isfinite(snr.loc[x, "snr_corrected"]))
               if np.isfinite(snr["snr_corrected"].astype(float)).any() else "")
            + "."
        )
    out += _catalogue_findings(ev)
    k = f.get("k")
    ov = m[m["metric"] == f"top{k}_overlap_with_trak"].set_index("method")["value"]
    hid = m[m["metric"] == f"trak_mass_outside_top{k}"].set_index("method")["value"]
    sims = [s for s in ov.index if is_similarity_method(s)]
    if sims:
        out.append(
            f"[no retraining] Similarity finds some of the top influencers: the top {k} most similar pieces share "
            + ", ".join(f"{ov[s]:.0%} ({s})" for s in sims)
            + f" of TRAK's top {k} (chance {ov.get('random', float('nan')):.1%})."
        )
        lo, hi = min(hid[s] for s in sims), max(hid[s] for s in sims)
        verdict = "most" if lo > 0.5 else ("much" if hi > 0.25 else "little")
        out.append(
            f"[no retraining] Hidden influencers: {lo:.0%}–{hi:.0%} of TRAK's positive attribution falls outside the {k} most "
            f"similar pieces (a random top-{k}: {hid.get('random', float('nan')):.0%}), so royalties paid on similarity alone "
            f"would miss {verdict} of the contribution TRAK measures."
        )
    if len(ev.costs):
        gt_s = f.get("ground_truth_core_seconds", 0.0)
        trak = ev.costs[ev.costs["item"].str.startswith("trak")]
        if len(trak) and gt_s > 0:
            t = trak.iloc[0]
            out.append(
                f"Cost: the traker pass ({t['seconds']:.0f} s on {f['build_threads']} threads, {t['core_seconds']:.0f} "
                f"CPU-seconds) is {t['core_seconds'] / gt_s:.1%} of the {f.get('models')} retrained models "
                f"({gt_s:.0f} CPU-seconds of training)."
            )
    return out


# -------------------------------------------------------------------------------------------- tables
def _mode_order(ev) -> list[str]:
    headline = ev.facts.get("headline_mode")
    return sorted(ev.facts.get("lds_modes", {}), key=lambda x: x != headline)


def lds_table(ev) -> pd.DataFrame:
    """One row per (mode, method): LDS with CI and seed spread, and the LDS against the run's own seed and the others."""
    m = ev.metrics
    cols = ["mode", "method", "family", "value", "ci_low", "ci_high", "spread"]
    base = m[m["metric"] == "lds"][cols].rename(columns={"value": "lds", "spread": "lds_seed_sd"})
    for metric in ("lds_same_seed", "lds_cross_seed"):
        part = m[m["metric"] == metric].set_index(["mode", "method"])["value"].rename(metric)
        base = base.join(part, on=["mode", "method"])
    order = {mode: i for i, mode in enumerate(_mode_order(ev))}
    base = base.assign(_o=base["mode"].map(order)).sort_values(["_o", "lds"], ascending=[True, False])
    return base.drop(columns="_o").reset_index(drop=True)


def leaveout_table(ev) -> pd.DataFrame:
    """One row per method against leave-one-creator-out (and net of its matched control) and leave-one-piece-out."""
    m = ev.metrics
    metrics = ("loco_per_output", "loco_per_output_centred", "loco_total", "loco_heldout_value", "loco_net_per_output",
               "loco_net_heldout_value", "creator_snr", "creator_snr_net", "creator_partial_r_size",
               "creator_partial_r_size_net", "loo_corr")
    part = m[m["metric"].isin(metrics) & (m["family"] != "noise")]
    if not len(part):
        return pd.DataFrame(columns=["method", "family", "mode", *metrics])
    wide = part.pivot_table(index=["method", "family"], columns="metric", values="value", aggfunc="first")
    wide = wide.reindex(columns=[x for x in metrics if x in wide.columns]).reset_index()
    wide.insert(2, "mode", ev.facts.get("loco_order", ev.facts.get("loo_order", "")))
    wide.columns.name = None
    key = "loco_per_output" if "loco_per_output" in wide else wide.columns[-1]
    return wide.sort_values(key, ascending=False).reset_index(drop=True)


# -------------------------------------------------------------------------------------------- figures
def _figures(ev, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    m = ev.metrics
    modes = [x for x in _mode_order(ev) if ((m["metric"] == "lds") & (m["mode"] == x)).any()]
    (out_dir / "lds.png").unlink(missing_ok=True)
    if modes:
        n = max(int(((m["metric"] == "lds") & (m["mode"] == x)).sum()) for x in modes)
        fig, axes = plt.subplots(1, len(modes), figsize=(7 * len(modes), 0.45 * n + 1.8), squeeze=False)
        colors = {"tda": "C0", "similarity": "C2", "baseline": "C7", "peer": "C3"}
        for ax, mode in zip(axes[0], modes):
            lds = m[(m["metric"] == "lds") & (m["mode"] == mode)].sort_values("value", ascending=True)
            y = np.arange(len(lds))
            err = np.vstack([lds["value"] - lds["ci_low"], lds["ci_high"] - lds["value"]])
            ax.barh(y, lds["value"], color=[colors.get(f, "C7") for f in lds["family"]], xerr=np.nan_to_num(err), capsize=3)
            ax.set_yticks(y, lds["method"])
            ceiling = ev.value(NOISE, "lds_noise_ceiling", mode)
            if np.isfinite(ceiling):
                ax.axvline(ceiling, ls="--", color="k", lw=1, label=f"seed-vs-seed agreement {ceiling:.2f}")
                ax.legend(loc="lower right")
            ax.axvline(0, color="k", lw=0.8)
            ax.set_xlabel("LDS (Spearman, mean over outputs)")
            ax.set_title(f"mode: {mode}")
        fig.tight_layout()
        fig.savefig(out_dir / "lds.png", dpi=110)
        plt.close(fig)
    if len(ev.profile):
        fig, ax = plt.subplots(figsize=(7, 4))
        for sm, g in ev.profile.groupby("similarity"):
            ax.plot(g["rank"], g["relative_similarity"].rolling(5, min_periods=1, center=True).mean(), label=sm)
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("TRAK rank of the training piece (1 = most influential)")
        ax.set_ylabel("similarity / mean similarity")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / "rank_profile.png", dpi=110)
        plt.close(fig)
    if len(ev.creators):
        c = ev.creators.sort_values("pieces", ascending=False).head(20)
        cols = [x for x in c.columns if x.endswith("_share") and x != "piece_share"]
        long = c.melt(id_vars="creator", value_vars=cols, var_name="measure", value_name="share")
        fig, ax = plt.subplots(figsize=(max(7, 0.5 * len(c) + 3), 4.5))
        sns.barplot(data=long, x="creator", y="share", hue="measure", ax=ax)
        ax.tick_params(axis="x", rotation=60)
        ax.set_ylabel("share")
        ax.set_title("mean share of each output (LOCO: share of positive held-out value)", fontsize=10)
        fig.tight_layout()
        fig.savefig(out_dir / "creators.png", dpi=110)
        plt.close(fig)
    (out_dir / "controls.png").unlink(missing_ok=True)
    if len(ev.controls):
        c = ev.controls
        long = c.melt(id_vars="creator", value_vars=["loco_outputs", "control_outputs", "net_outputs"], var_name="measure",
                      value_name="nats")
        long["measure"] = long["measure"].map({"loco_outputs": "creator left out (LOCO)",
                                               "control_outputs": "matched random control",
                                               "net_outputs": "LOCO minus control"})
        fig, ax = plt.subplots(figsize=(max(7, 0.6 * len(c) + 3), 4.5))
        sns.barplot(data=long, x="creator", y="nats", hue="measure", ax=ax)
        ax.axhline(0, color="k", lw=0.8)
        ax.tick_params(axis="x", rotation=60)
        ax.set_ylabel("drop in an output's log-likelihood (nats)")
        ax.set_title(f"mean over outputs and seeds (mode: {c['mode'].iloc[0]})", fontsize=10)
        fig.tight_layout()
        fig.savefig(out_dir / "controls.png", dpi=110)
        plt.close(fig)
    if len(ev.costs):
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(ev.costs) + 1.5))
        colors = ["C0" if k == "attribution" else "C1" for k in ev.costs["kind"]]
        ax.barh(ev.costs["item"], ev.costs["core_seconds"], color=colors)
        ax.set_xscale("log")
        ax.set_xlabel("CPU-seconds (log scale)")
        fig.tight_layout()
        fig.savefig(out_dir / "costs.png", dpi=110)
        plt.close(fig)


def _fmt(x):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return ""
    if isinstance(x, (bool, np.bool_)):
        return str(x)
    if isinstance(x, (float, np.floating)):
        return f"{x:.3g}" if x != 0 and abs(x) < 1e-3 else f"{x:.3f}"
    return x


def _rows(df: pd.DataFrame) -> list[list]:
    return [[_fmt(v) for v in row] for row in df.itertuples(index=False)]


def write_report(ev, out_dir: Path, run_dir: Path) -> Path:
    """Draw the figures and render ``report.html`` from ``attribution/report_template.html``."""
    import jinja2

    _figures(ev, out_dir)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent.parent), autoescape=True)
    template = env.get_template("report_template.html")
    lt = lds_table(ev) if len(ev.metrics) else pd.DataFrame(columns=["mode"])
    lds_modes = [
        {"mode": mode, "description": MODE_DESCRIPTIONS.get(mode, ""), "facts": ev.facts.get("lds_modes", {}).get(mode, {}),
         "columns": [c for c in lt.columns if c != "mode"],
         "rows": _rows(lt[lt["mode"] == mode].drop(columns="mode"))}
        for mode in _mode_order(ev)
    ]
    lo = leaveout_table(ev)
    others = ev.metrics[~ev.metrics["metric"].isin(["lds"])]
    snr = ev.snr.sort_values(["truth", "snr"], ascending=[True, False]) if len(ev.snr) else ev.snr
    html = template.render(
        run=str(run_dir),
        facts=ev.facts,
        findings=ev.findings,
        lds_modes=lds_modes,
        leaveout_columns=list(lo.columns),
        leaveout_rows=_rows(lo),
        replay_rows=_rows(ev.replay),
        replay_columns=list(ev.replay.columns),
        control_columns=list(ev.controls.columns),
        control_rows=_rows(ev.controls),
        metric_columns=list(others.columns),
        metric_rows=_rows(others),
        cost_rows=[[r.item, r.kind, f"{r.seconds:.1f}", f"{r.core_seconds:.1f}"] for r in ev.costs.itertuples(index=False)],
        snr_columns=list(snr.columns),
        snr_rows=_rows(snr),
        figures={name: caption for name, caption in FIGURES.items() if (out_dir / name).is_file()},
    )
    path = out_dir / "report.html"
    path.write_text(html)
    return path
