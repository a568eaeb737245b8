"""Sampling listening choices: one categorical distribution per group, by table-guided inverse CDF.

:func:`cumulative_probabilities` turns non-negative weights into the rows of cumulative probabilities
the samplers draw from; :func:`_sample_grouped` picks, for each uniform, the first category whose
cumulative probability exceeds it -- exactly the per-agent reference's ``bisect_right``
(:mod:`royaltysim.reference`), answered by a lookup table (:func:`_guide`) instead of a search per draw.
Why and how is told in :mod:`royaltysim.agents.consumers`, whose hot path this is.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cumulative_probabilities"]


def _guide(cum: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """The lookup tables of :func:`_sample_grouped` for a set of cumulative probability rows.

    Args:
        cum: (n_groups, m) cumulative probabilities, non-decreasing along each row.
    Returns:
        ``(T, guide, table)``: ``T`` buckets per group (a power of two, at least ``4 * m`` unless
        the tables would outgrow ``2 ** 21`` entries), then two flat arrays whose group ``g``
        starts at ``g * (T + 1)``: ``guide[g * (T + 1) + j]`` is the number of entries of ``cum[g]``
        that are ``<= j / T`` (j = 0..T), capped at ``m - 1``; ``table[g * (T + 1) + j]`` (j < T) is
        the pick of every draw in bucket ``[j / T, (j + 1) / T)`` where the bucket holds no bin
        edge, -1 where it does.
    """
    n_groups, m = cum.shape
    # the next power of two >= 4m: few buckets hold an edge. Any power of two gives the same picks,
    # so with very many groups the tables are kept small instead (more draws then take the search)
    n_buckets = 1 << max(2, min(int(4 * m - 1).bit_length(), (2**21 // n_groups).bit_length() - 1))
    # cum <= j / T  <=>  ceil(cum * T) <= j, and multiplying by a power of two does not round
    bounds = np.empty((n_groups, m + 2), dtype=np.intp)
    bounds[:, 0], bounds[:, -1] = 0, n_buckets + 1
    bounds[:, 1:-1] = np.minimum(np.ceil(cum * n_buckets), n_buckets)
    # so the count is i for every j in [ceil(cum[i - 1] * T), ceil(cum[i] * T)): runs of i = 0..m
    counts = np.minimum(np.arange(m + 1), m - 1)
    guide = np.repeat(np.tile(counts, n_groups), np.diff(bounds, axis=1).ravel())
    table = np.where(guide[1:] == guide[:-1], guide[:-1], -1)
    return n_buckets, guide, table


def _sample_grouped(
    cum: np.ndarray, group: np.ndarray, u: np.ndarray, tables: tuple[int, np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """Inverse-CDF sampling with one categorical distribution per group, guided by a lookup table.

    The pick of a uniform ``u`` in group ``g`` is exactly ``bisect_right(cum[g], u)``, the first
    category whose cumulative probability exceeds ``u`` (capped at ``m - 1``): what the per-agent
    reference computes with :func:`bisect.bisect_right` and ``np.searchsorted(cum[g], u,
    side="right")`` would give, but without a binary search per draw. ``[0, 1)`` is cut into ``T``
    equal buckets, ``T`` a power of two so that ``floor(u * T)`` and ``j / T`` are exact; a table
    (:func:`_guide`, built once per call) holds, for every bucket that contains no bin edge, the one
    category all its draws fall in, which answers nearly every draw with one lookup. A draw in a
    bucket that holds an edge is settled by a binary search between the bucket's first and last
    candidate (the counts of ``cum[g]`` at most ``j / T`` and at most ``(j + 1) / T``, which bracket
    the answer because the count is monotone in the threshold). So every pick equals the full
    search's, draws lying exactly on an edge and zero-probability categories (never picked) included.

    Args:
        cum: (n_groups, m) cumulative probabilities, non-decreasing along each row, last column 1.
        group: (n,) group of each row of ``u``.
        u: (n, ...) uniforms in [0, 1).
        tables: ``_guide(cum)``, when the caller keeps it for a ``cum`` it samples from again.
    Returns:
        (n, ...) category indices in 0..m-1.
    """
    n_buckets, guide, table = _guide(cum) if tables is None else tables
    stride = n_buckets + 1
    slot = (u * n_buckets).astype(np.intp)  # the draw's bucket, exactly floor(u * T)
    slot += (group * stride).reshape(group.shape + (1,) * (u.ndim - 1))
    picks = table[slot]
    edgy = np.flatnonzero(picks < 0)
    if edgy.size:
        s = slot.ravel()[edgy]
        lo, hi = guide[s], guide[s + 1]
        x = u.ravel()[edgy]
        cum_flat, offset = cum.ravel(), s // stride * cum.shape[1]
        # bisect_right on [lo, hi], all draws in step: the answer a is in [lo, hi], cum[a] > x (a < m),
        # and a draw whose range has closed (lo == hi == a) stays put, since then mid == a
        for _ in range(int((hi - lo).max()).bit_length()):
            mid = (lo + hi) >> 1
            right = cum_flat[offset + mid] <= x
            lo = np.where(right, mid + 1, lo)
            hi = np.where(right, hi, mid)
        picks.ravel()[edgy] = np.minimum(lo, cum.shape[1] - 1)  # (only a last column < 1 needs the cap)
    return picks

def cumulative_probabilities(weights: np.ndarray) -> np.ndarray:
    """Row-wise cumulative probabilities of non-negative weights (a zero row becomes uniform)."""
    w = np.maximum(weights, 0.0)  # (what np.clip(weights, 0.0, None) computes, for less)
    totals = w.sum(axis=1, keepdims=True)
    w = np.where(totals > 0, w / np.where(totals > 0, totals, 1.0), 1.0 / w.shape[1])
    cum = np.cumsum(w, axis=1)
    cum[:, -1] = 1.0
    return cum
