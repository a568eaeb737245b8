"""The royalty economy as a Mesa model: :class:`RoyaltyModel`, and the :class:`World` it starts from.

One month (:meth:`RoyaltyModel.step`) reads as a short story: listeners listen, the platform collects
fees and settles the human and AI pools under the arm's schemes (a stream farm's bots and uploads among
them, :mod:`royaltysim.fraud`), creators respond to what they were paid, the AI retrains on the
opted-in catalogue, listeners weigh what the month was worth to them and some leave or join
(:mod:`royaltysim.demand`), and the month's data is collected.

A :class:`World` is everything drawn before the first month -- the creator population (from an
attribution run or fitted to one), styles and talents, the listeners and their social network. It
is built once per seed by :func:`build_world` and shared by every arm of a scenario, so all arms
start from the same world and run on common random numbers (each model's generator gets the same
seed). All randomness flows through seeded ``numpy`` generators: the world's (seeded from the
scenario seed) and the model's own ``self.rng``; nothing touches global random state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import repeat
from operator import attrgetter

import mesa
import networkx as nx
import numpy as np
import scipy.sparse as sp

from attribution.table import AttributionTable
from royaltysim import metrics
from royaltysim.agents import (
    STRATEGIES,
    Catalogue,
    Consumers,
    Creator,
    Listening,
    Platform,
    Statement,
    cumulative_probabilities,
)
from royaltysim.config import Arm, Scenario
from royaltysim.demand import Demand, DemandMonth, listener_utility
from royaltysim.fraud import FraudFarm
from royaltysim.population import (
    CreatorPopulation,
    corpus_population,
    fit_attribution_stats,
    fitted_population,
    with_attribution_noise,
)

__all__ = ["World", "build_world", "Roster", "RoyaltyModel", "CREATOR_COLUMNS"]

#: the creators' table (:attr:`RoyaltyModel.creator_records`): one row per month and creator
CREATOR_COLUMNS = (
    "scheme", "seed", "step", "creator", "active", "opted_in", "strategy", "works", "new_works", "streams",
    "human_pay", "ai_pay", "income", "net_income", "expected_income", "imitation", "true_share",
)

# the world's generator is seeded with (seed, _WORLD_STREAM) so it never overlaps the model's own stream
_WORLD_STREAM = 0x5EED
# injected attribution noise has a stream of its own, so it never shifts the world's other draws
_NOISE_STREAM = 0x401F


@dataclass(frozen=True)
class World:
    """Everything fixed before the first month; shared (read-only) by every arm of a scenario.

    Attributes:
        population: creators, catalogues, attribution and similarity of the AI's outputs.
        consumers: the listener population (models copy its mutable state).
        centroids: (n_segments, style_dim) unit style of each taste segment.
        creator_style: (n_creators, style_dim) unit starting style of each creator.
        output_style: (n_outputs, style_dim) unit style of each AI output.
        qualities: starting quality of each work, per creator.
        talent, outside_option, enjoyment, ai_aversion: (n_creators,) creator traits.
        active: (n_creators,) creators in the market at the start.
        opted_in: (n_creators,) creators in the AI's training set at the start.
        seconds_per_work: (n_creators,) length of a creator's new works.
    """

    population: CreatorPopulation
    consumers: Consumers
    centroids: np.ndarray
    creator_style: np.ndarray
    output_style: np.ndarray
    qualities: tuple[np.ndarray, ...]
    talent: np.ndarray
    outside_option: np.ndarray
    enjoyment: np.ndarray
    ai_aversion: np.ndarray
    active: np.ndarray
    opted_in: np.ndarray
    seconds_per_work: np.ndarray

    @property
    def n_creators(self) -> int:
        return self.population.n_creators


class _Column:
    """A creator attribute as an array indexed by creator, read from a roster's agents on first use."""

    def __init__(self, dtype: type) -> None:
        self.dtype = dtype

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.get = attrgetter(name)

    def __get__(self, roster: Roster | None, owner: type | None = None) -> np.ndarray:
        if roster is None:
            return self  # type: ignore[return-value]
        creators = roster.creators
        # (None, for no expectation yet, becomes NaN)
        values = np.fromiter(map(self.get, creators), self.dtype, len(creators))
        values.flags.writeable = False  # shared by everything that reads the roster
        roster.__dict__[self.name] = values  # later reads find it there, before this descriptor
        return values


class Roster:
    """The creators' state at one moment, as arrays indexed by creator.

    The model's array code reads the agents through a roster instead of looping over them in every
    calculation: each attribute is gathered from the agents once, the first time it is asked for,
    and kept. So a roster describes the creators as they were when its attributes were read: the
    model takes one at the start of a month (what listeners and the platform see) and new ones
    after the creators have responded (the AI's training set, the month's data). The agents stay
    the owners of their state.

    Attributes:
        active, opted_in: bool, in the market / in the AI's training set.
        entered, exited, opted_out, opted_back: bool, this month's events.
        works, new_works, flood_works: int, catalogue size and this month's releases.
        appeal, imitation: summed work quality; pull of the style toward the AI's.
        training_works, training_seconds: what the creator has in the AI's training set.
        expected: adaptive expectation of income (NaN before a creator has one).
        costs, net: spent last month; net income of the month.
        strategy: (object) each creator's strategy.
    """

    active = _Column(bool)
    opted_in = _Column(bool)
    entered = _Column(bool)
    exited = _Column(bool)
    opted_out = _Column(bool)
    opted_back = _Column(bool)
    works = _Column(np.int64)
    new_works = _Column(np.int64)
    flood_works = _Column(np.int64)
    appeal = _Column(float)
    imitation = _Column(float)
    training_works = _Column(float)
    training_seconds = _Column(float)
    expected = _Column(float)
    costs = _Column(float)
    net = _Column(float)
    strategy = _Column(object)

    def __init__(self, creators: list[Creator]) -> None:
        self.creators = creators  # in index order

    @property
    def mean_quality(self) -> np.ndarray:
        """Mean quality of each creator's works (0 for an empty catalogue)."""
        return np.divide(self.appeal, self.works, out=np.zeros_like(self.appeal), where=self.works > 0)

    def playing(self, move: str) -> np.ndarray:
        """Bool, active creators whose strategy includes ``move`` (``flood`` or ``imitate``)."""
        return self.active & np.array([move in s for s in self.strategy.tolist()], dtype=bool)


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def _network(scenario: Scenario, rng: np.random.Generator) -> sp.csr_matrix:
    """The listeners' social network as a symmetric CSR adjacency (built once with networkx)."""
    gen = getattr(nx, scenario.network.generator)
    # n by name: not every generator takes it first (random_regular_graph(d, n))
    graph = gen(n=scenario.consumers.n, **scenario.network.params, seed=int(rng.integers(2**31 - 1)))
    adjacency = nx.to_scipy_sparse_array(graph, nodelist=range(scenario.consumers.n), format="csr", dtype=float)
    return sp.csr_matrix(adjacency)


def build_world(scenario: Scenario, seed: int | None = None, table: AttributionTable | None = None) -> World:
    """Draw the starting world of a scenario.

    Args:
        scenario: the validated scenario.
        seed: overrides ``scenario.seed``.
        table: the attribution table (read from ``scenario.source.run`` when left out).
    """
    seed = scenario.seed if seed is None else seed
    rng = np.random.default_rng([seed, _WORLD_STREAM])
    src = scenario.source
    table = table if table is not None else AttributionTable.load(src.run, outputs=src.outputs)
    real = corpus_population(table, src.causal_method, src.similarity_method, src.reference)
    if src.kind == "corpus":
        population = real
        active = np.ones(population.n_creators, dtype=bool)
    else:
        stats = fit_attribution_stats(real.attribution, real.similarity, real.works, real.seconds, seed=seed)
        population = fitted_population(stats, src.n_creators, rng, n_outputs=src.n_outputs or None)
        population = replace(population, causal_label=f"fitted to {real.causal_label}")
        active = rng.random(population.n_creators) >= src.initially_inactive
        if not active.any():
            active[0] = True

    if src.attribution_snr is not None:
        # its own stream: every SNR level of a sweep sees the same world, only the noise level moves
        noise_rng = np.random.default_rng([seed, _NOISE_STREAM])
        population = with_attribution_noise(population, src.attribution_snr, noise_rng)

    c, b = scenario.consumers, scenario.behaviour
    n = population.n_creators
    centroids = _unit(rng.standard_normal((c.taste_segments, c.style_dim)))
    home = rng.integers(0, c.taste_segments, n)
    noise = c.taste_noise * rng.standard_normal((n, c.style_dim)) / np.sqrt(c.style_dim)
    creator_style = _unit(centroids[home] + noise)
    # an output sounds like the catalogues it is similar to
    weights = np.clip(population.similarity, 0.0, None)
    weights = np.where(weights.sum(axis=1, keepdims=True) > 0, weights, 1.0)
    output_style = _unit(weights @ creator_style)

    talent = rng.lognormal(0.0, b.talent_sigma, n)
    qualities = tuple(
        talent[i] * rng.lognormal(0.0, b.work_sigma, int(max(population.works[i], 1))) for i in range(n)
    )
    outside = rng.lognormal(np.log(max(b.outside_option_median, 1e-12)), b.outside_option_sigma, n)
    enjoyment = rng.lognormal(np.log(max(b.enjoyment_median, 1e-12)), b.enjoyment_sigma, n)
    aversion = rng.lognormal(np.log(max(b.ai_aversion_median, 1e-12)), b.ai_aversion_sigma, n)
    opted_in = rng.random(n) < b.initial_opt_in
    per_work = np.divide(
        population.seconds, population.works, out=np.full(n, b.seconds_per_work), where=population.works > 0
    )

    adjacency = _network(scenario, rng)
    consumers = Consumers.generate(c, scenario.platform, centroids, adjacency, rng)
    return World(
        population=population,
        consumers=consumers,
        centroids=centroids,
        creator_style=creator_style,
        output_style=output_style,
        qualities=qualities,
        talent=talent,
        outside_option=outside,
        enjoyment=enjoyment,
        ai_aversion=aversion,
        active=active,
        opted_in=opted_in,
        seconds_per_work=per_work,
    )


class RoyaltyModel(mesa.Model):
    """The royalty economy under one arm (one human-pool rule and one AI-pool rule).

    Args:
        scenario: the validated scenario.
        arm: the arm to run (an :class:`~royaltysim.config.Arm`, or its label); default the first.
        seed: overrides ``scenario.seed``; the model's generator is seeded with it.
        world: a prebuilt world (shared by arms); built from the scenario when left out.
        table: the attribution table, if already loaded (only used when building the world).
    """

    def __init__(
        self,
        scenario: Scenario,
        arm: Arm | str | None = None,
        *,
        seed: int | None = None,
        world: World | None = None,
        table: AttributionTable | None = None,
    ) -> None:
        seed = scenario.seed if seed is None else seed
        super().__init__(rng=seed)
        # not `self.scenario`: Mesa >= 3.5 keeps its own Scenario object under that name
        self.config = scenario
        self.seed = seed
        if arm is None or isinstance(arm, str):
            by_label = {a.label: a for a in scenario.schemes}
            if arm is not None and arm not in by_label:
                raise ValueError(f"no arm labelled {arm!r} in the scenario; labels: {list(by_label)}")
            arm = by_label[arm] if arm is not None else scenario.schemes[0]
        self.arm = arm
        self.world = world if world is not None else build_world(scenario, seed, table)
        w = self.world
        pop = w.population
        b = scenario.behaviour

        self.strategies = [
            s for s in STRATEGIES if ("flood" not in s or b.flooding) and ("imitate" not in s or b.imitation)
        ]
        self.consumers = w.consumers.copy()
        c = scenario.consumers
        # premium listeners are those paying the premium fee (the rest bring ad revenue)
        self.demand = Demand(
            scenario.demand, w.consumers.fee, w.consumers.fee == c.premium_fee, w.consumers.segment, seed
        )
        self.consumers.subscribed = self.demand.subscribed
        fraud = scenario.fraud
        farm = None
        if fraud.on:
            bot_fee = c.premium_fee if fraud.bot_fee is None else fraud.bot_fee
            farm = FraudFarm(fraud, float(w.consumers.volume.sum()), bot_fee)
        self.platform = Platform(self, scenario.platform, arm, pop.attribution, reference=pop.reference, fraud=farm)
        self.creators: list[Creator] = [
            Creator(
                self,
                index=i,
                name=str(pop.names[i]),
                qualities=w.qualities[i],
                seconds_per_work=float(w.seconds_per_work[i]),
                talent=float(w.talent[i]),
                outside_option=float(w.outside_option[i]),
                enjoyment=float(w.enjoyment[i]),
                ai_aversion=float(w.ai_aversion[i]),
                active=bool(w.active[i]),
                opted_in=bool(w.opted_in[i]),
            )
            for i in range(pop.n_creators)
        ]
        # money unit: month-0 pool per creator if all listening were human (independent of the arm)
        pool0 = (1.0 - scenario.platform.platform_cut) * float(self.consumers.charged.sum())
        self.income_unit = pool0 / pop.n_creators if pool0 > 0 else 1.0
        # imitators move toward the centre of the AI's output styles
        self.ai_centroid = _unit(w.output_style.mean(axis=0))
        # listeners' choice among the AI's outputs: their styles never change
        out_logits = c.taste_strength * (w.centroids @ w.output_style.T)  # (n_segments, n_outputs)
        self._output_cum = cumulative_probabilities(np.exp(out_logits - out_logits.max(axis=1, keepdims=True)))
        self._output_cum.flags.writeable = False
        # an imitator's catalogue looks like the catalogue most similar to each output
        self._closest_similarity = pop.similarity.max(axis=1, keepdims=True)  # (n_outputs, 1)
        self._quality_ref = float(np.mean(w.talent)) or 1.0  # welfare's quality scale
        self.ai_quality = self._ai_quality()
        self.strategy_returns: dict[str, float] = {}
        self.human_rate = 0.0
        self._style_memo: tuple[np.ndarray, np.ndarray] | None = None  # (imitation, styles), see _styles
        self.records: list[dict] = []
        # the creators' table is kept as one block of columns a month, made into rows when asked for
        self._creator_names = [c_.name for c_ in self.creators]
        self._creator_blocks: list[tuple[int, tuple]] = []
        self._creator_rows: list[dict] = []

    # ------------------------------------------------------------------ the month
    def step(self) -> None:
        """One month: listen, settle, respond, retrain the AI, listeners stay or go, collect."""
        market = self.roster()  # the creators as listeners and the platform find them this month
        heard = self.ai_quality  # the AI the listeners heard this month
        listening = self.consumers.listen(*self._choices(market), market.active, heard, self.rng)
        statement = self.platform.settle(listening, self.consumers, self._catalogue(market))
        self._read_market(statement, market)
        self.agents_by_type[Creator].shuffle_do("respond", statement)
        self.ai_quality = self._ai_quality()  # the AI retrains on the opted-in catalogue
        demand = self._listeners_decide(listening, market, heard)  # some listeners leave, others join
        self._collect(listening, statement, demand)

    # ------------------------------------------------------------------ views of the creators
    def roster(self) -> Roster:
        """The creators' state now, as arrays indexed by creator."""
        return Roster(self.creators)

    def _styles(self, imitation: np.ndarray) -> np.ndarray:
        """(n_creators, style_dim) current styles: own style pulled toward the AI's by imitation (read-only)."""
        # recomputed only when someone's imitation has moved (without imitators it never does)
        if self._style_memo is None or not np.array_equal(self._style_memo[0], imitation):
            m = imitation[:, None]
            styles = _unit((1.0 - m) * self.world.creator_style + m * self.ai_centroid[None, :])
            styles.flags.writeable = False
            self._style_memo = (imitation, styles)
        return self._style_memo[1]

    def _choices(self, market: Roster) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative choice probabilities of creators per (segment, heavy) group and of AI outputs per segment."""
        c = self.config.consumers
        appeal = np.where(market.active, market.appeal, 0.0)
        styles = self._styles(market.imitation)
        logits = c.taste_strength * (self.world.centroids @ styles.T)  # (n_segments, n_creators)
        base = np.exp(logits - logits.max(axis=1, keepdims=True))
        light = base * appeal ** c.light_popularity_exponent
        heavy = base * appeal ** c.heavy_popularity_exponent
        per_group = np.stack([light, heavy], axis=1).reshape(-1, appeal.size)  # row = segment * 2 + heavy
        return cumulative_probabilities(per_group), self._output_cum

    def _similarity(self, imitation: np.ndarray) -> np.ndarray:
        """Similarity of outputs to catalogues now: an imitator looks like the most similar catalogue."""
        m = imitation[None, :]
        return (1.0 - m) * self.world.population.similarity + m * self._closest_similarity

    def _catalogue(self, market: Roster) -> Catalogue:
        return Catalogue(
            works=market.works.astype(float),
            training_works=market.training_works,
            training_seconds=market.training_seconds,
            active=market.active,
            opted_in=market.opted_in,
            similarity=self._similarity(market.imitation),
        )

    def _ai_quality(self) -> float:
        """AI quality in [0, 1]: the opted-in share of training value, to the scenario's elasticity.

        Training value is that of the starting catalogues (ground-truth leave-one-out value, or
        seconds of music): new releases join the training set (and training-share payouts) but
        are not assumed to make the model better.
        """
        value = self.world.population.training_value
        total = value.sum()
        if total <= 0:
            return 1.0
        share = sum(value[self.roster().opted_in]) / total  # (added one by one, in creator order)
        return float(share ** self.config.platform.ai_quality_elasticity)

    def _read_market(self, statement: Statement, market: Roster) -> None:
        """What creators learn from the month's statements before they decide.

        * ``strategy_returns`` ("trade talk"): for each strategy, the mean over active creators who
          played it and already hold an expectation of their relative return this month,
          ``net / max(expected, subsistence_line) - 1`` clipped to [-1, 2] (the floor keeps tiny
          earners' ratios finite), where ``net`` is this month's income less last month's costs.
          Comparing returns, not incomes, keeps talent out of it: a star and a beginner who both
          gain 10% from flooding report the same. Strategies are listed in the order of the first
          creator who played each; strategies nobody played are missing.
        * ``human_rate``: human-pool pay per unit of catalogue appeal among active creators, which
          creators outside the market use to judge coming back (:meth:`reentry_estimate`).
        """
        floor = self.config.metrics.subsistence_line
        counted = market.active & ~np.isnan(market.expected)
        pay = statement.human_pay[counted] + statement.ai_pay[counted]
        net = pay / self.income_unit - market.costs[counted]
        expected = market.expected[counted]
        # np.where, not np.maximum: Python's max(expected, floor), which keeps expected unless floor is larger
        returns = np.clip(net / np.where(floor > expected, floor, expected) - 1.0, -1.0, 2.0)
        played = market.strategy[counted]
        self.strategy_returns = {s: float(returns[played == s].mean()) for s in dict.fromkeys(played.tolist())}
        appeal = sum(market.appeal[market.active].tolist())
        # both sums add one creator at a time, in creator order
        self.human_rate = sum(statement.human_pay[market.active]) / appeal if appeal > 0 else 0.0

    def reentry_estimate(self, index: int, statement: Statement) -> float:
        """What an inactive creator expects to earn on coming back, in income units.

        :attr:`human_rate` times the creator's own catalogue appeal, plus their AI "rate card"
        payout (:attr:`Statement.ai_counterfactual`).
        """
        c = self.creators[index]
        return (self.human_rate * c.appeal + statement.ai_counterfactual[index]) / self.income_unit

    def _listeners_decide(self, listening: Listening, market: Roster, ai_quality: float) -> DemandMonth:
        """What the month was worth to each listener in money; with ``demand.enabled``, who leaves and who joins.

        Utility is that of ``consumer_welfare`` (taste match + log relative quality), per listener, of the
        catalogues and the AI as they were when played (``market``, ``ai_quality``): the first month is then
        the same in every arm of a seed, and so is each listener's reference point (:class:`Demand`).
        """
        w = self.world
        style = np.vstack([self._styles(market.imitation), w.output_style])
        quality = np.append(market.mean_quality / self._quality_ref, np.full(w.output_style.shape[0], ai_quality))
        log_quality = np.log(np.maximum(quality, 1e-9))
        utility, streams = listener_utility(listening.picks, listening.counts, w.consumers.taste, style, log_quality)
        ai_share = np.divide(listening.ai_streams, streams, out=np.zeros_like(streams), where=streams > 0)
        month = self.demand.observe(utility, ai_share, w.consumers.ai_affinity * ai_quality)
        month = self.demand.decide(month)
        self.consumers.subscribed = self.demand.subscribed  # next month's subscribers
        return month

    # ------------------------------------------------------------------ data
    @property
    def creator_records(self) -> list[dict]:
        """The creators' table so far: one row (a dict of :data:`CREATOR_COLUMNS`) per month and creator.

        Collected as a block of columns a month and made into rows here, when asked for: the same
        list grows as the model steps on.
        """
        label, seed, names = self.arm.label, self.seed, self._creator_names
        for step, columns in self._creator_blocks:
            rows = zip(repeat(label), repeat(seed), repeat(step), names, *(c.tolist() for c in columns))
            self._creator_rows.extend(map(dict, map(zip, repeat(CREATOR_COLUMNS), rows)))
        self._creator_blocks.clear()
        return self._creator_rows

    def _collect(self, listening: Listening, st: Statement, demand: DemandMonth) -> None:
        """Append the month's row to :attr:`records` and its creators' rows to :attr:`creator_records`."""
        after = self.roster()  # the creators as they have responded
        mcfg = self.config.metrics
        unit = self.income_unit
        income = (st.human_pay + st.ai_pay) / unit
        active = after.active
        # inequality is over the creators who were in the market when the month was settled
        was_active = (active | after.exited) & ~after.entered
        paid_to = income[was_active] if was_active.any() else np.zeros(1)
        paid_pos = np.maximum(paid_to, 0.0)
        pop = self.world.population
        plays = listening.ai_plays
        reference = plays @ pop.reference if plays.sum() > 0 else pop.reference.mean(axis=0)
        # misallocation compares the rule with true contribution among those it could pay this month
        # (active and opted in), so exits and opt-outs are not counted as the rule's error
        true = np.where(st.ai_eligible, reference, 0.0)
        welfare = self.consumers.welfare(
            listening,
            self._styles(after.imitation),
            after.mean_quality / self._quality_ref,
            self.world.output_style,
            self.ai_quality,
        )
        creator_surplus = st.paid - float(after.costs.sum()) * unit  # $: royalties less this month's spending
        self.records.append(
            {
                "scheme": self.arm.label,
                "seed": self.seed,
                "step": self.steps,
                # the schemes in force this month (an arm's schedule may change them)
                "human_scheme": self.arm.rules_at(self.steps)[0].name,
                "ai_scheme": self.arm.rules_at(self.steps)[1].name,
                "revenue": st.revenue,
                "human_pool": st.human_pool,
                "ai_pool": st.ai_pool,
                "paid": st.paid,
                # money a scheme found no basis to pay (e.g. a similarity threshold no output reaches): it stays
                # with the platform, so it is reported per pool rather than left to show up in the margin
                "unallocated": st.unallocated_human + st.unallocated_ai,
                "unallocated_human": st.unallocated_human,
                "unallocated_ai": st.unallocated_ai,
                "unallocated_human_share": st.unallocated_human / st.human_pool if st.human_pool > 0 else 0.0,
                "unallocated_ai_share": st.unallocated_ai / st.ai_pool if st.ai_pool > 0 else 0.0,
                "ai_cost": st.ai_cost,
                "platform_margin": st.margin,
                # money of the month in $: listeners' surplus (value less price), the platform's profit, creators'
                # royalties less what they spent on new works; welfare is the three together (royaltysim.demand)
                "subscribers": demand.subscribers,
                "joins": demand.joins,
                "churns": demand.churns,
                "consumer_value": demand.value,
                "consumer_surplus": demand.consumer_surplus,
                "platform_profit": st.profit,
                "creator_surplus": creator_surplus,
                "total_welfare": demand.consumer_surplus + st.profit + creator_surplus,
                # the stream farm (royaltysim.fraud): what its uploads took from each pool
                "fraud_streams": st.fraud_streams,
                "demonetised_streams": st.demonetised_streams,
                "fraud_uploads": st.fraud_uploads,
                "bot_fees": st.bot_fees,
                "fraud_human_paid": st.fraud_human_paid,
                "fraud_ai_paid": st.fraud_ai_paid,
                "fraud_human_share": st.fraud_human_paid / st.human_pool if st.human_pool > 0 else 0.0,
                "fraud_ai_share": st.fraud_ai_paid / st.ai_pool if st.ai_pool > 0 else 0.0,
                "fraud_profit": st.fraud_paid - st.bot_fees,
                # Shapley Royalty Share's permutation-sampling error (royaltysim.shapley.sampling_errors)
                "ai_shapley_se": st.ai_shapley_se,
                "ai_shapley_permutations": st.ai_shapley_permutations,
                "ai_quality": self.ai_quality,
                "ai_stream_share": st.ai_stream_share,
                "consumer_welfare": welfare,
                "active_creators": np.count_nonzero(active),
                "entries": np.count_nonzero(after.entered),
                "exits": np.count_nonzero(after.exited),
                "opt_outs": np.count_nonzero(after.opted_out),
                "opt_ins": np.count_nonzero(after.opted_back),
                "opted_in": np.count_nonzero(after.opted_in),
                "new_works": int(after.new_works.sum()),
                "flood_works": int(after.flood_works.sum()),
                "works": int(after.works[active].sum()),
                "flooders": np.count_nonzero(after.playing("flood")),
                "imitators": np.count_nonzero(after.playing("imitate")),
                "imitation_drift": float(after.imitation[active].mean()) if active.any() else 0.0,
                "gini": metrics.gini(paid_pos),
                "top1_share": metrics.top_share(paid_pos, 0.01),
                "top10_share": metrics.top_share(paid_pos, 0.10),
                "theil": metrics.theil(paid_pos),
                "atkinson": metrics.atkinson(paid_pos, mcfg.atkinson_epsilon),
                "share_below_line": metrics.share_below(paid_to, mcfg.subsistence_line),
                "hhi": metrics.hhi(paid_pos),
                "ai_misallocation": metrics.misallocation(st.ai_pay, true),
                "ai_rank_agreement": metrics.rank_agreement(st.ai_pay, true),
                "reference": pop.reference_label,
                "causal_method": pop.causal_label,
                **{f"return_{s}": self.strategy_returns.get(s, float("nan")) for s in self.strategies},
            }
        )
        true_total = true.sum()
        share = true / true_total if true_total > 0 else np.zeros_like(true)
        # in CREATOR_COLUMNS order after scheme, seed, step and creator
        self._creator_blocks.append(
            (
                self.steps,
                (
                    active, after.opted_in, after.strategy, after.works, after.new_works,
                    listening.creator_streams, st.human_pay, st.ai_pay, income, after.net, after.expected,
                    after.imitation, share,
                ),
            )
        )
