"""TRAK variants of an evaluation that need traker passes of their own (the run's build made ``trak`` and
``trak_1ckpt``):

* over **independently trained models** (:func:`trak_over_models`, methods ``trak_models`` and
  ``trak_models_k<k>``): the run's final model and the ground truth's kept full-data references of other seeds,
  ensembled over the first k of them for k = 1, 2, 4, 8, ... (LDS and cost as a function of k);
* under **other random projections** of the final checkpoint (:func:`trak_over_projections`);
* with **another output function**, the per-event margin instead of the log-likelihood (:func:`trak_margin`,
  methods ``trak_margin`` and ``trak_margin_1ckpt``).

Every variant scores whole outputs (one passage per output) with the run's TRAK settings otherwise, and keeps
traker's features in ``RUN/cache/trak`` like the build's. The ensemble's and the margin's piece scores are also
cached in ``RUN/evaluation/<method>.npz``, keyed to the checkpoints' bytes, so a clone without the weights
re-evaluates on them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..groundtruth_files import GROUND_TRUTH_DIR
from ..retrain import RunInputs
from ..windows import piece_sum
from .methods import EVAL_DIR, projector_seed, trak_checkpoints

__all__ = ["ENSEMBLE_SIZES", "ModelEnsemble", "ensemble_method", "ensemble_checkpoints", "trak_over_models", "trak_over_projections",
           "trak_margin"]

log = logging.getLogger(__name__)

ENSEMBLE_SIZES = (1, 2, 4, 8, 16)  # k of TRAK over k independently trained models (and every model there is)


def _trak_settings(meta: dict, inputs: RunInputs, **changes) -> dict:
    """The run's TRAK settings for whole outputs (no passage scores needed), with ``changes``."""
    trak = dict(meta.get("config", {}).get("trak", {}))
    trak.pop("checkpoints", None)
    trak["segment_events"] = inputs.output_tokens.shape[1] - 1
    return {**trak, **changes}


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _cache_key(method: str, ckpts: list[Path], trak: dict, inputs: RunInputs) -> dict:
    from ..estimators.common import fingerprint
    from ..train import code_versions

    return {"method": method, "trak": trak, "versions": code_versions(("traker", "torch"), missing="absent"),
            "checkpoints": [_sha(p) for p in ckpts],
            "windows": fingerprint(inputs.train_tokens), "outputs": fingerprint(inputs.output_tokens)}


def _cached(run_dir: Path, method: str, ckpts: list[Path], trak: dict, inputs: RunInputs, compute):
    """The method's result from ``RUN/evaluation/<method>.npz`` when made for exactly these checkpoints, settings,
    windows and outputs, else ``compute()``d and stored; without checkpoints (a clone without the weights) the
    cache made for the same settings, windows and outputs, or None."""
    from ..estimators.common import cached_scores

    path = run_dir / EVAL_DIR / f"{method}.npz"
    if ckpts:
        return cached_scores(path, _cache_key(method, ckpts, trak, inputs), compute)[0]
    held, _ = cached_scores(path, _cache_key(method, [], trak, inputs), None, ignore=("checkpoints",))
    if held is not None:
        log.info("%s: the weights %s needs are not here; using its scores cached in %s", run_dir, method, path)
    return held


# ----------------------------------------------------------------------- independently trained models
def ensemble_checkpoints(run_dir: Path, meta: dict, own_seed: int | None) -> list[Path]:
    """The final checkpoints of independently trained full-data models: the run's own, then every ground-truth
    reference model (``ground_truth/full/all_seed<s>``, kept with ``full.keep_weights``) of a seed other than
    ``own_seed``, the run's (its reference of the same seed retrains the run's own model), by seed."""
    found = []
    folders = sorted((run_dir / GROUND_TRUTH_DIR / "full").glob("all_seed*"), key=lambda f: int(f.name[8:]))
    for folder in folders:
        ckpts = sorted(folder.glob("ckpt_*.pt"))
        if ckpts and (folder / "meta.yaml").is_file() and int(folder.name.removeprefix("all_seed")) != own_seed:
            found.append(ckpts[-1])
    return [trak_checkpoints(run_dir, meta)[-1], *found] if found else []


@dataclass
class ModelEnsemble:
    """TRAK over the first k independently trained models, for each k of ``sizes``."""

    sizes: list[int]
    scores: dict[int, np.ndarray]  # k -> piece scores (n_outputs, n_pieces)
    seconds: dict[int, float]  # k -> cost: featurising and scoring k models (k/n of the measured n-model pass)
    n_models: int
    # k -> CPU-seconds of training the k - 1 models beyond the run's own (recorded by the ground truth; NaN when
    # their records are not there)
    training_core_seconds: dict[int, float]

    def methods(self) -> dict[str, np.ndarray]:
        """Method name -> scores (:func:`ensemble_method`)."""
        return {ensemble_method(k, self.n_models): self.scores[k] for k in self.sizes}


def ensemble_method(k: int, n_models: int) -> str:
    """The method name of TRAK over the first k of n models: ``trak_models`` over every model, else
    ``trak_models_k<k>``."""
    return "trak_models" if k == n_models else f"trak_models_k{k}"


def trak_over_models(run_dir: Path, meta: dict, inputs: RunInputs) -> ModelEnsemble | None:
    """TRAK ensembled over independently trained models rather than checkpoints of one run.

    TRAK's estimator averages over models trained with different randomness; a run's checkpoints are a cheap
    stand-in. With full-data reference models kept by the ground truth, this featurises the training windows
    under each of them once and scores the outputs (traker's ``finalize_scores`` over the first k models for each
    k of :data:`ENSEMBLE_SIZES` below the number of models, and over all). Every model has the same size and
    windows, so k models cost k/n of the measured n-model pass. Returns None when fewer than two models are
    there and nothing is cached.
    """
    from ..estimators.common import EstimatorResult

    trak = _trak_settings(meta, inputs)
    try:
        ckpts = ensemble_checkpoints(run_dir, meta, inputs.train_config.get("seed"))
    except FileNotFoundError:
        ckpts = []

    def compute() -> EstimatorResult:
        windows, seconds = _models_window_scores(run_dir, ckpts, inputs, trak)
        sizes = [k for k in ENSEMBLE_SIZES if k < len(ckpts)] + [len(ckpts)]
        return EstimatorResult(np.stack([windows[k] for k in sizes]), seconds, [], 0,
                               {"sizes": sizes, "models": len(ckpts),
                                "training_core_seconds": [_training_core_seconds(p) for p in ckpts[1:]]})

    res = _cached(run_dir, "trak_models", ckpts if len(ckpts) >= 2 else [], trak, inputs, compute)
    if res is None:
        return None
    sizes, n = [int(k) for k in res.facts["sizes"]], int(res.facts["models"])
    training = [float(x) for x in res.facts.get("training_core_seconds", [])]
    return ModelEnsemble(sizes=sizes, n_models=n,
                         scores={k: piece_sum(res.scores[i], inputs.train_piece, inputs.n_pieces) for i, k in enumerate(sizes)},
                         seconds={k: res.seconds * k / n for k in sizes},
                         training_core_seconds={k: float(sum(training[: k - 1])) if len(training) >= k - 1 else float("nan")
                                                for k in sizes})


def _training_core_seconds(ckpt: Path) -> float:
    """CPU-seconds the ground truth recorded for training the model of ``ckpt`` (seconds times threads)."""
    import yaml

    meta = yaml.safe_load((Path(ckpt).parent / "meta.yaml").read_text())
    return float(meta["seconds"]) * float(meta.get("threads") or 1)


def _models_window_scores(run_dir: Path, ckpts: list[Path], inputs: RunInputs, trak: dict) -> tuple[dict, float]:
    """Window scores of TRAK over the first k of ``ckpts`` for every k, and the seconds of the whole pass."""
    import torch

    from ..model import ModelConfig, MusicTransformer
    from ..scoring import TrakConfig, open_feature_store, score_experiments

    cfg = TrakConfig(**trak)
    t0 = time.perf_counter()
    store = open_feature_store(MusicTransformer(ModelConfig(**inputs.model_config)), ckpts, inputs.train_tokens, cfg,
                               run_dir / "cache" / "trak", progress=False)
    featurize = store.featurize_seconds if np.isfinite(store.featurize_seconds) else time.perf_counter() - t0
    t1 = time.perf_counter()
    out = torch.as_tensor(inputs.output_tokens, dtype=torch.long)
    n_out, n_events = out.shape[0], out.shape[1] - 1
    score_experiments(store, {"sequence": (out, torch.zeros(n_out, dtype=torch.long),
                                           torch.full((n_out,), n_events, dtype=torch.long))}, cfg.batch_size, False)
    windows = {k: np.array(store.traker.finalize_scores("sequence", model_ids=list(range(k)))).T
               for k in range(1, len(ckpts) + 1) if k in ENSEMBLE_SIZES or k == len(ckpts)}
    return windows, featurize + time.perf_counter() - t1


# ----------------------------------------------------------------------- other random projections
def trak_over_projections(run_dir: Path, meta: dict, inputs: RunInputs, n_seeds: int) -> tuple[list[np.ndarray], list[int], float] | None:
    """Final-checkpoint TRAK with other random projections (projector seeds after the run's own).

    TRAK's random projection is a source of noise of its own: two seeds of the same estimator on the same
    checkpoint score differently. This reruns traker on the run's final checkpoint with ``n_seeds - 1`` further
    projector seeds (same settings otherwise, one passage per output), cached in ``RUN/cache/trak`` like the
    build's. Returns (piece scores per extra seed, those seeds, seconds) or None when the checkpoint is gone; the
    seconds are those of the computation, also when it was cached (NaN for caches made before that was kept).
    """
    from ..model import ModelConfig, MusicTransformer
    from ..scoring import TrakConfig, compute_gradient_scores

    if n_seeds < 2:
        return None
    try:
        last = trak_checkpoints(run_dir, meta)[-1:]
    except FileNotFoundError:
        return None
    own = projector_seed(meta)
    seeds = [own + i for i in range(1, n_seeds)]
    scores, seconds = [], 0.0
    for seed in seeds:
        g = compute_gradient_scores(MusicTransformer(ModelConfig(**inputs.model_config)), last, inputs.train_tokens,
                                    inputs.output_tokens, TrakConfig(**_trak_settings(meta, inputs, projector_seed=seed)),
                                    run_dir / "cache" / "trak", progress=False)
        scores.append(piece_sum(g.methods["trak"], inputs.train_piece, inputs.n_pieces))
        seconds += g.seconds
    return scores, seeds, seconds


# ----------------------------------------------------------------------- the per-event margin output
def trak_margin(run_dir: Path, meta: dict, inputs: RunInputs) -> tuple[dict[str, np.ndarray], float] | None:
    """TRAK with the per-event margin as the attributed function (``trak.output: margin``) over the run's
    checkpoints: methods ``trak_margin`` (the ensemble, the peer of ``trak``) and ``trak_margin_1ckpt``.

    Returns (method -> piece scores, seconds) or None when the checkpoints are gone and nothing is cached.
    """
    from ..estimators.common import EstimatorResult

    trak = _trak_settings(meta, inputs, output="margin")
    try:
        ckpts = trak_checkpoints(run_dir, meta)
    except FileNotFoundError:
        ckpts = []

    def compute() -> EstimatorResult:
        from ..model import ModelConfig, MusicTransformer
        from ..scoring import TrakConfig, compute_gradient_scores

        g = compute_gradient_scores(MusicTransformer(ModelConfig(**inputs.model_config)), ckpts, inputs.train_tokens,
                                    inputs.output_tokens, TrakConfig(**trak), run_dir / "cache" / "trak", progress=False)
        return EstimatorResult(np.stack([g.methods["trak"], g.methods["trak_1ckpt"]]), g.seconds, [], g.n_params,
                               {"checkpoints": len(ckpts)})

    res = _cached(run_dir, "trak_margin", ckpts, trak, inputs, compute)
    if res is None:
        return None
    both = [piece_sum(s, inputs.train_piece, inputs.n_pieces) for s in res.scores]
    return {"trak_margin": both[0], "trak_margin_1ckpt": both[1]}, res.seconds
