"""Distribution metrics: how income is spread across creators, and how payouts track contributions.

Pure functions on 1-D numpy arrays, one number (or curve) each:

* inequality of one income vector -- :func:`gini`, :func:`lorenz`, :func:`top_share`, :func:`theil`,
  :func:`atkinson`, :func:`share_below`, :func:`hhi`;
* agreement of payouts with true contributions -- :func:`misallocation`, :func:`rank_agreement`.

Conventions shared by all of them:

* Input must be a non-empty, finite, 1-D array; otherwise ``ValueError`` names the bad value.
  Measures defined on shares of a total need non-negative incomes and reject negative ones.
* An all-zero income vector has no shares; the inequality measures read it as perfect equality
  (everyone holds the same, nothing), so ``gini``, ``theil`` and ``atkinson`` give 0, ``lorenz`` the
  line of equality, ``top_share(x, q)`` gives ``q`` and ``hhi`` gives ``1/n``. Each docstring repeats
  the value it returns.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "gini",
    "lorenz",
    "top_share",
    "theil",
    "atkinson",
    "share_below",
    "hhi",
    "misallocation",
    "rank_agreement",
]


def _vector(x: ArrayLike, name: str = "x", *, non_negative: bool = True) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of incomes; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; a distribution needs at least one value")
    if not np.isfinite(arr).all():
        i = int(np.argmax(~np.isfinite(arr)))
        raise ValueError(f"{name} must be finite; found {float(arr[i])} at index {i}")
    if non_negative and arr.min() < 0:
        i = int(np.argmin(arr))
        raise ValueError(f"{name} must be non-negative for this measure; found {float(arr[i])} at index {i}")
    return arr


def gini(x: ArrayLike) -> float:
    """Gini coefficient: mean absolute difference between two incomes over twice the mean.

    ``G = sum_i sum_j |x_i - x_j| / (2 n^2 mean(x))``.

    Range [0, 1 - 1/n]: 0 when everyone earns the same (or everyone earns nothing); ``1 - 1/n``
    (nearly 1 for many creators) when one creator takes everything.
    """
    arr = np.sort(_vector(x))
    n, total = arr.size, arr.sum()
    if total == 0:
        return 0.0
    rank = np.arange(1, n + 1)
    return float(2.0 * np.dot(rank, arr) / (n * total) - (n + 1) / n)


def lorenz(x: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz curve: the share of income held by the poorest fraction of the population.

    Returns ``(population_share, income_share)``, each of length ``n + 1``, from (0, 0) to (1, 1);
    point ``i`` says the ``i`` poorest hold ``income_share[i]`` of the total. The curve lies on the
    diagonal for perfect equality (also returned for all-zero incomes) and hugs the bottom-right
    corner when one creator takes everything.
    """
    arr = np.sort(_vector(x))
    n, total = arr.size, arr.sum()
    population = np.arange(n + 1) / n
    if total == 0:
        return population, population.copy()
    income = np.concatenate(([0.0], np.cumsum(arr) / total))
    income[-1] = 1.0  # exact end point despite float rounding of the cumulative sum
    return population, income


def top_share(x: ArrayLike, q: float) -> float:
    """Share of total income held by the richest fraction ``q`` of the population (``0 < q <= 1``).

    The top ``q`` holds ``q * n`` people; a fractional count takes that fraction of the next richest
    person's income. For n=50 and q=0.01 it is half the richest creator's share, so the result is
    ``1 - L(1 - q)`` on the piecewise-linear Lorenz curve ``L`` and is continuous in ``q``.

    Range [q, 1]: ``q`` under perfect equality (also returned for all-zero incomes); 1 when the
    top ``q`` hold everything.
    """
    if isinstance(q, bool) or not isinstance(q, (int, float, np.number)) or not 0 < float(q) <= 1:
        raise ValueError(f"q must be a fraction of the population in (0, 1]; got {q!r}")
    arr = np.sort(_vector(x))[::-1]
    n, total = arr.size, arr.sum()
    if total == 0:
        return float(q)
    count = round(float(q) * n, 9)  # so that e.g. 0.29 * 100 counts exactly 29 people
    whole = min(int(np.floor(count)), n)
    held = arr[:whole].sum()
    if whole < n:
        held += (count - whole) * arr[whole]
    return float(min(held / total, 1.0))


def theil(x: ArrayLike) -> float:
    """Theil T index: ``T = mean((x_i / mu) * ln(x_i / mu))`` with ``0 ln 0 = 0``.

    Range [0, ln n]: 0 under perfect equality (also for all-zero incomes), ``ln n`` when one creator
    takes everything. Unlike Gini it is decomposable into within- and between-group inequality.
    """
    arr = _vector(x)
    mu = arr.mean()
    if mu == 0:
        return 0.0
    r = arr / mu
    terms = np.zeros_like(r)
    pos = r > 0
    terms[pos] = r[pos] * np.log(r[pos])
    return float(max(terms.mean(), 0.0))


def atkinson(x: ArrayLike, epsilon: float = 0.5) -> float:
    """Atkinson index: the share of income society would give up to remove inequality.

    ``A = 1 - EDE / mu`` with the equally-distributed equivalent ``EDE = mean(x^(1-e))^(1/(1-e))``
    for ``epsilon = e != 1`` and the geometric mean for ``e = 1``. Larger ``epsilon`` cares more about
    the poorest; ``epsilon = 0`` gives 0 always.

    Range [0, 1]: 0 under perfect equality (also for all-zero incomes); 1 when, for ``epsilon >= 1``,
    anyone earns zero (the geometric mean collapses) or, as ``epsilon`` grows, the poorest earn
    nothing.
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.number)) or not (
        np.isfinite(epsilon) and epsilon >= 0
    ):
        raise ValueError(f"epsilon must be a finite number >= 0 (inequality aversion); got {epsilon!r}")
    arr = _vector(x)
    mu = arr.mean()
    if mu == 0:
        return 0.0
    e = float(epsilon)
    r = arr / mu  # scale-free, keeps powers in range
    if e == 0:
        return 0.0
    if e >= 1 and np.any(r == 0):
        return 1.0
    if e == 1:
        ede = np.exp(np.mean(np.log(r)))
    else:
        ede = np.mean(r ** (1.0 - e)) ** (1.0 / (1.0 - e))
    return float(min(max(1.0 - ede, 0.0), 1.0))


def share_below(x: ArrayLike, line: float) -> float:
    """Fraction of the population earning strictly less than ``line`` (e.g. a living wage).

    Range [0, 1]: 0 when nobody is below the line, 1 when everybody is. Negative incomes are allowed
    (a net loss is below any non-negative line).
    """
    if isinstance(line, bool) or not isinstance(line, (int, float, np.number)) or not np.isfinite(line):
        raise ValueError(f"line must be a finite number; got {line!r}")
    arr = _vector(x, non_negative=False)
    return float(np.mean(arr < line))


def hhi(x: ArrayLike) -> float:
    """Herfindahl-Hirschman index: ``sum_i s_i^2`` of income shares ``s_i = x_i / sum(x)``.

    Range [1/n, 1]: ``1/n`` when income is split equally (also returned for all-zero incomes), 1
    when one creator takes everything. ``1 / hhi`` is the "effective number" of creators paid.
    """
    arr = _vector(x)
    total = arr.sum()
    if total == 0:
        return 1.0 / arr.size
    shares = arr / total
    return float(np.dot(shares, shares))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of their ranks: ``scipy.stats.rankdata(x)``, number for number.

    Computed here because scipy's general version costs more than the rest of a month's metrics.
    """
    order = np.argsort(x, kind="stable")
    y = x[order]
    starts = np.empty(x.size, dtype=bool)  # where each run of ties starts
    starts[0] = True
    np.not_equal(y[1:], y[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    ties = np.empty_like(first)
    ties[:-1] = first[1:] - first[:-1]
    ties[-1] = x.size - first[-1]
    ranks = np.empty(x.size)
    ranks[order] = np.repeat((first + 1.0) + (ties - 1.0) / 2, ties)
    return ranks


def _paired(paid: ArrayLike, true: ArrayLike, *, non_negative: bool) -> tuple[np.ndarray, np.ndarray]:
    p = _vector(paid, "paid", non_negative=non_negative)
    t = _vector(true, "true", non_negative=non_negative)
    if p.shape != t.shape:
        raise ValueError(f"paid has shape {p.shape} but true has shape {t.shape}; they must match")
    return p, t


def misallocation(paid: ArrayLike, true: ArrayLike) -> float:
    """Total-variation distance between payout shares and true-contribution shares.

    ``0.5 * sum_a |paid_a / sum(paid) - true_a / sum(true)|``: the fraction of the money that would
    have to move to pay everyone exactly in proportion to their contribution.

    Range [0, 1]: 0 when paid exactly as contributed, 1 when the payees and the contributors are
    disjoint. If both vectors are all zero the result is 0 (nothing to pay, nothing paid); if only one
    is (nothing was paid although creators contributed, or money was paid for no contribution) it is
    1, since none of the money reached a contributor.
    """
    p, t = _paired(paid, true, non_negative=True)
    sp, st = p.sum(), t.sum()
    if sp == 0 or st == 0:
        return 0.0 if sp == st else 1.0
    return float(min(0.5 * np.abs(p / sp - t / st).sum(), 1.0))


def rank_agreement(paid: ArrayLike, true: ArrayLike) -> float:
    """Spearman rank correlation between payouts and true contributions (ties get average ranks).

    Range [-1, 1]: 1 when payouts rank creators exactly as their contributions do, 0 when unrelated,
    -1 when exactly reversed. Values may be negative (e.g. raw attribution scores). When a vector
    has no variation, Spearman is undefined; the result is 1 if *both* are constant (the rankings are
    identically all tied, e.g. a single creator) and 0 if only one is (it carries no ranking).
    """
    p, t = _paired(paid, true, non_negative=False)
    p_const, t_const = bool((p == p[0]).all()), bool((t == t[0]).all())
    if p_const or t_const:
        return 1.0 if p_const and t_const else 0.0
    rp, rt = _average_ranks(p), _average_ranks(t)
    rp -= rp.mean()
    rt -= rt.mean()
    rho = np.dot(rp, rt) / np.sqrt(np.dot(rp, rp) * np.dot(rt, rt))
    return min(max(float(rho), -1.0), 1.0)  # np.clip's answer, without its cost on one number
