"""Shapley Royalty Share's sampling error: collected from the settlement, recorded monthly, stated in the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import royaltysim
from royaltysim.report import findings
from royaltysim.schemes import Settlement, pay
from royaltysim.shapley import sampling_errors, sampling_findings

from .conftest import small_scenario

ATTR = np.array([[2.0, -1.0, 1.0, 0.0], [0.0, 3.0, 1.0, 0.5]])


def _month() -> Settlement:
    return Settlement.build(100.0, ai_plays=[1.0, 3.0], attribution=ATTR)


def test_sampling_errors_collect_each_sampled_rule_inside_the_block_only() -> None:
    s = _month()
    pay("shapley_royalty_share", s, utility="attribution")  # outside a block: nothing to record, no error
    with sampling_errors() as found:
        pay("shapley_royalty_share", s, utility="attribution", permutations=8)
        pay("shapley_royalty_share", s, utility="attribution", permutations=1)
        pay("causal", s)  # not sampled: records nothing
        mix = [{"weight": 0.5, "scheme": {"name": "shapley_royalty_share", "params": {"utility": "attribution"}}},
               {"weight": 0.5, "scheme": {"name": "causal"}}]
        pay("mix", s, parts=mix)  # a nested rule is recorded too
    # an additive game: every order gives the same contributions (to float rounding)
    assert found[0].share_se < 1e-12 and found[0].permutations == 8
    assert np.isnan(found[1].share_se) and found[1].permutations == 1  # one order: no standard error
    assert found[2].share_se < 1e-12 and found[2].permutations == 32
    assert len(found) == 3
    with sampling_errors() as again:
        pass
    assert again == []


def _table(arm: str, se: list[float], perms: int) -> pd.DataFrame:
    return pd.DataFrame({"scheme": arm, "step": range(1, len(se) + 1), "ai_shapley_se": se,
                         "ai_shapley_permutations": perms})


def test_sampling_findings_state_the_error_per_arm_that_samples() -> None:
    model = pd.concat([_table("causal", [np.nan, np.nan], 0), _table("SRS exact", [0.0, 0.0], 32),
                       _table("SRS sampled", [0.004, 0.012], 16), _table("SRS one order", [np.nan], 1)])
    lines = sampling_findings(model)
    assert len(lines) == 3 and not any(line.startswith("causal") for line in lines)
    assert lines[0].startswith("SRS exact:") and "standard error 0 (to float rounding) in every month" in lines[0]
    assert "from 16 random orders" in lines[1] and "was 1.2% (mean over months 0.8%)" in lines[1]
    assert "no standard error (raise permutations)" in lines[2]
    assert sampling_findings(model.drop(columns=["ai_shapley_se", "ai_shapley_permutations"])) == []


def test_the_run_records_the_error_and_the_report_states_it(run_dir: Path) -> None:
    raw = small_scenario(run_dir, steps=2)
    raw["schemes"] = [{"label": "causal", "ai": {"name": "causal"}},
                      {"label": "SRS", "ai": {"name": "shapley_royalty_share", "params": {"permutations": 4}}}]
    results = royaltysim.run(raw)
    m = results.model.set_index("scheme")
    assert (m.loc["SRS", "ai_shapley_se"] < 1e-12).all() and (m.loc["SRS", "ai_shapley_permutations"] == 4).all()
    assert m.loc["causal", "ai_shapley_se"].isna().all() and (m.loc["causal", "ai_shapley_permutations"] == 0).all()
    said = [line for line in findings(results) if "random orders" in line]
    assert len(said) == 1 and said[0].startswith("SRS: Shapley Royalty Share estimated each month from 4 random")
