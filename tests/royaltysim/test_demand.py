"""The demand side: listeners' value in money, churn and joining in the right direction, welfare as the sum of its
parts, and an economy without it left as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import royaltysim
from royaltysim.config import ScenarioError, validate_scenario
from royaltysim.demand import Demand, DemandConfig, _calibrate, _sigmoid, listener_utility
from royaltysim.model import RoyaltyModel
from royaltysim.reference import AgentRoyaltyModel

from .conftest import small_scenario


def _demand(n: int = 20_000, **cfg: object) -> Demand:
    fee = np.where(np.arange(n) % 2 == 0, 4.85, 0.40)
    config = DemandConfig(enabled=True, **cfg)
    return Demand(config, fee, fee == 4.85, np.arange(n) % 4, seed=1)


def _churn(demand: Demand, utility: np.ndarray, ai_share: np.ndarray) -> float:
    """Share of subscribers leaving after a month with these utilities, from a fresh copy of the generator."""
    state = demand.rng.bit_generator.state
    subscribed = demand.subscribed.copy()
    month = demand.decide(demand.observe(utility, ai_share, ai_share))
    demand.rng.bit_generator.state, demand.subscribed = state, subscribed
    return month.churns / month.subscribers


def test_churn_is_calibrated_and_joins_balance_it_at_the_reference() -> None:
    d = _demand()
    n = d.price.size
    month = d.decide(d.observe(np.zeros(n), np.zeros(n), np.zeros(n)))
    assert month.subscribers == pytest.approx(0.8 * n, rel=0.02)
    assert month.churns / month.subscribers == pytest.approx(0.03, rel=0.12)
    assert month.joins == pytest.approx(month.churns, rel=0.2)
    # the intercepts solve their equations exactly on the reference markups
    x = np.log(np.where(d.price == 4.85, d.wtp / 4.85, d.wtp / 0.40)) / 0.5
    alpha, beta = _calibrate(x, ~np.zeros(n, bool) & (np.arange(n) < n // 2), 0.05)
    assert _sigmoid(alpha - x[: n // 2]).mean() == pytest.approx(0.05)
    assert _sigmoid(beta + x[n // 2:]).sum() == pytest.approx(_sigmoid(alpha - x[: n // 2]).sum())


def test_churn_responds_to_quality_ai_share_and_price() -> None:
    d = _demand()
    n = d.price.size
    zero = np.zeros(n)
    d.observe(zero, zero, zero)  # month 1 sets every listener's reference
    base = _churn(d, zero, zero)
    assert _churn(d, zero + 1.0, zero) < base  # better music
    assert _churn(d, zero - 1.0, zero) > base  # worse music
    assert _churn(d, zero, zero + 0.3) > base  # more AI, with ai_weight > 0
    dear = _demand()
    dear.price = np.where(dear.price == 4.85, 6.85, dear.price)  # premium up by $2, the reference price unchanged
    dear.observe(zero, zero, zero)
    assert _churn(dear, zero, zero) > base


def test_a_listener_values_the_service_at_their_wtp_in_the_first_month() -> None:
    d = _demand(n=100)
    month = d.observe(np.linspace(-3, 3, 100), np.zeros(100), np.zeros(100))
    np.testing.assert_allclose(d.value, d.wtp)
    assert month.consumer_surplus == pytest.approx((d.wtp - d.price)[d.subscribed].sum())


def test_listener_utility_is_what_consumer_welfare_averages(run_dir: Path) -> None:
    model = RoyaltyModel(validate_scenario(small_scenario(run_dir, steps=1)))
    market = model.roster()
    listening = model.consumers.listen(*model._choices(market), market.active, model.ai_quality, model.rng)
    styles = model._styles(market.imitation)
    quality = market.mean_quality / model._quality_ref
    w = model.world
    welfare = model.consumers.welfare(listening, styles, quality, w.output_style, model.ai_quality)
    log_q = np.log(np.maximum(np.append(quality, np.full(w.output_style.shape[0], model.ai_quality)), 1e-9))
    utility, streams = listener_utility(listening.picks, listening.counts, w.consumers.taste,
                                        np.vstack([styles, w.output_style]), log_q)
    assert np.nanmean(utility) == pytest.approx(welfare, rel=1e-9)
    np.testing.assert_array_equal(streams, listening.human_streams + listening.ai_streams)


def test_who_is_not_subscribed_plays_and_pays_nothing(run_dir: Path) -> None:
    model = RoyaltyModel(validate_scenario(small_scenario(run_dir, steps=1, demand={"enabled": True})))
    out = ~model.consumers.subscribed
    assert out.any() and not out.all()
    market = model.roster()
    listening = model.consumers.listen(*model._choices(market), market.active, model.ai_quality, model.rng)
    assert listening.human_streams[out].sum() == 0 and listening.ai_streams[out].sum() == 0
    assert (model.consumers.charged[out] == 0).all()
    assert (listening.human_streams[~out] + listening.ai_streams[~out] > 0).all()


@pytest.fixture(scope="module")
def demand_results(run_dir: Path) -> royaltysim.Results:
    raw = small_scenario(run_dir, steps=4, seeds=2, demand={"enabled": True})
    return royaltysim.run(validate_scenario(raw))


def test_welfare_is_the_sum_of_its_parts(demand_results: royaltysim.Results) -> None:
    m = demand_results.model
    np.testing.assert_allclose(m["total_welfare"], m["consumer_surplus"] + m["platform_profit"] + m["creator_surplus"])
    np.testing.assert_allclose(m["platform_profit"], m["revenue"] - m["paid"] - m["ai_cost"], rtol=1e-9)
    assert (m["consumer_value"] > m["consumer_surplus"]).all()
    found = demand_results.measures()
    np.testing.assert_allclose(found["total_welfare_month_mean"], found["consumer_surplus_month_mean"]
                               + found["platform_profit_month_mean"] + found["creator_surplus_month_mean"])


def test_subscribers_move_and_revenue_follows_them(demand_results: royaltysim.Results) -> None:
    m = demand_results.model.sort_values(["scheme", "seed", "step"])
    assert (m["joins"] + m["churns"] > 0).all()
    for _, g in m.groupby(["scheme", "seed"]):
        # next month's subscribers are this month's, less who left, plus who joined
        np.testing.assert_array_equal(g["subscribers"].to_numpy()[1:],
                                      (g["subscribers"] - g["churns"] + g["joins"]).to_numpy()[:-1])
    assert m.groupby(["scheme", "seed"])["revenue"].nunique().gt(1).all()
    # the first month is the same in every arm of a seed (common random numbers)
    first = m[m["step"] == 1].groupby("seed")[["subscribers", "churns", "joins", "revenue"]].nunique()
    assert (first == 1).all().all()


def test_without_demand_everyone_stays_and_revenue_is_fixed(run_dir: Path) -> None:
    m = royaltysim.run(validate_scenario(small_scenario(run_dir, steps=3))).model
    assert (m["subscribers"] == 300).all() and (m["joins"] == 0).all() and (m["churns"] == 0).all()
    assert m["revenue"].nunique() == 1


def test_demand_settings_are_checked(run_dir: Path) -> None:
    with pytest.raises(ScenarioError, match="demand.subscribed_share"):
        validate_scenario(small_scenario(run_dir, demand={"enabled": True, "subscribed_share": 0.99,
                                                          "churn_rate": 0.5}))
    with pytest.raises(ScenarioError, match="demand.churn_rate"):
        validate_scenario(small_scenario(run_dir, demand={"churn_rate": 1.5}))


def test_the_per_agent_reference_refuses_demand(run_dir: Path) -> None:
    with pytest.raises(ValueError, match="demand.enabled"):
        AgentRoyaltyModel(validate_scenario(small_scenario(run_dir, demand={"enabled": True})))
