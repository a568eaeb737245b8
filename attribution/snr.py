"""Signal-to-noise ratio of creator-level attribution against a retraining truth (numpy only).

Shared by the faithfulness evaluation (``attribution.evaluate``), which measures each method's SNR, and the
economy (``royaltysim.population``), whose noise sweeps inject noise at a given SNR: one definition, so a
measured SNR can be placed on a swept SNR axis. For an estimate = truth + independent noise, per output and
across creators, snr = var(truth) / var(noise) and the squared correlation is r2 = snr / (1 + snr).
"""

from __future__ import annotations

import numpy as np

__all__ = ["pearson_r", "snr_from_r2", "creator_snr", "bootstrap_mean_ci"]


def bootstrap_mean_ci(
    values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``values`` (NaNs dropped) and its percentile-bootstrap confidence interval."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(1)
    tail = (1 - level) / 2
    return float(v.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def pearson_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, the Pearson correlation of ``a`` and ``b`` across columns (NaN for a constant row)."""
    a = np.asarray(a, float) - np.nanmean(a, axis=1, keepdims=True)
    b = np.asarray(b, float) - np.nanmean(b, axis=1, keepdims=True)
    num = np.nansum(a * b, axis=1)
    den = np.sqrt(np.nansum(a * a, axis=1) * np.nansum(b * b, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)



def snr_from_r2(r2: float) -> float:
    """Signal-to-noise ratio var(signal) / var(noise) of an estimate whose squared correlation with the truth
    is ``r2``: for estimate = truth + independent noise, r2 = snr / (1 + snr), so snr = r2 / (1 - r2)."""
    if not np.isfinite(r2):
        return float("nan")
    r2 = min(max(float(r2), 0.0), 1.0)
    return float("inf") if r2 >= 1.0 else r2 / (1.0 - r2)


def creator_snr(creator_scores: np.ndarray, truth: np.ndarray, reliability: float = 1.0,
                n_boot: int = 2000, seed: int = 0) -> dict:
    """Creator-level signal-to-noise ratio of an attribution method against a leave-creator-out truth.

    The economy's noise model (``royaltysim.population.with_attribution_noise``) pays on truth + noise with,
    per output, var(noise) = var(truth across creators) / snr, so that the correlation across creators is
    r = sqrt(snr / (1 + snr)). The same quantity is measured here: per output the Pearson correlation across
    creators between the method's catalogue scores and the retraining differences, averaged over outputs
    (signed, so a method that ranks creators backwards is not rewarded, and unbiased for unrelated scores);
    then r2 = max(r, 0)^2 and snr = r2 / (1 - r2). The truth is itself noisy (training seeds);
    ``reliability`` (its share of variance that is not seed noise) disattenuates r2 (r2 / reliability,
    Spearman's correction) for ``snr_corrected``.

    Returns:
        r (mean over outputs), r2, snr, snr_low, snr_high (95% bootstrap over outputs), snr_corrected.
    """
    r = pearson_r(creator_scores, truth)
    mean, lo, hi = bootstrap_mean_ci(r, n_boot=n_boot, seed=seed)

    def r2(x: float) -> float:
        return max(x, 0.0) ** 2 if np.isfinite(x) else float("nan")

    rel = reliability if np.isfinite(reliability) and reliability > 0 else float("nan")
    corrected = snr_from_r2(min(r2(mean) / rel, 1.0)) if np.isfinite(rel) else float("nan")
    return {"r": mean, "r2": r2(mean), "snr": snr_from_r2(r2(mean)), "snr_low": snr_from_r2(r2(lo)),
            "snr_high": snr_from_r2(r2(hi)), "snr_corrected": corrected}
