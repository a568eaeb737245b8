"""The whole attribution build on a tiny MIDI catalogue the test writes itself, through the CLI."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from attribution.midi import write_midi
from attribution.table import AttributionTable
from royaltysim.cli import app
from tests.attribution.catalogue import TINY_CONFIG


def _catalogue(folder, n_per_creator=3):
    rng = np.random.default_rng(0)
    rows = []
    for creator, base in (("ada", 60), ("bo", 55), ("cy", 67)):
        for k in range(n_per_creator):
            motif = base + rng.choice([0, 2, 4, 5, 7, 9, 11, 12], size=6)
            pitches = np.tile(motif, 5)
            t = np.arange(len(pitches)) * 0.25
            notes = np.stack([pitches, t, t + 0.2, np.full(len(t), 80)], axis=1).astype(float)
            path = folder / f"{creator}_{k}.mid"
            write_midi(notes, path)
            rows.append({"path": path.name, "creator": creator, "title": f"{creator} {k}"})
    (folder / "broken.mid").write_bytes(b"not a midi file")
    rows.append({"path": "broken.mid", "creator": "ada", "title": "broken"})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)


@pytest.fixture(scope="module")
def built_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalogue")
    _catalogue(root)
    cfg = {k: v for k, v in TINY_CONFIG.items() if k != "threads"}
    (root / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run = root / "run"
    result = CliRunner().invoke(app, ["attribution", "build", str(root / "cfg.yaml"), "--out", str(run), "-q"])
    assert result.exit_code == 0, result.output
    return run, result.output


def test_run_folder_holds_the_contract(built_run):
    run, output = built_run
    table = AttributionTable.load(run)
    assert set(table.methods) == {
        "trak", "trak_1ckpt", "tracin", "grad_dot", "grad_cos", "sim_pitch_hist", "sim_interval_ngram", "sim_embedding"
    }
    assert len(table.outputs) == 3 and len(table.corpus) == 6  # 9 pieces, 1 per creator held out
    assert len(pd.read_parquet(run / "heldout.parquet")) == 3
    assert table.scores.groupby("method").size().eq(3 * 6).all()
    assert np.isfinite(table.scores["score"]).all()
    for row in table.outputs.itertuples():
        assert (run / row.midi).is_file() and (run / row.tokens).is_file()
    shares = table.creator_shares("trak")
    assert np.allclose(shares.sum(axis=1), 1.0)
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["metrics"]["corpus"]["skipped_files"][0]["path"].endswith("broken.mid")
    assert set(resolved["stages"]) == {"corpus", "train", "generate", "trak", "similarity"}
    assert "torch" in resolved["versions"]
    assert "1 files skipped" in output


def test_passages_add_up_to_the_sequence_score(built_run):
    run, _ = built_run
    table = AttributionTable.load(run)
    passages = pd.read_parquet(run / "passages.parquet")
    summed = passages.groupby(["output_id", "train_id"])["score"].sum()
    trak = table.scores[table.scores.method == "trak"].set_index(["output_id", "train_id"])["score"]
    np.testing.assert_allclose(summed.reindex(trak.index), trak, rtol=1e-4, atol=1e-6)


def test_passages_command_names_the_sources(built_run):
    run, _ = built_run
    result = CliRunner().invoke(app, ["attribution", "passages", str(run), "out000", "--top", "1"])
    assert result.exit_code == 0, result.output
    assert "0-7" in result.output
    rows = AttributionTable.load(run).passage_sources("out000", top=1)
    assert len(rows) == 4 and rows["creator"].isin(["ada", "bo", "cy"]).all()
    bad = CliRunner().invoke(app, ["attribution", "passages", str(run), "nope"])
    assert bad.exit_code == 2 and "no passage scores" in bad.output


def test_rerun_reuses_training_and_features(built_run):
    run, _ = built_run
    before = {p.name: p.stat().st_mtime for p in (run / "model").glob("ckpt_*.pt")}
    result = CliRunner().invoke(app, ["attribution", "build", str(run.parent / "cfg.yaml"), "--out", str(run), "-q"])
    assert result.exit_code == 0, result.output
    after = {p.name: p.stat().st_mtime for p in (run / "model").glob("ckpt_*.pt")}
    assert before == after


def test_show_summarises_creators(built_run):
    run, _ = built_run
    result = CliRunner().invoke(app, ["attribution", "show", str(run)])
    assert result.exit_code == 0, result.output
    assert "ada" in result.output and "sim_embedding" in result.output


def test_bad_config_exits_with_the_errors(tmp_path):
    (tmp_path / "bad.yaml").write_text("model: {d_model: -4}\n")
    result = CliRunner().invoke(app, ["attribution", "build", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 2
    assert "model.d_model" in result.output


def test_economy_side_does_not_import_torch():
    code = "import sys, royaltysim, royaltysim.cli, attribution.table; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
