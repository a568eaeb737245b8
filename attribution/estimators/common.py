"""What the influence estimators share: the task, the weights they read, their result and its cache.

Every estimator here attributes with the same task as TRAK (:mod:`attribution.scoring`): the training loss of
a window is its negative log-likelihood (the sum over its non-PAD events, as in :mod:`attribution.train`, which
averages the same terms over a batch), and the measurement of an output is its whole-sequence negative
log-likelihood (minus :class:`~attribution.scoring.SequenceLogLikelihood`). Both sides take the gradient of
an NLL, so the signs cancel and a positive score means the window *helps* the output: with ``F`` the curvature
averaged over the ``n`` training windows, ``score = g_out^T (F + damping)^{-1} g_window`` and removing the window
changes the output's log-likelihood by about ``-score / n``.

The estimators attribute with the run's final checkpoint (influence functions assume a trained model) over the
model's ``nn.Linear`` layers, the modules both libraries handle: the attention's ``qkv`` and ``proj``, both MLP
layers of every block, and the output ``head``. The head's weight is tied to the token embedding; its
gradient is the one through the head only. The embeddings' lookups and the LayerNorms are not covered.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib.metadata
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..model import MusicTransformer, event_log_probs

__all__ = [
    "EstimatorResult",
    "window_nll",
    "linear_modules",
    "covered_parameters",
    "fingerprint",
    "state_fingerprint",
    "package_versions",
    "cached_scores",
    "frozen_heap",
]


@dataclass
class EstimatorResult:
    """Window-level scores of an estimator and what they cost and cover."""

    scores: np.ndarray  # (n_outputs, n_windows), positive = the window helps the output
    seconds: float  # wall seconds of the computation (the call that made a cache, when read from one)
    modules: list[str]  # the nn.Linear modules whose parameters are covered
    n_params: int  # parameters covered (a tied weight counted once)
    facts: dict = field(default_factory=dict)  # settings in force (damping as applied, projection size, ...)


def window_nll(model: nn.Module, tokens: torch.Tensor, pad_id: int, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Negative log-likelihood of each window or output, (B, T+1) -> (B,); ``targets`` replace ``tokens[:, 1:]``."""
    logits, _ = model(tokens[:, :-1])
    return -event_log_probs(logits, tokens[:, 1:] if targets is None else targets, pad_id).sum(-1)


def linear_modules(model: nn.Module) -> list[str]:
    """The names of the model's ``nn.Linear`` modules, in order."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]


def covered_parameters(model: nn.Module, modules: list[str]) -> int:
    """How many parameters the listed modules hold (a weight shared by two of them counted once)."""
    named = dict(model.named_modules())
    seen: dict[int, int] = {}
    for name in modules:
        for p in named[name].parameters(recurse=False):
            seen[id(p)] = p.numel()
    return int(sum(seen.values()))


def fingerprint(*arrays: np.ndarray | torch.Tensor) -> str:
    """sha256 (16 hex digits) of arrays' dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def state_fingerprint(model: MusicTransformer) -> str:
    """Fingerprint of a model's weights (its state dict in order)."""
    return fingerprint(*[t for _, t in sorted(model.state_dict().items())])


def package_versions(*names: str) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


@contextlib.contextmanager
def frozen_heap():
    """Exempt the objects alive now from garbage collection for the duration.

    kronfluence calls ``gc.collect()`` before and after every stage to free accelerator memory (18 times for one
    fit and score); with a large heap (a test session, an evaluation) each full collection scans every object
    and together they took 9 of 11 seconds on a tiny case. Freezing the heap that existed before makes them scan
    only what kronfluence itself allocated; nothing is leaked (``gc.unfreeze`` returns the objects afterwards).
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def cached_scores(
    path: Path, settings: dict, compute: Callable[[], EstimatorResult] | None, ignore: tuple[str, ...] = ()
) -> tuple[EstimatorResult | None, bool]:
    """An estimator's result from ``path`` when it was made with exactly ``settings``, else computed and stored.

    ``settings`` must name everything the scores are a function of (the weights' fingerprint, the windows',
    the outputs', the estimator's settings and the library versions), so a stale cache is never reused.
    ``ignore`` lists settings left out of the comparison (the weights' fingerprint, when the weights are not
    there to take it); ``compute`` None only reads. Returns (result or None, whether it came from the cache).
    """
    def key(d: dict) -> str:
        return json.dumps({k: v for k, v in d.items() if k not in ignore}, sort_keys=True, default=str)

    if path.is_file():
        with np.load(path, allow_pickle=False) as held:
            if key(json.loads(str(held["settings"]))) == key(json.loads(json.dumps(settings, default=str))):
                meta = json.loads(str(held["meta"]))
                return EstimatorResult(held["scores"], float(held["seconds"]), meta["modules"], meta["n_params"],
                                       meta["facts"]), True
    if compute is None:
        return None, False
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"modules": result.modules, "n_params": result.n_params, "facts": result.facts}, default=str)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, scores=result.scores, seconds=result.seconds, settings=json.dumps(settings, sort_keys=True, default=str),
             meta=meta)
    tmp.replace(path)
    return result, False
