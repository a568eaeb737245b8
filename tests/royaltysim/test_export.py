"""Exporting results folders (run, sweep, sensitivity) to CSV and Stata, and the glossary of their columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import royaltysim
from royaltysim.cli import app
from royaltysim.columns import columns_markdown, describe_column
from royaltysim.config import validate_scenario
from royaltysim.export import ExportError, export_folder, folder_tables, stata_names
from royaltysim.sensitivity import run_sensitivity

from .conftest import small_scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folders(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One folder of each kind, written by the code the commands call (few listeners, months and seeds)."""
    from dask.distributed import LocalCluster

    root = tmp_path_factory.mktemp("export")
    raw = small_scenario(run_dir, steps=2, consumers={"n": 200, "sessions": 5})
    results = royaltysim.run(raw, seeds=2, workers=1)
    results.save(root / "run")
    # one small cluster in this process for both (starting a cluster of worker processes costs seconds)
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    royaltysim.sweep({**raw, "sweep": {"grid": {"platform.ai_pool_rate": [0.3, 0.7]}, "replicates": 1}},
                     root / "sweep", scheduler=cluster.scheduler_address)
    checked = validate_scenario({**raw, "sensitivity": {
        "method": "sobol", "n": 2, "seeds": 1,
        "parameters": {"platform.ai_pool_rate": [0.2, 0.8], "platform.ai_listening_share": [0.05, 0.3]},
        "outputs": [{"measure": "gini_income_run", "arm": "causal", "minus": "pro-rata"}]}}, source="test")
    run_sensitivity(checked.model_dump(mode="json"), checked.sensitivity, root / "sensitivity",
                    scheduler=cluster.scheduler_address)
    cluster.close()
    return {"run": root / "run", "sweep": root / "sweep", "sensitivity": root / "sensitivity", "results": results}


def test_each_kind_of_folder_is_recognised_with_its_tables(folders):
    kind, tables, text = folder_tables(folders["run"])
    assert kind == "run" and "question: test" in text
    expected = folders["results"].tables()
    assert list(tables) == list(expected) == ["model", "creators", "creator_income", "measures", "summary",
                                              "comparisons"]
    for name in expected:
        pd.testing.assert_frame_equal(tables[name].reset_index(drop=True), expected[name].reset_index(drop=True),
                                      check_dtype=False)
    kind, tables, text = folder_tables(folders["sweep"])
    assert kind == "sweep" and list(tables) == ["sweep", "summary", "creator_income", "measures"] and text is None
    assert "platform.ai_pool_rate" in tables["sweep"].columns
    kind, tables, _ = folder_tables(folders["sensitivity"])
    assert kind == "sensitivity" and list(tables)[:3] == ["design", "outputs", "sobol"]


@pytest.mark.parametrize("kind", ["run", "sweep", "sensitivity"])
def test_every_exported_column_is_in_the_glossary(folders, kind):
    _, tables, _ = folder_tables(folders[kind])
    missing = {(name, c) for name, t in tables.items() for c in t.columns if describe_column(str(c)) is None}
    assert not missing, f"describe these columns in royaltysim/columns.py (then regenerate docs/columns.md): {missing}"


def test_the_glossary_page_is_current():
    assert (ROOT / "docs" / "columns.md").read_text() == columns_markdown(), \
        "regenerate it: python -m royaltysim.columns > docs/columns.md"
    assert describe_column("no_such_column") is None
    assert "causal minus pro-rata" in describe_column("gini_income_run: causal minus pro-rata")


def test_stata_export_of_a_sensitivity_folder_reads_back_with_labels(folders, tmp_path):
    written = export_folder(folders["sensitivity"], to="stata", out=tmp_path / "dta")
    assert sorted(p.name for p in written) == ["creator_income.dta", "design.dta", "measures.dta", "outputs.dta",
                                               "sobol.dta", "summary.dta", "sweep.dta"]
    design = pd.read_parquet(folders["sensitivity"] / "design.parquet")
    with pd.io.stata.StataReader(tmp_path / "dta" / "design.dta") as reader:
        back = reader.read()
        labels = reader.variable_labels()
    names = stata_names(list(design.columns))
    assert list(back.columns) == list(names.values()) and all(len(n) <= 32 for n in back.columns)
    assert labels[names["gini_income_run: causal minus pro-rata"]] == "gini_income_run: causal minus pro-rata"
    pd.testing.assert_series_equal(back[names["platform.ai_pool_rate"]], design["platform.ai_pool_rate"],
                                   check_names=False)


def test_the_command_exports_csv_beside_the_scenario_and_refuses_what_it_cannot(folders, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(folders["run"]), "--to", "csv", "--out", str(tmp_path / "csv")])
    assert res.exit_code == 0, res.output
    assert "wrote 7 files" in res.output and (tmp_path / "csv" / "scenario.yaml").is_file()
    back = pd.read_csv(tmp_path / "csv" / "measures.csv")
    pd.testing.assert_frame_equal(back, folders["results"].measures().reset_index(drop=True), check_dtype=False)
    res = runner.invoke(app, ["export", str(folders["sweep"]), "--to", "stata", "-t", "measures", "--out",
                              str(tmp_path / "s")])
    assert res.exit_code == 0 and [p.name for p in (tmp_path / "s").iterdir()] == ["measures.dta"], res.output

    res = runner.invoke(app, ["export", str(folders["run"]), "--to", "xlsx"])
    assert res.exit_code == 2 and "cannot export to 'xlsx'; formats: csv, stata" in res.output
    res = runner.invoke(app, ["export", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "is not a folder" in res.output
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    res = runner.invoke(app, ["export", str(tmp_path / "junk")])
    assert res.exit_code == 2 and "holds no results to export" in res.output and "found notes.txt" in res.output
    with pytest.raises(ExportError, match="no table 'nope'"):
        export_folder(folders["run"], out=tmp_path / "x", tables=["nope"])
