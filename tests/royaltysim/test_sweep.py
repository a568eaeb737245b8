"""Sweeps: expansion, a real local Dask cluster with 2 workers, resume, failures, worker-count invariance."""

import json

import pandas as pd
import pytest

from royaltysim.config import validate_scenario
from royaltysim.sweep import SweepError, SweepSpec, expand_sweep, run_sweep, set_path, summarise

from .conftest import small_scenario


def resolved(run_dir, **overrides) -> dict:
    raw = small_scenario(run_dir, steps=2, consumers={"n": 200, "sessions": 5}, **overrides)
    return validate_scenario(raw, source="test").model_dump(mode="json")


def test_expansion_counts_and_stable_ids(run_dir):
    base = resolved(run_dir)
    spec = SweepSpec.model_validate({
        "grid": {"platform.platform_cut": [0.2, 0.3], "schemes[1].ai.params.top_k": [1, 2, 3]},
        "samples": {"n": 2, "seed": 5, "params": {"behaviour.cost_per_work": {"uniform": [0.05, 0.2]}}},
        "replicates": 3,
    })
    runs = expand_sweep(base, spec, base_seed=10)
    assert len(runs) == 2 * 3 * 2 * 3
    assert {r.seed for r in runs} == {10, 11, 12}
    assert len({r.run_id for r in runs}) == len(runs)
    assert [r.run_id for r in expand_sweep(base, spec, base_seed=10)] == [r.run_id for r in runs]
    costs = {r.params["behaviour.cost_per_work"] for r in runs}
    assert len(costs) == 2 and all(0.05 <= c <= 0.2 for c in costs)


def test_unknown_paths_name_the_valid_keys(run_dir):
    base = resolved(run_dir)
    with pytest.raises(SweepError, match="platform_cut"):
        expand_sweep(base, SweepSpec(grid={"platform.platfrom_cut": [0.1]}), 0)
    with pytest.raises(SweepError, match="out of range|not in"):
        expand_sweep(base, SweepSpec(grid={"schemes[9].ai.name": ["causal"]}), 0)
    raw = {"schemes": [{"ai": {"params": {}}}]}
    set_path(raw, "schemes[0].ai.params.top_k", 3)  # a new key is fine inside params
    assert raw["schemes"][0]["ai"]["params"]["top_k"] == 3
    with pytest.raises(ValueError, match="exactly one"):
        SweepSpec.model_validate({"samples": {"n": 1, "params": {"x": {"uniform": [0, 1], "choice": [1]}}}})


def test_sweep_on_two_workers_resumes_and_reports_failures(run_dir, tmp_path):
    base = resolved(run_dir)
    spec = SweepSpec(grid={"platform.platform_cut": [0.2, 0.4], "consumers.n": [200, -5]}, replicates=2)
    seen = []
    result = run_sweep(base, spec, tmp_path / "s", workers=2, progress=lambda d, t: seen.append((d, t)))
    assert result.total == 8 and result.ran == 8 and seen[-1] == (8, 8)
    # consumers.n = -5 is invalid: those 4 runs fail with their parameters and seed, the rest complete
    assert len(result.failures) == 4
    failed = result.failures[0]
    assert failed["params"]["consumers.n"] == -5 and failed["seed"] in (3, 4) and "consumers.n" in failed["error"]
    assert len(json.loads((tmp_path / "s" / "failures.json").read_text())) == 4
    table = result.table
    assert set(table["consumers.n"]) == {200} and set(table["platform.platform_cut"]) == {0.2, 0.4}
    assert set(table["seed"]) == {3, 4} and set(table["scheme"]) == {"pro-rata", "similarity", "causal"}
    assert len(table) == 4 * 3 * 2  # ok runs x schemes x steps
    summary = result.summary
    row = summary[(summary.metric == "gini_income_month") & (summary.scheme == "causal") & (summary["platform.platform_cut"] == 0.2)]
    assert row["n"].item() == 2 and row["ci_low"].item() <= row["mean"].item() <= row["ci_high"].item()
    assert pd.read_parquet(tmp_path / "s" / "sweep.parquet").equals(table)

    # resume: nothing finished is run again; a lost run is redone
    again = run_sweep(base, spec, tmp_path / "s", workers=2)
    assert again.ran == 4  # only the failed runs are retried
    lost = sorted((tmp_path / "s" / "runs").glob("*.parquet"))[0]
    lost.unlink()
    healed = run_sweep(base, SweepSpec(grid={"platform.platform_cut": [0.2, 0.4], "consumers.n": [200]}, replicates=2),
                       tmp_path / "s", workers=2)
    assert healed.ran == 1
    # same runs, same numbers; only the point index belongs to the (edited) spec
    pd.testing.assert_frame_equal(healed.table.drop(columns="point"), table.drop(columns="point"))

    # the same sweep on one worker gives identical results
    single = run_sweep(base, SweepSpec(grid={"platform.platform_cut": [0.2, 0.4], "consumers.n": [200]}, replicates=2),
                       tmp_path / "one", workers=1)
    pd.testing.assert_frame_equal(single.table, healed.table)


def test_summary_confidence_interval_by_hand():
    table = pd.DataFrame({"scheme": "a", "step": 1, "x": 1.0, "gini": [0.2, 0.4, 0.6]})
    s = summarise(table, ["x"], metrics=["gini"]).iloc[0]
    assert s["mean"] == pytest.approx(0.4) and s["sd"] == pytest.approx(0.2)
    # t(0.975, 2) = 4.302653; half width = 4.302653 * 0.2 / sqrt(3)
    assert s["ci_high"] - s["mean"] == pytest.approx(4.302653 * 0.2 / 3**0.5, rel=1e-5)


def test_sweep_report_plots_every_numeric_parameter(run_dir, tmp_path):
    from royaltysim.sweep_report import write_sweep_report

    base = resolved(run_dir)
    spec = SweepSpec(grid={"platform.platform_cut": [0.2, 0.4], "platform.ai_pool_rate": [0.3, 0.6]}, replicates=2)
    result = run_sweep(base, spec, tmp_path / "s", workers=2)
    page = write_sweep_report(result, title="test sweep").read_text()
    for png in ("sweep_platform_platform_cut.png", "sweep_platform_ai_pool_rate.png", "sweep_heatmap_gini_income_run.png"):
        assert (tmp_path / "s" / png).is_file() and png in page
    assert "Raising <code>platform.platform_cut</code> from 0.2 to 0.4" in page and "8 runs" in page


def test_cli_sweep_and_validate(run_dir, tmp_path):
    from typer.testing import CliRunner

    from royaltysim.cli import app

    from .conftest import write_yaml

    raw = small_scenario(run_dir, steps=2, consumers={"n": 200, "sessions": 5},
                         sweep={"grid": {"schemes[1].ai.params.top_k": [1, 2]}, "replicates": 2})
    path = write_yaml(tmp_path / "sweep.yaml", raw)
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(path)])
    assert ok.exit_code == 0, ok.output
    result = runner.invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "4 runs (4 run now, 0 already done), 0 failed" in result.output
    table = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    assert set(table["schemes[1].ai.params.top_k"]) == {1, 2}
    assert (tmp_path / "out" / "sweep_report.html").is_file()

    bad = write_yaml(tmp_path / "bad.yaml", {**raw, "sweep": {"grid": {"schemes[1].ai.params.top_k": [0]}}})
    res = runner.invoke(app, ["validate", str(bad)])
    assert res.exit_code == 2 and "top_k=0" in res.output
    plain = write_yaml(tmp_path / "plain.yaml", small_scenario(run_dir))
    res = runner.invoke(app, ["sweep", str(plain)])
    assert res.exit_code == 2 and "no `sweep:` section" in res.output


def test_snr_sweep_report_marks_each_methods_measured_snr(run_dir, tmp_path):
    import shutil

    from royaltysim.sweep_report import measured_snr_markers, write_sweep_report

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    assert measured_snr_markers(run).empty  # not evaluated yet
    (run / "evaluation").mkdir()
    pd.DataFrame({
        "method": ["trak", "sim_embedding", "random", "trak_ridge1"], "family": "tda", "creators": 8,
        "r2": 0.5, "snr": [2.0, 0.05, 0.0, 3.0], "snr_low": [1.0, 0.01, 0.0, 2.0], "snr_high": [3.0, 0.1, 0.0, 4.0],
        "snr_corrected": float("nan"), "reliability": float("nan"),
    }).to_parquet(run / "evaluation" / "creator_snr.parquet")
    markers = measured_snr_markers(run)
    assert list(markers["method"]) == ["trak", "sim_embedding", "trak_ridge1"]  # every method but the random draws
    assert not markers["best"].any()  # no best_method.yaml

    base = resolved(run_dir, source={"kind": "corpus", "run": str(run)})
    result = run_sweep(base, SweepSpec(grid={"source.attribution_snr": [0.1, 1.0, 10.0]}, replicates=1), tmp_path / "s", workers=1)
    from attribution.best_method import write_best_method

    write_best_method(run, {"method": "trak_ridge1", "snr": 3.0, "snr_low": 2.0, "snr_high": 4.0, "truth": "loco",
                            "outputs_fingerprint": "x"},
                      pd.DataFrame({"output_id": ["o"], "creator": ["c"], "score": [1.0]}))
    assert list(measured_snr_markers(run)["best"]) == [False, False, True]
    page = write_sweep_report(result, title="snr", run=run).read_text()
    assert (tmp_path / "s" / "sweep_source_attribution_snr.png").is_file()
    assert "At the SNR measured for <b>trak</b>, 2.00 [1.00, 3.00]" in page
    assert "At the SNR measured for <b>sim_embedding</b>, 0.05" in page and "read at the edge" in page
    assert "At the SNR measured for <b>trak_ridge1</b> (the run’s best method), 3.00" in page  # the best is read too
    bare = write_sweep_report(result, tmp_path / "bare", title="snr", run=run_dir).read_text()
    assert "No measured SNR to mark" in bare


def test_run_ids_change_when_the_source_data_change(run_dir, tmp_path):
    """A resumed sweep must not reuse runs made from an older ground truth or attribution table."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    base = resolved(copy)
    spec = SweepSpec.model_validate({"grid": {"platform.platform_cut": [0.2, 0.3]}, "replicates": 2})
    before = [r.run_id for r in expand_sweep(base, spec, base_seed=0)]
    assert [r.run_id for r in expand_sweep(base, spec, base_seed=0)] == before  # stable while nothing changes
    (copy / "ground_truth").mkdir(exist_ok=True)
    (copy / "ground_truth" / "outputs.sha256").write_text("0" * 64 + "\n")  # as a rebuilt ground truth would
    after = [r.run_id for r in expand_sweep(base, spec, base_seed=0)]
    assert not set(after) & set(before)


# ------------------------------------------------------------------ issue 13: every reuse keyed to its inputs


def test_run_ids_hash_every_scenario_field_and_the_sweep_steps(run_dir):
    base = resolved(run_dir)
    spec = SweepSpec.model_validate({"grid": {"platform.platform_cut": [0.2, 0.3]}, "replicates": 2})
    ids = {r.run_id for r in expand_sweep(base, spec, base_seed=0)}
    longer = SweepSpec.model_validate({**spec.model_dump(), "steps": 6})
    assert not ids & {r.run_id for r in expand_sweep(base, longer, base_seed=0)}  # sweep.steps is part of a run
    changed = resolved(run_dir, behaviour={"cost_per_work": 0.2})  # a field the sweep does not vary
    assert not ids & {r.run_id for r in expand_sweep(changed, spec, base_seed=0)}
    other_arm = resolved(run_dir)
    other_arm["schemes"][1]["ai"]["params"]["top_k"] = 3
    assert not ids & {r.run_id for r in expand_sweep(other_arm, spec, base_seed=0)}
    assert {r.run_id for r in expand_sweep(base, spec, base_seed=0)} == ids  # and stable while nothing changes


def test_sweep_steps_and_a_grid_over_steps(run_dir):
    from royaltysim.sweep import resolved_run

    base = resolved(run_dir)
    # a grid over steps sets each point's months, over sweep.steps
    spec = SweepSpec.model_validate({"grid": {"steps": [1, 3]}, "steps": 2, "replicates": 1})
    runs = expand_sweep(base, spec, base_seed=0)
    assert [resolved_run(base, r.params, r.seed, spec.steps)["steps"] for r in runs] == [1, 3]
    assert resolved_run(base, {}, 0, spec.steps)["steps"] == 2


def test_summary_keeps_runs_of_every_length():
    """A grid over steps: each run's own last month is its result (not only the longest runs')."""
    rows = [{"run_id": f"r{steps}{seed}", "scheme": "a", "seed": seed, "steps": steps, "step": step,
             "gini": 0.1 * steps + 0.01 * seed}
            for steps in (2, 5) for seed in (0, 1) for step in range(1, steps + 1)]
    summary = summarise(pd.DataFrame(rows), ["steps"], metrics=["gini"])
    assert list(summary["steps"]) == [2, 5] and list(summary["n"]) == [2, 2]
    assert summary["mean"].tolist() == pytest.approx([0.205, 0.505])


def test_bad_workers_and_an_unreachable_scheduler_are_refused(run_dir, tmp_path):
    import time

    from royaltysim.sweep import SCHEDULER_TIMEOUT_S

    base = resolved(run_dir)
    spec = SweepSpec(grid={"platform.platform_cut": [0.2]}, replicates=1)
    for workers in (0, -1):
        with pytest.raises(SweepError, match="--workers must be a whole number >= 1"):
            run_sweep(base, spec, tmp_path / "w", workers=workers)
    t0 = time.perf_counter()
    with pytest.raises(SweepError, match="no Dask scheduler could be reached"):
        run_sweep(base, spec, tmp_path / "sched", scheduler="tcp://127.0.0.1:9")
    assert time.perf_counter() - t0 < SCHEDULER_TIMEOUT_S + 10
    with pytest.raises(SweepError, match="e.g. tcp://"):
        run_sweep(base, spec, tmp_path / "sched", scheduler="nonsense")
    assert not list((tmp_path / "sched" / "runs").glob("*.parquet"))


def test_a_sweep_writes_only_into_a_new_or_sweep_folder(run_dir, tmp_path):
    from royaltysim.atomic import OutputFolderError

    base = resolved(run_dir)
    spec = SweepSpec(grid={"platform.platform_cut": [0.2]}, replicates=1)
    results = tmp_path / "results"
    results.mkdir()
    (results / "model.parquet").write_bytes(b"someone else's results")
    with pytest.raises(OutputFolderError, match="--force"):
        run_sweep(base, spec, results, workers=1)
    assert sorted(p.name for p in results.iterdir()) == ["model.parquet"]  # untouched
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(OutputFolderError, match="is a file"):
        run_sweep(base, spec, afile, workers=1)


def test_largest_run_is_the_costliest_point(run_dir):
    from royaltysim.config import validate_scenario
    from royaltysim.resources import estimate
    from royaltysim.sweep import largest_run

    raw = small_scenario(run_dir, steps=2, sweep={"grid": {"consumers.n": [200, 5000, 1000], "steps": [2, 4],
                                                           "platform.ai_pool_rate": [0.2, 0.4]}})
    scenario = validate_scenario(raw)
    big = largest_run(scenario)
    assert big["consumers"]["n"] == 5000 and big["steps"] == 4 and "sweep" not in big
    assert estimate(big).memory_bytes > estimate(scenario).memory_bytes


def test_crowded_snr_markers_keep_their_lines_but_only_separated_ones_are_labelled():
    import pandas as pd

    from royaltysim.sweep_report import _labelled

    m = pd.DataFrame({"method": ["a", "b", "trak", "c", "best_one", "far"],
                      "snr": [0.010, 0.0101, 0.0102, 0.99, 1.0, 50.0],
                      "best": [False, False, False, False, True, False]})
    named = _labelled(m, 0.03, 100.0, log=True)
    assert "best_one" in named and "far" in named  # the best always, and a marker far from every other
    assert "c" not in named  # too close to the best's label
    assert len(named & {"a", "b", "trak"}) == 1 and "trak" in named  # one of the pile: the named method first
    assert _labelled(m, 0.03, 100.0, log=True, gap=0.0) == set(m["method"])  # no crowding rule: every label
