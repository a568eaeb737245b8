"""Global sensitivity analysis: indices against a known answer (Ishigami), the spec's checks, and a small
scenario end to end on a real local Dask cluster (1 vs 2 workers, resume, paired outputs, the CLI)."""

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from royaltysim.config import validate_scenario
from royaltysim.sensitivity import (
    ISHIGAMI_INDICES,
    MORRIS_FILE,
    SOBOL_FILE,
    SensitivityError,
    SensitivitySpec,
    _elementary_effects,
    analyse,
    design,
    indices,
    ishigami,
    run_sensitivity,
)

from .conftest import small_scenario, write_yaml

PI = math.pi
OUT = [{"measure": "gini_income_run", "arm": "a"}]  # (an evaluator that is not the economy ignores outputs)


def ishigami_spec(**over) -> SensitivitySpec:
    return SensitivitySpec.model_validate(
        {"parameters": {"x1": [-PI, PI], "x2": [-PI, PI], "x3": [-PI, PI]}, "outputs": OUT, "resamples": 200, **over}
    )


def test_sobol_indices_of_the_ishigami_function_match_the_analytical_values():
    spec = ishigami_spec(method="sobol", n=2048)
    found, x, y = analyse(spec, lambda x: ishigami(x)[:, None], ["ishigami"])
    assert x.shape == (2048 * 5, 3) and spec.n_points == len(x)
    for index, truth in ISHIGAMI_INDICES.items():
        rows = found[found["index"] == index].set_index("parameter")
        for j, expected in enumerate(truth):
            got = rows.loc[f"x{j + 1}"]
            assert got["value"] == pytest.approx(expected, abs=0.04), (index, j)
            assert got["ci_low"] < got["value"] < got["ci_high"] and got["conf"] < 0.1
    # the design and the intervals are seeded: the same spec gives the same table
    again, _, _ = analyse(spec, lambda x: ishigami(x)[:, None], ["ishigami"])
    pd.testing.assert_frame_equal(found, again)


def test_morris_screening_of_the_ishigami_function():
    spec = ishigami_spec(method="morris", n=100)
    u, x = design(spec)
    y = ishigami(x)
    found = indices(spec, u, y, ["ishigami"])
    value = found.pivot(index="parameter", columns="index", values="value")
    # our own elementary effects (for sigma's interval) are SALib's: the same mu* and sigma
    effects = _elementary_effects(spec, u, y)
    for j, ee in enumerate(effects):
        assert np.abs(ee).mean() == pytest.approx(value.loc[f"x{j + 1}", "mu_star"], rel=1e-9)
        assert ee.std(ddof=1) == pytest.approx(value.loc[f"x{j + 1}", "sigma"], rel=1e-9)
    # x3 acts only through its interaction with x1: its effect varies more than it averages
    assert value.loc["x3", "sigma"] > value.loc["x3", "mu_star"]
    assert value.loc["x2", "mu_star"] > value.loc["x3", "mu_star"]
    sigma = found[found["index"] == "sigma"]
    assert (sigma["ci_low"] < sigma["ci_high"]).all()


def test_a_point_without_a_value_is_refused():
    spec = ishigami_spec(method="sobol", n=8)
    u, x = design(spec)
    y = ishigami(x)
    y[3] = np.nan
    with pytest.raises(SensitivityError, match="point 3"):
        indices(spec, u, y, ["ishigami"])


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"n": 12}, "power of 2"),
        ({"method": "morris", "levels": 3}, "even number"),
        ({"parameters": {"x": {"bounds": [0.0, 1.0], "log": True}}}, "bounds > 0"),
        ({"parameters": {"x": [1.0, 1.0]}}, "low < high"),
        ({"outputs": OUT * 2}, "outputs repeat"),
        ({"outputs": [{"measure": "gini", "arm": "a"}]}, "unknown measure 'gini'"),
        ({"n": 65536, "seeds": 10}, "more than an analysis may have"),
    ],
)
def test_the_spec_refuses_what_cannot_run(over, message):
    with pytest.raises(ValidationError, match=message):
        ishigami_spec(**over)


def test_log_and_integer_parameters_are_sampled_in_their_own_units():
    spec = SensitivitySpec.model_validate({
        "method": "morris", "n": 10, "outputs": OUT,
        "parameters": {"snr": {"bounds": [0.1, 10.0], "log": True}, "k": {"bounds": [1, 10], "integer": True}},
    })
    _, x = design(spec)
    assert x[:, 0].min() == pytest.approx(0.1) and x[:, 0].max() == pytest.approx(10.0)
    assert np.array_equal(x[:, 1], np.round(x[:, 1])) and set(x[:, 1]) <= set(range(1, 11))


def scenario(run_dir, method: str = "sobol") -> dict:
    return small_scenario(
        run_dir, steps=3, consumers={"n": 200, "sessions": 5},
        sensitivity={
            "method": method, "n": 2, "seeds": 2,
            "parameters": {"platform.ai_pool_rate": [0.2, 0.8],
                           "source.attribution_snr": {"bounds": [0.3, 3.0], "log": True}},
            "outputs": [{"measure": "gini_income_run", "arm": "causal"},
                        {"measure": "ai_misallocation_month_mean", "arm": "causal", "minus": "pro-rata"}],
        },
    )


def test_a_scenario_end_to_end_worker_count_invariant_and_resumable(run_dir, tmp_path):
    checked = validate_scenario(scenario(run_dir), source="test")
    base, spec = checked.model_dump(mode="json"), checked.sensitivity
    two = run_sensitivity(base, spec, tmp_path / "two", workers=2)
    assert two.total == spec.n_runs == 2 * 4 * 2 and two.ran == two.total and not two.failures
    one = run_sensitivity(base, spec, tmp_path / "one", workers=1)
    pd.testing.assert_frame_equal(one.indices, two.indices)
    pd.testing.assert_frame_equal(one.design, two.design)
    assert pd.read_parquet(tmp_path / "two" / SOBOL_FILE).equals(two.indices)

    # a paired output is arm minus arm within each seed, then the mean over seeds
    meas = pd.read_parquet(tmp_path / "two" / "measures.parquet").set_index(["run_id", "scheme"])
    per = two.per_seed[two.per_seed["output"].str.endswith("minus pro-rata")]
    row = per.iloc[0]
    by_hand = (meas.loc[(row["run_id"], "causal"), "ai_misallocation_month_mean"]
               - meas.loc[(row["run_id"], "pro-rata"), "ai_misallocation_month_mean"])
    assert row["value"] == pytest.approx(by_hand)
    point0 = per[per["point"] == 0]["value"].mean()
    assert two.design.loc[0, "ai_misallocation_month_mean: causal minus pro-rata"] == pytest.approx(point0)
    assert set(per["seed"]) == {3, 4}

    # resume: nothing is run again, and the indices are the same
    again = run_sensitivity(base, spec, tmp_path / "two", workers=2)
    assert again.ran == 0
    pd.testing.assert_frame_equal(again.indices, two.indices)


def test_cli_sensitivity_validate_and_report(run_dir, tmp_path):
    from typer.testing import CliRunner

    from royaltysim.cli import app

    path = write_yaml(tmp_path / "morris.yaml", scenario(run_dir, method="morris"))
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(path)])
    assert ok.exit_code == 0 and "(morris): 6 points x 2 seeds = 12 runs" in ok.output, ok.output
    res = runner.invoke(app, ["sensitivity", str(path), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "12 runs (12 run now, 0 already done)" in res.output and "by mu_star" in res.output
    found = pd.read_parquet(tmp_path / "out" / MORRIS_FILE)
    assert set(found["index"]) == {"mu", "mu_star", "sigma"} and len(found) == 2 * 2 * 3
    page = (tmp_path / "out" / "sensitivity_report.html").read_text()
    assert "AI royalty rate" not in page and "platform.ai_pool_rate" in page  # labels default to the path
    assert page.count('<img src="morris_') == 2
    assert all((tmp_path / "out" / img).is_file() for img in
               [p.split('"')[0] for p in page.split('<img src="')[1:]])

    bad_raw = scenario(run_dir)
    bad_raw["sensitivity"]["outputs"] = [{"measure": "gini_income_run", "arm": "nobody"}]
    bad_raw["sensitivity"]["parameters"] = {"platform.ai_pool_rate": [0.5, 1.5]}
    bad = write_yaml(tmp_path / "bad.yaml", bad_raw)
    res = runner.invoke(app, ["validate", str(bad)])
    assert res.exit_code == 2 and "'nobody' is not an arm" in res.output and "ai_pool_rate=1.5" in res.output
    plain = write_yaml(tmp_path / "plain.yaml", small_scenario(run_dir))
    res = runner.invoke(app, ["sensitivity", str(plain)])
    assert res.exit_code == 2 and "no `sensitivity:` section" in res.output


def test_the_shipped_analysis_runs_for_a_few_months(run_dir, tmp_path):
    from pathlib import Path

    from royaltysim.config import load_scenario

    from .test_scenarios import DEFAULT_RUN, _shipped_run_ready

    path = Path(__file__).parents[2] / "scenarios" / "sensitivity_causal_vs_share.yaml"
    shipped = _shipped_run_ready()
    raw = load_scenario(path, check_files=shipped).model_dump(mode="json")
    raw["source"]["run"] = str(DEFAULT_RUN if shipped else run_dir)
    raw["consumers"]["n"] = 300
    raw["sensitivity"].update(n=2, seeds=1, steps=2)  # 2 x (6 + 2) = 16 runs
    checked = validate_scenario(raw, source=str(path))
    result = run_sensitivity(checked.model_dump(mode="json"), checked.sensitivity, tmp_path / "s", workers=1)
    assert result.total == 16 and not result.failures
    assert set(result.indices["parameter"]) == set(checked.sensitivity.parameters)
    assert result.indices["value"].notna().all()
