"""LoGra through dattri's ``LoGraAttributor`` (Choe et al. 2024, arXiv 2405.13954; the seed paper's second method).

LoGra projects each ``nn.Linear`` layer's per-window gradient without forming it: the gradient of a layer is
``sum_t g_t x_t^T`` (output gradient times input, over positions), and a Kronecker-factored random projection
``P_out^T G P_in = sum_t (P_out^T g_t)(P_in^T x_t)^T`` needs only the two small factors. Per layer the projected
gradients (``proj_dim = k^2``, ``k`` per factor) get their own curvature, the empirical Fisher in the projected
space ``F_l = mean over windows of p p^T``, damped by ``damping x trace(F_l) / proj_dim`` (dattri's relative
damping), so

    score(out, window) = sum over layers l of  q_l^T (F_l + lambda_l I)^{-1} p_l(window).

A bias is projected as an extra input column of ones, as dattri does. dattri's gradient compressor is wrapped in
``torch.compile``; on CPU compiling costs about 40 s a process for no change in the numbers (checked against the
compiled path), so it runs eagerly here.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn

from ..model import MusicTransformer
from .common import EstimatorResult, covered_parameters, linear_modules, window_nll

__all__ = ["LograConfig", "LograModel", "logra_attributor", "logra_scores"]


@dataclass
class LograConfig:
    proj_dim: int = 256  # per layer, a perfect square: k x k with k = sqrt(proj_dim) per factor
    damping: float = 0.1  # relative to the mean eigenvalue of each layer's projected Fisher
    batch_size: int = 8
    modules: tuple[str, ...] | None = None  # None: every nn.Linear

    def __post_init__(self) -> None:
        k = math.isqrt(max(self.proj_dim, 0))
        if self.proj_dim < 1 or k * k != self.proj_dim:
            raise ValueError(f"logra proj_dim must be a perfect square (k x k per layer), got {self.proj_dim}; "
                             f"e.g. {max(1, k) ** 2} or {(k + 1) ** 2}")
        if not self.damping > 0:
            raise ValueError(f"logra damping must be > 0 (relative to each layer's mean eigenvalue), got {self.damping}")
        if self.batch_size < 1:
            raise ValueError(f"logra batch_size must be >= 1, got {self.batch_size}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["modules"] = None if self.modules is None else list(self.modules)
        return d


class LograModel(nn.Module):
    """The music transformer as dattri's hooks expect it: ``forward(tokens=...)`` returns an object whose ``loss``
    is the batch's *mean* window NLL (dattri multiplies each projected gradient by the batch size)."""

    def __init__(self, model: MusicTransformer) -> None:
        super().__init__()
        self.m = model

    def forward(self, tokens: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(loss=window_nll(self.m, tokens, self.m.config.pad_id).mean())


def logra_attributor(model: MusicTransformer, cfg: LograConfig, train_loader, cache_dir: str):
    """dattri's LoGraAttributor on ``model`` (its weights as they are), cached on ``train_loader``'s windows.

    ``cache_dir`` must be a fresh folder: dattri keeps its batch metadata there (in the working directory when it
    is not given) and silently reuses metadata it finds, whatever data it came from.
    """
    try:
        from dattri.algorithm.logra import LoGraAttributor
        from dattri.task import AttributionTask
    except ImportError as exc:
        raise ImportError(
            "dattri is not installed; install it with `pip install -e '.[dev]'` (or '.[bench]') or leave logra out "
            "of --methods"
        ) from exc
    wrapped = LograModel(model).eval()
    state = {k: v.detach().clone() for k, v in wrapped.state_dict().items()}

    def loss(m, batch, device):
        return m(tokens=batch["tokens"].to(device)).loss

    def load(m, _ckpt):
        m.load_state_dict(state)
        return m.eval()

    task = AttributionTask(loss_func=loss, model=wrapped, checkpoints=["in-memory"], checkpoints_load_func=load)
    modules = [f"m.{n}" for n in (cfg.modules if cfg.modules is not None else linear_modules(model))]
    attributor = LoGraAttributor(task, layer_names=modules, hessian="eFIM", damping=cfg.damping, device="cpu",
                                 proj_dim=cfg.proj_dim, offload="none", cache_dir=cache_dir)
    logging.getLogger("dattri").setLevel(logging.WARNING)
    with torch._dynamo.config.patch(disable=True):
        attributor.cache(train_loader)
    return attributor


def _loader(tokens: np.ndarray, batch_size: int) -> torch.utils.data.DataLoader:
    rows = [{"tokens": t} for t in torch.as_tensor(np.asarray(tokens), dtype=torch.long)]
    return torch.utils.data.DataLoader(rows, batch_size=batch_size, shuffle=False)


def logra_scores(model: MusicTransformer, train_tokens: np.ndarray, output_tokens: np.ndarray,
                 cfg: LograConfig) -> EstimatorResult:
    """LoGra influence of every training window on every output, (n_outputs, n_windows), through dattri."""
    t0 = time.perf_counter()
    modules = list(cfg.modules) if cfg.modules is not None else linear_modules(model)
    unknown = sorted(set(modules) - set(linear_modules(model)))
    if unknown:
        raise ValueError(f"logra modules {unknown} are not nn.Linear modules of the model; choose from {linear_modules(model)}")
    train = _loader(train_tokens, cfg.batch_size)
    # dattri seeds each layer's projection itself (seed 0 plus the layer's index), so the scores are reproducible
    with tempfile.TemporaryDirectory() as tmp:
        attributor = logra_attributor(model, LograConfig(**{**cfg.to_dict(), "modules": tuple(modules)}), train, tmp)
        with torch._dynamo.config.patch(disable=True):
            scores = attributor.attribute(train, _loader(output_tokens, cfg.batch_size))  # (n_windows, n_outputs)
    facts = {"damping": f"{cfg.damping:g} x mean eigenvalue per layer (projected empirical Fisher)",
             "proj_dim_per_layer": cfg.proj_dim, "checkpoint": "final"}
    return EstimatorResult(scores.T.double().numpy(), time.perf_counter() - t0, modules,
                           covered_parameters(model, modules), facts)
