"""The built-in royalty schemes and the building blocks they share.

Streaming pools: :func:`pro_rata`, :func:`user_centric`, :func:`artist_centric`. AI pools:
:func:`training_share`, :func:`similarity`, :func:`causal`, :func:`fixed_fee`. Each registers itself
with :func:`~royaltysim.schemes.registry.register_scheme` on import, in this order. The building blocks
(``_choice`` and ``_number`` to check a parameter, ``_shares`` and ``_output_mix`` to normalise
weights) are shared with the schemes in :mod:`royaltysim.combinators`, :mod:`royaltysim.fallback`
and :mod:`royaltysim.shapley`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from attribution.table import apply_negative_policy
from royaltysim.schemes.registry import SchemeParameterError, register_scheme
from royaltysim.schemes.settlement import Settlement

__all__ = ["pro_rata", "user_centric", "artist_centric", "training_share", "similarity", "causal", "fixed_fee"]


def _choice(scheme: str, param: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise SchemeParameterError(
            f"scheme {scheme!r}: {param}={value!r} is not allowed; choose one of {list(options)}"
        )


def _number(
    scheme: str,
    param: str,
    value: Any,
    *,
    low: float,
    high: float = np.inf,
    low_open: bool = False,
    integer: bool = False,
) -> float:
    """A finite number parameter within [low, high] ((low, high] if ``low_open``), as float."""
    ok_type = isinstance(value, (int, float, np.integer, np.floating))
    if integer and ok_type and not isinstance(value, (int, np.integer)):
        ok_type = bool(np.isfinite(value)) and float(value).is_integer()  # 500.0 from a YAML file is fine
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise SchemeParameterError(f"scheme {scheme!r}: {param} must be {kind}; got {value!r}")
    v = float(value)
    below = v <= low if low_open else v < low
    if not np.isfinite(v) or below or v > high:
        lo = "(" if low_open else "["
        hi = f"{high}]" if np.isfinite(high) else "inf)"
        raise SchemeParameterError(
            f"scheme {scheme!r}: {param}={value!r} is out of range; expected a value in {lo}{low}, {hi}"
        )
    return v


def _shares(weights: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Non-negative weights of eligible creators normalised to sum to 1; all zeros if none is positive."""
    w = np.where(eligible, np.maximum(weights, 0.0), 0.0)
    total = w.sum()
    return w / total if total > 0 else np.zeros_like(w)


def _output_mix(plays: np.ndarray, per_output: np.ndarray) -> np.ndarray:
    """Creator shares of AI revenue: plays-weighted mix of per-output shares.

    ``per_output`` is (n_outputs, n_creators) with rows summing to 1, or all-zero for outputs
    that credit nobody. Those outputs' revenue is re-spread over the crediting outputs in
    proportion to their plays, so the result sums to 1 unless no played output credits anyone.
    """
    credited = per_output.sum(axis=1) > 0
    w = np.where(credited, plays, 0.0)
    total = w.sum()
    if total <= 0:
        return np.zeros(per_output.shape[1])
    return (w / total) @ per_output


def _fixed_fee_shares(s: Settlement) -> np.ndarray:
    return _shares(np.ones(s.n_creators), s.eligible)


def _training_shares(s: Settlement, basis: str) -> np.ndarray:
    return _shares(s.training_works if basis == "works" else s.training_seconds, s.eligible)


def _causal_shares(s: Settlement, negative: str) -> np.ndarray:
    out = np.zeros(s.n_creators)
    if s.n_outputs == 0 or not s.eligible.any():
        return out
    phi = apply_negative_policy(s.attribution[:, s.eligible], negative, axis=1)  # (n_outputs, n_eligible)
    totals = phi.sum(axis=1, keepdims=True)
    per_output = np.divide(phi, totals, out=np.zeros_like(phi), where=totals > 0)
    out[s.eligible] = _output_mix(s.ai_plays, per_output)
    return out


# --------------------------------------------------------------------------- streaming schemes


@register_scheme("pro_rata", pool="human", basis="each creator's human streams this month")
def pro_rata(s: Settlement) -> np.ndarray:
    """Pro-rata (market-centric): the rule most streaming services use today.

    All streams go into one count and each creator gets their share of it:
    ``R_a = P * S_a / T`` with ``S_a = sum_u s_ua`` and ``T`` the streams of eligible creators.
    No basis (all zeros) when eligible creators have no streams.
    """
    return s.pool * _shares(s.creator_streams, s.eligible)


@register_scheme(
    "user_centric", pool="human", basis="each user's contribution to the pool and that user's human streams"
)
def user_centric(s: Settlement) -> np.ndarray:
    """User-centric (SoundCloud "fan-powered"): each user's money follows only their own listening.

    ``R_a = sum_u P_u * s_ua / t_u`` with ``P_u = user_pool[u]`` and ``t_u`` the user's streams of
    eligible creators. Money of users with no eligible streams (silent subscribers, or who only played
    ineligible creators) has no listening to follow; it is re-spread pro rata over all eligible
    streams, as services that pilot user-centric do with inactive accounts. No basis when eligible
    creators have no streams.
    """
    out = np.zeros(s.n_creators)
    if s.pool == 0 or s.n_users == 0:
        return out
    mask = s.eligible.astype(float)
    t_u = np.asarray(s.streams @ mask).ravel()  # (n_users,) eligible streams per user
    if not np.any(t_u > 0):
        return out
    per_stream = np.divide(s.user_pool, t_u, out=np.zeros_like(t_u), where=t_u > 0)  # (n_users,)
    out = np.asarray(s.streams.T @ per_stream).ravel() * mask
    leftover = max(s.pool - out.sum(), 0.0)
    return out + leftover * _shares(s.creator_streams, s.eligible)


@register_scheme(
    "artist_centric",
    pool="human",
    basis="human streams, capped per user and boosted for creators with enough streams and listeners",
)
def artist_centric(
    s: Settlement,
    user_cap: float | None = 1000.0,
    boost: float = 2.0,
    boost_min_streams: float = 1000.0,
    boost_min_listeners: int = 500,
) -> np.ndarray:
    """Artist-centric (Deezer and UMG, 2023): pro rata on weighted streams.

    1. Cap: a user with ``t_u > user_cap`` streams this month (all creators) has their row scaled by
       ``user_cap / t_u``, so heavy (or fraudulent) listeners weigh at most ``user_cap`` streams.
       ``user_cap=None`` disables the cap.
    2. Boost: streams of a creator with at least ``boost_min_streams`` (uncapped) monthly streams
       from at least ``boost_min_listeners`` distinct listeners are multiplied by ``boost``.
    3. ``R_a = P * W_a / sum_b W_b`` over eligible creators, ``W_a`` the capped, boosted streams.

    Deezer's thresholds are 1,000 streams/user, 1,000 streams and 500 listeners; simulations at
    smaller scale should scale them down. No basis when eligible creators have no streams.

    Args:
        user_cap: most streams a month one user's listening counts for (> 0); a user who streamed
            more has every stream scaled down so that they count ``user_cap`` in all. ``None``
            (``null`` in a scenario): no cap.
        boost: multiplier on the streams of a creator who qualifies (> 0; 1 = no boost).
        boost_min_streams: human streams this month (before the cap, from all users) a creator needs
            to qualify for the boost (>= 0).
        boost_min_listeners: distinct listeners this month a creator needs to qualify for the boost
            (an integer >= 0).
    """
    if user_cap is not None:
        user_cap = _number("artist_centric", "user_cap", user_cap, low=0.0, low_open=True)
    boost = _number("artist_centric", "boost", boost, low=0.0, low_open=True)
    boost_min_streams = _number("artist_centric", "boost_min_streams", boost_min_streams, low=0.0)
    boost_min_listeners = int(
        _number("artist_centric", "boost_min_listeners", boost_min_listeners, low=0.0, integer=True)
    )
    raw = s.creator_streams
    if user_cap is None:
        capped = raw
    else:
        t_u = np.asarray(s.streams.sum(axis=1), dtype=float).ravel()
        scale = np.minimum(1.0, np.divide(user_cap, t_u, out=np.ones_like(t_u), where=t_u > 0))
        capped = np.asarray(s.streams.T @ scale).ravel()
    qualifies = (raw >= boost_min_streams) & (s.listeners >= boost_min_listeners)
    weighted = capped * np.where(qualifies, boost, 1.0)
    return s.pool * _shares(weighted, s.eligible)


# --------------------------------------------------------------------------- AI schemes


@register_scheme(
    "training_share", pool="ai", basis="what each creator has in the AI's training set (works or seconds of music)"
)
def training_share(s: Settlement, basis: Literal["works", "seconds"] = "works") -> np.ndarray:
    """Flat licence split by contribution to the training set (today's dataset licences).

    ``R_a = P * x_a / sum_b x_b`` over eligible creators, ``x`` the training works
    (``basis="works"``) or seconds of training music (``basis="seconds"``). Ignores what the model
    actually generates. No basis when eligible creators contributed nothing.

    Args:
        basis: what counts as a creator's contribution to the training set. ``works``: the number
            of works they have in it, so every work counts the same; ``seconds``: the seconds of
            music they have in it, so a long work counts more than a short one. An opted-out
            creator has nothing in the set.
    """
    _choice("training_share", "basis", basis, ("works", "seconds"))
    return s.pool * _training_shares(s, basis)


@register_scheme(
    "similarity",
    pool="ai",
    basis="plays of each AI output and its similarity to each catalogue (`source.similarity_method`)",
)
def similarity(
    s: Settlement,
    top_k: int = 1,
    threshold: float = 0.0,
    split: Literal["proportional", "equal"] = "proportional",
) -> np.ndarray:
    """Similarity "legal proxy" (Content-ID style matching of outputs to catalogues).

    Each output ``o`` earns ``w_o = ai_plays_o / sum(ai_plays)`` of the pool. Its *matches* are
    the eligible creators among its ``top_k`` most similar catalogues (all creators tied with the
    k-th are included, so relabelling creators never changes the result) whose similarity is
    positive and ``>= threshold``. Among its matches the output's revenue is split in proportion to
    similarity (``split="proportional"``) or equally (``"equal"``). An opted-out top match is not
    replaced by the next eligible one: the output simply matches fewer creators.

    Outputs with no match (nothing similar enough) have no claimant; their revenue is re-spread
    over matched outputs in proportion to plays. No basis when no played output matches anyone.

    Args:
        top_k: how many of an output's most similar catalogues it may match (an integer >= 1;
            every creator tied with the k-th matches too).
        threshold: the least similarity that counts as a match (>= 0); 0 lets any positive
            similarity match.
        split: how an output's revenue is divided among its matches: ``proportional`` to their
            similarity, or ``equal`` shares.
    """
    top_k = int(_number("similarity", "top_k", top_k, low=1.0, integer=True))
    threshold = _number("similarity", "threshold", threshold, low=0.0)
    _choice("similarity", "split", split, ("proportional", "equal"))
    sim = s.similarity  # (n_outputs, n_creators)
    if s.n_outputs == 0 or s.n_creators == 0:
        return np.zeros(s.n_creators)
    k = min(top_k, s.n_creators)
    kth = -np.partition(-sim, k - 1, axis=1)[:, k - 1 : k]  # (n_outputs, 1) k-th largest similarity
    matched = (sim >= kth) & (sim >= threshold) & (sim > 0) & s.eligible[None, :]
    weights = np.where(matched, sim if split == "proportional" else 1.0, 0.0)
    totals = weights.sum(axis=1, keepdims=True)
    per_output = np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)
    return s.pool * _output_mix(s.ai_plays, per_output)


@register_scheme(
    "causal",
    pool="ai",
    basis=(
        "plays of each AI output and its causal attribution to each catalogue (`source.causal_method`; "
        "with `source.attribution_snr`, the true contribution plus noise)"
    ),
)
def causal(s: Settlement, negative: Literal["clip", "shift", "abs"] = "clip") -> np.ndarray:
    """Attribution-based royalties: pay each creator their causal share of each output.

    ``R_a = P * sum_o w_o * phi_a(o) / sum_b phi_b(o)``, ``w_o = ai_plays_o / sum(ai_plays)`` and
    ``phi`` the training-data attribution aggregated to creators. Ineligible creators' scores are
    dropped first (an opted-out creator's influence is not paid to anyone), then negative scores are
    treated by ``negative`` (see :func:`attribution.table.apply_negative_policy`: ``clip`` to zero,
    ``shift`` so the least helpful eligible creator gets zero, ``abs`` for magnitude).

    Outputs whose eligible attribution is all zero credit nobody; their revenue is re-spread over
    credited outputs in proportion to plays. No basis when no played output credits anyone.

    Args:
        negative: what a negative score (a catalogue that made the output *less* likely) is worth,
            applied per output to the eligible creators' totals. ``clip``: nothing; ``shift``:
            subtract the output's lowest eligible score, so the least helpful eligible creator gets
            zero and everyone else is paid their advantage over them; ``abs``: its magnitude, as if
            it had helped.
    """
    _choice("causal", "negative", negative, ("clip", "shift", "abs"))
    return s.pool * _causal_shares(s, negative)


@register_scheme("fixed_fee", pool="ai", basis="nothing but who is eligible")
def fixed_fee(s: Settlement) -> np.ndarray:
    """Flat licence: every eligible creator gets the same amount, ``R_a = P / n_eligible``.

    No basis when nobody is eligible.
    """
    return s.pool * _fixed_fee_shares(s)
