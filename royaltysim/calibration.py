"""Calibration: does the baseline economy look like the real streaming economy?

Three parts, one concept (the published stylised facts and their simulated counterparts):

* **The facts as data** -- :data:`PUBLISHED_FACTS`, one :class:`PublishedFact` each (value, tolerance
  band, source, year, and how it is compared at the simulation's scale), and :data:`LUMINATE_2024_TIERS`
  (tracks by annual streams), all from ``shared/reference/streaming-facts.md``.
* **Fact functions** -- pure functions on arrays that compute each fact from simulated data:
  :func:`top_stream_share`, :func:`share_producing`, :func:`share_at_most`, :func:`platform_cut`,
  :func:`payout_per_stream`, :func:`streams_per_listener`, :func:`heavy_light_popularity_ratio`,
  :func:`pareto_slope`, :func:`quantile_slope`, :func:`tier_shares`, :func:`mean_from_tiers`.
* **Measurement** -- :func:`simulate` runs the human-streaming economy of a scenario and keeps what the
  tidy result tables do not hold (the listener x creator stream matrix, per-listener volumes, plays of
  each work); :func:`compare` turns a :class:`CalibrationRun` into a tidy table of simulated vs
  published facts with the distance; :func:`plot_calibration` draws the simulated distributions
  against the published points and tiers.

Fitting parameters to these facts (the method of simulated moments, ``royaltysim calibrate --fit``) is
:mod:`royaltysim.fit`; this module only measures.

Scale. The published facts are measured on platforms with 1.6M-12M artists and hundreds of billions of
streams; the simulation runs thousands of creators. Facts are compared so that scale cancels:

* concentration facts (top 1% / 10% shares, share of creators making 90% / 98% of streams) are shares
  of a *fraction* of creators, scale-free when the creators are a random sample of the platform's and
  the sample reaches far enough into the tail. With log-popularity spread ~3.8, the top 1% share only
  settles above ~10k creators (the streams of a lognormal this wide are carried by creators rarer than
  1 in 10,000), so the calibration scenario runs 20,000 creators. With the calibrated defaults (two
  listeners per creator) the top 1% share is 75-83% at 1,000 creators, 85-88% at 5,000 and 90-95% at
  20,000 (seeds 0-1, 0-1 and 0-3);
* the income tail is compared by its Pareto slope between *quantiles* (the $10k and $100k tiers of
  Spotify 2024 are the top 0.59% and 0.10% of uploaders), not between dollar thresholds;
* the Luminate track tiers are rescaled by mean annual streams per work (simulated over published,
  the published mean estimated from the tiers): a simulated work with the same multiple of the mean
  falls in the same tier. One simulated listening session (10-40 streams) is worth ~20x that in
  published streams, so the simulation cannot resolve the lowest tiers: "zero plays in a year" in
  the simulation means fewer than one session, which the Luminate tiers put at ~70-80% of tracks,
  far above the published 24.8% of tracks with no play at all. That fact is reported, not pinned;
* platform cut, payout per stream, streams per listener and the heavy/light ratio are intensive
  (per stream, per listener, or a ratio of means) and compared directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike

from royaltysim import metrics
from royaltysim.config import Scenario

if TYPE_CHECKING:
    from attribution.table import AttributionTable
    from royaltysim.agents import Listening, Statement
    from royaltysim.model import RoyaltyModel

__all__ = [
    "PublishedFact",
    "PUBLISHED_FACTS",
    "LUMINATE_2024_TIERS",
    "CalibrationRun",
    "top_stream_share",
    "share_producing",
    "share_at_most",
    "platform_cut",
    "payout_per_stream",
    "streams_per_listener",
    "heavy_light_popularity_ratio",
    "pareto_slope",
    "quantile_slope",
    "tier_shares",
    "mean_from_tiers",
    "simulate",
    "simulated_facts",
    "compare",
    "tier_table",
    "plot_calibration",
]

# the measurement's own generator stream (which work of a creator a session played), seeded from the
# scenario seed so the model's generator -- and hence the simulated economy -- is untouched by measuring it
_MEASURE_STREAM = 0xCA1B


# --------------------------------------------------------------------------- the published facts


@dataclass(frozen=True)
class PublishedFact:
    """One stylised fact of the real streaming economy.

    Attributes:
        key: identifier (column value in the tidy table).
        label: what is measured, in words.
        value: the published value (a share is a fraction in [0, 1]).
        low, high: tolerance band; the simulation reproduces the fact when it lands inside.
        unit: unit of ``value``.
        source: who published it.
        year: year of the figure (None where the reference gives none).
        comparison: how the fact is compared at the simulation's scale.
        pinned: the tests hold the calibrated baseline inside the band (False for facts the simulation
            cannot resolve at its scale; they are reported with the reason).
    """

    key: str
    label: str
    value: float
    low: float
    high: float
    unit: str
    source: str
    year: int | None
    comparison: str
    pinned: bool = True


#: Luminate 2024: tracks by annual on-demand audio streams, as (low, high, tracks); ``high`` None is open.
LUMINATE_2024_TIERS: tuple[tuple[float, float | None, float], ...] = (
    (0, 10, 93.2e6),
    (11, 100, 47.7e6),
    (101, 1_000, 34.6e6),
    (1_001, 100_000, 24.1e6),
    (100_001, 1_000_000, 2.1e6),
    (1_000_001, 10_000_000, 427_700),
    (10_000_001, 100_000_000, 60_000),
    (100_000_001, 1_000_000_000, 4_800),
    (1_000_000_001, None, 33),
)

# Spotify Loud & Clear 2024: uploaders above $10k / $100k / $1M a year, of ~12M uploaders
_ABOVE_10K, _ABOVE_100K, _ABOVE_1M, _UPLOADERS = 71_200, 12_500, 1_450, 12e6
_Q_10K, _Q_100K = _ABOVE_10K / _UPLOADERS, _ABOVE_100K / _UPLOADERS

PUBLISHED_FACTS: tuple[PublishedFact, ...] = (
    PublishedFact(
        "top1_share", "share of streams to the top 1% of creators", 0.90, 0.85, 0.95, "share",
        "Alpha Data / Rolling Stone (~1.6M artists)", 2020,
        "annual streams per creator; scale-free share of a fraction of creators",
    ),
    PublishedFact(
        "top10_share", "share of streams to the top 10% of creators", 0.994, 0.985, 1.0, "share",
        "Alpha Data / Rolling Stone (~1.6M artists)", 2020,
        "annual streams per creator; scale-free share of a fraction of creators",
    ),
    PublishedFact(
        "creators_90pct_monthly", "share of creators making 90% of a month's streams", 0.008, 0.005, 0.015,
        "share", "Spotify Loud & Clear (57,000 artists)", 2021,
        "smallest fraction of creators holding 90% of each month's streams, mean over months",
    ),
    PublishedFact(
        "creators_98pct", "share of creators producing 98% of streams", 0.03, 0.02, 0.05, "share",
        "Deezer / UMG", 2023, "smallest fraction of creators holding 98% of annual streams",
    ),
    PublishedFact(
        "works_at_most_1000", "share of works with <= 1,000 plays in a year", 0.867, 0.82, 0.91, "share",
        "Luminate", 2024,
        "threshold rescaled by mean annual streams per work (simulated / published, from the tiers)",
    ),
    PublishedFact(
        "works_zero_plays", "share of works with no play in a year", 0.248, 0.20, 0.30, "share",
        "Luminate (184M tracks)", 2023,
        "not resolvable: one simulated session is worth hundreds of published streams, so 'no play' in "
        "the simulation is 'fewer than one session', which the Luminate tiers put near 80% of tracks",
        pinned=False,
    ),
    PublishedFact(
        "platform_cut", "platform cut before the royalty pool", 0.30, 0.28, 0.32, "share of revenue",
        "Spotify", None, "1 - royalty pool / revenue, summed over the year",
    ),
    PublishedFact(
        "payout_per_stream", "payout per stream", 0.004, 0.003, 0.005, "$ (fee currency) per stream",
        "Spotify", 2020, "royalty pool / streams, summed over the year",
    ),
    PublishedFact(
        "streams_per_listener", "streams per listener and month", 500.0, 400.0, 600.0, "streams",
        "Deezer", 2023, "mean over listeners and months",
    ),
    PublishedFact(
        "heavy_light_ratio", "popularity of what heavy listeners play / what light listeners play", 0.83,
        0.78, 0.88, "ratio", "former Spotify data lead", None,
        "per listener, the stream-weighted mean popularity (share of annual streams) of the creators "
        "played; mean over heavy listeners / mean over light listeners",
    ),
    PublishedFact(
        "income_slope_10k_100k", "Pareto slope of income between the $10k and $100k tiers",
        math.log(_ABOVE_10K / _ABOVE_100K) / math.log(10.0), 0.60, 0.95, "slope",
        "derived from Spotify Loud & Clear", 2024,
        f"slope between the creators at the top {_Q_10K:.2%} and top {_Q_100K:.2%} of annual income "
        "(the tiers' quantiles among ~12M uploaders)",
    ),
    PublishedFact(
        "income_slope_top1", "Pareto slope of the top 1% of income (log-log fit)", 0.80, 0.60, 1.05, "slope",
        "derived from Spotify Loud & Clear tiers", 2024,
        "least-squares slope of log(rank / n) on log(annual income) over the top 1% of creators",
    ),
)


# --------------------------------------------------------------------------- fact functions


def _nonneg(x: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} is empty; a fact needs at least one value")
    if not np.all(np.isfinite(arr)) or arr.min() < 0:
        raise ValueError(f"{name} must be finite and non-negative; got min {np.nanmin(arr)!r}")
    return arr


def top_stream_share(streams: ArrayLike, q: float) -> float:
    """Share of all streams held by the most-streamed fraction ``q`` of creators.

    :func:`royaltysim.metrics.top_share` on streams. Range [q, 1]: ``q`` when every creator is
    streamed equally (or nobody is), 1 when the top ``q`` get every stream.
    """
    return metrics.top_share(_nonneg(streams, "streams"), q)


def share_producing(streams: ArrayLike, share: float) -> float:
    """Smallest fraction of creators whose streams add up to at least ``share`` of all streams.

    Range (0, 1]: ``1/n`` when one creator makes (nearly) everything, ``share`` (rounded up to whole
    creators) when all are streamed equally; all-zero streams read as equality and return ``share``.
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1]; got {share!r}")
    arr = np.sort(_nonneg(streams, "streams"))[::-1]
    total = arr.sum()
    if total == 0:
        return float(share)
    cum = np.cumsum(arr) / total
    k = int(np.searchsorted(cum, share - 1e-12)) + 1  # the tolerance keeps exact ties (0.8 of 0.8) in
    return min(k, arr.size) / arr.size


def share_at_most(plays: ArrayLike, threshold: float) -> float:
    """Fraction of works (or creators) with at most ``threshold`` plays. Range [0, 1]."""
    return float(np.mean(_nonneg(plays, "plays") <= threshold))


def platform_cut(revenue: ArrayLike, pool: ArrayLike) -> float:
    """Share of revenue the platform keeps before the royalty pool: ``1 - sum(pool) / sum(revenue)``.

    Range [0, 1] for a pool within revenue: 0 when everything goes to the pool, 1 when nothing does.
    """
    rev = _nonneg(revenue, "revenue").sum()
    if rev == 0:
        raise ValueError("revenue is zero; the platform cut is undefined without revenue")
    return float(1.0 - _nonneg(pool, "pool").sum() / rev)


def payout_per_stream(pool: ArrayLike, streams: ArrayLike) -> float:
    """Royalty pool paid per stream: ``sum(pool) / sum(streams)`` (money per stream, >= 0)."""
    total = _nonneg(streams, "streams").sum()
    if total == 0:
        raise ValueError("no streams; the payout per stream is undefined")
    return float(_nonneg(pool, "pool").sum() / total)


def streams_per_listener(streams: ArrayLike) -> float:
    """Mean streams per listener (and month when ``streams`` holds listener-months). >= 0."""
    return float(_nonneg(streams, "streams").mean())


def heavy_light_popularity_ratio(streams: sp.spmatrix | np.ndarray, heavy: ArrayLike) -> float:
    """How popular the creators heavy listeners play are, relative to those light listeners play.

    A creator's popularity is its share of all streams. For each listener, the stream-weighted mean
    popularity of the creators they played; the ratio is the mean of that over heavy listeners over
    its mean over light listeners (listeners who played nothing are left out).

    Args:
        streams: (n_listeners, n_creators) streams.
        heavy: (n_listeners,) bool, heavy listener.
    Returns:
        A ratio > 0: 1 when both play equally popular creators, below 1 when heavy listeners play
        less popular (more niche) creators.
    """
    s = sp.csr_matrix(streams, dtype=float)
    heavy = np.asarray(heavy, dtype=bool)
    if heavy.shape != (s.shape[0],):
        raise ValueError(f"heavy must have one flag per listener ({s.shape[0]}); got shape {heavy.shape}")
    per_creator = np.asarray(s.sum(axis=0)).ravel()
    per_user = np.asarray(s.sum(axis=1)).ravel()
    if per_creator.sum() == 0:
        raise ValueError("no streams; popularity is undefined")
    popularity = per_creator / per_creator.sum()
    played = per_user > 0
    mean_pop = np.divide(s @ popularity, per_user, out=np.zeros_like(per_user), where=played)
    h, light = played & heavy, played & ~heavy
    if not h.any() or not light.any():
        raise ValueError(f"need heavy and light listeners who played something; got {h.sum()} heavy, "
                         f"{light.sum()} light")
    return float(mean_pop[h].mean() / mean_pop[light].mean())


def pareto_slope(income: ArrayLike, top: float = 0.01, min_points: int = 5) -> float:
    """Pareto slope ``alpha`` of the top of a distribution, from a log-log fit of its survival function.

    Least squares of ``log(rank / n)`` on ``log(x)`` over the richest ``top`` fraction (at least
    ``min_points`` values; positive values only); for a Pareto tail ``P(X > x) ~ x**-alpha`` the slope
    is ``-alpha``. Range (0, inf): small for a fat tail (below 1 the top dominates the total), large
    for a thin one; a lognormal's local slope rises with the income level.
    """
    arr = np.sort(_nonneg(income, "income"))[::-1]
    k = max(int(round(top * arr.size)), min_points)
    head = arr[:k]
    head = head[head > 0]
    if head.size < 2 or head[0] == head[-1]:
        raise ValueError(f"need at least 2 distinct positive values in the top {k}; got {head.size}")
    rank = np.arange(1, head.size + 1) / arr.size
    slope = np.polyfit(np.log(head), np.log(rank), 1)[0]
    return float(-slope)


def quantile_slope(income: ArrayLike, q_low: float, q_high: float) -> float:
    """Pareto slope between two upper quantiles: ``log(q_low / q_high) / log(x(q_high) / x(q_low))``.

    ``x(q)`` is the income above which a fraction ``q`` of creators lie (``q_high < q_low``). For the
    Spotify 2024 tiers, q_low = 71,200 / 12M (above $10k) and q_high = 12,500 / 12M (above $100k),
    a factor 10 apart, give 0.756. Range (0, inf), read as for :func:`pareto_slope`.
    """
    if not 0 < q_high < q_low < 1:
        raise ValueError(f"need 0 < q_high < q_low < 1; got q_low={q_low!r}, q_high={q_high!r}")
    arr = _nonneg(income, "income")
    x_low, x_high = np.quantile(arr, [1.0 - q_low, 1.0 - q_high])
    if x_low <= 0 or x_high <= x_low:
        raise ValueError(f"incomes at the two quantiles must be positive and distinct; got {x_low}, {x_high}")
    return float(math.log(q_low / q_high) / math.log(x_high / x_low))


def tier_shares(plays: ArrayLike, edges: ArrayLike) -> np.ndarray:
    """Fraction of works in each tier ``(edges[i], edges[i+1]]``; the first tier includes 0.

    ``edges`` is increasing and may end with ``inf``; the fractions sum to 1 when the edges cover
    every value.
    """
    arr = _nonneg(plays, "plays")
    e = np.asarray(edges, dtype=float)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
        raise ValueError(f"edges must be an increasing 1-D array of at least 2 values; got {edges!r}")
    idx = np.searchsorted(e, arr, side="left") - 1  # (e[i], e[i+1]] -> i
    idx[arr <= e[0]] = 0
    inside = (idx >= 0) & (idx < e.size - 1) & (arr <= e[-1])
    return np.bincount(idx[inside], minlength=e.size - 1)[: e.size - 1] / arr.size


def mean_from_tiers(tiers: tuple[tuple[float, float | None, float], ...] = LUMINATE_2024_TIERS,
                    top_factor: float = 3.0) -> float:
    """Mean streams per track implied by a tier table ``(low, high, tracks)``.

    Within a tier, streams are taken log-uniform (mean ``(b - a) / ln(b / a)``, the density of a
    Pareto tail of slope ~1, which is what the tiers show), the tier from 0 uniform, and the open top
    tier runs to ``top_factor`` times its floor. For Luminate 2024 it gives ~36,000 streams per track.
    """
    total_streams = total_tracks = 0.0
    for low, high, tracks in tiers:
        a = max(float(low), 0.0)
        b = float(high) if high is not None else top_factor * max(a, 1.0)
        mean = (a + b) / 2.0 if a <= 1.0 else (b - a) / math.log(b / a)
        total_streams += tracks * mean
        total_tracks += tracks
    return total_streams / total_tracks


# --------------------------------------------------------------------------- measuring a run


@dataclass
class CalibrationRun:
    """What a calibration run keeps: the data every fact function needs (money in the fee currency).

    Attributes:
        scenario: the resolved scenario.
        streams: (n_listeners, n_creators) human streams over the whole run.
        monthly_creator_streams: (months, n_creators) streams of each creator in each month.
        listener_month_streams: (months * n_listeners,) human streams of each listener in each month.
        heavy: (n_listeners,) bool, heavy listener.
        income: (n_creators,) royalties over the run (human pool).
        revenue: (months,) platform revenue.
        pool: (months,) human royalty pool.
        work_plays: (n_works,) plays of every work on the platform during the run (works of creators in
            the market at some point), each session of a creator assigned to one of its works with
            probability proportional to the work's quality -- the same rule that makes a catalogue's
            appeal the sum of its works' qualities.
        ever_active: (n_creators,) in the market at some point during the run.
        session_streams: mean streams in one listening session (the simulation's resolution).
        runtime_s: wall-clock seconds of the run.
    """

    scenario: Scenario
    streams: sp.csr_matrix
    monthly_creator_streams: np.ndarray
    listener_month_streams: np.ndarray
    heavy: np.ndarray
    income: np.ndarray
    revenue: np.ndarray
    pool: np.ndarray
    work_plays: np.ndarray
    ever_active: np.ndarray
    session_streams: float
    runtime_s: float = 0.0

    @property
    def creator_streams(self) -> np.ndarray:
        """(n_creators,) streams of each creator over the run."""
        return self.monthly_creator_streams.sum(axis=0)

    @property
    def months(self) -> int:
        return int(self.monthly_creator_streams.shape[0])


@dataclass
class _Recorder:
    """Accumulates, month by month, what :class:`CalibrationRun` keeps."""

    rng: np.random.Generator
    streams: sp.csr_matrix | None = None
    monthly: list[np.ndarray] = field(default_factory=list)
    listener_months: list[np.ndarray] = field(default_factory=list)
    income: np.ndarray | None = None
    revenue: list[float] = field(default_factory=list)
    pool: list[float] = field(default_factory=list)
    work_plays: list[np.ndarray] = field(default_factory=list)
    session_counts: list[float] = field(default_factory=list)
    ever_active: np.ndarray | None = None

    def record(self, model: RoyaltyModel, listening: Listening, statement: Statement) -> None:
        creators = model.creators
        n = len(creators)
        s = listening.streams.tocsr()
        self.streams = s if self.streams is None else self.streams + s
        self.monthly.append(np.asarray(s.sum(axis=0)).ravel())
        self.listener_months.append(listening.human_streams)
        pay = np.asarray(statement.human_pay, dtype=float)
        self.income = pay.copy() if self.income is None else self.income + pay
        self.revenue.append(statement.revenue)
        self.pool.append(statement.human_pool)
        # creators who were in the market when the month was listened to (this month's exits included)
        was_active = np.array([(c.active or c.exited) and not c.entered for c in creators])
        self.ever_active = was_active if self.ever_active is None else self.ever_active | was_active
        # the works each creator had when listeners chose (this month's releases came after)
        qualities = [c.qualities[: c.works - c.new_works] for c in creators]
        if not self.work_plays:
            self.work_plays = [np.zeros(q.size) for q in qualities]
        for i, q in enumerate(qualities):
            if q.size > self.work_plays[i].size:
                self.work_plays[i] = np.concatenate([self.work_plays[i], np.zeros(q.size - self.work_plays[i].size)])
        human = (listening.picks < n) & (listening.counts > 0)
        picks, counts = listening.picks[human], listening.counts[human].astype(float)
        self.session_counts.append(float(counts.mean()) if counts.size else 0.0)
        sizes = np.array([q.size for q in qualities])
        offset = np.concatenate([[0], np.cumsum(sizes)])
        flat = np.concatenate(qualities) if sizes.sum() else np.zeros(0)
        cum = np.cumsum(flat)
        before = np.where(offset[:-1] > 0, cum[np.maximum(offset[:-1] - 1, 0)], 0.0)
        appeal = np.add.reduceat(flat, offset[:-1]) if flat.size else np.zeros(n)
        appeal = np.where(sizes > 0, appeal, 0.0)
        target = before[picks] + self.rng.random(picks.size) * appeal[picks]
        work = np.searchsorted(cum, target, side="right")
        work = np.clip(work, offset[picks], offset[picks + 1] - 1)  # float ties at a creator's edges
        plays = np.bincount(work, weights=counts, minlength=flat.size)
        for i in range(n):
            self.work_plays[i][: sizes[i]] += plays[offset[i]: offset[i + 1]]


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    table: AttributionTable | None = None,
) -> CalibrationRun:
    """Run the scenario's first arm for ``scenario.steps`` months and keep what the facts need.

    Args:
        scenario: a validated scenario (``scenarios/calibration.yaml``: the human-streaming baseline).
        seed: overrides ``scenario.seed``.
        table: the attribution table, if already loaded.
    """
    import time

    from royaltysim.demand import DemandMonth
    from royaltysim.model import RoyaltyModel, build_world

    start = time.perf_counter()
    seed = scenario.seed if seed is None else int(seed)
    world = build_world(scenario, seed, table)
    recorder = _Recorder(np.random.default_rng([seed, _MEASURE_STREAM]))

    class _Observed(RoyaltyModel):
        # the model's own data collection runs unchanged; the recorder reads the same month
        def _collect(self, listening: Listening, st: Statement, demand: DemandMonth) -> None:
            super()._collect(listening, st, demand)
            recorder.record(self, listening, st)

    model = _Observed(scenario, scenario.schemes[0], seed=seed, world=world)
    for _ in range(scenario.steps):
        model.step()
    assert recorder.streams is not None and recorder.income is not None and recorder.ever_active is not None
    active = recorder.ever_active
    plays = [p for p, a in zip(recorder.work_plays, active, strict=True) if a]
    return CalibrationRun(
        scenario=scenario.model_copy(update={"seed": seed}),
        streams=recorder.streams,
        monthly_creator_streams=np.vstack(recorder.monthly),
        listener_month_streams=np.concatenate(recorder.listener_months),
        heavy=model.consumers.heavy.copy(),
        income=recorder.income,
        revenue=np.array(recorder.revenue),
        pool=np.array(recorder.pool),
        work_plays=np.concatenate(plays) if plays else np.zeros(0),
        ever_active=active,
        session_streams=float(np.mean(recorder.session_counts)),
        runtime_s=time.perf_counter() - start,
    )


def _rescale(run: CalibrationRun) -> float:
    """Simulated streams per published stream: mean annual plays per work, simulated over published."""
    per_year = run.work_plays.mean() * 12.0 / run.months
    return float(per_year / mean_from_tiers())


def simulated_facts(run: CalibrationRun) -> dict[str, float]:
    """The simulated counterpart of every published fact, keyed as :data:`PUBLISHED_FACTS`.

    Creator facts are over creators in the market at some point of the run; work facts over their
    works; annual figures are the run's totals (a 12-month run is a year).
    """
    streams = run.creator_streams[run.ever_active]
    income = run.income[run.ever_active]
    monthly = run.monthly_creator_streams[:, run.ever_active]
    annual_plays = run.work_plays * 12.0 / run.months
    scale = _rescale(run)
    return {
        "top1_share": top_stream_share(streams, 0.01),
        "top10_share": top_stream_share(streams, 0.10),
        "creators_90pct_monthly": float(np.mean([share_producing(m, 0.90) for m in monthly])),
        "creators_98pct": share_producing(streams, 0.98),
        "works_at_most_1000": share_at_most(annual_plays, 1000.0 * scale),
        "works_zero_plays": share_at_most(annual_plays, 0.0),
        "platform_cut": platform_cut(run.revenue, run.pool),
        "payout_per_stream": payout_per_stream(run.pool, run.listener_month_streams),
        "streams_per_listener": streams_per_listener(run.listener_month_streams),
        "heavy_light_ratio": heavy_light_popularity_ratio(run.streams, run.heavy),
        "income_slope_10k_100k": quantile_slope(income, _Q_10K, _Q_100K),
        "income_slope_top1": pareto_slope(income, 0.01),
    }


def compare(run: CalibrationRun, facts: tuple[PublishedFact, ...] = PUBLISHED_FACTS) -> pd.DataFrame:
    """Tidy table, one row per fact: published value and band, simulated value, distance, within band.

    ``distance`` is simulated minus published (in the fact's unit); ``band_distance`` is that distance
    in half-widths of the band on its side (|band_distance| <= 1 inside the band). The run's seed,
    scale and months are columns, so tables of several runs concatenate.
    """
    sim = simulated_facts(run)
    sc = run.scenario
    n_creators = int(run.ever_active.sum())
    rows = []
    for f in facts:
        s = sim[f.key]
        side = (f.high - f.value) if s >= f.value else (f.value - f.low)
        rows.append(
            {
                "fact": f.key,
                "label": f.label,
                "published": f.value,
                "low": f.low,
                "high": f.high,
                "simulated": s,
                "distance": s - f.value,
                "band_distance": (s - f.value) / side if side > 0 else (0.0 if s == f.value else math.inf),
                "within": bool(f.low <= s <= f.high),
                "pinned": f.pinned,
                "unit": f.unit,
                "source": f.source,
                "year": f.year,
                "comparison": f.comparison,
                "seed": sc.seed,
                "months": run.months,
                "creators": n_creators,
                "listeners": int(run.heavy.size),
                "works": int(run.work_plays.size),
                "streams_rescale": _rescale(run),
                "session_streams": run.session_streams,
            }
        )
    table = pd.DataFrame(rows)
    table["year"] = table["year"].astype("Int64")  # None where the reference gives no year
    return table


def tier_table(run: CalibrationRun) -> pd.DataFrame:
    """Luminate 2024 tiers against the simulated works, thresholds rescaled to the simulation's streams.

    One row per tier: its published bounds, the published share of tracks, the rescaled bounds and the
    simulated share of works.
    """
    scale = _rescale(run)
    edges = [float(t[0]) for t in LUMINATE_2024_TIERS[1:]]
    edges = [0.0] + [e - 1.0 for e in edges] + [math.inf]  # (a, b] bins: 0-10, 10-100, ...
    published = np.array([t[2] for t in LUMINATE_2024_TIERS])
    sim = tier_shares(run.work_plays * 12.0 / run.months, np.array(edges) * scale)
    labels = []
    for low, high, _ in LUMINATE_2024_TIERS:
        labels.append(f"{_human(low)}-{_human(high)}" if high is not None else f">{_human(low - 1)}")
    return pd.DataFrame(
        {
            "tier": labels,
            "published_low": [t[0] for t in LUMINATE_2024_TIERS],
            "published_high": [t[1] if t[1] is not None else math.inf for t in LUMINATE_2024_TIERS],
            "published_share": published / published.sum(),
            "simulated_low": [edges[i] * scale for i in range(len(labels))],
            "simulated_high": [edges[i + 1] * scale for i in range(len(labels))],
            "simulated_share": sim,
        }
    )


def _human(x: float) -> str:
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            v = x / div
            return f"{round(v)}{suffix}" if abs(v - round(v)) < 0.01 else f"{v:.1f}{suffix}"
    return f"{x:.0f}"


def plot_calibration(run: CalibrationRun, path: str | Path) -> Path:
    """Draw the simulated distributions against the published points and tiers into one PNG.

    Left: concentration curve (share of streams held by the top x% of creators, log x) with the
    published points. Middle: works by annual plays in the Luminate tiers (rescaled) vs published.
    Right: the income survival function on log-log axes with the published tier slopes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    streams = np.sort(run.creator_streams[run.ever_active])[::-1]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))

    ax = axes[0]
    x = np.arange(1, streams.size + 1) / streams.size
    ax.plot(x * 100, np.cumsum(streams) / streams.sum() * 100, label="simulated", color="C0")
    points = [(1.0, 90.0, "top 1%: 90% (Alpha Data 2020)"), (10.0, 99.4, "top 10%: 99.4% (Alpha Data 2020)"),
              (0.8, 90.0, "0.8% make 90% (Spotify 2021)"), (3.0, 98.0, "3% make 98% (Deezer 2023)")]
    for i, (px, py, lab) in enumerate(points):
        ax.scatter([px], [py], color=f"C{i + 1}", zorder=3, label=lab)
    ax.set(xscale="log", xlabel="top x% of creators by annual streams", ylabel="% of all streams",
           title="Concentration of streams", ylim=(0, 101))
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[1]
    tiers = tier_table(run)
    pos = np.arange(len(tiers))
    ax.bar(pos - 0.2, tiers["published_share"] * 100, width=0.4, label="Luminate 2024 (tracks)")
    ax.bar(pos + 0.2, tiers["simulated_share"] * 100, width=0.4, label="simulated works (rescaled tiers)")
    ax.set_xticks(pos, tiers["tier"], rotation=45, ha="right", fontsize=8)
    ax.set(yscale="log", ylabel="% of works", xlabel="annual plays (published streams)",
           title=f"Works by annual plays (1 published stream = {_rescale(run):.3g} simulated)")
    ax.legend(fontsize=8)

    ax = axes[2]
    income = np.sort(run.income[run.ever_active])[::-1]
    income = income[income > 0]
    n = int(run.ever_active.sum())
    surv = np.arange(1, income.size + 1) / n
    ax.loglog(income, surv, color="C0", label="simulated creators")
    # the published tiers anchored at the simulated income of the $10k tier's quantile
    x10k = float(np.quantile(run.income[run.ever_active], 1 - _Q_10K))
    tiers_q = np.array([_Q_10K, _Q_100K, _ABOVE_1M / _UPLOADERS])
    ax.loglog(x10k * np.array([1.0, 10.0, 100.0]), tiers_q, "o--", color="C3",
              label=r"Spotify 2024 tiers (\$10k, \$100k, \$1M), anchored at \$10k")
    ax.axhline(_Q_10K, color="grey", linewidth=0.8, linestyle=":")
    ax.axhline(_Q_100K, color="grey", linewidth=0.8, linestyle=":")
    ax.set(xlabel="annual royalties (fee currency)", ylabel="share of creators earning more",
           title=r"Income tail (dotted: quantiles of the \$10k and \$100k tiers)")
    ax.legend(fontsize=8)

    sc = run.scenario
    fig.suptitle(f"Calibration: {n:,} creators, {run.heavy.size:,} listeners, {run.months} months, seed {sc.seed}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
