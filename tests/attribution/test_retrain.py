"""Ground truth by retraining: plan, end to end on a tiny synthetic run, resumability, config errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from attribution.retrain import (
    HELDOUT,
    REST,
    GroundTruthConfig,
    GroundTruthConfigError,
    collect_groundtruth,
    creator_contribution,
    lds_mask,
    load_groundtruth,
    load_groundtruth_config,
    load_run_inputs,
    output_utilities,
    plan_jobs,
    run_groundtruth,
)

from .conftest import BOS, EOS, PAD, synthetic_pieces


def make_synthetic_run(
    folder: Path, n_pieces: int = 12, n_creators: int = 4, steps: int = 40, n_outputs: int = 4, seed: int = 0,
    proj_dim: int = 16, lambda_reg: float = 0.0,
) -> Path:
    """A complete run folder (the layout `attribution build` writes) from synthetic motif pieces, in seconds.

    Pieces are dealt to creators round-robin; outputs are sampled from the trained model; the attribution
    table holds traker's methods and one similarity proxy (cosine of token histograms).
    """
    from attribution.windows import piece_sum
    from attribution.generate import sample
    from attribution.model import ModelConfig, MusicTransformer
    from attribution.scoring import TrakConfig, compute_gradient_scores
    from attribution.similarity import cosine_matrix
    from attribution.table import AttributionTable
    from attribution.train import TrainConfig, _lr_at, load_model, train_model
    from attribution.windows import make_windows

    folder = Path(folder)
    (folder / "model").mkdir(parents=True, exist_ok=True)
    (folder / "outputs").mkdir(exist_ok=True)
    pieces = synthetic_pieces(n_pieces + 2, seed=seed)
    train, val = pieces[:n_pieces], pieces[n_pieces:]
    windows = make_windows(train, block_size=24, pad_id=PAD)
    val_windows = make_windows(val, block_size=24, pad_id=PAD)
    mcfg = ModelConfig(block_size=24, n_layer=2, n_head=2, d_model=32, pad_id=PAD)
    tcfg = TrainConfig(steps=steps, batch_size=8, warmup_steps=5, checkpoints=[0.5, 1.0], eval_every=steps, seed=seed)
    np.savez_compressed(
        folder / "model" / "windows.npz", train_tokens=windows.tokens, train_piece=windows.piece,
        val_tokens=val_windows.tokens, val_piece=val_windows.piece, pad_id=PAD,
    )
    result = train_model(windows, mcfg, tcfg, folder / "model", progress=False)
    model = load_model(result.checkpoints[-1])
    out_tokens = sample(model, n_outputs, 25, BOS, top_k=20, seed=seed + 1, banned=[PAD, BOS, EOS])
    out_ids = [f"out{i:03d}" for i in range(n_outputs)]
    for oid, seq in zip(out_ids, out_tokens):
        np.save(folder / "outputs" / f"{oid}.npy", seq)
    outputs = pd.DataFrame({"output_id": out_ids, "events": 24, "seconds": 1.0,
                            "tokens": [f"outputs/{o}.npy" for o in out_ids]})
    corpus = pd.DataFrame({
        "train_id": [f"p{i:02d}" for i in range(n_pieces)],
        "creator": [f"c{i % n_creators}" for i in range(n_pieces)],
        "title": [f"piece {i}" for i in range(n_pieces)],
        "events": [len(p) - 1 for p in train],
        "seconds": 1.0,
    })
    steps_ = [int(p.stem.split("_")[1]) for p in result.checkpoints]
    grads = compute_gradient_scores(
        MusicTransformer(mcfg), result.checkpoints, windows.tokens, out_tokens, TrakConfig(proj_dim=proj_dim, lambda_reg=lambda_reg, batch_size=16),
        folder / "cache" / "trak", checkpoint_lrs=[_lr_at(s - 1, tcfg) for s in steps_], progress=False,
    )
    scores = {m: piece_sum(v, windows.piece, n_pieces) for m, v in grads.methods.items()}
    hist = lambda seq: np.bincount(seq[(seq != PAD) & (seq < 300)], minlength=300).astype(float)  # noqa: E731
    scores["sim_tokens"] = cosine_matrix(np.stack([hist(s) for s in out_tokens]), np.stack([hist(p) for p in train]))
    frames = [
        pd.DataFrame({"output_id": np.repeat(out_ids, n_pieces), "train_id": np.tile(corpus["train_id"], n_outputs),
                      "creator": np.tile(corpus["creator"], n_outputs), "method": m, "score": s.ravel()})
        for m, s in scores.items()
    ]
    AttributionTable(scores=pd.concat(frames, ignore_index=True), corpus=corpus, outputs=outputs).save(folder)
    meta = {
        "config": {"trak": {"proj_dim": proj_dim, "lambda_reg": lambda_reg, "projector_seed": 0}},
        "metrics": {"attribution": {"trak_checkpoints": [p.name for p in result.checkpoints]}},
        "stages": {"trak": {"seconds": 1.0, "peak_rss_mb": 0.0}},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(meta))
    return folder


# every kind of model, so the evaluation tests exercise both LDS modes, the replay check and the matched controls
TINY_GT = GroundTruthConfig(
    lds={"subsets": 6, "seeds": [0, 1], "noise_subsets": 3},
    lds_fixed={"subsets": 6, "seeds": [0, 1], "noise_subsets": 3},
    full={"replay_check": True},
    loco={"seeds": [0, 1], "controls": 1},
    loo={"pieces": 1, "seeds": [0, 1], "order": "fixed"},
    keep_weights=True,
)
TINY_GT_MODELS = 39  # 2 references, 9 + 9 LDS, 8 LOCO, 8 controls, 2 one-piece drops, 1 replay


_SHARED: dict = {}


def shared_ground_truth_run(tmp_path_factory) -> tuple[Path, object]:
    """The synthetic run with a tiny ground truth trained by two worker processes, once per test session.

    test_evaluate.py uses the same run, so it is built here once rather than in a fixture per module.
    """
    if "run" not in _SHARED:
        run = make_synthetic_run(tmp_path_factory.mktemp("synthetic_run"))
        _SHARED["run"] = (run, run_groundtruth(run, TINY_GT, workers=2, progress=False))
    return _SHARED["run"]


@pytest.fixture
def synthetic_run(tmp_path_factory):
    return shared_ground_truth_run(tmp_path_factory)[0]


@pytest.fixture
def ground_truth_run(tmp_path_factory):
    return shared_ground_truth_run(tmp_path_factory)


def test_plan_counts_and_masks_are_pure_functions_of_their_seeds(synthetic_run):
    inputs = load_run_inputs(synthetic_run)
    jobs = plan_jobs(TINY_GT, inputs)
    kinds = pd.Series([j.kind for j in jobs]).value_counts().to_dict()
    # full refs for seeds {0, 1}; 6 subsets with seed 0 + 3 with seed 1, in both modes; 4 creators x 2 seeds, each
    # with one matched control; 1 piece x 2 seeds; the replay of seed 0's reference
    assert kinds == {"full": 2, "lds": 18, "loco": 8, "ctrl": 8, "loo": 2, "replay": 1}
    assert jobs[0].kind == "full"
    assert len({j.folder for j in jobs}) == len(jobs)
    m = lds_mask(12, 0.5, 0, 3)
    assert m.sum() == 6 and np.array_equal(m, lds_mask(12, 0.5, 0, 3))
    more = plan_jobs(TINY_GT.model_copy(update={"lds": TINY_GT.lds.model_copy(update={"subsets": 8})}), inputs)
    before = {j.folder: j.keep for j in jobs}
    assert all(before[j.folder] == j.keep for j in more if j.folder in before)  # a larger plan extends a smaller
    loco = [j for j in jobs if j.kind == "loco"]
    creators = inputs.creators
    assert all(j.left_out not in set(creators[list(j.keep)]) for j in loco)


def test_ground_truth_end_to_end(ground_truth_run):
    run, report = ground_truth_run
    assert report.failed == [] and report.trained == report.planned == TINY_GT_MODELS
    gt = load_groundtruth(run)
    root = run / "ground_truth"
    for name in ("models.parquet", "utilities.parquet", "loco.parquet", "loo.parquet", "creator_value.parquet", "lds_masks.npy"):
        assert (root / name).is_file(), name
    value = pd.read_parquet(root / "creator_value.parquet")
    assert list(value.columns) == ["creator", "value", "basis", "seeds"] and sorted(value["creator"]) == ["c0", "c1", "c2", "c3"]
    assert np.isfinite(value["value"]).all() and set(value["basis"]) == {"alone"}
    contribution = pd.read_parquet(root / "creator_contribution.parquet")
    assert len(contribution) == 4 * 5 and set(contribution["output_id"]) == {"out000", "out001", "out002", "out003", HELDOUT}
    loco_models = gt.models[gt.models["kind"] == "loco"]
    assert (loco_models["order"] == "fixed").all()  # replays of the reference run, the creator's windows removed
    full_windows = gt.models.loc[gt.models["kind"] == "full", "n_windows"].max()
    assert (loco_models["n_windows"] < full_windows).all()
    assert gt.lds_utilities.shape == (6, 2, 4)
    assert np.isfinite(gt.lds_utilities[:, 0]).all() and np.isfinite(gt.lds_utilities[:3, 1]).all()
    assert np.isnan(gt.lds_utilities[3:, 1]).all()
    assert set(gt.loco["output_id"]) == {"out000", "out001", "out002", "out003", HELDOUT}
    assert len(gt.loo) == 2 * 5 and gt.loo["creator"].notna().all()
    # the recorded utility is the sequence log-likelihood of the outputs under the retrained model
    from attribution.train import load_model

    inputs = load_run_inputs(run)
    folder = root / "full" / "all_seed0"
    model = load_model(sorted(folder.glob("ckpt_*.pt"))[-1])
    np.testing.assert_allclose(np.load(folder / "utilities.npz")["outputs"], output_utilities(model, inputs.output_tokens), rtol=1e-6)
    # the LOCO delta is full minus without, per output and on held-out music
    full = np.load(folder / "utilities.npz")
    without = np.load(root / "loco" / "c1_seed0" / "utilities.npz")
    c1 = gt.loco[(gt.loco["creator"] == "c1") & (gt.loco["seed"] == 0)]
    row = c1[c1["output_id"] == "out002"]["delta"].item()
    assert row == pytest.approx(full["outputs"][2] - without["outputs"][2])
    full1 = np.load(root / "full" / "all_seed1" / "utilities.npz")
    without1 = np.load(root / "loco" / "c1_seed1" / "utilities.npz")
    mean = (float(full["heldout"] - without["heldout"]) + float(full1["heldout"] - without1["heldout"])) / 2
    assert value.set_index("creator").loc["c1", "value"] == pytest.approx(mean)  # the mean over the two seeds


def test_rerun_trains_nothing_and_an_interrupted_model_is_redone_identically(ground_truth_run):
    run, _ = ground_truth_run
    runs_before = len(yaml.safe_load((run / "ground_truth" / "config_history.yaml").read_text()))
    again = run_groundtruth(run, TINY_GT, workers=1, progress=False)
    assert again.trained == 0 and again.already_done == again.planned
    history = yaml.safe_load((run / "ground_truth" / "config_history.yaml").read_text())
    assert len(history) == runs_before + 1 and history[-1]["config"] == TINY_GT.model_dump(mode="json")
    folder = run / "ground_truth" / "lds" / "s002_seed0"
    before = np.load(folder / "utilities.npz")["outputs"]
    (folder / "meta.yaml").unlink()  # as if the process died after training, before recording
    for p in folder.glob("*.pt"):
        p.unlink()
    (folder / "DONE").unlink()
    redo = run_groundtruth(run, TINY_GT, workers=1, progress=False, threads=1)  # trained on 1 thread (2 workers)
    assert redo.trained == 1
    np.testing.assert_allclose(np.load(folder / "utilities.npz")["outputs"], before, rtol=1e-6)
    assert torch.get_num_threads() >= 1


def test_a_reference_whose_kept_weights_are_gone_is_retrained_and_checked(ground_truth_run):
    run, _ = ground_truth_run
    folder = run / "ground_truth" / "full" / "all_seed1"
    ckpts = sorted(folder.glob("ckpt_*.pt"))
    before = {p.name: torch.load(p, map_location="cpu", weights_only=True)["model"] for p in ckpts}
    recorded = np.load(folder / "utilities.npz")["outputs"]
    for p in ckpts:  # as on a fresh clone: utilities committed, weights not
        p.unlink()
    redo = run_groundtruth(run, TINY_GT, workers=1, progress=False)
    assert redo.trained == 1 and redo.failed == []  # only that reference; the run's own seed (0) keeps RUN/model
    assert sorted(p.name for p in folder.glob("ckpt_*.pt")) == sorted(before)
    for name, state in before.items():  # deterministic training: the very same weights
        again = torch.load(folder / name, map_location="cpu", weights_only=True)["model"]
        assert all(torch.equal(state[k], again[k]) for k in state)
    meta = yaml.safe_load((folder / "meta.yaml").read_text())
    assert meta["weights_restored"]["max_abs_gap_nats"] < 1e-6
    np.testing.assert_array_equal(np.load(folder / "utilities.npz")["outputs"], recorded)  # the record is untouched
    assert not any((run / "cache" / "restore").rglob("*.pt"))  # the scratch copy is gone
    assert run_groundtruth(run, TINY_GT, workers=1, progress=False).trained == 0


def test_rest_group_is_one_model_and_its_value_is_split_by_training_events(synthetic_run):
    inputs = load_run_inputs(synthetic_run)
    cfg = GroundTruthConfig(lds={"subsets": 0}, loco={"creators": ["c0", "c1"], "rest": True, "seeds": [0, 1]})
    jobs = plan_jobs(cfg, inputs)
    rest = [j for j in jobs if j.left_out == REST]
    assert [j.seed for j in rest] == [0, 1]
    kept = set(inputs.creators[list(rest[0].keep)])
    assert kept == {"c0", "c1"}  # every unlisted creator is left out together
    everyone = GroundTruthConfig(lds={"subsets": 0}, loco={"rest": True})
    assert not [j for j in plan_jobs(everyone, inputs) if j.left_out == REST]  # nobody is left for a group

    corpus = pd.DataFrame({"creator": ["a", "b", "b", "c"], "events": [10, 30, 30, 20]})
    loco = pd.DataFrame({
        "creator": ["a", "a", REST, REST, "a", REST],
        "seed": [0, 0, 0, 0, 1, 1],
        "output_id": ["o1", HELDOUT, "o1", HELDOUT, "o1", "o1"],
        "delta": [1.0, 0.5, 8.0, 4.0, 3.0, 4.0],
    })
    got = creator_contribution(loco, corpus).set_index(["output_id", "creator"])
    assert got.loc[("o1", "a"), "delta"] == pytest.approx(2.0) and got.loc[("o1", "a"), "seeds"] == 2
    assert got.loc[("o1", "a"), "basis"] == "alone"
    # the group (b: 60 events, c: 20) lost 6.0 on o1 on average over its two seeds: 3/4 to b, 1/4 to c
    assert got.loc[("o1", "b"), "delta"] == pytest.approx(4.5) and got.loc[("o1", "c"), "delta"] == pytest.approx(1.5)
    assert got.loc[(HELDOUT, "b"), "delta"] == pytest.approx(3.0) and got.loc[(HELDOUT, "b"), "basis"] == "group"
    assert creator_contribution(loco.iloc[:0], corpus).empty


def test_a_ground_truth_of_other_outputs_is_refused(ground_truth_run, tmp_path):
    import shutil

    from attribution.table import outputs_fingerprint

    run, _ = ground_truth_run
    assert (run / "ground_truth" / "outputs.sha256").read_text().strip() == outputs_fingerprint(run)
    copy = tmp_path / "rebuilt"
    shutil.copytree(run, copy)
    out = copy / "outputs" / "out000.npy"
    tokens = np.load(out)
    tokens[-1] = tokens[-2]  # as if the rebuilt run had sampled another output
    np.save(out, tokens)
    with pytest.raises(ValueError, match="scored other generated outputs"):
        load_groundtruth(copy)


def test_a_changed_subset_plan_is_refused(ground_truth_run):
    run, _ = ground_truth_run
    other = TINY_GT.model_copy(update={"lds": TINY_GT.lds.model_copy(update={"mask_seed": 5})})
    with pytest.raises(ValueError, match="other pieces"):
        run_groundtruth(run, other, workers=1, progress=False)
    collect_groundtruth(run)  # the finished models are untouched


def test_config_errors_name_the_key(tmp_path, synthetic_run):
    bad = tmp_path / "gt.yaml"
    bad.write_text("lds: {subsets: -1, fractoin: 0.5}\nloo: {seeds: [1, 1]}\n")
    with pytest.raises(GroundTruthConfigError) as err:
        load_groundtruth_config(bad)
    assert "lds.subsets" in str(err.value) and "lds.fractoin" in str(err.value)
    with pytest.raises(GroundTruthConfigError, match="not creators"):
        plan_jobs(GroundTruthConfig(loco={"creators": ["nobody"]}), load_run_inputs(synthetic_run))
    with pytest.raises(FileNotFoundError, match="not a finished attribution run"):
        load_run_inputs(tmp_path)


def test_shipped_groundtruth_configs_validate():
    for path in sorted(Path("configs").glob("groundtruth-*.yaml")):
        load_groundtruth_config(path)


def test_retraining_keeps_the_attention_form_the_run_was_trained_with(synthetic_run, tmp_path):
    import shutil

    assert load_run_inputs(synthetic_run).train_config["attention"] == "fused"  # written by this build
    # a run built before the option existed was trained in explicit form: its ground truth must be too
    old = tmp_path / "old_run"
    shutil.copytree(synthetic_run, old, ignore=shutil.ignore_patterns("ground_truth", "cache"))
    path = old / "model" / "train_config.yaml"
    recipe = yaml.safe_load(path.read_text())
    del recipe["train"]["attention"]
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    assert load_run_inputs(old).train_config["attention"] == "explicit"
