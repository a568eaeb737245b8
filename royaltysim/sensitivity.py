"""Global sensitivity analysis: which parameters drive an outcome, over their whole ranges (SALib).

A scenario's ``sensitivity:`` section names parameter ranges and outputs::

    sensitivity:
      method: sobol                 # or morris (screening: cheaper, ranks parameters)
      parameters:                   # dotted scenario paths, as in a sweep
        platform.ai_pool_rate: [0.2, 0.8]
        source.attribution_snr: {bounds: [0.1, 10.0], log: true}
      n: 32                         # Sobol: base samples N (a power of 2); Morris: trajectories
      seeds: 2                      # replicate seeds per point; an output is their mean
      outputs:
        - {measure: gini_income_run, arm: causal}
        - {measure: ai_misallocation_month_mean, arm: causal, minus: training share}

Two designs, both from SALib: **Sobol** indices from Saltelli's scheme (:func:`SALib.sample.sobol.sample`,
``N * (D + 2)`` points for ``D`` parameters, first-order ``S1`` and total ``ST`` indices with bootstrap
confidence intervals) and **Morris** elementary effects (``N * (D + 1)`` points; ``mu*`` and ``sigma``, with
bootstrap intervals). A ``log`` parameter is sampled uniformly in its logarithm, so its indices are those of
``log(parameter)``.

The analysis is one code path whatever the model: :func:`design` draws the points, an *evaluator* maps
them to outputs (a function ``X -> Y``, rows x outputs), and :func:`indices` turns them into tidy tables;
:func:`analyse` does the three. The economy's evaluator, :class:`ScenarioEvaluator`, runs every (point,
seed) as a sweep run (:func:`royaltysim.sweep.run_sweep`: on Dask, keyed by a hash of the whole resolved
scenario, written atomically, resumed), so the indices do not depend on the number of workers; tests plug
in the Ishigami function, whose indices are known. A paired output (``minus``) is the difference between
two arms within each seed (common random numbers), averaged over the seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from royaltysim.errors import InputError
from royaltysim.sweep import MAX_RUNS, SweepSpec

__all__ = [
    "SensitivityError",
    "SensitivityParam",
    "SensitivityOutput",
    "SensitivitySpec",
    "SensitivityResult",
    "sensitivity_issues",
    "ScenarioEvaluator",
    "design",
    "indices",
    "analyse",
    "run_sensitivity",
    "largest_run",
    "ishigami",
    "ISHIGAMI_INDICES",
]

DESIGN_FILE = "design.parquet"
OUTPUTS_FILE = "outputs.parquet"
SOBOL_FILE = "sobol.parquet"
MORRIS_FILE = "morris.parquet"
REPORT_FILE = "sensitivity_report.html"


class SensitivityError(InputError, ValueError):
    """A sensitivity analysis cannot run or be analysed as declared (failed runs, bad outputs, ...)."""


class SensitivityParam(BaseModel):
    """A parameter's range: ``[low, high]``, or ``{bounds: [low, high], log: true, integer: false, label: ...}``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    bounds: tuple[float, float]
    log: bool = Field(False, description="sample uniformly in log(parameter) (bounds > 0)")
    integer: bool = Field(False, description="round each value to a whole number (a count such as top_k)")
    label: str | None = Field(None, description="readable name in tables and figures (default: the path)")

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, value: Any) -> Any:
        return {"bounds": value} if isinstance(value, (list, tuple)) else value

    @model_validator(mode="after")
    def _ordered(self) -> SensitivityParam:
        lo, hi = self.bounds
        if not lo < hi:
            raise ValueError(f"bounds must be [low, high] with low < high; got [{lo}, {hi}]")
        if self.log and lo <= 0:
            raise ValueError(f"log: true needs bounds > 0; got [{lo}, {hi}]")
        return self

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Values for points ``u`` in SALib's problem space (the log of the bounds when ``log``)."""
        x = np.exp(u) if self.log else np.asarray(u, dtype=float)
        return np.round(x) if self.integer else x

    @property
    def problem_bounds(self) -> list[float]:
        lo, hi = self.bounds
        return [math.log(lo), math.log(hi)] if self.log else [lo, hi]


class SensitivityOutput(BaseModel):
    """An output: a run-level measure of one arm, or the paired difference ``arm`` minus ``minus``."""

    model_config = ConfigDict(extra="forbid")
    measure: str
    arm: str
    minus: str | None = Field(None, description="another arm: the output is arm minus it, seed by seed")

    @field_validator("measure")
    @classmethod
    def _known(cls, name: str) -> str:
        from royaltysim.measures import MEASURES

        if name not in MEASURES:
            raise ValueError(f"unknown measure {name!r}; measures: {', '.join(MEASURES)}")
        return name

    @property
    def name(self) -> str:
        return f"{self.measure}: {self.arm}" + (f" minus {self.minus}" if self.minus else "")

    @property
    def label(self) -> str:
        """In words, for figure titles."""
        from royaltysim.measures import MEASURES

        what = MEASURES[self.measure].label
        return f"{what}, {self.arm} minus {self.minus}" if self.minus else f"{what}, {self.arm}"


class SensitivitySpec(BaseModel):
    """The ``sensitivity:`` section of a scenario."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    method: Literal["sobol", "morris"] = "sobol"
    parameters: dict[str, SensitivityParam] = Field(min_length=1)
    n: int = Field(64, ge=2, le=MAX_RUNS, description="Sobol: base samples N (a power of 2); Morris: trajectories")
    levels: int = Field(4, ge=2, le=100, description="Morris grid levels (even)")
    seeds: int = Field(2, ge=1, le=1000, description="replicate seeds per point; an output is their mean")
    steps: int | None = Field(None, ge=1, le=10_000, description="months of every run (default: the scenario's)")
    outputs: list[SensitivityOutput] = Field(min_length=1)
    sample_seed: int = Field(0, ge=0, description="seed of the design and of the bootstrap intervals")
    resamples: int = Field(1000, ge=10, le=100_000, description="bootstrap resamples for the intervals")
    confidence: float = Field(0.95, gt=0.5, lt=1.0)

    @model_validator(mode="after")
    def _sized(self) -> SensitivitySpec:
        if self.method == "sobol" and self.n & (self.n - 1):
            raise ValueError(f"n: Saltelli's Sobol design needs a power of 2 for its base samples; got {self.n} "
                             f"(use {1 << (self.n - 1).bit_length()} or {1 << (self.n.bit_length() - 1)})")
        if self.method == "morris" and self.levels % 2:
            raise ValueError(f"levels: Morris needs an even number of grid levels; got {self.levels}")
        names = [o.name for o in self.outputs]
        if len(set(names)) < len(names):
            raise ValueError(f"outputs repeat: {sorted({n for n in names if names.count(n) > 1})}")
        if self.n_runs > MAX_RUNS:
            raise ValueError(
                f"{self.n_runs:,} runs ({self.n_points:,} points x {self.seeds} seeds) is more than an analysis may "
                f"have ({MAX_RUNS:,}); lower n or seeds, or screen with method: morris first"
            )
        return self

    @property
    def n_points(self) -> int:
        """Points of the design, computed without drawing it."""
        d = len(self.parameters)
        return self.n * (d + 2) if self.method == "sobol" else self.n * (d + 1)

    @property
    def n_runs(self) -> int:
        return self.n_points * self.seeds

    def problem(self) -> dict:
        """SALib's problem dict (bounds in log space for ``log`` parameters)."""
        return {"num_vars": len(self.parameters), "names": list(self.parameters),
                "bounds": [p.problem_bounds for p in self.parameters.values()]}

    def label(self, path: str) -> str:
        p = self.parameters[path]
        return p.label or path + (" (log)" if p.log else "")


def sensitivity_issues(scenario: Any, check_files: bool = True) -> list[tuple[str, str]]:
    """Every output must name arms of the scenario, every parameter path must exist in it, and both bounds of
    each range must give a valid scenario (checked as a sweep's values are: ``config._sweep_issues``)."""
    from royaltysim.config import _sweep_issues

    spec: SensitivitySpec = scenario.sensitivity
    labels = [a.label for a in scenario.schemes]
    issues = [
        (f"sensitivity.outputs[{i}].{key}", f"{arm!r} is not an arm of this scenario; arms: {', '.join(labels)}")
        for i, o in enumerate(spec.outputs) for key, arm in (("arm", o.arm), ("minus", o.minus))
        if arm is not None and arm not in labels
    ]
    issues += [(f"sensitivity.outputs[{i}].minus", "an output cannot be an arm minus itself")
               for i, o in enumerate(spec.outputs) if o.minus == o.arm]
    for path, p in spec.parameters.items():
        ends = [int(round(v)) if p.integer else v for v in p.bounds]
        probe = scenario.model_copy(update={"sweep": SweepSpec(grid={path: ends}, replicates=1, steps=spec.steps)})
        issues += [(where.replace("sweep", "sensitivity.parameters", 1), msg)
                   for where, msg in _sweep_issues(probe, check_files)]
    return issues


# ------------------------------------------------------------------ the code path every model shares
def design(spec: SensitivitySpec) -> tuple[np.ndarray, np.ndarray]:
    """The design: ``(U, X)``, each ``(n_points, D)``; ``U`` in SALib's problem space, ``X`` in the
    parameters' own units (what a run is given)."""
    problem = spec.problem()
    if spec.method == "sobol":
        from SALib.sample import sobol

        u = sobol.sample(problem, spec.n, calc_second_order=False, seed=spec.sample_seed)
    else:
        from SALib.sample import morris

        u = morris.sample(problem, spec.n, num_levels=spec.levels, seed=spec.sample_seed)
    x = np.column_stack([p.from_unit(u[:, j]) for j, p in enumerate(spec.parameters.values())])
    return u, x


def _elementary_effects(spec: SensitivitySpec, u: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Each parameter's elementary effects (change of the output over the parameter's whole range, as SALib
    scales them), from the one-at-a-time steps of every Morris trajectory."""
    d = u.shape[1]
    lo = np.array([b[0] for b in spec.problem()["bounds"]])
    width = np.array([b[1] for b in spec.problem()["bounds"]]) - lo
    effects: list[list[float]] = [[] for _ in range(d)]
    for t in range(len(u) // (d + 1)):
        rows = slice(t * (d + 1), (t + 1) * (d + 1))
        du, dy = np.diff(u[rows], axis=0) / width, np.diff(y[rows])
        for step, change in enumerate(du):
            j = int(np.argmax(np.abs(change)))
            effects[j].append(dy[step] / change[j])
    return [np.asarray(e) for e in effects]


def indices(spec: SensitivitySpec, u: np.ndarray, y: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Tidy indices of outputs ``y`` (``(n_points, n_outputs)``) at design ``u`` (problem space).

    Sobol: one row per (output, parameter, index) with ``index`` ``S1`` or ``ST``, its ``value``, ``conf``
    (half-width of SALib's bootstrap interval) and ``ci_low``/``ci_high``. Morris: one row per (output,
    parameter, index) with ``index`` ``mu``, ``mu_star`` (bootstrap interval from SALib) or ``sigma``
    (basic bootstrap over the parameter's elementary effects); ``mu``'s interval is normal, from their spread.
    """
    y = np.asarray(y, dtype=float).reshape(len(u), -1)
    if y.shape[1] != len(names):
        raise SensitivityError(f"the evaluator gave {y.shape[1]} outputs for {len(names)} names")
    bad = ~np.isfinite(y)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise SensitivityError(f"{len(rows)} design point(s) have no value (e.g. point {rows[0]}); indices need every "
                               "point: fix the failed runs (failures.json) and run again to resume")
    problem = spec.problem()
    level = spec.confidence
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    out: list[dict] = []
    for k, name in enumerate(names):
        if spec.method == "sobol":
            from SALib.analyze import sobol

            si = sobol.analyze(problem, y[:, k], calc_second_order=False, num_resamples=spec.resamples,
                               conf_level=level, seed=np.random.default_rng(spec.sample_seed))
            # (a Generator, not the int: SALib reads `if seed:`, so seed 0 would fall back to global np.random)
            for j, path in enumerate(problem["names"]):
                for index in ("S1", "ST"):
                    value, conf = float(si[index][j]), float(si[f"{index}_conf"][j])
                    out.append({"output": name, "parameter": path, "label": spec.label(path), "index": index,
                                "value": value, "conf": conf, "ci_low": value - conf, "ci_high": value + conf})
        else:
            from SALib.analyze import morris

            si = morris.analyze(problem, u, y[:, k], num_resamples=spec.resamples, conf_level=level,
                                num_levels=spec.levels, seed=np.random.default_rng(spec.sample_seed))
            effects = _elementary_effects(spec, u, y[:, k])
            rng = np.random.default_rng(spec.sample_seed)
            for j, path in enumerate(problem["names"]):
                ee = effects[j]
                boot = np.array([rng.choice(ee, len(ee)).std(ddof=1) for _ in range(spec.resamples)]) \
                    if len(ee) > 1 else np.full(1, np.nan)
                rows = {
                    "mu": (float(si["mu"][j]), z * float(ee.std(ddof=1)) / math.sqrt(len(ee)) if len(ee) > 1 else math.nan),
                    "mu_star": (float(si["mu_star"][j]), float(si["mu_star_conf"][j])),
                    "sigma": (float(si["sigma"][j]), math.nan),
                }
                for index, (value, conf) in rows.items():
                    if index == "sigma":  # the basic bootstrap interval: a resampled std is biased low
                        low = 2 * value - float(np.quantile(boot, (1 + level) / 2))
                        high = 2 * value - float(np.quantile(boot, (1 - level) / 2))
                    else:
                        low, high = value - conf, value + conf
                    out.append({"output": name, "parameter": path, "label": spec.label(path), "index": index,
                                "value": value, "conf": conf, "ci_low": low, "ci_high": high})
    return pd.DataFrame(out)


def analyse(spec: SensitivitySpec, evaluate: Callable[[np.ndarray], np.ndarray],
            names: list[str] | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Draw the design, evaluate it and compute the indices: ``(indices, X, Y)``.

    Args:
        evaluate: maps the design's points in the parameters' own units (``(n_points, D)``) to outputs
            (``(n_points, n_outputs)``): :class:`ScenarioEvaluator` for a scenario, any function for a test.
        names: the outputs' names (default: the spec's outputs).
    """
    u, x = design(spec)
    y = np.asarray(evaluate(x), dtype=float).reshape(len(x), -1)
    return indices(spec, u, y, names or [o.name for o in spec.outputs]), x, y


# ------------------------------------------------------------------ a known answer
#: analytical first-order and total Sobol indices of :func:`ishigami` with a=7, b=0.1 on [-pi, pi]^3
ISHIGAMI_INDICES = {"S1": (0.3139, 0.4424, 0.0), "ST": (0.5576, 0.4424, 0.2437)}


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    """The Ishigami function ``sin x1 + a sin^2 x2 + b x3^4 sin x1``, the standard test of Sobol estimators."""
    x = np.asarray(x, dtype=float)
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


# ------------------------------------------------------------------ the economy as the model
@dataclass
class ScenarioEvaluator:
    """Evaluates design points by running the scenario: each (point, seed) is a sweep run on Dask.

    Runs are kept under ``out/runs/`` keyed by their whole resolved scenario, so a rerun resumes and a changed
    scenario or range never reuses a stale run. An output at a point is its mean over the seeds; a paired
    output is the difference between two arms within each seed, then averaged.
    """

    base: dict
    spec: SensitivitySpec
    out: Path
    scheduler: str | None = None
    workers: int | None = None
    source: str = "scenario"
    progress: Callable[[int, int], None] | None = None
    force: bool = False
    base_seed: int | None = None
    #: filled by a call: one row per (point, seed, output) with the parameters (``outputs.parquet``)
    per_seed: pd.DataFrame | None = None
    sweep: Any = None

    def points(self, x: np.ndarray) -> list[dict[str, Any]]:
        paths = list(self.spec.parameters)
        return [{path: (int(v) if self.spec.parameters[path].integer else float(v)) for path, v in zip(paths, row)}
                for row in x]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from royaltysim.sweep import run_sweep

        base = {k: v for k, v in self.base.items() if k not in ("sweep", "sensitivity")}
        seed0 = int(base.get("seed", 0)) if self.base_seed is None else self.base_seed
        sweep_spec = SweepSpec(replicates=self.spec.seeds, steps=self.spec.steps)
        points = self.points(x)
        self.sweep = run_sweep(base, sweep_spec, self.out, base_seed=seed0, scheduler=self.scheduler,
                               workers=self.workers, source=self.source, progress=self.progress, force=self.force,
                               points=points)
        runs = self.sweep.runs
        meas = self.sweep.measures
        value = {} if meas.empty else {
            (rid, arm): row for rid, arm, row in zip(meas["run_id"], meas["scheme"], meas.to_dict("records"))
        }
        rows = []
        for r in runs:
            for o in self.spec.outputs:
                a, b = value.get((r.run_id, o.arm)), value.get((r.run_id, o.minus)) if o.minus else None
                v = math.nan if a is None or (o.minus and b is None) else a[o.measure] - (b[o.measure] if b else 0.0)
                rows.append({"point": r.point, "seed": r.seed, "run_id": r.run_id, **r.params,
                             "output": o.name, "value": float(v)})
        self.per_seed = pd.DataFrame(rows)
        means = self.per_seed.groupby(["point", "output"], sort=False)["value"].mean()  # NaN stays NaN
        means = means.where(self.per_seed.groupby(["point", "output"], sort=False)["value"].count() == self.spec.seeds)
        return np.array([[means[(i, o.name)] for o in self.spec.outputs] for i in range(len(x))])


@dataclass
class SensitivityResult:
    out_dir: Path
    spec: SensitivitySpec
    indices: pd.DataFrame
    design: pd.DataFrame  # one row per point: the parameters and each output's mean over the seeds
    per_seed: pd.DataFrame
    failures: list[dict]
    ran: int
    total: int


def run_sensitivity(base: dict, spec: SensitivitySpec, out_dir: str | Path, **evaluator: Any) -> SensitivityResult:
    """Run a scenario's sensitivity analysis (keyword arguments go to :class:`ScenarioEvaluator`) and write
    ``design.parquet``, ``outputs.parquet`` and ``sobol.parquet`` or ``morris.parquet`` (each atomically),
    beside the sweep tables of its runs. Raises :class:`SensitivityError` when runs failed (kept for a rerun)."""
    from royaltysim.atomic import atomic_file

    out = Path(out_dir)
    ev = ScenarioEvaluator(base, spec, out, **evaluator)
    u, x = design(spec)
    y = ev(x)
    table = pd.DataFrame(x, columns=list(spec.parameters))
    table.insert(0, "point", np.arange(len(x)))
    for k, o in enumerate(spec.outputs):
        table[o.name] = y[:, k]
    for name, frame in ((DESIGN_FILE, table), (OUTPUTS_FILE, ev.per_seed)):
        with atomic_file(out / name) as tmp:
            frame.to_parquet(tmp, index=False)
    if ev.sweep.failures:
        first = ev.sweep.failures[0]
        raise SensitivityError(
            f"{len(ev.sweep.failures)} of {ev.sweep.total} runs failed (first: seed {first['seed']} {first['params']}: "
            f"{first['error']}); see {out / 'failures.json'}. Finished runs are kept: fix the cause and rerun to resume"
        )
    found = indices(spec, u, y, [o.name for o in spec.outputs])
    with atomic_file(out / (SOBOL_FILE if spec.method == "sobol" else MORRIS_FILE)) as tmp:
        found.to_parquet(tmp, index=False)
    return SensitivityResult(out, spec, found, table, ev.per_seed, ev.sweep.failures, ev.sweep.ran, ev.sweep.total)


# scenario paths whose values change what a run costs (as royaltysim.sweep.largest_run reads them)
_SIZE_PATHS = ("steps", "consumers.n", "consumers.sessions", "network.", "source.")


def largest_run(scenario: Any) -> dict:
    """The resolved scenario dict of the analysis's costliest run: every size-changing parameter at each of
    its bounds (each combination tried; other parameters do not change a run's cost)."""
    import itertools

    from royaltysim.resources import estimate
    from royaltysim.sweep import resolved_run

    base = scenario.model_dump(mode="json")
    spec = scenario.sensitivity
    base.pop("sensitivity", None)
    sized = {p: r for p, r in spec.parameters.items() if p.startswith(_SIZE_PATHS)}
    candidates = []
    for combo in itertools.product(*[r.bounds for r in sized.values()][:12]):
        point = {p: (int(v) if sized[p].integer else v) for p, v in zip(sized, combo)}
        candidates.append(resolved_run(base, point, int(base.get("seed", 0)), spec.steps))
    costs = [estimate(raw) for raw in candidates]
    return candidates[max(range(len(costs)), key=lambda i: (costs[i].memory_bytes, costs[i].seconds))]
