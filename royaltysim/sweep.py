"""Parameter sweeps with replicate seeds, run on Dask, resumable, summarised with confidence intervals.

A sweep is declared in a scenario's ``sweep:`` section::

    sweep:
      grid:                       # every combination of these values (dotted paths into the scenario)
        platform.platform_cut: [0.2, 0.3, 0.4]
        schemes[2].ai.params.top_k: [1, 3]
      samples:                    # plus / or: random draws over ranges
        n: 8
        params:
          behaviour.cost_per_work: {uniform: [0.05, 0.2]}
      replicates: 10              # seeds per parameter point: seed, seed+1, ...

Each run is one (parameter point, seed) pair and runs every arm of the scenario on common random numbers
(:func:`royaltysim.run`). Runs execute on ``dask.distributed``: a local cluster sized to the machine by
default, or an existing cluster (``scheduler="tcp://host:8786"``). Each finished run is written
atomically to ``runs/<run_id>.parquet`` where ``run_id`` hashes the run's whole resolved scenario (every
field, with the sweep's ``steps`` and the point's parameters applied, and its seed) and the contents of the
source run's data files (:func:`source_fingerprint`: a rebuilt ground truth is new runs). So an interrupted
sweep resumes by running only what is missing, an edited scenario or sweep never reuses a run made from
other settings, and the result does not depend on the number of workers (every run is seeded by its own
seed alone). A run that raises is recorded in ``failures.json`` with its parameters, seed and traceback,
and the sweep goes on. A sweep's size is checked before it is expanded (at most :data:`MAX_RUNS` runs).

The combined table ``sweep.parquet`` has one row per (run, scheme, step) with every swept parameter and
the seed as columns; ``summary.parquet`` has each metric's mean, standard deviation and 95% confidence
interval (Student t over replicates) by scheme and parameter point, at each run's final step (a grid
over ``steps`` keeps every point). ``creator_income.parquet`` keeps each run's per-creator whole-run
income, and ``measures.parquet`` the run-level measures computed from it (``gini_income_run`` and the
rest of :data:`royaltysim.measures.MEASURES`), one row per (run, scheme).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import re
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from royaltysim.errors import InputError

__all__ = [
    "ParamRange",
    "SweepSpec",
    "SweepRun",
    "SweepResult",
    "SweepError",
    "expand_sweep",
    "set_path",
    "get_path",
    "run_sweep",
    "resolved_run",
    "sweep_points",
    "summarise",
    "final_rows",
    "check_workers",
    "default_workers",
    "largest_run",
    "SUMMARY_METRICS",
    "MAX_RUNS",
]

#: the metrics a sweep summary and report show first
SUMMARY_METRICS = ["gini_income_month", "top10_share_income_month", "ai_misallocation_month", "active_creators",
                   "consumer_welfare", "platform_margin", "opted_in", "ai_quality", "unallocated_ai_share",
                   "unallocated_human_share"]

#: most runs one sweep may have (parameter points x replicates), checked before anything is expanded
MAX_RUNS = 100_000

RUNS_DIR = "runs"
SWEEP_FILE = "sweep.parquet"
SUMMARY_FILE = "summary.parquet"
#: per-creator whole-run income of every run (what run-level measures such as gini_income_run are computed from)
CREATOR_INCOME_FILE = "creator_income.parquet"
#: run-level measures (royaltysim.measures.MEASURES) of every run and scheme
MEASURES_FILE = "measures.parquet"
FAILURES_FILE = "failures.json"


class SweepError(InputError, ValueError):
    """A sweep cannot run as declared (unknown parameter path, too many runs, bad workers, no scheduler, ...)."""


class ParamRange(BaseModel):
    """A random-sample range: exactly one of ``uniform``, ``loguniform``, ``integers`` or ``choice``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    integers: tuple[int, int] | None = None  # inclusive bounds
    choice: list[Any] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ParamRange:
        given = [k for k in ("uniform", "loguniform", "integers", "choice") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of uniform, loguniform, integers, choice (got {given or 'none'})")
        lo_hi = self.uniform or self.loguniform or self.integers
        if lo_hi is not None and lo_hi[0] > lo_hi[1]:
            raise ValueError(f"lower bound {lo_hi[0]} is above upper bound {lo_hi[1]}")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ValueError("loguniform bounds must be > 0")
        if self.choice is not None and not self.choice:
            raise ValueError("choice needs at least one value")
        return self

    def draw(self, rng: np.random.Generator) -> Any:
        if self.uniform is not None:
            return float(rng.uniform(*self.uniform))
        if self.loguniform is not None:
            lo, hi = self.loguniform
            return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        if self.integers is not None:
            return int(rng.integers(self.integers[0], self.integers[1] + 1))
        return self.choice[int(rng.integers(len(self.choice)))]


class SampleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    n: int = Field(0, ge=0, le=MAX_RUNS)
    seed: int = Field(0, ge=0)
    params: dict[str, ParamRange] = Field(default_factory=dict)


class SweepSpec(BaseModel):
    """The ``sweep:`` section of a scenario."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    samples: SampleSpec = Field(default_factory=SampleSpec)
    replicates: int = Field(5, ge=1, le=10_000)
    steps: int | None = Field(
        None, ge=1, le=10_000, description="months of every run (a grid over `steps` sets them per point instead)"
    )

    @model_validator(mode="after")
    def _non_empty(self) -> SweepSpec:
        for path, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{path} has no values")
        if self.samples.n and not self.samples.params:
            raise ValueError("samples.n > 0 needs samples.params to draw")
        if self.n_runs > MAX_RUNS:
            sizes = " x ".join([str(len(v)) for v in self.grid.values()] + ([f"{self.samples.n} samples"]
                                                                              if self.samples.n else []))
            raise ValueError(
                f"{self.n_runs:,} runs ({sizes or '1 point'} x {self.replicates} replicates) is more than a sweep "
                f"may have ({MAX_RUNS:,}); sweep fewer values, draw `samples` instead of a full grid, or split it "
                "into several sweeps"
            )
        return self

    @property
    def n_points(self) -> int:
        """Parameter points (grid combinations x random samples), computed without expanding them."""
        return math.prod(len(v) for v in self.grid.values()) * max(self.samples.n, 1)

    @property
    def n_runs(self) -> int:
        """Runs of the sweep: parameter points x replicate seeds."""
        return self.n_points * self.replicates


# ------------------------------------------------------------------ dotted paths into a scenario dict
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _tokens(path: str) -> list[str | int]:
    out: list[str | int] = []
    for name, index in _TOKEN.findall(path):
        out.append(int(index) if index else name)
    if not out:
        raise SweepError(f"empty parameter path {path!r}")
    return out


def get_path(raw: dict, path: str) -> Any:
    node: Any = raw
    for tok in _tokens(path):
        node = node[tok]
    return node


def set_path(raw: dict, path: str, value: Any) -> None:
    """Set ``raw[a][b][i]...`` for a path like ``"schemes[2].ai.params.top_k"``.

    Every step but the last must exist; the last may be a new key only inside a ``params`` mapping
    (scheme and network parameters, which scenarios may leave at their defaults).
    """
    toks = _tokens(path)
    node: Any = raw
    for depth, tok in enumerate(toks[:-1]):
        try:
            node = node[tok]
        except (KeyError, IndexError, TypeError):
            valid = list(node) if isinstance(node, dict) else f"indices 0..{len(node) - 1}" if isinstance(node, list) else []
            where = ".".join(str(t) for t in toks[:depth]) or "the scenario"
            raise SweepError(f"sweep parameter {path!r}: {tok!r} is not in {where}; valid: {valid}") from None
    last = toks[-1]
    if isinstance(node, dict) and last not in node and toks[-2:-1] != ["params"]:
        raise SweepError(f"sweep parameter {path!r}: {last!r} is not a key there; valid: {sorted(node)}")
    if isinstance(node, list) and not (isinstance(last, int) and last < len(node)):
        raise SweepError(f"sweep parameter {path!r}: index {last} out of range 0..{len(node) - 1}")
    node[last] = value


@dataclass(frozen=True)
class SweepRun:
    run_id: str
    point: int  # index of the parameter point
    params: dict[str, Any]
    seed: int


def resolved_run(base: dict, params: dict[str, Any], seed: int, steps: int | None = None) -> dict:
    """The resolved scenario dict of one sweep run: ``base`` with the sweep's ``steps``, the point's
    parameters (a grid over ``steps`` wins over ``sweep.steps``) and the seed applied."""
    raw = copy.deepcopy(base)
    raw.pop("sweep", None)
    if steps is not None:
        raw["steps"] = steps
    for path, value in params.items():
        set_path(raw, path, value)
    raw["seed"] = seed
    if "seeds" in raw:
        raw["seeds"] = 1  # a sweep run is one seed; its replicates are runs of their own
    return raw


def _run_id(scenario: dict, source_data: str) -> str:
    """Hash of everything that determines a run: its whole scenario and the source run's data."""
    payload = json.dumps({"scenario": scenario, "source_data": source_data}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# the attribution run's data an economy reads: a run id must change when they do (a rebuilt ground truth or a
# re-evaluated SNR or best method, which `causal_method: best` pays on), or a resumed sweep would silently reuse
# runs made from the old data
SOURCE_DATA = ("*.parquet", "scored/*.parquet", "ground_truth/*.parquet", "ground_truth/*.sha256", "evaluation/creator_snr.parquet",
               "evaluation/best_method.yaml", "evaluation/best_scores.parquet")


def source_fingerprint(base: dict) -> str:
    """Hash of the contents of the source run's data files (empty when the scenario names no run folder)."""
    run = (base.get("source") or {}).get("run")
    if not run or not Path(run).is_dir():
        return ""
    h = hashlib.sha256()
    for pattern in SOURCE_DATA:
        for f in sorted(Path(run).glob(pattern)):
            h.update(f"{f.relative_to(run)}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def sweep_points(base: dict, spec: SweepSpec) -> list[dict[str, Any]]:
    """The parameter points of a sweep (grid x samples, without seeds); checks every path against ``base``."""
    if spec.n_runs > MAX_RUNS:  # a spec built without validation (model_construct) is checked here too
        raise SweepError(f"{spec.n_runs:,} runs is more than a sweep may have ({MAX_RUNS:,})")
    grid_keys = list(spec.grid)
    grid_points = [dict(zip(grid_keys, combo)) for combo in itertools.product(*spec.grid.values())] or [{}]
    rng = np.random.default_rng(spec.samples.seed)
    sample_points = [
        {path: rng_range.draw(rng) for path, rng_range in spec.samples.params.items()} for _ in range(spec.samples.n)
    ] or [{}]
    points = [{**g, **s} for g in grid_points for s in sample_points]
    probe = copy.deepcopy(base)
    for path in {p for point in points for p in point}:
        set_path(probe, path, get_path(probe, path) if _exists(probe, path) else 0)
    return points


def expand_sweep(base: dict, spec: SweepSpec, base_seed: int, points: list[dict[str, Any]] | None = None
                 ) -> list[SweepRun]:
    """All (parameter point, replicate seed) runs of a sweep, each keyed to its whole resolved scenario.

    ``points`` replaces the spec's grid and samples with a design made elsewhere (a sensitivity analysis's
    Saltelli or Morris samples, :mod:`royaltysim.sensitivity`); the spec still gives replicates and steps.
    """
    points = sweep_points(base, spec) if points is None else points
    data = source_fingerprint(base)
    return [
        SweepRun(_run_id(resolved_run(base, point, base_seed + r, spec.steps), data), i, point, base_seed + r)
        for i, point in enumerate(points)
        for r in range(spec.replicates)
    ]


def _exists(raw: dict, path: str) -> bool:
    try:
        get_path(raw, path)
        return True
    except (KeyError, IndexError, TypeError):
        return False


# ------------------------------------------------------------------ one run (executes on a Dask worker)
def execute_run(scenario: dict, run: SweepRun, out_file: str, source: str) -> dict:
    """Run one sweep run (its resolved scenario dict) and write its model table atomically; never raises."""
    t0 = time.perf_counter()
    try:
        from royaltysim.atomic import atomic_file
        from royaltysim.config import validate_scenario
        from royaltysim.runner import run as run_scenario

        checked = validate_scenario(scenario, source=f"{source} with {run.params}, seed {run.seed}", check_files=True)
        res = run_scenario(checked, seed=run.seed)
        table = res.model.copy()
        table.insert(0, "run_id", run.run_id)
        income = res.creator_income().drop(columns=["name"])
        income.insert(0, "run_id", run.run_id)
        for path, value in run.params.items():
            table[path] = value
            income[path] = value
        with atomic_file(_income_file(out_file)) as tmp:  # first: the model table marks the run as done
            income.to_parquet(tmp, index=False)
        with atomic_file(out_file) as tmp:
            table.to_parquet(tmp, index=False)
        return {"run_id": run.run_id, "ok": True, "seconds": time.perf_counter() - t0}
    except Exception as exc:  # a failed run is reported, the sweep goes on
        return {
            "run_id": run.run_id,
            "ok": False,
            "params": run.params,
            "seed": run.seed,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
            "seconds": time.perf_counter() - t0,
        }


# ------------------------------------------------------------------ the sweep
@dataclass
class SweepResult:
    """Everything a sweep produced; ``table`` is one row per (run, scheme, step)."""

    out_dir: Path
    table: pd.DataFrame
    summary: pd.DataFrame
    params: list[str]
    failures: list[dict]
    ran: int  # runs executed in this call (the rest were already done)
    total: int
    #: per (run, scheme, creator) whole-run income (royaltysim.measures.creator_income) with run_id and parameters
    creator_income: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: run-level measures per (run, scheme), with point, parameters and seed (royaltysim.measures.sweep_measures)
    measures: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: every (point, seed) run of the sweep, in point order, with its run_id (a repeated point repeats its run)
    runs: list[SweepRun] = field(default_factory=list)


def default_workers() -> int:
    """A local cluster's size when ``--workers`` is left out: the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _local_cluster(workers: int | None):
    from dask.distributed import LocalCluster

    return LocalCluster(
        n_workers=workers or default_workers(), threads_per_worker=1, processes=True, dashboard_address=None,
        host="127.0.0.1", silence_logs=40,
    )


# scenario paths whose values change what a run costs (see royaltysim.resources.Sizes)
_SIZE_PATHS = ("steps", "consumers.n", "consumers.sessions", "network.", "source.")


def largest_run(scenario: Any) -> dict:
    """The resolved scenario dict of the sweep's costliest run (by estimated memory, then time).

    Only the swept values that change a run's sizes are tried (each distinct combination once), so a
    sweep over royalty rates costs one estimate however many points it has.
    """
    from royaltysim.resources import estimate

    base = scenario.model_dump(mode="json")
    spec = SweepSpec.model_validate(base.pop("sweep"))
    candidates: dict[str, dict] = {}
    for point in sweep_points(base, spec):
        sized = {p: v for p, v in point.items() if p.startswith(_SIZE_PATHS)}
        key = json.dumps(sized, sort_keys=True, default=str)
        if key not in candidates:
            candidates[key] = resolved_run(base, sized, int(base.get("seed", 0)), spec.steps)
    costs = {key: estimate(raw) for key, raw in candidates.items()}
    worst = max(costs, key=lambda k: (costs[k].memory_bytes, costs[k].seconds))
    return candidates[worst]


#: seconds to wait for an existing Dask scheduler (``--scheduler``) before giving up with a message
SCHEDULER_TIMEOUT_S = 10


def check_workers(workers: int | None) -> None:
    """A local cluster needs at least one worker (``-1`` or ``0`` would start none and wait forever)."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SweepError(f"--workers must be a whole number >= 1 (the local cluster's worker processes); got {workers!r}. "
                         "Leave it out to use one per core")


def _connect(scheduler: str):
    """A client of the Dask scheduler at ``scheduler``; :class:`SweepError` with the fix when it cannot be reached."""
    from dask.distributed import Client

    try:
        return Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SweepError(
            f"--scheduler {scheduler}: no Dask scheduler could be reached within {SCHEDULER_TIMEOUT_S} s ({reason}). "
            "Start one (`dask scheduler`, then `dask worker ADDRESS` on each machine) and give its address, "
            "e.g. tcp://10.0.0.5:8786, or leave out --scheduler to run on a local cluster"
        ) from None


#: a sweep folder holds this folder of finished runs; a folder with it is resumed without --force
SWEEP_MARK = RUNS_DIR


def run_sweep(
    base: dict,
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    base_seed: int | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    source: str = "scenario",
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
    points: list[dict[str, Any]] | None = None,
) -> SweepResult:
    """Run every missing run of a sweep on Dask and combine all runs into tidy tables.

    Args:
        base: the resolved scenario as a dict (``Scenario.model_dump(mode="json")``, paths absolute).
        spec: the sweep declaration.
        out_dir: sweep folder; finished runs already in it (made from the same scenario, seed and source
            data: see :func:`expand_sweep`) are not run again.
        scheduler: address of an existing Dask scheduler; None starts a local cluster.
        base_seed: the first replicate's seed (default: the scenario's seed); replicates count up.
        workers: local cluster size (default: the machine's cores; at least 1).
        progress: called as ``progress(done, total)`` after each run finishes.
        force: write into an existing non-empty folder that is not a sweep folder.
        points: parameter points to run instead of the spec's grid and samples (see :func:`expand_sweep`).

    Raises:
        SweepError: bad workers, too many runs, or an unreachable scheduler (before any run starts).
        OutputFolderError: ``out_dir`` is a file, not writable, or holds other results (without ``force``).
    """
    from royaltysim.atomic import atomic_file, check_out_folder, write_text_atomic

    check_workers(workers)
    out = check_out_folder(out_dir, force=force, reuse_if=SWEEP_MARK)
    base = {k: v for k, v in base.items() if k != "sweep"}
    runs = expand_sweep(base, spec, int(base.get("seed", 0)) if base_seed is None else base_seed, points)
    (out / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    unique = list({r.run_id: r for r in runs}.values())  # a design may repeat a point (Morris trajectories do)
    pending = [r for r in unique if not all(f.exists() for f in _run_files(out, r.run_id))]
    done = len(unique) - len(pending)
    if progress:
        progress(done, len(unique))
    failures: list[dict] = []
    if pending:
        from dask.distributed import as_completed

        client = _connect(scheduler) if scheduler else None
        cluster = None
        try:
            if client is None:
                from dask.distributed import Client

                cluster = _local_cluster(workers)
                client = Client(cluster)
            futures = [
                client.submit(
                    execute_run, resolved_run(base, r.params, r.seed, spec.steps), r,
                    str(out / RUNS_DIR / f"{r.run_id}.parquet"), source,
                    key=f"royaltysim-run-{r.run_id}", pure=False,
                )
                for r in pending
            ]
            for fut in as_completed(futures):
                record = fut.result()
                if not record["ok"]:
                    failures.append(record)
                done += 1
                if progress:
                    progress(done, len(unique))
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
    write_text_atomic(out / FAILURES_FILE, json.dumps(failures, indent=2, default=str))
    params = list(dict.fromkeys(p for r in runs for p in r.params))
    wanted = {r.run_id for r in runs}
    files = [out / RUNS_DIR / f"{rid}.parquet" for rid in sorted(wanted)]
    frames = [pd.read_parquet(f) for f in files if f.exists()]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not table.empty:
        # the point index and the parameter columns belong to this spec: a run file may come from an earlier,
        # edited one that made the same run (the same resolved scenario) by setting other keys
        table.insert(1, "point", table["run_id"].map({r.run_id: r.point for r in runs}))
        for path in params:
            table[path] = table["run_id"].map({r.run_id: r.params.get(path) for r in runs})
        table = table.sort_values(["point", "seed", "scheme", "step"], kind="stable").reset_index(drop=True)
    with atomic_file(out / SWEEP_FILE) as tmp:
        table.to_parquet(tmp, index=False)
    summary = summarise(table, params) if not table.empty else pd.DataFrame()
    with atomic_file(out / SUMMARY_FILE) as tmp:
        summary.to_parquet(tmp, index=False)
    from royaltysim.measures import sweep_measures

    incomes = [pd.read_parquet(_income_file(f)) for f in files if f.exists() and _income_file(f).exists()]
    income = pd.concat(incomes, ignore_index=True) if incomes else pd.DataFrame()
    if not income.empty and "run_id" in income.columns:
        for path in params:  # (as for the model table: this spec's parameters)
            income[path] = income["run_id"].map({r.run_id: r.params.get(path) for r in runs})
    measures = sweep_measures(table, income, params)
    for name, frame in ((CREATOR_INCOME_FILE, income), (MEASURES_FILE, measures)):
        with atomic_file(out / name) as tmp:
            frame.to_parquet(tmp, index=False)
    return SweepResult(out, table, summary, params, failures, ran=len(pending), total=len(unique),
                       creator_income=income, measures=measures, runs=runs)


def _income_file(run_file: str | Path) -> Path:
    """Where a run's per-creator income lies, beside its model table (``runs/<id>.income.parquet``)."""
    return Path(run_file).with_suffix(".income.parquet")


def _run_files(out: Path, run_id: str) -> tuple[Path, Path]:
    main = out / RUNS_DIR / f"{run_id}.parquet"
    return main, _income_file(main)


def final_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Each run's final month (per ``run_id`` when the table has one, so runs of different lengths all count)."""
    if "run_id" in table.columns:
        return table[table["step"] == table.groupby("run_id")["step"].transform("max")]
    return table[table["step"] == table["step"].max()]


def summarise(table: pd.DataFrame, params: Iterable[str], metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """Mean, std, n and 95% CI of each metric at the final step, by scheme x point.

    The interval is Student t over seeds kept inside the metric's bounds (:func:`royaltysim.stats.mean_interval`:
    a share's interval never runs past 1).
    """
    from royaltysim.measures import bounds_of
    from royaltysim.stats import mean_interval

    params = list(params)
    last = final_rows(table)
    metrics = [m for m in (metrics or SUMMARY_METRICS) if m in last.columns]
    keys = ["scheme", *params]
    rows = []
    for key, group in last.groupby(keys, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        for metric in metrics:
            values = group[metric].astype(float).to_numpy()
            n = len(values)
            sd = float(values.std(ddof=1)) if n > 1 else float("nan")
            iv = mean_interval(values, bounds=bounds_of(metric))
            rows.append({**dict(zip(keys, key)), "metric": metric, "mean": iv.estimate, "sd": sd, "n": n,
                         "ci_low": iv.low, "ci_high": iv.high})
    return pd.DataFrame(rows)
