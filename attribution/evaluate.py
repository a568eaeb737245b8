"""Attribution faithfulness: every method of a run scored against the same retraining ground truth.

The abstraction is an *evaluation*: piece-level score matrices (one per method, ``(n_outputs, n_pieces)``)
confronted with a :class:`~attribution.retrain.GroundTruth` of the same run. Methods come from the run's
attribution table (TRAK ensemble and one checkpoint, TracIn, Grad-Dot, Grad-Cos, the similarity proxies),
plus a seeded random baseline and an external peer, dattri's ``TRAKAttributor`` (:func:`dattri_trak_scores`),
computed here on the same model, checkpoints and windows.

Metrics (pure functions on arrays, each tested against hand-computed values):

* :func:`lds_per_output` – linear datamodeling score: per output, Spearman between the summed attribution
  of each retraining subset and the retrained model's log-likelihood of that output.
* :func:`loco_per_output` – per output, Spearman across creators between catalogue attribution (sum over
  the creator's pieces) and the leave-one-creator-out utility drop.
* :func:`topk_overlap` and :func:`mass_outside_topk` – how far similarity's top-k agrees with TDA, and the
  share of TDA's positive mass on pieces outside the similarity top-k ("hidden influencers").
* :func:`rank_profile` – mean similarity at each TDA rank (Figure 4 of Deng et al., 2312.06646).
* :func:`bootstrap_mean_ci` – a percentile bootstrap over outputs.

:func:`evaluate` writes ``RUN/evaluation/``: ``metrics.parquet`` (tidy: method, family, metric, value,
ci_low, ci_high, spread, n), ``lds_per_output.parquet``, ``creators.parquet``, ``rank_profile.parquet``,
the figures (PNG) and ``report.html``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.stats import rankdata

from .snr import bootstrap_mean_ci, creator_snr, pearson_r
from .retrain import HELDOUT, GroundTruth, RunInputs, load_groundtruth, load_run_inputs
from .table import AttributionTable, is_similarity_method
from .windows import piece_sum

__all__ = [
    "spearman",
    "lds_per_output",
    "bootstrap_mean_ci",
    "topk_overlap",
    "mass_outside_topk",
    "rank_profile",
    "creator_matrix",
    "loco_per_output",
    "creator_snr",
    "random_scores",
    "dattri_trak_scores",
    "trak_from_features",
    "stored_trak_features",
    "Evaluation",
    "evaluate",
    "findings",
    "lds_table",
    "write_report",
    "FIGURES",
]

log = logging.getLogger(__name__)

EVAL_DIR = "evaluation"
FIGURES = {
    "lds.png": "Linear datamodeling score per method (mean over outputs, 95% bootstrap CI)",
    "rank_profile.png": "Average similarity of the training pieces at each TDA rank",
    "creators.png": "Creators: TRAK share vs similarity share vs leave-creator-out value",
    "costs.png": "Cost of each method next to the retraining it approximates",
}
TDA_METHODS = ("trak", "trak_1ckpt", "tracin", "grad_dot", "grad_cos")
SNR_FILE = "creator_snr.parquet"  # the economy reads it to mark each method's measured SNR on its noise sweeps
SNR_COLUMNS = ["method", "family", "creators", "r", "r2", "snr", "snr_low", "snr_high", "snr_corrected", "reliability"]


# ------------------------------------------------------------------------------------- metrics
def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation in [-1, 1] (1: same order, -1: reversed); NaN if either side is constant."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    ra, rb = rankdata(a), rankdata(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def lds_per_output(scores: np.ndarray, masks: np.ndarray, utilities: np.ndarray) -> np.ndarray:
    """Linear datamodeling score of each output.

    Args:
        scores: (n_outputs, n_pieces) attribution of each piece to each output.
        masks: (M, n_pieces) bool, the pieces each retrained model saw.
        utilities: (M, n_outputs) the retrained models' log-likelihood of each output.

    Returns:
        (n_outputs,) Spearman in [-1, 1] between the summed attribution of each subset and the utility;
        1 means the attribution orders the subsets exactly as retraining does, 0 no better than chance.
    """
    predicted = np.asarray(masks, float) @ np.asarray(scores, float).T  # (M, n_outputs)
    return np.array([spearman(predicted[:, o], utilities[:, o]) for o in range(predicted.shape[1])])


def _topk(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest entries of each row, (n, k); ties broken by index (stable)."""
    return np.argsort(-x, axis=1, kind="stable")[:, :k]


def topk_overlap(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Per row, |top-k(a) ∩ top-k(b)| / k in [0, 1] (1: same k pieces; chance level k / n_pieces)."""
    ta, tb = _topk(a, k), _topk(b, k)
    return np.array([len(set(x) & set(y)) / k for x, y in zip(ta, tb)])


def mass_outside_topk(tda: np.ndarray, similarity: np.ndarray, k: int) -> np.ndarray:
    """Per row, share in [0, 1] of TDA's positive mass on pieces outside the similarity top-k.

    0: all the influence sits on the k most similar pieces; 1: none does ("hidden influencers"). A row
    without positive TDA mass gives NaN.
    """
    pos = np.clip(np.asarray(tda, float), 0.0, None)
    total = pos.sum(1)
    inside = np.take_along_axis(pos, _topk(similarity, k), axis=1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 1.0 - inside / total, np.nan)


def rank_profile(tda: np.ndarray, similarity: np.ndarray, normalise: bool = True) -> np.ndarray:
    """Mean similarity of the piece at each TDA rank (rank 0 = most influential), averaged over rows.

    With ``normalise`` each row's similarity is divided by its mean over pieces, so 1 is "as similar as
    the average training piece" and the curve compares across outputs and measures.
    """
    sim = np.asarray(similarity, float)
    if normalise:
        mean = sim.mean(1, keepdims=True)
        sim = sim / np.where(mean > 0, mean, 1.0)
    order = np.argsort(-np.asarray(tda, float), axis=1, kind="stable")
    return np.take_along_axis(sim, order, axis=1).mean(0)


def creator_matrix(scores: np.ndarray, creators: np.ndarray, names: list[str]) -> np.ndarray:
    """Sum piece columns into creator columns: (n_outputs, n_pieces) -> (n_outputs, len(names))."""
    index = {c: i for i, c in enumerate(names)}
    out = np.zeros((scores.shape[0], len(names)))
    np.add.at(out, (slice(None), np.array([index[c] for c in creators])), scores)
    return out


def loco_per_output(creator_scores: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Per output, Spearman across creators between catalogue attribution and the leave-creator-out drop."""
    return np.array([spearman(creator_scores[o], deltas[o]) for o in range(len(deltas))])


def random_scores(n_outputs: int, n_pieces: int, seed: int) -> np.ndarray:
    """The random baseline: i.i.d. standard normal scores (its LDS is 0 in expectation)."""
    return np.random.default_rng([seed, 7919]).standard_normal((n_outputs, n_pieces))


# ----------------------------------------------------------------- TRAK ridge from stored features
def trak_from_features(
    train_grads: list[np.ndarray], target_grads: list[np.ndarray], ridge: float = 0.0
) -> np.ndarray:
    """traker's TRAK estimator recomputed from its stored projected gradients, with a ridge term.

    For each checkpoint k, ``x_k (X_k^T X_k + lambda_k I)^{-1} X_k^T`` with the inverse rescaled by its mean
    absolute entry (as traker does), averaged over checkpoints; ``lambda_k = ridge * trace(X_k^T X_k) / p``,
    so ``ridge`` is relative to the mean eigenvalue and means the same on any model. ``ridge=0`` reproduces
    traker's ``trak`` scores. Shapes: each X_k (n_train, p), each x_k (n_targets, p) -> (n_targets, n_train).
    """
    total = None
    for X, x in zip(train_grads, target_grads):
        X, x = np.asarray(X, np.float64), np.asarray(x, np.float64)
        xtx = X.T @ X
        lam = ridge * np.trace(xtx) / xtx.shape[0]
        inv = np.linalg.inv(xtx + lam * np.eye(xtx.shape[0]))
        inv /= np.abs(inv).mean()
        part = x @ inv @ X.T
        total = part if total is None else total + part
    return total / len(train_grads)


def stored_trak_features(run_dir: Path, meta: dict, inputs: RunInputs) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """The projected training and output gradients traker stored for this run (None if the cache is gone)."""
    from .scoring import TrakConfig, cache_key

    trak = dict(meta.get("config", {}).get("trak", {}))
    trak.pop("checkpoints", None)
    try:
        ckpts = _trak_checkpoints(run_dir, meta)
    except FileNotFoundError:
        return None
    folder = run_dir / "cache" / "trak" / cache_key(ckpts, inputs.train_tokens, TrakConfig(**trak))
    paths = [(folder / str(i) / "grads.mmap", folder / str(i) / "sequence_grads.mmap") for i in range(len(ckpts))]
    if not all(a.is_file() and b.is_file() for a, b in paths):
        return None
    return [np.load(a, mmap_mode="r") for a, _ in paths], [np.load(b, mmap_mode="r") for _, b in paths]


# ------------------------------------------------------------------------------- dattri (peer)

def dattri_trak_scores(
    inputs: RunInputs,
    checkpoints: list[Path],
    proj_dim: int,
    regularization: float = 0.0,
    proj_seed: int = 0,
    batch_size: int = 64,
) -> np.ndarray:
    """dattri's ``TRAKAttributor`` on the run's model, checkpoints and windows (CPU path); (n_outputs, n_windows).

    The model output is the same sequence log-likelihood as our TRAK (dattri takes gradients of the
    negative log-likelihood for both training and target examples; the signs cancel), with dattri's own
    projector, which divides by sqrt(proj_dim) (traker's does not), so a non-zero ``regularization`` is
    not comparable with ``trak.lambda_reg``. Q = 1 - p(window) is 1 to float precision for a sequence
    likelihood, as in our TRAK.
    """
    try:
        from dattri.algorithm.trak import TRAKAttributor
        from dattri.task import AttributionTask
    except ImportError as exc:
        raise ImportError(
            "dattri is not installed; install the benchmark extra with `pip install -e '.[bench]'` "
            "or evaluate with --no-dattri"
        ) from exc
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from .model import ModelConfig, MusicTransformer, event_log_probs

    model = MusicTransformer(ModelConfig(**inputs.model_config)).eval()
    pad = inputs.pad_id

    def nll(params, data):
        (tokens,) = data
        logits = torch.func.functional_call(model, params, (tokens[:-1].unsqueeze(0),))[0]
        return -event_log_probs(logits, tokens[1:].unsqueeze(0), pad).sum()

    def probability(params, data):
        return torch.exp(-nll(params, data))

    def load(m, ckpt):
        m.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=False)["model"])
        return m.eval()

    task = AttributionTask(loss_func=nll, model=model, checkpoints=[str(p) for p in checkpoints], checkpoints_load_func=load)
    attributor = TRAKAttributor(
        task=task,
        correct_probability_func=probability,
        projector_kwargs={"proj_dim": proj_dim, "proj_seed": proj_seed, "device": "cpu"},
        device="cpu",
        regularization=regularization,
    )
    train = DataLoader(TensorDataset(torch.as_tensor(inputs.train_tokens, dtype=torch.long)), batch_size=batch_size, shuffle=False)
    test = DataLoader(TensorDataset(torch.as_tensor(inputs.output_tokens, dtype=torch.long)), batch_size=batch_size, shuffle=False)
    attributor.cache(train)
    with torch.no_grad():
        scores = attributor.attribute(test)  # (n_train, n_test)
    return scores.T.double().numpy()


# ------------------------------------------------------------------------------- orchestration
@dataclass
class Evaluation:
    """The result of :func:`evaluate`: tidy tables and the plain-language findings."""

    metrics: pd.DataFrame
    lds: pd.DataFrame
    creators: pd.DataFrame
    profile: pd.DataFrame
    costs: pd.DataFrame
    findings: list[str]
    facts: dict = field(default_factory=dict)
    folder: Path | None = None
    snr: pd.DataFrame = field(default_factory=pd.DataFrame)  # creator-level SNR per method (SNR_FILE)

    def value(self, method: str, metric: str) -> float:
        row = self.metrics[(self.metrics["method"] == method) & (self.metrics["metric"] == metric)]
        return float(row["value"].iloc[0]) if len(row) else float("nan")


def _family(method: str) -> str:
    if method.startswith("retraining"):
        return "noise"
    if method in ("random", "catalogue_size"):
        return "baseline"
    if method.startswith("dattri"):
        return "peer"
    return "similarity" if is_similarity_method(method) else "tda"


def _run_meta(run_dir: Path) -> dict:
    path = run_dir / "config.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def _trak_checkpoints(run_dir: Path, meta: dict) -> list[Path]:
    names = meta.get("metrics", {}).get("attribution", {}).get("trak_checkpoints")
    ckpts = [run_dir / "model" / n for n in names] if names else sorted((run_dir / "model").glob("ckpt_*.pt"))
    missing = [str(p) for p in ckpts if not p.is_file()]
    if missing or not ckpts:
        raise FileNotFoundError(
            f"TRAK checkpoints {missing or '(none)'} of {run_dir} are missing; dattri needs the model the run "
            "attributed with (rebuild the run, or evaluate with --no-dattri)"
        )
    return ckpts


def ensemble_checkpoints(run_dir: Path, meta: dict, own_seed: int | None) -> list[Path]:
    """The final checkpoints of independently trained full-data models: the run's own, then every ground-truth
    reference model (``ground_truth/full/all_seed<s>``, kept with ``full.keep_weights``) of a seed other than
    ``own_seed``, the run's (its reference of the same seed retrains the run's own model)."""
    from .retrain import GROUND_TRUTH_DIR

    found = []
    for folder in sorted((run_dir / GROUND_TRUTH_DIR / "full").glob("all_seed*")):
        ckpts = sorted(folder.glob("ckpt_*.pt"))
        if ckpts and (folder / "meta.yaml").is_file() and int(folder.name.removeprefix("all_seed")) != own_seed:
            found.append(ckpts[-1])
    return [_trak_checkpoints(run_dir, meta)[-1], *found] if found else []


def trak_over_models(run_dir: Path, meta: dict, inputs: RunInputs) -> tuple[np.ndarray, float, int] | None:
    """TRAK ensembled over independently trained models rather than checkpoints of one run (method ``trak_models``).

    TRAK's estimator averages over models trained with different randomness; a run's checkpoints are a cheap
    stand-in. With full-data reference models kept by the ground truth, this scores the run's outputs with
    traker over the run's final model and those models (same TRAK settings as the run, one passage per output),
    cached in ``RUN/cache/trak`` like the build's. Returns (scores (n_outputs, n_pieces), seconds, models) or None.
    """
    from .model import ModelConfig, MusicTransformer
    from .scoring import TrakConfig, compute_gradient_scores

    try:
        ckpts = ensemble_checkpoints(run_dir, meta, inputs.train_config.get("seed"))
    except FileNotFoundError:
        return None
    if len(ckpts) < 2:
        return None
    trak = dict(meta.get("config", {}).get("trak", {}))
    trak.pop("checkpoints", None)
    trak["segment_events"] = inputs.output_tokens.shape[1] - 1  # whole outputs: no passage scores needed
    g = compute_gradient_scores(MusicTransformer(ModelConfig(**inputs.model_config)), ckpts, inputs.train_tokens,
                                inputs.output_tokens, TrakConfig(**trak), run_dir / "cache" / "trak", progress=False)
    return piece_sum(g.methods["trak"], inputs.train_piece, inputs.n_pieces), g.seconds, len(ckpts)


def _projector_seed(meta: dict) -> int:
    """The projector seed the run's TRAK used (its config's ``trak.projector_seed``)."""
    return int(meta.get("config", {}).get("trak", {}).get("projector_seed", 0))


def trak_over_projections(run_dir: Path, meta: dict, inputs: RunInputs, n_seeds: int) -> tuple[list[np.ndarray], list[int], float] | None:
    """Final-checkpoint TRAK with other random projections (projector seeds after the run's own).

    TRAK's random projection is a source of noise of its own: two seeds of the same estimator on the same
    checkpoint score differently. This reruns traker on the run's final checkpoint with ``n_seeds - 1`` further
    projector seeds (same settings otherwise, one passage per output), cached in ``RUN/cache/trak`` like the
    build's. Returns (piece scores per extra seed, those seeds, seconds) or None when the checkpoint is gone; the
    seconds are those of the computation, also when it was cached (NaN for caches made before that was kept).
    """
    from .model import ModelConfig, MusicTransformer
    from .scoring import TrakConfig, compute_gradient_scores

    if n_seeds < 2:
        return None
    try:
        last = _trak_checkpoints(run_dir, meta)[-1:]
    except FileNotFoundError:
        return None
    trak = dict(meta.get("config", {}).get("trak", {}))
    trak.pop("checkpoints", None)
    trak["segment_events"] = inputs.output_tokens.shape[1] - 1  # whole outputs: no passage scores needed
    own = _projector_seed(meta)
    seeds = [own + i for i in range(1, n_seeds)]
    scores, seconds = [], 0.0
    for seed in seeds:
        g = compute_gradient_scores(MusicTransformer(ModelConfig(**inputs.model_config)), last, inputs.train_tokens,
                                    inputs.output_tokens, TrakConfig(**{**trak, "projector_seed": seed}),
                                    run_dir / "cache" / "trak", progress=False)
        scores.append(piece_sum(g.methods["trak"], inputs.train_piece, inputs.n_pieces))
        seconds += g.seconds
    return scores, seeds, seconds


def _cached_dattri(
    run_dir: Path, inputs: RunInputs, meta: dict, batch_size: int, last_only: bool = False, proj_seed: int | None = None
) -> tuple[np.ndarray, float]:
    """dattri piece scores and their cost in seconds, cached in evaluation/dattri_trak[_1ckpt].npz by settings.

    ``last_only`` uses the final checkpoint alone (the peer of ``trak_1ckpt``), at a quarter of the cost.
    ``proj_seed`` other than the run's own projector seed is cached beside it (``..._p<seed>.npz``).
    """
    trak = meta.get("config", {}).get("trak", {})
    own_seed = _projector_seed(meta)
    proj_seed = own_seed if proj_seed is None else int(proj_seed)
    stem = "dattri_trak_1ckpt" if last_only else "dattri_trak"
    path = run_dir / EVAL_DIR / (f"{stem}.npz" if proj_seed == own_seed else f"{stem}_p{proj_seed}.npz")
    cached = np.load(path, allow_pickle=False) if path.is_file() else None
    kept = json.loads(str(cached["settings"])) if cached is not None else {}
    common = {
        "proj_dim": int(trak.get("proj_dim", 512)),
        "regularization": float(trak.get("lambda_reg", 0.0)),
        "proj_seed": proj_seed,
        "n_windows": int(len(inputs.train_tokens)),
        "n_outputs": int(len(inputs.output_tokens)),
    }
    try:
        ckpts = _trak_checkpoints(run_dir, meta)
    except FileNotFoundError:
        # weights are not shipped (a fresh clone): scores cached for the run's named checkpoints and these settings
        # are the ones measured on them, so they stand; without such a cache there is nothing to score with
        names = meta.get("metrics", {}).get("attribution", {}).get("trak_checkpoints") or []
        expect = {**common, "checkpoints": list(names[-1:] if last_only else names)}
        if cached is not None and names and all(kept.get(k) == v for k, v in expect.items()):
            log.info("%s: the run's checkpoints are not here; using the dattri scores cached in %s", run_dir, path)
            return cached["scores"], float(cached["seconds"])
        raise
    if last_only:
        ckpts = ckpts[-1:]
    settings = {
        "checkpoints": [p.name for p in ckpts],
        "checkpoint_bytes": [p.stat().st_size for p in ckpts],
        "checkpoint_mtimes": [int(p.stat().st_mtime) for p in ckpts],
        **common,
    }
    if cached is not None and kept == settings:
        return cached["scores"], float(cached["seconds"])
    t0 = time.perf_counter()
    windows = dattri_trak_scores(
        inputs, ckpts, settings["proj_dim"], settings["regularization"], settings["proj_seed"], batch_size
    )
    seconds = time.perf_counter() - t0
    scores = piece_sum(windows, inputs.train_piece, inputs.n_pieces)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, scores=scores, seconds=seconds, settings=json.dumps(settings))
    return scores, seconds


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
) -> Evaluation:
    """Score every method of a run against its ground truth; write ``RUN/evaluation/``.

    Args:
        dattri: also run dattri's TRAK as an external peer (cached after the first run); None = if installed.
        dattri_checkpoints: ``"all"`` (the peer of ``trak``, method ``dattri_trak``) and/or ``"last"`` (the peer
            of ``trak_1ckpt``, method ``dattri_trak_1ckpt``). dattri's CPU path is slow (on the default run
            about 0.6 s per window and checkpoint on one shared core), so ``"last"`` is the affordable one.
        random_seeds: seeds of the random baseline (its mean and spread are reported).
        k: the "top-k" of the overlap and hidden-influencer metrics.
        ridges: TRAK recomputed from traker's stored features with these relative ridge terms
            (:func:`trak_from_features`; methods ``trak_ridge<r>``): what regularisation would change, at no
            extra gradient cost. Skipped when the run's TRAK cache is gone.
        models_ensemble: also score ``trak_models`` (:func:`trak_over_models`) when the ground truth kept
            full-data models of other seeds (``full.keep_weights``); cached after the first run.
        projection_seeds: final-checkpoint TRAK with this many random projections in all (the run's own and the
            next seeds, :func:`trak_over_projections`): the spread of ``trak_1ckpt``'s LDS over projections, and
            their average, method ``trak_1ckpt_proj<N>``. 0 or 1 skips it; cached after the first run.
        dattri_projection_seeds: the same for the peer (with ``"last"`` in ``dattri_checkpoints``): dattri's
            final-checkpoint TRAK under this many projector seeds, their LDS spread and their average
            (``dattri_trak_1ckpt_proj<N>``), so ours and the peer are compared over projections, not on one draw
            each. Every extra seed costs a full dattri pass (about 10 minutes on the default run); cached.
    """
    run_dir = Path(run_dir)
    table = AttributionTable.load(run_dir)
    inputs = load_run_inputs(run_dir)
    gt = load_groundtruth(run_dir)
    meta = _run_meta(run_dir)
    out_dir = run_dir / EVAL_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    if list(table.output_ids) != list(gt.output_ids):
        raise ValueError(f"{run_dir}: outputs.parquet and the ground truth list different outputs; rerun the ground truth")
    n_out, n_pieces = len(gt.output_ids), inputs.n_pieces
    k = max(1, min(k, n_pieces))

    facts: dict = {}
    dattri_projections: list[np.ndarray] = []  # dattri_trak_1ckpt under each projector seed, the run's own first
    scores: dict[str, np.ndarray] = {m: table.pivot(m).fillna(0.0).to_numpy() for m in table.methods}
    costs: list[dict] = []
    stages = meta.get("stages", {})
    if "trak" in stages:
        costs.append({"item": "trak + tracin + grad_dot + grad_cos (one traker pass)", "kind": "attribution",
                      "seconds": float(stages["trak"]["seconds"])})
    if "similarity" in stages:
        costs.append({"item": "similarity (all three measures)", "kind": "attribution",
                      "seconds": float(stages["similarity"]["seconds"])})
    if dattri is None:
        import importlib.util

        dattri = importlib.util.find_spec("dattri") is not None
        if not dattri:
            log.warning("dattri is not installed (pip install -e '.[bench]'); the external peer is left out")
    if dattri:
        for which in dattri_checkpoints:
            if which not in ("all", "last"):
                raise ValueError(f"dattri_checkpoints: {which!r} is not one of 'all', 'last'")
            name = "dattri_trak" if which == "all" else "dattri_trak_1ckpt"
            scores[name], seconds = _cached_dattri(run_dir, inputs, meta, dattri_batch_size, last_only=which == "last")
            costs.append({"item": f"{name} (dattri CPU path)", "kind": "attribution", "seconds": seconds})
            if which == "last" and dattri_projection_seeds > 1:  # the peer under other projector seeds, like ours
                own = _projector_seed(meta)
                extra = [own + i for i in range(1, dattri_projection_seeds)]
                dattri_projections = [scores[name]]
                for seed in extra:
                    sc, seconds = _cached_dattri(run_dir, inputs, meta, dattri_batch_size, last_only=True, proj_seed=seed)
                    dattri_projections.append(sc)
                    costs.append({"item": f"{name} with projector seed {seed} (dattri CPU path)", "kind": "attribution",
                                  "seconds": seconds})
                facts["dattri_projection_seeds"] = [own, *extra]
                scores[f"{name}_proj{len(dattri_projections)}"] = np.mean(dattri_projections, axis=0)
    features = stored_trak_features(run_dir, meta, inputs) if ridges else None
    if features is not None:
        t0 = time.perf_counter()
        last = ([features[0][-1]], [features[1][-1]])  # the final checkpoint alone: the peer of trak_1ckpt
        for r in ridges:
            windows = trak_from_features(*features, ridge=r)
            scores[f"trak_ridge{r:g}"] = piece_sum(windows, inputs.train_piece, n_pieces)
            if len(features[0]) > 1:
                scores[f"trak_1ckpt_ridge{r:g}"] = piece_sum(trak_from_features(*last, ridge=r), inputs.train_piece, n_pieces)
        costs.append({"item": f"trak_ridge and trak_1ckpt_ridge variants from stored features ({len(ridges)} each)", "kind": "attribution",
                      "seconds": time.perf_counter() - t0})
        if "trak" in scores:  # the recomputation must agree with traker at ridge 0
            check = piece_sum(trak_from_features(*features, ridge=0.0), inputs.train_piece, n_pieces)
            facts["trak_recompute_corr"] = float(np.corrcoef(check.ravel(), scores["trak"].ravel())[0, 1])
    if models_ensemble:
        over = trak_over_models(run_dir, meta, inputs)
        if over is not None:
            scores["trak_models"], seconds, facts["trak_models"] = over
            costs.append({"item": f"trak_models: traker over {over[2]} independently trained models", "kind": "attribution",
                          "seconds": seconds})
    projections: list[np.ndarray] = []  # trak_1ckpt under each projector seed, the run's own first
    if projection_seeds > 1 and "trak_1ckpt" in scores:
        extra = trak_over_projections(run_dir, meta, inputs, projection_seeds)
        if extra is not None:
            projections = [scores["trak_1ckpt"], *extra[0]]
            facts["projection_seeds"] = [_projector_seed(meta), *extra[1]]
            scores[f"trak_1ckpt_proj{len(projections)}"] = np.mean(projections, axis=0)
            costs.append({"item": f"trak_1ckpt with {len(extra[1])} more projector seeds", "kind": "attribution",
                          "seconds": extra[2]})
    for s in range(random_seeds):
        scores[f"random_{s}"] = random_scores(n_out, n_pieces, s)

    rows: list[dict] = []
    lds_rows: list[dict] = []

    def add(method: str, metric: str, values: np.ndarray | float, spread: float = float("nan"), n: int | None = None) -> None:
        if np.ndim(values):
            mean, lo, hi = bootstrap_mean_ci(values, n_boot=n_boot)
            n = int(np.isfinite(values).sum())
        else:
            mean, lo, hi = float(values), float("nan"), float("nan")
        rows.append({"method": method, "family": _family(method), "metric": metric, "value": mean,
                     "ci_low": lo, "ci_high": hi, "spread": spread, "n": n})

    methods = [m for m in scores if not m.startswith("random_")]
    random_names = [m for m in scores if m.startswith("random_")]

    # ---- LDS
    facts.update(n_outputs=n_out, n_pieces=n_pieces, k=k)
    done = np.isfinite(gt.lds_utilities).all(axis=2)  # (M, S): subset j finished with seed i
    have_lds = len(gt.lds_masks) >= 3
    if have_lds:
        target = np.nanmean(gt.lds_utilities, axis=1)  # (M, n_out) utility averaged over the seeds finished
        masks = gt.lds_masks
        # the seed spread compares seeds on the subsets every seed finished, so it is not a subset-count effect
        seed_cols = [i for i in range(len(gt.lds_seeds)) if done[:, i].sum() >= 3]
        common = done[:, seed_cols].all(1) if seed_cols else np.zeros(len(masks), bool)
        if common.sum() < 3:
            seed_cols = []
        half = np.arange(len(masks)) < len(masks) // 2
        facts.update(lds_subsets=int(len(masks)), lds_models=int(done.sum()), lds_fraction=float(masks.mean()),
                     lds_seeds=[gt.lds_seeds[i] for i in range(len(gt.lds_seeds)) if done[:, i].any()])

        def lds_block(name: str, sc: np.ndarray) -> tuple[np.ndarray, float]:
            per = lds_per_output(sc, masks, target)
            per_seed = [np.nanmean(lds_per_output(sc, masks[common], gt.lds_utilities[common, i])) for i in seed_cols]
            spread = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else float("nan")
            for oid, v in zip(gt.output_ids, per):
                lds_rows.append({"method": name, "output_id": oid, "lds": v})
            return per, spread

        for m in methods:
            per, spread = lds_block(m, scores[m])
            add(m, "lds", per, spread)
            if len(masks) >= 6:  # a Spearman over fewer than 3 subsets per half means nothing
                add(m, "lds_half_a", lds_per_output(scores[m], masks[half], target[half]))
                add(m, "lds_half_b", lds_per_output(scores[m], masks[~half], target[~half]))
        rand = [np.nanmean(lds_block(r, scores[r])[0]) for r in random_names]
        if rand:
            pooled = np.concatenate([lds_per_output(scores[r], masks, target) for r in random_names])
            mean, lo, hi = bootstrap_mean_ci(pooled, n_boot=n_boot)
            rows.append({"method": "random", "family": "baseline", "metric": "lds", "value": mean, "ci_low": lo,
                         "ci_high": hi, "spread": float(np.std(rand, ddof=1)) if len(rand) > 1 else float("nan"),
                         "n": len(random_names)})
        # each estimator's LDS under every projector seed: the spread projection noise alone makes
        for method, fact, draws in (("trak_1ckpt", "projection_lds", projections),
                                    ("dattri_trak_1ckpt", "dattri_projection_lds", dattri_projections)):
            if len(draws) > 1:
                per_proj = [float(np.nanmean(lds_per_output(p, masks, target))) for p in draws]
                facts[fact] = per_proj
                add(f"{method} (projector seeds)", "lds_over_projections", float(np.mean(per_proj)),
                    spread=float(np.std(per_proj, ddof=1)), n=len(per_proj))
        # Noise ceiling: how alike two training seeds rank the same subsets (subsets finished with both).
        agree = []
        for a in range(len(gt.lds_seeds)):
            for b in range(a + 1, len(gt.lds_seeds)):
                both = done[:, a] & done[:, b]
                if both.sum() >= 3:
                    ua, ub = gt.lds_utilities[both, a], gt.lds_utilities[both, b]
                    agree.append([spearman(ua[:, o], ub[:, o]) for o in range(n_out)])
                    facts["lds_noise_subsets"] = int(both.sum())
        if agree:
            add("retraining (seed vs seed)", "lds_noise_ceiling", np.nanmean(np.array(agree), axis=0))
    else:
        log.warning("fewer than 3 LDS subsets are finished; LDS is not reported")

    # ---- leave-one-creator-out
    creators_all = sorted(set(inputs.creators))
    creator_rows: list[dict] = []
    snr_table = pd.DataFrame(columns=SNR_COLUMNS)
    have_loco = len(gt.loco) > 0
    if have_loco:
        loco = gt.loco[(gt.loco["output_id"] != HELDOUT) & (gt.loco["creator"].isin(creators_all))]  # not the group
        mean_delta = loco.groupby(["output_id", "creator"])["delta"].mean().unstack("creator")
        names = [c for c in creators_all if c in mean_delta.columns]
        deltas = mean_delta.reindex(index=gt.output_ids, columns=names).to_numpy()
        seeds = sorted(loco["seed"].unique())
        facts.update(loco_creators=len(names), loco_seeds=[int(s) for s in seeds])
        value = gt.creator_value.set_index("creator")["value"].reindex(names).to_numpy()
        for m in methods:
            cm = creator_matrix(scores[m], inputs.creators, creators_all)[:, [creators_all.index(c) for c in names]]
            per_seed = []
            for s in seeds:
                d = loco[loco["seed"] == s].pivot_table(index="output_id", columns="creator", values="delta")
                d = d.reindex(index=gt.output_ids, columns=names).to_numpy()
                per_seed.append(np.nanmean(loco_per_output(cm, d)))
            add(m, "loco_per_output", loco_per_output(cm, deltas),
                float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else float("nan"))
            # per output, which creators matter *more than usual* for it: each creator's mean over outputs removed on
            # both sides. Outputs sampled from the model lose likelihood under any changed model (a second-order
            # effect, common to all outputs, that first-order methods cannot see); centring removes it.
            add(m, "loco_per_output_centred", loco_per_output(cm - cm.mean(0), deltas - np.nanmean(deltas, 0)))
            add(m, "loco_total", spearman(cm.sum(0), deltas.sum(0)), n=len(names))
            add(m, "loco_heldout_value", spearman(cm.sum(0), value), n=len(names))
        rand = []
        for r in random_names:
            cm = creator_matrix(scores[r], inputs.creators, creators_all)[:, [creators_all.index(c) for c in names]]
            rand.append(loco_per_output(cm, deltas))
        if rand:
            pooled = np.concatenate(rand)
            mean, lo, hi = bootstrap_mean_ci(pooled, n_boot=n_boot)
            rows.append({"method": "random", "family": "baseline", "metric": "loco_per_output", "value": mean,
                         "ci_low": lo, "ci_high": hi,
                         "spread": float(np.std([np.nanmean(x) for x in rand], ddof=1)) if len(rand) > 1 else float("nan"),
                         "n": len(rand)})
        # Seed noise of the truth. Reshuffled LOCO models are new training runs: two full-data models differ only
        # by their seed and, within one output, every LOCO difference shares the full model, so across creators
        # the noise is one retrained model's seed variance. Fixed-order LOCO models replay their reference's
        # run, so that bound does not apply; two LOCO seeds measure them (split-half agreement across creators).
        reliability = float("nan")
        orders = set(gt.models.loc[gt.models["kind"] == "loco", "order"]) if "order" in gt.models else {"reshuffled"}
        facts["loco_order"] = ", ".join(sorted(orders))
        if len(seeds) >= 2:
            pair = [loco[loco["seed"] == s].pivot_table(index="output_id", columns="creator", values="delta")
                    .reindex(index=gt.output_ids, columns=names).to_numpy() for s in seeds[:2]]
            half = max(float(np.nanmean(pearson_r(*pair))), 0.0)  # one seed's reliability (split-half)
            reliability = float(np.clip(2 * half / (1 + half), 0.0, 1.0))  # Spearman-Brown: the mean of two seeds
            facts.update(loco_reliability=reliability, loco_reliability_basis="two LOCO seeds")
            add("retraining (seed vs seed)", "loco_reliability", reliability, n=len(names))
        elif len(gt.references) >= 2 and orders == {"reshuffled"}:
            (ua, ha), (ub, hb) = (gt.references[s] for s in sorted(gt.references)[:2])
            noise_var = float(np.mean((ua - ub) ** 2) / 2.0)
            across = np.nanvar(deltas, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                add("retraining (seed vs seed)", "loco_reliability", np.clip(1.0 - noise_var / across, 0.0, 1.0))
            reliability = float(np.clip(1.0 - noise_var / np.nanmean(across), 0.0, 1.0))
            held_var = float(np.nanvar(value))
            facts.update(loco_noise_sd=float(np.sqrt(noise_var)), loco_signal_sd=float(np.sqrt(np.nanmean(across))),
                         loco_reliability=reliability, loco_reliability_basis="two full-data seeds", heldout_noise_sd=float(abs(ha - hb) / np.sqrt(2.0)),
                         heldout_value_sd=float(np.sqrt(held_var)),
                         heldout_reliability=float(np.clip(1.0 - (ha - hb) ** 2 / 2.0 / held_var, 0.0, 1.0)) if held_var > 0 else float("nan"))
        # the training-data-share baseline: every output credits each creator by its training events
        size = inputs.corpus.groupby("creator")["events"].sum().reindex(names).to_numpy(dtype=float)
        size_cm = np.tile(size, (n_out, 1))
        add("catalogue_size", "loco_per_output", loco_per_output(size_cm, deltas))
        add("catalogue_size", "loco_heldout_value", spearman(size, value), n=len(names))
        # creator-level signal-to-noise ratio of every method, on the scale the economy's noise sweep uses
        snr_rows = [{"method": "catalogue_size", "family": "baseline",
                     **creator_snr(size_cm, deltas, reliability, n_boot=n_boot)}]
        for m in [*methods, *random_names]:
            cm = creator_matrix(scores[m], inputs.creators, creators_all)[:, [creators_all.index(c) for c in names]]
            snr_rows.append({"method": m, "family": _family(m), **creator_snr(cm, deltas, reliability, n_boot=n_boot)})
        snr = pd.DataFrame(snr_rows)
        rand = snr["method"].str.startswith("random_")
        if rand.any():
            pooled = snr[rand][["r", "r2", "snr", "snr_low", "snr_high", "snr_corrected"]].mean().to_dict()
            snr = pd.concat([snr[~rand], pd.DataFrame([{"method": "random", "family": "baseline", **pooled}])], ignore_index=True)
        snr.insert(2, "creators", len(names))
        snr["reliability"] = reliability
        snr_table = snr
        for r in snr.itertuples():
            rows.append({"method": r.method, "family": r.family, "metric": "creator_snr", "value": r.snr,
                         "ci_low": r.snr_low, "ci_high": r.snr_high, "spread": float("nan"), "n": n_out})
            rows.append({"method": r.method, "family": r.family, "metric": "creator_snr_corrected",
                         "value": r.snr_corrected, "ci_low": float("nan"), "ci_high": float("nan"), "spread": float("nan"),
                         "n": n_out})
        if len(seeds) >= 2:
            per_seed_d = [
                loco[loco["seed"] == s].pivot_table(index="output_id", columns="creator", values="delta")
                .reindex(index=gt.output_ids, columns=names).to_numpy() for s in seeds[:2]
            ]
            add("retraining (seed vs seed)", "loco_noise_ceiling", loco_per_output(per_seed_d[0], per_seed_d[1]))
            held = gt.loco[(gt.loco["output_id"] == HELDOUT) & gt.loco["creator"].isin(names)].pivot_table(index="creator", columns="seed", values="delta")
            add("retraining (seed vs seed)", "heldout_value_seed_agreement",
                spearman(held[seeds[0]].to_numpy(), held[seeds[1]].to_numpy()), n=len(held))
        # creator-level shares for the bars
        trak_share = table.creator_shares("trak").mean() if "trak" in table.methods else None
        sims = [m for m in table.methods if is_similarity_method(m)]
        pos_value = np.clip(gt.creator_value.set_index("creator")["value"], 0, None)
        value_share = pos_value / pos_value.sum() if pos_value.sum() > 0 else pos_value * 0
        pieces = inputs.corpus["creator"].value_counts()
        for c in creators_all:
            row = {"creator": c, "pieces": int(pieces.get(c, 0)),
                   "loco_value": float(gt.creator_value.set_index("creator")["value"].get(c, np.nan)),
                   "loco_basis": str(gt.creator_value.set_index("creator")["basis"].get(c, "none")),
                   "loco_value_share": float(value_share.get(c, np.nan)),
                   "piece_share": float(pieces.get(c, 0) / len(inputs.corpus))}
            if trak_share is not None:
                row["trak_share"] = float(trak_share.get(c, 0.0))
            for sm in sims:
                row[f"{sm}_share"] = float(table.creator_shares(sm).mean().get(c, 0.0))
            creator_rows.append(row)

    # ---- leave-one-piece-out (noisy; reported for what it is)
    if len(gt.loo):
        loo = gt.loo[gt.loo["output_id"] != HELDOUT]
        pos_of = {t: i for i, t in enumerate(inputs.corpus["train_id"].astype(str))}
        mean_loo = loo.groupby(["train_id", "output_id"])["delta"].mean().reset_index()
        pi = mean_loo["train_id"].map(pos_of).to_numpy()
        oi = mean_loo["output_id"].map({o: i for i, o in enumerate(gt.output_ids)}).to_numpy()
        facts.update(loo_pieces=int(loo["train_id"].nunique()), loo_seeds=[int(s) for s in sorted(loo["seed"].unique())])
        for m in methods:
            add(m, "loo_corr", spearman(scores[m][oi, pi], mean_loo["delta"].to_numpy()), n=len(mean_loo))
        seeds = sorted(loo["seed"].unique())
        if len(seeds) >= 2:
            wide = loo.pivot_table(index=["train_id", "output_id"], columns="seed", values="delta")
            add("retraining (seed vs seed)", "loo_seed_agreement",
                spearman(wide[seeds[0]].to_numpy(), wide[seeds[1]].to_numpy()), n=len(wide))

    # ---- similarity against TDA
    profile_rows: list[dict] = []
    sims = [m for m in scores if is_similarity_method(m)]
    if "trak" in scores:
        for sm in sims:
            add(sm, f"top{k}_overlap_with_trak", topk_overlap(scores[sm], scores["trak"], k))
            add(sm, f"trak_mass_outside_top{k}", mass_outside_topk(scores["trak"], scores[sm], k))
            prof = rank_profile(scores["trak"], scores[sm])
            profile_rows += [{"similarity": sm, "tda": "trak", "rank": r + 1, "relative_similarity": v} for r, v in enumerate(prof)]
        add("random", f"top{k}_overlap_with_trak", float(k / n_pieces), n=n_pieces)
        add("random", f"trak_mass_outside_top{k}", np.nanmean(
            [mass_outside_topk(scores["trak"], scores[r], k) for r in random_names], axis=0) if random_names else float("nan"))

    # ---- the peer against ours, score by score (needs no ground truth)
    for ours, peer in (("trak", "dattri_trak"), ("trak_1ckpt", "dattri_trak_1ckpt")):
        if ours in scores and peer in scores:
            add(peer, f"spearman_with_{ours}", np.array([spearman(a, b) for a, b in zip(scores[ours], scores[peer])]))

    # ---- costs
    for kind, label in (("lds", "retraining: LDS subsets"), ("loco", "retraining: leave-one-creator-out"),
                        ("loo", "retraining: leave-one-piece-out"), ("full", "retraining: full-data references")):
        n_models = int((gt.models["kind"] == kind).sum())
        if n_models:
            costs.append({"item": f"{label} ({n_models} models)", "kind": "ground truth", "seconds": gt.seconds(kind),
                          "core_seconds": gt.core_seconds(kind)})
    # CPU-seconds make a 2-thread build stage and 1- or 2-thread retraining comparable; a build that left the
    # thread count to torch ran on every core of its machine (taken to be this one's)
    build_threads = int(meta.get("config", {}).get("threads") or meta.get("machine", {}).get("cpus") or os.cpu_count() or 1)
    for c in costs:
        c["core_seconds"] = c["seconds"] * build_threads if c["kind"] == "attribution" else c.pop("core_seconds")
    costs_df = pd.DataFrame(costs, columns=["item", "kind", "seconds", "core_seconds"])
    gt_total = gt.core_seconds()
    facts.update(ground_truth_core_seconds=gt_total, build_threads=build_threads, models=int(len(gt.models)),
                 seconds_per_model=float(gt.models["seconds"].median()) if len(gt.models) else float("nan"))

    metrics = pd.DataFrame(rows, columns=["method", "family", "metric", "value", "ci_low", "ci_high", "spread", "n"])
    ev = Evaluation(
        metrics=metrics,
        lds=pd.DataFrame(lds_rows, columns=["method", "output_id", "lds"]),
        creators=pd.DataFrame(creator_rows),
        profile=pd.DataFrame(profile_rows, columns=["similarity", "tda", "rank", "relative_similarity"]),
        costs=costs_df,
        findings=[],
        facts=facts,
        folder=out_dir,
        snr=snr_table,
    )
    ev.findings = findings(ev)
    metrics.to_parquet(out_dir / "metrics.parquet", index=False)
    ev.lds.to_parquet(out_dir / "lds_per_output.parquet", index=False)
    ev.creators.to_parquet(out_dir / "creators.parquet", index=False)
    ev.profile.to_parquet(out_dir / "rank_profile.parquet", index=False)
    costs_df.to_parquet(out_dir / "costs.parquet", index=False)
    (out_dir / SNR_FILE).unlink(missing_ok=True)
    if len(snr_table):
        snr_table[SNR_COLUMNS].to_parquet(out_dir / SNR_FILE, index=False)
    if report:
        write_report(ev, out_dir, run_dir)
    return ev


# ------------------------------------------------------------------------------------ findings
def _fmt_ci(ev: Evaluation, method: str, metric: str) -> str:
    row = ev.metrics[(ev.metrics["method"] == method) & (ev.metrics["metric"] == metric)]
    if not len(row):
        return "n/a"
    r = row.iloc[0]
    if np.isfinite(r["ci_low"]):
        return f"{r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
    return f"{r['value']:.3f}"


def findings(ev: Evaluation) -> list[str]:
    """Plain-language statements; every number in them is read from ``ev``'s tables."""
    out: list[str] = []
    m = ev.metrics
    lds = m[m["metric"] == "lds"].set_index("method")["value"]
    if len(lds):
        best = lds.drop(labels=["random"], errors="ignore").idxmax()
        out.append(
            f"Against {ev.facts.get('lds_models')} models retrained on {ev.facts.get('lds_subsets')} random {ev.facts.get('lds_fraction', 0):.0%} subsets of the pieces, the most faithful method is "
            f"{best} with LDS {_fmt_ci(ev, best, 'lds')} (mean over {ev.facts['n_outputs']} outputs, 95% bootstrap CI); "
            f"the random baseline scores {_fmt_ci(ev, 'random', 'lds')}."
        )
        proj, peer_proj = ev.facts.get("projection_lds"), ev.facts.get("dattri_projection_lds")
        over_projections = bool(proj and peer_proj and len(proj) > 1 and len(peer_proj) > 1)
        for ours, peer, what in (("trak", "dattri_trak", "all checkpoints"), ("trak_1ckpt", "dattri_trak_1ckpt", "the final checkpoint")):
            if ours in lds and peer in lds:
                verdict = "at least matches" if lds[ours] >= lds[peer] else "falls below"
                one_draw = over_projections and ours == "trak_1ckpt"
                out.append(
                    f"Our TRAK via traker ({ours}) {verdict} dattri's TRAK on the same model, {what} and ground truth: "
                    f"{_fmt_ci(ev, ours, 'lds')} vs {_fmt_ci(ev, peer, 'lds')}; the two differ only in their random "
                    "projections and numerics, so a gap inside the intervals is projection noise"
                    + (" (one projection each: the comparison over projections follows)." if one_draw else ".")
                )
                ridged = [x for x in lds.index if x.startswith(f"{ours}_ridge")]
                if lds[ours] < lds[peer] and ridged and not one_draw:
                    best_r = max(ridged, key=lambda x: lds[x])
                    verdict = "closes the gap" if lds[best_r] >= lds[peer] else "does not close the gap"
                    out.append(f"A relative ridge on our kernel {verdict}: {best_r} {_fmt_ci(ev, best_r, 'lds')} vs {peer} "
                               f"{_fmt_ci(ev, peer, 'lds')}.")
        if proj:
            avg = next((x for x in lds.index if x.startswith("trak_1ckpt_proj")), None)
            line = (f"Projection noise: trak_1ckpt under {len(proj)} projector seeds scores LDS {np.mean(proj):.3f} on average "
                    f"(sd {np.std(proj, ddof=1):.3f}, range {min(proj):.3f} to {max(proj):.3f}) on the same checkpoint.")
            if avg is not None:
                line += f" Averaging their scores ({avg}) gives {_fmt_ci(ev, avg, 'lds')}"
                if "dattri_trak_1ckpt" in lds and not over_projections:
                    verdict = "at least matches" if lds[avg] >= lds["dattri_trak_1ckpt"] else "falls below"
                    line += f", which {verdict} dattri's one projection, {_fmt_ci(ev, 'dattri_trak_1ckpt', 'lds')}"
                line += "."
            out.append(line)
        if over_projections:
            # one projection each is one draw each: compare the two estimators over their projector seeds
            diff = float(np.mean(proj) - np.mean(peer_proj))
            se = float(np.sqrt(np.var(proj, ddof=1) / len(proj) + np.var(peer_proj, ddof=1) / len(peer_proj)))
            verdict = "at least matches" if diff >= 0 else "falls below"
            within = "within" if abs(diff) < 2 * se else "beyond"
            line = (f"Over projections, like for like on the final checkpoint: ours (trak_1ckpt) {verdict} dattri's TRAK, "
                    f"LDS {np.mean(proj):.3f} (sd {np.std(proj, ddof=1):.3f}, {len(proj)} projector seeds) vs "
                    f"{np.mean(peer_proj):.3f} (sd {np.std(peer_proj, ddof=1):.3f}, {len(peer_proj)} seeds; "
                    f"range {min(peer_proj):.3f} to {max(peer_proj):.3f}); the difference {diff:+.3f} is {within} two "
                    f"standard errors ({se:.3f}) of projection noise.")
            ours_avg = next((x for x in lds.index if x.startswith("trak_1ckpt_proj")), None)
            peer_avg = next((x for x in lds.index if x.startswith("dattri_trak_1ckpt_proj")), None)
            if ours_avg and peer_avg:
                line += (f" Averaged over their projections: {ours_avg} {_fmt_ci(ev, ours_avg, 'lds')} vs {peer_avg} "
                         f"{_fmt_ci(ev, peer_avg, 'lds')}.")
            out.append(line)
        for base in ("trak", "trak_1ckpt"):
            ridge = [x for x in lds.index if x.startswith(f"{base}_ridge")]
            if ridge and base in lds:
                best_r = max(ridge, key=lambda x: lds[x])
                out.append(
                    f"Regularising {base}'s kernel (recomputed from the stored features, no new gradients): "
                    + ", ".join(f"{x} {_fmt_ci(ev, x, 'lds')}" for x in ridge)
                    + f" against {lds[base]:.3f} unregularised; best {best_r}."
                )
        if "trak_models" in lds and "trak" in lds:
            verdict = "beats" if lds["trak_models"] > lds["trak"] else "does not beat"
            out.append(
                f"TRAK over {ev.facts.get('trak_models')} independently trained models (trak_models) {verdict} TRAK over the "
                f"run's own checkpoints: {_fmt_ci(ev, 'trak_models', 'lds')} vs {_fmt_ci(ev, 'trak', 'lds')}."
            )
        if "trak" in lds and "trak_1ckpt" in lds:
            verdict = "helps" if lds["trak"] > lds["trak_1ckpt"] else "does not help here"
            out.append(
                f"Ensembling checkpoints {verdict}: TRAK over all checkpoints {_fmt_ci(ev, 'trak', 'lds')} vs the final "
                f"checkpoint alone {_fmt_ci(ev, 'trak_1ckpt', 'lds')}."
            )
        ceiling = ev.value("retraining (seed vs seed)", "lds_noise_ceiling")
        if np.isfinite(ceiling):
            out.append(
                f"Noise floor: two training seeds of the same subsets rank them alike with Spearman {ceiling:.3f}, so "
                "retraining noise alone caps what any method can reach; LDS differences smaller than the CIs above are not "
                "meaningful."
            )
        halves = m[m["metric"].isin(["lds_half_a", "lds_half_b"]) & (m["method"] == "trak")]["value"].to_numpy()
        if len(halves) == 2:
            out.append(
                f"On two disjoint halves of the subsets TRAK's LDS is {halves[0]:.3f} and {halves[1]:.3f} "
                "(how much the score moves with the choice of subsets)."
            )
        sims = [x for x in lds.index if is_similarity_method(x)]
        if sims and "trak" in lds:
            out.append(
                "Similarity as a counterfactual predictor: "
                + ", ".join(f"{s} LDS {lds[s]:.3f}" for s in sims)
                + f", against TRAK's {lds['trak']:.3f}."
            )
    loco = m[m["metric"] == "loco_per_output"].set_index("method")["value"]
    if len(loco) and "trak" in loco:
        out.append(
            f"Leave-one-creator-out ({ev.facts.get('loco_creators')} creators, seeds {ev.facts.get('loco_seeds')}): "
            f"per output, TRAK's catalogue attribution ranks creators like retraining with Spearman "
            f"{_fmt_ci(ev, 'trak', 'loco_per_output')} (random {_fmt_ci(ev, 'random', 'loco_per_output')})."
        )
        centred = m[m["metric"] == "loco_per_output_centred"].set_index("method")["value"]
        if "trak" in centred:
            best = centred.idxmax()
            out.append(
                "With each creator's mean over outputs removed on both sides (which outputs a creator matters more for "
                f"than usual), TRAK agrees with Spearman {_fmt_ci(ev, 'trak', 'loco_per_output_centred')}; best "
                f"{best} {_fmt_ci(ev, best, 'loco_per_output_centred')}."
            )
        ceiling = ev.value("retraining (seed vs seed)", "loco_noise_ceiling")
        if np.isfinite(ceiling):
            out.append(f"Between two LOCO seeds the per-output creator ranking agrees with Spearman {ceiling:.3f}.")
        rel = ev.facts.get("loco_reliability")
        if rel is not None and np.isfinite(rel) and "loco_noise_sd" not in ev.facts:
            out.append(f"Two LOCO seeds agree on each output's creator differences well enough that their mean is {rel:.0%} "
                       "signal (split-half reliability, Spearman-Brown).")
        elif "loco_order" in ev.facts and "fixed" in ev.facts["loco_order"] and len(ev.facts.get("loco_seeds", [])) < 2:
            out.append("The leave-one-creator-out models replay the reference run with the creator's windows removed (fixed "
                       "order), so their differences are free of batch-order noise; their remaining noise (chaotic divergence "
                       "of training) is not measured with one seed: add a second seed to loco.seeds to measure it.")
        if rel is not None and np.isfinite(rel) and "loco_noise_sd" in ev.facts:
            out.append(
                f"Seed noise in the truth: two full-data training seeds differ by {ev.facts['loco_noise_sd']:.2f} nats on an "
                f"output's log-likelihood, against a spread of {ev.facts['loco_signal_sd']:.2f} nats across creators' "
                f"leave-out differences, so {rel:.0%} of that spread is signal (the rest bounds every method's agreement)."
            )
    if len(ev.snr):
        snr = ev.snr.set_index("method")
        shown = [x for x in ("trak_models", "trak", "trak_1ckpt", "tracin", "grad_cos", "dattri_trak", "sim_embedding", "sim_pitch_hist",
                             "sim_interval_ngram", "catalogue_size", "random") if x in snr.index]
        out.append(
            "Creator-level signal-to-noise ratio against leave-one-creator-out (per output, correlation r across "
            f"{int(snr['creators'].iloc[0])} creators, mean over outputs; snr = r²/(1-r²), as the economy's noise sweep "
            "injects it; catalogue_size credits creators by training events, the training-data-share baseline): "
            + ", ".join(f"{x} {snr.loc[x, 'snr']:.2f} [{snr.loc[x, 'snr_low']:.2f}, {snr.loc[x, 'snr_high']:.2f}]" for x in shown)
            + ("; corrected for the truth's seed noise: "
               + ", ".join(f"{x} {snr.loc[x, 'snr_corrected']:.2f}" for x in shown if np.isfinite(snr.loc[x, "snr_corrected"]))
               if np.isfinite(snr["snr_corrected"]).any() else "")
            + "."
        )
    k = ev.facts.get("k")
    ov = m[m["metric"] == f"top{k}_overlap_with_trak"].set_index("method")["value"]
    hid = m[m["metric"] == f"trak_mass_outside_top{k}"].set_index("method")["value"]
    sims = [s for s in ov.index if is_similarity_method(s)]
    if sims:
        out.append(
            f"Similarity finds some of the top influencers: the top {k} most similar pieces share "
            + ", ".join(f"{ov[s]:.0%} ({s})" for s in sims)
            + f" of TRAK's top {k} (chance {ov.get('random', float('nan')):.1%})."
        )
        lo, hi = min(hid[s] for s in sims), max(hid[s] for s in sims)
        verdict = "most" if lo > 0.5 else ("much" if hi > 0.25 else "little")
        out.append(
            f"Hidden influencers: {lo:.0%}–{hi:.0%} of TRAK's positive attribution falls outside the {k} most similar "
            f"pieces (a random top-{k}: {hid.get('random', float('nan')):.0%}), so royalties paid on similarity alone "
            f"would miss {verdict} of the contribution TRAK measures."
        )
    if len(ev.costs):
        gt_s = ev.facts.get("ground_truth_core_seconds", 0.0)
        trak = ev.costs[ev.costs["item"].str.startswith("trak")]
        if len(trak) and gt_s > 0:
            t = trak.iloc[0]
            out.append(
                f"Cost: the traker pass ({t['seconds']:.0f} s on {ev.facts['build_threads']} threads, {t['core_seconds']:.0f} "
                f"CPU-seconds) is {t['core_seconds'] / gt_s:.1%} of the {ev.facts.get('models')} retrained models "
                f"({gt_s:.0f} CPU-seconds of training)."
            )
    return out


# -------------------------------------------------------------------------------------- report
def _figures(ev: Evaluation, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    m = ev.metrics
    lds = m[m["metric"] == "lds"].sort_values("value", ascending=True)
    if len(lds):
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(lds) + 1.5))
        colors = {"tda": "C0", "similarity": "C2", "baseline": "C7", "peer": "C3"}
        y = np.arange(len(lds))
        err = np.vstack([lds["value"] - lds["ci_low"], lds["ci_high"] - lds["value"]])
        ax.barh(y, lds["value"], color=[colors[f] for f in lds["family"]], xerr=np.nan_to_num(err), capsize=3)
        ax.set_yticks(y, lds["method"])
        ceiling = ev.value("retraining (seed vs seed)", "lds_noise_ceiling")
        if np.isfinite(ceiling):
            ax.axvline(ceiling, ls="--", color="k", lw=1, label=f"seed-vs-seed agreement {ceiling:.2f}")
            ax.legend(loc="lower right")
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel("LDS (Spearman, mean over outputs)")
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
    if len(ev.costs):
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(ev.costs) + 1.5))
        colors = ["C0" if k == "attribution" else "C1" for k in ev.costs["kind"]]
        ax.barh(ev.costs["item"], ev.costs["core_seconds"], color=colors)
        ax.set_xscale("log")
        ax.set_xlabel("CPU-seconds (log scale)")
        fig.tight_layout()
        fig.savefig(out_dir / "costs.png", dpi=110)
        plt.close(fig)


def lds_table(ev: Evaluation) -> pd.DataFrame:
    """One row per method: LDS with CI and seed spread, LOCO correlation, cost-free summary columns."""
    m = ev.metrics
    base = m[m["metric"] == "lds"][["method", "family", "value", "ci_low", "ci_high", "spread"]]
    base = base.rename(columns={"value": "lds", "spread": "lds_seed_sd"})
    for metric in ("loco_per_output", "loco_per_output_centred", "loco_total", "loco_heldout_value", "loo_corr"):
        part = m[m["metric"] == metric].set_index("method")["value"]
        base[metric] = base["method"].map(part)
    return base.sort_values("lds", ascending=False).reset_index(drop=True)


def write_report(ev: Evaluation, out_dir: Path, run_dir: Path) -> Path:
    """Draw the figures and render ``report.html`` from ``report_template.html``."""
    import jinja2

    _figures(ev, out_dir)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True)
    template = env.get_template("report_template.html")

    def fmt(x):
        return "" if x is None or (isinstance(x, float) and not np.isfinite(x)) else (f"{x:.3f}" if isinstance(x, float) else x)

    lt = lds_table(ev) if len(ev.metrics) else pd.DataFrame()
    others = ev.metrics[~ev.metrics["metric"].isin(["lds"])]
    html = template.render(
        run=str(run_dir),
        facts=ev.facts,
        findings=ev.findings,
        lds_columns=list(lt.columns),
        lds_rows=[[fmt(v) for v in row] for row in lt.itertuples(index=False)],
        metric_columns=list(others.columns),
        metric_rows=[[fmt(v) for v in row] for row in others.itertuples(index=False)],
        cost_rows=[[r.item, r.kind, f"{r.seconds:.1f}", f"{r.core_seconds:.1f}"] for r in ev.costs.itertuples(index=False)],
        snr_columns=list(ev.snr.columns),
        snr_rows=[[fmt(v) for v in row] for row in ev.snr.sort_values("snr", ascending=False).itertuples(index=False)],
        figures={name: caption for name, caption in FIGURES.items() if (out_dir / name).is_file()},
    )
    path = out_dir / "report.html"
    path.write_text(html)
    return path
