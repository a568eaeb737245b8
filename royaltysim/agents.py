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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import mesa
import numpy as np
import scipy.sparse as sp

from royaltysim.schemes import Settlement
from royaltysim.schemes import pay as registry_pay

if TYPE_CHECKING:
    from royaltysim.config import Arm, BehaviourConfig, ConsumersConfig, PlatformConfig
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


def _sample_grouped(cum: np.ndarray, group: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling with one categorical distribution per group, in a single searchsorted.

    Args:
        cum: (n_groups, m) cumulative probabilities, last column exactly 1.
        group: (n,) group of each row of ``u``.
        u: (n, ...) uniforms in [0, 1).
    Returns:
        (n, ...) category indices in 0..m-1.
    """
    n_groups, m = cum.shape
    flat = (cum + np.arange(n_groups)[:, None]).ravel()  # strictly increasing across groups
    g = group.reshape(group.shape + (1,) * (u.ndim - 1))
    idx = np.searchsorted(flat, u + g, side="right") - g * m
    return np.clip(idx, 0, m - 1)


def cumulative_probabilities(weights: np.ndarray) -> np.ndarray:
    """Row-wise cumulative probabilities of non-negative weights (a zero row becomes uniform)."""
    w = np.clip(weights, 0.0, None)
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
        return np.asarray(self.streams.sum(axis=1)).ravel()


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

    @property
    def n(self) -> int:
        return int(self.fee.shape[0])

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
        return replace(self, last_picks=None if self.last_picks is None else self.last_picks.copy())

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
        picks = _sample_grouped(creator_cum, self.group, draws.pick)  # (n, k)

        if draws.social is not None and draws.copy is not None:
            deg = np.diff(self.adjacency.indptr)
            social = (draws.social < self.social_share) & (deg > 0)[:, None] & ~is_ai
            rows, cols = np.nonzero(social)
            pair = (draws.copy[rows, cols] * (deg[rows] * k)).astype(np.int64)  # (neighbour, session) pair
            neighbour = self.adjacency.indices[self.adjacency.indptr[rows] + pair // k]
            copied = self.last_picks[neighbour, pair % k]
            ok = copied < n_creators  # a neighbour's AI pick is not copied into a human session
            ok[ok] = active[copied[ok]]
            picks[rows[ok], cols[ok]] = copied[ok]

        ai_rows, ai_cols = np.nonzero(is_ai)
        if n_outputs and ai_rows.size:
            out = _sample_grouped(output_cum, self.segment[ai_rows], draws.pick[ai_rows, ai_cols])
            picks[ai_rows, ai_cols] = n_creators + out
        elif ai_rows.size:  # no AI service: those sessions stay human
            is_ai[:] = False

        # the volume split over sessions as evenly as integers allow: picks are already random, so
        # which session gets the remainder does not matter (and a multinomial would cost 3x the month)
        counts = self.volume[:, None] // k + (np.arange(k)[None, :] < (self.volume % k)[:, None])  # (n, k)
        human = ~is_ai
        human[human] = active[picks[human]]  # nothing to play from a withdrawn catalogue
        users = np.broadcast_to(np.arange(n)[:, None], (n, k))
        streams = sp.csr_matrix(
            (counts[human].astype(float), (users[human], picks[human])), shape=(n, n_creators)
        )
        streams.sum_duplicates()
        ai_counts = np.where(is_ai, counts, 0)
        ai_plays = np.bincount(
            picks[is_ai] - n_creators, weights=counts[is_ai].astype(float), minlength=n_outputs
        )[:n_outputs] if n_outputs else np.zeros(0)
        self.last_picks = np.where(human | is_ai, picks, -1).astype(np.int64)
        self.last_picks[self.last_picks < 0] = n_creators + n_outputs  # "nothing": never copied
        played = np.where(human | is_ai, counts, 0)
        return Listening(streams, ai_plays, ai_counts.sum(axis=1).astype(float), picks, played)

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
        n_creators = creator_style.shape[0]
        style = np.vstack([creator_style, output_style, np.zeros((1, creator_style.shape[1]))])
        quality = np.concatenate(
            [
                np.log(np.maximum(creator_quality, 1e-9)),
                np.full(output_style.shape[0], np.log(max(ai_quality, 1e-9))),
                [0.0],
            ]
        )
        picks = np.where(listening.counts > 0, listening.picks, n_creators + output_style.shape[0])
        match = np.einsum("ukd,ud->uk", style[picks], self.taste)  # (n, k)
        utility = match + quality[picks]
        counts = listening.counts.astype(float)
        total = counts.sum(axis=1)
        ok = total > 0
        per_user = (utility * counts).sum(axis=1)[ok] / total[ok]
        return float(per_user.mean()) if per_user.size else 0.0


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

    @property
    def paid(self) -> float:
        return float(self.human_pay.sum() + self.ai_pay.sum())

    @property
    def margin(self) -> float:
        """Platform margin: what it keeps after royalties and AI serving costs, over revenue."""
        return (self.revenue - self.paid - self.ai_cost) / self.revenue if self.revenue > 0 else 0.0


class Platform(mesa.Agent):
    """Collects fees, keeps its cut, and settles the human and AI pools under the arm's schemes.

    Args:
        model: the model.
        config: platform settings.
        arm: the rules of the two pools.
        attribution: (n_outputs, n_creators) causal scores of the AI's outputs.
        pay: the settlement function (defaults to the scheme registry's ``pay``); tests may swap it.
    """

    def __init__(
        self,
        model: mesa.Model,
        config: PlatformConfig,
        arm: Arm,
        attribution: np.ndarray,
        pay: Callable[..., np.ndarray] = registry_pay,
    ) -> None:
        super().__init__(model)
        self.config = config
        self.arm = arm
        self.attribution = attribution
        self._pay = pay

    def settle(self, listening: Listening, consumers: Consumers, catalogue: Catalogue) -> Statement:
        """Split the month's revenue: platform cut, human pool, AI pool; pay each under its scheme."""
        cfg = self.config
        human = listening.human_streams
        total = human + listening.ai_streams
        ai_frac = np.divide(listening.ai_streams, total, out=np.zeros_like(total), where=total > 0)
        revenue_h = consumers.fee * (1.0 - ai_frac)  # (n_users,) revenue attributed to human listening
        revenue_ai = consumers.fee * ai_frac
        user_pool_h = (1.0 - cfg.platform_cut) * revenue_h
        user_pool_ai = cfg.ai_pool_rate * revenue_ai
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
        )
        human_pay = self._pay(self.arm.human.name, base, **self.arm.human.params)
        ai_settlement = replace(
            base,
            pool=float(user_pool_ai.sum()),
            user_pool=user_pool_ai,
            eligible=catalogue.active & catalogue.opted_in,
        )
        ai_pay = self._pay(self.arm.ai.name, ai_settlement, **self.arm.ai.params)
        # what each creator would earn from the AI pool if everyone took part: the "rate card" that
        # creators who are out (of the market or of training) weigh when deciding to come back in
        everyone = np.ones_like(catalogue.active)
        counterfactual = self._pay(
            self.arm.ai.name,
            replace(
                ai_settlement,
                eligible=everyone,
                training_works=catalogue.training_works,
                training_seconds=catalogue.training_seconds,
            ),
            **self.arm.ai.params,
        )
        ai_streams = float(listening.ai_plays.sum())
        return Statement(
            revenue=float(consumers.fee.sum()),
            human_pool=base.pool,
            ai_pool=ai_settlement.pool,
            human_pay=human_pay,
            ai_pay=ai_pay,
            ai_counterfactual=counterfactual,
            unallocated_human=base.pool - float(human_pay.sum()),
            unallocated_ai=ai_settlement.pool - float(ai_pay.sum()),
            ai_cost=cfg.ai_cost_per_stream * ai_streams,
            ai_stream_share=ai_streams / float(total.sum()) if total.sum() > 0 else 0.0,
            ai_eligible=ai_settlement.eligible,
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
        self.qualities = np.asarray(qualities, dtype=float)
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
    def works(self) -> int:
        return int(self.qualities.size)

    @property
    def appeal(self) -> float:
        """Catalogue appeal: summed quality of works (more works -> more shelf space)."""
        return float(self.qualities.sum())

    @property
    def mean_quality(self) -> float:
        return float(self.qualities.mean()) if self.qualities.size else 0.0

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

    def relative_return(self, statement: Statement) -> float | None:
        """This month's net income relative to what the creator expected (None before an expectation)."""
        if not self.active or self.expected is None:
            return None
        unit = self.model.income_unit
        net = (statement.human_pay[self.index] + statement.ai_pay[self.index]) / unit - self.costs
        floor = self.model.config.metrics.subsistence_line  # keeps tiny earners' ratios finite
        return float(np.clip(net / max(self.expected, floor) - 1.0, -1.0, 2.0))

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
        new = [self.talent * rng.lognormal(0.0, b.work_sigma, n_new)]
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
        added = np.concatenate(new)
        self.new_works = int(added.size)
        self.qualities = np.concatenate([self.qualities, added])
        if self.opted_in:  # opted-in releases join the AI's training set
            self.training_works += added.size
            self.training_seconds += added.size * self.seconds_per_work

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
