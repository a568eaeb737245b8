"""Scenario configuration: a YAML scenario file becomes one typed :class:`Scenario` object.

This is the only module that touches raw dicts. :func:`load_scenario` reads a file, validates its
structure with pydantic and its meaning against the live registries (royalty scheme names and their
parameters from :mod:`royaltysim.schemes`, networkx generators and their arguments, attribution
methods present in the run), collects **every** problem and raises one :class:`ScenarioError` that
lists each with its key path (``schemes[2].ai.params.top_k``) and the allowed values.

Every default of the economy lives in this module, next to a comment that says where it comes from
(``reference/streaming-facts.md``, the calibration of :mod:`royaltysim.calibration`, or a stated
modelling assumption); ``docs/parameters.md`` tables them all.
Money is measured in **income units**: one unit is the month-0 royalty pool divided by the number of
creators (scheme-independent), so creator costs and outside options keep their meaning when a
scenario is scaled from 30 creators to thousands.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from royaltysim.demand import DemandConfig
from royaltysim.errors import InputError
from royaltysim.fit import FitSpec
from royaltysim.fraud import FraudConfig
from royaltysim.platform_choice import PlatformChoiceSpec
from royaltysim.safe_yaml import YamlError, load_yaml_file
from royaltysim.sensitivity import SensitivitySpec
from royaltysim.sweep import SweepSpec

__all__ = [
    "Scenario",
    "ScenarioError",
    "SchemeSpec",
    "Arm",
    "Phase",
    "AiPoolTerms",
    "CompareSpec",
    "CorpusSource",
    "FittedSource",
    "ConsumersConfig",
    "NetworkConfig",
    "PlatformConfig",
    "BehaviourConfig",
    "MetricsConfig",
    "NETWORK_GENERATORS",
    "load_scenario",
    "validate_scenario",
    "check_scenario",
    "scenario_to_yaml",
    "repo_root",
]

#: networkx generators a scenario may name: each takes the number of nodes first and a ``seed``.
NETWORK_GENERATORS: tuple[str, ...] = (
    "barabasi_albert_graph",
    "watts_strogatz_graph",
    "powerlaw_cluster_graph",
    "erdos_renyi_graph",
    "fast_gnp_random_graph",
    "connected_watts_strogatz_graph",
    "newman_watts_strogatz_graph",
    "random_regular_graph",
)
# arguments the model fills itself (node count and seed); a scenario may not set them
_NETWORK_RESERVED = ("n", "seed", "create_using", "initial_graph")


def repo_root() -> Path:
    """The repository root (the folder holding ``pyproject.toml`` above this package)."""
    return Path(__file__).resolve().parent.parent


class ScenarioError(InputError, ValueError):
    """A scenario file (or dict) is invalid; ``issues`` lists ``(key_path, message)`` pairs."""

    def __init__(self, source: str, issues: list[tuple[str, str]]):
        self.source = source
        self.issues = issues
        lines = [f"{source}: {len(issues)} problem(s) in the scenario"]
        lines += [f"  - {path}: {msg}" if path else f"  - {msg}" for path, msg in issues]
        super().__init__("\n".join(lines))


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


# --------------------------------------------------------------------------- loading


def _fmt_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_SOURCE_TAGS = {"corpus": CorpusSource, "fitted": FittedSource}


def _strip_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """A pydantic error location without the union tag it adds after ``source`` (``source.fitted.x``)."""
    return tuple(p for i, p in enumerate(loc) if not (i > 0 and loc[i - 1] == "source" and p in _SOURCE_TAGS))


def _unwrap(ann: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` -> ``X`` (a union of several models is left as it is)."""
    while True:
        origin = get_origin(ann)
        if origin is Annotated:
            ann = get_args(ann)[0]
            continue
        if origin in (Union, UnionType):
            inner = [a for a in get_args(ann) if a is not type(None)]
            if len(inner) == 1:
                ann = inner[0]
                continue
        return ann


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that the key path ``loc`` (with union tags) points into, for listing its keys."""
    ann: Any = Scenario
    for i, part in enumerate(loc):
        if i > 0 and loc[i - 1] == "source" and part in _SOURCE_TAGS:
            ann = _SOURCE_TAGS[part]
            continue
        ann = _unwrap(ann)
        origin = get_origin(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            if isinstance(part, int) or part not in ann.model_fields:
                return None
            ann = ann.model_fields[part].annotation
        elif origin in (list, tuple) and isinstance(part, int) and get_args(ann):
            ann = get_args(ann)[0]
        elif origin is dict and get_args(ann):
            ann = get_args(ann)[1]  # any key of a mapping leads to its values' type
        else:
            return None
    ann = _unwrap(ann)
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _keys_of(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)


def _pydantic_issues(err: ValidationError) -> list[tuple[str, str]]:
    issues = []
    for e in err.errors():
        raw_loc = tuple(e["loc"])
        loc = _strip_tags(raw_loc)
        msg = e["msg"]
        kind = e["type"]
        got = e.get("input")
        shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
        if kind == "extra_forbidden":
            parent = _model_at(raw_loc[:-1])
            msg = f"unknown key {loc[-1]!r}" + (f"; allowed keys: {_keys_of(parent)}" if parent else "")
        elif kind == "missing":
            msg = "required key is missing"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            model = _model_at(raw_loc)
            if loc == ("source",):
                msg = ("expected a mapping such as {kind: corpus, run: runs/default}; kind is corpus or fitted, "
                       f"other keys: {_keys_of(FittedSource)}{shown}")
            elif model is not None:
                msg = f"expected a mapping with the keys {_keys_of(model)}{shown}"
            else:
                msg = f"expected a mapping (key: value){shown}"
        elif kind == "union_tag_invalid":
            ctx = e.get("ctx") or {}
            msg = f"unknown source kind {ctx.get('tag')!r}; allowed: corpus, fitted"
        elif kind == "union_tag_not_found":
            msg = "the source needs `kind: corpus` (the run's creators) or `kind: fitted` (a synthetic population)"
        elif kind in ("list_type", "tuple_type"):
            if loc == ("schemes",):
                msg = f"expected a list of arms, each a mapping with the keys {_keys_of(Arm)}{shown}"
            elif loc[:2] == ("sweep", "grid"):
                msg = f"expected a list of the values to sweep, e.g. [0.1, 0.2, 0.3]{shown}"
            else:
                msg = f"expected a list{shown}"
        elif kind == "value_error" and (e.get("ctx") or {}).get("error") is not None:
            msg = str(e["ctx"]["error"])  # our own validators' words, without pydantic's "Value error, "
        elif kind == "finite_number":
            msg = f"must be a finite number{shown}; .inf and .nan are not allowed"
        elif shown:
            msg = f"{msg}{shown}"
        issues.append((_fmt_loc(loc), msg))
    return issues


def _network_value_issue(gen: str, key: str, value: Any, n: int | None) -> str | None:
    """What is wrong with the value of one generator parameter, in words (None when nothing is).

    networkx checks some of these only while it builds the graph (``m: -1`` is a traceback minutes into a
    run), and others never (``p: 1.5``, a float ``m``); ``n`` is the number of listeners (None if unknown).
    """

    def integer(low: int, high: int | None, what: str) -> str | None:
        span = f">= {low}" if high is None else f"from {low} to {high}"
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            return f"{key} ({what}) must be an integer {span}; got {value!r}"
        return None

    below_n = None if n is None else n - 1
    if key == "p":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0
        return None if ok else f"p (a probability) must be a number from 0 to 1; got {value!r}"
    if key == "m":
        return integer(1, below_n, "links each new listener makes, below consumers.n")
    if key == "k":
        low = 2 if gen == "connected_watts_strogatz_graph" else 0  # fewer than 2 neighbours is never connected
        return integer(low, below_n, "ring neighbours of each listener, below consumers.n")
    if key == "d":
        issue = integer(0, below_n, "friends of each listener, below consumers.n")
        if issue is None and n is not None and (n * value) % 2:
            issue = f"d * consumers.n must be even for a regular graph; got d = {value} with consumers.n = {n}"
        return issue
    if key == "tries":
        return integer(1, 1000, "attempts at a connected graph")
    if key == "directed" and value is not False:
        return f"the listeners' network is undirected: leave directed out or set it to false; got {value!r}"
    return None


def _network_issues(raw: Any, n_consumers: Any = None) -> list[tuple[str, str]]:
    import networkx as nx

    if not isinstance(raw, dict):
        return []
    n = n_consumers if isinstance(n_consumers, int) and not isinstance(n_consumers, bool) else None
    issues: list[tuple[str, str]] = []
    gen = raw.get("generator", NetworkConfig.model_fields["generator"].default)
    params = raw.get("params", {"m": 3} if "generator" not in raw else {})
    if not isinstance(gen, str) or gen not in NETWORK_GENERATORS:
        allowed_gens = ", ".join(NETWORK_GENERATORS)
        issues.append(("network.generator", f"unknown generator {gen!r}; allowed: {allowed_gens}"))
        return issues
    sig = inspect.signature(getattr(nx, gen))
    allowed = {
        k: p
        for k, p in sig.parameters.items()
        if k not in _NETWORK_RESERVED + ("backend",)
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }
    if not isinstance(params, dict):
        return issues  # pydantic reports the type
    for key in params:
        if key not in allowed:
            listed = ", ".join(allowed) or "none"
            why = "is set by the model" if key in _NETWORK_RESERVED else "is not a parameter"
            issues.append((f"network.params.{key}", f"{key!r} {why} of {gen}; allowed: {listed}"))
    for key, p in allowed.items():
        if p.default is inspect.Parameter.empty and key not in params:
            issues.append((f"network.params.{key}", f"{gen} needs {key!r}; allowed: {', '.join(allowed)}"))
    for key, value in params.items():
        problem = _network_value_issue(gen, key, value, n) if key in allowed else None
        if problem:
            issues.append((f"network.params.{key}", f"{problem} ({gen})"))
    return issues


def _consumer_count(raw: Any) -> Any:
    """``consumers.n`` of a raw scenario (its default when left out; whatever was written otherwise)."""
    consumers = raw.get("consumers", {}) if isinstance(raw, dict) else {}
    return consumers.get("n", ConsumersConfig.model_fields["n"].default) if isinstance(consumers, dict) else None


def _scheme_issues(raw: Any) -> list[tuple[str, str]]:
    # each arm's human: and ai: scheme, nested schemes included (royaltysim.combinators.spec_issues)
    from royaltysim.combinators import spec_issues

    if not isinstance(raw, list):
        return []
    issues: list[tuple[str, str]] = []
    for i, arm in enumerate(raw):
        if not isinstance(arm, dict):
            continue
        for pool in ("human", "ai"):
            issues += spec_issues(arm.get(pool, {}), f"schemes[{i}].{pool}", pool)
        schedule = arm.get("schedule")
        for j, phase in enumerate(schedule if isinstance(schedule, list) else []):
            for pool in ("human", "ai"):
                if isinstance(phase, dict) and isinstance(phase.get(pool), dict):
                    issues += spec_issues(phase[pool], f"schemes[{i}].schedule[{j}].{pool}", pool)
    return issues


def _resolve_run(run: Path, base: Path | None) -> Path:
    """Relative run folders are looked up next to the scenario file, then in the cwd, then the repo."""
    if run.is_absolute():
        return run
    candidates = ([base / run] if base else []) + [Path.cwd() / run, repo_root() / run]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return (repo_root() / run).resolve()


def _read_run_table(path: Path, columns: list[str], numeric: tuple[str, ...] = ()) -> tuple[Any, str | None]:
    """Read one table of an attribution run; ``(table, None)`` or ``(None, what is wrong with it)``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"{path} cannot be read as a parquet table ({first}); it is damaged or not a table"
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        return None, (f"{path} lacks the column(s) {missing}; an attribution run's {path.name} has {columns} "
                      f"(it has {table.column_names})")
    for col in numeric:
        column = table.column(col)
        if not pa.types.is_floating(column.type) and not pa.types.is_integer(column.type):
            return None, f"{path}: column {col!r} holds {column.type}, expected numbers"
        finite = pc.is_finite(column) if pa.types.is_floating(column.type) else None
        if finite is not None and (column.null_count or not pc.all(finite).as_py()):
            return None, f"{path}: column {col!r} has missing, infinite or NaN values; every score must be a number"
    return table, None


def _source_issues(scenario: Scenario) -> list[tuple[str, str]]:
    """The attribution run: its three tables readable, with their columns, finite scores and the named methods."""
    import pyarrow.compute as pc

    from attribution.table import (
        CORPUS_COLUMNS, CORPUS_FILE, OUTPUT_COLUMNS, OUTPUTS_FILE, SCORE_COLUMNS, SCORED_DIR, SCORES_FILE,
    )

    src = scenario.source
    rebuild = "rebuild it with `royaltysim attribution build CONFIG.yaml --out RUN` or point `source.run` at another run"
    if not src.run.is_dir():
        return [("source.run", f"attribution run folder {src.run} does not exist; build the default one with "
                 "`make attribution` (royaltysim attribution build configs/attribution-default.yaml --out "
                 "runs/default) or point `source.run` at an existing run")]
    missing = [f for f in (SCORES_FILE, CORPUS_FILE, OUTPUTS_FILE) if not (src.run / f).is_file()]
    if missing:
        return [("source.run", f"{src.run} is not a complete attribution run: missing {missing} (is its build "
                 "still running or was it interrupted? rerun `make attribution`)")]
    if src.outputs != "build":  # the pieces scored after the build (RUN/scored/) must be there and readable
        scored = src.run / SCORED_DIR
        if not all((scored / f).is_file() for f in (SCORES_FILE, OUTPUTS_FILE)):
            return [("source.outputs", f"{src.outputs}: {scored} holds no scored pieces; score some with "
                     f"`royaltysim attribution score {src.run} PIECE.mid ...`, or set source.outputs: build")]
        found = [_read_run_table(scored / SCORES_FILE, SCORE_COLUMNS, numeric=("score",)),
                 _read_run_table(scored / OUTPUTS_FILE, OUTPUT_COLUMNS)]
        if any(p for _, p in found):
            return [("source.outputs", f"{p}; score the pieces again with `royaltysim attribution score`") for _, p in found if p]
    scores, problem = _read_run_table(src.run / SCORES_FILE, SCORE_COLUMNS, numeric=("score",))
    corpus, problem2 = _read_run_table(src.run / CORPUS_FILE, CORPUS_COLUMNS)
    _, problem3 = _read_run_table(src.run / OUTPUTS_FILE, OUTPUT_COLUMNS)
    problems = [p for p in (problem, problem2, problem3) if p]
    if problems:
        return [("source.run", f"{p}; {rebuild}") for p in problems]
    if scores.num_rows == 0:
        return [("source.run", f"{src.run / SCORES_FILE} has no scores; {rebuild}")]
    strays = pc.unique(pc.filter(scores.column("train_id"), pc.invert(pc.is_in(scores.column("train_id"),
                                                                             corpus.column("train_id")))))
    if len(strays):
        return [("source.run", f"{src.run / SCORES_FILE} scores {len(strays)} piece(s) missing from {CORPUS_FILE}, "
                 f"e.g. {strays.to_pylist()[:3]}; {rebuild}")]
    methods = sorted(str(m) for m in pc.unique(scores.column("method")).to_pylist())
    issues = []
    causal = [m for m in methods if not m.startswith("sim_")]
    sims = [m for m in methods if m.startswith("sim_")]
    if src.causal_method == "best":
        from attribution.best_method import BestMethodError, read_best_method

        try:
            read_best_method(src.run)
        except BestMethodError as err:
            issues.append(("source.causal_method", str(err)))
    elif src.causal_method not in causal:
        issues.append(("source.causal_method", f"{src.causal_method!r} is not a causal method of {src.run}; "
                       f"available: best, {', '.join(causal) or 'none'}"))
    if src.similarity_method not in sims:
        issues.append(("source.similarity_method", f"{src.similarity_method!r} is not a similarity method of "
                       f"{src.run}; available: {', '.join(sims) or 'none'}"))
    return issues


def _sweep_issues(scenario: Scenario, check_files: bool) -> list[tuple[str, str]]:
    """Every swept path must exist in the scenario, and every swept value must give a valid scenario.

    Each distinct (path, value) is checked once, on the base scenario with that one change (the sweep's
    size was checked before: :class:`~royaltysim.sweep.SweepSpec` refuses more than ``MAX_RUNS`` runs).
    """
    from royaltysim.sweep import SweepError, set_path, sweep_points

    base = scenario.model_dump(mode="json")
    base.pop("sweep")
    if scenario.sweep.steps is not None:
        base["steps"] = scenario.sweep.steps
    try:
        points = sweep_points(base, scenario.sweep)
    except SweepError as err:
        return [("sweep", str(err))]
    issues: list[tuple[str, str]] = []
    seen: set[str] = set()
    for point in points:
        for path, value in point.items():
            key = f"{path}={value!r}"
            if key in seen:
                continue
            seen.add(key)
            probe = copy.deepcopy(base)
            set_path(probe, path, value)
            extra = _scheme_issues(probe.get("schemes")) + _network_issues(probe.get("network", {}),
                                                                            _consumer_count(probe))
            try:
                checked = Scenario.model_validate(probe)
                if check_files and path.startswith("source.") and not extra:
                    extra += _source_issues(checked)
            except ValidationError as err:
                extra = _pydantic_issues(err) + extra
            issues += [(f"sweep: {path}={value!r} -> {p}", m) for p, m in extra]
    return issues


def validate_scenario(
    raw: dict[str, Any], *, source: str = "scenario", base: Path | None = None, check_files: bool = True
) -> Scenario:
    """Validate a scenario dict; raise :class:`ScenarioError` listing every problem found.

    Args:
        raw: the parsed YAML.
        source: how to name the scenario in messages (its file path).
        base: folder that relative paths are resolved against first (the scenario file's folder).
        check_files: also check that the attribution run exists and has the named methods.
    """
    if not isinstance(raw, dict):
        raise ScenarioError(source, [("", f"a scenario must be a mapping of keys; got {type(raw).__name__}")])
    issues = _scheme_issues(raw.get("schemes")) + _network_issues(raw.get("network", {}), _consumer_count(raw))
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as err:
        issues = _pydantic_issues(err) + issues
    if scenario is not None:
        resolved_run = _resolve_run(scenario.source.run, base)
        scenario = scenario.model_copy(update={"source": scenario.source.model_copy(update={"run": resolved_run})})
        if check_files and not issues:
            issues += _source_issues(scenario)
        if scenario.sweep is not None and not issues:
            issues += _sweep_issues(scenario, check_files)
        if scenario.sensitivity is not None and not issues:
            from royaltysim.sensitivity import sensitivity_issues

            issues += sensitivity_issues(scenario, check_files)
        if scenario.fit is not None and not issues:
            from royaltysim.fit import fit_issues

            issues += fit_issues(scenario.model_dump(mode="json"), scenario.fit)
        if scenario.platform_choice is not None and not issues:
            from royaltysim.platform_choice import platform_choice_issues

            issues += platform_choice_issues(scenario, check_files)
    # the same key can be reported by both layers (e.g. a non-dict params); keep the first
    seen: set[tuple[str, str]] = set()
    unique = [i for i in issues if not (i in seen or seen.add(i))]
    if unique or scenario is None:
        raise ScenarioError(source, unique)
    return scenario


def check_scenario(scenario: Scenario, *, check_files: bool = True) -> Scenario:
    """Re-run every check on a scenario built in Python (not through :func:`load_scenario`)."""
    raw = scenario.model_dump(mode="json")
    return validate_scenario(raw, source="scenario", base=None, check_files=check_files)


def load_scenario(path: str | Path, *, check_files: bool = True) -> Scenario:
    """Read and validate a scenario YAML file.

    The file is read within bounds (:mod:`royaltysim.safe_yaml`: size, UTF-8, aliases expanded to at most
    a few hundred thousand values, no recursion), so a hostile file is refused rather than let run out of
    memory.

    Raises:
        ScenarioError: the file is missing, a folder, unreadable, not UTF-8, not valid YAML (the message
            names file and line), too large once expanded, or the scenario is invalid (every problem listed
            with its key path and allowed values).
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.yaml"))[:5]
        hint = f" (it holds {', '.join(found)})" if found else " (scenarios live in `scenarios/*.yaml`)"
        raise ScenarioError(str(path), [("", f"is a folder; give a scenario YAML file{hint}")])
    if not path.is_file():
        raise ScenarioError(str(path), [("", "file not found; scenarios live in `scenarios/*.yaml`")])
    try:
        raw = load_yaml_file(path, what="scenario")
    except YamlError as exc:
        raise ScenarioError(exc.where, [("", exc.problem)]) from None
    return validate_scenario(raw, source=str(path), base=path.resolve().parent, check_files=check_files)


def scenario_to_yaml(scenario: Scenario) -> str:
    """The resolved scenario (every default filled in) as YAML, for a run folder."""
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
