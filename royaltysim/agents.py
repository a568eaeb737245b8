"""The economy's actors: creators (Mesa agents), the platform (a Mesa agent) and listeners (vectorised).

* :class:`Creator` -- one catalogue of works (quality per work, a style vector), a cost of making
  work, an outside option and an enjoyment of making music. Each month it reads its royalty statement,
  updates an adaptive expectation of income and decides: stay or exit (or re-enter), how many works
  to release, which strategy to play (``plain``, ``flood``, ``imitate`` or both, learnt from what each
  strategy earned the creators who played it), and whether to opt in to AI training.
* :class:`Platform` -- collects fees, keeps its cut, and settles a human-streams pool and an AI
  royalty pool with the scheme of each pool (looked up by name in :mod:`royaltysim.schemes`; the
  platform never branches on a scheme's name).
* :class:`Consumers` -- **all listeners in one object of numpy arrays**, not one Python object each;
  a month's randomness is drawn up front as :class:`ListeningDraws`, which the per-agent reference
  (:mod:`royaltysim.reference`, one Mesa agent per listener) consumes too, so the two can be compared
  draw for draw.

Why listeners are vectorised: at platform scale (100k listeners, benchmarked in a later issue) a
Python loop over listeners each month would dominate the run. The hot path -- choosing what to play,
splitting revenue, building the (users x creators) stream matrix for settlement -- is numpy and
scipy.sparse, O(n_users * sessions) per month. Listeners choose in *sessions*: each session picks
one creator (or one AI output) and the listener's monthly volume is split over their sessions.
Choice probabilities are computed per taste segment and listener class (heavy/light) rather than
per listener, which keeps the cost independent of the number of creators; personal taste vectors
enter consumer welfare. Popularity spreads on the social network (a sparse adjacency built once
from networkx): a share of sessions copies a random neighbour's pick of last month, so popular
creators become more popular (cumulative advantage).

How the hot path stays fast *and* draw-for-draw equal to the per-agent reference:

* **Picks: table-guided inverse CDF** (:func:`_sample_grouped`). A session's pick is the first
  category whose cumulative probability exceeds its uniform -- ``bisect_right`` on its group's row,
  exactly as the reference computes it. Instead of a binary search per draw, ``[0, 1)`` is cut into
  ``T`` equal buckets (a power of two, normally at least 4 per category) and a table built once a
  month holds each bucket's answer where the bucket contains no bin edge; nearly every draw is one
  lookup. The few draws in a bucket that holds an edge get a binary search between the bucket's
  first and last candidate, which bracket the answer because the count of cumulative probabilities
  at or below a threshold only grows with it. Because ``T`` is a power of two, ``floor(u * T)`` and ``j / T`` are
  computed without rounding, so the bracket is exact and every pick -- draws lying exactly on a bin
  edge and zero-probability categories (never picked) included -- equals the binary search's.
* **Sessions by flat index.** Word of mouth, AI sessions and plays gather and scatter on
  ``user * sessions + session`` rather than on (row, column) pairs; each listener's split of volume
  over sessions never changes and is computed once.
* **The stream matrix is built row by row** (:meth:`Consumers._stream_matrix`): each session becomes
  one integer key (creator in the high bits, streams in the low bits), one sort of every row's keys
  groups a listener's sessions by creator in ascending order, and the runs are the matrix's entries
  already in canonical CSR order. scipy's COO-to-CSR assembly would sort the same entries again to
  sum duplicates. Row and column sums add the entries in scipy's order, so they are the same numbers.
* **Welfare is one sparse product** (:meth:`Consumers.welfare`): utility is linear in what was
  played, so every listener's stream-weighted utility comes from one (listeners x playables)
  matrix of session streams times the playables' (style, log quality) rows, with no
  (listeners x sessions x style) array in between. Only its float rounding differs from the
  reference's listener-by-listener sums.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

import mesa
import numpy as np
import scipy.sparse as sp

from royaltysim.schemes import Settlement
from royaltysim.shapley import sampling_errors
from royaltysim.schemes import pay as registry_pay

_INT32_MAX = int(np.iinfo(np.int32).max)  # (np.iinfo costs microseconds a call, and the month calls it often)
_INT64_MAX = int(np.iinfo(np.int64).max)

if TYPE_CHECKING:
    from royaltysim.config import Arm, BehaviourConfig, ConsumersConfig, PlatformConfig
    from royaltysim.fraud import FraudFarm
    from royaltysim.model import RoyaltyModel

__all__ = [
    "Consumers",
    "Listening",
    "ListeningDraws",
    "Catalogue",
    "Statement",
    "Platform",
    "Creator",
    "STRATEGIES",
    "cumulative_probabilities",
]

#: strategies a creator may play; which are available depends on the scenario's behaviour flags
STRATEGIES: tuple[str, ...] = ("plain", "flood", "imitate", "flood+imitate")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


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


def _row_sums(matrix: sp.csr_matrix) -> np.ndarray:
    """Row sums of a CSR matrix: what ``matrix.sum(axis=1)`` computes (the same reduceat), as a flat array."""
    sums = np.zeros(matrix.shape[0])
    rows = np.flatnonzero(np.diff(matrix.indptr))
    if rows.size:
        sums[rows] = np.add.reduceat(matrix.data, matrix.indptr[rows].astype(np.intp))
    return sums


def _column_sums(matrix: sp.csr_matrix) -> np.ndarray:
    """Column sums of a CSR matrix: ``matrix.sum(axis=0)`` as a flat array, added in the same order, faster."""
    return np.bincount(matrix.indices, weights=matrix.data, minlength=matrix.shape[1]).astype(float)


def cumulative_probabilities(weights: np.ndarray) -> np.ndarray:
    """Row-wise cumulative probabilities of non-negative weights (a zero row becomes uniform)."""
    w = np.maximum(weights, 0.0)  # (what np.clip(weights, 0.0, None) computes, for less)
    totals = w.sum(axis=1, keepdims=True)
    w = np.where(totals > 0, w / np.where(totals > 0, totals, 1.0), 1.0 / w.shape[1])
    cum = np.cumsum(w, axis=1)
    cum[:, -1] = 1.0
    return cum


# --------------------------------------------------------------------------- listeners


@dataclass
class Listening:
    """One month of listening.

    Attributes:
        streams: (n_users, n_creators) human streams.
        ai_plays: (n_outputs,) streams of each AI output.
        ai_streams: (n_users,) AI streams of each user.
        picks: (n_users, sessions) what each session played: a creator index, or
            ``n_creators + o`` for AI output ``o``.
        counts: (n_users, sessions) streams in each session.
    """

    streams: sp.csr_matrix
    ai_plays: np.ndarray
    ai_streams: np.ndarray
    picks: np.ndarray
    counts: np.ndarray

    @property
    def human_streams(self) -> np.ndarray:
        """(n_users,) human streams of each user."""
        return _row_sums(self.streams)

    @property
    def creator_streams(self) -> np.ndarray:
        """(n_creators,) human streams of each creator."""
        return _column_sums(self.streams)


@dataclass(frozen=True)
class ListeningDraws:
    """The month's random numbers for listening: one uniform in [0, 1) per (user, session) and purpose.

    Drawn in one place so that every implementation of the listening rules -- the vectorised
    :class:`Consumers` and the per-agent reference in :mod:`royaltysim.reference` -- consumes
    identical randomness from the same generator state; each reads only the entries its rules need.

    Attributes:
        ai: (n_users, sessions) a session goes to the AI when this is below the user's AI share.
        pick: (n_users, sessions) inverse-CDF uniform of what a session plays: a creator in a human
            session, an AI output in an AI session.
        social: (n_users, sessions) a human session copies a neighbour when this is below the social
            share; None in a month where nobody can copy (the first month, no network, no word of mouth).
        copy: (n_users, sessions) which of the neighbours' last-month sessions is copied, uniform over
            the ``degree * sessions`` (neighbour, session) pairs; None exactly when ``social`` is.
    """

    ai: np.ndarray
    pick: np.ndarray
    social: np.ndarray | None
    copy: np.ndarray | None

    @classmethod
    def draw(cls, rng: np.random.Generator, n_users: int, sessions: int, copying: bool) -> ListeningDraws:
        """Draw one month's numbers; ``copying``: whether anyone can copy a neighbour's pick this month."""
        ai = rng.random((n_users, sessions))
        pick = rng.random((n_users, sessions))
        if not copying:
            return cls(ai, pick, None, None)
        return cls(ai, pick, rng.random((n_users, sessions)), rng.random((n_users, sessions)))


@dataclass
class Consumers:
    """All listeners as arrays (see the module docstring for why).

    Attributes:
        fee: (n_users,) money each user brings a month (subscription or ad revenue).
        volume: (n_users,) streams a month.
        heavy: (n_users,) bool, heavy listener.
        segment: (n_users,) taste segment.
        taste: (n_users, style_dim) unit taste vectors.
        ai_affinity: (n_users,) share of listening that goes to AI when the AI is at full quality.
        adjacency: (n_users, n_users) CSR social network.
        sessions: listening choices per user and month.
        social_share: share of sessions that copy a neighbour's last pick.
        last_picks: last month's picks (None before the first month).
    """

    fee: np.ndarray
    volume: np.ndarray
    heavy: np.ndarray
    segment: np.ndarray
    taste: np.ndarray
    ai_affinity: np.ndarray
    adjacency: sp.csr_matrix
    sessions: int
    social_share: float
    last_picks: np.ndarray | None = field(default=None)
    # (n_users,) bool, who is subscribed this month (the demand side, royaltysim.demand); None: everyone
    subscribed: np.ndarray | None = field(default=None)
    # (output_cum, _guide(output_cum)): the AI's outputs are chosen from the same table month after month
    _output_tables: tuple[np.ndarray, tuple[int, np.ndarray, np.ndarray]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def n(self) -> int:
        return int(self.fee.shape[0])

    @property
    def charged(self) -> np.ndarray:
        """(n_users,) what each listener pays this month: their fee while subscribed, else nothing."""
        return self.fee if self.subscribed is None else np.where(self.subscribed, self.fee, 0.0)

    @property
    def group(self) -> np.ndarray:
        """(n_users,) index of the (segment, heavy) group whose choice distribution a user draws from."""
        return self.segment * 2 + self.heavy.astype(int)

    @classmethod
    def generate(
        cls,
        config: ConsumersConfig,
        platform: PlatformConfig,
        centroids: np.ndarray,
        adjacency: sp.csr_matrix,
        rng: np.random.Generator,
    ) -> Consumers:
        """Draw a listener population from the scenario's consumer and platform settings."""
        n, d = config.n, centroids.shape[1]
        premium = rng.random(n) < config.premium_share
        fee = np.where(premium, config.premium_fee, config.ad_revenue)
        heavy = rng.random(n) < config.heavy_share
        mean = np.where(heavy, config.heavy_streams, config.light_streams)
        s = config.volume_sigma
        volume = np.maximum(1, np.round(mean * rng.lognormal(-0.5 * s * s, s, n))).astype(np.int64)
        segment = rng.integers(0, centroids.shape[0], n)
        taste = _unit_rows(centroids[segment] + config.taste_noise * rng.standard_normal((n, d)) / np.sqrt(d))
        m, k = platform.ai_listening_share, platform.ai_affinity_concentration
        ai_affinity = rng.beta(m * k, (1 - m) * k, n) if m > 0 else np.zeros(n)
        return cls(
            fee, volume, heavy, segment, taste, ai_affinity, adjacency, config.sessions, config.social_share
        )

    def copy(self) -> Consumers:
        """An independent copy of the mutable state (arrays that never change are shared)."""
        return replace(
            self,
            last_picks=None if self.last_picks is None else self.last_picks.copy(),
            subscribed=None if self.subscribed is None else self.subscribed.copy(),
        )

    def listen(
        self,
        creator_cum: np.ndarray,
        output_cum: np.ndarray,
        active: np.ndarray,
        ai_quality: float,
        rng: np.random.Generator,
    ) -> Listening:
        """Everyone listens for a month.

        Args:
            creator_cum: (2 * n_segments, n_creators) cumulative choice probabilities per group.
            output_cum: (n_segments, n_outputs) cumulative choice probabilities of AI outputs.
            active: (n_creators,) creators whose catalogue is on the platform.
            ai_quality: AI quality in [0, 1]; a user's AI share is ``ai_affinity * ai_quality``.
            rng: the model's generator; the month's :class:`ListeningDraws` come from it.
        """
        n, k = self.n, self.sessions
        n_creators, n_outputs = creator_cum.shape[1], output_cum.shape[1]
        copying = self.social_share > 0 and self.last_picks is not None and self.adjacency.nnz > 0
        draws = ListeningDraws.draw(rng, n, k, copying)
        is_ai = draws.ai < (self.ai_affinity * ai_quality)[:, None]
        if self.subscribed is not None:  # a listener who is not subscribed plays nothing (their draws go unused)
            is_ai &= self.subscribed[:, None]
        picks = _sample_grouped(creator_cum, self.group, draws.pick)  # (n, k)
        # sessions are addressed by their flat index user * k + session from here on: one gather from
        # a flat array is cheaper than indexing rows and columns
        flat_picks = picks.reshape(-1)
        human = ~is_ai

        if draws.social is not None and draws.copy is not None:
            deg, share = self._copying
            social = np.flatnonzero((draws.social < share[:, None]) & human)
            user = social // k
            pair = (draws.copy.reshape(-1)[social] * (deg[user] * k)).astype(np.int64)  # (neighbour, session)
            nth = pair // k  # (pair % k is several times slower than this and a product)
            neighbour = self.adjacency.indices[self.adjacency.indptr[user] + nth]
            copied = self.last_picks.reshape(-1)[neighbour * k + (pair - nth * k)]
            # only an active creator is copied: not a neighbour's AI pick (into a human session), not
            # a withdrawn catalogue, not "nothing"
            ok = np.concatenate([active, np.zeros(n_outputs + 1, dtype=bool)])[copied]
            flat_picks[social[ok]] = copied[ok]

        ai = np.flatnonzero(is_ai)
        if n_outputs and ai.size:
            if self._output_tables is None or not np.array_equal(self._output_tables[0], output_cum):
                self._output_tables = (output_cum.copy(), _guide(output_cum))
            tables = self._output_tables[1]
            out = _sample_grouped(output_cum, self.segment[ai // k], draws.pick.reshape(-1)[ai], tables)
            flat_picks[ai] = n_creators + out
        elif ai.size:  # no AI service: those sessions stay human
            human[:] = True
            ai = ai[:0]

        counts = self._session_counts
        # nothing to play from a withdrawn catalogue; the AI's outputs always play
        played = np.concatenate([active, np.ones(n_outputs, dtype=bool)])[picks]
        if self.subscribed is not None:
            played &= self.subscribed[:, None]
        streams = self._stream_matrix(np.where(played & human, picks, n_creators), counts, n_creators)
        ai_counts = counts.reshape(-1)[ai].astype(float)
        # (astype: bincount of nothing is an integer array, whatever the weights)
        ai_plays = np.bincount(flat_picks[ai] - n_creators, weights=ai_counts, minlength=n_outputs).astype(float)
        ai_streams = np.bincount(ai // k, weights=ai_counts, minlength=n).astype(float)
        self.last_picks = np.where(played, picks, n_creators + n_outputs)  # "nothing": never copied
        return Listening(streams, ai_plays, ai_streams, picks, np.where(played, counts, 0))

    @cached_property
    def _copying(self) -> tuple[np.ndarray, np.ndarray]:
        """(n_users,) each listener's number of neighbours, and share of sessions that copy one (none without)."""
        deg = np.diff(self.adjacency.indptr)
        return deg, np.where(deg > 0, self.social_share, 0.0)

    @cached_property
    def _session_counts(self) -> np.ndarray:
        """(n_users, sessions) streams of each session: the volume split over sessions as evenly as integers allow.

        Picks are already random, so which session gets the remainder does not matter (and a
        multinomial would cost 3x the month). The same every month: volumes do not change.
        """
        k = self.sessions
        return self.volume[:, None] // k + (np.arange(k)[None, :] < (self.volume % k)[:, None])

    @staticmethod
    def _stream_matrix(picks: np.ndarray, counts: np.ndarray, n_creators: int) -> sp.csr_matrix:
        """The (n_users, n_creators) stream matrix in canonical CSR form, built row by row.

        Args:
            picks: (n_users, sessions) creator of each human session; ``n_creators`` for a session
                that streamed no creator.
            counts: (n_users, sessions) streams of each session (non-negative integers).

        Each session becomes one integer key, creator in the high bits and streams in the low bits;
        sorting the keys of each row (a few dozen) groups the row's sessions by creator in
        ascending order, so the runs of equal creators are the matrix's entries in canonical order
        (sorted column indices, no duplicates) and their summed low bits its values. This skips
        scipy's COO-to-CSR conversion and its duplicate summing, which sort the same entries again.
        """
        n, k = picks.shape
        bits = max(int(counts.max(initial=0)).bit_length(), 1)
        assert (n_creators + 1) << bits < _INT64_MAX, "stream counts too large to pack"
        key = picks.astype(np.int64) << bits
        key |= counts
        key.sort(axis=1)
        key = key.reshape(-1)
        creator = key >> bits
        first = np.empty(key.size, dtype=bool)  # a run of one creator in one row starts here
        np.not_equal(creator[1:], creator[:-1], out=first[1:])
        first[::k] = True
        first = np.flatnonzero(first)
        data = np.add.reduceat(key & ((1 << bits) - 1), first) if first.size else np.zeros(0, np.int64)
        indices = creator[first]
        entry = indices < n_creators
        # int32 indices where they fit, as scipy would choose (it would otherwise scan them to decide)
        index = np.int32 if max(n * k, n_creators) < _INT32_MAX else np.int64
        indptr = np.zeros(n + 1, dtype=index)
        np.cumsum(np.bincount(first[entry] // k, minlength=n), out=indptr[1:])
        streams = sp.csr_matrix(
            (data[entry].astype(float), indices[entry].astype(index), indptr), shape=(n, n_creators)
        )
        streams.has_canonical_format = True
        return streams

    def welfare(
        self,
        listening: Listening,
        creator_style: np.ndarray,
        creator_quality: np.ndarray,
        output_style: np.ndarray,
        ai_quality: float,
    ) -> float:
        """Consumer welfare: the mean, over listeners, of the stream-weighted utility of what they played.

        The utility of a stream is the match of the listener's taste with the work's style (cosine, in
        [-1, 1]) plus the log of its relative quality (a creator's mean work quality relative to the
        population's starting mean; for AI, the AI's quality relative to training on every catalogue).
        Flooding lowers it (cheap works dilute quality), imitation can raise or lower it (styles move
        toward the AI's), opt-outs lower AI quality. Listeners who played nothing are left out.
        """
        n_creators, dim = creator_style.shape
        # what a session can play -- creators, then AI outputs -- as rows of (style, log quality, 1)
        features = np.empty((n_creators + output_style.shape[0], dim + 2))
        features[:n_creators, :dim] = creator_style
        features[n_creators:, :dim] = output_style
        features[:n_creators, dim] = np.log(np.maximum(creator_quality, 1e-9))
        features[n_creators:, dim] = np.log(max(ai_quality, 1e-9))
        features[:, dim + 1] = 1.0
        # utility is linear in what was played, so a listener's stream-weighted sum of utilities is their
        # taste's match with the stream-weighted sum of styles plus that of log qualities: all listeners
        # at once in one sparse (listeners x playables) product, one entry per session (repeats add up)
        n, k = listening.picks.shape
        # int32 indices where they fit, as scipy would choose (it would otherwise scan them to decide)
        index = np.int32 if max(n * k, features.shape[0]) < _INT32_MAX else np.int64
        played = sp.csr_matrix(
            (
                listening.counts.reshape(-1).astype(float),
                listening.picks.reshape(-1).astype(index),
                np.arange(0, n * k + 1, k, dtype=index),
            ),
            shape=(n, features.shape[0]),
        )
        summed = played @ features  # (n, dim + 2): summed styles, log qualities, streams
        total = summed[:, dim + 1]
        utility = np.einsum("ud,ud->u", summed[:, :dim], self.taste) + summed[:, dim]
        ok = total > 0
        return float((utility[ok] / total[ok]).mean()) if ok.any() else 0.0


# --------------------------------------------------------------------------- platform


@dataclass
class Catalogue:
    """The creators' side of the market at settlement time, as arrays indexed by creator."""

    works: np.ndarray
    training_works: np.ndarray
    training_seconds: np.ndarray
    active: np.ndarray
    opted_in: np.ndarray
    similarity: np.ndarray


@dataclass
class Statement:
    """What the platform reports after settling a month (money in the fee currency)."""

    revenue: float
    human_pool: float
    ai_pool: float
    human_pay: np.ndarray
    ai_pay: np.ndarray
    ai_counterfactual: np.ndarray
    unallocated_human: float
    unallocated_ai: float
    ai_cost: float
    ai_stream_share: float
    ai_eligible: np.ndarray  # (n_creators,) who could be paid from the AI pool (active and opted in)
    # the stream farm (royaltysim.fraud), zero without one: what its uploads were paid from each pool, the
    # streams it faked and how many of them were detected and demonetised, what its bots paid, its uploads
    fraud_human_paid: float = 0.0
    fraud_ai_paid: float = 0.0
    fraud_streams: float = 0.0
    demonetised_streams: float = 0.0
    bot_fees: float = 0.0
    fraud_uploads: int = 0
    # a sampled Shapley rule's error this month (royaltysim.shapley.sampling_errors): the largest standard error of a
    # creator's share of the pool it split, and the orders sampled; NaN and 0 when no rule sampled
    ai_shapley_se: float = float("nan")
    ai_shapley_permutations: int = 0

    @property
    def paid(self) -> float:
        """Royalties paid to creators (fraud uploads not included)."""
        return float(self.human_pay.sum() + self.ai_pay.sum())

    @property
    def fraud_paid(self) -> float:
        """Royalties paid to fraud uploads, from both pools."""
        return self.fraud_human_paid + self.fraud_ai_paid

    @property
    def profit(self) -> float:
        """Platform profit: revenue (bots' fees included) less all royalties and the AI's serving cost."""
        return self.revenue - self.paid - self.fraud_paid - self.ai_cost

    @property
    def margin(self) -> float:
        """Platform margin: what it keeps after royalties and AI serving costs, over revenue."""
        return self.profit / self.revenue if self.revenue > 0 else 0.0


class Platform(mesa.Agent):
    """Collects fees, keeps its cut, and settles the human and AI pools under the arm's schemes.

    Args:
        model: the model.
        config: platform settings.
        arm: the rules of the two pools.
        attribution: (n_outputs, n_creators) causal scores of the AI's outputs.
        pay: the settlement function (defaults to the scheme registry's ``pay``); tests may swap it.
        reference: (n_outputs, n_creators) true contribution shares (Shapley Royalty Share values on them);
            zeros when left out.
        fraud: a stream farm (:class:`~royaltysim.fraud.FraudFarm`) whose bots and uploads join each month's
            settlement; None: no fraud.
    """

    def __init__(
        self,
        model: mesa.Model,
        config: PlatformConfig,
        arm: Arm,
        attribution: np.ndarray,
        pay: Callable[..., np.ndarray] = registry_pay,
        reference: np.ndarray | None = None,
        fraud: FraudFarm | None = None,
    ) -> None:
        super().__init__(model)
        self.config = config
        self.arm = arm
        self.attribution = attribution
        self.reference = reference
        self.fraud = fraud
        self._pay = pay

    def ai_user_pool(self, revenue_ai: np.ndarray, ai_streams: np.ndarray) -> np.ndarray:
        """(n_users,) what each listener's month pays into the AI pool, under the arm's ``ai_pool`` terms.

        Without terms: ``platform.ai_pool_rate`` of the AI's share of the listener's fee. With terms
        (GEMA-style): ``max(rate * income, minimum_per_play * AI streams)``, ``income`` gross or net of
        the AI's serving cost of those streams.
        """
        terms = self.arm.ai_pool
        if terms is None:
            return self.config.ai_pool_rate * revenue_ai
        income = revenue_ai
        if terms.income == "net":
            income = np.maximum(revenue_ai - self.config.ai_cost_per_stream * ai_streams, 0.0)
        return np.maximum(terms.rate * income, terms.minimum_per_play * ai_streams)

    def settle(self, listening: Listening, consumers: Consumers, catalogue: Catalogue) -> Statement:
        """Split the month's revenue: platform cut, human pool, AI pool; pay each under its scheme.

        With a stream farm, its bots join the human pool as listeners and its uploads as payees after
        the creators (:meth:`FraudFarm.extend <royaltysim.fraud.FraudFarm.extend>`); every scheme pays
        them by its own rule, and what they get is split off and reported as fraud.
        """
        cfg = self.config
        human = listening.human_streams
        total = human + listening.ai_streams
        ai_frac = np.divide(listening.ai_streams, total, out=np.zeros_like(total), where=total > 0)
        fee = consumers.charged  # (n_users,) what each listener paid this month (nothing when not subscribed)
        revenue_h = fee * (1.0 - ai_frac)  # (n_users,) revenue attributed to human listening
        revenue_ai = fee * ai_frac
        user_pool_h = (1.0 - cfg.platform_cut) * revenue_h
        user_pool_ai = self.ai_user_pool(revenue_ai, listening.ai_streams)
        human_rule, ai_rule = self.arm.rules_at(self.model.steps)  # (a schedule may change them in this month)
        base = Settlement(
            pool=float(user_pool_h.sum()),
            streams=listening.streams,
            user_pool=user_pool_h,
            works=catalogue.works,
            training_works=np.where(catalogue.opted_in, catalogue.training_works, 0.0),
            training_seconds=np.where(catalogue.opted_in, catalogue.training_seconds, 0.0),
            ai_plays=listening.ai_plays,
            attribution=self.attribution,
            similarity=catalogue.similarity,
            eligible=catalogue.active,
            reference=self.reference,
        )
        n = catalogue.active.size
        ai_eligible = catalogue.active & catalogue.opted_in
        training_works, training_seconds = catalogue.training_works, catalogue.training_seconds
        farm = self.fraud.month(self.model.steps) if self.fraud is not None else None
        if farm is not None:
            base, ai_eligible = self.fraud.extend(base, farm, (1.0 - cfg.platform_cut) * farm.fees, ai_eligible)
            user_pool_ai = np.concatenate([user_pool_ai, np.zeros(farm.fees.size)])  # bots play no AI
            pad = np.zeros(farm.uploads)
            training_works, training_seconds = np.append(training_works, pad), np.append(training_seconds, pad)
        human_all = self._pay(human_rule.name, base, **human_rule.params)
        ai_settlement = base.derive(pool=float(user_pool_ai.sum()), user_pool=user_pool_ai, eligible=ai_eligible)
        with sampling_errors() as sampled:  # only the month's settlement, not the rate card below
            ai_all = self._pay(ai_rule.name, ai_settlement, **ai_rule.params)
        # what each creator would earn from the AI pool if everyone took part: the "rate card" that
        # creators who are out (of the market or of training) weigh when deciding to come back in
        everyone = np.ones_like(ai_eligible)
        counterfactual = self._pay(
            ai_rule.name,
            ai_settlement.derive(eligible=everyone, training_works=training_works, training_seconds=training_seconds),
            **ai_rule.params,
        )
        human_pay, ai_pay = human_all[:n], ai_all[:n]
        fraud = {}
        if farm is not None:
            fraud = {
                "fraud_human_paid": float(human_all[n:].sum()),
                "fraud_ai_paid": float(ai_all[n:].sum()),
                "fraud_streams": farm.faked,
                "demonetised_streams": farm.demonetised,
                "bot_fees": float(farm.fees.sum()),
                "fraud_uploads": farm.uploads,
            }
        ai_streams = float(listening.ai_plays.sum())
        return Statement(
            revenue=float(fee.sum()) + fraud.get("bot_fees", 0.0),
            human_pool=base.pool,
            ai_pool=ai_settlement.pool,
            human_pay=human_pay,
            ai_pay=ai_pay,
            unallocated_human=base.pool - float(human_all.sum()),
            unallocated_ai=ai_settlement.pool - float(ai_all.sum()),
            ai_cost=cfg.ai_cost_per_stream * ai_streams,
            ai_stream_share=ai_streams / float(total.sum()) if total.sum() > 0 else 0.0,
            ai_eligible=ai_settlement.eligible[:n],
            ai_counterfactual=counterfactual[:n],
            ai_shapley_se=max((e.share_se for e in sampled), default=float("nan")),
            ai_shapley_permutations=max((e.permutations for e in sampled), default=0),
            **fraud,
        )


# --------------------------------------------------------------------------- creators


class Creator(mesa.Agent):
    """A creator: a catalogue, a style, costs and an outside option; responds to what it is paid.

    Money is in income units (the model's ``income_unit``: month-0 pool per creator).

    Args:
        model: the :class:`~royaltysim.model.RoyaltyModel`.
        index: position in the model's creator arrays.
        name: creator name.
        qualities: quality of each work in the starting catalogue.
        seconds_per_work: length of a new work.
        talent: quality scale of new works.
        outside_option: income a month the creator's time would earn elsewhere.
        enjoyment: money-equivalent a month of making music.
        ai_aversion: AI income a month below which the creator prefers to opt out of training.
        active: starts in the market.
        opted_in: starts opted in to AI training.
    """

    model: RoyaltyModel

    def __init__(
        self,
        model: RoyaltyModel,
        index: int,
        name: str,
        qualities: np.ndarray,
        seconds_per_work: float,
        talent: float,
        outside_option: float,
        enjoyment: float,
        ai_aversion: float,
        active: bool = True,
        opted_in: bool = True,
    ) -> None:
        super().__init__(model)
        self.index = index
        self.name = name
        self.qualities = qualities
        self.seconds_per_work = seconds_per_work
        self.training_works = float(self.qualities.size) if opted_in else 0.0
        self.training_seconds = self.training_works * seconds_per_work
        self.talent = talent
        self.outside_option = outside_option
        self.enjoyment = enjoyment
        self.ai_aversion = ai_aversion
        self.active = active
        self.opted_in = opted_in
        self.imitation = 0.0  # 0 = own style, 1 = the AI's
        self.strategy = "plain"
        self.expected: float | None = None  # adaptive expectation of income
        self.expected_ai: float | None = None
        self.costs = 0.0  # spent last month, charged against this month's income
        self.income = 0.0
        self.net = 0.0
        # events of the current month, read by data collection
        self.new_works = 0
        self.flood_works = 0
        self.entered = self.exited = self.opted_out = self.opted_back = False

    # --------------------------------------------------------------- state
    @property
    def qualities(self) -> np.ndarray:
        """Quality of each work in the catalogue; assign a whole new array to change it."""
        return self._qualities

    @qualities.setter
    def qualities(self, value: np.ndarray) -> None:
        self._qualities = np.asarray(value, dtype=float)
        # read several times a month by the model for every creator; worked out once per change
        self._appeal = float(self._qualities.sum())
        self._works = int(self._qualities.size)

    @property
    def works(self) -> int:
        return self._works

    @property
    def appeal(self) -> float:
        """Catalogue appeal: summed quality of works (more works -> more shelf space)."""
        return self._appeal

    @property
    def mean_quality(self) -> float:
        # the same number as qualities.mean(), which divides the same sum by the count
        return self._appeal / self._qualities.size if self._qualities.size else 0.0

    # --------------------------------------------------------------- month
    def respond(self, statement: Statement) -> None:
        """Read the month's statement and decide: exit/enter, strategy, releases, AI opt-in."""
        b: BehaviourConfig = self.model.config.behaviour
        unit = self.model.income_unit
        rng = self.model.rng
        self.new_works = self.flood_works = 0
        self.entered = self.exited = self.opted_out = self.opted_back = False
        ai_income = statement.ai_pay[self.index] / unit
        self.income = statement.human_pay[self.index] / unit + ai_income
        w = b.expectation_weight
        if self.active:
            self.net = self.income - self.costs
            self.expected = self.income if self.expected is None else (1 - w) * self.expected + w * self.income
            self.costs = 0.0
            if self.expected + self.enjoyment < self.outside_option and rng.random() < b.exit_rate:
                self.active, self.exited, self.strategy = False, True, "plain"
            else:
                self._choose_strategy(b, rng)
                self._release(b, rng)
        else:
            self.net = 0.0
            estimate = self.model.reentry_estimate(self.index, statement)
            if estimate + self.enjoyment >= self.outside_option and rng.random() < b.reentry_rate:
                self.active, self.entered = True, True
                self.expected = estimate
        if b.opt_out:
            self._decide_opt_in(statement, b, rng)

    def _choose_strategy(self, b: BehaviourConfig, rng: np.random.Generator) -> None:
        """Keep the strategy, try one at random, or revise by logit over what each strategy earned peers."""
        options = self.model.strategies
        if len(options) == 1:
            self.strategy = options[0]
        elif rng.random() < b.exploration:
            self.strategy = options[int(rng.integers(len(options)))]
        elif rng.random() < b.strategy_revision_rate:
            known = {s: r for s, r in self.model.strategy_returns.items() if s in options}
            if known:
                names = list(known)
                z = np.array([known[s] for s in names]) / b.strategy_temperature
                p = np.exp(z - z.max())
                self.strategy = names[int(rng.choice(len(names), p=p / p.sum()))]

    def _release(self, b: BehaviourConfig, rng: np.random.Generator) -> None:
        """Release new works (more when the expected marginal return beats the cost) and play the strategy."""
        appeal = max(self.appeal, 1e-9)
        marginal = max(self.expected or 0.0, 0.0) * self.talent / appeal  # income a typical new work adds
        multiplier = b.max_release_multiplier
        if b.cost_per_work > 0:
            multiplier = min(marginal / b.cost_per_work, b.max_release_multiplier)
        n_new = int(rng.poisson(b.release_rate * multiplier))
        # (drawing no works would consume no random numbers: skipping that draw leaves the stream as it is)
        new = [self.talent * rng.lognormal(0.0, b.work_sigma, n_new)] if n_new else []
        self.costs += n_new * b.cost_per_work
        if "flood" in self.strategy:
            new.append(np.full(b.flood_batch, b.flood_quality * self.talent))
            self.costs += b.flood_batch * b.cost_per_work * b.flood_cost_factor
            self.flood_works = b.flood_batch
        if "imitate" in self.strategy:
            self.imitation += b.imitation_speed * (1.0 - self.imitation)
            self.costs += b.imitation_cost
        else:
            self.imitation -= 0.5 * b.imitation_speed * self.imitation
        self.new_works = sum(int(works.size) for works in new)
        if new:
            self.qualities = np.concatenate([self.qualities, *new])
        if self.opted_in:  # opted-in releases join the AI's training set
            self.training_works += self.new_works
            self.training_seconds += self.new_works * self.seconds_per_work

    def _decide_opt_in(self, statement: Statement, b: BehaviourConfig, rng: np.random.Generator) -> None:
        """Opt in to AI training while the AI income one expects covers one's aversion to it."""
        unit = self.model.income_unit
        paid = statement.ai_pay if self.opted_in and self.active else statement.ai_counterfactual
        seen = paid[self.index] / unit
        w = b.expectation_weight
        self.expected_ai = seen if self.expected_ai is None else (1 - w) * self.expected_ai + w * seen
        if rng.random() >= b.opt_revision_rate:
            return
        want = self.expected_ai >= self.ai_aversion
        if want and not self.opted_in:
            self.opted_in, self.opted_back = True, True
            self.training_works, self.training_seconds = float(self.works), self.works * self.seconds_per_work
        elif not want and self.opted_in:
            self.opted_in, self.opted_out = False, True
