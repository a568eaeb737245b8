"""Replayed metagradients (attribution.estimators.metagradient) on the tiny synthetic corpus of conftest.py.

The replay must be the recorded training run (bit for bit where the run used the same attention form), a zero data
weight must be the trajectory-exact retraining's removal (``train_model(drop=...)``, what the fixed-order ground
truth trains), and the reverse pass must be the derivative of that replay: finite differences of the replay agree.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from attribution.estimators.metagradient import (
    MetagradientConfig,
    TrainingReplay,
    metagradient_scores,
    metagradients,
    replay_error,
    sample_outputs,
)
from attribution.model import ModelConfig
from attribution.train import TrainConfig, load_model, train_model
from attribution.windows import make_windows

from .conftest import PAD, synthetic_pieces

MCFG = ModelConfig(block_size=24, n_layer=2, n_head=2, d_model=32, pad_id=PAD)  # tiny_run's model
TCFG = TrainConfig(steps=20, batch_size=8, warmup_steps=5, checkpoints=[1.0], eval_every=1000, attention="explicit")


@pytest.fixture(scope="module")
def windows():
    return make_windows(synthetic_pieces(), block_size=24, pad_id=PAD)  # 35 windows of 10 pieces


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the replay is many small ops: one thread is faster on shared cores, and exact
    yield
    torch.set_num_threads(before)


def _recorded(windows, tmp_path, cfg: TrainConfig, drop=None) -> dict:
    result = train_model(windows, MCFG, replace(cfg, threads=1), tmp_path, progress=False, drop=drop)
    return load_model(result.checkpoints[-1]).state_dict()


def test_the_replay_is_the_recorded_run(windows, tmp_path):
    """All weights 1 replays training: bit for bit in float32 with the explicit attention the run trained with;
    to float rounding (relative 1e-4) with the fused kernel or in float64."""
    replay = TrainingReplay(MCFG, TCFG, windows.tokens, dtype=torch.float32)
    final, kept = replay.run(keep_every=7)
    assert sorted(kept) == [0, 7, 14] and final.t == TCFG.steps
    err = replay_error(replay, final, _recorded(windows, tmp_path / "explicit", TCFG), windows.tokens[:3])
    assert err == {"max_abs_weight_diff": 0.0, "relative_weight_diff": 0.0, "max_abs_loglik_diff_nats": 0.0}
    fused = _recorded(windows, tmp_path / "fused", replace(TCFG, attention="fused"))
    err = replay_error(replay, final, fused, windows.tokens[:3])
    assert 0 < err["relative_weight_diff"] < 1e-4 and err["max_abs_loglik_diff_nats"] < 1e-3


def test_zero_weight_is_the_fixed_order_removal(windows, tmp_path):
    """w = 0 is train_model(drop=...): the windows leave the batch mean, and a batch with nothing left makes no
    optimiser step (AdamW's counter does not advance). The replay differs from that model by float rounding
    (the batch is summed over 8 rows rather than 7), far less than the removal moves it."""
    replay = TrainingReplay(MCFG, TCFG, windows.tokens, dtype=torch.float32)
    drop = np.zeros(len(windows), bool)
    drop[replay.batch(3)] = True  # every window of step 3: that step passes with no update
    drop[replay.batch(10)[0]] = True  # and one more window, from a later batch
    removed, _ = replay.run(w=(~drop).astype(float))
    assert removed.t == TCFG.steps - 1
    full = _recorded(windows, tmp_path / "full", TCFG)
    retrained = _recorded(windows, tmp_path / "drop", TCFG, drop=drop)
    outputs = windows.tokens[:4]
    err = replay_error(replay, removed, retrained, outputs)
    moved = replay_error(replay, removed, full, outputs)
    assert err["relative_weight_diff"] < 1e-2 * moved["relative_weight_diff"]  # rounding, not removal
    assert err["max_abs_loglik_diff_nats"] < 1e-2 * moved["max_abs_loglik_diff_nats"]


def test_metagradient_agrees_with_finite_differences(windows):
    """d f / d w_i from one reverse pass equals central differences of the float64 replay, through AdamW, its
    schedule and an always-active gradient clip (a clip that switches on and off between steps is a kink: see the
    slow test). The replay is far from linear at the scale of 1e-5 (Adam's first steps divide each gradient entry
    by its own size, near-sign functions of small entries: differences with steps of 1e-5 are off by up to 28%
    on this run), so the differences take steps of 1e-7, where they converge. Batching targets through vmap and
    recomputing states from sparse checkpoints change nothing."""
    cfg = replace(TCFG, grad_clip=0.5)  # the gradient norms of this run are 0.9-2.6: always clipped
    replay = TrainingReplay(MCFG, cfg, windows.tokens, dtype=torch.float64)
    outputs = windows.tokens[[0, 30]]
    g, final = metagradients(replay, outputs, targets_per_pass=1)
    g_each, _ = metagradients(replay, outputs, targets_per_pass=2, segment=1)
    np.testing.assert_allclose(g, g_each, rtol=1e-9, atol=1e-12)
    seen = sorted(set(replay.batch(0)) | set(replay.batch(5)))[:2]
    eps = 1e-7
    for i in seen:
        w = np.ones(replay.n)
        w[i] = 1 + eps
        up, _ = replay.run(w)
        w[i] = 1 - eps
        down, _ = replay.run(w)
        fd = (replay.log_likelihoods(up.theta, outputs) - replay.log_likelihoods(down.theta, outputs)).numpy() / (2 * eps)
        np.testing.assert_allclose(g[:, i], fd, rtol=1e-4, atol=1e-4 * np.abs(g).max())


def test_removing_a_window_is_close_to_the_first_order_prediction(windows):
    """On a smooth, gently trained tiny run (no clipping, a small learning rate, batches of 16) the change of the
    outputs' log-likelihood when a window is removed (w_i = 0) is about -d f / d w_i."""
    cfg = replace(TCFG, batch_size=16, lr=1e-3, min_lr=1e-4, grad_clip=100.0)
    replay = TrainingReplay(MCFG, cfg, windows.tokens, dtype=torch.float32)
    outputs = windows.tokens[[0, 10, 25]]
    g, final = metagradients(replay, outputs)
    base = replay.log_likelihoods(final.theta, outputs).numpy()
    actual, predicted = [], []
    for i in range(0, replay.n, 5):
        w = np.ones(replay.n)
        w[i] = 0.0
        state, _ = replay.run(w)
        actual.append(replay.log_likelihoods(state.theta, outputs).numpy() - base)
        predicted.append(-g[:, i])
    actual, predicted = np.ravel(actual), np.ravel(predicted)
    assert np.corrcoef(actual, predicted)[0, 1] > 0.9
    assert np.abs(actual - predicted).sum() < 0.6 * np.abs(actual).sum()


def test_scores_sample_the_outputs_and_refuse_another_run(windows, tmp_path):
    short = replace(TCFG, steps=8)
    recorded = _recorded(windows, tmp_path, short)
    outputs = windows.tokens[:5]
    cfg = MetagradientConfig(outputs=2, sample_seed=3, targets_per_pass=2)
    chosen = sample_outputs(5, cfg)
    res = metagradient_scores(MCFG.to_dict(), {**vars(short), "threads": 1}, windows.tokens, outputs, cfg, recorded)
    assert res.scores.shape == (5, len(windows)) and res.facts["outputs_scored"] == list(chosen) and len(chosen) == 2
    assert np.isfinite(res.scores[chosen]).all() and np.isnan(np.delete(res.scores, chosen, axis=0)).all()
    assert res.facts["replay"]["relative_weight_diff"] == 0.0 and res.n_params == sum(t.numel() for t in recorded.values()) - recorded["head.weight"].numel()
    other = {k: v + 0.01 for k, v in recorded.items()}
    with pytest.raises(ValueError, match="recorded final weights"):
        metagradient_scores(MCFG.to_dict(), vars(short), windows.tokens, outputs, cfg, other)
    with pytest.raises(ValueError, match="dropout"):
        TrainingReplay(replace(MCFG, dropout=0.1), TCFG, windows.tokens)
    with pytest.raises(ValueError, match="one per training window"):
        TrainingReplay(MCFG, TCFG, windows.tokens).run(np.ones(3))
    with pytest.raises(ValueError, match="outputs must be"):
        MetagradientConfig(outputs=0)


@pytest.mark.slow
def test_metagradient_through_a_switching_clip_agrees_with_small_finite_differences(windows):
    """The run's own recipe (clip at 1, which switches on and off near the end): central differences converge to the
    metagradient as the step shrinks to 1e-7 (larger steps cross a clipping kink)."""
    cfg = replace(TCFG, steps=30)
    replay = TrainingReplay(MCFG, cfg, windows.tokens, dtype=torch.float64)
    outputs = windows.tokens[[0, 20]]
    g, _ = metagradients(replay, outputs)
    for i in range(0, replay.n, 5):
        w = np.ones(replay.n)
        w[i] = 1 + 1e-7
        up, _ = replay.run(w)
        w[i] = 1 - 1e-7
        down, _ = replay.run(w)
        fd = (replay.log_likelihoods(up.theta, outputs) - replay.log_likelihoods(down.theta, outputs)).numpy() / 2e-7
        np.testing.assert_allclose(g[:, i], fd, rtol=2e-2, atol=1e-3 * np.abs(g).max())


def test_the_evaluation_method_is_cached_per_run_and_refuses_another_run(tmp_path):
    """`evaluate --methods metagradient` on a built run folder (trained with the fused attention): piece scores of
    the sampled outputs, read back from RUN/evaluation/metagradient.npz on the next call, refused with the fix when
    the final weights are not those of the recorded run."""
    from attribution.evaluation.metagradient import cached_metagradient
    from attribution.retrain import load_run_inputs

    from .test_retrain import make_synthetic_run

    run = make_synthetic_run(tmp_path / "run", steps=12, n_outputs=3)
    inputs = load_run_inputs(run)
    pieces, res = cached_metagradient(run, inputs, {"outputs": 1})
    scored = res.facts["outputs_scored"]
    assert pieces.shape == (3, inputs.n_pieces) and len(scored) == 1 and np.isfinite(pieces[scored]).all()
    assert np.isnan(np.delete(pieces, scored, axis=0)).all()
    np.testing.assert_allclose(pieces[scored].sum(), res.scores[scored].sum())  # pieces sum their windows
    assert 0 < res.facts["replay"]["relative_weight_diff"] < 1e-4  # fused training, explicit replay
    again, cached = cached_metagradient(run, inputs, {"outputs": 1})
    assert cached.seconds == res.seconds and np.array_equal(again, pieces, equal_nan=True)
    ckpt = run / "model" / "ckpt_000012.pt"
    state = torch.load(ckpt, weights_only=True)
    state["model"] = {k: v * 1.1 for k, v in state["model"].items()}
    torch.save(state, ckpt)
    with pytest.raises(ValueError, match="leave metagradient out of --methods"):
        cached_metagradient(run, inputs, {"outputs": 1})
