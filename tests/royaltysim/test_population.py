"""Creator populations: the corpus population of a run, and a fitted one that matches its statistics."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from attribution import groundtruth_files as gtf
from attribution.table import AttributionTable
from royaltysim.population import (
    attribution_stats,
    corpus_population,
    fit_attribution_stats,
    fitted_population,
)

from .conftest import make_table

GROUND_TRUTH_FILE = Path(gtf.GROUND_TRUTH_DIR) / gtf.CREATOR_VALUE
CONTRIBUTION_FILE = Path(gtf.GROUND_TRUTH_DIR) / gtf.CREATOR_CONTRIBUTION


def test_corpus_population_uses_the_run(run_dir: Path) -> None:
    table = AttributionTable.load(run_dir)
    pop = corpus_population(table)
    assert list(pop.names) == table.creators
    assert pop.attribution.shape == (len(table.output_ids), len(table.creators))
    assert pop.works.sum() == len(table.corpus)
    assert pop.seconds.sum() == pytest.approx(table.corpus["seconds"].sum())
    np.testing.assert_allclose(pop.attribution, table.to_creators("trak", negative="keep").to_numpy())
    assert (pop.attribution < 0).any(), "raw causal scores keep their sign; schemes choose the policy"
    assert (pop.similarity >= 0).all()
    np.testing.assert_allclose(pop.reference.sum(axis=1), 1.0)
    assert pop.reference_label.startswith("trak")


def test_ground_truth_is_the_reference_when_present(run_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    names = AttributionTable.load(run).creators
    value = np.arange(len(names), dtype=float)
    (run / GROUND_TRUTH_FILE).parent.mkdir()
    pd.DataFrame({"creator": names, "value": value}).to_parquet(run / GROUND_TRUTH_FILE)
    pop = corpus_population(AttributionTable.load(run))
    assert pop.reference_label.startswith("ground truth")
    np.testing.assert_allclose(pop.reference[0], value / value.sum())
    np.testing.assert_allclose(pop.training_value, value)


def test_per_output_ground_truth_is_the_reference_and_held_out_value_the_training_value(run_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    table = AttributionTable.load(run)
    names, outputs = table.creators, table.output_ids
    (run / GROUND_TRUTH_FILE).parent.mkdir()
    rng = np.random.default_rng(0)
    delta = rng.normal(1.0, 1.0, (len(outputs), len(names)))
    rows = [{"output_id": o, "creator": c, "delta": delta[i, j], "basis": "alone", "seeds": 1}
            for i, o in enumerate(outputs) for j, c in enumerate(names)]
    rows += [{"output_id": "__heldout__", "creator": c, "delta": 0.1 * j, "basis": "alone", "seeds": 1} for j, c in enumerate(names)]
    pd.DataFrame(rows).to_parquet(run / CONTRIBUTION_FILE)
    pd.DataFrame({"creator": names, "value": 0.1 * np.arange(len(names))}).to_parquet(run / GROUND_TRUTH_FILE)
    table = AttributionTable.load(run)
    pop = corpus_population(table)
    assert "each output" in pop.reference_label
    expected = np.clip(delta, 0, None) / np.clip(delta, 0, None).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(pop.reference, expected)
    np.testing.assert_allclose(pop.training_value, 0.1 * np.arange(len(names)))
    held = corpus_population(table, reference="loco_heldout")
    np.testing.assert_allclose(held.reference[0], np.arange(len(names)) / np.arange(len(names)).sum())
    assert corpus_population(table, reference="causal").reference_label.startswith("trak")
    # a ground truth measured on other outputs (a rebuilt run) is not used as the truth
    (run / "outputs").mkdir(exist_ok=True)
    for i, o in enumerate(outputs):
        np.save(run / "outputs" / f"{o}.npy", np.arange(10) + i)
    (run / "ground_truth" / "outputs.sha256").write_text("0" * 64 + "\n")
    fallback = corpus_population(AttributionTable.load(run))
    assert fallback.reference_label.startswith("trak") and "other outputs" in fallback.reference_label
    with pytest.raises(ValueError, match="retrain the ground truth"):
        corpus_population(AttributionTable.load(run), reference="loco_outputs")
    from attribution.table import outputs_fingerprint

    (run / "ground_truth" / "outputs.sha256").write_text(outputs_fingerprint(run) + "\n")
    assert "each output" in corpus_population(AttributionTable.load(run)).reference_label
    # a ground truth that misses creators is refused with the fix, never silently read as zero contribution
    pd.DataFrame([r for r in rows if r["creator"] != names[0]]).to_parquet(run / CONTRIBUTION_FILE)
    with pytest.raises(ValueError, match=r"loco.rest: true"):
        corpus_population(AttributionTable.load(run))
    (run / CONTRIBUTION_FILE).unlink()
    (run / GROUND_TRUTH_FILE).unlink()
    with pytest.raises(ValueError, match="groundtruth"):
        corpus_population(AttributionTable.load(run), reference="loco_outputs")


def test_net_of_matched_controls_is_a_reference(run_dir: Path, tmp_path: Path) -> None:
    """source.reference: loco_outputs_net pays for each creator's drop beyond its matched random control's."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    table = AttributionTable.load(run)
    names, outputs = table.creators, table.output_ids
    listed, rest = names[:-2], names[-2:]  # the last two creators were left out together (loco.rest)
    root = gtf.ground_truth_path(run)
    root.mkdir()
    rng = np.random.default_rng(1)
    loco = rng.normal(3.0, 1.0, (2, len(outputs) + 1, len(listed) + 1))  # seed, output (+ held out), creator (+ rest)
    ctrl = rng.normal(1.0, 1.0, loco.shape)
    ids, creators = [*outputs, gtf.HELDOUT], [*listed, gtf.REST]
    long = lambda x: pd.DataFrame([{"creator": c, "seed": s, "output_id": o, "delta": x[s, i, j]}  # noqa: E731
                                   for s in range(2) for i, o in enumerate(ids) for j, c in enumerate(creators)])
    long(loco).to_parquet(root / gtf.LOCO)
    long(ctrl).assign(draw=0).to_parquet(root / gtf.CONTROLS)
    gtf.creator_contribution(long(loco), table.corpus).to_parquet(root / gtf.CREATOR_CONTRIBUTION)
    pd.DataFrame({"creator": names, "value": 0.1 * np.arange(len(names))}).to_parquet(root / gtf.CREATOR_VALUE)

    pop = corpus_population(table, reference="loco_outputs_net")
    assert "matched random control" in pop.reference_label and "left out together" in pop.reference_label
    net = (loco - ctrl).mean(axis=0)[: len(outputs)]  # mean over seeds, outputs only
    events = table.corpus.groupby("creator")["events"].sum()
    share = events[rest] / events[rest].sum()
    expected = np.column_stack([net[:, : len(listed)], net[:, [-1]] * share.to_numpy()[None, :]])
    np.testing.assert_allclose(pop.reference, np.clip(expected, 0, None) / np.clip(expected, 0, None).sum(1, keepdims=True))
    np.testing.assert_allclose(pop.training_value, 0.1 * np.arange(len(names)))  # the held-out value, as loco_outputs
    plain = corpus_population(table, reference="loco_outputs")
    assert not np.allclose(plain.reference, pop.reference) and "control" not in plain.reference_label
    assert "control" not in corpus_population(table).reference_label  # auto keeps the plain drop
    # a catalogue without a matched control is refused with the fix, never read as zero contribution
    long(ctrl).assign(draw=0).query(f"creator != '{listed[0]}'").to_parquet(root / gtf.CONTROLS)
    with pytest.raises(ValueError, match=r"loco.controls: 1"):
        corpus_population(table, reference="loco_outputs_net")
    (root / gtf.CONTROLS).unlink()
    with pytest.raises(ValueError, match=r"needs .*ctrl.parquet.*loco.controls"):
        corpus_population(table, reference="loco_outputs_net")


def test_the_scenario_option_allows_the_net_reference() -> None:
    from typing import get_args

    from royaltysim.config import CorpusSource
    from royaltysim.population import REFERENCES

    assert set(get_args(CorpusSource.model_fields["reference"].annotation)) == set(REFERENCES)
    assert CorpusSource(reference="loco_outputs_net").reference == "loco_outputs_net"


def test_fitted_population_matches_the_source_statistics() -> None:
    table = make_table(n_creators=30, n_outputs=32, seed=5)
    src = corpus_population(table)
    source = attribution_stats(src.attribution, src.similarity, src.works, src.seconds)
    fitted = fit_attribution_stats(src.attribution, src.similarity, src.works, src.seconds)
    pop = fitted_population(fitted, n_creators=4000, rng=np.random.default_rng(0))
    fit = attribution_stats(pop.attribution, pop.similarity, pop.works, pop.seconds)

    assert pop.attribution.shape == (source.n_outputs, 4000)
    assert 0 <= pop.similarity.min() and pop.similarity.max() <= 1, "bounded like the source"
    # concentration of causal attribution across creators
    assert fit.share_sigma == pytest.approx(source.share_sigma, rel=0.10)
    assert fit.zero_share == pytest.approx(source.zero_share, abs=0.03)
    # similarity-vs-TDA agreement across creators and within outputs, and catalogue sizes
    np.testing.assert_allclose(fit.rho, source.rho, atol=0.1)
    assert fit.agreement == pytest.approx(source.agreement, abs=0.1)
    assert fit.works_sigma == pytest.approx(source.works_sigma, rel=0.15)
    assert fit.sim_sigma == pytest.approx(source.sim_sigma, rel=0.15)
    assert fit.out_sigma_causal == pytest.approx(source.out_sigma_causal, rel=0.15)
    assert fit.seconds_per_work == pytest.approx(source.seconds_per_work, rel=0.01)


def test_fitted_population_is_reproducible_and_sized() -> None:
    src = corpus_population(make_table())
    stats = attribution_stats(src.attribution, src.similarity, src.works, src.seconds)
    a = fitted_population(stats, 50, np.random.default_rng(1), n_outputs=7)
    b = fitted_population(stats, 50, np.random.default_rng(1), n_outputs=7)
    assert a.attribution.shape == (7, 50) and a.similarity.shape == (7, 50)
    np.testing.assert_array_equal(a.attribution, b.attribution)
    with pytest.raises(ValueError, match="at least|>= 2"):
        fitted_population(stats, 1, np.random.default_rng(1))
