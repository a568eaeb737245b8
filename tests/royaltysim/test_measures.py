"""One name, one meaning: a measure's name gives the same number in the Python API, the saved tables, the
report, a sweep and a recomputation from the creators' rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import royaltysim
from royaltysim import metrics
from royaltysim.config import validate_scenario
from royaltysim.measures import MEASURES, MONTH_COLUMNS, band_edges, creator_income, rank_bands
from royaltysim.report import summary_table
from royaltysim.sweep import SweepSpec, run_sweep

from .conftest import small_scenario


@pytest.fixture(scope="module")
def results(run_dir: Path) -> royaltysim.Results:
    return royaltysim.run(small_scenario(run_dir, steps=3, seeds=2), workers=1)


def test_names_state_their_basis() -> None:
    for name, m in MEASURES.items():
        assert name == m.name
        basis = ("_run" in name, "_month" in name, name.endswith(("_end", "_start")))
        assert any(basis), f"{name} does not say what it is measured over"
    assert set(MONTH_COLUMNS.values()).isdisjoint({"gini", "top10_share", "ai_misallocation"})


def test_whole_run_measures_recompute_from_creator_rows(results: royaltysim.Results) -> None:
    c = results.creators
    measures = results.measures().set_index(["scheme", "seed"])
    for (scheme, seed), g in c.groupby(["scheme", "seed"]):
        money = (g["human_pay"] + g["ai_pay"]).groupby(g["creator"]).sum()
        ever = g.groupby("creator")["active"].max() | (money > 0)
        income = money[ever].to_numpy()
        row = measures.loc[(scheme, seed)]
        assert row["gini_income_run"] == pytest.approx(metrics.gini(income))
        assert row["top10_share_income_run"] == pytest.approx(metrics.top_share(income, 0.10))
        last = g[g["step"] == g["step"].max()]
        settled = last[last["active"] | (last["human_pay"] + last["ai_pay"] > 0)]
        # the month's Gini is over that month's income of the creators in the market when it was settled
        month = results.model[(results.model["scheme"] == scheme) & (results.model["seed"] == seed)]
        assert row["gini_income_month"] == month.sort_values("step")["gini_income_month"].iloc[-1]
        assert row["gini_income_month"] == pytest.approx(metrics.gini((settled["human_pay"] + settled["ai_pay"]).to_numpy()))


def test_the_same_name_gives_the_same_number_everywhere(results: royaltysim.Results, run_dir: Path, tmp_path: Path) -> None:
    measures = results.measures()
    # the saved tables
    results.save(tmp_path / "run")
    saved = pd.read_parquet(tmp_path / "run" / "measures.parquet")
    pd.testing.assert_frame_equal(saved, measures)
    assert "gini_income_month" in pd.read_parquet(tmp_path / "run" / "model.parquet").columns
    # the summary and the comparison
    summ = results.summary(["gini_income_run"]).set_index("scheme")
    comp = results.compare(measures=["gini_income_run"]).set_index("scheme")
    for scheme, g in measures.groupby("scheme"):
        assert summ.loc[scheme, "mean"] == pytest.approx(g["gini_income_run"].mean())
        if scheme != results.reference_arm:
            assert comp.loc[scheme, "arm_mean"] == pytest.approx(g["gini_income_run"].mean())
    # the report's table of all measures, under the same name
    table = summary_table(results)
    row = next(i for i in table.index if i.endswith("[gini_income_run]"))
    for scheme in results.labels:
        assert table.loc[row, scheme].startswith(MEASURES["gini_income_run"].format(summ.loc[scheme, "mean"]))
    # a sweep of the same scenario over a parameter the run used: the same runs, the same numbers
    base = validate_scenario(small_scenario(run_dir, steps=3, seeds=2)).model_dump(mode="json")
    spec = SweepSpec(grid={"platform.platform_cut": [base["platform"]["platform_cut"], 0.4]}, replicates=2)
    sweep = run_sweep(base, spec, tmp_path / "sweep", workers=1)
    same = sweep.measures[sweep.measures["platform.platform_cut"] == base["platform"]["platform_cut"]]
    merged = same.merge(measures, on=["scheme", "seed"], suffixes=("_sweep", "_run"))
    assert len(merged) == len(measures)
    for name in ("gini_income_run", "gini_income_month", "ai_misallocation_month_mean", "creators_active_end"):
        np.testing.assert_allclose(merged[f"{name}_sweep"], merged[f"{name}_run"], err_msg=name)
    # and the sweep keeps what recomputes them: per-creator whole-run income
    kept = pd.read_parquet(tmp_path / "sweep" / "creator_income.parquet")
    kept = kept[kept["platform.platform_cut"] == base["platform"]["platform_cut"]]
    for (scheme, seed), g in kept.groupby(["scheme", "seed"]):
        income = g.loc[g["ever_active"], "income_run"].to_numpy()
        assert metrics.gini(income) == pytest.approx(measures.set_index(["scheme", "seed"]).loc[(scheme, seed), "gini_income_run"])
    # the sweep summary's final-month Gini is the final month's, by name
    final = sweep.summary[(sweep.summary["metric"] == "gini_income_month")]
    assert not final.empty and (final["ci_high"] <= 1.0).all() and (final["ci_low"] >= 0.0).all()


def test_creator_income_and_rank_bands() -> None:
    rows = []
    for seed in (0, 1):
        for step in (1, 2):
            for i in range(12):
                for scheme in ("a", "b"):
                    pay = float(i + 1) * (2.0 if scheme == "b" and i == 0 else 1.0)
                    rows.append({"scheme": scheme, "seed": seed, "step": step, "creator": f"c{i}", "active": i != 5,
                                 "human_pay": pay, "ai_pay": 0.5, "true_share": 1 / 12})
    income = creator_income(pd.DataFrame(rows))
    row = income[(income["scheme"] == "a") & (income["seed"] == 0) & (income["creator"] == "c11")].iloc[0]
    assert row["income_run"] == pytest.approx(2 * (12 + 0.5)) and row["months"] == 2 and row["active_end"]
    assert not income.loc[income["creator"] == "c5", "active_end"].any()
    bands = rank_bands(income, "a")
    top = bands[(bands["scheme"] == "b") & (bands["band"] == "top 10")]
    assert set(top["creator"]) == {f"c{i}" for i in range(2, 12)}  # ranked under a, kept under b
    assert set(bands.loc[bands["band"] == "11-12", "creator"]) == {"c0", "c1"}
    assert band_edges(30) == [(1, 10), (11, 30)]
    assert band_edges(1000) == [(1, 10), (11, 100), (101, 1000)]
    assert band_edges(5000) == [(1, 10), (11, 100), (101, 1000), (1001, 5000)]
    assert band_edges(8) == [(1, 8)]
    with pytest.raises(ValueError, match="no arm"):
        rank_bands(income, "zzz")


def test_differences_are_printed_with_the_digits_they_need() -> None:
    share = MEASURES["platform_margin_month_mean"]  # one decimal of a percentage by default
    assert share.format(0.00002, signed=True) == "+0.0 pp"
    d = share.digits_for(0.00002, -0.00001, 0.00005)
    assert share.format(0.00002, signed=True, digits=d) == "+0.002 pp"
    assert share.format(-0.00001, signed=True, digits=d) == "-0.001 pp"
    gini = MEASURES["gini_income_run"]
    assert gini.digits_for(-0.016, -0.026, -0.007) == 3  # already distinct and non-zero
    assert MEASURES["creators_active_end"].format(43.0) == "43"
    assert MEASURES["income_month_mean"].format(-2.5, signed=True) == "-$2.50"
    bottom = MEASURES["bottom50_share_income_run"]
    d = bottom.digits_for(-0.0002, -0.0004, -0.00001)
    assert bottom.format(-0.00001, signed=True, digits=d) == "-0.001 pp"
