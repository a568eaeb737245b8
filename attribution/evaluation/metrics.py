"""The evaluation's tidy metrics table: one row per (method, mode, metric), with a bootstrap CI over outputs.

Every metric family (:mod:`.lds`, :mod:`.leaveout`, :mod:`.overlap`) adds its rows through one
:class:`MetricRows`, so every number carries its method's family and the retraining mode of the ground truth it
was measured against: ``"reshuffled"`` (each retrained model a fresh run of the recipe with its own batch
order), ``"fixed"`` (trajectory-exact replays of the full-data reference run), or ``"none"`` for numbers that
involve no retraining (similarity against TDA, the peer against ours).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..snr import bootstrap_mean_ci
from ..table import is_similarity_method

__all__ = ["METRIC_COLUMNS", "NO_RETRAINING", "MetricRows", "family"]

METRIC_COLUMNS = ["method", "family", "mode", "metric", "value", "ci_low", "ci_high", "spread", "n"]
NO_RETRAINING = "none"  # the mode of a number that involves no retrained model


def family(method: str) -> str:
    """The family a method belongs to: tda, similarity, baseline, peer, or noise (the ground truth itself)."""
    if method.startswith("retraining"):
        return "noise"
    if method in ("random", "catalogue_size"):
        return "baseline"
    if method.startswith("dattri"):
        return "peer"
    return "similarity" if is_similarity_method(method) else "tda"


class MetricRows:
    """Collects metric rows; a per-output array becomes its mean with a percentile-bootstrap CI over outputs."""

    def __init__(self, n_boot: int = 2000) -> None:
        self.n_boot = n_boot
        self.rows: list[dict] = []

    def add(self, method: str, metric: str, values: np.ndarray | float, spread: float = float("nan"),
            n: int | None = None, mode: str = NO_RETRAINING) -> None:
        """One row: ``values`` per output (mean, bootstrap CI, n = finite outputs) or a scalar (no CI)."""
        if np.ndim(values):
            mean, lo, hi = bootstrap_mean_ci(values, n_boot=self.n_boot)
            n = int(np.isfinite(values).sum())
        else:
            mean, lo, hi = float(values), float("nan"), float("nan")
        self.rows.append({"method": method, "family": family(method), "mode": mode, "metric": metric, "value": mean,
                          "ci_low": lo, "ci_high": hi, "spread": spread, "n": n})

    def add_pooled(self, method: str, metric: str, draws: list[np.ndarray], mode: str = NO_RETRAINING) -> None:
        """One row for a seeded baseline: the per-output values of every draw pooled (mean, CI), the spread of the
        draws' means across draws, n = the number of draws."""
        mean, lo, hi = bootstrap_mean_ci(np.concatenate(draws), n_boot=self.n_boot)
        spread = float(np.std([np.nanmean(x) for x in draws], ddof=1)) if len(draws) > 1 else float("nan")
        self.rows.append({"method": method, "family": family(method), "mode": mode, "metric": metric, "value": mean,
                          "ci_low": lo, "ci_high": hi, "spread": spread, "n": len(draws)})

    def add_interval(self, method: str, metric: str, value: float, ci_low: float, ci_high: float, n: int | None,
                     mode: str = NO_RETRAINING) -> None:
        """One row whose interval was computed elsewhere (e.g. :func:`attribution.snr.creator_snr`)."""
        self.rows.append({"method": method, "family": family(method), "mode": mode, "metric": metric, "value": value,
                          "ci_low": ci_low, "ci_high": ci_high, "spread": float("nan"), "n": n})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=METRIC_COLUMNS)
