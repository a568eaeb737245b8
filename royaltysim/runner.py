"""Running a scenario or its sweep from Python: every arm on common random numbers, over replicate seeds,
results as tidy tables with their summaries, paired comparisons, report and exports.

:func:`run` is the Python API (``royaltysim.run(path_or_scenario) -> Results``) that the CLI and
notebooks share; :func:`sweep` (``royaltysim.sweep(path, out_dir) -> SweepResults``) runs a scenario's
``sweep:`` section through :func:`royaltysim.sweep.run_sweep`, as ``royaltysim sweep`` does. For each replicate seed it builds the world once and runs one
:class:`~royaltysim.model.RoyaltyModel` per arm with that seed (common random numbers: within a seed,
differences between arms come from the rules, not from luck). Seeds run in parallel processes when
there are several seeds and cores; each seed's tables depend on its seed alone, so the results are the
same with any number of workers. :class:`Results` holds two tidy DataFrames:

* ``model`` -- one row per (scheme, seed, step); the monthly inequality columns carry their basis in
  their names (``gini_income_month``, see :mod:`royaltysim.measures`);
* ``creators`` -- one row per (scheme, seed, step, creator);

and derives the run-level ones: :meth:`Results.creator_income` (whole-run money per creator, with
readable names), :meth:`Results.measures` (every measure per scheme and seed), :meth:`Results.summary`
(each measure's mean and interval per arm) and :meth:`Results.compare` (paired differences against the
reference arm, seed by seed, with intervals). :meth:`Results.report` writes the run folder and report
``royaltysim run`` writes; :meth:`Results.to_csv` and :meth:`Results.to_stata` export every table
(:mod:`royaltysim.export`).

:class:`SweepResults` has the same surface over a sweep's runs: every summary and comparison is made at
each parameter point (``point`` and the swept parameters are columns), never pooled over points.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from attribution.table import AttributionTable
from royaltysim.config import Scenario, check_scenario, load_scenario, scenario_to_yaml, validate_scenario

if TYPE_CHECKING:
    from royaltysim.stats import Bounds
    from royaltysim.sweep import SweepResult

__all__ = ["Results", "SweepResults", "run", "sweep", "Progress", "resolve_seeds"]

#: progress callback: ``(done, total, what)``: simulated months done of ``total`` (arms x seeds x months)
Progress = Callable[[int, int, str], None]

MODEL_FILE = "model.parquet"
CREATORS_FILE = "creators.parquet"
CREATOR_INCOME_FILE = "creator_income.parquet"
MEASURES_FILE = "measures.parquet"
COMPARISONS_FILE = "comparisons.parquet"
SCENARIO_FILE = "scenario.yaml"


@dataclass
class Results:
    """The outcome of a scenario run over one or more replicate seeds.

    Attributes:
        scenario: the resolved scenario (every default filled in, paths absolute).
        model: one row per (scheme, seed, step): money flows, inequality, incentives, welfare, misallocation.
        creators: one row per (scheme, seed, step, creator).
        runtime_s: wall-clock seconds of the run (world building included).
        names: readable name of each creator key (a composer, or a collection's title).
    """

    scenario: Scenario
    model: pd.DataFrame
    creators: pd.DataFrame
    runtime_s: float
    names: dict[str, str] = field(default_factory=dict)
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(self.model["scheme"]))

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in dict.fromkeys(self.model["seed"])]

    @property
    def reference_arm(self) -> str:
        """The arm every other arm is compared with (the scenario's ``compare.reference``, else the first)."""
        return self.scenario.reference_arm

    @property
    def reference(self) -> str:
        """What "true contribution" means in this run (ground truth or the causal method's shares)."""
        return str(self.model["reference"].iloc[0]) if len(self.model) else ""

    @property
    def causal_method(self) -> str:
        """What causal schemes paid on: the method (for ``best``, the one the run's evaluation chose, with its
        measured SNR, or the fallback and why); the scenario's name for results from before it was recorded."""
        if len(self.model) and "causal_method" in self.model:
            return str(self.model["causal_method"].iloc[0])
        return self.scenario.source.causal_method

    def final(self) -> pd.DataFrame:
        """The last month's model row of each scheme and seed, indexed by (scheme, seed)."""
        last = self.model["step"] == self.model.groupby(["scheme", "seed"])["step"].transform("max")
        return self.model[last].set_index(["scheme", "seed"])

    def creator_income(self) -> pd.DataFrame:
        """Whole-run money per (scheme, seed, creator) (:func:`royaltysim.measures.creator_income`) with ``name``."""
        if "creator_income" not in self._cache:
            from royaltysim.measures import creator_income

            table = creator_income(self.creators)
            table.insert(3, "name", table["creator"].map(self.names).fillna(table["creator"]))
            self._cache["creator_income"] = table
        return self._cache["creator_income"]

    def measures(self) -> pd.DataFrame:
        """Every run-level measure (:data:`royaltysim.measures.MEASURES`), one row per (scheme, seed)."""
        if "measures" not in self._cache:
            from royaltysim.measures import run_measures

            self._cache["measures"] = run_measures(self.model, self.creator_income())
        return self._cache["measures"]

    def n_creators(self) -> int:
        return int(self.creators["creator"].nunique())

    def summary(self, measures: Sequence[str] | None = None) -> pd.DataFrame:
        """Each measure's mean over seeds and its 95% interval (inside the measure's bounds), per arm.

        Columns: ``scheme, measure, mean, low, high, n, method``.
        """
        return _summarise(self.measures(), [], self.labels, measures, lambda _: self.n_creators())

    def compare(self, arm: str | None = None, reference: str | None = None,
                measures: Sequence[str] | None = None, method: str = "t") -> pd.DataFrame:
        """Paired differences ``arm - reference`` of each measure, seed by seed, with 95% intervals.

        ``results.compare("causal", "pro-rata")`` is causal minus pro-rata.

        Args:
            arm: one arm (default: every arm but the reference).
            reference: the arm compared against (default: :attr:`reference_arm`).
            measures: measure names (default: all).
            method: ``"t"`` (paired t) or ``"bootstrap"`` (:func:`royaltysim.stats.paired_difference`).

        Returns:
            One row per (arm, measure): ``scheme, reference, measure, arm_mean, reference_mean, difference, low,
            high, p_value, n, method, verdict`` (``verdict``: higher, lower, no detectable difference,
            identical or one seed; see :func:`royaltysim.stats.verdict`).
        """
        return _paired(self.measures(), [], self.labels, arm, reference or self.reference_arm, measures, method,
                       lambda _: self.n_creators())

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table of the run by the name of its file: ``model``, ``creators``, ``creator_income``,
        ``measures``, ``summary`` and (with more than one arm) ``comparisons``."""
        out = {"model": self.model, "creators": self.creators, "creator_income": self.creator_income(),
               "measures": self.measures(), "summary": self.summary()}
        if len(self.labels) > 1:
            out["comparisons"] = self.compare()
        return out

    def report(self, out_dir: str | Path, force: bool = False) -> Path:
        """Write the run folder ``royaltysim run`` writes (:meth:`save`, then ``report.html`` and its figures).

        As the command does, the folder is written beside ``out_dir`` and swapped in whole, so an interrupted
        call leaves ``out_dir`` as it was; a ``out_dir`` that already holds results is refused unless
        ``force=True``. Returns the path of ``report.html``.
        """
        from royaltysim.atomic import name_final_folder, staged_folder
        from royaltysim.report import write_report

        out = Path(out_dir)
        with staged_folder(out, force=force) as stage:
            self.write_tables(stage)
            page = write_report(self, stage)
            name_final_folder(stage, out)
        return out / Path(page).name

    def to_csv(self, folder: str | Path, tables: Sequence[str] | None = None) -> list[Path]:
        """Write each table (default: all of :meth:`tables`) as ``<name>.csv``, and ``scenario.yaml`` beside them."""
        return _export(self.tables(), self.scenario, "run", folder, tables, "csv")

    def to_stata(self, folder: str | Path, tables: Sequence[str] | None = None) -> list[Path]:
        """Write each table (default: all of :meth:`tables`) as a Stata file ``<name>.dta``, and ``scenario.yaml``.

        Variable names follow Stata's rules (:func:`stata_names`: ``schemes[1].ai.params.top_k`` becomes
        ``schemes_1_ai_params_top_k``, at most 32 characters); each variable's label is its column name here.
        Files are Stata 14+ (format 118: Unicode names, long strings).
        """
        return _export(self.tables(), self.scenario, "run", folder, tables, "dta")

    def save(self, out_dir: str | Path, force: bool = False) -> Path:
        """Write the resolved scenario and every table into ``out_dir``.

        ``scenario.yaml``, ``model.parquet``, ``creators.parquet``, ``creator_income.parquet`` (whole-run money
        per creator), ``measures.parquet`` (run-level measures per scheme and seed) and ``comparisons.parquet``
        (paired differences against the reference arm). Written beside ``out_dir`` and swapped in whole (see
        :meth:`report`); a ``out_dir`` that already holds results is refused unless ``force=True``.
        """
        from royaltysim.atomic import name_final_folder, staged_folder

        out = Path(out_dir)
        with staged_folder(out, force=force) as stage:
            self.write_tables(stage)
            name_final_folder(stage, out)
        return out

    def write_tables(self, out: Path) -> Path:
        """Write the scenario and tables into the existing folder ``out``, file by file (no staging: for a
        caller that stages the folder itself, as `royaltysim run` does)."""
        _write_scenario(self.scenario, out, "run")
        self.model.to_parquet(out / MODEL_FILE, index=False)
        self.creators.to_parquet(out / CREATORS_FILE, index=False)
        self.creator_income().to_parquet(out / CREATOR_INCOME_FILE, index=False)
        self.measures().to_parquet(out / MEASURES_FILE, index=False)
        if len(self.labels) > 1:
            self.compare().to_parquet(out / COMPARISONS_FILE, index=False)
        return out


# ------------------------------------------------------------------ summaries, paired comparisons and exports
def _bounds(name: str, n_creators: int | None) -> Bounds:
    from royaltysim.measures import measure

    m = measure(name)  # a KeyError lists the measures there are
    # a count of creators is bounded by the population
    return (0.0, float(n_creators)) if m.kind == "count" and m.unit == "creators" and n_creators else m.bounds


def _measure_names(table: pd.DataFrame, measures: Sequence[str] | None) -> list[str]:
    from royaltysim.measures import MEASURES, measure

    if measures is None:
        return [c for c in table.columns if c in MEASURES]
    return [measure(name).name for name in measures]  # a KeyError lists the measures there are


def _groups(table: pd.DataFrame, keys: list[str]):
    """``(key values, rows)`` of each group of ``keys`` (the whole table once when there are none)."""
    if table.empty:  # a sweep none of whose runs finished
        return
    if not keys:
        yield (), table
        return
    for key, g in table.groupby(keys, sort=True, dropna=False):
        yield (key if isinstance(key, tuple) else (key,)), g


def _summarise(table: pd.DataFrame, keys: list[str], labels: list[str], measures: Sequence[str] | None,
               n_creators: Callable[[pd.DataFrame], int | None]) -> pd.DataFrame:
    """Each measure's mean over seeds with its interval, per arm within each group of ``keys``."""
    from royaltysim.stats import mean_interval

    names = _measure_names(table, measures)
    rows = []
    for key, group in _groups(table, keys):
        n = n_creators(group)
        for label in labels:
            g = group[group["scheme"] == label].sort_values("seed")
            if g.empty:
                continue
            for name in names:
                iv = mean_interval(g[name].to_numpy(dtype=float), bounds=_bounds(name, n))
                rows.append({**dict(zip(keys, key)), "scheme": label, "measure": name, "mean": iv.estimate,
                             "low": iv.low, "high": iv.high, "n": iv.n, "method": iv.method})
    return pd.DataFrame(rows, columns=[*keys, "scheme", "measure", "mean", "low", "high", "n", "method"])


def _paired(table: pd.DataFrame, keys: list[str], labels: list[str], arm: str | None, reference: str,
            measures: Sequence[str] | None, method: str, n_creators: Callable[[pd.DataFrame], int | None]) -> pd.DataFrame:
    """Paired differences ``arm - reference`` seed by seed, within each group of ``keys``."""
    from royaltysim.stats import paired_difference, verdict

    for label in [reference] + ([arm] if arm else []):
        if label not in labels:
            raise ValueError(f"no arm {label!r}; arms: {labels}")
    arms = [arm] if arm else [a for a in labels if a != reference]
    names = _measure_names(table, measures)
    rows = []
    for key, group in _groups(table, keys):
        n = n_creators(group)
        ref = group[group["scheme"] == reference].set_index("seed").sort_index()
        for label in arms:
            g = group[group["scheme"] == label].set_index("seed").reindex(ref.index)
            for name in names:
                iv = paired_difference(g[name].to_numpy(dtype=float), ref[name].to_numpy(dtype=float),
                                       bounds=_bounds(name, n), method=method)  # type: ignore[arg-type]
                rows.append({**dict(zip(keys, key)), "scheme": label, "reference": reference, "measure": name,
                             "arm_mean": float(g[name].mean()), "reference_mean": float(ref[name].mean()),
                             "difference": iv.estimate, "low": iv.low, "high": iv.high, "p_value": iv.p_value,
                             "n": iv.n, "method": iv.method, "verdict": verdict(iv)})
    return pd.DataFrame(rows, columns=[*keys, "scheme", "reference", "measure", "arm_mean", "reference_mean",
                                       "difference", "low", "high", "p_value", "n", "method", "verdict"])


def _write_scenario(scenario: Scenario, out: Path, command: str) -> Path:
    path = out / SCENARIO_FILE
    path.write_text(f"# resolved scenario (all defaults filled in); rerun with: royaltysim {command} {path}\n"
                    + scenario_to_yaml(scenario))
    return path


def _export(tables: dict[str, pd.DataFrame], scenario: Scenario, command: str, folder: str | Path,
            names: Sequence[str] | None, fmt: str) -> list[Path]:
    """Write the chosen tables with :func:`royaltysim.export.write_tables`, and the resolved scenario beside them."""
    from royaltysim.export import write_tables

    written = write_tables(tables, folder, fmt, names, data_label=scenario.question)  # type: ignore[arg-type]
    return [*written, _write_scenario(scenario, Path(folder), command)]


def _as_scenario(scenario_or_path: Scenario | str | Path | dict[str, Any]) -> Scenario:
    if isinstance(scenario_or_path, Scenario):
        return check_scenario(scenario_or_path)
    if isinstance(scenario_or_path, dict):
        return validate_scenario(scenario_or_path, source="scenario dict")
    return load_scenario(scenario_or_path)


def resolve_seeds(scenario: Scenario, seed: int | None = None, seeds: int | Sequence[int] | None = None) -> list[int]:
    """The replicate seeds of a run.

    ``seeds`` wins: a list is used as it is, a count counts up from ``seed`` (else the scenario's ``seed``).
    ``seed`` alone runs that one seed. With neither, the scenario's ``seeds`` key decides (default 5).
    """
    if seeds is not None:
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            if seeds < 1:
                raise ValueError(f"seeds must be at least 1 (how many replicate seeds to run); got {seeds}")
            first = scenario.seed if seed is None else int(seed)
            return list(range(first, first + seeds))
        chosen = [int(s) for s in seeds]
        if not chosen or len(set(chosen)) != len(chosen) or min(chosen) < 0:
            raise ValueError(f"seeds must be distinct non-negative integers; got {list(seeds)}")
        return chosen
    if seed is not None:
        return [int(seed)]
    return scenario.seed_list


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _run_seed(
    scenario: Scenario, seed: int, table: AttributionTable | None, progress: Callable[[str], None] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every arm of ``scenario`` on one seed: its world built once, each arm's model on the same seed."""
    from royaltysim.model import RoyaltyModel, build_world

    world = build_world(scenario, seed, table)
    model_rows: list[dict] = []
    creator_rows: list[dict] = []
    for arm in scenario.schemes:
        model = RoyaltyModel(scenario, arm, seed=seed, world=world)
        for step in range(1, scenario.steps + 1):
            model.step()
            if progress is not None:
                progress(f"seed {seed}, {arm.label}: month {step}/{scenario.steps}")
        model_rows += model.records
        creator_rows += model.creator_records
    return pd.DataFrame(model_rows), pd.DataFrame(creator_rows)


def _creator_names(scenario: Scenario, creators: list[str], table: AttributionTable | None) -> dict[str, str]:
    from royaltysim.names import readable_names

    corpus = None
    if scenario.source.kind == "corpus":
        corpus = table.corpus if table is not None else None
        path = Path(scenario.source.run) / "corpus.parquet"
        if corpus is None and path.is_file():
            corpus = pd.read_parquet(path)  # a few hundred rows; `source` is there for runs built from a corpus
    return readable_names(creators, corpus)


def run(
    scenario_or_path: Scenario | str | Path | dict[str, Any],
    seed: int | None = None,
    *,
    seeds: int | Sequence[int] | None = None,
    steps: int | None = None,
    table: AttributionTable | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> Results:
    """Run every arm of a scenario on common random numbers, over replicate seeds.

    Args:
        scenario_or_path: a scenario YAML path, a dict of the same keys, or a :class:`Scenario`.
        seed: run this one seed (with ``seeds`` as a count: the first seed).
        seeds: how many replicate seeds (counting up from ``seed`` or the scenario's seed), or which; default:
            the scenario's ``seeds`` key (5 unless it says otherwise). See :func:`resolve_seeds`.
        steps: overrides the scenario's number of months.
        table: an attribution table already in memory (else read from ``source.run``).
        progress: called as ``progress(done, total, what)`` as months finish (per seed when seeds run in
            parallel).
        workers: processes for the seeds (default: one per seed, at most the usable cores; 1 runs them
            in this process). The tables do not depend on it.

    Returns:
        :class:`Results` with tidy ``model`` and ``creators`` tables over every seed.
    """
    from royaltysim.measures import MONTH_COLUMNS

    start = time.perf_counter()
    scenario = _as_scenario(scenario_or_path)
    if steps is not None:
        scenario = validate_scenario(
            {**scenario.model_dump(mode="json"), "steps": int(steps)}, source="scenario", check_files=False
        )
    seed_list = resolve_seeds(scenario, seed, seeds)
    scenario = validate_scenario(
        {**scenario.model_dump(mode="json"), "seed": seed_list[0],
         "seeds": len(seed_list) if seed_list == list(range(seed_list[0], seed_list[0] + len(seed_list))) else seed_list},
        source="scenario", check_files=False,
    )
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1 (processes for the seeds); got {workers}")
    n_workers = min(len(seed_list), workers or _usable_cores())
    per_seed = len(scenario.schemes) * scenario.steps
    total = per_seed * len(seed_list)
    frames: dict[int, tuple[pd.DataFrame, pd.DataFrame]] = {}
    if n_workers <= 1:
        done = 0

        def tick(what: str) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, what)

        for s in seed_list:
            frames[s] = _run_seed(scenario, s, table, tick)
    else:
        import multiprocessing
        import sys

        # fork on Linux: workers start with every module loaded (spawn re-imports pandas, scipy and Mesa in each
        # worker, which on 2 busy cores cost more than the parallelism saved: 4 baseline seeds took 28 s with
        # spawn, 17 s with fork, 23 s in one process). A worker only simulates: it touches no lock a parent
        # thread (a progress bar) could hold
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ProcessPoolExecutor(n_workers, mp_context=context) as pool:
            futures = {pool.submit(_run_seed, scenario, s, table): s for s in seed_list}
            from concurrent.futures import as_completed

            for i, fut in enumerate(as_completed(futures), start=1):
                frames[futures[fut]] = fut.result()
                if progress is not None:
                    progress(i * per_seed, total, f"seed {futures[fut]} done ({i}/{len(seed_list)} seeds)")
    model = pd.concat([frames[s][0] for s in seed_list], ignore_index=True).rename(columns=MONTH_COLUMNS)
    creators = pd.concat([frames[s][1] for s in seed_list], ignore_index=True)
    names = _creator_names(scenario, list(dict.fromkeys(creators["creator"])), table)
    return Results(
        scenario=scenario,
        model=model,
        creators=creators,
        runtime_s=time.perf_counter() - start,
        names=names,
    )


@dataclass
class SweepResults:
    """The outcome of a sweep: every (parameter point, seed) run of every arm, with the surface of :class:`Results`.

    Summaries and comparisons are made at each parameter point (``point`` and the swept parameters are their
    first columns); a comparison is paired over the seeds, which every point runs alike.

    Attributes:
        scenario: the resolved scenario, its ``sweep:`` section as run (replicates and steps included).
        result: what :func:`royaltysim.sweep.run_sweep` returned (the tables it wrote in :attr:`out_dir`).
        names: readable name of each creator key.
    """

    scenario: Scenario
    result: SweepResult
    names: dict[str, str] = field(default_factory=dict)
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    @property
    def out_dir(self) -> Path:
        """The sweep folder (its runs, tables and report)."""
        return self.result.out_dir

    @property
    def params(self) -> list[str]:
        """The swept parameters (dotted scenario paths), each a column of every table."""
        return list(self.result.params)

    @property
    def failures(self) -> list[dict]:
        """Runs that raised: their parameters, seed, error and traceback."""
        return list(self.result.failures)

    @property
    def table(self) -> pd.DataFrame:
        """One row per (run, scheme, month) with ``point``, the parameters and the seed (``sweep.parquet``)."""
        return self.result.table

    @property
    def labels(self) -> list[str]:
        return list(self.scenario.labels)

    @property
    def seeds(self) -> list[int]:
        return sorted(int(s) for s in self.result.table["seed"].unique()) if not self.result.table.empty else []

    @property
    def reference_arm(self) -> str:
        """The arm every other arm is compared with (the scenario's ``compare.reference``, else the first)."""
        return self.scenario.reference_arm

    def measures(self) -> pd.DataFrame:
        """Every run-level measure, one row per (run, scheme), with ``point``, the parameters and ``seed``."""
        return self.result.measures

    def creator_income(self) -> pd.DataFrame:
        """Whole-run money per (run, scheme, creator), with ``name``, the parameters and ``seed``."""
        if "creator_income" not in self._cache:
            table = self.result.creator_income.copy()
            if not table.empty:
                table.insert(int(table.columns.get_loc("creator")) + 1, "name",
                             table["creator"].map(self.names).fillna(table["creator"]))
            self._cache["creator_income"] = table
        return self._cache["creator_income"]

    def _keys(self) -> list[str]:
        return ["point", *[p for p in self.params if p in self.measures().columns]]

    def _n_creators(self) -> Callable[[pd.DataFrame], int | None]:
        income = self.result.creator_income
        if income.empty:
            return lambda _: None
        per_run = income.groupby("run_id")["creator"].nunique()
        return lambda rows: int(per_run.reindex(rows["run_id"].unique()).max())

    def summary(self, measures: Sequence[str] | None = None) -> pd.DataFrame:
        """Each measure's mean over seeds and its 95% interval, per parameter point and arm.

        Columns: ``point``, the parameters, ``scheme, measure, mean, low, high, n, method``.
        """
        return _summarise(self.measures(), self._keys(), self.labels, measures, self._n_creators())

    def compare(self, arm: str | None = None, reference: str | None = None,
                measures: Sequence[str] | None = None, method: str = "t") -> pd.DataFrame:
        """Paired differences ``arm - reference`` of each measure at each parameter point, seed by seed.

        Arguments and columns as :meth:`Results.compare`, with ``point`` and the parameters first.
        """
        return _paired(self.measures(), self._keys(), self.labels, arm, reference or self.reference_arm, measures,
                       method, self._n_creators())

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table by name: ``sweep`` (monthly rows), ``creator_income``, ``measures``, ``summary`` (of the
        run-level measures, as :meth:`summary`) and (with more than one arm) ``comparisons``."""
        out = {"sweep": self.table, "creator_income": self.creator_income(), "measures": self.measures(),
               "summary": self.summary()}
        if len(self.labels) > 1:
            out["comparisons"] = self.compare()
        return out

    def report(self, out_dir: str | Path | None = None) -> Path:
        """Write the report ``royaltysim sweep`` writes (``sweep_report.html`` and its figures) into ``out_dir``
        (default: the sweep folder, whose tables it cites). Returns its path."""
        from royaltysim.sweep_report import write_sweep_report

        return write_sweep_report(self.result, out_dir, title=self.scenario.question, run=self.scenario.source.run,
                                  measures=list(self.scenario.compare.measures) or None)

    def to_csv(self, folder: str | Path, tables: Sequence[str] | None = None) -> list[Path]:
        """Write each table (default: all of :meth:`tables`) as ``<name>.csv``, and ``scenario.yaml`` beside them."""
        return _export(self.tables(), self.scenario, "sweep", folder, tables, "csv")

    def to_stata(self, folder: str | Path, tables: Sequence[str] | None = None) -> list[Path]:
        """Write each table (default: all of :meth:`tables`) as a Stata file ``<name>.dta`` (see
        :meth:`Results.to_stata`), and ``scenario.yaml`` beside them."""
        return _export(self.tables(), self.scenario, "sweep", folder, tables, "dta")


def sweep(
    scenario_or_path: Scenario | str | Path | dict[str, Any],
    out_dir: str | Path | None = None,
    *,
    seed: int | None = None,
    replicates: int | None = None,
    steps: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> SweepResults:
    """Run a scenario's ``sweep:`` section (parameter points x replicate seeds) on Dask, as ``royaltysim sweep``.

    ``royaltysim.sweep`` is also the module :mod:`royaltysim.sweep`; calling it calls this function.

    Args:
        scenario_or_path: a scenario with a ``sweep:`` section (YAML path, dict or :class:`Scenario`).
        out_dir: the sweep folder; finished runs in it are reused (the sweep resumes). Default for a path:
            ``out/<file name without .yaml>``, as the command line.
        seed: the first replicate seed (default: the scenario's ``seed``).
        replicates: seeds per point (default: the sweep's ``replicates``).
        steps: months of every run (default: the sweep's ``steps``, else the scenario's).
        workers: local Dask cluster size (default: the usable cores); ``scheduler``: an existing cluster's address.
        progress: called as ``progress(done, total)`` as runs finish.
        force: write into an existing non-empty folder that is not a sweep folder.

    Raises:
        royaltysim.sweep.SweepError: no ``sweep:`` section, bad overrides, or what :func:`royaltysim.sweep.run_sweep`
            refuses (bad workers, an unreachable scheduler, a folder that holds other results).
    """
    from pydantic import ValidationError

    from royaltysim.sweep import SweepError, SweepSpec, run_sweep

    scenario = _as_scenario(scenario_or_path)
    named = isinstance(scenario_or_path, (str, Path))
    if scenario.sweep is None:
        raise SweepError(f"{scenario_or_path if named else 'the scenario'} has no `sweep:` section; add one (see "
                         "docs/scenarios.md), or use royaltysim.run for a single run")
    overrides = {k: v for k, v in (("replicates", replicates), ("steps", steps)) if v is not None}
    try:
        spec = SweepSpec.model_validate({**scenario.sweep.model_dump(), **overrides})
    except ValidationError as err:
        raise SweepError(f"sweep overrides {overrides}: {err}") from None
    if out_dir is None:
        if not named:
            raise SweepError("give out_dir, the sweep folder (a scenario that is not a file has no default folder)")
        out_dir = Path("out") / Path(scenario_or_path).stem
    base = scenario.model_dump(mode="json")
    base.pop("sweep")
    result = run_sweep(base, spec, out_dir, base_seed=seed, scheduler=scheduler, workers=workers,
                       source=str(scenario_or_path) if named else "scenario", progress=progress, force=force)
    creators = list(dict.fromkeys(result.creator_income["creator"])) if not result.creator_income.empty else []
    resolved = scenario.model_copy(update={"sweep": spec, **({"seed": int(seed)} if seed is not None else {})})
    return SweepResults(scenario=resolved, result=result,
                        names=_creator_names(scenario, creators, None))
