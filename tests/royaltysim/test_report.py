"""The report: every number in the findings comes from the run's own tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import royaltysim
from royaltysim import metrics
from royaltysim.report import findings, lorenz_table, summary_table

from .conftest import small_scenario


@pytest.fixture(scope="module")
def results(run_dir: Path) -> royaltysim.Results:
    return royaltysim.run(small_scenario(run_dir, steps=3))


def test_summary_recomputes_from_creator_rows(results: royaltysim.Results) -> None:
    table = summary_table(results)
    assert list(table.index) == results.labels
    c = results.creators[results.creators["scheme"] == "causal"]
    income = c.groupby("creator")["income"].sum().to_numpy()
    assert table.loc["causal", "gini"] == pytest.approx(metrics.gini(income))
    assert table.loc["causal", "top 10% share"] == pytest.approx(metrics.top_share(income, 0.10))


def test_findings_quote_the_summary(results: royaltysim.Results) -> None:
    table = summary_table(results)
    text = "\n".join(findings(results, table))
    top = table.loc["causal", "top 10% share"]
    base = table.loc["pro-rata", "top 10% share"]
    assert f"causal pays the top 10% of creators {100 * top:.0f}% of all income vs {100 * base:.0f}% under pro-rata" in text
    assert results.reference in text


def test_lorenz_curves_run_from_zero_to_one(results: royaltysim.Results) -> None:
    lz = lorenz_table(results)
    for _, g in lz.groupby("scheme"):
        assert g["income_share"].iloc[0] == 0 and g["income_share"].iloc[-1] == pytest.approx(1.0)
        assert np.all(np.diff(g["income_share"]) >= -1e-12)
