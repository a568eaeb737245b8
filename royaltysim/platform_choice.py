"""The platform's choice: the AI royalty rate that maximises its profit, against the one that maximises welfare.

A scenario's ``platform_choice:`` section names one number the platform sets and what each side wants::

    platform_choice:
      parameter: platform.ai_pool_rate     # a dotted scenario path holding a number (or schemes[i].ai_pool.rate)
      range: [0.0, 1.0]
      objective: profit                    # what the platform maximises (platform_profit_month_mean)
      compare: welfare                     # what a planner maximises (total_welfare_month_mean)
      evaluations: 9                       # values of the parameter simulated (each: every arm x every seed)

For every arm (a scheme the platform takes as given) the platform picks the value that maximises the
mean of ``objective`` over the replicate seeds, anticipating what creators (and, with ``demand.enabled``,
listeners) do in response: each value is a whole simulation of the economy, not a formula. The planner's
value maximises ``compare`` the same way, on the same simulations.

* :class:`PlatformChoiceSpec` -- the section, validated at load; :func:`platform_choice_issues` checks it
  against the scenario (the path holds a number, both ends of the range are valid scenarios, the arms
  exist, and the parameter reaches every arm searched);
* :func:`search` -- the search: a grid, then golden-section steps inside each target's bracket
  (:class:`SearchResult`). Any function of one number that returns one value per seed for each of
  several targets can be searched; the tests give it functions whose optimum is known;
* :func:`choice_table` -- each arm's two choices with their uncertainty over seeds, and the paired
  differences between the outcomes at them;
* :func:`choose` -- the economy as the function searched: every value runs the scenario on the same
  seeds (:func:`royaltysim.runner.run`); returns a :class:`PlatformChoice`.

Why a search written here. Every evaluation is a whole simulation of every arm over every seed, and it
gives the platform's and the planner's objective of every arm at once; scipy's bounded scalar minimisers
(``minimize_scalar``) and optuna's samplers optimise one function at a time, so they would re-simulate the
same values for each (arm, objective) pair. The search is the textbook one for a function of one
variable: evenly spaced points to bracket each target's maximum, then golden-section steps (each probe at
0.382 of the wider side of the target's bracket, Kiefer 1953), shared by every target, until each bracket
is narrower than ``tolerance`` of the range or the budget is spent. It assumes each target is unimodal
between the grid's neighbours of its best point; the grid is the guard against a second hill.

Common random numbers. Every value runs on the same seeds, so two values differ by the rule, not by
luck, and the choices' difference is paired seed by seed. The uncertainty of a choice itself comes from a
bootstrap over seeds: resampling the seeds with replacement and choosing again among the values
evaluated gives the spread of the choice (at most as fine as the values simulated).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from royaltysim.errors import InputError

if TYPE_CHECKING:
    from attribution.table import AttributionTable
    from royaltysim.config import Scenario

__all__ = [
    "PlatformChoiceError",
    "PlatformChoiceSpec",
    "ALIASES",
    "platform_choice_issues",
    "SearchResult",
    "search",
    "choice_table",
    "PlatformChoice",
    "choose",
    "GOLDEN",
    "write_choice",
]

#: where a golden-section probe falls in the wider side of a bracket: 2 - golden ratio
GOLDEN = (3.0 - math.sqrt(5.0)) / 2.0

#: short names of the money measures an objective usually is
ALIASES = {
    "profit": "platform_profit_month_mean",
    "welfare": "total_welfare_month_mean",
    "consumer_surplus": "consumer_surplus_month_mean",
    "creator_surplus": "creator_surplus_month_mean",
}

EVALUATIONS_FILE = "evaluations.parquet"
CHOICE_FILE = "choice.parquet"


class PlatformChoiceError(InputError, ValueError):
    """The platform's choice cannot be searched as declared."""


def _money_measures() -> list[str]:
    from royaltysim.measures import MEASURES

    return [name for name, m in MEASURES.items() if m.kind == "money"]


class PlatformChoiceSpec(BaseModel):
    """The ``platform_choice:`` section of a scenario: what the platform sets, and what it and a planner maximise."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)
    parameter: str = Field("platform.ai_pool_rate", min_length=1,
                           description="dotted scenario path of the number the platform sets")
    range: tuple[float, float] = Field((0.0, 1.0), description="[low, high] searched")
    objective: str = Field("profit", description="money measure the platform maximises (profit: platform profit)")
    compare: str = Field("welfare", description="money measure the choice is compared with (welfare: total welfare)")
    evaluations: int = Field(9, ge=2, le=200, description="values of the parameter simulated")
    grid: int = Field(5, ge=2, le=200, description="evenly spaced values simulated first, the ends included")
    tolerance: float = Field(0.01, gt=0.0, lt=1.0, description="a bracket narrower than this share of the range is done")
    arms: list[str] | None = Field(None, min_length=1, description="arms searched (default: every arm)")
    seeds: int | None = Field(None, ge=2, le=1000, description="replicate seeds (default: the scenario's seeds)")
    steps: int | None = Field(None, ge=1, le=10_000, description="months of every run (default: the scenario's)")
    resamples: int = Field(1000, ge=10, le=100_000, description="bootstrap resamples of the seeds for the choices")

    @field_validator("objective", "compare")
    @classmethod
    def _money(cls, name: str) -> str:
        name = ALIASES.get(name, name)
        allowed = _money_measures()
        if name not in allowed:
            raise ValueError(f"{name!r} is not a money measure to maximise; use one of "
                             f"{', '.join([*ALIASES, *allowed])}")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> PlatformChoiceSpec:
        lo, hi = self.range
        if not lo < hi:
            raise ValueError(f"range must be [low, high] with low < high; got [{lo}, {hi}]")
        if self.objective == self.compare:
            raise ValueError(f"objective and compare are both {self.objective}; compare the platform's choice with "
                             "another measure (e.g. objective: profit, compare: welfare)")
        if self.grid > self.evaluations:
            raise ValueError(f"grid ({self.grid}) is more values than evaluations ({self.evaluations}); "
                             "lower grid or raise evaluations")
        if self.arms is not None and len(set(self.arms)) != len(self.arms):
            raise ValueError(f"arms repeat: {self.arms}")
        return self


def platform_choice_issues(scenario: Scenario, check_files: bool = True) -> list[tuple[str, str]]:
    """Problems of a scenario's ``platform_choice:`` section, as ``(key path, message)`` pairs.

    The parameter must be a number in the scenario (a real number: the search tries values between
    the grid's), both ends of the range must give a valid scenario (checked as a sweep's values are),
    the arms must exist, and an arm that pays the AI pool by its own ``ai_pool`` terms is not moved by
    ``platform.ai_pool_rate``, so searching it there is refused.
    """
    from royaltysim.config import _sweep_issues
    from royaltysim.sweep import SweepSpec, get_path

    spec: PlatformChoiceSpec = scenario.platform_choice
    labels = scenario.labels
    issues = [("platform_choice.arms", f"{a!r} is not an arm of this scenario; arms: {', '.join(labels)}")
              for a in spec.arms or [] if a not in labels]
    base = scenario.model_dump(mode="json")
    try:
        current = get_path(base, spec.parameter)
    except (KeyError, IndexError, TypeError):
        return issues + [("platform_choice.parameter", f"{spec.parameter!r} is not a key of the scenario; give a "
                          "dotted path such as platform.ai_pool_rate or schemes[1].ai_pool.rate (an arm's "
                          "ai_pool terms must be written out to be searched)")]
    if isinstance(current, bool) or not isinstance(current, float):
        return issues + [("platform_choice.parameter", f"{spec.parameter} holds {current!r}; only a real-valued "
                          "parameter can be searched (e.g. platform.ai_pool_rate)")]
    if spec.parameter == "platform.ai_pool_rate":
        searched = [a for a in scenario.schemes if spec.arms is None or a.label in spec.arms]
        issues += [("platform_choice.parameter", f"arm {a.label!r} pays the AI pool by its own ai_pool terms, which "
                    f"platform.ai_pool_rate does not change; search schemes[{scenario.labels.index(a.label)}]."
                    "ai_pool.rate, or leave the arm out of platform_choice.arms")
                   for a in searched if a.ai_pool is not None]
    probe = scenario.model_copy(update={"platform_choice": None,
                                        "sweep": SweepSpec(grid={spec.parameter: list(spec.range)}, replicates=1)})
    issues += [(where.replace("sweep: ", "platform_choice.range: ", 1), msg)
               for where, msg in _sweep_issues(probe, check_files)]
    return issues


# ------------------------------------------------------------------ the search, on any function of one number
@dataclass
class SearchResult:
    """The values a search evaluated and each target's best.

    Attributes:
        values: one row per (evaluation, target, seed): ``evaluation`` (1, 2, ... in the order run), ``x``,
            ``target``, ``seed`` (position in the seed order), ``value``.
        best: each target's value of ``x`` with the highest mean over the seeds (the lowest such ``x`` on ties).
        bracket: each target's last bracket ``(low, high)`` around its best (the neighbours evaluated).
        converged: targets whose bracket got narrower than the tolerance within the budget.
    """

    values: pd.DataFrame
    best: dict[str, float]
    bracket: dict[str, tuple[float, float]]
    converged: list[str]

    def curve(self, target: str) -> pd.DataFrame:
        """One row per ``x`` evaluated (ascending): the target's mean over the seeds and the seeds' values."""
        g = self.values[self.values["target"] == target]
        wide = g.pivot_table(index="x", columns="seed", values="value", aggfunc="first").sort_index()
        return wide.assign(mean=wide.mean(axis=1))


def _bracket(xs: np.ndarray, means: np.ndarray) -> tuple[int, float | None, float | None]:
    """The best point's index among sorted ``xs`` and its neighbours (None at an end)."""
    i = int(np.flatnonzero(means == means.max())[0])
    return i, (xs[i - 1] if i > 0 else None), (xs[i + 1] if i < xs.size - 1 else None)


def search(
    evaluate: Callable[[float], dict[str, Sequence[float]]],
    low: float,
    high: float,
    *,
    evaluations: int,
    grid: int = 5,
    tolerance: float = 0.01,
    progress: Callable[[int, float], None] | None = None,
) -> SearchResult:
    """Maximise the seed mean of every target ``evaluate`` returns, over ``[low, high]``, sharing evaluations.

    Args:
        evaluate: ``f(x) -> {target: values}``, one value per seed (the same seeds, in the same order, at
            every ``x``: common random numbers); a target's objective is the mean of its values.
        low, high: the range searched.
        evaluations: values of ``x`` evaluated at most (the grid's included).
        grid: evenly spaced values evaluated first, ``low`` and ``high`` included.
        tolerance: a target is done when its bracket is narrower than this share of the range.
        progress: called as ``progress(evaluation, x)`` before each evaluation.

    Each round visits every target not yet done: its best point ``b`` and evaluated neighbours ``a < b < c``
    bracket its maximum; the probe goes at :data:`GOLDEN` of the wider of ``[a, b]`` and ``[b, c]`` from
    ``b`` (golden-section search). Every evaluation updates every target's bracket.
    """
    if not low < high:
        raise ValueError(f"the range must have low < high; got [{low}, {high}]")
    if evaluations < 2 or not 2 <= grid <= evaluations:
        raise ValueError(f"need 2 <= grid <= evaluations; got grid={grid}, evaluations={evaluations}")
    rows: list[dict] = []
    seen: dict[float, dict[str, np.ndarray]] = {}

    def run(x: float) -> None:
        if progress is not None:
            progress(len(seen) + 1, x)
        got = {t: np.asarray(v, dtype=float) for t, v in evaluate(x).items()}
        for t, v in got.items():
            if v.ndim != 1 or v.size == 0 or not np.isfinite(v).all():
                raise ValueError(f"evaluate({x:g}) gave target {t!r} {v.tolist()}; expected finite values, one a seed")
        seen[x] = got
        rows.extend({"evaluation": len(seen), "x": x, "target": t, "seed": s, "value": float(val)}
                    for t, v in got.items() for s, val in enumerate(v))

    for x in np.linspace(low, high, grid):
        run(float(x))
    targets = list(next(iter(seen.values())))
    width = tolerance * (high - low)

    def state(t: str) -> tuple[float, float | None, float | None]:
        xs = np.array(sorted(seen))
        means = np.array([seen[x][t].mean() for x in xs])
        i, a, c = _bracket(xs, means)
        return float(xs[i]), a, c

    done: set[str] = set()
    while len(seen) < evaluations and len(done) < len(targets):
        for t in targets:
            if len(seen) >= evaluations or t in done:
                continue
            b, a, c = state(t)
            left = b - a if a is not None else 0.0
            right = c - b if c is not None else 0.0
            if max(left, right) < width:
                done.add(t)
                continue
            x = b + GOLDEN * right if right >= left else b - GOLDEN * left
            if any(abs(x - s) <= 1e-12 * (high - low) for s in seen):
                done.add(t)
                continue
            run(float(x))
    best, bracket = {}, {}
    for t in targets:
        b, a, c = state(t)
        best[t] = b
        bracket[t] = (float(a) if a is not None else b, float(c) if c is not None else b)
    converged = [t for t in targets if bracket[t][1] - bracket[t][0] < 2 * width or t in done]
    return SearchResult(pd.DataFrame(rows), best, bracket, converged)


# ------------------------------------------------------------------ the choices and their uncertainty
def _bootstrap_choices(curve: pd.DataFrame, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The best ``x`` among those evaluated, for each resample of the seeds (with replacement)."""
    values = curve.drop(columns="mean").to_numpy()  # (x, seeds)
    n = values.shape[1]
    picks = rng.integers(0, n, size=(resamples, n))
    means = values[:, picks].mean(axis=2)  # (x, resamples)
    return curve.index.to_numpy()[np.argmax(means, axis=0)]


def choice_table(result: SearchResult, arms: Sequence[str], objective: str, compare: str,
                 measures: pd.DataFrame, *, resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Each arm's choices and what separates them.

    Args:
        result: a search whose targets are ``"<arm>: <measure>"`` for ``objective`` and ``compare``.
        arms: the arms searched.
        measures: every run-level measure at every value evaluated: one row per (``x``, ``scheme``,
            ``seed``) (what :func:`choose` keeps).
        resamples, seed: the bootstrap over seeds.

    Returns one row per (arm, measure): ``scheme``, ``chosen`` (the objective's best ``x``), ``chosen_low``,
    ``chosen_high`` (the 2.5% and 97.5% points of the choice over bootstrap resamples of the seeds),
    ``planner`` (the compare measure's best ``x``) with ``planner_low``/``planner_high``, ``measure``, its mean
    at each (``at_chosen``, ``at_planner``), the paired difference chosen minus planner over the seeds
    (``difference``, ``low``, ``high``, ``p_value``, ``n``, ``verdict``).
    """
    from royaltysim.stats import paired_difference, verdict

    rng = np.random.default_rng(seed)
    shown = [objective, compare] + [m for m in ("consumer_surplus_month_mean", "creator_surplus_month_mean",
                                                "platform_profit_month_mean", "total_welfare_month_mean",
                                                "subscribers_end", "opted_in_end") if m not in (objective, compare)]
    rows = []
    for arm in arms:
        chosen, planner = result.best[f"{arm}: {objective}"], result.best[f"{arm}: {compare}"]
        boot_c = _bootstrap_choices(result.curve(f"{arm}: {objective}"), resamples, rng)
        boot_p = _bootstrap_choices(result.curve(f"{arm}: {compare}"), resamples, rng)
        g = measures[measures["scheme"] == arm]
        at_c = g[g["x"] == chosen].set_index("seed").sort_index()
        at_p = g[g["x"] == planner].set_index("seed").sort_index()
        for name in shown:
            iv = paired_difference(at_c[name].to_numpy(dtype=float), at_p[name].to_numpy(dtype=float))
            rows.append({
                "scheme": arm, "chosen": chosen, "chosen_low": float(np.quantile(boot_c, 0.025)),
                "chosen_high": float(np.quantile(boot_c, 0.975)), "planner": planner,
                "planner_low": float(np.quantile(boot_p, 0.025)), "planner_high": float(np.quantile(boot_p, 0.975)),
                "measure": name, "at_chosen": float(at_c[name].mean()), "at_planner": float(at_p[name].mean()),
                "difference": iv.estimate, "low": iv.low, "high": iv.high, "p_value": iv.p_value, "n": iv.n,
                "verdict": verdict(iv),
            })
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ the economy as the function searched
@dataclass
class PlatformChoice:
    """A finished search of the platform's choice over a scenario.

    Attributes:
        scenario: the scenario searched (its ``platform_choice:`` section says how).
        spec: the section.
        search: the search over targets ``"<arm>: <measure>"``.
        measures: every run-level measure at every value evaluated: one row per (``evaluation``, ``x``,
            ``scheme``, ``seed``) (``evaluations.parquet``).
        choices: :func:`choice_table` (``choice.parquet``).
        seeds: the replicate seeds every value ran on.
        runtime_s: wall-clock seconds; ``simulations``: arm-seed runs simulated.
    """

    scenario: Scenario
    spec: PlatformChoiceSpec
    search: SearchResult
    measures: pd.DataFrame
    choices: pd.DataFrame
    seeds: list[int]
    runtime_s: float
    simulations: int
    arms: list[str] = field(default_factory=list)

    def findings(self) -> list[str]:
        """The comparison in sentences, every difference paired over the seeds."""
        from royaltysim.measures import MEASURES

        sp, p = self.spec, self.spec.parameter
        obj, cmp_ = MEASURES[sp.objective], MEASURES[sp.compare]
        out = [f"{len(self.search.values['evaluation'].unique())} values of {p} in [{sp.range[0]:g}, {sp.range[1]:g}] "
               f"simulated, each for {len(self.arms)} arm(s) on the same {len(self.seeds)} seeds "
               f"({self.simulations} runs, {self.runtime_s:.0f} s). The platform maximises {obj.label}; the "
               f"comparison maximises {cmp_.label}."]
        for arm in self.arms:
            rows = self.choices[self.choices["scheme"] == arm].set_index("measure")
            r = rows.loc[sp.objective]
            line = (f"{arm}: the platform chooses {p} = {r['chosen']:.3g} (over resamples of the seeds "
                    f"{r['chosen_low']:.3g}-{r['chosen_high']:.3g}); {_short(sp.compare)} is highest at {r['planner']:.3g} "
                    f"({r['planner_low']:.3g}-{r['planner_high']:.3g}).")
            if r["chosen"] == r["planner"]:
                out.append(line + " The two choices coincide on these seeds.")
                continue
            parts = []
            for name in rows.index:
                m, q = MEASURES[name], rows.loc[name]
                ci = (f" [{m.format(q['low'], signed=True)}, {m.format(q['high'], signed=True)}]"
                      if np.isfinite(q["low"]) else "")
                parts.append(f"{_short(name)} {m.format(q['difference'], signed=True)}{ci} ({q['verdict']})")
            out.append(line + " At the platform's choice minus at the other (paired over the seeds, 95% "
                       "intervals): " + "; ".join(parts) + ".")
        return out


def _arms_of(scenario: Scenario) -> list[str]:
    spec = scenario.platform_choice
    return list(spec.arms) if spec.arms is not None else scenario.labels


def choose(
    scenario: Scenario,
    *,
    table: AttributionTable | None = None,
    workers: int | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> PlatformChoice:
    """Search the scenario's ``platform_choice:``: every value runs the searched arms on the same seeds.

    Args:
        scenario: a validated scenario with a ``platform_choice:`` section.
        table: the attribution table (read once from ``source.run`` when left out).
        workers: processes for the seeds of each value (:func:`royaltysim.runner.run`).
        progress: called as ``progress(evaluation, value)`` before each value is simulated.
    """
    from royaltysim.runner import run
    from royaltysim.sweep import set_path

    spec = scenario.platform_choice
    if spec is None:
        raise PlatformChoiceError("the scenario has no `platform_choice:` section; add one (see "
                                  "scenarios/platform_choice.yaml and docs/scenarios.md)")
    t0 = time.perf_counter()
    if table is None:
        from attribution.table import AttributionTable

        table = AttributionTable.load(scenario.source.run, outputs=scenario.source.outputs)
    arms = _arms_of(scenario)
    base = scenario.model_dump(mode="json")
    for key in ("platform_choice", "sweep", "sensitivity", "fit"):
        base[key] = None
    base["schemes"] = [a for a in base["schemes"] if a["label"] in arms]
    if base["compare"].get("reference") not in arms:
        base["compare"]["reference"] = None
    seeds = (list(range(scenario.seed, scenario.seed + spec.seeds)) if spec.seeds is not None
             else scenario.seed_list)
    if len(seeds) < 2:
        raise PlatformChoiceError("platform_choice needs at least 2 replicate seeds for its intervals; set "
                                  "platform_choice.seeds or the scenario's seeds")
    if spec.steps is not None:
        base["steps"] = spec.steps
    kept: list[pd.DataFrame] = []
    targets = (spec.objective, spec.compare)

    def evaluate(x: float) -> dict[str, np.ndarray]:
        raw = copy.deepcopy(base)
        set_path(raw, spec.parameter, float(x))
        got = run(raw, seeds=seeds, table=table, workers=workers).measures()
        kept.append(got.assign(evaluation=len(kept) + 1, x=float(x)))
        by = {arm: got[got["scheme"] == arm].set_index("seed").reindex(seeds) for arm in arms}
        return {f"{arm}: {m}": by[arm][m].to_numpy(dtype=float) for arm in arms for m in targets}

    found = search(evaluate, *spec.range, evaluations=spec.evaluations, grid=spec.grid, tolerance=spec.tolerance,
                   progress=progress)
    measures = pd.concat(kept, ignore_index=True)
    front = ["evaluation", "x", "scheme", "seed"]
    measures = measures[front + [c for c in measures.columns if c not in front]]
    choices = choice_table(found, arms, spec.objective, spec.compare, measures, resamples=spec.resamples)
    return PlatformChoice(scenario=scenario, spec=spec, search=found, measures=measures, choices=choices,
                          seeds=seeds, runtime_s=time.perf_counter() - t0,
                          simulations=len(kept) * len(arms) * len(seeds), arms=arms)



# ------------------------------------------------------------------ the folder `royaltysim choose` writes
FIGURE_FILE = "choice.png"
PAGE_FILE = "choice.html"


def _short(name: str) -> str:
    """A measure's label without its parenthesis and basis ("platform profit")."""
    from royaltysim.measures import MEASURES

    return MEASURES[name].label.split(" (")[0].split(",")[0]


def _figure(result: PlatformChoice, path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from royaltysim.measures import MEASURES
    from royaltysim.stats import mean_interval

    sp = result.spec
    names = (sp.objective, sp.compare)
    fig, axes = plt.subplots(len(result.arms), 2, figsize=(10, 3.2 * len(result.arms)), squeeze=False)
    for row, arm in enumerate(result.arms):
        for col, name in enumerate(names):
            ax = axes[row][col]
            curve = result.search.curve(f"{arm}: {name}")
            ivs = [mean_interval(v) for v in curve.drop(columns="mean").to_numpy()]
            x = curve.index.to_numpy()
            ax.fill_between(x, [iv.low for iv in ivs], [iv.high for iv in ivs], alpha=0.25, color="C0")
            ax.plot(x, curve["mean"], "o-", color="C0", ms=4)
            c = result.choices[(result.choices["scheme"] == arm)].iloc[0]
            ax.axvline(c["chosen"], color="C3", ls="--", label=f"platform: {c['chosen']:.3g}")
            ax.axvline(c["planner"], color="C2", ls=":", label=f"{_short(sp.compare)}: {c['planner']:.3g}")
            ax.set_title(f"{arm}: {_short(name)}", fontsize=9)
            ax.set_xlabel(sp.parameter)
            ax.set_ylabel(MEASURES[name].unit)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_choice(result: PlatformChoice, out: Any, command: str = "") -> Any:
    """Write ``scenario.yaml``, ``evaluations.parquet``, ``choice.parquet``, ``choice.png`` and ``choice.html``
    into the existing folder ``out``; returns the page's path."""
    import html
    from pathlib import Path

    from royaltysim.config import scenario_to_yaml

    out = Path(out)
    (out / "scenario.yaml").write_text(f"# resolved scenario; rerun with: royaltysim choose {out / 'scenario.yaml'}\n"
                                       + scenario_to_yaml(result.scenario))
    result.measures.to_parquet(out / EVALUATIONS_FILE, index=False)
    result.choices.to_parquet(out / CHOICE_FILE, index=False)
    _figure(result, out / FIGURE_FILE)
    items = "\n".join(f"<li>{html.escape(line)}</li>" for line in result.findings())
    table = result.choices.to_html(index=False, float_format=lambda v: f"{v:.4g}", classes="choice")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>The platform's choice: {html.escape(result.scenario.question)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px}}</style></head><body>
<h1>The platform's choice</h1>
<p><b>Question.</b> {html.escape(result.scenario.question)}</p>
<ul>
{items}
</ul>
<figure><img src="{FIGURE_FILE}" alt="objective and comparison against {html.escape(result.spec.parameter)}">
<figcaption>Each arm's mean over the seeds at every value simulated (band: 95% interval over the seeds); dashed: the
platform's choice, dotted: the comparison's.</figcaption></figure>
<h2>Choices and paired differences (at the platform's choice minus at the other)</h2>
<p><code>chosen_low</code>-<code>chosen_high</code>: 2.5% and 97.5% points of the choice over bootstrap resamples of
the seeds (among the values simulated). Tables: <code>{EVALUATIONS_FILE}</code> (every measure at every value, arm
and seed), <code>{CHOICE_FILE}</code> (this table).</p>
{table}
<p>{html.escape(command)}</p>
</body></html>
"""
    path = out / PAGE_FILE
    path.write_text(page)
    return path
