"""Change each input of an attribution build and check that nothing stale is reused, and that a refused
build leaves its folder byte-identical (issue 13, findings 1 and 4)."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml

from attribution.errors import RunFolderError
from tests.attribution.catalogue import build, folder_digest, transpose, write_config


def _scores(run):
    return pd.read_parquet(run / "attribution.parquet").sort_values(["method", "output_id", "train_id"])


def test_an_edited_piece_is_refused_untouched_and_force_rebuilds_like_a_freshbuild(work):
    run = work / "run"
    transpose(work / "ada_0.mid")  # same rhythm, other pitches: the same number of windows
    before = folder_digest(run)
    refused = build(work / "cfg.yaml", run)
    assert refused.exit_code == 2
    assert "training data differ" in refused.output and "--force" in refused.output and str(run / "model") in refused.output
    assert "Traceback" not in refused.output
    assert folder_digest(run) == before  # nothing written: not windows.npz, not heldout.parquet

    forced = build(work / "cfg.yaml", run, "--force")
    assert forced.exit_code == 0, forced.output
    fresh = build(work / "cfg.yaml", work / "fresh")
    assert fresh.exit_code == 0, fresh.output
    a, b = _scores(run), _scores(work / "fresh")
    assert a[["method", "output_id", "train_id"]].equals(b[["method", "output_id", "train_id"]])
    np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), rtol=1e-5, atol=1e-7)
    recorded = yaml.safe_load((run / "config.yaml").read_text())["inputs"]["windows_sha256"]
    assert recorded == yaml.safe_load((run / "model" / "train_config.yaml").read_text())["windows_sha256"]
    assert not (run / ".staging").exists()

    checkpoints = {p.name: p.read_bytes() for p in (run / "model").glob("*.pt")}
    again = build(work / "cfg.yaml", run)  # the same inputs: the model is reused as it is
    assert again.exit_code == 0, again.output
    assert {p.name: p.read_bytes() for p in (run / "model").glob("*.pt")} == checkpoints


@pytest.mark.parametrize(
    "section, key, value, named",
    [
        ("train", "steps", 31, "train.steps 30 -> 31"),
        ("model", "d_model", 32, "model.d_model 16 -> 32"),
        ("split", "seed", 3, "training data differ"),
        ("tokenizer", "time_step", 0.02, "training data differ"),
    ],
)
def test_a_changed_config_value_is_refused_before_anything_is_written(work, section, key, value, named):
    run = work / "run"
    cfg = write_config(work, **{section: {key: value}})
    before = folder_digest(run)
    result = build(cfg, run)
    assert result.exit_code == 2, result.output
    assert named in result.output and "Nothing was written" in result.output
    assert folder_digest(run) == before


def test_another_torch_version_does_not_reuse_the_model(work, monkeypatch):
    import attribution.train as T

    real = T.code_versions
    monkeypatch.setattr(T, "code_versions", lambda: {**real(), "torch": "0.0.1"})
    before = folder_digest(work / "run")
    result = build(work / "cfg.yaml", work / "run")
    assert result.exit_code == 2 and "torch" in result.output and "0.0.1" in result.output
    assert folder_digest(work / "run") == before


def test_traker_store_is_keyed_to_traker_and_torch_versions(tmp_path, monkeypatch):
    import importlib.metadata

    from attribution.scoring import TrakConfig, cache_key

    ckpt = tmp_path / "ckpt_000001.pt"
    ckpt.write_bytes(b"weights")
    tokens = np.arange(12).reshape(3, 4)
    base = cache_key([ckpt], tokens, TrakConfig())
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda pkg: "9.9" if pkg == "traker" else real(pkg))
    assert cache_key([ckpt], tokens, TrakConfig()) != base
    monkeypatch.undo()
    assert cache_key([ckpt], tokens.reshape(4, 3), TrakConfig()) != base  # same bytes, other windows


def test_a_training_folder_refuses_other_data_and_another_drop_of_the_same_size(tmp_path):
    from attribution.model import ModelConfig
    from attribution.train import TrainConfig, train_model
    from attribution.windows import Windows, make_windows
    from tests.attribution.conftest import PAD, synthetic_pieces

    windows = make_windows(synthetic_pieces(4, seed=1), block_size=16, pad_id=PAD)
    mcfg = ModelConfig(block_size=16, n_layer=1, n_head=2, d_model=16, pad_id=PAD)
    tcfg = TrainConfig(steps=4, batch_size=4, warmup_steps=1, checkpoints=[1.0], eval_every=4, threads=1)
    drop = np.zeros(len(windows), bool)
    drop[0] = True
    train_model(windows, mcfg, tcfg, tmp_path / "m", progress=False, drop=drop)
    edited = Windows(np.where(windows.tokens < 60, windows.tokens + 1, windows.tokens), windows.piece, PAD)
    with pytest.raises(RunFolderError, match="training data differ"):
        train_model(edited, mcfg, tcfg, tmp_path / "m", progress=False, drop=drop)
    with pytest.raises(RunFolderError, match="training data differ"):
        train_model(windows, mcfg, tcfg, tmp_path / "m", progress=False, drop=np.roll(drop, 1))  # same count
    again = train_model(windows, mcfg, replace(tcfg, threads=2), tmp_path / "m", progress=False, drop=drop)
    assert again.seconds == 0.0  # the same inputs: reused


def test_music21_parse_cache_is_keyed_to_content_not_size_and_time(tmp_path):
    from attribution.corpus import load_music21_corpus
    from tests.attribution.test_corpus import scale_xml

    root = tmp_path / "corpus" / "alice"
    root.mkdir(parents=True)
    path = root / "a.xml"
    path.write_text(scale_xml(12, "A"))
    kwargs = dict(corpus_root=tmp_path / "corpus", cache_dir=tmp_path / "cache", workers=1, progress=False)
    first, _ = load_music21_corpus(["alice"], **kwargs)
    stat = path.stat()
    text = path.read_text()
    edited = text.replace("<step>C</step>", "<step>D</step>", 1)  # one pitch, same size
    assert edited != text and len(edited) == len(text)
    path.write_text(edited)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again, report = load_music21_corpus(["alice"], **kwargs)
    assert report.parsed == 1 and report.from_cache == 0
    assert not np.array_equal(first[0].notes, again[0].notes)
