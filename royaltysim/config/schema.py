"""The scenario schema: the pydantic models a YAML scenario becomes, with every default of the economy.

Each default sits next to a comment that says where it comes from (``reference/streaming-facts.md``, the
calibration of :mod:`royaltysim.calibration`, or a stated modelling assumption); ``docs/parameters.md``
tables them all. Money is measured in **income units** (see :mod:`royaltysim.config`).

* the attribution source: :class:`CorpusSource` (the run's creators) or :class:`FittedSource` (a synthetic
  population fitted to the run);
* the world: :class:`ConsumersConfig`, :class:`NetworkConfig`, :class:`PlatformConfig`,
  :class:`BehaviourConfig`, :class:`MetricsConfig`;
* the policies compared: :class:`SchemeSpec`, :class:`AiPoolTerms`, :class:`Phase`, :class:`Arm`, and
  :class:`CompareSpec` (what answers the question);
* :class:`Scenario`, the whole.

The models check each value on its own and a few fields against each other; checks against the live
registries and the attribution run are in :mod:`~royaltysim.config.checks`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from royaltysim.demand import DemandConfig
from royaltysim.fit import FitSpec
from royaltysim.fraud import FraudConfig
from royaltysim.platform_choice import PlatformChoiceSpec
from royaltysim.sensitivity import SensitivitySpec
from royaltysim.sweep import SweepSpec


class _Strict(BaseModel):
    # inf and NaN are never a meaningful setting (a fee of .inf, a spread of .nan): refused like any bad value
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --------------------------------------------------------------------------- attribution source


class _SourceBase(_Strict):
    # relative folders are looked up next to the scenario file, then in the cwd, then in the repository
    run: Path = Field(Path("runs/default"), description="attribution run folder")
    # best: the method `royaltysim attribution evaluate` found most faithful at creator level on the run
    # (RUN/evaluation/best_method.yaml); a run without an evaluation falls back to trak, and the report says so
    causal_method: str = Field(
        "best", description="causal TDA method of the run used for `causal` payouts; best = the run's evaluated best"
    )
    similarity_method: str = Field("sim_embedding", description="similarity method used for `similarity` payouts")
    # the AI catalogue: the build's generated outputs, the pieces scored after the build with
    # `royaltysim attribution score RUN PIECE.mid` (RUN/scored/), or both; their scores reach the AI pool alike
    outputs: Literal["build", "scored", "all"] = Field(
        "build", description="AI catalogue: the build's outputs (build), pieces scored later (scored), or both (all)"
    )
    # what counts as "true contribution" (payouts are compared with it); auto = the run's per-output
    # leave-one-creator-out ground truth if it has one, else its held-out value, else its TRAK shares
    # loco_outputs_net: the leave-one-creator-out drop minus that of its matched random control (the same training
    # events of other creators left out; ground truth with `loco.controls`): what a creator's music did beyond
    # removing that much music
    reference: Literal["auto", "loco_outputs", "loco_outputs_net", "loco_heldout", "causal"] = Field(
        "auto", description="true-contribution reference: auto, loco_outputs, loco_outputs_net, loco_heldout or causal"
    )
    # pay causal royalties on the true contribution plus noise at this signal-to-noise ratio (per output across
    # creators, var(truth) / var(noise); `royaltysim attribution evaluate` measures the same ratio for each real
    # method); None = pay on the causal method's own scores
    attribution_snr: float | None = Field(
        None, gt=0.0, description="pay causal royalties on the truth plus noise at this signal-to-noise ratio"
    )


class CorpusSource(_SourceBase):
    """Creators are the attribution run's creators; payouts use the run's real scores."""

    kind: Literal["corpus"] = "corpus"


class FittedSource(_SourceBase):
    """A synthetic creator population whose attribution statistics are fitted to a real run."""

    kind: Literal["fitted"] = "fitted"
    n_creators: int = Field(1000, ge=2, le=200_000)
    # outputs of the synthetic AI service; 0 keeps the run's number of generated pieces
    n_outputs: int = Field(0, ge=0, le=100_000)
    # share of the population that starts outside the market (potential entrants)
    initially_inactive: float = Field(0.2, ge=0.0, lt=1.0)


Source = Annotated[CorpusSource | FittedSource, Field(discriminator="kind")]


# --------------------------------------------------------------------------- the world


class ConsumersConfig(_Strict):
    """Listeners: a vectorised population (see :class:`royaltysim.agents.Consumers`)."""

    n: int = Field(10_000, ge=10, le=10_000_000, description="listeners simulated")
    # Spotify 2024: ~263M premium subscribers of ~675M monthly users (~40%); the rest are ad-supported.
    premium_share: float = Field(0.40, ge=0.0, le=1.0)
    # Spotify 2024 premium ARPU, ~EUR 4.85 a month: family, student and regional prices pull it well below
    # the US list price ($10.99). With the ad revenue below and ~480 streams a month this gives a payout
    # of ~$0.0032 per stream (streaming-facts.md: $0.003-0.005)
    premium_fee: float = Field(4.85, ge=0.0)
    # ad revenue per ad-supported user and month: ~EUR 1.9bn/yr over ~400M ad users (assumption from
    # Spotify 2024 annual figures). `royaltysim calibrate` checks the payout per stream it gives: $0.0032
    # (in $0.003-0.005) and a platform cut of exactly 30%; no published fact pins ad revenue on its own
    ad_revenue: float = Field(0.40, ge=0.0)
    # streaming-facts.md: a typical listener plays 400-600 tracks/month; heavy vs light split is an
    # assumption chosen so the mean is ~480 (0.2*1200 + 0.8*300); `royaltysim calibrate` measures 480
    heavy_share: float = Field(0.20, ge=0.0, le=1.0)
    heavy_streams: float = Field(1200.0, gt=0.0)
    light_streams: float = Field(300.0, gt=0.0)
    volume_sigma: float = Field(0.5, ge=0.0, le=3.0, description="lognormal spread of volume within a class")
    # listening choices per user and month ("sessions"); the volume is split over them. A scale-down of
    # 400-600 track choices that keeps the per-month cost at O(n_users * sessions)
    sessions: int = Field(30, ge=1, le=1000)
    # taste: users belong to segments (genres) with centroid style vectors; personal taste = centroid + noise
    taste_segments: int = Field(8, ge=1, le=1000)
    style_dim: int = Field(8, ge=2, le=256)
    taste_noise: float = Field(0.5, ge=0.0)
    taste_strength: float = Field(3.0, ge=0.0, description="how strongly style match drives choice (logit scale)")
    # streaming-facts.md: heavy listeners play artists ~0.83x as popular as light listeners do. Light
    # listeners follow catalogue appeal one for one (the reference); heavy listeners' flatter response is
    # calibrated (issue 6, `royaltysim calibrate`): 0.87 gives 0.83-0.86 at 20k creators (seeds 0-3);
    # 0.85 gave 0.79 and 0.9 gave 0.87 (seed 0)
    light_popularity_exponent: float = Field(1.0, ge=0.0)
    heavy_popularity_exponent: float = Field(0.87, ge=0.0)
    # share of sessions that copy a neighbour's pick of last month (word of mouth, cumulative advantage)
    social_share: float = Field(0.3, ge=0.0, le=1.0)


class NetworkConfig(_Strict):
    """The listeners' social network: a networkx generator named with its parameters."""

    generator: str = "barabasi_albert_graph"
    params: dict[str, Any] = Field(default_factory=lambda: {"m": 3})


class PlatformConfig(_Strict):
    """The streaming platform and its AI music service."""

    # streaming-facts.md: the platform keeps ~30% before the royalty pool (pool ~70%)
    platform_cut: float = Field(0.30, ge=0.0, le=1.0)
    # share of listening that goes to AI tracks when the AI is trained on every catalogue (assumption)
    ai_listening_share: float = Field(0.10, ge=0.0, le=0.99)
    # concentration of the Beta distribution of users' AI affinity (higher: everyone alike)
    ai_affinity_concentration: float = Field(2.0, gt=0.0)
    # share of AI-attributed revenue paid into the AI royalty pool (a licensing-deal parameter; the human
    # pool gets 1 - platform_cut of human-attributed revenue)
    ai_pool_rate: float = Field(0.50, ge=0.0, le=1.0)
    # AI quality = (opted-in share of training value) ** elasticity; 0 makes quality independent of opt-outs
    ai_quality_elasticity: float = Field(1.0, ge=0.0)
    # AI serving cost per AI stream in $ (assumption: a few times below the payout per stream)
    ai_cost_per_stream: float = Field(0.0005, ge=0.0)


class BehaviourConfig(_Strict):
    """How creators decide. Money is in income units (month-0 pool / number of creators)."""

    # catalogue quality: talent ~ lognormal(0, talent_sigma); a work's quality = talent * lognormal(0, work_sigma).
    # Calibrated (issue 6, `royaltysim calibrate`) to the concentration of streams: top 1% of creators
    # ~90% and top 10% 99.4% (Alpha Data 2020), 3% make 98% (Deezer 2023), income-tail slope ~0.8
    # (Spotify 2024 tiers). 0.8 gave a top 1% share of 14%; 3.7 gives 90-95% at 20k creators (seeds 0-3)
    talent_sigma: float = Field(3.7, ge=0.0)
    # within a catalogue, hits and misses: calibrated to Luminate 2024 (~87% of tracks <= 1,000 plays a
    # year, thresholds rescaled by streams per work): 0.3 gave 75%, 2.2 gives 86-89% (seeds 0-3)
    work_sigma: float = Field(2.2, ge=0.0)
    # adaptive expectations: E <- (1 - w) E + w * income
    expectation_weight: float = Field(0.3, gt=0.0, le=1.0)
    # outside option (what the time would earn elsewhere) ~ lognormal(median, sigma); enjoyment of making
    # music offsets it (assumption; no published figure). With the calibrated talent spread the median
    # creator earns ~0 units, and only ~31% of near-zero earners prefer staying: the calibration economy
    # loses 56% of its 20k creators in 12 months (29% with the pre-calibration talent spread). A churn
    # figure would calibrate these four values (docs/parameters.md, "Left open")
    outside_option_median: float = Field(0.6, ge=0.0)
    outside_option_sigma: float = Field(1.0, ge=0.0)
    enjoyment_median: float = Field(0.3, ge=0.0)
    enjoyment_sigma: float = Field(1.0, ge=0.0)
    # monthly probability of acting on a decision to exit / re-enter (frictions)
    exit_rate: float = Field(0.15, ge=0.0, le=1.0)
    reentry_rate: float = Field(0.05, ge=0.0, le=1.0)
    # new works per active creator and month at break-even; scaled by expected marginal return / cost
    release_rate: float = Field(0.3, ge=0.0)
    max_release_multiplier: float = Field(4.0, ge=0.0)
    cost_per_work: float = Field(0.1, ge=0.0)
    seconds_per_work: float = Field(120.0, gt=0.0, description="fallback length of a new work (s)")
    # strategies: flooding = release `flood_batch` cheap, low-quality works a month
    flooding: bool = False
    flood_batch: int = Field(10, ge=1)
    flood_cost_factor: float = Field(0.05, ge=0.0, description="cost of a flood work / cost_per_work")
    flood_quality: float = Field(0.1, ge=0.0, description="quality of a flood work / talent")
    # imitation = move style toward the AI's outputs at `imitation_speed` a month (decays at half that)
    imitation: bool = False
    imitation_speed: float = Field(0.15, ge=0.0, le=1.0)
    imitation_cost: float = Field(0.02, ge=0.0, description="effort cost per month of imitating")
    # strategy learning ("trade talk"): each month a creator revises with this probability, choosing by
    # logit over what each strategy earned its players last month relative to their expectations
    # (temperature in units of that relative return); `exploration` is the chance of trying one at random
    strategy_revision_rate: float = Field(0.25, ge=0.0, le=1.0)
    strategy_temperature: float = Field(0.05, gt=0.0)
    exploration: float = Field(0.05, ge=0.0, le=1.0)
    # AI-training opt-in: opt in while expected AI income >= aversion ~ lognormal(median, sigma)
    opt_out: bool = False
    initial_opt_in: float = Field(1.0, ge=0.0, le=1.0)
    ai_aversion_median: float = Field(0.05, ge=0.0)
    ai_aversion_sigma: float = Field(1.5, ge=0.0)
    opt_revision_rate: float = Field(0.2, ge=0.0, le=1.0)


class MetricsConfig(_Strict):
    """Parameters of the reported measures."""

    subsistence_line: float = Field(0.1, ge=0.0, description="income units a month; share below it is reported")
    atkinson_epsilon: float = Field(0.5, ge=0.0)


# --------------------------------------------------------------------------- schemes


class SchemeSpec(_Strict):
    """One royalty rule from the registry in :mod:`royaltysim.schemes`, with its parameters."""

    name: str = "pro_rata"
    params: dict[str, Any] = Field(default_factory=dict)


class AiPoolTerms(_Strict):
    """What the AI service pays into the AI pool each month: a licence's money terms (GEMA-style).

    Each listener's month pays ``max(rate * income, minimum_per_play * AI plays)``, ``income`` the AI's
    share of what the listener paid (``gross``) or that less the AI's serving cost of the listener's AI
    streams (``net``, never below 0). An arm without terms pays ``platform.ai_pool_rate`` of the gross
    income and no minimum. The minimum comes out of the platform's margin.
    """

    # GEMA's AI licence (2024) reportedly asks 30% of the AI service's net income (streaming-facts.md)
    rate: float = Field(0.30, ge=0.0, le=1.0, description="share of the AI income paid into the AI pool")
    income: Literal["gross", "net"] = Field("net", description="gross AI income, or net of the AI's serving cost")
    # the minimum royalty in $ per AI stream; GEMA publishes no figure (0: no minimum)
    minimum_per_play: float = Field(0.0, ge=0.0, description="minimum royalty per AI stream ($)")


class Phase(_Strict):
    """From month ``from_month`` on, an arm pays a pool (or both) under other schemes."""

    # months count from 1, as the `step` column of model.parquet does
    from_month: int = Field(ge=2, description="first month (1 = the first simulated) paid under these schemes")
    human: SchemeSpec | None = None
    ai: SchemeSpec | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Phase:
        if self.human is None and self.ai is None:
            raise ValueError("a phase changes the human pool's scheme, the AI pool's, or both: give human:, ai: or both")
        return self


class Arm(_Strict):
    """One policy compared in a scenario: a rule for the human pool and one for the AI pool.

    ``schedule`` changes the rules over time: each phase, from its ``from_month`` on, replaces the scheme
    of the pool(s) it names (e.g. pro-rata until month 12, then user-centric from month 13). ``ai_pool``
    sets the money the AI service pays into the AI pool (:class:`AiPoolTerms`).
    """

    label: str = Field(min_length=1)
    human: SchemeSpec = Field(default_factory=SchemeSpec)
    ai: SchemeSpec = Field(default_factory=SchemeSpec)
    schedule: list[Phase] = Field(default_factory=list, description="later phases, each from a month on")
    ai_pool: AiPoolTerms | None = Field(None, description="the AI licence's money terms; default platform.ai_pool_rate")

    @field_validator("schedule")
    @classmethod
    def _months_ordered(cls, phases: list[Phase]) -> list[Phase]:
        months = [p.from_month for p in phases]
        if any(b <= a for a, b in zip(months, months[1:])):
            raise ValueError(f"the phases' from_month must increase strictly, phase by phase; got {months}")
        return phases

    def rules_at(self, month: int) -> tuple[SchemeSpec, SchemeSpec]:
        """The (human, ai) schemes in force in ``month`` (1 = the first simulated month)."""
        human, ai = self.human, self.ai
        for phase in self.schedule:
            if phase.from_month > month:
                break
            human, ai = phase.human or human, phase.ai or ai
        return human, ai


class CompareSpec(_Strict):
    """What answers the scenario's question: the arm the others are compared with, and the measures.

    The run report leads with each measure's paired difference (every arm minus the reference arm, seed by
    seed) and its confidence interval over the seeds.
    """

    # None: the first arm in `schemes`
    reference: str | None = Field(None, min_length=1, description="label of the arm every other arm is compared with")
    # run-level measures of royaltysim.measures.MEASURES; empty: gini_income_run, top10_share_income_run,
    # ai_misallocation_month_mean, creators_active_end
    measures: list[str] = Field(default_factory=list, description="measures that answer the question")

    @field_validator("measures")
    @classmethod
    def _known_measures(cls, names: list[str]) -> list[str]:
        from royaltysim.measures import MEASURES

        unknown = [n for n in names if n not in MEASURES]
        if unknown:
            raise ValueError(f"unknown measure(s) {unknown}; measures: {', '.join(MEASURES)}")
        return names


class Scenario(_Strict):
    """A whole scenario: the question, the world, and the policies (arms) compared."""

    question: str = Field(min_length=1)
    seed: int = Field(0, ge=0)
    # replicate seeds `royaltysim run` runs: a count (seed, seed + 1, ...) or a list of seeds. Five keep the
    # baseline under a minute on 2 cores and give paired intervals (t with 4 degrees of freedom)
    seeds: Annotated[int, Field(ge=1, le=1000)] | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)] = 5
    compare: CompareSpec = Field(default_factory=CompareSpec)
    steps: int = Field(24, ge=1, le=10_000, description="months simulated")
    source: Source = Field(default_factory=CorpusSource)
    consumers: ConsumersConfig = Field(default_factory=ConsumersConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    platform: PlatformConfig = Field(default_factory=PlatformConfig)
    behaviour: BehaviourConfig = Field(default_factory=BehaviourConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    # a stream farm of AI-generated uploads (royaltysim/fraud.py); off unless fraud.fake_stream_share > 0
    fraud: FraudConfig = Field(default_factory=FraudConfig)
    # listeners join and churn (royaltysim/demand.py); off unless demand.enabled
    demand: DemandConfig = Field(default_factory=DemandConfig)
    schemes: list[Arm] = Field(min_length=1)
    # optional parameter sweep (grid / random samples x replicate seeds), run by `royaltysim sweep`
    sweep: SweepSpec | None = None
    # optional global sensitivity analysis (Sobol or Morris over parameter ranges), run by `royaltysim sensitivity`
    sensitivity: SensitivitySpec | None = None
    # optional parameters to estimate from the published facts, by `royaltysim calibrate --fit` (royaltysim/fit.py)
    fit: FitSpec | None = None
    # optional: the platform's choice of a rate (profit-maximising vs welfare-maximising), by `royaltysim choose`
    platform_choice: PlatformChoiceSpec | None = None

    @field_validator("schemes")
    @classmethod
    def _unique_labels(cls, arms: list[Arm]) -> list[Arm]:
        labels = [a.label for a in arms]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"labels must be unique; repeated: {dupes}")
        return arms

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: int | list[int]) -> int | list[int]:
        if isinstance(seeds, list) and len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct; got {seeds}")
        return seeds

    @model_validator(mode="after")
    def _reference_is_an_arm(self) -> Scenario:
        if self.compare.reference is not None and self.compare.reference not in self.labels:
            raise ValueError(f"compare.reference {self.compare.reference!r} is not an arm; arms: {self.labels}")
        return self

    @property
    def labels(self) -> list[str]:
        return [a.label for a in self.schemes]

    @property
    def seed_list(self) -> list[int]:
        """The replicate seeds `seeds` names (a count counts up from `seed`)."""
        return list(self.seeds) if isinstance(self.seeds, list) else list(range(self.seed, self.seed + self.seeds))

    @property
    def reference_arm(self) -> str:
        """The arm every other arm is compared with (`compare.reference`, else the first arm)."""
        return self.compare.reference or self.labels[0]
