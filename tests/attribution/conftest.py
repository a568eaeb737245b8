"""Shared tiny fixtures for the attribution tests: synthetic token pieces and a briefly trained model."""

from __future__ import annotations

import numpy as np
import pytest

PAD, BOS, EOS = 388, 389, 390


def synthetic_pieces(n: int = 10, seed: int = 0) -> list[np.ndarray]:
    """Token sequences with learnable structure: each piece repeats its own short motif."""
    rng = np.random.default_rng(seed)
    pieces = []
    for _ in range(n):
        motif = rng.integers(0, 60, size=rng.integers(4, 9))
        body = np.tile(motif, 12)[: rng.integers(50, 90)]
        pieces.append(np.concatenate([[BOS], body, [EOS]]).astype(np.int64))
    return pieces


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny model trained on synthetic pieces, with two checkpoints."""
    from attribution.model import ModelConfig
    from attribution.train import TrainConfig, train_model
    from attribution.windows import make_windows

    pieces = synthetic_pieces()
    windows = make_windows(pieces, block_size=24, pad_id=PAD)
    mcfg = ModelConfig(block_size=24, n_layer=2, n_head=2, d_model=32, pad_id=PAD)
    tcfg = TrainConfig(steps=80, batch_size=8, warmup_steps=5, checkpoints=[0.5, 1.0], eval_every=40)
    folder = tmp_path_factory.mktemp("tiny_run")
    result = train_model(windows, mcfg, tcfg, folder / "model", val_windows=windows, progress=False)
    return {"pieces": pieces, "windows": windows, "model_config": mcfg, "train_config": tcfg,
            "result": result, "folder": folder}
