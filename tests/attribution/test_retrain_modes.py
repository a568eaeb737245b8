"""Retraining modes of the ground truth: trajectory-exact replays, masking, matched controls, Dask, reuse keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from attribution.retrain import (
    GroundTruthConfig,
    GroundTruthConfigError,
    control_mask,
    load_run_inputs,
    plan_jobs,
    run_groundtruth,
)

from .test_retrain import TINY_GT, make_synthetic_run, shared_ground_truth_run

@pytest.fixture
def modes_run(tmp_path_factory):
    """The shared tiny ground truth (test_retrain.TINY_GT trains every kind of model once per session)."""
    return shared_ground_truth_run(tmp_path_factory)[0]


def _utilities(root: Path) -> dict[str, np.ndarray]:
    return {str(p.parent.relative_to(root)): np.load(p)["outputs"] for p in sorted(root.glob("*/*/utilities.npz"))}


def test_a_replay_with_nothing_removed_reproduces_the_reference_exactly(modes_run):
    from attribution.retrain import load_groundtruth

    gt = load_groundtruth(modes_run)
    ref, ref_held = gt.references[0]
    replay, replay_held = gt.replays[0]
    assert np.array_equal(ref, replay) and ref_held == replay_held  # 0 nats: same initialisation, batches, threads
    one_piece = gt.loo[gt.loo["output_id"] != "__heldout__"]["delta"].abs()
    assert len(one_piece) and one_piece.median() > 1e-4  # while removing one piece does move the outputs


def test_fixed_order_lds_uses_the_same_subsets_in_its_own_folder(modes_run):
    from attribution.retrain import load_groundtruth

    gt = load_groundtruth(modes_run)
    fixed, reshuffled = gt.lds_modes["fixed"], gt.lds_modes["reshuffled"]
    assert fixed.subsets == reshuffled.subsets == list(range(6))
    assert np.array_equal(fixed.masks, reshuffled.masks)
    assert np.isfinite(fixed.utilities[:3]).all() and np.isnan(fixed.utilities[3:, 1]).all()  # seed 1 on 3 subsets
    assert (modes_run / "ground_truth" / "lds_fixed" / "s000_seed1" / "meta.yaml").is_file()
    meta = yaml.safe_load((modes_run / "ground_truth" / "lds_fixed" / "s000_seed0" / "meta.yaml").read_text())
    assert meta["order"] == "fixed" and meta["kind"] == "lds"
    # the two modes are different counterfactuals of the same data
    assert not np.allclose(fixed.utilities[:, 0], reshuffled.utilities[:, 0])


def test_dropped_windows_never_reach_the_gradient(tmp_path):
    """Training with windows dropped is the same whatever those windows contain."""
    import torch

    from attribution.model import ModelConfig
    from attribution.train import TrainConfig, load_model, train_model
    from attribution.windows import Windows

    run = make_synthetic_run(tmp_path / "run", steps=4)
    inputs = load_run_inputs(run)
    drop = inputs.train_piece % 3 == 0
    garbage = inputs.train_tokens.copy()
    garbage[drop] = np.random.default_rng(1).integers(0, 300, size=garbage[drop].shape)
    mcfg = ModelConfig(**inputs.model_config)
    tcfg = TrainConfig(**{**inputs.train_config, "steps": 12, "checkpoints": [1.0], "threads": 1})
    weights = []
    for name, tokens in (("clean", inputs.train_tokens), ("garbage", garbage)):
        res = train_model(Windows(tokens, inputs.train_piece, inputs.pad_id), mcfg, tcfg, tmp_path / name,
                          progress=False, drop=drop)
        weights.append(load_model(res.checkpoints[-1]).state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    # and dropping nothing is not the same as dropping those windows
    res = train_model(Windows(inputs.train_tokens, inputs.train_piece, inputs.pad_id), mcfg, tcfg, tmp_path / "all", progress=False)
    full = load_model(res.checkpoints[-1]).state_dict()
    assert not all(torch.equal(weights[0][k], full[k]) for k in full)


def test_matched_controls_remove_as_many_events_from_other_creators(modes_run):
    inputs = load_run_inputs(modes_run)
    events = inputs.corpus["events"].to_numpy(dtype=float)
    out = inputs.creators == "c0"
    drop = control_mask(out, events, 0, "c0", 0)
    assert not (drop & out).any()
    assert abs(events[drop].sum() - events[out].sum()) <= events.max()
    assert np.array_equal(drop, control_mask(out, events, 0, "c0", 0))  # a pure function of its seeds
    assert not np.array_equal(drop, control_mask(out, events, 0, "c0", 1))
    jobs = [j for j in plan_jobs(TINY_GT, inputs) if j.kind == "ctrl"]
    assert [j.name for j in jobs] == [f"c{i}~0" for i in range(4)] * 2 and all(j.order == "fixed" for j in jobs)
    with pytest.raises(GroundTruthConfigError, match="matched control"):
        control_mask(~out, events, 0, "everyone else", 0)


def test_controls_are_collected_beside_leave_one_creator_out(modes_run):
    from attribution.retrain import load_groundtruth

    gt = load_groundtruth(modes_run)
    assert set(gt.controls["creator"]) == {"c0", "c1", "c2", "c3"}
    assert set(gt.controls["draw"]) == {0}
    assert (modes_run / "ground_truth" / "ctrl.parquet").is_file()


def test_results_do_not_depend_on_the_number_of_dask_workers(tmp_path):
    """Two workers on a real local Dask cluster train the same models, bit for bit, as one in-process worker."""
    cfg = GroundTruthConfig(lds={"subsets": 2, "seeds": [0]}, lds_fixed={"subsets": 1, "seeds": [0]},
                            full={"seeds": [0]}, loco={"enabled": False})
    utilities = []
    for workers in (1, 2):
        run = make_synthetic_run(tmp_path / f"w{workers}")
        result = run_groundtruth(run, cfg, workers=workers, threads=1, progress=False)
        assert result.trained == 4 and not result.failed
        utilities.append(_utilities(run / "ground_truth"))
    assert utilities[0].keys() == utilities[1].keys() and len(utilities[0]) == 4
    assert all(np.array_equal(utilities[0][k], utilities[1][k]) for k in utilities[0])


def test_an_unreachable_scheduler_is_a_clear_error(modes_run):
    with pytest.raises(GroundTruthConfigError, match="cannot reach the Dask scheduler"):
        run_groundtruth(modes_run, GroundTruthConfig.model_validate({**TINY_GT.model_dump(), "lds": {"subsets": 7, "seeds": [0]}}),
                        scheduler="tcp://127.0.0.1:9", progress=False)


def test_models_of_other_training_data_are_refused_before_anything_is_written(tmp_path):
    cfg = GroundTruthConfig(lds={"subsets": 1, "seeds": [0]}, full={"seeds": [0]}, loco={"enabled": False})
    run = make_synthetic_run(tmp_path / "run")
    run_groundtruth(run, cfg, workers=1, threads=1, progress=False)
    w = dict(np.load(run / "model" / "windows.npz"))
    w["train_tokens"] = w["train_tokens"].copy()
    w["train_tokens"][0, 1] = (w["train_tokens"][0, 1] + 1) % 300  # one event of the training data changed
    np.savez_compressed(run / "model" / "windows.npz", **w)

    def digest(folder: Path) -> str:
        h = hashlib.sha256()
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
        return h.hexdigest()

    before = digest(run / "ground_truth")
    with pytest.raises(GroundTruthConfigError, match="other training windows"):
        run_groundtruth(run, GroundTruthConfig.model_validate({**cfg.model_dump(), "lds": {"subsets": 2, "seeds": [0]}}), workers=1, progress=False)
    assert digest(run / "ground_truth") == before
