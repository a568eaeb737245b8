"""`source.causal_method: best`: the economy pays on the method the run's evaluation found most faithful."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from attribution.best_method import BestMethodError, write_best_method
from attribution.table import AttributionTable, tokens_fingerprint
from royaltysim.config import ScenarioError, validate_scenario
from royaltysim.population import corpus_population

from .conftest import small_scenario


def _evaluated_copy(run_dir, tmp_path, fingerprint: str | None = None):
    """A copy of the fixture run with token files for its outputs and a best-method record naming a method that is
    not in its table (a catalogue-level one), with scores = 10 * creator index + output index."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    table = AttributionTable.load(run)
    (run / "outputs").mkdir(exist_ok=True)
    tokens = [np.arange(3) + i for i in range(len(table.output_ids))]
    for o, t in zip(table.output_ids, tokens):
        np.save(run / "outputs" / f"{o}.npy", t)
    names, outs = list(table.creators), list(table.output_ids)
    scores = pd.DataFrame({"output_id": np.repeat(outs, len(names)), "creator": np.tile(names, len(outs)),
                           "score": [10.0 * c + o for o in range(len(outs)) for c in range(len(names))]})
    record = {"method": "group_influence", "family": "tda", "snr": 0.91, "snr_low": 0.6, "snr_high": 1.2,
              "truth": "loco", "truth_label": "leave-one-creator-out", "creators": 8, "catalogue_size_snr": 0.57,
              "outputs_fingerprint": fingerprint or tokens_fingerprint(tokens)}
    write_best_method(run, record, scores)
    return run, table


def test_best_pays_on_what_best_method_yaml_names(run_dir, tmp_path):
    from royaltysim.sweep import source_fingerprint

    run, table = _evaluated_copy(run_dir, tmp_path)
    before = source_fingerprint({"source": {"run": str(run)}})
    (run / "evaluation" / "best_method.yaml").write_text((run / "evaluation" / "best_method.yaml").read_text() + "# again\n")
    assert source_fingerprint({"source": {"run": str(run)}}) != before  # a re-evaluated run: a sweep reruns
    table = AttributionTable.load(run)
    pop = corpus_population(table, "best")
    expected = 10.0 * np.arange(len(table.creators))[None, :] + np.arange(len(table.output_ids))[:, None]
    np.testing.assert_array_equal(pop.attribution, expected)
    assert pop.causal_label.startswith("best: group_influence (creator-level SNR 0.91 [0.60, 1.20]")
    # a named method is still summed from the table, whatever the evaluation chose
    np.testing.assert_allclose(corpus_population(table, "trak").attribution,
                               table.to_creators("trak", negative="keep").to_numpy())
    # the economy's run names the method and its SNR
    from royaltysim.runner import run as run_scenario

    scenario = validate_scenario(small_scenario(run, steps=1), source="test")
    assert scenario.source.causal_method == "best"  # the default
    results = run_scenario(scenario, seeds=1)
    assert "group_influence" in results.causal_method and "SNR 0.91" in results.causal_method
    from royaltysim.report import write_report

    page = write_report(results, tmp_path / "report").read_text()
    assert "causal method best: group_influence (creator-level SNR 0.91" in page


def test_best_without_an_evaluation_falls_back_to_trak_and_says_so(run_dir):
    table = AttributionTable.load(run_dir)
    pop = corpus_population(table, "best")
    np.testing.assert_allclose(pop.attribution, table.to_creators("trak", negative="keep").to_numpy())
    assert pop.causal_label.startswith("trak (fallback for `best`") and "attribution evaluate" in pop.causal_label
    validate_scenario(small_scenario(run_dir), source="test")  # a run without evaluation is valid


def test_a_stale_or_damaged_evaluation_is_refused_with_the_fix(run_dir, tmp_path):
    run, _ = _evaluated_copy(run_dir, tmp_path, fingerprint="0" * 64)  # measured on other outputs
    with pytest.raises(ScenarioError, match="source.causal_method: .*stale.*attribution evaluate"):
        validate_scenario(small_scenario(run), source="test")
    with pytest.raises(BestMethodError, match="stale"):
        corpus_population(AttributionTable.load(run), "best")
    validate_scenario(small_scenario(run, source={"kind": "corpus", "run": str(run), "causal_method": "trak"}),
                      source="test")  # naming a method does not need the evaluation
    (run / "evaluation" / "best_scores.parquet").unlink()
    with pytest.raises(ScenarioError, match="best_scores.parquet is missing"):
        validate_scenario(small_scenario(run), source="test")
