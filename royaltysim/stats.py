"""Statistics over replicate seeds: intervals for a measure and for a paired difference between two arms.

Every arm of a scenario runs on common random numbers within a seed, so two arms are compared seed by
seed: the difference ``arm - reference`` is computed in each seed and the interval is over those
differences (a paired design; the luck both arms share cancels). Pure functions on 1-D arrays, one
value per seed:

* :func:`mean_interval` -- a measure's mean over seeds with a confidence interval that stays inside the
  measure's bounds (a Gini in [0, 1] never gets an interval past 1);
* :func:`paired_difference` -- the mean paired difference with a paired t interval (default) or a
  bootstrap over seeds, and the paired t test's p-value;
* :func:`verdict` -- what an interval lets a finding say: ``"higher"``, ``"lower"``, ``"no detectable
  difference"``, ``"identical"`` (the same value in every seed) or ``"one seed"`` (no interval at all).

Distributions come from :mod:`scipy.stats`; nothing here is hand-rolled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

__all__ = ["Interval", "Bounds", "mean_interval", "paired_difference", "verdict", "Verdict", "LEVEL"]

#: the confidence level used throughout reports
LEVEL = 0.95

#: ``(low, high)`` limits of a measure; either may be None (a count has only a floor)
Bounds = tuple[float | None, float | None]

Verdict = Literal["higher", "lower", "no detectable difference", "identical", "one seed"]


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval over ``n`` seeds.

    Attributes:
        estimate: the mean (of the values, or of the paired differences).
        low, high: the interval's ends (NaN with a single seed).
        n: seeds.
        method: how the interval was made, in words (shown in reports).
        p_value: the paired t test's two-sided p-value (differences only; NaN otherwise).
        level: confidence level.
    """

    estimate: float
    low: float
    high: float
    n: int
    method: str
    p_value: float = float("nan")
    level: float = LEVEL

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of zero (a detectable difference)."""
        return self.n > 1 and (self.low > 0 or self.high < 0)


def _values(x: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array with one value per seed; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite; got {arr.tolist()}")
    return arr


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be a confidence level in (0, 1), e.g. 0.95; got {level!r}")


def _t_half_width(values: np.ndarray, level: float) -> float:
    n = values.size
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))


def _transform(bounds: Bounds) -> tuple[callable, callable] | None:
    """The map that takes a bounded measure onto the whole real line, and back (None when unbounded)."""
    lo, hi = bounds
    if lo is not None and hi is not None:
        width = hi - lo
        return (lambda v: special.logit((v - lo) / width)), (lambda z: lo + width * special.expit(z))
    if lo is not None:
        return (lambda v: np.log(v - lo)), (lambda z: lo + np.exp(z))
    if hi is not None:
        return (lambda v: -np.log(hi - v)), (lambda z: hi - np.exp(-z))
    return None


def mean_interval(values: ArrayLike, *, bounds: Bounds = (None, None), level: float = LEVEL) -> Interval:
    """Mean over seeds with a ``level`` confidence interval that respects the measure's bounds.

    Unbounded measures get the Student t interval. A bounded measure's interval is the t interval made
    on the scale where it is unbounded (logit for ``[low, high]``, log for a floor only) and mapped back,
    so it always lies strictly inside the bounds, the way a Wilson interval does for a proportion; when a
    value sits exactly on a bound (that scale is infinite there) the t interval is clipped to the bounds
    instead. The estimate is always the plain mean. One seed gives the value with a NaN interval; equal
    values give a zero-width interval.
    """
    _check_level(level)
    v = _values(values, "values")
    mean = float(v.mean())
    if v.size == 1:
        return Interval(mean, float("nan"), float("nan"), 1, "one seed: no interval")
    if np.all(v == v[0]):
        return Interval(mean, mean, mean, v.size, "the same value in every seed")
    lo, hi = bounds
    maps = _transform(bounds)
    on_bound = (lo is not None and v.min() <= lo) or (hi is not None and v.max() >= hi)
    if maps is None or on_bound:
        half = _t_half_width(v, level)
        low, high = mean - half, mean + half
        if maps is None:
            return Interval(mean, low, high, v.size, "Student t over seeds")
        low = max(low, lo) if lo is not None else low
        high = min(high, hi) if hi is not None else high
        return Interval(mean, low, high, v.size, "Student t over seeds, clipped to the measure's bounds")
    forward, back = maps
    z = forward(v)
    centre, half = float(z.mean()), _t_half_width(z, level)
    low, high = float(back(centre - half)), float(back(centre + half))
    # the interval is for the location on the transformed scale; keep the plain mean inside it
    return Interval(mean, min(low, mean), max(high, mean), v.size,
                    "Student t over seeds on the logit scale" if lo is not None and hi is not None
                    else "Student t over seeds on the log scale")


def paired_difference(
    arm: ArrayLike,
    reference: ArrayLike,
    *,
    bounds: Bounds = (None, None),
    level: float = LEVEL,
    method: Literal["t", "bootstrap"] = "t",
    n_resamples: int = 9999,
    seed: int = 0,
) -> Interval:
    """Mean of ``arm - reference`` over seeds (paired: position ``i`` of both is seed ``i``), with an interval.

    Args:
        arm, reference: one value per seed, in the same seed order.
        bounds: the measure's bounds; a difference can never leave ``[low - high, high - low]`` and the
            interval is clipped there.
        method: ``"t"`` (default): the paired t interval, valid for the mean of independent replicate
            differences (each seed is an independent run); ``"bootstrap"``: a percentile bootstrap over seeds
            (:func:`scipy.stats.bootstrap`, resampling the seeds' differences; with few seeds it is narrower
            than t and under-covers).
        n_resamples, seed: the bootstrap's resamples and its generator's seed.

    Returns:
        :class:`Interval` of the difference with the paired t test's p-value (NaN with one seed; 1 when every
        difference is zero).
    """
    _check_level(level)
    a, b = _values(arm, "arm"), _values(reference, "reference")
    if a.shape != b.shape:
        raise ValueError(f"arm has {a.size} seeds but reference has {b.size}; a paired difference needs the same seeds")
    d = a - b
    mean = float(d.mean())
    if d.size == 1:
        return Interval(mean, float("nan"), float("nan"), 1, "one seed: no interval")
    if np.all(d == d[0]):
        p = 1.0 if d[0] == 0 else 0.0
        return Interval(mean, mean, mean, d.size, "the same difference in every seed", p_value=p)
    p_value = float(stats.ttest_1samp(d, 0.0).pvalue)
    if method == "t":
        half = _t_half_width(d, level)
        low, high, how = mean - half, mean + half, "paired t over seeds"
    elif method == "bootstrap":
        res = stats.bootstrap((d,), np.mean, confidence_level=level, n_resamples=n_resamples,
                              method="percentile", random_state=np.random.default_rng(seed))
        low, high, how = float(res.confidence_interval.low), float(res.confidence_interval.high), "paired bootstrap over seeds"
    else:
        raise ValueError(f"method must be 't' or 'bootstrap'; got {method!r}")
    lo, hi = bounds
    if lo is not None and hi is not None:
        span = hi - lo
        low, high = max(low, -span), min(high, span)
    return Interval(mean, low, high, d.size, how, p_value=p_value)


def verdict(interval: Interval) -> Verdict:
    """What a paired difference's interval supports: a direction only when it excludes zero."""
    if interval.n < 2:
        return "one seed"
    if interval.low == interval.high == interval.estimate:
        return "identical" if interval.estimate == 0 else ("higher" if interval.estimate > 0 else "lower")
    if interval.low > 0:
        return "higher"
    if interval.high < 0:
        return "lower"
    return "no detectable difference"
