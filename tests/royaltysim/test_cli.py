"""The command line: ``royaltysim validate`` and ``royaltysim run`` (writing only under tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
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
