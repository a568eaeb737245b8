"""The pandas-only reader of the ground truth's files: names, fingerprint check, readers and derived tables."""

from __future__ import annotations

from pathlib import Path

import shutil
import subprocess
import sys

import pandas as pd
import pytest

from attribution import groundtruth_files as gtf

from .test_retrain import shared_ground_truth_run


def test_importing_the_reader_and_the_population_imports_no_torch():
    code = ("import sys, attribution.groundtruth_files, royaltysim.population; "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:5]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_retrain_names_its_files_through_the_reader():
    """One definition of the ground truth's names and of the true contribution: retrain uses the reader's."""
    from attribution import retrain
    from attribution.retrain import collect

    for name in ("HELDOUT", "REST", "OUTPUTS_FINGERPRINT"):
        assert getattr(retrain, name) is getattr(gtf, name), name
    assert retrain.creator_contribution is gtf.creator_contribution
    assert collect.GROUND_TRUTH_DIR is gtf.GROUND_TRUTH_DIR
    source = "".join(p.read_text() for p in Path(retrain.__file__).parent.glob("*.py"))
    names = ("CONFIG", "CONFIG_HISTORY", "MODELS", "UTILITIES", "LDS_MASKS", "LDS_FIXED_MASKS", "LOCO", "CONTROLS", "LOO",
             "CREATOR_VALUE", "CREATOR_CONTRIBUTION", "OUTPUTS_FINGERPRINT")
    assert not [n for n in names if f'"{getattr(gtf, n)}"' in source]  # no file name of the ground truth re-declared


def test_reading_the_ground_truth_of_a_run(tmp_path, tmp_path_factory):
    run, _ = shared_ground_truth_run(tmp_path_factory)
    assert not gtf.is_stale(run) and gtf.recorded_fingerprint(run)
    loco, controls = gtf.read_loco(run), gtf.read_controls(run)
    assert set(loco["creator"]) == set(controls["creator"]) == {"c0", "c1", "c2", "c3"}
    assert list(controls.columns[:3]) == ["creator", "draw", "seed"] and set(controls["draw"]) == {0}
    corpus = pd.read_parquet(run / "corpus.parquet")
    pd.testing.assert_frame_equal(gtf.read_contribution(run), gtf.creator_contribution(loco, corpus), check_dtype=False)
    assert set(gtf.read_creator_value(run)["creator"]) == {"c0", "c1", "c2", "c3"}
    net = gtf.net_contribution(run, corpus)
    assert len(net) == len(gtf.read_contribution(run)) and (net["basis"] == "alone").all()
    assert gtf.read_models(run)["kind"].isin(["full", "lds", "loco", "ctrl", "loo", "replay"]).all()

    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("*.pt", "cache", "evaluation"))
    assert gtf.read_table(copy, "no_such_table.parquet") is None
    (gtf.ground_truth_path(copy, gtf.CONTROLS)).unlink()
    assert gtf.read_controls(copy) is None and gtf.net_contribution(copy, pd.read_parquet(copy / "corpus.parquet")) is None
    loco.drop(columns="seed").to_parquet(gtf.ground_truth_path(copy, gtf.LOCO))
    with pytest.raises(gtf.GroundTruthFileError, match=r"lacks the column\(s\) \['seed'\].*attribution groundtruth"):
        gtf.read_loco(copy)
    gtf.ground_truth_path(copy, gtf.OUTPUTS_FINGERPRINT).write_text("0" * 64 + "\n")
    assert gtf.is_stale(copy)
