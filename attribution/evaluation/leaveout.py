"""Leave-outs: every method against leave-one-creator-out, its matched random controls, and leave-one-piece-out.

Royalties are paid per catalogue, so the unit that matters is the creator. The ground truth leaves each
(large) catalogue out (``loco``), and, with ``loco.controls``, as many random training events of other
creators (``ctrl``: the matched control), in the same batch order and seed. Per creator the difference
``loco - control`` is what this creator's music did beyond removing that much music. Here:

* :func:`creator_matrix`, :func:`loco_per_output` -- catalogue attribution and its per-output Spearman
  across creators against the leave-out drop (pure functions);
* :func:`loco_metrics` -- per method: agreement with LOCO per output, centred, in total and on held-out
  music; the same against LOCO net of its control; the creator-level signal-to-noise ratio against both
  (:func:`attribution.snr.creator_snr`, the scale of the economy's noise sweeps); the truth's own seed
  reliability; the per-creator LOCO / control / net table; the catalogue-level group-influence estimator
  (:mod:`.catalogue`), cross-validated across creators against each truth, and every method's partial
  correlation with the truth controlling for catalogue size;
* :func:`loo_metrics` -- leave-one-piece-out correlations (noisy by nature);
* :func:`replay_exactness` -- the proof that fixed-order retraining is trajectory-exact: a replay of the
  reference with nothing removed against the reference (nats), next to what one piece left out moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..groundtruth_files import HELDOUT, REST, net_of_controls
from ..snr import creator_snr, pearson_r
from ..table import is_similarity_method
from .catalogue import METHOD as GROUP_METHOD
from .catalogue import LOCAL_1CKPT_METHOD, LOCAL_METHOD, SELF_METHOD, CatalogueTerms, cross_validated_scores, partial_r, partial_r_ci
from .lds import spearman
from .metrics import MetricRows, family

__all__ = [
    "SNR_COLUMNS",
    "creator_matrix",
    "loco_per_output",
    "LeaveOutResult",
    "loco_metrics",
    "loo_metrics",
    "replay_exactness",
    "control_summary",
    "catalogue_cms",
]

NOISE = "retraining (seed vs seed)"
SNR_COLUMNS = ["method", "family", "creators", "r", "r2", "snr", "snr_low", "snr_high", "snr_corrected", "reliability",
               "mode", "truth"]
TRUTHS = {"loco": "leave-one-creator-out", "loco_net": "leave-one-creator-out minus its matched random control"}


def creator_matrix(scores: np.ndarray, creators: np.ndarray, names: list[str]) -> np.ndarray:
    """Sum piece columns into creator columns: (n_outputs, n_pieces) -> (n_outputs, len(names))."""
    index = {c: i for i, c in enumerate(names)}
    out = np.zeros((scores.shape[0], len(names)))
    np.add.at(out, (slice(None), np.array([index[c] for c in creators])), scores)
    return out


def loco_per_output(creator_scores: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Per output, Spearman across creators between catalogue attribution and the leave-creator-out drop."""
    return np.array([spearman(creator_scores[o], deltas[o]) for o in range(len(deltas))])


@dataclass
class LeaveOutResult:
    """What :func:`loco_metrics` adds besides metric rows."""

    creators: list[dict] = field(default_factory=list)  # one row per creator: shares and LOCO value
    snr: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SNR_COLUMNS))  # per method and truth
    controls: pd.DataFrame = field(default_factory=pd.DataFrame)  # per creator: LOCO, control, net (control_summary)
    controls_per_output: pd.DataFrame = field(default_factory=pd.DataFrame)  # per creator, seed and output
    facts: dict = field(default_factory=dict)
    truths: dict = field(default_factory=dict)  # truth ("loco", "loco_net") -> (deltas (n_outputs, creators), names)


def _orders(models: pd.DataFrame, kind: str) -> str:
    """The retraining mode(s) of the ground truth's models of ``kind``, e.g. "fixed" (old tables: reshuffled)."""
    orders = set(models.loc[models["kind"] == kind, "order"]) if "order" in models else {"reshuffled"}
    return ", ".join(sorted(str(o) for o in orders)) or "reshuffled"


def _wide(long: pd.DataFrame, output_ids: list[str], names: list[str]) -> np.ndarray:
    """(n_outputs, len(names)) mean delta over the rows' seeds."""
    mean = long.groupby(["output_id", "creator"])["delta"].mean().unstack("creator")
    return mean.reindex(index=output_ids, columns=names).to_numpy()


def _split_half_reliability(long: pd.DataFrame, seeds: list, output_ids: list[str], names: list[str]) -> float:
    """Reliability of the mean of two seeds: per output Pearson across creators between the seeds (split half),
    mean over outputs, stepped up by Spearman-Brown."""
    pair = [_wide(long[long["seed"] == s], output_ids, names) for s in seeds[:2]]
    half = max(float(np.nanmean(pearson_r(*pair))), 0.0)
    return float(np.clip(2 * half / (1 + half), 0.0, 1.0))


def _snr_table(truth: str, deltas: np.ndarray, reliability: float, cms: dict[str, np.ndarray], size_cm: np.ndarray,
               n_names: int, mode: str, n_boot: int) -> pd.DataFrame:
    """Creator-level SNR of catalogue_size, every method and the pooled random baseline against ``deltas``."""
    snr_rows = [{"method": "catalogue_size", "family": "baseline", **creator_snr(size_cm, deltas, reliability, n_boot=n_boot)}]
    for m, cm in cms.items():
        snr_rows.append({"method": m, "family": family(m), **creator_snr(cm, deltas, reliability, n_boot=n_boot)})
    snr = pd.DataFrame(snr_rows)
    rand = snr["method"].str.startswith("random_")
    if rand.any():
        pooled = snr[rand][["r", "r2", "snr", "snr_low", "snr_high", "snr_corrected"]].mean().to_dict()
        snr = pd.concat([snr[~rand], pd.DataFrame([{"method": "random", "family": "baseline", **pooled}])], ignore_index=True)
    snr.insert(2, "creators", n_names)
    snr["reliability"] = reliability
    snr["mode"] = mode
    snr["truth"] = truth
    return snr[SNR_COLUMNS]


SELF_RIDGE = 0.1  # the fixed ridge of the parameter-free self-influence diagnostic (never chosen on the truth)


def catalogue_cms(catalogue: CatalogueTerms | None, deltas: np.ndarray, names: list[str], folds: int | None = None
                  ) -> tuple[dict[str, np.ndarray], dict[str, list[dict]]]:
    """The catalogue-level estimators against one truth: group influence cross-validated across creators
    (:func:`~.catalogue.cross_validated_scores`), with each output's own second-order term where the outputs'
    passage gradients are stored, and the self-influence term alone; with each fold's fit, per method."""
    if catalogue is None or len(names) < 4:  # every fold fits on at least 3 creators
        return {}, {}
    terms = catalogue.columns(names)
    scores, fits = cross_validated_scores(terms, deltas, folds)
    ridge = SELF_RIDGE if SELF_RIDGE in terms.second else next(iter(terms.second))
    cms = {GROUP_METHOD: scores, SELF_METHOD: np.tile(terms.second[ridge], (len(deltas), 1))}
    records = {GROUP_METHOD: [_fit_record(f, terms) for f in fits]}
    if terms.local is not None:
        local = terms.localised()
        cms[LOCAL_METHOD], local_fits = cross_validated_scores(local, deltas, folds)
        records[LOCAL_METHOD] = [_fit_record(f, local) for f in local_fits]
    if terms.final is not None and terms.final.local is not None:  # the final checkpoint's features alone
        final = terms.final.localised()
        cms[LOCAL_1CKPT_METHOD], final_fits = cross_validated_scores(final, deltas, folds)
        records[LOCAL_1CKPT_METHOD] = [_fit_record(f, final) for f in final_fits]
    return cms, records


def _fit_record(fit, terms: CatalogueTerms) -> dict:
    return {"ridge": fit.ridge, "weight": fit.weight, "kappa": fit.kappa(terms), "r": fit.r}


def _partial_rows(rows: MetricRows, cms: dict[str, np.ndarray], deltas: np.ndarray, size: np.ndarray, metric: str,
                  mode: str) -> None:
    """Per method: the partial correlation with the truth across creators, controlling for catalogue size."""
    for m, cm in cms.items():
        if m.startswith("random_"):
            continue
        mean, lo, hi = partial_r_ci(cm, deltas, size, n_boot=rows.n_boot)
        rows.add_interval(m, metric, mean, lo, hi, int(np.isfinite(partial_r(cm, deltas, size)).sum()), mode=mode)


def control_summary(loco: pd.DataFrame, controls: pd.DataFrame, corpus: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leave-one-creator-out beside its matched random control, per creator.

    Returns:
        per_output: creator, seed, output_id, loco_delta, control_delta, net_delta, draws (tidy; ``__heldout__``
            is held-out music per event).
        per_creator: creator, events (the catalogue's training events; the group's for ``__rest__``), seeds,
            draws, and on outputs (mean over outputs and seeds) and on held-out music: loco_*, control_*, net_*
            and control_share_* (the share of the LOCO drop that removing that much random music also makes).
    """
    net = net_of_controls(loco, controls)
    per_output = net.rename(columns={"delta": "net_delta"})[
        ["creator", "seed", "output_id", "loco_delta", "control_delta", "net_delta", "draws"]]
    if net.empty:
        return per_output, pd.DataFrame()
    events = corpus.groupby("creator")["events"].sum() if "events" in corpus else corpus["creator"].value_counts()
    alone = [c for c in loco["creator"].unique() if c != REST]  # the group is everyone else
    rows = []
    for c, g in net.groupby("creator", sort=True):
        outs, held = g[g["output_id"] != HELDOUT], g[g["output_id"] == HELDOUT]
        row = {"creator": c, "events": float(events.drop(labels=[a for a in alone if a in events.index]).sum()
                                             if c == REST else events.get(c, np.nan)),
               "seeds": int(g["seed"].nunique()), "draws": int(g["draws"].max())}
        for where, part in (("outputs", outs), ("heldout", held)):
            mean = part.groupby("seed")[["loco_delta", "control_delta", "delta"]].mean().mean()  # over outputs, then seeds
            row.update({f"loco_{where}": float(mean.get("loco_delta", np.nan)),
                        f"control_{where}": float(mean.get("control_delta", np.nan)),
                        f"net_{where}": float(mean.get("delta", np.nan))})
            row[f"control_share_{where}"] = (row[f"control_{where}"] / row[f"loco_{where}"]
                                             if row[f"loco_{where}"] else float("nan"))
        rows.append(row)
    per_creator = pd.DataFrame(rows).sort_values("events", ascending=False, ignore_index=True)
    return per_output, per_creator


def loco_metrics(gt, scores: dict[str, np.ndarray], methods: list[str], random_names: list[str], inputs, table,
                 rows: MetricRows, catalogue: CatalogueTerms | None = None, folds: int | None = None) -> LeaveOutResult:
    """Every leave-one-creator-out metric, against LOCO and (with matched controls) against LOCO minus control.

    Args:
        gt: the :class:`~attribution.retrain.GroundTruth` (loco, controls, creator_value, references, models).
        scores: (n_outputs, n_pieces) per method; ``random_names`` are pooled into ``random``.
        inputs: the run's :class:`~attribution.retrain.RunInputs` (creators, corpus).
        table: the run's :class:`~attribution.table.AttributionTable` (creator shares for the bars).
        catalogue: the group-influence terms of the run's creators (:func:`~.catalogue.catalogue_terms`; None
            when TRAK's stored features are gone): scored as ``group_influence`` (fitted against each truth with
            cross-validation across creators, ``folds`` None = leave one creator out) and ``group_self_influence``.
    """
    out = LeaveOutResult()
    if not len(gt.loco):
        return out
    n_boot, n_out = rows.n_boot, len(gt.output_ids)
    creators_all = sorted(set(inputs.creators))
    mode = _orders(gt.models, "loco")
    out.facts["loco_order"] = mode
    loco = gt.loco[(gt.loco["output_id"] != HELDOUT) & (gt.loco["creator"].isin(creators_all))]  # not the group
    mean_delta = loco.groupby(["output_id", "creator"])["delta"].mean().unstack("creator")
    names = [c for c in creators_all if c in mean_delta.columns]
    deltas = mean_delta.reindex(index=gt.output_ids, columns=names).to_numpy()
    seeds = sorted(loco["seed"].unique())
    out.facts.update(loco_creators=len(names), loco_seeds=[int(s) for s in seeds])
    value = gt.creator_value.set_index("creator")["value"].reindex(names).to_numpy()
    cms = {m: creator_matrix(scores[m], inputs.creators, creators_all)[:, [creators_all.index(c) for c in names]]
           for m in [*methods, *random_names]}
    for m in methods:
        cm = cms[m]
        per_seed = [np.nanmean(loco_per_output(cm, _wide(loco[loco["seed"] == s], gt.output_ids, names))) for s in seeds]
        rows.add(m, "loco_per_output", loco_per_output(cm, deltas),
                 float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else float("nan"), mode=mode)
        # per output, which creators matter *more than usual* for it: each creator's mean over outputs removed on
        # both sides. Outputs sampled from the model lose likelihood under any changed model (a second-order
        # effect, common to all outputs, that first-order methods cannot see); centring removes it.
        rows.add(m, "loco_per_output_centred", loco_per_output(cm - cm.mean(0), deltas - np.nanmean(deltas, 0)), mode=mode)
        rows.add(m, "loco_total", spearman(cm.sum(0), deltas.sum(0)), n=len(names), mode=mode)
        rows.add(m, "loco_heldout_value", spearman(cm.sum(0), value), n=len(names), mode=mode)
    if random_names:
        rows.add_pooled("random", "loco_per_output", [loco_per_output(cms[r], deltas) for r in random_names], mode=mode)
    # Seed noise of the truth. Reshuffled LOCO models are new training runs: two full-data models differ only
    # by their seed and, within one output, every LOCO difference shares the full model, so across creators
    # the noise is one retrained model's seed variance. Fixed-order LOCO models replay their reference's
    # run, so that bound does not apply; two LOCO seeds measure them (split-half agreement across creators).
    reliability = float("nan")
    if len(seeds) >= 2:
        reliability = _split_half_reliability(loco, seeds, gt.output_ids, names)
        out.facts.update(loco_reliability=reliability, loco_reliability_basis="two LOCO seeds")
        rows.add(NOISE, "loco_reliability", reliability, n=len(names), mode=mode)
    elif len(gt.references) >= 2 and mode == "reshuffled":
        (ua, ha), (ub, hb) = (gt.references[s] for s in sorted(gt.references)[:2])
        noise_var = float(np.mean((ua - ub) ** 2) / 2.0)
        across = np.nanvar(deltas, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rows.add(NOISE, "loco_reliability", np.clip(1.0 - noise_var / across, 0.0, 1.0), mode=mode)
        reliability = float(np.clip(1.0 - noise_var / np.nanmean(across), 0.0, 1.0))
        held_var = float(np.nanvar(value))
        out.facts.update(
            loco_noise_sd=float(np.sqrt(noise_var)), loco_signal_sd=float(np.sqrt(np.nanmean(across))),
            loco_reliability=reliability, loco_reliability_basis="two full-data seeds",
            heldout_noise_sd=float(abs(ha - hb) / np.sqrt(2.0)), heldout_value_sd=float(np.sqrt(held_var)),
            heldout_reliability=float(np.clip(1.0 - (ha - hb) ** 2 / 2.0 / held_var, 0.0, 1.0)) if held_var > 0 else float("nan"))
    # the training-data-share baseline: every output credits each creator by its training events
    size = inputs.corpus.groupby("creator")["events"].sum().reindex(names).to_numpy(dtype=float)
    size_cm = np.tile(size, (n_out, 1))
    rows.add("catalogue_size", "loco_per_output", loco_per_output(size_cm, deltas), mode=mode)
    rows.add("catalogue_size", "loco_heldout_value", spearman(size, value), n=len(names), mode=mode)
    out.truths["loco"] = (deltas, names)
    # the catalogue-level estimators, fitted against this truth on the other creators only
    group, fits = catalogue_cms(catalogue, deltas, names, folds)
    if group:
        out.facts.update({f"{m}_folds": f for m, f in fits.items()})
        for m, cm in group.items():
            rows.add(m, "loco_per_output", loco_per_output(cm, deltas), mode=mode)
    _partial_rows(rows, {**cms, **group}, deltas, size, "creator_partial_r_size", mode)
    # creator-level signal-to-noise ratio of every method, on the scale the economy's noise sweep uses
    snr_tables = [_snr_table("loco", deltas, reliability, {**cms, **group}, size_cm, len(names), mode, n_boot)]
    if len(seeds) >= 2:
        per_seed_d = [_wide(loco[loco["seed"] == s], gt.output_ids, names) for s in seeds[:2]]
        rows.add(NOISE, "loco_noise_ceiling", loco_per_output(per_seed_d[0], per_seed_d[1]), mode=mode)
        held = gt.loco[(gt.loco["output_id"] == HELDOUT) & gt.loco["creator"].isin(names)].pivot_table(
            index="creator", columns="seed", values="delta")
        rows.add(NOISE, "heldout_value_seed_agreement", spearman(held[seeds[0]].to_numpy(), held[seeds[1]].to_numpy()),
                 n=len(held), mode=mode)

    # ---- matched random controls: what the creator's music did beyond removing that much music
    controls = getattr(gt, "controls", None)
    if controls is not None and len(controls):
        out.controls_per_output, out.controls = control_summary(gt.loco, controls, inputs.corpus)
    if len(out.controls):
        out.controls.insert(0, "mode", _orders(gt.models, "ctrl"))
        net = out.controls_per_output.rename(columns={"net_delta": "delta"})
        net_outputs = net[(net["output_id"] != HELDOUT) & net["creator"].isin(names)]
        net_names = [c for c in names if c in set(net_outputs["creator"])]
        net_seeds = sorted(net_outputs["seed"].unique())
        out.facts.update(control_creators=len(net_names), control_seeds=[int(s) for s in net_seeds],
                         control_draws=int(controls["draw"].nunique()))
        summary = out.controls[out.controls["creator"].isin(net_names)]
        for where in ("outputs", "heldout"):
            loco_sum, ctrl_sum = summary[f"loco_{where}"].sum(), summary[f"control_{where}"].sum()
            share = float(ctrl_sum / loco_sum) if loco_sum else float("nan")
            out.facts[f"control_share_{where}"] = share
            rows.add("retraining (matched control)", f"control_share_{where}", share, n=len(summary), mode=mode)
        if len(net_names) >= 3:
            net_d = _wide(net_outputs, gt.output_ids, net_names)
            net_held = net[net["output_id"] == HELDOUT].groupby("creator")["delta"].mean().reindex(net_names).to_numpy()
            cols = [names.index(c) for c in net_names]
            net_cms = {m: cm[:, cols] for m, cm in cms.items()}
            for m in methods:
                rows.add(m, "loco_net_per_output", loco_per_output(net_cms[m], net_d), mode=mode)
                rows.add(m, "loco_net_heldout_value", spearman(net_cms[m].sum(0), net_held), n=len(net_names), mode=mode)
            if random_names:
                rows.add_pooled("random", "loco_net_per_output", [loco_per_output(net_cms[r], net_d) for r in random_names],
                                mode=mode)
            rows.add("catalogue_size", "loco_net_per_output", loco_per_output(size_cm[:, cols], net_d), mode=mode)
            rows.add("catalogue_size", "loco_net_heldout_value", spearman(size[cols], net_held), n=len(net_names), mode=mode)
            net_rel = float("nan")
            if len(net_seeds) >= 2:
                net_rel = _split_half_reliability(net_outputs, net_seeds, gt.output_ids, net_names)
                out.facts["loco_net_reliability"] = net_rel
                rows.add(NOISE, "loco_net_reliability", net_rel, n=len(net_names), mode=mode)
            out.truths["loco_net"] = (net_d, net_names)
            net_group, net_fits = catalogue_cms(catalogue, net_d, net_names, folds)
            if net_group:
                out.facts.update({f"{m}_net_folds": f for m, f in net_fits.items()})
                for m, cm in net_group.items():
                    rows.add(m, "loco_net_per_output", loco_per_output(cm, net_d), mode=mode)
            _partial_rows(rows, {**net_cms, **net_group}, net_d, size[cols], "creator_partial_r_size_net", mode)
            snr_tables.append(_snr_table("loco_net", net_d, net_rel, {**net_cms, **net_group}, size_cm[:, cols],
                                         len(net_names), mode, n_boot))
    out.snr = pd.concat(snr_tables, ignore_index=True)
    for r in out.snr.itertuples():
        suffix = "" if r.truth == "loco" else "_net"
        rows.add_interval(r.method, f"creator_snr{suffix}", r.snr, r.snr_low, r.snr_high, n_out, mode=mode)
        rows.add_interval(r.method, f"creator_snr{suffix}_corrected", r.snr_corrected, float("nan"), float("nan"), n_out,
                          mode=mode)

    # creator-level shares for the bars
    trak_share = table.creator_shares("trak").mean() if "trak" in table.methods else None
    sims = [m for m in table.methods if is_similarity_method(m)]
    cv = gt.creator_value.set_index("creator")
    pos_value = np.clip(cv["value"], 0, None)
    value_share = pos_value / pos_value.sum() if pos_value.sum() > 0 else pos_value * 0
    pieces = inputs.corpus["creator"].value_counts()
    for c in creators_all:
        row = {"creator": c, "pieces": int(pieces.get(c, 0)),
               "loco_value": float(cv["value"].get(c, np.nan)),
               "loco_basis": str(cv["basis"].get(c, "none")),
               "loco_value_share": float(value_share.get(c, np.nan)),
               "piece_share": float(pieces.get(c, 0) / len(inputs.corpus))}
        if trak_share is not None:
            row["trak_share"] = float(trak_share.get(c, 0.0))
        for sm in sims:
            row[f"{sm}_share"] = float(table.creator_shares(sm).mean().get(c, 0.0))
        out.creators.append(row)
    return out


def loo_metrics(gt, scores: dict[str, np.ndarray], methods: list[str], inputs, rows: MetricRows) -> dict:
    """Leave-one-piece-out: per method, Spearman over (piece, output) pairs between score and drop (mean over
    seeds), and the seed-vs-seed agreement of the drops. Returns facts."""
    if not len(gt.loo):
        return {}
    mode = _orders(gt.models, "loo")
    loo = gt.loo[gt.loo["output_id"] != HELDOUT]
    pos_of = {t: i for i, t in enumerate(inputs.corpus["train_id"].astype(str))}
    mean_loo = loo.groupby(["train_id", "output_id"])["delta"].mean().reset_index()
    pi = mean_loo["train_id"].map(pos_of).to_numpy()
    oi = mean_loo["output_id"].map({o: i for i, o in enumerate(gt.output_ids)}).to_numpy()
    facts = {"loo_pieces": int(loo["train_id"].nunique()), "loo_seeds": [int(s) for s in sorted(loo["seed"].unique())],
             "loo_order": mode}
    for m in methods:
        rows.add(m, "loo_corr", spearman(scores[m][oi, pi], mean_loo["delta"].to_numpy()), n=len(mean_loo), mode=mode)
    seeds = sorted(loo["seed"].unique())
    if len(seeds) >= 2:
        wide = loo.pivot_table(index=["train_id", "output_id"], columns="seed", values="delta")
        rows.add(NOISE, "loo_seed_agreement", spearman(wide[seeds[0]].to_numpy(), wide[seeds[1]].to_numpy()),
                 n=len(wide), mode=mode)
    return facts


def replay_exactness(gt, rows: MetricRows) -> tuple[pd.DataFrame, dict]:
    """Is fixed-order retraining trajectory-exact? A replay of a reference with nothing removed against the
    reference, in nats of each output's log-likelihood (and of held-out music per event), beside the median
    absolute change one piece left out (fixed order) makes.

    Returns:
        the tidy table (seed, output_id, reference, replay, abs_diff) and the facts: replay_max_abs_nats,
        replay_mean_abs_nats, replay_heldout_abs_nats, loo_median_abs_nats, loo_heldout_median_abs_nats.
    """
    facts: dict = {}
    recs = []
    for seed, (u, h) in sorted(getattr(gt, "replays", {}).items()):
        if seed not in gt.references:
            continue
        ru, rh = gt.references[seed]
        recs += [{"seed": int(seed), "output_id": o, "reference": float(a), "replay": float(b), "abs_diff": float(abs(b - a))}
                 for o, a, b in zip(gt.output_ids, ru, u)]
        recs.append({"seed": int(seed), "output_id": HELDOUT, "reference": float(rh), "replay": float(h),
                     "abs_diff": float(abs(h - rh))})
    table = pd.DataFrame(recs, columns=["seed", "output_id", "reference", "replay", "abs_diff"])
    if len(table):
        outs, held = table[table["output_id"] != HELDOUT], table[table["output_id"] == HELDOUT]
        facts.update(replay_seeds=sorted(int(s) for s in table["seed"].unique()),
                     replay_max_abs_nats=float(outs["abs_diff"].max()), replay_mean_abs_nats=float(outs["abs_diff"].mean()),
                     replay_heldout_abs_nats=float(held["abs_diff"].max()))
        method = "retraining (replay vs reference)"
        rows.add(method, "replay_max_abs_nats", facts["replay_max_abs_nats"], n=len(outs), mode="fixed")
        rows.add(method, "replay_mean_abs_nats", facts["replay_mean_abs_nats"], n=len(outs), mode="fixed")
        rows.add(method, "replay_heldout_abs_nats", facts["replay_heldout_abs_nats"], n=len(held), mode="fixed")
    models = gt.models
    if len(gt.loo) and "order" in models:
        fixed = models[(models["kind"] == "loo") & (models["order"] == "fixed")]
        keys = set(zip(fixed["name"].astype(str), fixed["seed"].astype(int)))
        loo = gt.loo[[(str(t), int(s)) in keys for t, s in zip(gt.loo["train_id"], gt.loo["seed"])]]
        outs, held = loo[loo["output_id"] != HELDOUT], loo[loo["output_id"] == HELDOUT]
        if len(outs):
            facts.update(loo_median_abs_nats=float(outs["delta"].abs().median()),
                         loo_heldout_median_abs_nats=float(held["delta"].abs().median()) if len(held) else float("nan"),
                         loo_fixed_models=len(keys))
            method = "retraining (one-piece drop)"
            rows.add(method, "loo_median_abs_nats", facts["loo_median_abs_nats"], n=len(outs), mode="fixed")
            rows.add(method, "loo_heldout_median_abs_nats", facts["loo_heldout_median_abs_nats"], n=len(held), mode="fixed")
    return table, facts
