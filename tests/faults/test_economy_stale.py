"""No stale sweep run is reused: a run is keyed to everything that makes it (issue 13, finding 3).

The probe changed ``sweep.steps`` and got "0 run now, 12 already done" with the old 4-month runs, and a
grid over ``steps`` kept only the longest runs in ``summary.parquet``. Here each input of a run is changed
in turn, and no run made before the change may be reused; an unchanged input reuses every run.
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import pandas as pd

from royaltysim.config import validate_scenario
from royaltysim.sweep import SweepSpec, expand_sweep
from tests.faults._economy import rsim, scenario_file, small_run, small_scenario


def _counts(stdout: str) -> tuple[int, int, int]:
    m = re.search(r"(\d+) runs \((\d+) run now, (\d+) already done\)", stdout)
    assert m, stdout
    return int(m[1]), int(m[2]), int(m[3])


def test_changing_sweep_steps_reruns_and_a_grid_over_steps_keeps_every_point(tmp_path: Path) -> None:
    run = small_run(tmp_path / "attribution")
    out = tmp_path / "sweep"
    grid = {"platform.ai_pool_rate": [0.2, 0.5]}
    first = scenario_file(tmp_path / "a.yaml", run, sweep={"grid": grid, "replicates": 2, "steps": 2})
    done = rsim(["sweep", first, "--out", out, "--workers", "1"], timeout=300)
    assert done.returncode == 0, done.stderr
    assert _counts(done.stdout) == (4, 4, 0)

    longer = scenario_file(tmp_path / "b.yaml", run, sweep={"grid": grid, "replicates": 2, "steps": 3})
    done = rsim(["sweep", longer, "--out", out, "--workers", "1"], timeout=300)
    assert done.returncode == 0, done.stderr
    assert _counts(done.stdout) == (4, 4, 0)  # every run is new: 3 months is another run than 2
    table = pd.read_parquet(out / "sweep.parquet")
    assert table.groupby("run_id")["step"].max().eq(3).all() and table["run_id"].nunique() == 4

    # a grid over steps: the 3-month runs at rate 0.2 are the same runs as above (reused), the 1-month ones new
    by_steps = scenario_file(tmp_path / "c.yaml", run,
                             sweep={"grid": {"platform.ai_pool_rate": [0.2], "steps": [1, 3]}, "replicates": 2})
    done = rsim(["sweep", by_steps, "--out", out, "--workers", "1"], timeout=300)
    assert done.returncode == 0, done.stderr
    assert _counts(done.stdout) == (4, 2, 2)
    summary = pd.read_parquet(out / "summary.parquet")
    assert sorted(set(summary["steps"])) == [1, 3]  # both points, each from its own runs' last month
    assert (summary["n"] == 2).all()


def _ids(base: dict, spec: dict, seed: int = 0) -> set[str]:
    return {r.run_id for r in expand_sweep(base, SweepSpec.model_validate(spec), seed)}


def test_every_input_of_a_run_is_part_of_its_key(tmp_path: Path) -> None:
    run = small_run(tmp_path / "attribution")
    base = validate_scenario(small_scenario(run)).model_dump(mode="json")
    spec = {"grid": {"platform.platform_cut": [0.2, 0.3]}, "replicates": 2}
    before = _ids(base, spec)
    assert _ids(copy.deepcopy(base), spec) == before  # nothing changed: every run is reused

    def changed(path: str, value) -> dict:
        raw = copy.deepcopy(base)
        node = raw
        *parents, last = path.split(".")
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[last] = value
        return raw

    edits = {
        "steps": changed("steps", 5),
        "consumers.n": changed("consumers.n", 400),
        "consumers.sessions": changed("consumers.sessions", 12),
        "network.params": changed("network.params", {"m": 2}),
        "platform.ai_pool_rate": changed("platform.ai_pool_rate", 0.4),
        "behaviour.cost_per_work": changed("behaviour.cost_per_work", 0.2),
        "metrics.subsistence_line": changed("metrics.subsistence_line", 0.2),
        "schemes.1.ai.params": changed("schemes.1.ai.params", {"top_k": 3}),
        "schemes.0.label": changed("schemes.0.label", "market"),
        "source.causal_method": changed("source.causal_method", "tracin"),
    }
    for name, raw in edits.items():
        assert not _ids(raw, spec) & before, f"a run made before changing {name} would be reused"
    sweep_edits = {
        "sweep.steps": {**spec, "steps": 7},
        "another grid value": {**spec, "grid": {"platform.platform_cut": [0.2, 0.35]}},
    }
    for name, other in sweep_edits.items():
        reused = _ids(base, other) & before
        expected = set() if name == "sweep.steps" else _ids(base, {**spec, "grid": {"platform.platform_cut": [0.2]}})
        assert reused == expected, name  # only the unchanged point's runs are the same runs
    assert not _ids(base, spec, seed=10) & before  # the seeds

    # the source run's data: a rewritten attribution table or a (re)trained ground truth are new runs
    copy_run = tmp_path / "copy"
    shutil.copytree(run, copy_run)
    moved = validate_scenario(small_scenario(copy_run)).model_dump(mode="json")
    mine = _ids(moved, spec)
    scores = pd.read_parquet(copy_run / "attribution.parquet")
    scores.loc[0, "score"] += 1.0
    scores.to_parquet(copy_run / "attribution.parquet")
    assert not _ids(moved, spec) & mine
    again = _ids(moved, spec)
    (copy_run / "ground_truth").mkdir()
    pd.DataFrame({"creator": ["composer_00"], "value": [1.0]}).to_parquet(copy_run / "ground_truth" / "x.parquet")
    assert not _ids(moved, spec) & again
