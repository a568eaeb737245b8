"""Every shipped scenario runs for a few months.

On the shipped attribution run (``runs/default``) when it is there, else on a small fixture run
with the same layout; the listener population is shrunk so the whole file takes seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import royaltysim
from royaltysim.config import load_scenario, validate_scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
DEFAULT_RUN = REPO / "runs" / "default"


def _shipped_run_ready() -> bool:
    return all((DEFAULT_RUN / f).is_file() for f in ("attribution.parquet", "corpus.parquet", "outputs.parquet"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_runs_for_a_few_months(path: Path, run_dir: Path) -> None:
    shipped = _shipped_run_ready()
    scenario = load_scenario(path, check_files=shipped)
    raw = scenario.model_dump(mode="json")
    if not shipped:
        raw["source"]["run"] = str(run_dir)
    raw["consumers"]["n"] = 500
    raw["steps"] = 3
    raw["seeds"] = 1  # the scenario's replicates are tested on the small fixture (test_runner.py)
    results = royaltysim.run(validate_scenario(raw))
    assert len(results.model) == 3 * len(scenario.schemes)
    assert results.model["revenue"].gt(0).all()
    assert results.model[["gini_income_month", "platform_margin", "consumer_welfare"]].notna().all().all()
