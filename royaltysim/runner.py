"""Running a scenario: every arm on common random numbers, over replicate seeds, results as tidy tables.

:func:`run` is the Python API (``royaltysim.run(path_or_scenario) -> Results``) that the CLI and
notebooks share. For each replicate seed it builds the world once and runs one
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
reference arm, seed by seed, with intervals).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from attribution.table import AttributionTable
from royaltysim.config import Scenario, check_scenario, load_scenario, scenario_to_yaml, validate_scenario

__all__ = ["Results", "run", "Progress", "resolve_seeds"]

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

    def _bounds(self, name: str) -> tuple[float | None, float | None]:
        from royaltysim.measures import measure

        m = measure(name)
        # a count of creators is bounded by the population
        return (0.0, float(self.n_creators())) if m.kind == "count" and m.unit == "creators" else m.bounds

    def summary(self, measures: Sequence[str] | None = None) -> pd.DataFrame:
        """Each measure's mean over seeds and its 95% interval (inside the measure's bounds), per arm.

        Columns: ``scheme, measure, mean, low, high, n, method``.
        """
        from royaltysim.stats import mean_interval

        table = self.measures()
        names = list(measures) if measures is not None else [c for c in table.columns if c not in ("scheme", "seed")]
        rows = []
        for label in self.labels:
            g = table[table["scheme"] == label].sort_values("seed")
            for name in names:
                iv = mean_interval(g[name].to_numpy(), bounds=self._bounds(name))
                rows.append({"scheme": label, "measure": name, "mean": iv.estimate, "low": iv.low, "high": iv.high,
                             "n": iv.n, "method": iv.method})
        return pd.DataFrame(rows)

    def compare(self, arm: str | None = None, reference: str | None = None,
                measures: Sequence[str] | None = None, method: str = "t") -> pd.DataFrame:
        """Paired differences ``arm - reference`` of each measure, seed by seed, with 95% intervals.

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
        from royaltysim.stats import paired_difference, verdict

        reference = reference or self.reference_arm
        table = self.measures()
        for label in [reference] + ([arm] if arm else []):
            if label not in self.labels:
                raise ValueError(f"no arm {label!r}; arms: {self.labels}")
        arms = [arm] if arm else [a for a in self.labels if a != reference]
        names = list(measures) if measures is not None else [c for c in table.columns if c not in ("scheme", "seed")]
        ref = table[table["scheme"] == reference].set_index("seed").sort_index()
        rows = []
        for label in arms:
            g = table[table["scheme"] == label].set_index("seed").reindex(ref.index)
            for name in names:
                iv = paired_difference(g[name].to_numpy(), ref[name].to_numpy(), bounds=self._bounds(name),
                                       method=method)  # type: ignore[arg-type]
                rows.append({"scheme": label, "reference": reference, "measure": name,
                             "arm_mean": float(g[name].mean()), "reference_mean": float(ref[name].mean()),
                             "difference": iv.estimate, "low": iv.low, "high": iv.high, "p_value": iv.p_value,
                             "n": iv.n, "method": iv.method, "verdict": verdict(iv)})
        return pd.DataFrame(rows)

    def save(self, out_dir: str | Path) -> Path:
        """Write the resolved scenario and every table into ``out_dir``.

        ``scenario.yaml``, ``model.parquet``, ``creators.parquet``, ``creator_income.parquet`` (whole-run money
        per creator), ``measures.parquet`` (run-level measures per scheme and seed) and ``comparisons.parquet``
        (paired differences against the reference arm).
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / SCENARIO_FILE).write_text(
            f"# resolved scenario (all defaults filled in); rerun with: royaltysim run {out / SCENARIO_FILE}\n"
            + scenario_to_yaml(self.scenario)
        )
        self.model.to_parquet(out / MODEL_FILE, index=False)
        self.creators.to_parquet(out / CREATORS_FILE, index=False)
        self.creator_income().to_parquet(out / CREATOR_INCOME_FILE, index=False)
        self.measures().to_parquet(out / MEASURES_FILE, index=False)
        if len(self.labels) > 1:
            self.compare().to_parquet(out / COMPARISONS_FILE, index=False)
        return out


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
