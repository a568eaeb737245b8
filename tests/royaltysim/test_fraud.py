"""Fraud and flooding: the stream farm is sized from its settings, its money is accounted for, and each scheme
meets it by its own rule (pro-rata pays it by streams, user-centric only its own fees, artist-centric caps it,
causal AI pay never reaches it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import royaltysim
from royaltysim.config import ScenarioError, validate_scenario
from royaltysim.fraud import FraudConfig, FraudFarm
from royaltysim.model import RoyaltyModel

from .conftest import small_scenario

ARMS = [
    {"label": "pro-rata", "human": {"name": "pro_rata"}, "ai": {"name": "pro_rata"}},
    {"label": "user-centric", "human": {"name": "user_centric"}, "ai": {"name": "causal"}},
    {"label": "artist-centric", "human": {"name": "artist_centric"}, "ai": {"name": "training_share"}},
    {"label": "minimum", "human": {"name": "threshold", "params": {"min_streams": 1000}},
     "ai": {"name": "similarity", "params": {"top_k": 1000}}},
]
FRAUD = {"fake_stream_share": 0.05, "detection_rate": 0.4, "uploads": 20, "uploads_per_month": 15,
         "streams_per_bot": 3000}


@pytest.fixture(scope="module")
def fraud_results(run_dir: Path) -> royaltysim.Results:
    raw = small_scenario(run_dir, steps=3, schemes=ARMS, fraud=FRAUD, demand={"enabled": True})
    return royaltysim.run(validate_scenario(raw))


def test_the_farm_fakes_its_share_of_all_streams_and_loses_the_detected_part() -> None:
    cfg = FraudConfig(fake_stream_share=0.2, detection_rate=0.25, streams_per_bot=1000, uploads=7, uploads_per_month=3)
    farm = FraudFarm(cfg, genuine_volume=40_000.0, bot_fee=4.0)
    # 0.2 / 0.8 * 40,000 = 10,000 faked streams a month, 10 bots of 1,000
    assert farm.n_bots == 10 and farm.volume.sum() == 10_000
    month = farm.month(3)
    assert month.uploads == 7 + 2 * 3
    assert month.faked == 10_000 and month.demonetised == 2_500
    assert month.streams.sum() == 7_500
    per_upload = np.asarray(month.streams.sum(axis=0)).ravel()
    assert per_upload.max() - per_upload.min() <= farm.n_bots  # spread as evenly as integers allow
    assert month.fees.sum() == pytest.approx(40.0)


def test_a_farm_needs_a_fake_share() -> None:
    with pytest.raises(ValueError, match="fake_stream_share > 0"):
        FraudFarm(FraudConfig(), 1000.0, 1.0)


def test_fraud_money_is_accounted_for(fraud_results: royaltysim.Results) -> None:
    m = fraud_results.model
    np.testing.assert_allclose(m["paid"] + m["fraud_human_paid"] + m["fraud_ai_paid"] + m["unallocated"],
                               m["human_pool"] + m["ai_pool"], rtol=1e-9)
    np.testing.assert_allclose(m["platform_profit"],
                               m["revenue"] - m["paid"] - m["fraud_human_paid"] - m["fraud_ai_paid"] - m["ai_cost"],
                               rtol=1e-9)
    np.testing.assert_allclose(m["fraud_profit"], m["fraud_human_paid"] + m["fraud_ai_paid"] - m["bot_fees"])
    assert (m["fraud_uploads"] == 20 + 15 * (m["step"] - 1)).all()
    np.testing.assert_allclose(m["demonetised_streams"], 0.4 * m["fraud_streams"], rtol=1e-3)
    per_arm = m.groupby("scheme")["fraud_streams"].nunique()
    assert (per_arm == 1).all()  # the same farm in every arm and month


def test_each_scheme_meets_the_farm_by_its_own_rule(fraud_results: royaltysim.Results) -> None:
    m = fraud_results.model.set_index(["scheme", "step"])
    kept = m["fraud_streams"] - m["demonetised_streams"]
    pro = m.loc["pro-rata"]
    # pro-rata pays the uploads their share of the pool's streams, from both pools (AI pro-rata is by human streams)
    assert (pro["fraud_human_share"] > 0.01).all()
    np.testing.assert_allclose(pro["fraud_human_share"], pro["fraud_ai_share"], rtol=1e-9)
    # user-centric gives the uploads only what the bots themselves paid into the pool
    uc = m.loc["user-centric"]
    bots_in_pool = (1 - fraud_results.scenario.platform.platform_cut) * uc["bot_fees"]
    np.testing.assert_allclose(uc["fraud_human_paid"], bots_in_pool, rtol=1e-9)
    assert (uc["fraud_human_share"] < pro["fraud_human_share"]).all()
    # artist-centric counts a bot's thousands of streams as 1,000
    assert (m.loc["artist-centric", "fraud_human_share"] < pro["fraud_human_share"]).all()
    # causal and training-share AI pools never pay an upload the AI was not trained on
    assert (m.loc["user-centric", "fraud_ai_paid"] == 0).all() and (m.loc["artist-centric", "fraud_ai_paid"] == 0).all()
    # a similarity AI pool that splits each output over every similar catalogue pays the uploads too (each is as
    # similar as a typical catalogue; a top-1 match would pass them over)
    assert (m.loc["minimum", "fraud_ai_share"] > 0).all()
    assert (kept > 0).all()


def test_fraud_draws_no_random_numbers(run_dir: Path) -> None:
    """Listening and creators' draws are the same with and without the farm (month 1, before pay differs)."""
    clean = validate_scenario(small_scenario(run_dir, steps=1))
    farmed = validate_scenario(small_scenario(run_dir, steps=1, fraud=FRAUD))
    a, b = RoyaltyModel(clean, seed=5), RoyaltyModel(farmed, seed=5)
    a.step(), b.step()
    ca, cb = pd.DataFrame(a.creator_records), pd.DataFrame(b.creator_records)
    np.testing.assert_array_equal(ca["streams"], cb["streams"])
    assert a.records[0]["ai_stream_share"] == b.records[0]["ai_stream_share"]
    assert b.records[0]["revenue"] == pytest.approx(a.records[0]["revenue"] + b.records[0]["bot_fees"])


def test_full_detection_leaves_the_farm_nothing_from_pro_rata(run_dir: Path) -> None:
    raw = small_scenario(run_dir, steps=2, schemes=ARMS[:1], fraud={**FRAUD, "detection_rate": 1.0})
    m = royaltysim.run(validate_scenario(raw)).model
    assert (m["fraud_human_paid"] == 0).all() and (m["fraud_ai_paid"] == 0).all()
    assert (m["bot_fees"] > 0).all() and (m["fraud_profit"] < 0).all()


def test_bad_fraud_settings_are_refused_with_their_key(run_dir: Path) -> None:
    raw = small_scenario(run_dir, fraud={"fake_stream_share": 0.7, "uploads": 0})
    with pytest.raises(ScenarioError) as err:
        validate_scenario(raw)
    text = str(err.value)
    assert "fraud.fake_stream_share" in text and "fraud.uploads" in text


def test_fraud_measures_reach_the_tables_and_the_report(fraud_results: royaltysim.Results, tmp_path: Path) -> None:
    found = fraud_results.measures()
    for name in ("fraud_share_human_pool_run", "fraud_share_ai_pool_run", "fraud_profit_month_mean"):
        assert found[name].notna().all(), name
    assert (found.set_index("scheme").loc["pro-rata", "fraud_share_human_pool_run"] > 0).all()
    page = fraud_results.report(tmp_path / "report").read_text()
    assert "share of the human-streams pool paid to fraud uploads" in page
    assert "7.9 Fraud and flooding" in page
