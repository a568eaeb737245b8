"""Replicate seeds: which seeds run, that parallel workers change nothing, and the scenario keys behind them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import royaltysim
from royaltysim.config import ScenarioError, validate_scenario
from royaltysim.runner import resolve_seeds
from royaltysim.stats import paired_difference

from .conftest import small_scenario


def test_which_seeds_run(run_dir: Path) -> None:
    sc = validate_scenario(small_scenario(run_dir, seeds=3))
    assert sc.seed_list == [3, 4, 5]
    assert resolve_seeds(sc) == [3, 4, 5]
    assert resolve_seeds(sc, seed=7) == [7]  # one seed asked for
    assert resolve_seeds(sc, seeds=2) == [3, 4]
    assert resolve_seeds(sc, seed=10, seeds=2) == [10, 11]
    assert resolve_seeds(sc, seeds=[9, 1]) == [9, 1]
    assert validate_scenario(small_scenario(run_dir, seeds=[8, 2])).seed_list == [8, 2]
    assert validate_scenario({k: v for k, v in small_scenario(run_dir).items() if k != "seeds"}).seeds == 5
    with pytest.raises(ValueError, match="distinct"):
        resolve_seeds(sc, seeds=[1, 1])
    with pytest.raises(ScenarioError, match="distinct"):
        validate_scenario(small_scenario(run_dir, seeds=[2, 2]))
    with pytest.raises(ScenarioError, match="seeds"):
        validate_scenario(small_scenario(run_dir, seeds=0))


def test_parallel_seeds_give_the_same_tables(run_dir: Path) -> None:
    raw = small_scenario(run_dir, steps=2, seeds=3)
    one = royaltysim.run(raw, workers=1)
    two = royaltysim.run(raw, workers=2)
    pd.testing.assert_frame_equal(one.model, two.model)
    pd.testing.assert_frame_equal(one.creators, two.creators)
    assert one.seeds == [3, 4, 5]
    # each seed's tables are that seed's alone: the same as running it by itself
    alone = royaltysim.run(raw, seed=4)
    pd.testing.assert_frame_equal(one.model[one.model["seed"] == 4].reset_index(drop=True), alone.model)
    assert len(one.model) == 3 * 3 * 2  # seeds x arms x months


def test_compare_is_paired_seed_by_seed(run_dir: Path) -> None:
    res = royaltysim.run(small_scenario(run_dir, steps=2, seeds=3, compare={"reference": "causal"}), workers=1)
    assert res.reference_arm == "causal"
    comp = res.compare(measures=["gini_income_run"]).set_index("scheme")
    assert set(comp.index) == {"pro-rata", "similarity"}
    m = res.measures().pivot(index="seed", columns="scheme", values="gini_income_run")
    iv = paired_difference(m["pro-rata"].to_numpy(), m["causal"].to_numpy(), bounds=(0.0, 1.0))
    assert comp.loc["pro-rata", "difference"] == pytest.approx(iv.estimate)
    assert (comp.loc["pro-rata", "low"], comp.loc["pro-rata", "high"]) == (pytest.approx(iv.low), pytest.approx(iv.high))
    with pytest.raises(ValueError, match="no arm"):
        res.compare(arm="nope")
    summ = res.summary(["gini_income_run", "creators_active_end"])
    assert (summ["low"] <= summ["mean"]).all() and (summ["mean"] <= summ["high"]).all()
    n = res.n_creators()
    assert (summ.loc[summ["measure"] == "creators_active_end", "high"] <= n).all()
    assert np.isfinite(summ["low"]).all()


def test_compare_section_is_validated(run_dir: Path) -> None:
    with pytest.raises(ScenarioError, match="not an arm"):
        validate_scenario(small_scenario(run_dir, compare={"reference": "nobody"}))
    with pytest.raises(ScenarioError, match="gini_income_run"):  # the message lists the measures there are
        validate_scenario(small_scenario(run_dir, compare={"measures": ["gini"]}))
    ok = validate_scenario(small_scenario(run_dir, compare={"measures": ["gini_income_run", "exits_run"]}))
    assert ok.compare.measures == ["gini_income_run", "exits_run"] and ok.reference_arm == "pro-rata"
