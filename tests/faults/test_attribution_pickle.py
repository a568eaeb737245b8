"""A run folder cannot execute code: planted pickles are refused, never unpickled (issue 13, finding 2)."""

from __future__ import annotations


import pytest
import torch

from attribution.errors import CheckpointError
from tests.attribution.catalogue import build, folder_digest, plant_pickle


@pytest.mark.parametrize("planted", ["last.pt", "ckpt_000030.pt", "ckpt_000015.pt"])
def test_a_planted_checkpoint_is_refused_with_a_message_and_never_run(work, planted):
    marker = work / "PWNED"
    plant_pickle(work / "run" / "model" / planted, marker)
    before = folder_digest(work / "run")
    result = build(work / "cfg.yaml", work / "run")
    assert result.exit_code == 2, result.output
    assert planted in result.output and "not only weights" in result.output and "Traceback" not in result.output
    assert not marker.exists()
    assert folder_digest(work / "run") == before  # refused before anything was written


def test_what_the_project_writes_loads_safely_and_a_planted_checkpoint_does_not(work):
    from attribution.model import MusicTransformer
    from attribution.scoring import TrakConfig, compute_gradient_scores
    from attribution.train import load_checkpoint, load_model

    # every checkpoint the project writes (weights, model_config, step, optimiser state, losses) is plain data
    files = sorted((work / "run" / "model").glob("*.pt"))
    assert {f.name for f in files} == {"last.pt", "ckpt_000015.pt", "ckpt_000030.pt"}
    for path in files:
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert isinstance(state["step"], int) and isinstance(state["model_config"], dict)
        assert load_checkpoint(path).keys() == state.keys()
    assert isinstance(load_checkpoint(work / "run" / "model" / "last.pt")["train_loss"], float)

    marker = work / "PWNED"
    ckpt = work / "run" / "model" / "ckpt_000030.pt"
    model = load_model(ckpt)
    plant_pickle(ckpt, marker)
    with pytest.raises(CheckpointError, match="not only weights"):
        load_model(ckpt)
    with pytest.raises(CheckpointError):
        load_checkpoint(ckpt)
    tokens = torch.zeros(20, 33, dtype=torch.long).numpy()
    with pytest.raises(CheckpointError):
        compute_gradient_scores(MusicTransformer(model.config), [ckpt], tokens, tokens[:2], TrakConfig(proj_dim=4),
                                work / "trak", progress=False)
    assert not marker.exists()


def test_a_truncated_checkpoint_is_a_message(work):
    last = work / "run" / "model" / "last.pt"
    last.write_bytes(last.read_bytes()[:300])
    result = build(work / "cfg.yaml", work / "run")
    assert result.exit_code == 2 and "not a readable checkpoint" in result.output and "Traceback" not in result.output
