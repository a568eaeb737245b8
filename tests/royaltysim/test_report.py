"""The report: every number in it comes from the run's own tables, and no finding ranks a tie."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import royaltysim
from royaltysim.measures import MEASURES
from royaltysim.report import (
    answer_table,
    band_table,
    creator_table,
    describe_difference,
    findings,
    lorenz_table,
    write_report,
)
from royaltysim.stats import paired_difference, verdict

from .conftest import small_scenario

RANKING = re.compile(r"\b(most|least|best|worst)\b")


@pytest.fixture(scope="module")
def results(run_dir: Path) -> royaltysim.Results:
    return royaltysim.run(small_scenario(run_dir, steps=3, seeds=3), workers=1)


@pytest.fixture(scope="module")
def tie(run_dir: Path) -> royaltysim.Results:
    """Two arms with the same rules: every difference is zero in every seed."""
    raw = small_scenario(run_dir, steps=3, seeds=2, schemes=[
        {"label": "pro-rata", "ai": {"name": "pro_rata"}}, {"label": "pro-rata again", "ai": {"name": "pro_rata"}}])
    return royaltysim.run(raw, workers=1)


def test_a_tie_is_never_ranked() -> None:
    # the Gini values of issue 14's user-centric report: 0.95 under both arms, within the noise of the seeds
    arm, ref = np.array([0.9512, 0.9490, 0.9531, 0.9502]), np.array([0.9508, 0.9497, 0.9525, 0.9499])
    iv = paired_difference(arm, ref, bounds=(0.0, 1.0))
    row = {"arm_mean": arm.mean(), "reference_mean": ref.mean(), "difference": iv.estimate, "low": iv.low,
           "high": iv.high, "n": iv.n, "verdict": verdict(iv)}
    text = describe_difference("gini_income_run", "artist-centric", "pro-rata", row)
    assert "no detectable difference between artist-centric and pro-rata" in text
    assert not re.search(r"\b(higher|lower|more|less)\b", text) and not RANKING.search(text)
    detected = describe_difference("gini_income_run", "causal", "pro-rata",
                                   {**row, "difference": -0.02, "low": -0.03, "high": -0.01, "verdict": "lower"})
    assert "is lower under causal than under pro-rata" in detected


def test_identical_arms_read_as_identical(tie: royaltysim.Results) -> None:
    text = "\n".join(findings(tie))
    assert "identical under pro-rata again in every seed" in text
    assert not re.search(r"\b(higher|lower) under\b", text) and not RANKING.search(text)
    assert set(answer_table(tie)["verdict"]) == {"identical"}


def test_findings_quote_the_paired_comparisons(results: royaltysim.Results) -> None:
    text = "\n".join(findings(results))
    comp = results.compare(measures=["gini_income_run"]).set_index("scheme")
    m = MEASURES["gini_income_run"]
    for arm, row in comp.iterrows():
        d = max(m.digits_for(*t) for t in comp[["difference", "low", "high"]].to_numpy())  # one measure's rows alike
        diff = m.format(row["difference"], signed=True, digits=d)
        interval = f"[{m.format(row['low'], signed=True, digits=d)}, {m.format(row['high'], signed=True, digits=d)}]"
        assert f"{diff} {interval}" in text, (arm, diff, interval)
        if row["verdict"] == "no detectable difference":
            assert f"no detectable difference under {arm}" in text
    assert "3 seeds (3-5)" in text and "Entries and exits under pro-rata" in text
    assert not RANKING.search(text)


def test_answer_table_leads_with_the_question_measures(run_dir: Path) -> None:
    raw = small_scenario(run_dir, steps=2, seeds=2, compare={"reference": "causal",
                                                            "measures": ["ai_misallocation_month_mean", "exits_run"]})
    res = royaltysim.run(raw, workers=1)
    table = answer_table(res)
    assert list(dict.fromkeys(table["measure"])) == ["ai_misallocation_month_mean", "exits_run"]
    assert set(table["arm"]) == {"pro-rata", "similarity"} and set(table["reference"]) == {"causal"}
    first = findings(res)[1]
    assert first.startswith("Share of the AI pool paid against true contribution, mean over months, against causal")


def test_rank_bands_account_for_the_money_moved(results: royaltysim.Results) -> None:
    bands = band_table(results)
    inc = results.creator_income()
    per_month = inc.assign(m=inc["income_run"] / inc["months"]).groupby(["scheme", "seed"])["m"].sum()
    for arm, g in bands.groupby("arm"):
        moved = (g["change_month"] * g["creators"]).sum()  # $ a month, summed over every band
        expected = (per_month.loc[arm] - per_month.loc[results.reference_arm]).mean()
        assert moved == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert (g["low"] <= g["change_month"] + 1e-12).all() and (g["change_month"] <= g["high"] + 1e-12).all()


def test_creator_table_names_every_creator(results: royaltysim.Results) -> None:
    table = creator_table(results)
    assert table is not None and len(table) == results.n_creators()
    assert list(table["pro-rata"]) == sorted(table["pro-rata"], reverse=True)
    inc = results.creator_income()
    c = table.iloc[0]["creator"]
    mine = inc[inc["creator"] == c].set_index(["scheme", "seed"])
    change = (mine.loc["causal", "income_run"] / mine.loc["causal", "months"]
              - mine.loc["pro-rata", "income_run"] / mine.loc["pro-rata", "months"]).mean()
    assert table.iloc[0]["causal change"] == pytest.approx(change)
    assert table["name"].notna().all()


def test_lorenz_curves_run_from_zero_to_one(results: royaltysim.Results) -> None:
    lz = lorenz_table(results)
    for _, g in lz.groupby("scheme"):
        assert g["income_share"].iloc[0] == 0 and g["income_share"].iloc[-1] == pytest.approx(1.0)
        assert np.all(np.diff(g["income_share"]) >= -1e-12)


def test_report_page(results: royaltysim.Results, tmp_path: Path) -> None:
    page = write_report(results, tmp_path).read_text()
    for section in ("The answer", "Findings", "Who gains, who loses", "Creator by creator", "All measures"):
        assert section in page
    for png in ("answer.png", "bands.png", "months.png", "payout_vs_contribution.png", "lorenz.png"):
        assert (tmp_path / png).is_file() and png in page
    assert "measure = " not in page and "income units" not in page
    assert "per stream in this run" in page
    assert MEASURES["gini_income_run"].label in page


def test_one_arm_one_seed_report(run_dir: Path, tmp_path: Path) -> None:
    res = royaltysim.run(small_scenario(run_dir, steps=2, schemes=[{"label": "pro-rata", "ai": {"name": "pro_rata"}}]))
    text = "\n".join(findings(res))
    assert text.startswith("1 arm over 2 months with 8 creators and 300 listeners, on seed 3.")
    assert "no interval" in text and not RANKING.search(text)
    page = write_report(res, tmp_path).read_text()
    assert "One arm only: nothing to compare" in page and (tmp_path / "lorenz.png").is_file()
    assert not (tmp_path / "answer.png").exists()
