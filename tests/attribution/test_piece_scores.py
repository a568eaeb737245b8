"""Scoring new pieces against a built run (``royaltysim attribution score``), on the tiny MIDI catalogue.

The tiny model's context is 32 events and a catalogue piece has 121, so a copied training piece is
scored over several context windows.
"""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from attribution.errors import AttributionError, FeatureStoreError
from attribution.piece_scores import context_windows, score_pieces
from attribution.table import AttributionTable
from royaltysim.cli import app
from tests.attribution.catalogue import build, published_digest, write_catalogue, write_config

TRAK_FAMILY = ["trak", "trak_1ckpt", "tracin", "grad_dot", "grad_cos"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("score_catalogue")
    write_catalogue(root)
    run = root / "run"
    result = build(write_config(root), run)
    assert result.exit_code == 0, result.output
    return root, run


@pytest.fixture
def run_copy(built, tmp_path):
    """A private copy of the built run (tests that write or break it)."""
    root, run = built
    shutil.copytree(run, tmp_path / "run")
    return root, tmp_path / "run"


def _matrix(scores: pd.DataFrame, method: str) -> pd.DataFrame:
    rows = scores[scores["method"] == method]
    return rows.pivot(index="output_id", columns="train_id", values="score")


@pytest.mark.parametrize("n_events,block,stride", [(0, 32, 16), (5, 32, 16), (32, 32, 16), (33, 32, 16),
                                                   (121, 32, 16), (121, 32, 32), (121, 32, 7), (100, 8, 1)])
def test_context_windows_partition_the_events_and_fit_the_context(n_events, block, stride):
    windows = context_windows(n_events, block, stride)
    owned = [e for offset, start, end in windows for e in range(offset + start, offset + end)]
    assert owned == list(range(n_events))  # every event owned once, in order
    for offset, start, end in windows:
        assert offset >= 0 and 0 <= start < end <= block  # the owned targets fit the model's input
        if offset > 0:  # later windows: the last owned event closes the block, the first sees the context
            assert end == block and start >= block - stride
    if n_events <= block:
        assert windows == ([(0, 0, n_events)] if n_events else [])
    with pytest.raises(AttributionError, match="stride"):
        context_windows(10, block, block + 1)


def test_a_copied_training_piece_scores_its_piece_and_creator_first(run_copy, tmp_path):
    root, run = run_copy
    corpus = pd.read_parquet(run / "corpus.parquet")
    piece = corpus.iloc[1]  # a training piece (the split held one per creator out)
    copy = tmp_path / "suspicious tune.mid"
    shutil.copy(root / f"{piece.train_id}.mid", copy)
    result = score_pieces(run, [copy])
    (output_id,) = result.outputs["output_id"]
    assert output_id.startswith("suspicious-tune-")
    assert result.outputs["windows"].iloc[0] > 1  # longer than the 32-event context
    for method in ("trak", "sim_pitch_hist", "sim_interval_ngram"):
        row = _matrix(result.scores, method).loc[output_id]
        assert row.idxmax() == piece.train_id, (method, row.round(4).to_dict())
    table = AttributionTable.load(run, outputs="scored")
    assert table.creator_shares("trak").loc[output_id].idxmax() == piece.creator
    assert table.to_creators("sim_interval_ngram", how="max").loc[output_id].idxmax() == piece.creator
    # the tables of the build are untouched; the piece is found by the readers
    assert output_id not in AttributionTable.load(run).output_ids
    assert output_id in AttributionTable.load(run, outputs="all").output_ids
    assert not table.passage_sources(output_id).empty


def test_scores_add_up_over_windows_and_passages(run_copy):
    root, run = run_copy
    result = score_pieces(run, [root / "ada_0.mid", root / "cy_1.mid"])
    piece_cols = list(AttributionTable.load(run).corpus["train_id"])
    trak = _matrix(result.scores, "trak").reindex(index=result.outputs["output_id"], columns=piece_cols).to_numpy()
    windows = np.zeros_like(trak)
    np.add.at(windows, result.window_piece, result.window_scores)
    scale = np.abs(trak).max()
    assert np.allclose(windows, trak, rtol=0, atol=1e-6 * scale)  # the piece is the sum of its windows
    passages = result.passages.groupby(["output_id", "train_id"])["score"].sum().unstack()
    assert np.allclose(passages.reindex(index=result.outputs["output_id"], columns=piece_cols).to_numpy(), trak,
                       rtol=0, atol=1e-4 * scale)  # ... and of its passages (float32 on disk)
    assert result.passage_additivity_max_abs_error < 1e-4 * scale
    n_events = result.outputs["events"].to_numpy()
    assert (result.passages.groupby("output_id")["end_event"].max().reindex(result.outputs["output_id"]) == n_events).all()

    # without passages: the same piece scores (the same window targets), no passage rows, and the row says so
    whole = score_pieces(run, [root / "ada_0.mid", root / "cy_1.mid"], passages=False)
    again = _matrix(whole.scores, "trak").reindex(index=result.outputs["output_id"], columns=piece_cols).to_numpy()
    np.testing.assert_array_equal(again, trak)
    assert whole.passages.empty and not whole.outputs["passages"].any() and result.outputs["passages"].all()
    assert set(pd.read_parquet(run / "scored" / "passages.parquet")["output_id"]).isdisjoint(whole.outputs["output_id"])


def test_the_builds_outputs_rescored_match_the_build_and_pay_the_same(run_copy):
    """A piece within the context is one window: the build's own computation, and the economy pays alike."""
    from royaltysim.runner import run as run_scenario
    from tests.royaltysim.conftest import small_scenario

    _, run = run_copy
    build_table = AttributionTable.load(run)
    files = [run / t for t in build_table.outputs["tokens"]]
    result = score_pieces(run, files)
    assert (result.outputs["windows"] == 1).all()
    scored = AttributionTable.load(run, outputs="scored")
    for method in TRAK_FAMILY + ["sim_embedding"]:
        a, b = build_table.pivot(method).to_numpy(), scored.pivot(method).to_numpy()
        assert np.allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(a).max()), method
    for method in ("sim_pitch_hist", "sim_interval_ngram"):  # on the tokenised training pieces: the 10 ms grid
        a, b = build_table.pivot(method).to_numpy(), scored.pivot(method).to_numpy()
        assert np.abs(a - b).max() < 0.05, method

    outcomes = {}
    for outputs in ("build", "scored"):
        raw = small_scenario(run, source={"kind": "corpus", "run": str(run), "causal_method": "trak",
                                          "outputs": outputs})
        outcomes[outputs] = run_scenario(raw).creators.sort_values(["scheme", "seed", "step", "creator"])
    a, b = outcomes["build"], outcomes["scored"]
    money = [c for c in a.columns if a[c].dtype.kind == "f"]
    assert len(a) == len(b) and len(money) > 3
    assert np.allclose(a[money].to_numpy(), b[money].to_numpy(), rtol=1e-6, atol=1e-9, equal_nan=True)


def test_scoring_again_replaces_the_rows_and_never_touches_the_build(run_copy, tmp_path):
    root, run = run_copy
    before = published_digest(run)
    score_pieces(run, [root / "bo_0.mid"])
    renamed = tmp_path / "same content.mid"
    shutil.copy(root / "bo_0.mid", renamed)
    result = score_pieces(run, [renamed, root / "cy_0.mid"])
    outputs = pd.read_parquet(run / "scored" / "outputs.parquet")
    assert sorted(outputs["output_id"]) == sorted(result.outputs["output_id"])  # the old name's rows replaced
    scores = pd.read_parquet(run / "scored" / "attribution.parquet")
    assert set(scores["output_id"]) == set(outputs["output_id"])
    assert len(scores) == len(outputs) * scores["method"].nunique() * len(pd.read_parquet(run / "corpus.parquet"))
    assert sorted(p.stem for p in (run / "scored" / "outputs").glob("*.npy")) == sorted(outputs["output_id"])
    row = outputs.set_index("output_id").loc[result.outputs["output_id"].iloc[0]]
    assert len(row["file_sha256"]) == 64 and row["scored_at"].endswith("+00:00")
    settings = json.loads(row["settings"])
    assert settings["context"] == {"block_size": 32, "stride": 16} and settings["trak"]["proj_dim"] == 8
    assert row["trak_cache"] == yaml.safe_load((run / "config.yaml").read_text())["inputs"]["trak_cache"]
    assert np.load(run / row["tokens"])[0] == 389  # BOS first
    shutil.rmtree(run / "scored")
    assert published_digest(run) == before  # every build file, its cache excepted, is byte for byte what it was


def _break_config(run, key_path, value):
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    node = cfg
    for k in key_path[:-1]:
        node = node[k]
    node[key_path[-1]] = value
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


@pytest.mark.parametrize("breakage,expected", [
    ("no_cache", "no stored TRAK features"),
    ("other_key", "are not those its build scored with"),
    ("missing_checkpoint", "are missing from"),
    ("unfinalised", "no finalised features"),
])
def test_a_missing_or_mismatched_feature_store_is_refused_with_the_fix(run_copy, breakage, expected):
    root, run = run_copy
    store = next((run / "cache" / "trak").iterdir())
    if breakage == "no_cache":
        shutil.rmtree(run / "cache")
    elif breakage == "other_key":
        _break_config(run, ["inputs", "trak_cache"], "0123456789abcdef")
    elif breakage == "missing_checkpoint":
        sorted((run / "model").glob("ckpt_*.pt"))[0].unlink()
    else:
        for f in store.rglob("id_*.json"):
            ids = json.loads(f.read_text())
            f.write_text(json.dumps({k: {**v, "is_finalized": 0} for k, v in ids.items()}))
    with pytest.raises(FeatureStoreError, match=expected) as err:
        score_pieces(run, [root / "ada_0.mid"])
    assert "royaltysim attribution build" in str(err.value)
    assert not (run / "scored").exists()  # nothing was written


def test_cli_scores_and_refuses_bad_input_with_exit_2(run_copy, tmp_path):
    from attribution.midi import write_midi

    root, run = run_copy
    pages = tmp_path / "pages"
    ok = CliRunner().invoke(
        app, ["attribution", "score", str(run), str(root / "ada_0.mid"), "-q", "--out", str(pages), "--no-audio"]
    )
    assert ok.exit_code == 0, ok.output
    assert "context window(s)" in ok.output and "s per piece" in ok.output and "trak top creator ada" in ok.output
    (piece_page,) = [p for p in pages.glob("*.html") if p.name != "index.html"]  # the scored piece's Content ID page
    assert piece_page.stem in (pages / "index.html").read_text() and "ada" in piece_page.read_text()
    whole = CliRunner().invoke(app, ["attribution", "score", str(run), str(root / "bo_0.mid"), "-q", "--no-passages",
                                     "--no-page"])
    assert whole.exit_code == 0, whole.output
    scored = pd.read_parquet(run / "scored" / "outputs.parquet")
    assert scored["passages"].tolist() == [True, False]
    before = (run / "scored" / "outputs.parquet").read_bytes()

    (tmp_path / "broken.mid").write_bytes(b"not a midi file")
    write_midi(np.zeros((0, 4)), tmp_path / "empty.mid")
    cases = {
        "broken.mid": [str(run), str(root / "bo_0.mid"), str(tmp_path / "broken.mid")],
        "no notes": [str(run), str(tmp_path / "empty.mid")],
        "does not exist": [str(run), str(tmp_path / "absent.mid")],
        "cannot score a .txt": [str(run), str(run / "config.yaml").replace(".yaml", ".txt")],
        "run folder": [str(tmp_path / "no_run"), str(root / "ada_0.mid")],
    }
    (run / "config.txt").write_text("x")
    for message, args in cases.items():
        result = CliRunner().invoke(app, ["attribution", "score", *args, "-q", "--no-page"])
        assert result.exit_code == 2, (message, result.output)
        assert message in result.output
    assert (run / "scored" / "outputs.parquet").read_bytes() == before  # nothing written by a refused call


def test_the_training_side_embeddings_are_cached_and_a_damaged_cache_is_recomputed(run_copy):
    root, run = run_copy
    first = score_pieces(run, [root / "ada_0.mid"]).scores
    (cached,) = (run / "cache" / "similarity").glob("*.npy")
    cached.write_bytes(b"damaged")  # a damaged cache is recomputed, never trusted
    again = score_pieces(run, [root / "ada_0.mid"]).scores
    emb = lambda df: df[df["method"] == "sim_embedding"].sort_values("train_id")["score"].to_numpy()  # noqa: E731
    np.testing.assert_allclose(emb(again), emb(first), rtol=1e-6)
    assert np.load(cached).ndim == 2  # rewritten whole
