"""The platform's choice (royaltysim/platform_choice.py): the search finds known optima, the profit-maximising
rate is never worse in profit than the welfare-maximising one on the same seeds, bad sections are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from royaltysim.cli import app
from royaltysim.config import ScenarioError, validate_scenario
from royaltysim.platform_choice import GOLDEN, PlatformChoiceSpec, choice_table, choose, search

from .conftest import small_scenario, write_yaml

runner = CliRunner()


# ------------------------------------------------------------------ the search on functions with known optima
def test_search_finds_the_optimum_of_a_concave_function() -> None:
    calls: list[float] = []

    def f(x: float) -> dict[str, list[float]]:
        calls.append(x)
        # three "seeds" that share the optimum and differ by a level (common random numbers)
        return {"peak": [-(x - 0.37) ** 2 + level for level in (0.0, 1.0, -2.0)]}

    found = search(f, 0.0, 1.0, evaluations=25, grid=5, tolerance=1e-3)
    assert abs(found.best["peak"] - 0.37) < 2e-3
    lo, hi = found.bracket["peak"]
    assert lo <= 0.37 <= hi
    assert len(calls) <= 25 and len(set(calls)) == len(calls)  # no value simulated twice
    assert calls[:5] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    # the first refinement is a golden-section probe into the wider side of the grid's bracket [0, 0.25, 0.5]
    assert calls[5] == pytest.approx(0.25 + GOLDEN * 0.25)


def test_search_shares_evaluations_between_targets_and_finds_each_optimum() -> None:
    def f(x: float) -> dict[str, list[float]]:
        return {"left": [-abs(x - 0.2)] * 2, "right": [-((x - 0.8) ** 2)] * 2, "rising": [x, 2 * x]}

    found = search(f, 0.0, 1.0, evaluations=40, grid=5, tolerance=1e-3)
    assert found.best["left"] == pytest.approx(0.2, abs=3e-3)
    assert found.best["right"] == pytest.approx(0.8, abs=3e-3)
    assert found.best["rising"] == 1.0  # an optimum at the end of the range
    assert set(found.converged) == {"left", "right", "rising"}
    assert found.values["evaluation"].max() < 40  # stops when every bracket is narrow enough
    curve = found.curve("rising")
    assert list(curve.index) == sorted(curve.index)
    np.testing.assert_allclose(curve["mean"], 1.5 * curve.index.to_numpy())


def test_search_with_a_grid_only_picks_the_best_grid_point() -> None:
    found = search(lambda x: {"t": [-(x - 0.6) ** 2]}, 0.0, 1.0, evaluations=3, grid=3)
    assert found.best["t"] == 0.5
    assert found.bracket["t"] == (0.0, 1.0)


def test_search_refuses_a_bad_budget_and_bad_values() -> None:
    with pytest.raises(ValueError, match="grid <= evaluations"):
        search(lambda x: {"t": [x]}, 0.0, 1.0, evaluations=3, grid=5)
    with pytest.raises(ValueError, match="low < high"):
        search(lambda x: {"t": [x]}, 1.0, 1.0, evaluations=3, grid=3)
    with pytest.raises(ValueError, match="finite values"):
        search(lambda x: {"t": [np.nan]}, 0.0, 1.0, evaluations=3, grid=3)


def test_choice_table_pairs_seeds_and_bootstraps_the_choice() -> None:
    # profit peaks at 0.25 in every seed; welfare at 0.75 in two seeds of three, at 0.25 in the third
    profit = {0.0: [1, 2, 3], 0.25: [5, 6, 7], 0.5: [4, 5, 6], 0.75: [2, 3, 4], 1.0: [0, 1, 2]}
    welfare = {0.0: [0, 0, 0], 0.25: [1, 1, 6], 0.5: [2, 2, 2], 0.75: [4, 4, 1], 1.0: [3, 3, 1]}
    rows = [{"x": x, "scheme": "a", "seed": s, "platform_profit_month_mean": float(profit[x][s]),
             "total_welfare_month_mean": float(welfare[x][s])} for x in profit for s in range(3)]
    measures = pd.DataFrame(rows)
    for col in ("consumer_surplus_month_mean", "creator_surplus_month_mean", "subscribers_end", "opted_in_end"):
        measures[col] = 1.0

    def f(x: float) -> dict[str, list[float]]:
        return {"a: platform_profit_month_mean": profit[x], "a: total_welfare_month_mean": welfare[x]}

    found = search(f, 0.0, 1.0, evaluations=5, grid=5)
    table = choice_table(found, ["a"], "platform_profit_month_mean", "total_welfare_month_mean", measures,
                         resamples=2000).set_index("measure")
    p = table.loc["platform_profit_month_mean"]
    assert p["chosen"] == 0.25 and p["planner"] == 0.75
    assert p["chosen_low"] == p["chosen_high"] == 0.25  # every resample of the seeds picks 0.25
    assert p["planner_low"] == 0.25 and p["planner_high"] == 0.75  # resamples heavy in seed 2 pick 0.25
    assert p["difference"] == pytest.approx(3.0) and p["verdict"] == "higher"  # 5,6,7 minus 2,3,4
    w = table.loc["total_welfare_month_mean"]
    assert w["difference"] == pytest.approx((-3 - 3 + 5) / 3)
    assert table.loc["opted_in_end", "verdict"] == "identical"


# ------------------------------------------------------------------ the section in a scenario
def _with_choice(run_dir: Path, choice: dict, **overrides: object) -> dict:
    raw = small_scenario(run_dir, **overrides)
    raw["platform_choice"] = choice
    return raw


def test_spec_reads_aliases_and_defaults() -> None:
    spec = PlatformChoiceSpec()
    assert spec.parameter == "platform.ai_pool_rate"
    assert (spec.objective, spec.compare) == ("platform_profit_month_mean", "total_welfare_month_mean")
    assert PlatformChoiceSpec(compare="consumer_surplus").compare == "consumer_surplus_month_mean"


@pytest.mark.parametrize(
    ("choice", "where", "says"),
    [
        ({"objective": "gini_income_run"}, "platform_choice.objective", "not a money measure"),
        ({"compare": "profit"}, "platform_choice", "both platform_profit_month_mean"),
        ({"range": [0.8, 0.2]}, "platform_choice", "low < high"),
        ({"grid": 9, "evaluations": 5}, "platform_choice", "lower grid or raise evaluations"),
        ({"evaluations": 1}, "platform_choice.evaluations", "greater than or equal to 2"),
        ({"rate": 0.5}, "platform_choice.rate", "unknown key 'rate'; allowed keys: parameter"),
        ({"parameter": "platform.ai_pool_share"}, "platform_choice.parameter", "not a key of the scenario"),
        ({"parameter": "steps"}, "platform_choice.parameter", "only a real-valued parameter"),
        ({"arms": ["pro-rata", "nobody"]}, "platform_choice.arms", "'nobody' is not an arm"),
        ({"range": [0.0, 1.5]}, "platform_choice.range", "platform.ai_pool_rate=1.5"),
        ({"seeds": 1}, "platform_choice.seeds", "greater than or equal to 2"),
    ],
)
def test_bad_sections_are_refused_with_the_key_and_the_fix(run_dir: Path, choice: dict, where: str,
                                                           says: str) -> None:
    with pytest.raises(ScenarioError) as err:
        validate_scenario(_with_choice(run_dir, choice))
    text = str(err.value)
    assert where in text and says in text, text


def test_an_arm_with_its_own_ai_pool_terms_needs_its_own_path(run_dir: Path) -> None:
    raw = _with_choice(run_dir, {})
    raw["schemes"][1]["ai_pool"] = {"rate": 0.3}
    with pytest.raises(ScenarioError, match=r"arm 'similarity' pays the AI pool by its own ai_pool terms.*"
                                            r"schemes\[1\]\.ai_pool\.rate"):
        validate_scenario(raw)
    raw["platform_choice"] = {"parameter": "schemes[1].ai_pool.rate", "arms": ["similarity"]}
    assert validate_scenario(raw).platform_choice.parameter == "schemes[1].ai_pool.rate"
    raw["platform_choice"] = {"parameter": "schemes[0].ai_pool.rate"}
    with pytest.raises(ScenarioError, match="ai_pool terms must be written out"):
        validate_scenario(raw)


# ------------------------------------------------------------------ the economy searched, through the command
def test_choose_writes_the_choice_and_profit_is_never_worse_at_the_platforms_choice(run_dir: Path,
                                                                                  tmp_path: Path) -> None:
    raw = _with_choice(run_dir, {"evaluations": 4, "grid": 3, "seeds": 2, "arms": ["pro-rata", "causal"]},
                       steps=3)
    raw["behaviour"] = {"opt_out": True}
    raw["demand"] = {"enabled": True, "ai_weight": 0.0}
    raw["platform"] = {"ai_listening_share": 0.3}
    path = write_yaml(tmp_path / "choice.yaml", raw)
    out = tmp_path / "out"
    res = runner.invoke(app, ["choose", str(path), "--out", str(out), "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "the platform chooses platform.ai_pool_rate" in res.output
    for name in ("scenario.yaml", "evaluations.parquet", "choice.parquet", "choice.png", "choice.html"):
        assert (out / name).is_file(), name
    evals = pd.read_parquet(out / "evaluations.parquet")
    assert set(evals["scheme"]) == {"pro-rata", "causal"}
    assert evals.groupby("x")["seed"].nunique().eq(2).all()  # every value on the same seeds
    assert evals["x"].nunique() == 4
    choices = pd.read_parquet(out / "choice.parquet")
    for arm in ("pro-rata", "causal"):
        c = choices[choices["scheme"] == arm].set_index("measure")
        profit = evals[evals["scheme"] == arm].groupby("x")["platform_profit_month_mean"].mean()
        welfare = evals[evals["scheme"] == arm].groupby("x")["total_welfare_month_mean"].mean()
        chosen, planner = c["chosen"].iloc[0], c["planner"].iloc[0]
        assert profit[chosen] == profit.max() and welfare[planner] == welfare.max()
        # the platform's rate never earns it less than the planner's, on the same seeds
        assert profit[chosen] >= profit[planner]
        assert c.loc["platform_profit_month_mean", "difference"] >= 0
        assert c.loc["total_welfare_month_mean", "difference"] <= 0
        assert c["chosen_low"].iloc[0] <= chosen <= c["chosen_high"].iloc[0]


def test_choose_refuses_a_scenario_without_the_section_or_with_one_seed(run_dir: Path, tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "plain.yaml", small_scenario(run_dir))
    res = runner.invoke(app, ["choose", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "has no `platform_choice:` section" in res.output
    scenario = validate_scenario(_with_choice(run_dir, {"evaluations": 2, "grid": 2}))  # seeds: 1
    with pytest.raises(ValueError, match="at least 2 replicate seeds"):
        choose(scenario)
