"""Gradient-based training-data attribution: TRAK (through ``traker``) and cheaper gradient baselines.

The attributed function is the log-likelihood of a generated sequence, ``f(z) = sum_t log p(e_t | e_<t)``
(:class:`SequenceLogLikelihood`). Because TRAK scores are linear in the target's gradient and the
gradient of a sum is the sum of gradients, scoring each *passage* (a segment of consecutive events;
one event at ``segment_events=1``) gives scores that add up exactly to the whole sequence's score:
attribution is additive over events, as the causal-value framework of Deng et al. requires.

Methods computed here (scores per generated output x training window; pieces sum their windows):

* ``trak``        – TRAK ensembled over the training checkpoints (traker's estimator).
* ``trak_1ckpt``  – TRAK with the final checkpoint only.
* ``tracin``      – TracIn-CP: sum over checkpoints of lr_k * <g_target, g_train> (projected gradients).
* ``grad_dot``    – <g_target, g_train> at the final checkpoint.
* ``grad_cos``    – cosine of the same gradients.

The baselines reuse the projected gradients traker already stored, so they cost no extra backward pass.

The training features live in a :class:`FeatureStore` (:func:`open_feature_store`); any set of targets is
scored against it under a traker experiment name of its own (:func:`score_experiments`, one projection
per checkpoint for all of them; :func:`gradient_baselines`). The build scores its outputs as experiments
``sequence`` and ``segments``; :mod:`attribution.piece_scores` scores new pieces against the same store without
featurising again.

traker on CPU, and the traps handled here: ``device`` is passed as the string ``"cpu"``; float32
throughout (``use_half_precision=False``); a single-block ``BasicProjector`` (fast: the projection matrix
is generated once per checkpoint, not once per batch) frees its matrix in ``finalize_features()``, so it
is regenerated from its generator state before scoring; and traker resumes silently from whatever is in
its ``save_dir``, so the save dir is keyed to a hash of the checkpoints, the training windows, the
TRAK settings and the traker and torch versions (a stale cache can never be reused). Checkpoints are read
with the weights-only unpickler (:func:`attribution.train.load_checkpoint`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from trak import TRAKer
from trak.modelout_functions import AbstractModelOutput
from trak.projectors import BasicProjector, ProjectionType

from .model import MusicTransformer, event_log_probs
from .train import load_checkpoint

__all__ = [
    "TrakConfig",
    "GradientScores",
    "SequenceLogLikelihood",
    "SequenceMargin",
    "event_margins",
    "compute_gradient_scores",
    "segment_bounds",
    "cache_key",
    "FeatureStore",
    "open_feature_store",
    "score_experiment",
    "score_experiments",
    "drop_experiment",
    "gradient_baselines",
]


OUTPUT_FUNCTIONS = ("loglik", "margin")


@dataclass
class TrakConfig:
    proj_dim: int = 512
    lambda_reg: float = 0.0
    batch_size: int = 16
    projector_seed: int = 0
    segment_events: int = 16  # events per passage for passage-level scores (1 = per event)
    # the attributed function (and the training windows' features): "loglik" = sum of log p(e_t | e_<t) (the
    # causal value's own quantity, the default), "margin" = sum of per-event margins log p_t / (1 - p_t) with
    # Q = each window's mean 1 - p_t (TRAK's classification recipe, applied event by event)
    output: str = "loglik"

    def __post_init__(self) -> None:
        if self.output not in OUTPUT_FUNCTIONS:
            raise ValueError(f"trak.output is {self.output!r}; use one of {sorted(OUTPUT_FUNCTIONS)}")


class SequenceLogLikelihood(AbstractModelOutput):
    """TRAK model output: sum of log p(e_t | e_<t) over the events t in [start, end) of a window.

    A batch is ``(tokens, start, end)`` with tokens of shape (B, T+1); for whole sequences and for
    training windows ``start = 0, end = T``. PAD targets contribute nothing. The loss is the negative
    log-likelihood, so d loss / d output is the constant -1 and ``Q = 1`` (traker takes its magnitude).
    """

    def __init__(self, pad_id: int) -> None:
        super().__init__()
        self.pad_id = pad_id

    @staticmethod
    def event_values(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
        """The per-event quantity summed over the window: log p(e_t | e_<t)."""
        return event_log_probs(logits, targets, pad_id)

    def get_output(self, model, weights, buffers, tokens, start, end) -> torch.Tensor:
        logits, _ = torch.func.functional_call(model, (weights, buffers), (tokens[:-1].unsqueeze(0),))
        values = self.event_values(logits, tokens[1:].unsqueeze(0), self.pad_id)[0]  # (T,)
        pos = torch.arange(values.shape[0])
        return (values * ((pos >= start) & (pos < end)).to(values.dtype)).sum()

    def get_out_to_loss_grad(self, model, weights, buffers, batch) -> torch.Tensor:
        tokens = batch[0]
        return torch.ones(tokens.shape[0], 1, dtype=torch.float32)


def event_margins(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Per-event margin ``log p_t - log(1 - p_t)`` = the target's logit minus the logsumexp of the other logits
    (stable where p_t is near 1), zero at PAD targets. Shapes (..., T, V), (..., T) -> (..., T)."""
    picked = logits.gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    is_target = torch.arange(logits.shape[-1]) == targets.clamp_min(0).unsqueeze(-1)  # (vmap-safe, no scatter)
    others = torch.logsumexp(logits.masked_fill(is_target, float("-inf")), dim=-1)
    return (picked - others) * (targets != pad_id).to(picked.dtype)


class SequenceMargin(SequenceLogLikelihood):
    """TRAK model output ``trak.output: margin``: the sum of per-event margins over the events in [start, end).

    TRAK's recipe for a classifier (Park et al. 2023) attributes the margin ``log p / (1 - p)`` and weights each
    training example by ``Q = 1 - p``, the derivative of the loss with respect to the margin. An event is one
    such classification; a window's ``Q`` is the mean ``1 - p_t`` over its events (its loss is the sum over
    events, so the exact Q is not one number: the mean is the usual scalar reduction).
    """

    event_values = staticmethod(event_margins)

    def get_out_to_loss_grad(self, model, weights, buffers, batch) -> torch.Tensor:
        tokens, start, end = batch
        with torch.no_grad():
            logits, _ = torch.func.functional_call(model, (weights, buffers), (tokens[:, :-1],))
            p = event_log_probs(logits, tokens[:, 1:], self.pad_id).exp()
            pos = torch.arange(p.shape[1]).unsqueeze(0)
            counted = (tokens[:, 1:] != self.pad_id) & (pos >= start.unsqueeze(1)) & (pos < end.unsqueeze(1))
            q = ((1 - p) * counted).sum(1) / counted.sum(1).clamp_min(1)
        return q.unsqueeze(1).to(torch.float32)


@dataclass
class GradientScores:
    """Scores of each method, each of shape (n_outputs, n_train_windows), and passage-level TRAK."""

    methods: dict[str, np.ndarray]
    segments: np.ndarray  # (n_outputs, n_segments, n_train_windows), TRAK ensemble
    segment_bounds: list[tuple[int, int]]  # [start, end) event positions of each passage
    proj_dim: int
    n_params: int
    # wall seconds of the whole computation; a call that reused traker's stored features (same cache key)
    # counts the featurisation time of the call that made them, so a cached result reports the real cost
    seconds: float = float("nan")


def segment_bounds(n_events: int, segment_events: int) -> list[tuple[int, int]]:
    if segment_events < 1:
        raise ValueError(f"segment_events must be >= 1, got {segment_events}")
    return [(s, min(s + segment_events, n_events)) for s in range(0, n_events, segment_events)]


def cache_key(checkpoints: list[Path], train_tokens: np.ndarray, cfg: TrakConfig) -> str:
    """Hash of the checkpoint weights, the training windows, the TRAK settings and the traker/torch versions."""
    h = hashlib.sha256()
    for path in checkpoints:
        h.update(Path(path).read_bytes())
    tokens = np.ascontiguousarray(train_tokens, dtype=np.int64)
    h.update(str(tokens.shape).encode())
    h.update(tokens.tobytes())
    settings = {k: v for k, v in asdict(cfg).items() if not (k == "output" and v == "loglik")}  # keys made before
    h.update(repr(sorted(settings.items())).encode())  # the option existed stay valid
    for pkg in ("traker", "torch"):  # stored features are what this code computed; another version recomputes
        try:
            h.update(f"{pkg}={importlib.metadata.version(pkg)}".encode())
        except importlib.metadata.PackageNotFoundError:
            pass
    return h.hexdigest()[:16]


def _load_state(path: Path) -> dict:
    return load_checkpoint(path)["model"]


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield np.arange(start, min(n, start + size))



@dataclass
class FeatureStore:
    """traker's finalised features of the training windows at each checkpoint, ready to score targets.

    Made by :func:`open_feature_store`; the build (:func:`compute_gradient_scores`) and the scoring of new
    pieces (:mod:`attribution.piece_scores`) score their targets against it with :func:`score_experiments`.
    """

    traker: TRAKer
    projector: BasicProjector
    checkpoints: list[Path]
    save_dir: Path
    n_params: int
    featurize_seconds: float  # what featurising cost the call that made the features (NaN when not recorded)


def open_feature_store(
    model: MusicTransformer,
    checkpoints: list[Path],
    train_tokens: np.ndarray,
    cfg: TrakConfig,
    save_root: Path,
    progress: bool = True,
    featurize: bool = True,
) -> FeatureStore:
    """traker's store of the training windows' features under ``save_root / <cache_key>``.

    With ``featurize`` the features a store lacks are computed and finalised (the build). Without it, only a
    store that holds finalised features for every checkpoint is opened, and nothing is written; anything
    else raises :class:`~attribution.errors.FeatureStoreError` naming what is missing.
    """
    from .errors import FeatureStoreError

    if not checkpoints:
        raise ValueError("no checkpoints to attribute with; train the model first")
    checkpoints = [Path(p) for p in checkpoints]
    n_train = len(train_tokens)
    if cfg.lambda_reg == 0 and cfg.proj_dim >= n_train:
        raise ValueError(
            f"trak.proj_dim={cfg.proj_dim} must be below the number of training windows ({n_train}) "
            "when trak.lambda_reg is 0, otherwise X^T X is singular; lower proj_dim or set lambda_reg > 0"
        )
    save_dir = Path(save_root) / cache_key(checkpoints, train_tokens, cfg)
    if not featurize and not (save_dir / "metadata.json").is_file():
        raise FeatureStoreError(f"no stored TRAK features in {save_dir} (the store for these checkpoints, windows, "
                                "TRAK settings and traker/torch versions)")
    save_dir.mkdir(parents=True, exist_ok=True)

    if not progress:  # traker draws its own bars in finalize_*; honour the caller's wish for quiet
        import trak.traker

        trak.traker.tqdm = functools.partial(tqdm, disable=True)
    n_params = model.num_params()
    projector = BasicProjector(
        grad_dim=n_params,
        proj_dim=cfg.proj_dim,
        seed=cfg.projector_seed,
        proj_type=ProjectionType.normal,
        device="cpu",
        block_size=cfg.proj_dim,  # one block: the matrix is generated once per checkpoint
        dtype=torch.float32,
    )
    try:
        traker = TRAKer(
            model=model,
            task=(SequenceMargin if cfg.output == "margin" else SequenceLogLikelihood)(model.config.pad_id),
            train_set_size=n_train,
            save_dir=str(save_dir),
            load_from_save_dir=True,
            device="cpu",
            projector=projector,
            use_half_precision=False,
            lambda_reg=cfg.lambda_reg,
            logging_level=logging.WARNING,
        )
    except AssertionError as exc:  # traker asserts that a store's projection and train-set size match
        raise FeatureStoreError(f"the TRAK store {save_dir} holds features of other settings ({exc})") from None

    t_start = time.perf_counter()
    timing_file = save_dir / "featurize_seconds.json"
    stored = [int(traker.saver.model_ids.get(i, {}).get("is_finalized", 0)) for i in range(len(checkpoints))]
    reused = all(stored)  # every checkpoint's features were made by an earlier call
    if not featurize and not reused:
        missing = [checkpoints[i].name for i, done in enumerate(stored) if not done]
        raise FeatureStoreError(f"the TRAK store {save_dir} has no finalised features for {', '.join(missing)} "
                                "(its featurisation was interrupted)")
    if not reused:
        train_t = torch.as_tensor(train_tokens, dtype=torch.long)
        full_start = torch.zeros(n_train, dtype=torch.long)
        full_end = torch.full((n_train,), train_tokens.shape[1] - 1, dtype=torch.long)
        n_batches = -(-n_train // cfg.batch_size)
        bar = tqdm(total=n_batches * len(checkpoints), desc="TRAK featurize", disable=not progress)
        for model_id, ckpt in enumerate(checkpoints):
            traker.load_checkpoint(_load_state(ckpt), model_id=model_id)
            for inds in _batches(n_train, cfg.batch_size):
                idx = torch.as_tensor(inds)
                traker.featurize(batch=(train_t[idx], full_start[idx], full_end[idx]), inds=inds)
                bar.update(1)
        bar.close()
        traker.finalize_features()
        featurize_seconds = time.perf_counter() - t_start
        timing_file.write_text(json.dumps({"seconds": featurize_seconds}))
    else:  # count what the call that made the features spent (unknown for caches made before it was kept)
        featurize_seconds = float(json.loads(timing_file.read_text())["seconds"]) if timing_file.is_file() else float("nan")
    return FeatureStore(traker, projector, checkpoints, save_dir, n_params, featurize_seconds)


def _experiment_files(store: FeatureStore, exp: str) -> list[Path]:
    return [store.save_dir / str(i) / f"{exp}_grads.mmap" for i in range(len(store.checkpoints))] + [
        store.save_dir / "scores" / f"{exp}.mmap"
    ]


def drop_experiment(store: FeatureStore, exp: str) -> None:
    """Delete an experiment's target gradients and scores from the store (the training features stay)."""
    for path in _experiment_files(store, exp):
        path.unlink(missing_ok=True)
    store.traker.saver.experiments.pop(exp, None)
    experiments_file = store.save_dir / "experiments.json"
    if experiments_file.is_file():
        listed = json.loads(experiments_file.read_text())
        listed.pop(exp, None)
        experiments_file.write_text(json.dumps(listed))


def score_experiment(
    store: FeatureStore, exp: str, targets: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_size: int,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """TRAK scores of ``targets`` ``(tokens, start, end)`` under traker experiment ``exp``.

    Returns the ensemble over every checkpoint and the final checkpoint alone, each (n_targets, n_train).
    An earlier experiment of the same name is discarded first: traker would reopen its files with their old
    number of targets.
    """
    return score_experiments(store, {exp: targets}, batch_size, progress)[exp]


def score_experiments(
    store: FeatureStore, experiments: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]], batch_size: int,
    progress: bool = True,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`score_experiment` for several experiments, checkpoint by checkpoint.

    traker's random projection depends on the checkpoint (its seed includes the model id), so it is generated
    once per checkpoint for all the experiments rather than once per checkpoint and experiment: on the
    default model that matrix (876,160 x 512 normals) costs as much as the gradients of a whole piece.
    The scores are those of separate calls, bit for bit.
    """
    traker, projector = store.traker, store.projector
    for exp in experiments:
        drop_experiment(store, exp)
    ids = list(range(len(store.checkpoints)))
    n_batches = sum(-(-len(t[0]) // batch_size) for t in experiments.values())
    bar = tqdm(total=len(ids) * n_batches, desc=f"TRAK score {', '.join(experiments)}", disable=not progress)
    for model_id, ckpt in enumerate(store.checkpoints):
        if not projector.proj_matrix_available:
            projector.generate_sketch_matrix(projector.generator_states[0])
        state = _load_state(ckpt)
        for exp, targets in experiments.items():
            n_targets = len(targets[0])
            traker.start_scoring_checkpoint(exp, state, model_id=model_id, num_targets=n_targets)
            for inds in _batches(n_targets, batch_size):
                idx = torch.as_tensor(inds)
                traker.score(batch=tuple(t[idx] for t in targets), inds=inds)
                bar.update(1)
    bar.close()
    out = {}
    for exp in experiments:
        ensemble = np.array(traker.finalize_scores(exp, model_ids=ids)).T  # (n_targets, n_train)
        last = np.array(traker.finalize_scores(exp, model_ids=[ids[-1]])).T
        out[exp] = (ensemble, last)
    return out


def gradient_baselines(
    store: FeatureStore, exp: str, n_targets: int, checkpoint_lrs: list[float] | None = None,
    rows: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """TracIn, grad-dot and grad-cos from the projected gradients traker stored for experiment ``exp``.

    ``rows`` maps each target to the row it belongs to (targets of one row are summed first: the gradient of
    a sum of log-likelihoods is the sum of their gradients); by default each target is its own row.
    Projected gradients are already divided by sqrt(n_params).
    """
    rows = np.arange(n_targets) if rows is None else np.asarray(rows)
    n_rows = int(rows.max()) + 1 if len(rows) else 0
    lrs = checkpoint_lrs or [1.0] * len(store.checkpoints)
    saver = store.traker.saver
    tracin = None
    for model_id, lr in enumerate(lrs):
        saver.load_current_store(model_id, exp, n_targets, mode="r")
        g_train = np.array(saver.current_store["grads"], dtype=np.float64)
        g_out = np.zeros((n_rows, g_train.shape[1]))
        np.add.at(g_out, rows, np.array(saver.current_store[f"{exp}_grads"], dtype=np.float64))
        tracin = lr * (g_out @ g_train.T) + (0.0 if tracin is None else tracin)
    grad_dot = g_out @ g_train.T  # final checkpoint
    norms = np.linalg.norm(g_out, axis=1, keepdims=True) * np.linalg.norm(g_train, axis=1)[None, :]
    grad_cos = grad_dot / np.where(norms > 0, norms, 1.0)
    return {"tracin": tracin, "grad_dot": grad_dot, "grad_cos": grad_cos}


def compute_gradient_scores(
    model: MusicTransformer,
    checkpoints: list[Path],
    train_tokens: np.ndarray,
    output_tokens: np.ndarray,
    cfg: TrakConfig,
    save_root: Path,
    checkpoint_lrs: list[float] | None = None,
    progress: bool = True,
) -> GradientScores:
    """Featurise training windows and score generated outputs at every checkpoint.

    Args:
        model: a model of the right architecture (its weights are replaced by each checkpoint).
        checkpoints: checkpoint files, in training order; the last is the final model.
        train_tokens: (n_train, T+1) training windows.
        output_tokens: (n_outputs, L) generated sequences (L <= T+1), BOS first.
        save_root: traker's files go to ``save_root / <cache_key>``.
        checkpoint_lrs: learning rate at each checkpoint, for TracIn (default: all 1).
    """
    n_out = len(output_tokens)
    n_events = output_tokens.shape[1] - 1
    bounds = segment_bounds(n_events, cfg.segment_events)
    store = open_feature_store(model, checkpoints, train_tokens, cfg, save_root, progress=progress)
    t_score = time.perf_counter()

    # Targets: whole sequences, then every passage of every sequence.
    out_t = torch.as_tensor(output_tokens, dtype=torch.long)
    seq_targets = (out_t, torch.zeros(n_out, dtype=torch.long), torch.full((n_out,), n_events, dtype=torch.long))
    seg_rows = torch.arange(n_out).repeat_interleave(len(bounds))
    seg_start = torch.tensor([s for s, _ in bounds] * n_out, dtype=torch.long)
    seg_end = torch.tensor([e for _, e in bounds] * n_out, dtype=torch.long)
    seg_targets = (out_t[seg_rows], seg_start, seg_end)

    scored = score_experiments(store, {"sequence": seq_targets, "segments": seg_targets}, cfg.batch_size, progress)
    (trak, trak_1ckpt), (segments, _) = scored["sequence"], scored["segments"]
    methods = {"trak": trak, "trak_1ckpt": trak_1ckpt, **gradient_baselines(store, "sequence", n_out, checkpoint_lrs)}
    return GradientScores(methods=methods, segments=segments.reshape(n_out, len(bounds), -1), segment_bounds=bounds,
                          proj_dim=cfg.proj_dim, n_params=store.n_params,
                          seconds=store.featurize_seconds + time.perf_counter() - t_score)
