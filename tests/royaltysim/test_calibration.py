"""Calibration: fact functions on hand-computed inputs, the published facts as data, and the pin.

The pin runs ``scenarios/calibration.yaml`` as shipped (20,000 fitted creators, 40,000 listeners,
12 months) through ``royaltysim calibrate`` on the fixture attribution run (or the shipped run when
it is built), and holds every pinned fact inside its published tolerance band.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from royaltysim.calibration import (
    LUMINATE_2024_TIERS,
    PUBLISHED_FACTS,
    heavy_light_popularity_ratio,
    mean_from_tiers,
    pareto_slope,
    payout_per_stream,
    platform_cut,
    quantile_slope,
    share_at_most,
    share_producing,
    streams_per_listener,
    tier_shares,
    top_stream_share,
)
from royaltysim.cli import app
from royaltysim.config import load_scenario

from .conftest import write_yaml

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "calibration.yaml"
DEFAULT_RUN = REPO / "runs" / "default"


# --------------------------------------------------------------------------- fact functions


def test_top_stream_share_hand_computed() -> None:
    streams = [10, 50, 10, 30]
    assert top_stream_share(streams, 0.25) == pytest.approx(0.5)
    assert top_stream_share(streams, 0.5) == pytest.approx(0.8)
    assert top_stream_share([0, 0, 0, 0], 0.25) == pytest.approx(0.25)  # nobody streamed: equality


def test_share_producing_hand_computed() -> None:
    assert share_producing([5, 3, 2], 0.8) == pytest.approx(2 / 3)  # 5 + 3 is exactly 80%
    assert share_producing([5, 3, 2], 0.81) == pytest.approx(1.0)
    assert share_producing([10, 0, 0, 0], 0.98) == pytest.approx(0.25)
    assert share_producing([1, 1, 1, 1], 0.5) == pytest.approx(0.5)
    assert share_producing([0, 0], 0.9) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="share must be in"):
        share_producing([1, 2], 1.5)


def test_share_at_most_hand_computed() -> None:
    plays = [0, 0, 5, 1000, 1001]
    assert share_at_most(plays, 1000) == pytest.approx(0.8)
    assert share_at_most(plays, 0) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="non-negative"):
        share_at_most([-1, 2], 1)


def test_money_facts_hand_computed() -> None:
    assert platform_cut([10.0, 10.0], [7.0, 7.0]) == pytest.approx(0.3)
    assert payout_per_stream([1.5, 1.5], [400, 600]) == pytest.approx(0.003)
    assert streams_per_listener([300, 1200, 300, 300]) == pytest.approx(525.0)
    with pytest.raises(ValueError, match="revenue is zero"):
        platform_cut([0.0], [0.0])
    with pytest.raises(ValueError, match="no streams"):
        payout_per_stream([1.0], [0])


def test_heavy_light_popularity_ratio_hand_computed() -> None:
    # creator A: 30 of 40 streams (popularity 0.75), B: 10 (0.25)
    streams = sp.csr_matrix(np.array([[20.0, 0.0], [10.0, 10.0], [0.0, 0.0]]))
    heavy = np.array([False, True, True])  # the third listener played nothing and is left out
    # light: 0.75; heavy: (10 * 0.75 + 10 * 0.25) / 20 = 0.5
    assert heavy_light_popularity_ratio(streams, heavy) == pytest.approx(0.5 / 0.75)
    with pytest.raises(ValueError, match="one flag per listener"):
        heavy_light_popularity_ratio(streams, heavy[:2])
    with pytest.raises(ValueError, match="heavy and light"):
        heavy_light_popularity_ratio(streams, np.array([True, True, True]))


def test_pareto_slope_recovers_an_exact_pareto_tail() -> None:
    n, alpha = 1000, 0.8
    x = (n / np.arange(1, n + 1)) ** (1 / alpha)  # rank k has survival k / n = x ** -alpha exactly
    assert pareto_slope(x, 0.1) == pytest.approx(alpha)
    assert pareto_slope(np.concatenate([x, np.zeros(1000)]), 0.05) == pytest.approx(alpha)
    with pytest.raises(ValueError, match="distinct positive"):
        pareto_slope(np.ones(100), 0.1)


def test_quantile_slope_hand_computed() -> None:
    # 1000 values: 100 of them >= 1 and 10 of them >= 10 -> a factor 10 in income per factor 10 in share
    x = np.concatenate([np.full(890, 0.1), np.full(100, 1.0), np.full(10, 10.0)])
    assert quantile_slope(x, 0.05, 0.005) == pytest.approx(1.0)
    n, alpha = 100_000, 1.2
    pareto = (n / np.arange(1, n + 1)) ** (1 / alpha)
    assert quantile_slope(pareto, 0.01, 0.001) == pytest.approx(alpha, rel=0.01)
    with pytest.raises(ValueError, match="q_high < q_low"):
        quantile_slope(x, 0.001, 0.01)


def test_tier_shares_hand_computed() -> None:
    plays = [0, 5, 10, 11, 100, 101, 5000]
    shares = tier_shares(plays, [0, 10, 100, np.inf])  # (0, 10] with 0, (10, 100], (100, inf]
    np.testing.assert_allclose(shares, [3 / 7, 2 / 7, 2 / 7])
    assert shares.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="increasing"):
        tier_shares(plays, [10, 0])


def test_mean_from_tiers_hand_computed() -> None:
    # 0-10 uniform (mean 5), 11-100 log-uniform (mean 89 / ln(100 / 11)); one track each
    expected = (5.0 + 89.0 / math.log(100 / 11)) / 2
    assert mean_from_tiers(((0, 10, 1), (11, 100, 1))) == pytest.approx(expected)
    assert 20_000 < mean_from_tiers() < 40_000  # Luminate 2024: ~4.8T streams over ~200M tracks


# --------------------------------------------------------------------------- the published facts


def test_published_facts_are_consistent_data() -> None:
    keys = [f.key for f in PUBLISHED_FACTS]
    assert len(keys) == len(set(keys))
    for f in PUBLISHED_FACTS:
        assert f.low <= f.value <= f.high, f.key
        assert f.source and (f.year is None or 2018 <= f.year <= 2025), f.key
    by_key = {f.key: f for f in PUBLISHED_FACTS}
    assert by_key["income_slope_10k_100k"].value == pytest.approx(math.log10(71_200 / 12_500))
    # the Luminate 2024 tiers agree with the published "~86-87% of tracks have <= 1,000 plays"
    tracks = np.array([t[2] for t in LUMINATE_2024_TIERS])
    at_most_1000 = tracks[:3].sum() / tracks.sum()
    assert 0.86 <= at_most_1000 <= 0.87
    assert by_key["works_at_most_1000"].value == pytest.approx(at_most_1000, abs=0.005)


# --------------------------------------------------------------------------- the calibrated baseline


def _shipped_run_ready() -> bool:
    return all((DEFAULT_RUN / f).is_file() for f in ("attribution.parquet", "corpus.parquet", "outputs.parquet"))


def test_calibrated_baseline_reproduces_the_published_facts(run_dir: Path, tmp_path: Path) -> None:
    shipped = _shipped_run_ready()
    raw = load_scenario(SCENARIO, check_files=shipped).model_dump(mode="json")
    if not shipped:
        raw["source"]["run"] = str(run_dir)
    path = write_yaml(tmp_path / "calibration.yaml", raw)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["calibrate", str(path), "--out", str(out)])
    table = pd.read_parquet(out / "calibration.parquet")
    outside = table[table["pinned"] & ~table["within"]]
    assert outside.empty, outside[["fact", "published", "low", "high", "simulated"]].to_string()
    assert result.exit_code == 0, result.output
    for name in ("calibration.png", "tiers.parquet", "scenario.yaml"):
        assert (out / name).is_file(), name
    assert set(table["fact"]) == {f.key for f in PUBLISHED_FACTS}
    assert (table["creators"] == 20_000).all() and (table["months"] == 12).all()
    assert "pinned facts within tolerance" in result.output
    tiers = pd.read_parquet(out / "tiers.parquet")
    assert tiers["simulated_share"].sum() == pytest.approx(1.0)
