"""Running a scenario: every arm on common random numbers, results as tidy tables.

:func:`run` is the Python API (``royaltysim.run(path_or_scenario) -> Results``) that the CLI and
notebooks share. It builds the world once per seed, runs one :class:`~royaltysim.model.RoyaltyModel`
per arm with the same seed (common random numbers: differences between arms come from the rules,
not from luck), and returns :class:`Results` with two tidy DataFrames:

* ``model`` -- one row per (scheme, step), with the seed and scheme columns;
* ``creators`` -- one row per (scheme, step, creator).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from attribution.table import AttributionTable
from royaltysim.config import Scenario, check_scenario, load_scenario, scenario_to_yaml, validate_scenario

__all__ = ["Results", "run", "Progress"]

#: progress callback: ``(arm_label, step, steps)`` after each simulated month
Progress = Callable[[str, int, int], None]

MODEL_FILE = "model.parquet"
CREATORS_FILE = "creators.parquet"
SCENARIO_FILE = "scenario.yaml"


@dataclass
class Results:
    """The outcome of a scenario run.

    Attributes:
        scenario: the resolved scenario (every default filled in, paths absolute).
        model: one row per (scheme, step): money flows, inequality, incentives, welfare, misallocation.
        creators: one row per (scheme, step, creator).
        runtime_s: wall-clock seconds of the run (world building included).
    """

    scenario: Scenario
    model: pd.DataFrame
    creators: pd.DataFrame
    runtime_s: float

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(self.model["scheme"]))

    @property
    def reference(self) -> str:
        """What "true contribution" means in this run (ground truth or the causal method's shares)."""
        return str(self.model["reference"].iloc[0]) if len(self.model) else ""

    def final(self) -> pd.DataFrame:
        """The last month's model row of each scheme, indexed by scheme."""
        last = self.model["step"].max()
        return self.model[self.model["step"] == last].set_index("scheme")

    def save(self, out_dir: str | Path) -> Path:
        """Write ``scenario.yaml``, ``model.parquet`` and ``creators.parquet`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / SCENARIO_FILE).write_text(
            f"# resolved scenario (all defaults filled in); rerun with: royaltysim run {out / SCENARIO_FILE}\n"
            + scenario_to_yaml(self.scenario)
        )
        self.model.to_parquet(out / MODEL_FILE, index=False)
        self.creators.to_parquet(out / CREATORS_FILE, index=False)
        return out


def _as_scenario(scenario_or_path: Scenario | str | Path | dict[str, Any]) -> Scenario:
    if isinstance(scenario_or_path, Scenario):
        return check_scenario(scenario_or_path)
    if isinstance(scenario_or_path, dict):
        return validate_scenario(scenario_or_path, source="scenario dict")
    return load_scenario(scenario_or_path)


def run(
    scenario_or_path: Scenario | str | Path | dict[str, Any],
    seed: int | None = None,
    *,
    steps: int | None = None,
    table: AttributionTable | None = None,
    progress: Progress | None = None,
) -> Results:
    """Run every arm of a scenario on common random numbers.

    Args:
        scenario_or_path: a scenario YAML path, a dict of the same keys, or a :class:`Scenario`.
        seed: overrides the scenario's seed (the same seed is used for every arm).
        steps: overrides the scenario's number of months.
        table: an attribution table already in memory (else read from ``source.run``).
        progress: called as ``progress(label, step, steps)`` after each month.

    Returns:
        :class:`Results` with tidy ``model`` and ``creators`` tables.
    """
    from royaltysim.model import RoyaltyModel, build_world

    start = time.perf_counter()
    scenario = _as_scenario(scenario_or_path)
    update: dict[str, Any] = {}
    if seed is not None:
        update["seed"] = int(seed)
    if steps is not None:
        update["steps"] = int(steps)
    if update:
        scenario = validate_scenario(
            {**scenario.model_dump(mode="json"), **update}, source="scenario", check_files=False
        )
    world = build_world(scenario, scenario.seed, table)
    model_rows: list[dict] = []
    creator_rows: list[dict] = []
    for arm in scenario.schemes:
        model = RoyaltyModel(scenario, arm, seed=scenario.seed, world=world)
        for step in range(1, scenario.steps + 1):
            model.step()
            if progress is not None:
                progress(arm.label, step, scenario.steps)
        model_rows += model.records
        creator_rows += model.creator_records
    return Results(
        scenario=scenario,
        model=pd.DataFrame(model_rows),
        creators=pd.DataFrame(creator_rows),
        runtime_s=time.perf_counter() - start,
    )
