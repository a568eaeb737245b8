from dataclasses import replace

import numpy as np
import torch

from attribution.model import ModelConfig, MusicTransformer, event_log_probs, sequence_log_likelihood
from attribution.train import TrainConfig, evaluate_loss, load_model, train_model, unigram_loss
from attribution.windows import make_windows

from .conftest import PAD, synthetic_pieces


def test_forward_shapes_and_loss_ignores_pad():
    cfg = ModelConfig(block_size=16, n_layer=1, n_head=2, d_model=16, pad_id=PAD)
    model = MusicTransformer(cfg)
    idx = torch.randint(0, 300, (3, 16))
    targets = idx.clone()
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 16, cfg.vocab_size)
    targets_padded = targets.clone()
    targets_padded[:, 8:] = PAD
    _, loss_half = model(idx, targets_padded)
    manual = torch.nn.functional.cross_entropy(logits[:, :8].reshape(-1, cfg.vocab_size), targets[:, :8].reshape(-1))
    assert torch.allclose(loss_half, manual, atol=1e-6)


def test_sequence_log_likelihood_is_sum_of_event_log_probs():
    cfg = ModelConfig(block_size=16, n_layer=1, n_head=2, d_model=16, pad_id=PAD)
    model = MusicTransformer(cfg).eval()
    seq = torch.randint(0, 300, (2, 17))
    ll = sequence_log_likelihood(model, seq)
    logits, _ = model(seq[:, :-1])
    per_event = event_log_probs(logits, seq[:, 1:], PAD)
    assert torch.allclose(ll, per_event.sum(-1))
    # causal: the log-prob of event t does not depend on later events
    seq2 = seq.clone()
    seq2[:, 10:] = 5
    logits2, _ = model(seq2[:, :-1])
    assert torch.allclose(event_log_probs(logits2, seq2[:, 1:], PAD)[:, :9], per_event[:, :9], atol=1e-6)


def test_windows_cover_every_event_once():
    pieces = synthetic_pieces(4)
    w = make_windows(pieces, block_size=16, pad_id=PAD)
    assert w.n_events == sum(len(p) - 1 for p in pieces)
    assert set(w.piece) == {0, 1, 2, 3}
    sub = w.subset(np.array([True, False, True, False]))
    assert set(sub.piece) == {0, 2}


def test_training_beats_unigram_and_writes_checkpoints(tiny_run):
    result, windows = tiny_run["result"], tiny_run["windows"]
    assert [p.name for p in result.checkpoints] == ["ckpt_000040.pt", "ckpt_000080.pt"]
    model = load_model(result.checkpoints[-1])
    assert evaluate_loss(model, windows) < unigram_loss(windows, windows, model.config.vocab_size) - 0.5
    assert (result.folder / "train_config.yaml").is_file()


def test_training_resumes_exactly(tmp_path, monkeypatch):
    import pytest

    import attribution.train as T

    windows = make_windows(synthetic_pieces(6, seed=3), block_size=16, pad_id=PAD)
    mcfg = ModelConfig(block_size=16, n_layer=1, n_head=2, d_model=16, pad_id=PAD)
    tcfg = TrainConfig(steps=30, batch_size=4, warmup_steps=3, checkpoints=[1.0], eval_every=10, save_every=10)
    straight = train_model(windows, mcfg, tcfg, tmp_path / "straight", progress=False)

    class Interrupted(Exception):
        pass

    real_save = T._save

    def save_then_interrupt(path, model, cfg, step, *args, **kw):
        real_save(path, model, cfg, step, *args, **kw)
        if path.name == "last.pt" and step == 20:
            raise Interrupted

    monkeypatch.setattr(T, "_save", save_then_interrupt)
    with pytest.raises(Interrupted):
        train_model(windows, mcfg, tcfg, tmp_path / "resumed", progress=False)
    monkeypatch.setattr(T, "_save", real_save)
    assert not (tmp_path / "resumed" / "DONE").exists()
    # resumed on another thread count: the recipe is the same, so the folder is accepted
    resumed = train_model(windows, mcfg, replace(tcfg, threads=1), tmp_path / "resumed", progress=False)
    a = torch.load(straight.checkpoints[-1], weights_only=True)["model"]
    b = torch.load(resumed.checkpoints[-1], weights_only=True)["model"]
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_dropping_nothing_is_training_on_everything_and_dropping_keeps_the_batch_order(tmp_path):
    windows = make_windows(synthetic_pieces(6, seed=3), block_size=16, pad_id=PAD)
    mcfg = ModelConfig(block_size=16, n_layer=1, n_head=2, d_model=16, pad_id=PAD)
    tcfg = TrainConfig(steps=12, batch_size=4, warmup_steps=3, checkpoints=[1.0], eval_every=12, threads=1)
    plain = train_model(windows, mcfg, tcfg, tmp_path / "plain", progress=False)
    none = train_model(windows, mcfg, tcfg, tmp_path / "none", progress=False, drop=np.zeros(len(windows), bool))
    a = torch.load(plain.checkpoints[-1], weights_only=True)["model"]
    b = torch.load(none.checkpoints[-1], weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # dropping one piece's windows: a different model, and the run refuses a folder trained with another drop
    drop = windows.piece == 0
    some = train_model(windows, mcfg, tcfg, tmp_path / "some", progress=False, drop=drop)
    c = torch.load(some.checkpoints[-1], weights_only=True)["model"]
    assert not all(torch.equal(a[k], c[k]) for k in a)
    everything = train_model(windows, mcfg, tcfg, tmp_path / "everything", progress=False, drop=np.ones(len(windows), bool))
    d = torch.load(everything.checkpoints[-1], weights_only=True)["model"]
    torch.manual_seed(tcfg.seed)
    init = MusicTransformer(mcfg).state_dict()  # every batch dropped: no update, the initial weights
    assert all(torch.equal(init[k], d[k]) for k in init)
    import pytest

    with pytest.raises(ValueError, match="different config"):
        train_model(windows, mcfg, tcfg, tmp_path / "some", progress=False, drop=~drop)
    with pytest.raises(ValueError, match="one flag per window"):
        train_model(windows, mcfg, tcfg, tmp_path / "bad", progress=False, drop=np.zeros(3, bool))


def test_training_refuses_a_folder_with_another_config(tmp_path, tiny_run):
    import pytest

    other = TrainConfig(steps=5, batch_size=4, checkpoints=[1.0])
    with pytest.raises(ValueError, match="different config"):
        train_model(tiny_run["windows"], tiny_run["model_config"], other, tiny_run["result"].folder, progress=False)


def test_cached_decoding_matches_the_full_forward():
    torch.manual_seed(0)
    cfg = ModelConfig(block_size=24, n_layer=2, n_head=2, d_model=16, pad_id=PAD)
    model = MusicTransformer(cfg).eval()
    seq = torch.randint(0, 300, (3, 20))
    full, _ = model(seq)
    cache = [[] for _ in model.blocks]
    stepwise = [model.next_logits(seq[:, :5], cache)]
    stepwise += [model.next_logits(seq[:, t : t + 1], cache) for t in range(5, 20)]
    torch.testing.assert_close(torch.stack(stepwise, 1), full[:, 4:], atol=1e-5, rtol=1e-5)


def test_sampling_is_seeded_and_uses_only_allowed_tokens(tiny_run):
    from attribution.generate import sample

    model = load_model(tiny_run["result"].checkpoints[-1])
    a = sample(model, 3, 20, bos_id=389, top_k=5, seed=11, banned=[388, 389, 390])
    b = sample(model, 3, 20, bos_id=389, top_k=5, seed=11, banned=[388, 389, 390])
    assert (a == b).all() and a.shape == (3, 20) and (a[:, 0] == 389).all()
    assert not np.isin(a[:, 1:], [388, 389, 390]).any()


def test_fused_attention_is_the_same_function_as_the_explicit_form():
    torch.manual_seed(0)
    cfg = ModelConfig(block_size=24, n_layer=2, n_head=2, d_model=16, pad_id=PAD)
    model = MusicTransformer(cfg)
    seq = torch.randint(0, 300, (3, 21))
    _, explicit = model(seq[:, :-1], seq[:, 1:])
    g_explicit = torch.autograd.grad(explicit, list(model.parameters()))
    model.use_fused_attention(True)
    _, fused = model(seq[:, :-1], seq[:, 1:])
    g_fused = torch.autograd.grad(fused, list(model.parameters()))
    assert torch.allclose(explicit, fused, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_explicit, g_fused))
    # and the flag is how the model computes, not what it is: the state dict is unchanged
    assert set(model.state_dict()) == set(MusicTransformer(cfg).state_dict())


def test_attention_option_is_checked_and_old_folders_count_as_explicit(tmp_path):
    import pytest
    import yaml

    with pytest.raises(ValueError, match="train.attention is 'flash'"):
        TrainConfig(attention="flash")
    windows = make_windows(synthetic_pieces(4, seed=1), block_size=16, pad_id=PAD)
    mcfg = ModelConfig(block_size=16, n_layer=1, n_head=2, d_model=16, pad_id=PAD)
    tcfg = TrainConfig(steps=4, batch_size=4, warmup_steps=1, checkpoints=[1.0], eval_every=4, attention="explicit")
    train_model(windows, mcfg, tcfg, tmp_path / "old", progress=False)
    # a folder written before the option existed has no `attention` key: it was trained in explicit form
    path = tmp_path / "old" / "train_config.yaml"
    written = yaml.safe_load(path.read_text())
    del written["train"]["attention"]
    path.write_text(yaml.safe_dump(written, sort_keys=False))
    train_model(windows, mcfg, tcfg, tmp_path / "old", progress=False)  # accepted: the same recipe
    with pytest.raises(ValueError, match="different config"):
        train_model(windows, mcfg, replace(tcfg, attention="fused"), tmp_path / "old", progress=False)
