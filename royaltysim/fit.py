"""Calibration by fitting: scenario parameters estimated by the method of simulated moments (MSM).

One concept: a *fit* of chosen scenario parameters to the published facts of
:mod:`royaltysim.calibration`. The pieces:

* :class:`FitSpec` -- the ``fit:`` section of a scenario (parameter paths and search ranges, the facts
  fitted, common-random-number seeds, the evaluation budget, the bootstrap size), validated at load;
* :func:`fit` -- estimate the parameters and their uncertainty; returns a :class:`FitResult` with tidy
  tables (per parameter, per fact, every evaluation) and :meth:`FitResult.overlay_yaml`;
* overlays -- :func:`read_overlay` and :func:`load_with_overlay`: a small YAML of dotted scenario paths and
  values (what a fit writes) applied to a scenario before it is validated, as ``royaltysim run --overlay``.

The estimator. For parameters ``theta`` and seeds ``s_1..s_S`` the simulated moments are the fact functions
of :func:`royaltysim.calibration.simulated_facts`, averaged over the seeds: ``m(theta)``. The distance is

    D(theta) = sum_k ((m_k(theta) - v_k) / h_k) ** 2,    h_k = (high_k - low_k) / 2,

a diagonal weighting matrix that scales each fact's error by its published tolerance band: a fact at the
edge of its band adds 1, whatever its unit. (The optimal MSM weighting, the inverse covariance of the
moments, would need the *published* figures' sampling error, which the sources do not give; the bands are
the reference's own statement of how well each figure is known.) Only pinned facts are fitted by default:
the unpinned ones are not resolvable at the simulation's scale (see :mod:`royaltysim.calibration`).

Common random numbers. Every candidate runs on the same seeds, so ``D`` is a deterministic function of
``theta``: two candidates differ by their parameters, not by their luck, and the optimiser is not chasing
noise.

The optimiser: scipy's Nelder-Mead, bounded, on the parameters rescaled to the unit cube, started at the
scenario's own values. Why: one evaluation is a whole simulation (~20 s for the 20,000-creator calibration
scenario on one core), so the budget is tens of evaluations, not thousands. Differential evolution needs
~15 x dims candidates per generation; a TPE sampler (optuna) would add a dependency and spends most of a
budget this small exploring. Nelder-Mead needs no gradient (the facts are shares of whole creators: ``D``
is piecewise constant at the finest scale), moves from the hand-calibrated start, which is already near the
facts, and is deterministic. It is a local method: a range far from the start may hold a better optimum it
does not find; the trace of every evaluation is kept so this can be checked. A candidate whose facts cannot
be computed (an income tail with too few paid creators) gets the distance :data:`FAILED_DISTANCE`.

Uncertainty: a bootstrap over seeds. The fit is repeated ``bootstrap`` times, each on a fresh, disjoint
set of as many seeds (``seed + b * seeds, ...``), from the same start; the spread of the optimum across
seed sets (sd, min, max) is the simulation part of the estimator's uncertainty. It costs
``(1 + bootstrap) x evaluations x seeds`` simulations, so it is kept small (default 2).
"""

from __future__ import annotations

import copy
import datetime as _dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from royaltysim.errors import InputError

if TYPE_CHECKING:
    from attribution.table import AttributionTable
    from royaltysim.calibration import PublishedFact
    from royaltysim.config import Scenario

__all__ = [
    "FitSpec",
    "FitError",
    "FitResult",
    "FAILED_DISTANCE",
    "fit",
    "fit_issues",
    "distance",
    "parse_param",
    "fit_from_cli",
    "write_fit",
    "read_overlay",
    "apply_overlay",
    "load_with_overlay",
]

#: distance given to a candidate whose facts cannot be computed (far above any fit inside the ranges)
FAILED_DISTANCE = 1e6


class FitError(InputError, ValueError):
    """A fit or an overlay cannot run as given (bad parameter path or range, unknown fact, bad overlay file)."""


class FitSpec(BaseModel):
    """The ``fit:`` section of a scenario: what ``royaltysim calibrate --fit`` estimates, and how."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    #: dotted scenario path -> [low, high] search range, e.g. ``behaviour.talent_sigma: [3.0, 4.5]``
    params: dict[str, tuple[float, float]] = Field(min_length=1)
    #: facts fitted (keys of PUBLISHED_FACTS); default: every pinned fact
    facts: list[str] | None = None
    #: common random numbers: every candidate runs on seeds ``seed .. seed + seeds - 1``
    seeds: int = Field(1, ge=1, le=50)
    #: objective evaluations per fit (distinct candidates; each runs one simulation per seed)
    evaluations: int = Field(20, ge=3, le=2000)
    #: refits on fresh seed sets for the uncertainty (0: none)
    bootstrap: int = Field(2, ge=0, le=50)

    @field_validator("params")
    @classmethod
    def _ranges(cls, params: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        bad = [f"{p}: [{lo}, {hi}]" for p, (lo, hi) in params.items() if not lo < hi]
        if bad:
            raise ValueError(f"each range must be [low, high] with low < high; got {'; '.join(bad)}")
        return params

    @field_validator("facts")
    @classmethod
    def _known_facts(cls, facts: list[str] | None) -> list[str] | None:
        if facts is None:
            return None
        from royaltysim.calibration import PUBLISHED_FACTS

        keys = [f.key for f in PUBLISHED_FACTS]
        unknown = [f for f in facts if f not in keys]
        if unknown or not facts:
            raise ValueError(f"unknown or no facts {unknown}; facts: {', '.join(keys)}")
        return facts

    @model_validator(mode="after")
    def _budget(self) -> FitSpec:
        if self.evaluations < len(self.params) + 1:
            raise ValueError(f"{self.evaluations} evaluations cannot even build the first simplex of "
                             f"{len(self.params)} parameters; give at least {len(self.params) + 1}")
        return self

    @property
    def paths(self) -> list[str]:
        return list(self.params)

    def chosen_facts(self) -> tuple[PublishedFact, ...]:
        from royaltysim.calibration import PUBLISHED_FACTS

        if self.facts is None:
            return tuple(f for f in PUBLISHED_FACTS if f.pinned)
        return tuple(f for f in PUBLISHED_FACTS if f.key in self.facts)


def parse_param(text: str) -> tuple[str, tuple[float, float]]:
    """``"behaviour.talent_sigma=3:4.5"`` -> ``("behaviour.talent_sigma", (3.0, 4.5))`` (the CLI's --param)."""
    path, sep, rng = text.partition("=")
    lo, sep2, hi = rng.partition(":")
    try:
        if not (sep and sep2 and path.strip()):
            raise ValueError
        return path.strip(), (float(lo), float(hi))
    except ValueError:
        raise FitError(f"--param {text!r}: expected PATH=LOW:HIGH, e.g. behaviour.talent_sigma=3.0:4.5") from None


# --------------------------------------------------------------------------- scenario paths


def _with_values(base: dict, values: dict[str, Any]) -> dict:
    from royaltysim.sweep import SweepError, set_path

    raw = copy.deepcopy(base)
    for path, value in values.items():
        try:
            set_path(raw, path, value)
        except SweepError as err:
            raise FitError(str(err).replace("sweep parameter", "parameter")) from None
    return raw


def fit_issues(base: dict, spec: FitSpec) -> list[tuple[str, str]]:
    """Every fitted path must be a number in the scenario, and both ends of its range a valid scenario.

    ``base`` is the scenario as a JSON dict; returns ``(key path, message)`` pairs as
    :func:`royaltysim.config.validate_scenario` reports them.
    """
    from royaltysim.config import Scenario
    from royaltysim.sweep import get_path

    issues: list[tuple[str, str]] = []
    for path, (lo, hi) in spec.params.items():
        key = f"fit.params.{path}"
        try:
            current = get_path(base, path)
        except Exception:  # noqa: BLE001 - any failure to walk the path is the same user error
            issues.append((key, "not a key of the scenario; give a dotted path such as behaviour.talent_sigma"))
            continue
        if not isinstance(current, float):  # an int setting would get non-integer candidates from Nelder-Mead
            issues.append((key, f"only real-valued parameters can be fitted; it holds {current!r}"))
            continue
        for value in (lo, hi):
            try:
                Scenario.model_validate(_with_values(base, {path: value}))
            except ValidationError as err:
                msg = "; ".join(e["msg"] for e in err.errors())
                issues.append((key, f"{value!r} is not an allowed value: {msg}; narrow the range"))
    return issues


# --------------------------------------------------------------------------- the estimator


def distance(moments: dict[str, float], facts: tuple[PublishedFact, ...]) -> float:
    """``sum_k ((m_k - v_k) / h_k) ** 2`` with ``h_k`` the half-width of fact k's band (>= 0; 0 on every value)."""
    return float(sum(((moments[f.key] - f.value) / ((f.high - f.low) / 2.0)) ** 2 for f in facts))


@dataclass
class FitResult:
    """A finished fit.

    Attributes:
        params: one row per parameter: ``estimate``, ``start``, ``low``, ``high``, and over the bootstrap
            refits ``boot_mean``, ``boot_sd``, ``boot_min``, ``boot_max``, ``n_boot``.
        facts: one row per fitted fact at the estimate: ``published``, ``low``, ``high``, ``tolerance``
            (half-width), ``simulated`` (mean over the seeds), ``seed_sd``, ``error`` (simulated - published),
            ``contribution`` (its term of the distance), ``within``; plus the same at the start
            (``simulated_start``, ``contribution_start``).
        trace: every evaluation: ``fit`` (0 the main fit, b >= 1 a bootstrap refit), ``evaluation``,
            ``seeds``, one column per parameter, ``distance``.
        distance: the distance at the estimate; ``start_distance`` at the start.
        seeds: the seeds of the main fit.
        runtime_s: wall-clock seconds of everything.
        simulations: simulations run (the facts table reuses the fit's own).
        date: UTC date of the fit, for docs/parameters.md's "fitted (date, distance)".
    """

    params: pd.DataFrame
    facts: pd.DataFrame
    trace: pd.DataFrame
    distance: float
    start_distance: float
    seeds: list[int]
    runtime_s: float
    simulations: int
    date: str

    def spread(self, param: str) -> str:
        """The bootstrap's word on one parameter: sd and range over the refits (a single refit: its value)."""
        r = self.params.set_index("param").loc[param]
        n = int(r["n_boot"])  # a row of mixed columns comes back as floats
        if n == 0:
            return "no bootstrap"
        if n == 1:
            return f"1 refit on other seeds: {r['boot_min']:.4g}"
        return f"sd {r['boot_sd']:.3g} over {n} refits on other seeds ({r['boot_min']:.4g}-{r['boot_max']:.4g})"

    @property
    def estimate(self) -> dict[str, float]:
        return dict(zip(self.params["param"], self.params["estimate"], strict=True))

    def overlay_yaml(self, source: str = "") -> str:
        """The estimate as a scenario overlay: ``royaltysim run SCENARIO --overlay FILE``."""
        lines = [
            f"# fitted by royaltysim calibrate --fit{(' ' + source) if source else ''} on {self.date}",
            f"# distance {self.distance:.4g} (start {self.start_distance:.4g}) over {len(self.facts)} facts, "
            f"seeds {self.seeds}, {self.simulations} simulations, {self.runtime_s:.0f} s",
            "# apply with: royaltysim run SCENARIO --overlay THIS_FILE",
        ]
        for r in self.params.itertuples():
            lines.append(f"# {r.param}: {self.spread(r.param)}")
        body = yaml.safe_dump({p: float(f"{v:.6g}") for p, v in self.estimate.items()}, sort_keys=False)
        return "\n".join(lines) + "\n" + body


def _moments(
    scenario: Scenario, seeds: list[int], keys: list[str], table: AttributionTable | None,
    simulate: Callable[..., Any],
) -> tuple[dict[str, float], dict[str, float]] | None:
    from royaltysim.calibration import simulated_facts

    per_seed = []
    for s in seeds:
        try:
            facts = simulated_facts(simulate(scenario, seed=s, table=table))
        except ValueError:  # a fact undefined for this candidate (e.g. too few paid creators in the tail)
            return None
        per_seed.append([facts[k] for k in keys])
    arr = np.array(per_seed)
    sd = arr.std(axis=0, ddof=1) if len(seeds) > 1 else np.full(len(keys), np.nan)
    return dict(zip(keys, arr.mean(axis=0), strict=True)), dict(zip(keys, sd, strict=True))


def _fit_once(
    base: dict, spec: FitSpec, facts: tuple[PublishedFact, ...], seeds: list[int], start: np.ndarray,
    table: AttributionTable | None, simulate: Callable[..., Any], fit_id: int, trace: list[dict],
    memo: dict[tuple, Any], progress: Callable[[str], None] | None,
) -> np.ndarray:
    from scipy.optimize import minimize

    from royaltysim.config import Scenario

    lo = np.array([r[0] for r in spec.params.values()])
    hi = np.array([r[1] for r in spec.params.values()])
    keys = [f.key for f in facts]
    cache: dict[tuple[float, ...], float] = {}

    def objective(u: np.ndarray) -> float:
        theta = lo + np.clip(u, 0.0, 1.0) * (hi - lo)
        key = tuple(np.round(theta, 10))
        if key in cache:
            return cache[key]
        scenario = Scenario.model_validate(_with_values(base, dict(zip(spec.paths, map(float, theta), strict=True))))
        got = memo[(key, tuple(seeds))] = _moments(scenario, seeds, keys, table, simulate)
        d = FAILED_DISTANCE if got is None else distance(got[0], facts)
        cache[key] = d
        trace.append({"fit": fit_id, "evaluation": len(cache), "seeds": ",".join(map(str, seeds)),
                      **dict(zip(spec.paths, theta, strict=True)), "distance": d})
        if progress is not None:
            progress(f"fit {fit_id}: evaluation {len(cache)}/{spec.evaluations}, distance {d:.4g}")
        return d

    u0 = (start - lo) / (hi - lo)
    # the first simplex reaches a quarter of each range from the start, towards the range's wider side
    simplex = [u0]
    for i in range(u0.size):
        v = u0.copy()
        v[i] += 0.25 if u0[i] <= 0.5 else -0.25
        simplex.append(v)
    res = minimize(objective, u0, method="Nelder-Mead", bounds=[(0.0, 1.0)] * u0.size,
                   options={"maxfev": spec.evaluations, "initial_simplex": np.array(simplex),
                            "xatol": 1e-3, "fatol": 1e-4})
    # the best point evaluated (Nelder-Mead returns it, but a cached revisit could tie): take the trace's
    best = min((t for t in trace if t["fit"] == fit_id), key=lambda t: t["distance"])
    theta = np.array([best[p] for p in spec.paths])
    assert np.all(theta >= lo - 1e-12) and np.all(theta <= hi + 1e-12), (theta, res)
    return theta


def fit(
    scenario: Scenario,
    spec: FitSpec | None = None,
    *,
    facts: tuple[PublishedFact, ...] | None = None,
    table: AttributionTable | None = None,
    simulate: Callable[..., Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> FitResult:
    """Estimate ``spec``'s parameters by the method of simulated moments, with a bootstrap over seed sets.

    Args:
        scenario: a validated scenario (the calibration scenario); its values are the start.
        spec: what to fit (default: the scenario's ``fit:`` section).
        facts: the facts to fit (default: ``spec``'s choice of :data:`~royaltysim.calibration.PUBLISHED_FACTS`);
            the recovery test passes facts that the model itself generated.
        table: the attribution table, loaded once here when left out.
        simulate: the simulation (default :func:`royaltysim.calibration.simulate`).
        progress: called with a line after every evaluation.
    """
    from attribution.table import AttributionTable

    from royaltysim import calibration
    from royaltysim.config import Scenario
    from royaltysim.sweep import get_path

    spec = spec if spec is not None else scenario.fit
    if spec is None:
        raise FitError("the scenario has no `fit:` section; add one (see scenarios/calibration.yaml) or give "
                       "the parameters to fit, e.g. --param behaviour.talent_sigma=3.0:4.5")
    facts = facts if facts is not None else spec.chosen_facts()
    run_one = simulate if simulate is not None else calibration.simulate
    n_sims = 0

    def simulate(*args: Any, **kwargs: Any) -> Any:
        nonlocal n_sims
        n_sims += 1
        return run_one(*args, **kwargs)

    t0 = time.perf_counter()
    base = scenario.model_dump(mode="json")
    base["fit"] = None
    issues = fit_issues(base, spec)
    if issues:
        raise FitError("cannot fit: " + "; ".join(f"{k}: {m}" for k, m in issues))
    table = table if table is not None else AttributionTable.load(scenario.source.run, outputs=scenario.source.outputs)
    lo = np.array([r[0] for r in spec.params.values()])
    hi = np.array([r[1] for r in spec.params.values()])
    start = np.clip(np.array([float(get_path(base, p)) for p in spec.paths]), lo, hi)
    trace: list[dict] = []
    memo: dict[tuple, Any] = {}  # (parameter point, seeds) -> moments: the facts table reuses the fit's runs
    seed_sets = [[scenario.seed + b * spec.seeds + i for i in range(spec.seeds)] for b in range(spec.bootstrap + 1)]
    estimates = [_fit_once(base, spec, facts, seeds, start, table, simulate, b, trace, memo, progress)
                 for b, seeds in enumerate(seed_sets)]
    theta = estimates[0]
    boot = np.array(estimates[1:]) if spec.bootstrap else np.full((1, theta.size), np.nan)

    keys = [f.key for f in facts]
    at = {}
    for name, point in (("estimate", theta), ("start", start)):
        got = memo.get((tuple(np.round(point, 10)), tuple(seed_sets[0])))
        if got is None:
            sc = Scenario.model_validate(_with_values(base, dict(zip(spec.paths, map(float, point), strict=True))))
            got = _moments(sc, seed_sets[0], keys, table, simulate)
        if got is None:
            raise FitError(f"the facts cannot be computed at the {name} {dict(zip(spec.paths, point))}")
        at[name] = got
    mean, sd = at["estimate"]
    rows = []
    for f in facts:
        h = (f.high - f.low) / 2.0
        rows.append({"fact": f.key, "label": f.label, "published": f.value, "low": f.low, "high": f.high,
                     "tolerance": h, "simulated": mean[f.key], "seed_sd": sd[f.key],
                     "error": mean[f.key] - f.value, "contribution": ((mean[f.key] - f.value) / h) ** 2,
                     "within": bool(f.low <= mean[f.key] <= f.high), "unit": f.unit,
                     "simulated_start": at["start"][0][f.key],
                     "contribution_start": ((at["start"][0][f.key] - f.value) / h) ** 2})
    fact_table = pd.DataFrame(rows)
    param_table = pd.DataFrame({
        "param": spec.paths, "estimate": theta, "start": start, "low": lo, "high": hi,
        "boot_mean": boot.mean(axis=0), "boot_sd": boot.std(axis=0, ddof=1) if len(boot) > 1 else np.nan,
        "boot_min": boot.min(axis=0), "boot_max": boot.max(axis=0), "n_boot": spec.bootstrap,
    })
    return FitResult(
        params=param_table, facts=fact_table, trace=pd.DataFrame(trace),
        distance=float(fact_table["contribution"].sum()), start_distance=float(fact_table["contribution_start"].sum()),
        seeds=seed_sets[0], runtime_s=time.perf_counter() - t0, simulations=n_sims,
        date=_dt.datetime.now(_dt.UTC).date().isoformat(),
    )


def fit_from_cli(
    scenario: Scenario, params: list[str] | None, evaluations: int | None, bootstrap: int | None,
    progress: Callable[[str], None] | None = None,
) -> tuple[FitResult, FitSpec]:
    """The fit ``royaltysim calibrate --fit`` asks for: the scenario's ``fit:`` section with the CLI's overrides.

    ``--param PATH=LOW:HIGH`` (repeatable) replaces the section's parameters (and makes one when there is none);
    the spec is validated again, so a bad path or range is a message.
    """
    raw = scenario.fit.model_dump() if scenario.fit is not None else {}
    if params:
        raw["params"] = dict(parse_param(p) for p in params)
    if not raw.get("params"):
        raise FitError("nothing to fit: the scenario has no `fit:` section; add one (see "
                       "scenarios/calibration.yaml) or give --param PATH=LOW:HIGH")
    for key, value in (("evaluations", evaluations), ("bootstrap", bootstrap)):
        if value is not None:
            raw[key] = value
    try:
        spec = FitSpec.model_validate(raw)
    except ValidationError as err:
        raise FitError("fit: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())) from None
    return fit(scenario, spec, progress=progress), spec


def write_fit(result: FitResult, spec: FitSpec, scenario: Scenario, folder: Path, source: str = "") -> None:
    """Write a fit's folder: fit.parquet, facts.parquet, trace.parquet, overlay.yaml, scenario.yaml (with the fit)
    and fit.png (:func:`royaltysim.fit_figure.plot_fit`)."""
    from royaltysim.config import scenario_to_yaml
    from royaltysim.fit_figure import plot_fit

    for name, df in (("fit", result.params), ("facts", result.facts), ("trace", result.trace)):
        df.assign(date=result.date, distance_total=result.distance).to_parquet(folder / f"{name}.parquet", index=False)
    (folder / "overlay.yaml").write_text(result.overlay_yaml(source))
    fitted = apply_overlay(scenario.model_copy(update={"fit": spec}), result.estimate, source="fitted scenario")
    (folder / "scenario.yaml").write_text(
        "# the scenario at the fitted values (its fit: section is what was fitted)\n" + scenario_to_yaml(fitted))
    plot_fit(result, folder / "fit.png")


# --------------------------------------------------------------------------- overlays


def read_overlay(path: str | Path) -> dict[str, Any]:
    """Read an overlay: a YAML mapping of dotted scenario paths to scalar values (what a fit writes)."""
    from royaltysim.safe_yaml import YamlError, load_yaml_file

    try:
        raw = load_yaml_file(path, what="overlay")
    except YamlError as exc:
        raise FitError(f"{exc.where}: {exc.problem}") from None
    if not isinstance(raw, dict) or not raw:
        raise FitError(f"{path}: an overlay is a non-empty mapping of dotted paths to values, e.g. "
                       f"'behaviour.talent_sigma: 3.7'; got {type(raw).__name__}")
    bad = [str(k) for k, v in raw.items() if not isinstance(k, str) or isinstance(v, dict | list)]
    if bad:
        raise FitError(f"{path}: keys must be dotted paths with single values; bad entries: {bad}")
    return raw


def apply_overlay(scenario: Scenario, overlay: dict[str, Any], *, source: str = "overlay") -> Scenario:
    """The scenario with the overlay's values set, validated again (every problem listed)."""
    from royaltysim.config import ScenarioError, validate_scenario

    raw = scenario.model_dump(mode="json")
    issues = []
    for path, value in overlay.items():
        try:
            raw = _with_values(raw, {path: value})
        except FitError as err:
            issues.append((path, str(err)))
    try:  # the values that did land are checked too, so every problem is reported at once
        checked = validate_scenario(raw, source=source)
    except ScenarioError as err:
        issues += err.issues
    if issues:
        raise ScenarioError(source, issues)
    return checked


def load_with_overlay(file: str | Path, overlay: str | Path) -> Scenario:
    """Load a scenario file and apply an overlay file to it (``royaltysim run FILE --overlay OVERLAY``)."""
    from royaltysim.config import load_scenario

    return apply_overlay(load_scenario(file), read_overlay(overlay), source=f"{file} + {overlay}")
