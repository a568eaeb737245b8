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
atomically to ``runs/<run_id>.parquet`` where ``run_id`` hashes the resolved parameters, the seed and the
contents of the source run's data files (:func:`source_fingerprint`: a rebuilt ground truth is new runs), so
an interrupted sweep resumes by running only what is missing, and the result does not depend on the
number of workers (every run is seeded by its own seed alone). A run that raises is recorded in
``failures.json`` with its parameters, seed and traceback, and the sweep goes on.

The combined table ``sweep.parquet`` has one row per (run, scheme, step) with every swept parameter and
the seed as columns; ``summary.parquet`` has each metric's mean, standard deviation and 95% confidence
interval (Student t over replicates) by scheme and parameter point, at the final step.
``creator_income.parquet`` keeps each run's per-creator whole-run income, and ``measures.parquet`` the
run-level measures computed from it (``gini_income_run`` and the rest of
:data:`royaltysim.measures.MEASURES`), one row per (run, scheme).
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
    "summarise",
    "SUMMARY_METRICS",
]

#: the metrics a sweep summary and report show first
SUMMARY_METRICS = ["gini_income_month", "top10_share_income_month", "ai_misallocation_month", "active_creators",
                   "consumer_welfare", "platform_margin", "opted_in", "ai_quality"]

RUNS_DIR = "runs"
SWEEP_FILE = "sweep.parquet"
SUMMARY_FILE = "summary.parquet"
#: per-creator whole-run income of every run (what run-level measures such as gini_income_run are computed from)
CREATOR_INCOME_FILE = "creator_income.parquet"
#: run-level measures (royaltysim.measures.MEASURES) of every run and scheme
MEASURES_FILE = "measures.parquet"
FAILURES_FILE = "failures.json"


class SweepError(ValueError):
    """A sweep declaration is invalid (unknown parameter path, empty grid, ...)."""


class ParamRange(BaseModel):
    """A random-sample range: exactly one of ``uniform``, ``loguniform``, ``integers`` or ``choice``."""

    model_config = ConfigDict(extra="forbid")
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
    model_config = ConfigDict(extra="forbid")
    n: int = Field(0, ge=0, le=100_000)
    seed: int = 0
    params: dict[str, ParamRange] = Field(default_factory=dict)


class SweepSpec(BaseModel):
    """The ``sweep:`` section of a scenario."""

    model_config = ConfigDict(extra="forbid")
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    samples: SampleSpec = Field(default_factory=SampleSpec)
    replicates: int = Field(5, ge=1, le=10_000)
    steps: int | None = Field(None, ge=1, description="override the scenario's months for every run")

    @model_validator(mode="after")
    def _non_empty(self) -> SweepSpec:
        for path, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{path} has no values")
        if self.samples.n and not self.samples.params:
            raise ValueError("samples.n > 0 needs samples.params to draw")
        return self


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


def _run_id(params: dict[str, Any], seed: int, base_hash: str) -> str:
    payload = json.dumps({"params": params, "seed": seed, "base": base_hash}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# the attribution run's data an economy reads: a run id must change when they do (a rebuilt ground truth or a
# re-evaluated SNR), or a resumed sweep would silently reuse runs made from the old data
SOURCE_DATA = ("*.parquet", "ground_truth/*.parquet", "ground_truth/*.sha256", "evaluation/creator_snr.parquet")


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


def _base_hash(base: dict) -> str:
    payload = {"scenario": base, "source_data": source_fingerprint(base)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def expand_sweep(base: dict, spec: SweepSpec, base_seed: int) -> list[SweepRun]:
    """All (parameter point, replicate seed) runs of a sweep; checks every path against ``base``."""
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
    bh = _base_hash(base)
    return [
        SweepRun(_run_id(point, base_seed + r, bh), i, point, base_seed + r)
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
def execute_run(base: dict, run: SweepRun, steps: int | None, out_file: str, source: str) -> dict:
    """Run one sweep point with one seed and write its model table atomically; never raises."""
    t0 = time.perf_counter()
    try:
        from royaltysim.config import validate_scenario
        from royaltysim.runner import run as run_scenario

        raw = copy.deepcopy(base)
        for path, value in run.params.items():
            set_path(raw, path, value)
        scenario = validate_scenario(raw, source=f"{source} with {run.params}", check_files=True)
        res = run_scenario(scenario, seed=run.seed, steps=steps)
        table = res.model.copy()
        table.insert(0, "run_id", run.run_id)
        income = res.creator_income().drop(columns=["name"])
        income.insert(0, "run_id", run.run_id)
        for path, value in run.params.items():
            table[path] = value
            income[path] = value
        for frame, target in ((income, _income_file(out_file)), (table, Path(out_file))):  # the model table last:
            tmp = target.with_suffix(".tmp")                                                # it marks the run done
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, target)
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


def _local_cluster(workers: int | None):
    from dask.distributed import LocalCluster

    n = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1",
        silence_logs=40,
    )


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
) -> SweepResult:
    """Run every missing run of a sweep on Dask and combine all runs into tidy tables.

    Args:
        base: the resolved scenario as a dict (``Scenario.model_dump(mode="json")``, paths absolute).
        spec: the sweep declaration.
        out_dir: sweep folder; finished runs already in it are not run again.
        scheduler: address of an existing Dask scheduler; None starts a local cluster.
        base_seed: the first replicate's seed (default: the scenario's seed); replicates count up.
        workers: local cluster size (default: the machine's cores).
        progress: called as ``progress(done, total)`` after each run finishes.
    """
    out = Path(out_dir)
    (out / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    runs = expand_sweep(base, spec, int(base.get("seed", 0)) if base_seed is None else base_seed)
    pending = [r for r in runs if not all(f.exists() for f in _run_files(out, r.run_id))]
    done = len(runs) - len(pending)
    if progress:
        progress(done, len(runs))
    failures: list[dict] = []
    if pending:
        from dask.distributed import Client, as_completed

        cluster = None if scheduler else _local_cluster(workers)
        client = Client(scheduler) if scheduler else Client(cluster)
        try:
            futures = [
                client.submit(
                    execute_run, base, r, spec.steps, str(out / RUNS_DIR / f"{r.run_id}.parquet"), source,
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
                    progress(done, len(runs))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    (out / FAILURES_FILE).write_text(json.dumps(failures, indent=2, default=str))
    params = list(dict.fromkeys(p for r in runs for p in r.params))
    wanted = {r.run_id for r in runs}
    files = [out / RUNS_DIR / f"{rid}.parquet" for rid in sorted(wanted)]
    frames = [pd.read_parquet(f) for f in files if f.exists()]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not table.empty:
        # the point index belongs to this spec (run files may come from an earlier, edited one)
        table.insert(1, "point", table["run_id"].map({r.run_id: r.point for r in runs}))
        table = table.sort_values(["point", "seed", "scheme", "step"], kind="stable").reset_index(drop=True)
    table.to_parquet(out / SWEEP_FILE, index=False)
    summary = summarise(table, params) if not table.empty else pd.DataFrame()
    summary.to_parquet(out / SUMMARY_FILE, index=False)
    from royaltysim.measures import sweep_measures

    incomes = [pd.read_parquet(_income_file(f)) for f in files if f.exists() and _income_file(f).exists()]
    income = pd.concat(incomes, ignore_index=True) if incomes else pd.DataFrame()
    measures = sweep_measures(table, income, params)
    income.to_parquet(out / CREATOR_INCOME_FILE, index=False)
    measures.to_parquet(out / MEASURES_FILE, index=False)
    return SweepResult(out, table, summary, params, failures, ran=len(pending), total=len(runs),
                       creator_income=income, measures=measures)


def _income_file(run_file: str | Path) -> Path:
    """Where a run's per-creator income lies, beside its model table (``runs/<id>.income.parquet``)."""
    return Path(run_file).with_suffix(".income.parquet")


def _run_files(out: Path, run_id: str) -> tuple[Path, Path]:
    main = out / RUNS_DIR / f"{run_id}.parquet"
    return main, _income_file(main)


def summarise(table: pd.DataFrame, params: Iterable[str], metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """Mean, std, n and 95% CI of each metric at the final step, by scheme x point.

    The interval is Student t over seeds kept inside the metric's bounds (:func:`royaltysim.stats.mean_interval`:
    a share's interval never runs past 1).
    """
    from royaltysim.measures import bounds_of
    from royaltysim.stats import mean_interval

    params = list(params)
    last = table[table["step"] == table["step"].max()]
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
