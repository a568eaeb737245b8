"""The listeners: :class:`Consumers`, all listeners in one object of numpy arrays, not one Python object each.

A month's randomness is drawn up front as :class:`ListeningDraws`, which the per-agent reference
(:mod:`royaltysim.reference`, one Mesa agent per listener) consumes too, so the two can be compared
draw for draw; a month's listening is returned as :class:`Listening`.

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

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from royaltysim.agents.sampling import _guide, _sample_grouped

_INT32_MAX = int(np.iinfo(np.int32).max)  # (np.iinfo costs microseconds a call, and the month calls it often)
_INT64_MAX = int(np.iinfo(np.int64).max)

if TYPE_CHECKING:
    from royaltysim.config import ConsumersConfig, PlatformConfig

__all__ = ["Consumers", "Listening", "ListeningDraws"]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


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
