"""The command line: ``royaltysim validate`` and ``royaltysim run`` (writing only under tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from royaltysim.cli import app
from royaltysim.report import FIGURES

from .conftest import small_scenario, write_yaml

runner = CliRunner()


def test_validate_ok(run_dir: Path, tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "ok.yaml", small_scenario(run_dir))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "causal" in result.output


def test_validate_lists_every_problem(run_dir: Path, tmp_path: Path) -> None:
    raw = small_scenario(run_dir, steps="many")
    raw["schemes"][0]["ai"] = {"name": "pro_rata", "params": {"top_k": 3}}
    path = write_yaml(tmp_path / "bad.yaml", raw)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "steps" in result.output
    assert "schemes[0].ai.params.top_k" in result.output
    assert "2 problem(s)" in result.output


def test_run_writes_the_run_folder(run_dir: Path, tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "study.yaml", small_scenario(run_dir, steps=3))
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(path), "--out", str(out), "--seed", "11"])
    assert result.exit_code == 0, result.output
    for name in ("scenario.yaml", "model.parquet", "creators.parquet", "report.html", *FIGURES):
        assert (out / name).is_file(), name
    model = pd.read_parquet(out / "model.parquet")
    assert (model["seed"] == 11).all() and model["step"].max() == 3
    html = (out / "report.html").read_text()
    assert "Findings" in html and "lorenz.png" in html and "causal" in html
    # the resolved scenario reproduces the run
    again = tmp_path / "again"
    assert runner.invoke(app, ["run", str(out / "scenario.yaml"), "--out", str(again)]).exit_code == 0
    pd.testing.assert_frame_equal(model, pd.read_parquet(again / "model.parquet"))


# ------------------------------------------------------------------ issue 13: messages, --out, --force, resources


def _no_simulation(monkeypatch) -> None:
    """Make any simulation fail loudly: what is refused must be refused before one starts."""
    import royaltysim.runner

    def boom(*args, **kwargs):
        raise AssertionError("a simulation started")

    monkeypatch.setattr(royaltysim.runner, "run", boom)


def test_out_is_checked_before_any_simulation(run_dir: Path, tmp_path: Path, monkeypatch) -> None:
    _no_simulation(monkeypatch)
    path = write_yaml(tmp_path / "study.yaml", small_scenario(run_dir, steps=2))
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    result = runner.invoke(app, ["run", str(path), "--out", str(afile)])
    assert result.exit_code == 2 and "is a file" in result.output
    held = tmp_path / "held"
    held.mkdir()
    (held / "model.parquet").write_bytes(b"earlier results")
    result = runner.invoke(app, ["run", str(path), "--out", str(held)])
    assert result.exit_code == 2 and "already holds results" in result.output and "--force" in result.output
    assert (held / "model.parquet").read_bytes() == b"earlier results"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "held", "study.yaml"]  # nothing staged


def test_force_replaces_the_whole_folder(run_dir: Path, tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "study.yaml", small_scenario(run_dir, steps=2))
    out = tmp_path / "out"
    assert runner.invoke(app, ["run", str(path), "--out", str(out), "--seed", "1"]).exit_code == 0
    (out / "stray.txt").write_text("from before")
    result = runner.invoke(app, ["run", str(path), "--out", str(out), "--seed", "2", "--force"])
    assert result.exit_code == 0, result.output
    assert not (out / "stray.txt").exists()  # the folder is the new run's, whole
    assert set(pd.read_parquet(out / "model.parquet")["seed"]) == {2}
    assert f"royaltysim run {out / 'scenario.yaml'}" in (out / "scenario.yaml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "study.yaml"]


@pytest.mark.parametrize("args, words", [
    (["--seed", "-1"], "--seed"), (["--steps", "0"], "--steps"), (["--steps", "100000"], "--steps"),
    (["--max-memory", "lots"], "not a size"), (["--max-time", "soon"], "not a duration"),
])
def test_bad_numbers_are_messages(run_dir: Path, tmp_path: Path, monkeypatch, args, words) -> None:
    _no_simulation(monkeypatch)
    path = write_yaml(tmp_path / "study.yaml", small_scenario(run_dir))
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2 and words in result.output, result.output
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_sweep_refuses_workers_below_one(run_dir: Path, tmp_path: Path, workers: str) -> None:
    raw = small_scenario(run_dir, sweep={"grid": {"platform.platform_cut": [0.2, 0.3]}, "replicates": 1})
    path = write_yaml(tmp_path / "sweep.yaml", raw)
    result = runner.invoke(app, ["sweep", str(path), "--out", str(tmp_path / "s"), "--workers", workers])
    assert result.exit_code == 2 and "--workers" in result.output
    assert not (tmp_path / "s").exists()


def test_validate_estimates_and_refuses_what_exceeds_the_budget(run_dir: Path, tmp_path: Path) -> None:
    raw = small_scenario(run_dir, sweep={"grid": {"consumers.n": [300, 3000]}, "replicates": 2})
    path = write_yaml(tmp_path / "study.yaml", raw)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "a run needs about" in result.output and "the sweep: 4 runs, the largest needing" in result.output
    result = runner.invoke(app, ["validate", str(path), "--max-memory", "10M"])
    assert result.exit_code == 2 and "set by --max-memory" in result.output and "consumers.n" in result.output
    huge = write_yaml(tmp_path / "huge.yaml", small_scenario(run_dir, consumers={"n": 10_000_000}))
    result = runner.invoke(app, ["run", str(huge), "--out", str(tmp_path / "h"), "--max-memory", "8G"])
    assert result.exit_code == 2 and "listening (10,000,000 listeners" in result.output
    assert not (tmp_path / "h").exists()


def test_run_on_a_sweep_scenario_says_what_it_runs(run_dir: Path, tmp_path: Path) -> None:
    raw = small_scenario(run_dir, steps=2, sweep={"grid": {"platform.platform_cut": [0.2, 0.3]}})
    path = write_yaml(tmp_path / "sweep.yaml", raw)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "`run` runs the base scenario" in result.output and f"royaltysim sweep {path}" in result.output


def test_unallocated_money_is_recorded_and_reported(run_dir: Path, tmp_path: Path) -> None:
    raw = small_scenario(run_dir, steps=3)
    raw["schemes"][1]["ai"] = {"name": "similarity", "params": {"top_k": 2, "threshold": 5.0}}  # nothing is that similar
    path = write_yaml(tmp_path / "study.yaml", raw)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    model = pd.read_parquet(tmp_path / "o" / "model.parquet")
    by = model.groupby("scheme")
    assert by["unallocated_ai_share"].min()["similarity"] == pytest.approx(1.0)
    assert by["unallocated_ai_share"].max()["causal"] == pytest.approx(0.0, abs=1e-9)
    assert (model["unallocated_ai"] == model["ai_pool"] * model["unallocated_ai_share"]).all()
    # the money is not lost: paid + unallocated is the two pools
    assert (model["paid"] + model["unallocated_human"] + model["unallocated_ai"]).sum() == pytest.approx(
        (model["human_pool"] + model["ai_pool"]).sum())
    assert "Under similarity, 100.0% of the AI pool went unpaid" in result.output
    assert "Under causal" not in result.output.split("went unpaid")[0].split("\n")[-1]
    assert "went unpaid" in (tmp_path / "o" / "report.html").read_text()


@pytest.mark.parametrize("content, words", [
    (b"question: [unclosed\n", "YAML syntax error"),
    ("question: caf\u00e9\n".encode("latin-1"), "not UTF-8"),
    (None, "is a folder"),
])
def test_unreadable_scenarios_are_messages_everywhere(tmp_path: Path, content: bytes | None, words: str) -> None:
    path = tmp_path / "bad.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    for command in (["validate"], ["run", "--out", str(tmp_path / "o")], ["sweep", "--out", str(tmp_path / "s")]):
        result = runner.invoke(app, [command[0], str(path), *command[1:]])
        assert result.exit_code == 2 and words in result.output, (command, result.output)
        assert isinstance(result.exception, SystemExit)
