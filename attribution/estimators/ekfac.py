"""EK-FAC influence functions through ``kronfluence`` (Grosse et al. 2023, arXiv 2308.03296).

``score(out, window) = g_out^T (G + damping)^{-1} g_window`` over the model's ``nn.Linear`` layers, with ``G``
each layer's Fisher (block-diagonal across layers) in Eigenvalue-corrected Kronecker-Factored form: the
eigenbases of the input-activation and output-gradient covariances (K-FAC's factors), and in that basis the
exact second moments of the per-window gradients (George et al. 2018). Where the per-window gradients' second
moment is diagonal in that basis, EK-FAC *is* the layer's Fisher (the property the tests check).

* Fisher: ``"true"`` (default) samples each event's label from the model itself, so ``G`` is the Gauss-Newton
  matrix of the cross-entropy in expectation, as in kronfluence's language-model examples; ``"empirical"``
  uses the training labels (deterministic).
* Damping: ``None`` (default) is kronfluence's heuristic, 0.1 x the mean eigenvalue of each layer's
  corrected Fisher; a number is an absolute damping added to every layer.
* The model is not adapted: kronfluence wraps every ``nn.Linear`` as it is (the logits are unchanged, tested),
  and attention's products and the embeddings are left out (see :mod:`.common`).
"""

from __future__ import annotations

import copy
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..model import MusicTransformer, event_log_probs
from .common import EstimatorResult, covered_parameters, frozen_heap, linear_modules, window_nll

__all__ = ["EkfacConfig", "WindowTask", "ekfac_scores"]

FISHERS = ("true", "empirical")


@dataclass
class EkfacConfig:
    damping: float | None = None  # None: 0.1 x mean eigenvalue per layer (kronfluence's heuristic); else absolute
    fisher: str = "true"  # "true": labels sampled from the model (GGN in expectation); "empirical": training labels
    batch_size: int = 8
    seed: int = 0  # the sampled labels of the true Fisher
    modules: tuple[str, ...] | None = None  # None: every nn.Linear

    def __post_init__(self) -> None:
        if self.fisher not in FISHERS:
            raise ValueError(f"ekfac fisher: {self.fisher!r} is not one of {FISHERS}")
        if self.damping is not None and not self.damping > 0:
            raise ValueError(f"ekfac damping must be > 0 or None (kronfluence's heuristic), got {self.damping}")
        if self.batch_size < 1:
            raise ValueError(f"ekfac batch_size must be >= 1, got {self.batch_size}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["modules"] = None if self.modules is None else list(self.modules)
        return d


def _task_class():
    from kronfluence.task import Task

    class _WindowTask(Task):
        """kronfluence's task: window NLL as training loss (summed over the batch), output NLL as measurement."""

        def __init__(self, pad_id: int, modules: list[str]) -> None:
            super().__init__()
            self.pad_id = pad_id
            self.modules = list(modules)

        def compute_train_loss(self, batch, model, sample: bool = False) -> torch.Tensor:
            logits, _ = model(batch[:, :-1])  # (B, T, V)
            targets = batch[:, 1:]
            if sample:  # the true Fisher: each real event's label drawn from the model's own prediction
                with torch.no_grad():
                    probs = torch.softmax(logits.detach().reshape(-1, logits.size(-1)).double(), -1)
                    drawn = torch.multinomial(probs, 1).view_as(targets)
                targets = torch.where(targets == self.pad_id, targets, drawn)
            return -event_log_probs(logits, targets, self.pad_id).sum()

        def compute_measurement(self, batch, model) -> torch.Tensor:
            return window_nll(model, batch, self.pad_id).sum()

        def get_influence_tracked_modules(self) -> list[str]:
            return self.modules

        def get_attention_mask(self, batch) -> torch.Tensor:
            return (batch[:, 1:] != self.pad_id).long()  # input t counts where its target is an event

    return _WindowTask


def WindowTask(pad_id: int, modules: list[str]):  # noqa: N802 - a factory, so kronfluence is imported only when used
    """The kronfluence ``Task`` of this model (built on first use so that importing this module stays cheap)."""
    return _task_class()(pad_id, modules)


class _Rows(torch.utils.data.Dataset):
    def __init__(self, tokens: np.ndarray) -> None:
        self.tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.tokens[i]


def ekfac_scores(
    model: MusicTransformer,
    train_tokens: np.ndarray,
    output_tokens: np.ndarray,
    cfg: EkfacConfig,
    work_dir: Path | None = None,
) -> EstimatorResult:
    """EK-FAC influence of every training window on every output, (n_outputs, n_windows), through kronfluence.

    Args:
        model: the trained model (not modified: kronfluence works on a copy).
        train_tokens: (n_windows, T+1) training windows (the covariances and eigenvalues are fitted on them).
        output_tokens: (n_outputs, L) outputs, BOS first.
        work_dir: where kronfluence writes its factors (a temporary folder, removed after, by default).
    """
    try:
        from kronfluence.analyzer import Analyzer, prepare_model
        from kronfluence.arguments import FactorArguments, ScoreArguments
    except ImportError as exc:
        raise ImportError(
            "kronfluence is not installed; install the attribution extra with `pip install -e '.[attribution]'` "
            "or leave ekfac out of --methods"
        ) from exc

    t0 = time.perf_counter()
    pad = model.config.pad_id
    modules = list(cfg.modules) if cfg.modules is not None else linear_modules(model)
    unknown = sorted(set(modules) - set(linear_modules(model)))
    if unknown:
        raise ValueError(f"ekfac modules {unknown} are not nn.Linear modules of the model; choose from {linear_modules(model)}")
    n_params = covered_parameters(model, modules)
    task = WindowTask(pad, modules)
    tracked = prepare_model(copy.deepcopy(model).eval(), task)
    train, out = _Rows(train_tokens), _Rows(output_tokens)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp, torch.random.fork_rng(), frozen_heap():
        torch.manual_seed(cfg.seed)
        for name in ("kronfluence", "accelerate"):
            logging.getLogger(name).setLevel(logging.WARNING)
        analyzer = Analyzer(analysis_name="ekfac", model=tracked, task=task, cpu=True, disable_tqdm=True, output_dir=tmp)
        analyzer.fit_all_factors(
            factors_name="ekfac", dataset=train, per_device_batch_size=cfg.batch_size,
            factor_args=FactorArguments(strategy="ekfac", use_empirical_fisher=cfg.fisher == "empirical"),
            overwrite_output_dir=True,
        )
        analyzer.compute_pairwise_scores(
            scores_name="scores", factors_name="ekfac", query_dataset=out, train_dataset=train,
            per_device_query_batch_size=cfg.batch_size, per_device_train_batch_size=cfg.batch_size,
            score_args=ScoreArguments(damping_factor=cfg.damping), overwrite_output_dir=True,
        )
        scores = analyzer.load_pairwise_scores("scores")["all_modules"].double().numpy()
    facts = {"damping": "0.1 x mean eigenvalue per layer" if cfg.damping is None else cfg.damping,
             "fisher": cfg.fisher, "checkpoint": "final"}
    return EstimatorResult(scores, time.perf_counter() - t0, modules, n_params, facts)
