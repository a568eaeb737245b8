"""The orchestration: every method of a run scored against its ground truth, in every retraining mode.

:func:`evaluate` gathers the methods' scores (:mod:`.methods`), adds each metric family's rows (:mod:`.lds` per
mode, :mod:`.leaveout`, :mod:`.overlap`), the costs (:mod:`.costs`) and the findings (:mod:`.report`), and
writes ``RUN/evaluation/``. The result is an :class:`Evaluation` of tidy tables.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..retrain import load_groundtruth, load_run_inputs
from ..table import AttributionTable
from .best import write_best
from .catalogue import CatalogueTerms, catalogue_terms
from .costs import COST_COLUMNS, cost_table
from .lds import lds_mode_metrics, mode_agreement
from .leaveout import SNR_COLUMNS, loco_metrics, loo_metrics, replay_exactness
from .methods import EVAL_DIR, method_scores, run_meta, stored_passage_grads, stored_trak_features
from .metrics import METRIC_COLUMNS, MetricRows
from .overlap import peer_metrics, similarity_metrics
from .report import findings, write_report

__all__ = ["Evaluation", "evaluate", "HEADLINE_MODE", "SNR_FILE", "SNR_NET_FILE", "FILES"]

log = logging.getLogger(__name__)

# The mode whose LDS is reported in full first (and fills the legacy lds_* facts): fixed order, the counterfactual a
# royalty claim names ("this training run without my music") and the one the economy's leave-one-creator-out truth
# uses; trajectory-exact (a replay reproduces the reference to 0.00034 nats, a one-piece drop moves it 2.97) and,
# on runs/default, the one with the higher seed-vs-seed ceiling (0.37 against the reshuffled 0.27). The reshuffled
# mode (what dattri and most TDA papers report) is shown beside it; see benchmarks/RESULTS.md.
HEADLINE_MODE = "fixed"
SNR_FILE = "creator_snr.parquet"  # against LOCO: the economy reads it to mark each method's measured SNR on its sweeps
SNR_NET_FILE = "creator_snr_net.parquet"  # the same against LOCO minus its matched random control
# every table evaluate writes into RUN/evaluation/ (a table with no rows this time is removed, never left stale)
FILES = {
    "metrics": "metrics.parquet",
    "lds": "lds_per_output.parquet",
    "lds_by_seed": "lds_by_seed.parquet",
    "creators": "creators.parquet",
    "profile": "rank_profile.parquet",
    "costs": "costs.parquet",
    "controls": "controls.parquet",
    "controls_per_output": "controls_per_output.parquet",
    "replay": "replay.parquet",
}


@dataclass
class Evaluation:
    """The result of :func:`evaluate`: tidy tables and the plain-language findings.

    Every table whose numbers were measured against retrained models has a ``mode`` column (the retraining
    mode: "reshuffled", "fixed"; "none" for numbers that involve no retraining).
    """

    metrics: pd.DataFrame  # method, family, mode, metric, value, ci_low, ci_high, spread, n
    lds: pd.DataFrame  # mode, method, output_id, lds
    creators: pd.DataFrame
    profile: pd.DataFrame
    costs: pd.DataFrame
    findings: list[str]
    facts: dict = field(default_factory=dict)
    folder: Path | None = None
    snr: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SNR_COLUMNS))  # per method and truth
    lds_by_seed: pd.DataFrame = field(default_factory=pd.DataFrame)  # mode, method, seed, same_seed, value, CI
    controls: pd.DataFrame = field(default_factory=pd.DataFrame)  # per creator: LOCO, matched control, net
    controls_per_output: pd.DataFrame = field(default_factory=pd.DataFrame)
    replay: pd.DataFrame = field(default_factory=pd.DataFrame)  # seed, output_id, reference, replay, abs_diff

    def row(self, method: str, metric: str, mode: str | None = None) -> pd.Series | None:
        """The metric row of ``method``; ``mode`` None takes the headline mode where a metric has several."""
        m = self.metrics
        rows = m[(m["method"] == method) & (m["metric"] == metric)]
        if mode is not None:
            rows = rows[rows["mode"] == mode]
        elif len(rows) > 1 and (rows["mode"] == self.facts.get("headline_mode")).any():
            rows = rows[rows["mode"] == self.facts.get("headline_mode")]
        return rows.iloc[0] if len(rows) else None

    def value(self, method: str, metric: str, mode: str | None = None) -> float:
        """A metric's value (NaN when absent); ``mode`` as in :meth:`row`."""
        row = self.row(method, metric, mode)
        return float(row["value"]) if row is not None else float("nan")


def lds_truths(gt) -> dict:
    """The LDS subsets of every retraining mode of a ground truth (mode -> LdsTruth), reshuffled first."""
    modes = dict(getattr(gt, "lds_modes", {}) or {})
    if not modes:  # a GroundTruth from before the modes existed: its LDS is the reshuffled one
        from ..retrain import LdsTruth

        modes["reshuffled"] = LdsTruth("reshuffled", gt.lds_masks, gt.lds_utilities, list(gt.lds_seeds),
                                       list(range(len(gt.lds_masks))))
    return dict(sorted(modes.items(), key=lambda kv: kv[0] != "reshuffled"))


def run_catalogue_terms(run_dir: Path, meta: dict, inputs) -> tuple[CatalogueTerms | None, list[dict]]:
    """The group-influence terms of every creator from traker's stored features (None when the cache is gone),
    with the final checkpoint's alone beside them (``final``), and their cost items."""
    features = stored_trak_features(run_dir, meta, inputs)
    if features is None:
        return None, []
    t0 = time.perf_counter()
    ratio = (inputs.output_tokens.shape[1] - 1) / (inputs.train_tokens.shape[1] - 1)  # events: output / window
    passages = stored_passage_grads(run_dir, meta, inputs)
    terms = catalogue_terms(*features, window_creator=inputs.creators[inputs.train_piece], length_ratio=ratio,
                            passage_grads=passages)
    costs = [{"item": "group influence: first- and second-order catalogue terms from stored features",
              "kind": "attribution", "seconds": time.perf_counter() - t0}]
    n_ckpts = len(features[0])
    if n_ckpts > 1 and passages is not None:  # the final checkpoint alone (group_influence_local_1ckpt)
        t1 = time.perf_counter()
        final = catalogue_terms(features[0][-1:], features[1][-1:], window_creator=inputs.creators[inputs.train_piece],
                                length_ratio=ratio, passage_grads=passages[-1:])
        terms = dataclasses.replace(terms, final=final)
        trak_seconds = float(meta.get("stages", {}).get("trak", {}).get("seconds", float("nan")))
        costs.append({"item": f"group influence (final checkpoint): its terms and 1/{n_ckpts} of the traker pass "
                              "(the final checkpoint's features and passages)",
                      "kind": "attribution", "seconds": time.perf_counter() - t1 + trak_seconds / n_ckpts})
    return terms, costs


def evaluate(
    run_dir: str | Path,
    dattri: bool | None = None,
    random_seeds: int = 5,
    k: int = 10,
    n_boot: int = 2000,
    dattri_batch_size: int = 32,
    dattri_checkpoints: tuple[str, ...] = ("all",),
    report: bool = True,
    ridges: tuple[float, ...] = (0.01, 0.1, 1.0),
    models_ensemble: bool = True,
    projection_seeds: int = 5,
    dattri_projection_seeds: int = 1,
    headline_mode: str = HEADLINE_MODE,
    methods: tuple[str, ...] = (),
    method_settings: dict[str, dict] | None = None,
    catalogue_folds: int | None = None,
) -> Evaluation:
    """Score every method of a run against its ground truth, in every retraining mode; write ``RUN/evaluation/``.

    Args:
        dattri: also run dattri's TRAK as an external peer (cached after the first run); None = if installed.
        dattri_checkpoints: ``"all"`` (the peer of ``trak``, method ``dattri_trak``) and/or ``"last"`` (the peer
            of ``trak_1ckpt``, method ``dattri_trak_1ckpt``). dattri's CPU path is slow (on the default run
            about 0.6 s per window and checkpoint on one shared core), so ``"last"`` is the affordable one.
        random_seeds: seeds of the random baseline (its mean and spread are reported).
        k: the "top-k" of the overlap and hidden-influencer metrics.
        ridges: TRAK recomputed from traker's stored features with these relative ridge terms
            (:func:`~attribution.evaluation.methods.trak_from_features`; methods ``trak_ridge<r>``): what
            regularisation would change, at no extra gradient cost. Skipped when the run's TRAK cache is gone.
        models_ensemble: also score ``trak_models`` (TRAK over independently trained models) when the ground truth
            kept full-data models of other seeds (``full.keep_weights``); cached after the first run.
        projection_seeds: final-checkpoint TRAK with this many random projections in all (the run's own and the
            next seeds): the spread of ``trak_1ckpt``'s LDS over projections, and their average, method
            ``trak_1ckpt_proj<N>``. 0 or 1 skips it; cached after the first run.
        dattri_projection_seeds: the same for the peer (with ``"last"`` in ``dattri_checkpoints``), so ours and
            the peer are compared over projections, not on one draw each. Every extra seed costs a full dattri
            pass (about 10 minutes on the default run); cached.
        methods: opt-in influence estimators (:mod:`attribution.estimators`): ``"ekfac"`` (EK-FAC through
            kronfluence) and/or ``"logra"`` (LoGra through dattri), on the run's final checkpoint, over its Linear
            layers; cached in ``RUN/evaluation/<name>.npz``. ``method_settings`` maps a name to its settings
            (:class:`~attribution.estimators.EkfacConfig`, :class:`~attribution.estimators.LograConfig`).
            ``"metagradient"``: replayed metagradients through the run's training (:mod:`.metagradient`; settings
            :class:`~attribution.estimators.metagradient.MetagradientConfig`, e.g. ``{"outputs": 20}``).
        headline_mode: the retraining mode reported first and in full (the others get their LDS, ceiling and
            cross-seed lines); its LDS facts are also the top-level ``lds_*`` facts.
        catalogue_folds: cross-validation of ``group_influence`` across creators: None leaves one creator out per
            fold, else this many folds. The most faithful causal method at creator level is written to
            ``best_method.yaml`` (see :mod:`attribution.best_method`).
    """
    run_dir = Path(run_dir)
    table = AttributionTable.load(run_dir)
    inputs = load_run_inputs(run_dir)
    gt = load_groundtruth(run_dir)
    meta = run_meta(run_dir)
    out_dir = run_dir / EVAL_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    if list(table.output_ids) != list(gt.output_ids):
        raise ValueError(f"{run_dir}: outputs.parquet and the ground truth list different outputs; rerun the ground truth")
    n_out, n_pieces = len(gt.output_ids), inputs.n_pieces
    k = max(1, min(k, n_pieces))

    ms = method_scores(run_dir, table, inputs, meta, dattri=dattri, random_seeds=random_seeds,
                       dattri_batch_size=dattri_batch_size, dattri_checkpoints=dattri_checkpoints, ridges=ridges,
                       models_ensemble=models_ensemble, projection_seeds=projection_seeds,
                       dattri_projection_seeds=dattri_projection_seeds, estimators=tuple(methods),
                       estimator_settings=method_settings)
    facts: dict = dict(ms.facts)
    catalogue, catalogue_costs = run_catalogue_terms(run_dir, meta, inputs) if len(gt.loco) else (None, [])
    ms.costs.extend(catalogue_costs)
    facts.update(n_outputs=n_out, n_pieces=n_pieces, k=k)
    rows = MetricRows(n_boot)

    # ---- LDS, per retraining mode
    own_seed = inputs.train_config.get("seed")
    truths = lds_truths(gt)
    lds_rows: list[dict] = []
    by_seed: list[dict] = []
    facts["lds_modes"] = {}
    for mode, truth in truths.items():
        res = lds_mode_metrics(truth, ms.scores, ms.methods, ms.random_names, rows, gt.output_ids,
                               own_seed=None if own_seed is None else int(own_seed), projections=ms.projections)
        if res is None:
            if mode == "reshuffled" or len(truth.masks):
                log.warning("fewer than 3 LDS subsets are finished in mode %s; its LDS is not reported", mode)
            continue
        lds_rows += res.per_output
        by_seed += res.by_seed
        facts["lds_modes"][mode] = res.facts
    facts["headline_mode"] = headline_mode if headline_mode in facts["lds_modes"] else next(iter(facts["lds_modes"]), None)
    head = facts["lds_modes"].get(facts["headline_mode"], {})
    if head:  # the top-level facts the benchmark and the report's header read
        facts.update(lds_subsets=head["subsets"], lds_models=head["models"], lds_fraction=head["fraction"],
                     lds_seeds=head["seeds"])
        for key, legacy in (("noise_subsets", "lds_noise_subsets"), ("trak_1ckpt_projection_lds", "projection_lds"),
                            ("dattri_trak_1ckpt_projection_lds", "dattri_projection_lds")):
            if key in head:
                facts[legacy] = head[key]
    if {"reshuffled", "fixed"} <= set(facts["lds_modes"]):
        agreement = mode_agreement(truths["reshuffled"], truths["fixed"], rows)
        if agreement is not None:
            facts["lds_mode_agreement"] = agreement

    # ---- trajectory-exact replay, leave-one-creator-out with its matched controls, leave-one-piece-out
    replay, replay_facts = replay_exactness(gt, rows)
    facts.update(replay_facts)
    leaveout = loco_metrics(gt, ms.scores, ms.methods, ms.random_names, inputs, table, rows, catalogue=catalogue,
                            folds=catalogue_folds)
    facts.update(leaveout.facts)
    facts.update(loo_metrics(gt, ms.scores, ms.methods, inputs, rows))

    # ---- similarity against TDA, and the peer against ours (no retraining)
    profile = similarity_metrics(ms.scores, ms.random_names, k, n_pieces, rows)
    peer_metrics(ms.scores, rows)

    costs, cost_facts = cost_table(ms.costs, gt.models, meta)
    facts.update(cost_facts)

    ev = Evaluation(
        metrics=rows.frame(),
        lds=pd.DataFrame(lds_rows, columns=["mode", "method", "output_id", "lds"]),
        creators=pd.DataFrame(leaveout.creators),
        profile=pd.DataFrame(profile, columns=["similarity", "tda", "rank", "relative_similarity"]),
        costs=costs,
        findings=[],
        facts=facts,
        folder=out_dir,
        snr=leaveout.snr,
        lds_by_seed=pd.DataFrame(by_seed, columns=["mode", "method", "family", "seed", "same_seed", "subsets", "value",
                                                   "ci_low", "ci_high"]),
        controls=leaveout.controls,
        controls_per_output=leaveout.controls_per_output,
        replay=replay,
    )
    best = write_best(run_dir, leaveout.snr, leaveout.truths, ms.scores, catalogue, inputs, costs, gt.models, facts)
    if best is not None:
        ev.facts["best_method"] = {k: best[k] for k in ("method", "snr", "snr_low", "snr_high", "catalogue_size_snr",
                                                        "cost_core_seconds", "ground_truth_core_seconds")}
    ev.findings = findings(ev)
    _write_tables(ev, out_dir)
    if report:
        write_report(ev, out_dir, run_dir)
    return ev


def _write_tables(ev: Evaluation, out_dir: Path) -> None:
    """Write every table; one without rows is removed, so a table from an earlier evaluation never lingers."""
    assert list(ev.metrics.columns) == METRIC_COLUMNS and list(ev.costs.columns) == COST_COLUMNS
    for attr, name in FILES.items():
        df = getattr(ev, attr)
        path = out_dir / name
        if len(df) or attr in ("metrics", "lds", "creators", "profile", "costs"):  # the core tables are always written
            df.to_parquet(path, index=False)
        else:
            path.unlink(missing_ok=True)
    for truth, name in (("loco", SNR_FILE), ("loco_net", SNR_NET_FILE)):
        part = ev.snr[ev.snr["truth"] == truth] if len(ev.snr) else ev.snr
        (out_dir / name).unlink(missing_ok=True)
        if len(part):
            part[SNR_COLUMNS].to_parquet(out_dir / name, index=False)

