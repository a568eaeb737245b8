"""Shapley values: the sampler, and the two Shapley rules of the royalty literature as schemes.

A cooperative game gives every coalition ``S`` of players (creators) a value ``v(S)``; the Shapley value
of player ``i`` is its marginal contribution ``v(P ∪ {i}) - v(P)`` averaged over every order ``P`` in
which the players could arrive. Here:

* :func:`permutation_shapley` -- the Monte Carlo estimate (Castro, Gómez and Tejada 2009): sample orders,
  average each player's marginal contributions, and state the standard error of each value (the spread of
  its marginal contributions over the orders drawn, over the square root of their number). A game is
  given by its *prefix values*: for an order, ``v`` of its first ``k`` players for ``k = 0..n``, which
  every game here evaluates in one vectorised pass;
* :func:`exact_shapley` -- the definition, by enumerating coalitions (small games; the tests' yardstick);
* :class:`LinearDatamodelGame` and :func:`royalty_share_values` -- the AI pool's game for **Shapley
  Royalty Share** (Wang et al. 2024, arXiv 2404.13964: pay data owners their Shapley value in the
  generative model's utility), and the ``shapley_royalty_share`` scheme;
* :func:`sampling_errors` -- collects the sampling error of every sampled Shapley rule paid inside it (the
  platform wraps each month's AI settlement in it, so ``model.parquet`` records ``ai_shapley_se``), and
  :func:`sampling_findings` states it in the run report;
* :class:`StreamingGame` and :func:`streaming_shapley` -- the human pool's **streaming game**
  (Bergantiños and Moreno-Ternero, *Revenue sharing at music streaming platforms*, Management Science
  2025): the value of a coalition of creators is the money of the users who listen to no one else. Its
  Shapley value has a closed form, each user's money split equally among the creators they streamed
  (the ``shapley_streaming`` scheme).

Written here rather than taken from a library: the Shapley packages on PyPI (``shap``, ``shapiq``)
explain a model's predictions with a background sample and bring heavy dependencies; the sampler is
twenty lines over a prefix-value function, and the tests hold it to the exact definition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import combinations
from math import factorial
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from royaltysim.schemes import Settlement, _choice, _number, _shares, register_scheme

__all__ = [
    "ShapleyEstimate",
    "SamplingError",
    "sampling_errors",
    "sampling_findings",
    "permutation_shapley",
    "exact_shapley",
    "LinearDatamodelGame",
    "royalty_share_values",
    "StreamingGame",
    "streaming_shapley",
    "shapley_royalty_share",
    "shapley_streaming",
]

PrefixValues = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ShapleyEstimate:
    """Shapley values estimated by sampling orders of the players.

    Attributes:
        values: (n_players,) the mean marginal contribution of each player over the orders drawn.
        se: (n_players,) the standard error of each value: the sample standard deviation of the
            player's marginal contributions over the orders, divided by ``sqrt(permutations)``
            (0 for a player whose contribution is the same in every order, e.g. in an additive game;
            NaN with a single order).
        permutations: how many orders were drawn.
    """

    values: np.ndarray
    se: np.ndarray
    permutations: int


def permutation_shapley(
    prefix_values: PrefixValues, n_players: int, permutations: int, rng: np.random.Generator
) -> ShapleyEstimate:
    """Monte Carlo Shapley values from ``permutations`` uniformly random orders of the players.

    Args:
        prefix_values: ``f(order) -> (n_players + 1,)``, the game's value of the first ``k`` players of
            ``order`` for ``k = 0..n_players`` (``f(order)[0]`` is the empty coalition's value).
        n_players: players in the game.
        permutations: orders to draw (>= 1).
        rng: the random generator the orders are drawn from.
    """
    if permutations < 1:
        raise ValueError(f"permutations must be >= 1; got {permutations}")
    marginal = np.zeros((permutations, n_players))
    for t in range(permutations):
        order = rng.permutation(n_players)
        pv = np.asarray(prefix_values(order), dtype=float)
        if pv.shape != (n_players + 1,):
            raise ValueError(f"prefix_values returned shape {pv.shape}; expected ({n_players + 1},)")
        marginal[t, order] = np.diff(pv)
    values = marginal.mean(axis=0)
    if permutations > 1:
        se = marginal.std(axis=0, ddof=1) / np.sqrt(permutations)
    else:
        se = np.full(n_players, np.nan)
    return ShapleyEstimate(values, se, permutations)


def exact_shapley(value: Callable[[np.ndarray], float], n_players: int) -> np.ndarray:
    """Shapley values by the definition, ``sum_S |S|! (n - |S| - 1)! / n! * (v(S ∪ {i}) - v(S))``.

    ``value`` takes a bool membership mask of shape (n_players,). Enumerates every coalition: only for
    small games (at most 16 players).
    """
    if n_players > 16:
        raise ValueError(f"exact Shapley values enumerate 2**n coalitions; {n_players} players is too many")
    out = np.zeros(n_players)
    weight = [factorial(k) * factorial(n_players - k - 1) / factorial(n_players) for k in range(n_players)]
    for i in range(n_players):
        others = [j for j in range(n_players) if j != i]
        for k in range(n_players):
            for members in combinations(others, k):
                mask = np.zeros(n_players, dtype=bool)
                mask[list(members)] = True
                without = value(mask)
                mask[i] = True
                out[i] += weight[k] * (value(mask) - without)
    return out


# --------------------------------------------------------------------------- sampling error, recorded
@dataclass(frozen=True)
class SamplingError:
    """A sampled Shapley rule's error in one settlement.

    Attributes:
        share_se: the largest standard error of any creator's share of the pool the rule split (0: exact,
            as in an additive game; NaN with a single order).
        permutations: the orders sampled.
    """

    share_se: float
    permutations: int


#: a share's standard error below this is float rounding of sums of marginal contributions, not sampling
_ROUNDING = 1e-12

_SAMPLED: ContextVar[list[SamplingError] | None] = ContextVar("shapley_sampled", default=None)


@contextmanager
def sampling_errors() -> Iterator[list[SamplingError]]:
    """Collect the :class:`SamplingError` of every sampled Shapley rule paid inside the block (at any nesting).

    Schemes stay pure functions of their settlement: outside such a block nothing is recorded.
    """
    found: list[SamplingError] = []
    token = _SAMPLED.set(found)
    try:
        yield found
    finally:
        _SAMPLED.reset(token)


def sampling_findings(model: pd.DataFrame) -> list[str]:
    """The run report's sentence per arm that paid a sampled Shapley rule: its orders and standard error.

    ``model`` is the monthly model table; runs written before ``ai_shapley_se`` was recorded give nothing.
    """
    if "ai_shapley_se" not in model.columns:
        return []
    out = []
    for arm, g in model.groupby("scheme", sort=False):
        sampled = g[g["ai_shapley_permutations"] > 0]
        if sampled.empty:
            continue
        se = sampled["ai_shapley_se"].to_numpy(dtype=float)
        orders = sorted(set(sampled["ai_shapley_permutations"].astype(int)))
        what = (f"{arm}: Shapley Royalty Share estimated each month from {', '.join(map(str, orders))} random orders of "
                f"the creators (permutation sampling, {len(sampled)} month(s) over the seeds)")
        if np.isnan(se).all():
            out.append(what + "; with one order there is no standard error (raise permutations).")
        elif np.nanmax(se) < _ROUNDING:
            out.append(what + ": standard error 0 (to float rounding) in every month, as the game is additive (a linear datamodel: "
                       "each creator adds the same utility in every order), so the split is exact.")
        else:
            out.append(what + f": the largest standard error of a creator's share of the pool was "
                       f"{100 * np.nanmax(se):.3g}% (mean over months {100 * np.nanmean(se):.3g}%), so a creator's "
                       "monthly AI pay is known to about twice that, either way, at 95%.")
    return out


# --------------------------------------------------------------------------- the AI pool's game


@dataclass(frozen=True)
class LinearDatamodelGame:
    """The AI's utility to a coalition of creators under a datamodel linear in per-output values.

    ``v(S) = sum_o w_o * sum_{i in S} theta[o, i]``: output ``o``'s utility when the model is trained
    on the catalogues of ``S`` is the sum of their values ``theta[o, i]`` to it (a datamodel, Ilyas et
    al. 2022, with the creators' inclusion as features), weighted by the output's share of plays
    ``w_o``. The game is additive, so each creator's marginal contribution is ``sum_o w_o theta[o, i]``
    in every order: its Shapley value, with no sampling error.

    Attributes:
        theta: (n_outputs, n_creators) each creator's value to each output.
        weights: (n_outputs,) each output's weight (plays share).
    """

    theta: np.ndarray
    weights: np.ndarray

    def prefix_values(self, order: np.ndarray) -> np.ndarray:
        per_player = self.weights @ self.theta  # (n_creators,)
        return np.concatenate([[0.0], np.cumsum(per_player[order])])

    def value(self, members: np.ndarray) -> float:
        return float(self.weights @ self.theta[:, members].sum(axis=1))


def royalty_share_values(
    s: Settlement, utility: Literal["reference", "attribution"], permutations: int, seed: int
) -> tuple[np.ndarray, ShapleyEstimate | None]:
    """The eligible creators' Shapley values in the AI's utility this month, and the estimate they come from.

    Returns ``(values, estimate)``: ``values`` is (n_creators,), zero for the ineligible; ``estimate`` the
    sampler's result over the eligible creators (None when nobody is eligible or nothing was played).
    """
    values = np.zeros(s.n_creators)
    plays = s.ai_plays.sum()
    if s.n_outputs == 0 or plays <= 0 or not s.eligible.any():
        return values, None
    theta = (s.reference if utility == "reference" else s.attribution)[:, s.eligible]
    game = LinearDatamodelGame(theta, s.ai_plays / plays)
    estimate = permutation_shapley(game.prefix_values, theta.shape[1], permutations, np.random.default_rng(seed))
    values[s.eligible] = estimate.values
    return values, estimate


@register_scheme(
    "shapley_royalty_share",
    pool="ai",
    basis="each creator's Shapley value in the AI's utility (plays-weighted value to the outputs)",
)
def shapley_royalty_share(
    s: Settlement,
    utility: Literal["reference", "attribution"] = "reference",
    permutations: int = 32,
    seed: int = 0,
) -> np.ndarray:
    """Shapley Royalty Share (Wang et al. 2024): each creator's Shapley value in the AI's utility.

    The game's players are the eligible creators and ``v(S)`` is the AI's utility when trained on the
    catalogues of ``S``: the plays-weighted sum over outputs of a datamodel linear in each creator's
    value to each output (:class:`LinearDatamodelGame`). The values come from ``utility``:
    ``reference``, the run's true contribution (the retraining ground truth's per-output
    leave-one-creator-out shares where the run has one, else the causal method's own shares;
    ``source.reference``), or ``attribution``, the causal attribution scores themselves. Shapley values
    are estimated from ``permutations`` random orders (seeded by ``seed``) with a standard error
    (:func:`royalty_share_values`); ``R_a = P * max(phi_a, 0) / sum_b max(phi_b, 0)``.

    **What it reduces to.** The datamodel is linear, so the game is additive: a creator adds the same
    utility in every order, its Shapley value is its own value ``phi_a = sum_o w_o theta[o, a]``
    (``w_o`` the output's share of plays) and the standard error is exactly 0, with any number of
    orders. On ``reference`` (rows that are shares of each output) that is exactly the plays-weighted
    true contribution the report measures misallocation against; on ``attribution`` it is the
    plays-weighted sum of raw scores, which differs from ``causal`` (shares taken per output, then
    weighted) in that an output with larger scores weighs more. A game that is not additive (a
    retraining utility measured on every coalition) would give other values, and the sampler and its
    error hold for it unchanged; the run's ground truth measures leave-one-creator-out drops, which
    define the additive game and no other. Negative values (a catalogue that lowers the utility) are
    paid nothing. No basis when no eligible creator has a positive value.

    Args:
        utility: where each creator's value to each output comes from: ``reference`` (the run's ground
            truth where present, else the causal method's shares) or ``attribution`` (the causal scores).
        permutations: random orders of the creators sampled (an integer >= 1).
        seed: seed of the orders drawn (an integer >= 0), so a month's payouts are reproducible.
    """
    _choice("shapley_royalty_share", "utility", utility, ("reference", "attribution"))
    permutations = int(_number("shapley_royalty_share", "permutations", permutations, low=1.0, integer=True))
    seed = int(_number("shapley_royalty_share", "seed", seed, low=0.0, integer=True))
    values, estimate = royalty_share_values(s, utility, permutations, seed)
    sink = _SAMPLED.get()
    if sink is not None and estimate is not None:
        # the sampled values add up to v(N) - v(empty) exactly in every order (efficiency), so the pool's
        # divisor carries no sampling error: a creator's share has the standard error se / sum of values
        total = float(np.maximum(values[s.eligible], 0.0).sum())
        share_se = float(np.max(estimate.se)) / total if total > 0 else float("nan")
        sink.append(SamplingError(share_se, permutations))
    return s.pool * _shares(values, s.eligible)


# --------------------------------------------------------------------------- the human pool's game


@dataclass(frozen=True)
class StreamingGame:
    """The streaming game: a coalition of creators is worth the money of the users who stream only them.

    ``v(S) = sum_u P_u * [N_u ⊆ S]``, ``N_u`` the creators user ``u`` streamed and ``P_u`` the user's
    money (users who streamed no one count for no coalition). Bergantiños and Moreno-Ternero call this
    the pessimistic streaming game; its dual, ``v*(S) = sum_u P_u * [N_u ∩ S ≠ ∅]``, has the same
    Shapley value. In any order a user's money goes to the *last* of their creators to arrive, which is
    each of the ``|N_u|`` equally often: the Shapley value is ``phi_a = sum_{u: a in N_u} P_u / |N_u|``
    (:func:`streaming_shapley`).

    Attributes:
        listened: (n_users, n_creators) bool, who streamed whom.
        money: (n_users,) each user's money.
    """

    listened: sp.csr_matrix
    money: np.ndarray

    def prefix_values(self, order: np.ndarray) -> np.ndarray:
        n = self.listened.shape[1]
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)
        rows = self.listened.tocsr()
        counts = np.diff(rows.indptr)
        users = np.flatnonzero(counts > 0)
        # the position at which each user's last creator arrives: the user's money counts from then on
        last = np.maximum.reduceat(position[rows.indices], rows.indptr[users]) if users.size else users
        per_step = np.bincount(last, weights=self.money[users], minlength=n)
        return np.concatenate([[0.0], np.cumsum(per_step)])

    def value(self, members: np.ndarray) -> float:
        rows = self.listened.tocsr()
        counts = np.diff(rows.indptr)
        inside = np.asarray(rows @ members.astype(float)).ravel()
        return float(self.money[(counts > 0) & (inside == counts)].sum())


def streaming_shapley(listened: sp.spmatrix | np.ndarray, money: np.ndarray) -> np.ndarray:
    """The closed form of the streaming game's Shapley value: each user's money split equally among their creators."""
    rows = sp.csr_matrix(listened, dtype=float)
    rows.data = (rows.data > 0).astype(float)
    rows.eliminate_zeros()
    counts = np.asarray(rows.sum(axis=1)).ravel()
    per_creator = np.divide(money, counts, out=np.zeros_like(counts, dtype=float), where=counts > 0)
    return np.asarray(rows.T @ per_creator).ravel()


@register_scheme(
    "shapley_streaming",
    pool="human",
    basis="each user's contribution to the pool and which creators that user streamed (not how often)",
)
def shapley_streaming(s: Settlement) -> np.ndarray:
    """Shapley value of the streaming game: each user's money split equally among whom they streamed.

    The players are the eligible creators, and a coalition is worth the pool money of the users who
    streamed only its members (:class:`StreamingGame`, Bergantiños and Moreno-Ternero 2025). Its
    Shapley value is ``R_a = sum_{u: s_ua > 0} P_u / n_u``, ``n_u`` the eligible creators user ``u``
    streamed at all: user-centric with the number of streams replaced by whether one listened. One
    stream earns a creator as much of a user's money as a thousand, so looping plays does not pay and
    a user's money reaches everyone they tried. Money of users with no eligible streams is re-spread
    pro rata over all eligible streams, as in ``user_centric``. No basis when eligible creators have
    no streams.
    """
    out = np.zeros(s.n_creators)
    if s.pool == 0 or s.n_users == 0:
        return out
    listened = s.streams[:, s.eligible]
    if listened.nnz == 0 or not np.any(listened.data > 0):
        return out
    out[s.eligible] = streaming_shapley(listened, s.user_pool)
    leftover = max(s.pool - out.sum(), 0.0)
    return out + leftover * _shares(s.creator_streams, s.eligible)
