"""An arm's rules over time (``schedule``) and its AI licence's money terms (``ai_pool``, GEMA-style):
validation with key paths, the month a switch takes effect, the pool paid in, and the report's marks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import royaltysim
from royaltysim.config import Arm, ScenarioError, SchemeSpec, validate_scenario
from royaltysim.model import RoyaltyModel
from royaltysim.report import arm_links, write_report

from .conftest import small_scenario

SWITCH = [{"from_month": 3, "human": {"name": "user_centric"}}]


def _issues(run_dir: Path, **overrides: object) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioError) as err:
        validate_scenario(small_scenario(run_dir, **overrides))
    return err.value.issues


def test_rules_at_follows_the_phases_and_keeps_a_pool_a_phase_leaves_out() -> None:
    arm = Arm(label="a", human=SchemeSpec(name="pro_rata"), ai=SchemeSpec(name="causal"), schedule=[
        {"from_month": 3, "human": {"name": "user_centric"}},
        {"from_month": 5, "ai": {"name": "fixed_fee"}},
    ])  # fmt: skip
    names = [tuple(s.name for s in arm.rules_at(m)) for m in range(1, 7)]
    assert names == [("pro_rata", "causal")] * 2 + [("user_centric", "causal")] * 2 + [("user_centric", "fixed_fee")] * 2


def test_a_bad_schedule_is_refused_with_the_key_of_each_problem(run_dir: Path) -> None:
    arms = [
        {"label": "unordered", "schedule": [{"from_month": 5, "ai": {"name": "causal"}},
                                            {"from_month": 3, "ai": {"name": "fixed_fee"}}]},
        {"label": "empty phase", "schedule": [{"from_month": 2}]},
        {"label": "month one", "schedule": [{"from_month": 1, "human": {"name": "user_centric"}}]},
        {"label": "unknown", "schedule": [{"from_month": 2, "human": {"name": "pro_ratta"}}]},
        {"label": "AI rule for humans", "schedule": [{"from_month": 2, "human": {"name": "causal"}}]},
        {"label": "bad param", "schedule": [{"from_month": 2, "ai": {"name": "causal", "params": {"negative": "x"}}}]},
    ]  # fmt: skip
    issues = dict(_issues(run_dir, schemes=arms))
    assert "must increase strictly" in issues["schemes[0].schedule"]
    assert "give human:, ai: or both" in issues["schemes[1].schedule[0]"]
    assert "greater than or equal to 2" in issues["schemes[2].schedule[0].from_month"]
    assert "unknown scheme 'pro_ratta'" in issues["schemes[3].schedule[0].human.name"]
    assert "is a rule for the AI pool" in issues["schemes[4].schedule[0].human.name"]
    assert "choose one of" in issues["schemes[5].schedule[0].ai.params.negative"]


def test_bad_ai_pool_terms_are_refused_with_their_keys(run_dir: Path) -> None:
    arms = [{"label": "x", "ai_pool": {"rate": 1.5, "income": "profit", "minimum_per_play": -1, "cap": 2}}]
    issues = dict(_issues(run_dir, schemes=arms))
    assert set(issues) >= {"schemes[0].ai_pool.rate", "schemes[0].ai_pool.income",
                           "schemes[0].ai_pool.minimum_per_play", "schemes[0].ai_pool.cap"}  # fmt: skip


def test_a_switch_changes_the_pay_from_its_month_and_not_before(run_dir: Path) -> None:
    raw = small_scenario(run_dir, steps=4, schemes=[
        {"label": "pro-rata", "ai": {"name": "causal"}},
        {"label": "switch", "ai": {"name": "causal"}, "schedule": SWITCH},
    ])  # fmt: skip
    results = royaltysim.run(validate_scenario(raw))
    m = results.model.set_index(["scheme", "step"])
    assert m.loc["switch", "human_scheme"].tolist() == ["pro_rata", "pro_rata", "user_centric", "user_centric"]
    assert m.loc["pro-rata", "human_scheme"].tolist() == ["pro_rata"] * 4
    c = results.creators.set_index(["scheme", "step", "creator"])["human_pay"]
    before = [np.allclose(c.loc["switch", s].to_numpy(), c.loc["pro-rata", s].to_numpy()) for s in (1, 2, 3)]
    assert before == [True, True, False]  # common random numbers: identical until the switch month


def test_ai_pool_terms_pay_the_larger_of_the_share_and_the_minimum(run_dir: Path) -> None:
    raw = small_scenario(run_dir, schemes=[
        {"label": "default", "ai": {"name": "causal"}},
        {"label": "gema", "ai": {"name": "causal"}, "ai_pool": {"rate": 0.3, "minimum_per_play": 0.002}},
    ], platform={"ai_pool_rate": 0.3, "ai_cost_per_stream": 0.001})  # fmt: skip
    scenario = validate_scenario(raw)
    revenue = np.array([1.0, 1.0, 0.2, 0.0])
    streams = np.array([100.0, 1000.0, 0.0, 10.0])
    default = RoyaltyModel(scenario, "default").platform.ai_user_pool(revenue, streams)
    np.testing.assert_allclose(default, 0.3 * revenue)
    gema = RoyaltyModel(scenario, "gema").platform.ai_user_pool(revenue, streams)
    # net income: 0.9, 0 (cost above revenue), 0.2, 0; minimum: 0.2, 2.0, 0, 0.02
    np.testing.assert_allclose(gema, [0.27, 2.0, 0.06, 0.02])


def test_the_report_names_each_phase_and_the_terms_and_marks_the_switch(run_dir: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.axes

    raw = small_scenario(run_dir, steps=4, schemes=[
        {"label": "pro-rata", "ai": {"name": "causal"}},
        {"label": "switch", "ai": {"name": "causal"}, "schedule": SWITCH, "ai_pool": {"minimum_per_play": 0.001}},
    ])  # fmt: skip
    results = royaltysim.run(validate_scenario(raw))
    marks: list[float] = []
    original = matplotlib.axes.Axes.axvline
    monkeypatch.setattr(matplotlib.axes.Axes, "axvline", lambda ax, x=0, *a, **k: marks.append(x) or original(ax, x, *a, **k))
    write_report(results, tmp_path / "report")
    assert marks.count(3) == 3  # one mark in each panel of the month-by-month figure
    pools = {p["pool"]: p["params"] for p in arm_links(results, tmp_path)[1]["pools"]}
    assert "human pool from month 3" in pools
    assert pools["AI pool paid in"] == "0.3 of net AI income, at least $0.001 per AI stream"
