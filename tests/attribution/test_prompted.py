"""`royaltysim attribution generate` on a tiny built run: seeded, prompt kept, MIDI = tokens, clear errors."""

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from attribution.generate import sample
from attribution.midi import read_midi
from attribution.prompted import generate_from_run, load_run_model, prompt_tokens
from royaltysim.cli import app
from tests.attribution.catalogue import write_catalogue, write_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run built from the test catalogue (context: 32 events)."""
    from attribution.build import build
    from attribution.config import load_build_config

    root = tmp_path_factory.mktemp("prompted")
    write_catalogue(root)
    build(load_build_config(write_config(root)), root / "run", progress=False)
    return root


def _gen(run, tmp_path, *args):
    return CliRunner().invoke(app, ["attribution", "generate", str(run / "run"), "-q", *args])


def test_generate_is_seeded_keeps_the_prompt_and_writes_what_it_scores(run, tmp_path):
    prompt = run / "ada_0.mid"
    args = ["--prompt", str(prompt), "--prompt-seconds", "1", "--events", "12", "--n", "3"]
    a = _gen(run, tmp_path, *args, "--seed", "4", "--out", str(tmp_path / "a"))
    b = _gen(run, tmp_path, *args, "--seed", "4", "--out", str(tmp_path / "b"))
    c = _gen(run, tmp_path, *args, "--seed", "5", "--out", str(tmp_path / "c"))
    assert a.exit_code == b.exit_code == c.exit_code == 0, a.output
    _, tok, _ = load_run_model(run / "run")
    head = prompt_tokens(prompt, tok, seconds=1.0)
    pieces = pd.read_parquet(tmp_path / "a" / "pieces.parquet")
    assert list(pieces["piece_id"]) == ["gen000", "gen001", "gen002"]
    seqs = {k: [np.load(tmp_path / k / f"gen00{i}.npy") for i in range(3)] for k in "abc"}
    assert all(np.array_equal(x, y) for x, y in zip(seqs["a"], seqs["b"]))
    assert not all(np.array_equal(x, y) for x, y in zip(seqs["a"], seqs["c"]))
    for seq, row in zip(seqs["a"], pieces.itertuples()):
        assert len(seq) == len(head) + 12 and row.prompt_events == len(head) - 1
        assert np.array_equal(seq[: len(head)], head)  # the prompt, verbatim, BOS first
        notes, endings = tok.decode(seq, with_endings=True)
        assert "end" not in set(endings)  # the default decoder closes every note
        midi = read_midi(tmp_path / "a" / row.midi, sustain=False)  # the MIDI is the tokens' decode
        assert midi.shape == notes.shape and np.allclose(midi[:, :3], notes[:, :3], atol=0.002)
    meta = yaml.safe_load((tmp_path / "a" / "generation.yaml").read_text())
    assert meta["seed"] == 4 and meta["prompt"]["events"] == len(head) - 1 and len(meta["prompt"]["sha256"]) == 64
    assert meta["max_note_seconds"] == 4.0 and meta["close_notes_at_end"] is True


def test_plain_generation_samples_as_the_build_does(run, tmp_path):
    g = generate_from_run(run / "run", events=20, n=2, seed=9, out=tmp_path / "p", max_note_seconds=None,
                          close_notes_at_end=False)
    model, tok, _ = load_run_model(run / "run")
    expected = sample(model, 2, 21, tok.bos_id, top_k=10, seed=9, banned=[tok.pad_id, tok.bos_id, tok.eos_id])
    assert np.array_equal(g.tokens, expected)
    assert g.settings["prompt"] is None and (g.pieces["forced_events"] == 0).all()


def test_default_folder_is_inside_the_run_and_a_rerun_needs_force(run):
    first = _gen(run, None, "--events", "8", "--n", "1", "--seed", "3")
    assert first.exit_code == 0, first.output
    folder = run / "run" / "generated" / "bos-s3"
    assert (folder / "gen000.mid").is_file()
    again = _gen(run, None, "--events", "8", "--n", "1", "--seed", "3")
    assert again.exit_code == 2 and "--force" in again.output
    assert _gen(run, None, "--events", "8", "--n", "1", "--seed", "3", "--force").exit_code == 0


def test_bad_prompts_and_settings_exit_2_with_the_fix(run, tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file")
    r = _gen(run, tmp_path, "--prompt", str(bad), "--out", str(tmp_path / "x"))
    assert r.exit_code == 2 and "bad.mid" in r.output and "readable .mid" in r.output
    long = _gen(run, tmp_path, "--prompt", str(run / "ada_0.mid"), "--events", "10", "--out", str(tmp_path / "y"))
    assert long.exit_code == 2 and "context is 32 events" in long.output and "--prompt-seconds" in long.output
    many = _gen(run, tmp_path, "--events", "40", "--out", str(tmp_path / "z"))
    assert many.exit_code == 2 and "lower --events to 32" in many.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_quality_command_on_generated_pieces(run, tmp_path):
    assert _gen(run, tmp_path, "--events", "24", "--n", "3", "--seed", "1", "--out", str(tmp_path / "g")).exit_code == 0
    r = CliRunner().invoke(app, ["attribution", "quality", str(run / "run"), "--pieces", str(tmp_path / "g"),
                                 "--reference", str(tmp_path / "ref")])
    assert r.exit_code == 2 and "no reference model" in r.output
    r = CliRunner().invoke(app, ["attribution", "quality", str(run / "run"), "--pieces", str(tmp_path / "g"),
                                 "--reference", str(tmp_path / "ref"), "--train-reference", "--own", "--out", str(tmp_path / "q.csv")])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "q.csv").set_index("metric")
    assert table.loc["hanging notes (share)", "pieces"] == 0 and table.loc["pieces", "pieces"] == 3
    for label in ("reference", "own model"):
        assert table.loc[f"log-likelihood per event, {label}"].lt(0).all()
    assert (tmp_path / "ref" / "DONE").is_file()
    empty = CliRunner().invoke(app, ["attribution", "quality", str(run / "run"), "--pieces", str(tmp_path)])
    assert empty.exit_code == 2 and "no token files" in empty.output
