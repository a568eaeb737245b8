"""Scenario discovery with PRIM: boxes recovered from a folder whose answer is known, and the command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from royaltysim.cli import app
from royaltysim.discovery import Case, DiscoveryError, discover, paired_points, parse_case


def _folder(tmp_path: Path, region, n: int = 300) -> Path:
    """measures.parquet as a sweep writes it: arm "causal" has the lower Gini than "share" exactly in ``region``."""
    rng = np.random.default_rng(1)
    x = pd.DataFrame({"platform.ai_pool_rate": rng.uniform(0, 1, n), "source.attribution_snr": rng.uniform(0, 1, n),
                      "behaviour.exit_rate": rng.uniform(0, 1, n)})
    inside = region(x).to_numpy()
    rows = []
    for point in range(n):
        for seed in (0, 1):
            base = rng.uniform(0.4, 0.6)  # common to both arms within a seed: it cancels in the paired difference
            gap = -0.05 if inside[point] else 0.05
            for scheme, gini in (("causal", base + gap), ("share", base)):
                rows.append({"run_id": f"r{point}-{seed}", "point": point, **x.iloc[point].to_dict(), "scheme": scheme,
                             "seed": seed, "gini_income_run": gini, "platform_margin_month_mean": 1.0})
    tmp_path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(tmp_path / "measures.parquet", index=False)
    return tmp_path


def test_prim_recovers_the_box_where_the_arm_wins(tmp_path):
    folder = _folder(tmp_path, lambda x: (x["platform.ai_pool_rate"] > 0.6) & (x["source.attribution_snr"] < 0.4))
    x, y = paired_points(folder, "causal", "share", ["gini_income_run"])
    assert len(x) == len(y) == 300 and np.allclose(np.abs(y["gini_income_run"]), 0.05)
    (box,) = discover(folder, "causal", "share", {"creators": [Case("gini_income_run", "lower")]})
    limits = box.limits.set_index("parameter")
    assert set(limits.index) == {"platform.ai_pool_rate", "source.attribution_snr"}  # exit_rate plays no part
    assert limits.loc["platform.ai_pool_rate", "low"] == pytest.approx(0.6, abs=0.05)
    assert limits.loc["source.attribution_snr", "high"] == pytest.approx(0.4, abs=0.05)
    assert box.density >= 0.8 and box.coverage >= 0.8 and not box.complement
    # one-sided limits read as such (the other end is the points' own range)
    assert "platform.ai_pool_rate >= 0.6" in box.sentence() and "source.attribution_snr <= 0.39" in box.sentence()


def test_a_case_that_holds_almost_everywhere_is_told_by_where_it_fails(tmp_path):
    folder = _folder(tmp_path, lambda x: ~((x["behaviour.exit_rate"] > 0.8) & (x["platform.ai_pool_rate"] > 0.5)))
    creators, platform = discover(folder, "causal", "share", {
        "creators": [Case("gini_income_run", "lower")], "platform": [Case("platform_margin_month_mean", "higher")]})
    assert creators.complement and set(creators.limits["parameter"]) == {"behaviour.exit_rate", "platform.ai_pool_rate"}
    assert "It does not where" in creators.sentence()
    assert platform.n_hold == 0 and platform.limits.empty and "No region to find" in platform.sentence()


def test_bad_requests_are_refused_with_what_there_is(tmp_path):
    folder = _folder(tmp_path, lambda x: x["platform.ai_pool_rate"] > 0.5, n=20)
    with pytest.raises(DiscoveryError, match="no arm 'nobody'.*arms: causal, share"):
        paired_points(folder, "nobody", "share", ["gini_income_run"])
    with pytest.raises(DiscoveryError, match="no measure 'gini'.*measures: gini_income_run"):
        paired_points(folder, "causal", "share", ["gini"])
    with pytest.raises(DiscoveryError, match="MEASURE:lower or MEASURE:higher"):
        parse_case("gini_income_run>0")
    with pytest.raises(DiscoveryError, match="no measures.parquet"):
        paired_points(tmp_path / "empty", "causal", "share", ["gini_income_run"])


def test_the_command_prints_and_writes_the_boxes(tmp_path):
    folder = _folder(tmp_path / "f", lambda x: (x["platform.ai_pool_rate"] > 0.6) & (x["source.attribution_snr"] < 0.4))
    res = CliRunner().invoke(app, ["discover", str(folder), "--arm", "causal", "--versus", "share",
                                   "--case", "creators=gini_income_run:lower", "--out", str(tmp_path / "boxes.md")])
    assert res.exit_code == 0, res.output
    assert "**creators**: causal beats share" in res.output and "| `platform.ai_pool_rate` |" in res.output
    assert (tmp_path / "boxes.md").read_text().startswith("# Scenario discovery (PRIM)")
    res = CliRunner().invoke(app, ["discover", str(folder), "--arm", "causal", "--versus", "share", "--case", "oops"])
    assert res.exit_code == 2 and "NAME=MEASURE:lower" in res.output
