"""The Python API for notebooks: ``royaltysim.run`` and ``royaltysim.sweep`` results, their paired comparisons,
reports and CSV / Stata exports, and ``royaltysim.sweep`` callable whatever was imported first."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import royaltysim
from royaltysim.cli import app
from royaltysim.config import load_scenario
from royaltysim.export import STATA_NAME_LENGTH, stata_frame, stata_names, write_stata
from royaltysim.runner import SweepResults
from royaltysim.stats import mean_interval, paired_difference

from .conftest import small_scenario, write_yaml

ROOT = Path(__file__).resolve().parents[2]
_STATA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")


@pytest.fixture(scope="module")
def scenario_file(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = small_scenario(run_dir, steps=3, seeds=3, question="Which scheme pays whom?",
                         sweep={"grid": {"platform.ai_pool_rate": [0.2, 0.8]}, "replicates": 3})
    return write_yaml(tmp_path_factory.mktemp("api") / "api.yaml", raw)


@pytest.fixture(scope="module")
def results(scenario_file: Path) -> royaltysim.Results:
    return royaltysim.run(scenario_file, workers=1)


# --------------------------------------------------------------------------- a run's results


def test_summary_is_each_arms_mean_over_seeds_with_its_interval(results: royaltysim.Results) -> None:
    summ = results.summary(["gini_income_run", "creators_active_end"]).set_index(["scheme", "measure"])
    meas = results.measures()
    for arm in results.labels:
        values = meas.loc[meas["scheme"] == arm].sort_values("seed")["gini_income_run"].to_numpy()
        row = summ.loc[(arm, "gini_income_run")]
        iv = mean_interval(values, bounds=(0.0, 1.0))
        assert (row["mean"], row["low"], row["high"], row["n"]) == (pytest.approx(values.mean()), pytest.approx(iv.low),
                                                                   pytest.approx(iv.high), 3)
        # a count of creators is bounded by the population
        assert summ.loc[(arm, "creators_active_end"), "high"] <= results.n_creators()
    with pytest.raises(KeyError, match="no measure 'gini'"):
        results.summary(["gini"])


def test_compare_a_b_is_a_minus_b_paired_seed_by_seed(results: royaltysim.Results) -> None:
    ab = results.compare("causal", "pro-rata", measures=["ai_top10_share_run"]).iloc[0]
    ba = results.compare("pro-rata", "causal", measures=["ai_top10_share_run"]).iloc[0]
    wide = results.measures().pivot(index="seed", columns="scheme", values="ai_top10_share_run")
    iv = paired_difference(wide["causal"].to_numpy(), wide["pro-rata"].to_numpy(), bounds=(0.0, 1.0))
    assert (ab["scheme"], ab["reference"]) == ("causal", "pro-rata")
    assert ab["difference"] == pytest.approx(iv.estimate) and ab["difference"] == pytest.approx(-ba["difference"])
    assert (ab["low"], ab["high"]) == (pytest.approx(iv.low), pytest.approx(iv.high))
    assert (ab["low"], ab["high"]) == (pytest.approx(-ba["high"]), pytest.approx(-ba["low"]))
    with pytest.raises(ValueError, match=r"no arm 'nope'; arms: \['pro-rata', 'similarity', 'causal'\]"):
        results.compare("nope", "pro-rata")


def _mask_runtime(page: str) -> str:
    return re.sub(r"run time [0-9.]+ s", "run time _ s", page)


def test_report_writes_what_the_cli_writes(results: royaltysim.Results, scenario_file: Path, tmp_path: Path) -> None:
    page = results.report(tmp_path / "api")
    assert page == tmp_path / "api" / "report.html"
    cli = CliRunner().invoke(app, ["run", str(scenario_file), "--out", str(tmp_path / "cli")])
    assert cli.exit_code == 0, cli.output
    api_files = sorted(p.name for p in (tmp_path / "api").iterdir())
    assert api_files == sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert {"report.html", "scenario.yaml", "measures.parquet", "comparisons.parquet", "lorenz.png"} <= set(api_files)
    assert _mask_runtime(page.read_text()) == _mask_runtime((tmp_path / "cli" / "report.html").read_text())
    for table in ("measures", "creator_income", "model"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "api" / f"{table}.parquet"),
                                      pd.read_parquet(tmp_path / "cli" / f"{table}.parquet"))


def test_to_csv_writes_every_table_and_the_scenario(results: royaltysim.Results, tmp_path: Path) -> None:
    files = results.to_csv(tmp_path / "csv")
    tables = results.tables()
    assert [f.name for f in files] == [f"{n}.csv" for n in tables] + ["scenario.yaml"]
    assert set(tables) == {"model", "creators", "creator_income", "measures", "summary", "comparisons"}
    for name, table in tables.items():
        back = pd.read_csv(tmp_path / "csv" / f"{name}.csv")
        assert list(back.columns) == list(table.columns) and len(back) == len(table), name
    back = pd.read_csv(tmp_path / "csv" / "measures.csv")
    np.testing.assert_allclose(back["gini_income_run"], tables["measures"]["gini_income_run"])
    assert load_scenario(tmp_path / "csv" / "scenario.yaml") == results.scenario
    assert [f.name for f in results.to_csv(tmp_path / "two", tables=["measures"])] == ["measures.csv", "scenario.yaml"]
    with pytest.raises(ValueError, match="no table 'nope'; tables: model, creators"):
        results.to_csv(tmp_path / "bad", tables=["nope"])


def _assert_reads_back(path: Path, table: pd.DataFrame) -> None:
    """The Stata file at ``path`` holds ``table``: its names made Stata's, labelled with the originals, same values."""
    names = stata_names(list(table.columns))
    back = pd.read_stata(path)
    assert list(back.columns) == [names[str(c)] for c in table.columns]
    assert all(_STATA_NAME.fullmatch(c) for c in back.columns)
    with pd.io.stata.StataReader(path) as reader:
        assert reader.variable_labels() == {names[str(c)]: str(c) for c in table.columns}
    assert len(back) == len(table)
    for column in table.columns:
        want, got = table[column], back[names[str(column)]]
        if pd.api.types.is_bool_dtype(want) or pd.api.types.is_numeric_dtype(want):
            np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), equal_nan=True, err_msg=str(column))
        else:
            assert list(got.astype(str)) == [("" if pd.isna(v) else str(v)) for v in want], column


def test_to_stata_files_read_back_with_pandas(results: royaltysim.Results, tmp_path: Path) -> None:
    files = results.to_stata(tmp_path / "dta")
    tables = results.tables()
    assert [f.name for f in files] == [f"{n}.dta" for n in tables] + ["scenario.yaml"]
    for name, table in tables.items():
        _assert_reads_back(tmp_path / "dta" / f"{name}.dta", table)
    # readable names (strings) and booleans survive
    income = pd.read_stata(tmp_path / "dta" / "creator_income.dta")
    assert set(income["name"]) == set(results.creator_income()["name"])
    assert set(income["active_end"]) <= {0, 1}


def test_stata_names_are_valid_distinct_and_short() -> None:
    columns = ["schemes[1].ai.params.top_k", "schemes[2].ai.params.similarity_threshold_of_the_month",
               "schemes[2].ai.params.similarity_threshold_of_the_year", "in", "float", "2nd", "a b", "a_b",
               "seed", "gini_income_run", "$", "ok"]
    names = stata_names(columns)
    assert names["schemes[1].ai.params.top_k"] == "schemes_1_ai_params_top_k"
    assert names["seed"] == "seed" and names["gini_income_run"] == "gini_income_run"  # valid names are kept
    assert names["in"] == "in_" and names["float"] == "float_" and names["2nd"] == "v_2nd"
    assert names["a b"] == "a_b" and names["a_b"] == "a_b_2"
    assert names["schemes[2].ai.params.similarity_threshold_of_the_month"][:30] == \
        names["schemes[2].ai.params.similarity_threshold_of_the_year"][:30]
    assert len(set(names.values())) == len(columns)
    assert all(_STATA_NAME.fullmatch(n) and len(n) <= STATA_NAME_LENGTH for n in names.values())


def test_stata_types_string_categorical_nullable_and_mixed(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "scheme": pd.Series(["pro-rata", "causal", None], dtype="str"),
        "arm": pd.Categorical(["pro-rata", "causal", "pro-rata"]),
        "level": pd.Categorical([1, 2, 1]),
        "count": pd.array([1, None, 3], dtype="Int64"),
        "kept": [True, False, True],
        "grid.value": [[1, 2], "x", None],  # a swept list next to a string
        "rate": [0.2, np.nan, 0.8],
        "name": ["Dvořák", "Hildegard von Bingen", "x" * 3000],  # Unicode and a strL
    })
    path = write_stata(frame, tmp_path / "t.dta", data_label="A question " * 20)
    back = pd.read_stata(path)
    assert list(back.columns) == ["scheme", "arm", "level", "count", "kept", "grid_value", "rate", "name"]
    assert list(back["scheme"]) == ["pro-rata", "causal", ""]
    assert isinstance(back["arm"].dtype, pd.CategoricalDtype) and list(back["arm"]) == ["pro-rata", "causal", "pro-rata"]
    assert list(back["level"]) == [1, 2, 1]
    np.testing.assert_allclose(back["count"], [1, np.nan, 3])
    assert list(back["kept"]) == [1, 0, 1]
    assert list(back["grid_value"]) == ["[1, 2]", "x", ""]
    assert list(back["name"]) == list(frame["name"])
    assert list(stata_frame(frame).columns) == list(frame.columns)  # names are only changed when written


# --------------------------------------------------------------------------- a sweep's results

_SWEEP_AFTER_IMPORTING_THE_MODULE = textwrap.dedent("""
    import json, sys
    import royaltysim.sweep                      # the submodule first, as the CLI and sweep_report do
    from royaltysim.sweep import SweepSpec, run_sweep
    import royaltysim.sweep as sweep_module
    import royaltysim

    res = royaltysim.sweep(sys.argv[1], sys.argv[2], steps=2, workers=1)
    print(json.dumps({"type": type(res).__name__, "ran": res.result.ran, "total": res.result.total,
                      "same_module": royaltysim.sweep is sweep_module, "spec": SweepSpec.__module__,
                      "run_sweep": callable(run_sweep)}))
""")


@pytest.fixture(scope="module")
def sweep_run(scenario_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """A sweep run by ``royaltysim.sweep(...)`` in a fresh interpreter that imported ``royaltysim.sweep`` first."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    done = subprocess.run([sys.executable, "-c", _SWEEP_AFTER_IMPORTING_THE_MODULE, str(scenario_file), str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), out


@pytest.fixture(scope="module")
def sweep_results(sweep_run: tuple[dict, Path], scenario_file: Path) -> SweepResults:
    import royaltysim.sweep as sweep_module  # the module, then the call: the same object

    return sweep_module(scenario_file, sweep_run[1], steps=2, workers=1)


def test_sweep_is_callable_after_importing_the_sweep_module(sweep_run: tuple[dict, Path],
                                                           sweep_results: SweepResults) -> None:
    report, _ = sweep_run
    assert report == {"type": "SweepResults", "ran": 6, "total": 6, "same_module": True,
                      "spec": "royaltysim.sweep", "run_sweep": True}
    assert sweep_results.result.ran == 0 and sweep_results.result.total == 6  # the second call resumed every run
    assert royaltysim.sweep is sys.modules["royaltysim.sweep"] and callable(royaltysim.sweep)


def test_sweep_refuses_a_scenario_without_a_sweep(run_dir: Path, tmp_path: Path) -> None:
    from royaltysim.sweep import SweepError

    with pytest.raises(SweepError, match="has no `sweep:` section"):
        royaltysim.sweep(small_scenario(run_dir), tmp_path / "s")
    with pytest.raises(SweepError, match="replicates"):
        royaltysim.sweep(small_scenario(run_dir, sweep={"grid": {"steps": [1]}}), tmp_path / "s", replicates=0)


def test_sweep_summary_and_compare_are_per_point_and_paired(sweep_results: SweepResults) -> None:
    assert sweep_results.params == ["platform.ai_pool_rate"] and sweep_results.seeds == [3, 4, 5]
    assert sweep_results.scenario.sweep.steps == 2
    meas = sweep_results.measures()
    summ = sweep_results.summary(["gini_income_run"])
    assert list(summ.columns[:4]) == ["point", "platform.ai_pool_rate", "scheme", "measure"]
    assert len(summ) == 2 * 3  # points x arms: never pooled over points
    comp = sweep_results.compare("causal", "pro-rata", measures=["ai_top10_share_run"])
    assert len(comp) == 2
    for _, row in comp.iterrows():
        at = meas[meas["point"] == row["point"]]
        wide = at.pivot(index="seed", columns="scheme", values="ai_top10_share_run")
        iv = paired_difference(wide["causal"].to_numpy(), wide["pro-rata"].to_numpy(), bounds=(0.0, 1.0))
        assert (row["difference"], row["low"], row["high"]) == (pytest.approx(iv.estimate), pytest.approx(iv.low),
                                                               pytest.approx(iv.high))
        assert row["platform.ai_pool_rate"] == at["platform.ai_pool_rate"].iloc[0]  # the point's parameter value
    income = sweep_results.creator_income()
    assert income["name"].notna().all() and "platform.ai_pool_rate" in income.columns


def test_sweep_report_and_exports(sweep_results: SweepResults, tmp_path: Path) -> None:
    page = sweep_results.report(tmp_path / "report")
    assert page.name == "sweep_report.html" and "platform.ai_pool_rate" in page.read_text()
    tables = sweep_results.tables()
    assert set(tables) == {"sweep", "creator_income", "measures", "summary", "comparisons"}
    csv = sweep_results.to_csv(tmp_path / "csv")
    assert [f.name for f in csv] == [f"{n}.csv" for n in tables] + ["scenario.yaml"]
    assert "royaltysim sweep" in (tmp_path / "csv" / "scenario.yaml").read_text()
    assert load_scenario(tmp_path / "csv" / "scenario.yaml").sweep.steps == 2
    sweep_results.to_stata(tmp_path / "dta")
    for name, table in tables.items():
        _assert_reads_back(tmp_path / "dta" / f"{name}.dta", table)
    assert "platform_ai_pool_rate" in pd.read_stata(tmp_path / "dta" / "measures.dta").columns


def test_report_and_save_replace_a_folder_whole_or_not_at_all(results: royaltysim.Results, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Like `royaltysim run`: results already there are refused without force, and a failure mid-way
    leaves the folder exactly as it was (issue 13)."""
    from royaltysim.atomic import OutputFolderError

    out = tmp_path / "run"
    results.save(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(OutputFolderError, match="--force"):
        results.report(out)
    import royaltysim.report

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while drawing the figures")

    monkeypatch.setattr(royaltysim.report, "write_report", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        results.report(out, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging folder left behind
    assert "rerun with: royaltysim run " + str(out / "scenario.yaml") in (out / "scenario.yaml").read_text()
