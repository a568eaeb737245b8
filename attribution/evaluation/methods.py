"""Methods: the score matrix of every method an evaluation confronts with the ground truth.

Each method is a piece-level score matrix ``(n_outputs, n_pieces)``. They come from:

* the run's attribution table (TRAK over the run's checkpoints and its final one, TracIn, Grad-Dot, Grad-Cos,
  the similarity proxies);
* TRAK recomputed from traker's stored features with a ridge term (:func:`trak_from_features`);
* TRAK over independently trained full-data models (k = 1, 2, 4, ...), under other random projections and with
  the per-event margin as output function (:mod:`.trak_variants`);
* an external peer, dattri's ``TRAKAttributor`` on the same model, checkpoints and windows
  (:func:`dattri_trak_scores`, cached by :func:`cached_dattri`);
* influence-function estimators through external libraries, opt-in: EK-FAC via kronfluence (``ekfac``) and LoGra
  via dattri (``logra``), on the run's final checkpoint (:mod:`attribution.estimators`, cached by
  :func:`cached_estimator`);
* a seeded random baseline (:func:`random_scores`).

:func:`method_scores` gathers them all, with what each cost.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..retrain import RunInputs
from ..table import AttributionTable
from ..windows import piece_sum

__all__ = [
    "EVAL_DIR",
    "MethodScores",
    "method_scores",
    "random_scores",
    "trak_from_features",
    "stored_trak_features",
    "dattri_trak_scores",
    "cached_dattri",
    "run_meta",
    "trak_checkpoints",
    "projector_seed",
    "cached_estimator",
]

log = logging.getLogger(__name__)

EVAL_DIR = "evaluation"  # RUN/evaluation/: the evaluation's tables, figures, report and dattri's cached scores


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


def _stored_arrays(run_dir: Path, meta: dict, inputs: RunInputs, names: list[str]):
    """Per checkpoint, traker's stored arrays ``names`` (memory-mapped) and the run's TRAK settings; None if the
    run's checkpoints or any of those files are gone."""
    from ..scoring import TrakConfig, cache_key

    trak = dict(meta.get("config", {}).get("trak", {}))
    trak.pop("checkpoints", None)
    try:
        ckpts = trak_checkpoints(run_dir, meta)
    except FileNotFoundError:
        return None
    cfg = TrakConfig(**trak)
    if cfg.output != "loglik":  # margin gradients: the ridge recomputation and the catalogue terms need the score's
        log.info("%s attributes the per-event margin (trak.output); the methods built on its stored log-likelihood "
                 "gradients (ridge variants, group influence) are left out", run_dir)
        return None
    folder = run_dir / "cache" / "trak" / cache_key(ckpts, inputs.train_tokens, cfg)
    paths = [[folder / str(i) / name for name in names] for i in range(len(ckpts))]
    if not all(p.is_file() for per_ckpt in paths for p in per_ckpt):
        return None
    return [[np.load(p, mmap_mode="r") for p in per_ckpt] for per_ckpt in paths], cfg


def stored_trak_features(run_dir: Path, meta: dict, inputs: RunInputs) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """The projected training and output gradients traker stored for this run (None if the cache is gone)."""
    found = _stored_arrays(run_dir, meta, inputs, ["grads.mmap", "sequence_grads.mmap"])
    if found is None:
        return None
    return [train for train, _ in found[0]], [out for _, out in found[0]]


def stored_passage_grads(run_dir: Path, meta: dict, inputs: RunInputs) -> list[np.ndarray] | None:
    """Per checkpoint, the (n_outputs, n_passages, p) projected gradients of the outputs' passages that traker
    stored for the build (experiment ``segments``); None if the cache or that experiment is gone."""
    from ..scoring import segment_bounds

    found = _stored_arrays(run_dir, meta, inputs, ["segments_grads.mmap"])
    if found is None:
        return None
    arrays, cfg = found
    n_out = len(inputs.output_tokens)
    n_passages = len(segment_bounds(inputs.output_tokens.shape[1] - 1, cfg.segment_events))
    grads = [g for (g,) in arrays]
    if any(g.shape[0] != n_out * n_passages for g in grads):
        return None  # another experiment of that name (not the build's passages)
    return [g.reshape(n_out, n_passages, g.shape[1]) for g in grads]


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

    from ..model import ModelConfig, MusicTransformer, event_log_probs

    model = MusicTransformer(ModelConfig(**inputs.model_config)).eval()
    pad = inputs.pad_id

    def nll(params, data):
        (tokens,) = data
        logits = torch.func.functional_call(model, params, (tokens[:-1].unsqueeze(0),))[0]
        return -event_log_probs(logits, tokens[1:].unsqueeze(0), pad).sum()

    def probability(params, data):
        return torch.exp(-nll(params, data))

    def load(m, ckpt):
        m.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["model"])
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


def run_meta(run_dir: Path) -> dict:
    """The run's resolved build config (``RUN/config.yaml``: settings, stages' timings, metrics); {} if absent."""
    path = run_dir / "config.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def trak_checkpoints(run_dir: Path, meta: dict) -> list[Path]:
    """The checkpoints the run's TRAK attributed with (``FileNotFoundError`` with the fix when they are gone)."""
    names = meta.get("metrics", {}).get("attribution", {}).get("trak_checkpoints")
    ckpts = [run_dir / "model" / n for n in names] if names else sorted((run_dir / "model").glob("ckpt_*.pt"))
    missing = [str(p) for p in ckpts if not p.is_file()]
    if missing or not ckpts:
        raise FileNotFoundError(
            f"TRAK checkpoints {missing or '(none)'} of {run_dir} are missing; dattri needs the model the run "
            "attributed with (rebuild the run, or evaluate with --no-dattri)"
        )
    return ckpts


def projector_seed(meta: dict) -> int:
    """The projector seed the run's TRAK used (its config's ``trak.projector_seed``)."""
    return int(meta.get("config", {}).get("trak", {}).get("projector_seed", 0))


def cached_dattri(
    run_dir: Path, inputs: RunInputs, meta: dict, batch_size: int, last_only: bool = False, proj_seed: int | None = None
) -> tuple[np.ndarray, float]:
    """dattri piece scores and their cost in seconds, cached in evaluation/dattri_trak[_1ckpt].npz by settings.

    ``last_only`` uses the final checkpoint alone (the peer of ``trak_1ckpt``), at a quarter of the cost.
    ``proj_seed`` other than the run's own projector seed is cached beside it (``..._p<seed>.npz``).
    """
    trak = meta.get("config", {}).get("trak", {})
    own_seed = projector_seed(meta)
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
        ckpts = trak_checkpoints(run_dir, meta)
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
        # the weights' content, not their file times: a rebuild that trains the same bytes, or a copy, keeps the cache
        "checkpoint_sha256": [hashlib.sha256(p.read_bytes()).hexdigest() for p in ckpts],
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



def cached_estimator(run_dir: Path, inputs: RunInputs, meta: dict, name: str, settings: dict | None = None):
    """An influence estimator of :data:`attribution.estimators.ESTIMATORS` on the run's final checkpoint, its piece
    scores and its result (cost, covered parameters), cached in ``evaluation/<name>.npz``.

    The cache is keyed to the checkpoint's name and bytes, the training windows, the outputs, the estimator's
    settings and the library versions, so a stale one is never reused; without the weights (a fresh clone) a
    cache made for the run's named final checkpoint and the same settings stands, else ``FileNotFoundError``.
    """
    from ..estimators import ESTIMATORS
    from ..estimators.common import cached_scores, fingerprint

    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; --methods takes a comma-separated list of {sorted(ESTIMATORS)}")
    config_cls, score = ESTIMATORS[name]
    cfg = config_cls(**(settings or {}))
    versions = {}
    for pkg in ("torch", "kronfluence" if name == "ekfac" else "dattri"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "absent"
    names = meta.get("metrics", {}).get("attribution", {}).get("trak_checkpoints") or []
    key = {"estimator": name, "settings": cfg.to_dict(), "versions": versions,
           "windows": fingerprint(inputs.train_tokens), "outputs": fingerprint(inputs.output_tokens)}
    path = run_dir / EVAL_DIR / f"{name}.npz"
    try:
        ckpt = trak_checkpoints(run_dir, meta)[-1]
    except FileNotFoundError:
        held, _ = cached_scores(path, {**key, "checkpoint": names[-1] if names else None}, None, ignore=("weights",))
        if held is None or not names:
            raise FileNotFoundError(
                f"the final checkpoint of {run_dir} is missing and {path} holds no {name} scores for it and these settings; "
                f"rebuild the run, or leave {name} out of --methods"
            ) from None
        log.info("%s: the run's checkpoints are not here; using the %s scores cached in %s", run_dir, name, path)
        return piece_sum(held.scores, inputs.train_piece, inputs.n_pieces), held
    key.update(checkpoint=ckpt.name, weights=hashlib.sha256(ckpt.read_bytes()).hexdigest()[:16])

    def compute():
        from ..model import ModelConfig, MusicTransformer
        from ..train import load_checkpoint

        model = MusicTransformer(ModelConfig(**inputs.model_config))
        model.load_state_dict(load_checkpoint(ckpt)["model"])
        return score(model.eval(), inputs.train_tokens, inputs.output_tokens, cfg)

    result, _ = cached_scores(path, key, compute)
    return piece_sum(result.scores, inputs.train_piece, inputs.n_pieces), result


@dataclass
class MethodScores:
    """Every method's (n_outputs, n_pieces) scores, in the order they are reported, with their costs.

    ``projections`` holds the final-checkpoint scores of each estimator under several projector seeds (the
    run's own first): ``trak_1ckpt`` and ``dattri_trak_1ckpt``, where measured.
    """

    scores: dict[str, np.ndarray]
    costs: list[dict] = field(default_factory=list)  # item, kind ("attribution"), seconds
    facts: dict = field(default_factory=dict)
    projections: dict[str, list[np.ndarray]] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        """The methods scored one by one (every one but the random draws)."""
        return [m for m in self.scores if not m.startswith("random_")]

    @property
    def random_names(self) -> list[str]:
        """The random baseline's draws, pooled into one ``random`` row."""
        return [m for m in self.scores if m.startswith("random_")]


def method_scores(
    run_dir: Path,
    table: AttributionTable,
    inputs: RunInputs,
    meta: dict,
    dattri: bool | None = None,
    random_seeds: int = 5,
    dattri_batch_size: int = 32,
    dattri_checkpoints: tuple[str, ...] = ("all",),
    ridges: tuple[float, ...] = (0.01, 0.1, 1.0),
    models_ensemble: bool = True,
    projection_seeds: int = 5,
    dattri_projection_seeds: int = 1,
    estimators: tuple[str, ...] = (),
    estimator_settings: dict[str, dict] | None = None,
) -> MethodScores:
    """The scores of every method :func:`attribution.evaluation.evaluate` scores (see its arguments)."""
    from .trak_variants import ensemble_method, trak_margin, trak_over_models, trak_over_projections

    n_out, n_pieces = len(inputs.output_ids), inputs.n_pieces
    out = MethodScores(scores={m: table.pivot(m).fillna(0.0).to_numpy() for m in table.methods})
    scores, costs, facts = out.scores, out.costs, out.facts
    stages = meta.get("stages", {})
    if "trak" in stages:
        costs.append({"item": "trak + tracin + grad_dot + grad_cos (one traker pass)", "kind": "attribution",
                      "seconds": float(stages["trak"]["seconds"])})
    if "similarity" in stages:
        costs.append({"item": "similarity (all three measures)", "kind": "attribution",
                      "seconds": float(stages["similarity"]["seconds"])})
    if dattri is None:
        dattri = importlib.util.find_spec("dattri") is not None
        if not dattri:
            log.warning("dattri is not installed (pip install -e '.[bench]'); the external peer is left out")
    if dattri:
        for which in dattri_checkpoints:
            if which not in ("all", "last"):
                raise ValueError(f"dattri_checkpoints: {which!r} is not one of 'all', 'last'")
            name = "dattri_trak" if which == "all" else "dattri_trak_1ckpt"
            scores[name], seconds = cached_dattri(run_dir, inputs, meta, dattri_batch_size, last_only=which == "last")
            costs.append({"item": f"{name} (dattri CPU path)", "kind": "attribution", "seconds": seconds})
            if which == "last" and dattri_projection_seeds > 1:  # the peer under other projector seeds, like ours
                own = projector_seed(meta)
                extra = [own + i for i in range(1, dattri_projection_seeds)]
                draws = [scores[name]]
                for seed in extra:
                    sc, seconds = cached_dattri(run_dir, inputs, meta, dattri_batch_size, last_only=True, proj_seed=seed)
                    draws.append(sc)
                    costs.append({"item": f"{name} with projector seed {seed} (dattri CPU path)", "kind": "attribution",
                                  "seconds": seconds})
                facts["dattri_projection_seeds"] = [own, *extra]
                scores[f"{name}_proj{len(draws)}"] = np.mean(draws, axis=0)
                out.projections["dattri_trak_1ckpt"] = draws
    features = stored_trak_features(run_dir, meta, inputs) if ridges else None
    if features is not None:
        t0 = time.perf_counter()
        last = ([features[0][-1]], [features[1][-1]])  # the final checkpoint alone: the peer of trak_1ckpt
        for r in ridges:
            windows = trak_from_features(*features, ridge=r)
            scores[f"trak_ridge{r:g}"] = piece_sum(windows, inputs.train_piece, n_pieces)
            if len(features[0]) > 1:
                scores[f"trak_1ckpt_ridge{r:g}"] = piece_sum(trak_from_features(*last, ridge=r), inputs.train_piece, n_pieces)
        costs.append({"item": f"trak_ridge and trak_1ckpt_ridge variants from stored features ({len(ridges)} each)",
                      "kind": "attribution", "seconds": time.perf_counter() - t0})
        if "trak" in scores:  # the recomputation must agree with traker at ridge 0
            check = piece_sum(trak_from_features(*features, ridge=0.0), inputs.train_piece, n_pieces)
            facts["trak_recompute_corr"] = float(np.corrcoef(check.ravel(), scores["trak"].ravel())[0, 1])
    if models_ensemble:
        over = trak_over_models(run_dir, meta, inputs)
        if over is not None:
            for k in over.sizes:
                name = ensemble_method(k, over.n_models)
                scores[name] = over.scores[k]
                costs.append({"item": f"{name}: traker over {k} independently trained model{'s' * (k > 1)}",
                              "kind": "attribution", "seconds": over.seconds[k]})
                if k > 1:  # the models beyond the run's own are trained for the method: their cost is its cost
                    costs.append({"item": f"{name} training: {k - 1} more full-data model{'s' * (k > 2)}",
                                  "kind": "attribution", "seconds": over.training_core_seconds[k],
                                  "core_seconds": over.training_core_seconds[k]})
            facts["trak_models"] = over.n_models
            facts["trak_models_sizes"] = over.sizes
    if projection_seeds > 1 and "trak_1ckpt" in scores:
        extra = trak_over_projections(run_dir, meta, inputs, projection_seeds)
        if extra is not None:
            draws = [scores["trak_1ckpt"], *extra[0]]
            facts["projection_seeds"] = [projector_seed(meta), *extra[1]]
            scores[f"trak_1ckpt_proj{len(draws)}"] = np.mean(draws, axis=0)
            costs.append({"item": f"trak_1ckpt with {len(extra[1])} more projector seeds", "kind": "attribution",
                          "seconds": extra[2]})
            out.projections = {"trak_1ckpt": draws, **out.projections}
    for name in estimators:  # influence functions through external libraries, on the final checkpoint
        if name == "trak_margin":  # TRAK attributing the per-event margin instead of the log-likelihood
            margin = trak_margin(run_dir, meta, inputs)
            if margin is None:
                raise FileNotFoundError(f"the checkpoints of {run_dir} are missing and no margin TRAK is cached; rebuild "
                                        "the run, or leave trak_margin out of --methods")
            scores.update(margin[0])
            costs.append({"item": "trak_margin + trak_margin_1ckpt: TRAK of the per-event margin (one traker pass)",
                          "kind": "attribution", "seconds": margin[1]})
            continue
        if name == "metagradient":  # through the replayed training run, not one checkpoint (.metagradient)
            from .metagradient import cached_metagradient, cost_item

            scores[name], res = cached_metagradient(run_dir, inputs, (estimator_settings or {}).get(name))
            facts.setdefault("estimators", {})[name] = {"n_params": res.n_params, **res.facts}
            costs.append({"item": cost_item(res, n_out), "kind": "attribution", "seconds": res.seconds})
            continue
        scores[name], res = cached_estimator(run_dir, inputs, meta, name, (estimator_settings or {}).get(name))
        facts.setdefault("estimators", {})[name] = {"modules": res.modules, "n_params": res.n_params, **res.facts}
        what = {"ekfac": "EK-FAC influence (kronfluence)", "logra": "LoGra (dattri)"}.get(name, name)
        costs.append({"item": f"{name}: {what}, final checkpoint, {res.n_params} parameters of the Linear layers, "
                              f"damping {res.facts.get('damping')}", "kind": "attribution", "seconds": res.seconds})
    for s in range(random_seeds):
        scores[f"random_{s}"] = random_scores(n_out, n_pieces, s)
    return out
