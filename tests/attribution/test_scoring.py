"""TRAK through traker against a brute-force computation of the same formula, additivity, and sanity."""

import numpy as np
import pytest
import torch
from trak.projectors import BasicProjector, ProjectionType

from attribution.model import MusicTransformer, sequence_log_likelihood

from .conftest import PAD
from attribution.scoring import (
    TrakConfig,
    cache_key,
    compute_gradient_scores,
    event_margins,
    open_feature_store,
    score_experiment,
    score_experiments,
)


def _margin_and_q(model, seq):
    """Sum of per-event margins log p_t - log(1 - p_t) over a sequence, computed from probabilities, and the
    mean 1 - p_t over its events (the window's Q)."""
    logits, _ = model(torch.as_tensor(seq)[None, :-1])
    p = torch.softmax(logits.double(), -1)[0].gather(-1, torch.as_tensor(seq)[1:, None])[:, 0]
    return (torch.log(p) - torch.log1p(-p)).sum(), float((1 - p).mean().detach())


def _brute_force_trak(model_config, checkpoints, train_tokens, target_tokens, cfg: TrakConfig):
    """The TRAK estimator written out by hand with plain autograd, one example at a time.

    For each checkpoint k: X_k = G_train P_k / sqrt(n_params), x_k = g_target P_k / sqrt(n_params);
    tau_k = x_k (X_k^T X_k + lambda I)^{-1} X_k^T (traker rescales the inverse by its mean absolute
    entry); TRAK = mean over k of tau_k, times Q = 1 for the log-likelihood output, and times each training
    window's Q (mean 1 - p_t over its events) averaged over checkpoints for the margin output.
    """
    model = MusicTransformer(model_config)
    n_params = sum(p.numel() for p in model.parameters())
    total, q_sum = 0, 0
    for k, ckpt in enumerate(checkpoints):
        model.load_state_dict(torch.load(ckpt, weights_only=True)["model"])
        model.eval()

        def grads(tokens):
            rows = []
            for seq in tokens:
                model.zero_grad()
                if cfg.output == "margin":
                    _margin_and_q(model, seq)[0].backward()
                else:
                    sequence_log_likelihood(model, torch.as_tensor(seq)[None]).sum().backward()
                rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
            return torch.stack(rows).double()

        proj = BasicProjector(
            grad_dim=n_params, proj_dim=cfg.proj_dim, seed=cfg.projector_seed, proj_type=ProjectionType.normal,
            device="cpu", block_size=cfg.proj_dim, dtype=torch.float32, model_id=k,
        ).proj_matrix.double()
        X = grads(train_tokens) @ proj / np.sqrt(n_params)
        x = grads(target_tokens) @ proj / np.sqrt(n_params)
        inv = torch.linalg.inv(X.T @ X + cfg.lambda_reg * torch.eye(cfg.proj_dim, dtype=torch.float64))
        inv = inv / inv.abs().mean()
        total = total + x @ (X @ inv).T
        with torch.no_grad():
            q_sum = q_sum + (np.array([_margin_and_q(model, seq)[1] for seq in train_tokens])
                             if cfg.output == "margin" else 1.0)
    return (total / len(checkpoints)).numpy() * (q_sum / len(checkpoints))


def test_trak_matches_brute_force(tiny_run, tmp_path):
    w = tiny_run["windows"]
    targets = w.tokens[[1, 4, 7]]
    cfg = TrakConfig(proj_dim=12, batch_size=8, segment_events=5)
    ckpts = tiny_run["result"].checkpoints
    got = compute_gradient_scores(
        MusicTransformer(tiny_run["model_config"]), ckpts, w.tokens, targets, cfg, tmp_path, progress=False
    )
    expected = _brute_force_trak(tiny_run["model_config"], ckpts, w.tokens, targets, cfg)
    np.testing.assert_allclose(got.methods["trak"], expected, rtol=2e-3, atol=2e-3 * np.abs(expected).max())
    expected_last = _brute_force_trak(tiny_run["model_config"], ckpts[-1:], w.tokens, targets, cfg)
    # the single-checkpoint estimate uses model id 1's projection, as in the ensemble
    assert got.methods["trak_1ckpt"].shape == expected_last.shape
    assert np.corrcoef(got.methods["trak"].ravel(), expected.ravel())[0, 1] > 0.999


def test_trak_with_the_per_event_margin_output_matches_brute_force(tiny_run, tmp_path):
    w = tiny_run["windows"]
    full = w.tokens[:, -1] != PAD  # the hand formula has no PAD handling: windows with every event counted
    train = w.tokens[full]
    targets = train[[1, 4, 7]]
    cfg = TrakConfig(proj_dim=12, batch_size=8, segment_events=5, output="margin")
    ckpts = tiny_run["result"].checkpoints
    got = compute_gradient_scores(MusicTransformer(tiny_run["model_config"]), ckpts, train, targets, cfg, tmp_path,
                                  progress=False)
    expected = _brute_force_trak(tiny_run["model_config"], ckpts, train, targets, cfg)
    np.testing.assert_allclose(got.methods["trak"], expected, rtol=2e-3, atol=2e-3 * np.abs(expected).max())
    loglik = compute_gradient_scores(MusicTransformer(tiny_run["model_config"]), ckpts, train, targets,
                                     TrakConfig(proj_dim=12, batch_size=8, segment_events=5), tmp_path, progress=False)
    assert not np.allclose(loglik.methods["trak"], got.methods["trak"])  # another function, other scores
    np.testing.assert_allclose(got.segments.sum(axis=1), got.methods["trak"], rtol=1e-4, atol=1e-5)  # additive too


def test_margins_are_log_odds_zero_at_pad_and_an_unknown_output_is_refused():
    logits = torch.randn(2, 5, 7, dtype=torch.float64)
    targets = torch.tensor([[0, 3, 5, 1, 2], [4, 4, 6, 6, 6]])  # 6 is PAD here
    p = torch.softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    want = (torch.log(p) - torch.log1p(-p)) * (targets != 6)
    assert torch.allclose(event_margins(logits, targets, pad_id=6), want)
    with pytest.raises(ValueError, match="trak.output"):
        TrakConfig(output="probability")


def test_per_event_scores_add_up_to_the_sequence_score(tiny_run, tmp_path):
    w = tiny_run["windows"]
    targets = w.tokens[[0, 3]]
    cfg = TrakConfig(proj_dim=12, batch_size=16, segment_events=1)
    got = compute_gradient_scores(
        MusicTransformer(tiny_run["model_config"]), tiny_run["result"].checkpoints, w.tokens, targets, cfg,
        tmp_path, progress=False,
    )
    assert got.segments.shape == (2, targets.shape[1] - 1, len(w))
    np.testing.assert_allclose(got.segments.sum(axis=1), got.methods["trak"], rtol=1e-4, atol=1e-5)


def test_experiments_scored_together_equal_separate_calls_with_one_projection_per_checkpoint(
    tiny_run, tmp_path, monkeypatch
):
    w = tiny_run["windows"]
    cfg = TrakConfig(proj_dim=12, batch_size=4)
    ckpts = tiny_run["result"].checkpoints
    store = open_feature_store(MusicTransformer(tiny_run["model_config"]), ckpts, w.tokens, cfg, tmp_path,
                               progress=False)
    t = torch.as_tensor(w.tokens[[0, 5, 6]], dtype=torch.long)
    whole = (t, torch.zeros(3, dtype=torch.long), torch.full((3,), t.shape[1] - 1, dtype=torch.long))
    part = (t[[0, 0, 2]], torch.tensor([0, 4, 2]), torch.tensor([4, 9, 3]))
    separate = {"a": score_experiment(store, "a", whole, 4, False), "b": score_experiment(store, "b", part, 4, False)}

    made = []
    original = BasicProjector.generate_sketch_matrix
    monkeypatch.setattr(BasicProjector, "generate_sketch_matrix",
                        lambda self, state: made.append(self.model_id) or original(self, state))
    together = score_experiments(store, {"a": whole, "b": part}, 4, False)
    assert len(made) == len(ckpts)  # not once per checkpoint and experiment
    for exp in ("a", "b"):
        for got, want in zip(together[exp], separate[exp]):
            np.testing.assert_array_equal(got, want)


def test_a_copied_piece_ranks_first(tiny_run, tmp_path):
    """An output copied from a training window: that window's piece gets the top TRAK score."""
    w = tiny_run["windows"]
    copied = [2, 9, 15]
    cfg = TrakConfig(proj_dim=16, batch_size=16)
    got = compute_gradient_scores(
        MusicTransformer(tiny_run["model_config"]), tiny_run["result"].checkpoints, w.tokens, w.tokens[copied], cfg,
        tmp_path, progress=False,
    )
    n_pieces = int(w.piece.max()) + 1
    for method in ("trak", "trak_1ckpt", "tracin", "grad_dot", "grad_cos"):
        per_piece = np.zeros((len(copied), n_pieces))
        np.add.at(per_piece, (slice(None), w.piece), got.methods[method])
        assert list(per_piece.argmax(1)) == list(w.piece[copied]), method


def test_singular_projection_is_a_clear_error(tiny_run, tmp_path):
    w = tiny_run["windows"]
    with pytest.raises(ValueError, match="proj_dim"):
        compute_gradient_scores(
            MusicTransformer(tiny_run["model_config"]), tiny_run["result"].checkpoints, w.tokens, w.tokens[:1],
            TrakConfig(proj_dim=len(w) + 1), tmp_path, progress=False,
        )


def test_cache_key_changes_with_model_data_and_settings(tiny_run):
    w = tiny_run["windows"]
    ckpts = tiny_run["result"].checkpoints
    base = cache_key(ckpts, w.tokens, TrakConfig())
    assert cache_key(ckpts[:1], w.tokens, TrakConfig()) != base
    assert cache_key(ckpts, w.tokens[:-1], TrakConfig()) != base
    assert cache_key(ckpts, w.tokens, TrakConfig(proj_dim=8)) != base
    assert cache_key(ckpts, w.tokens, TrakConfig()) == base
    assert cache_key(ckpts, w.tokens, TrakConfig(output="margin")) != base
