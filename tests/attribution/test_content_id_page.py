"""Content ID pages on a tiny built run, loaded in Debian's headless Chromium, with FluidSynth audio.

Chromium, FluidSynth and the General MIDI soundfont are test dependencies (``make setup`` installs them as
root); a test that needs one fails, never skips, when it is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from attribution import audio
from attribution.content_id import (
    ContentIdError,
    ContentIdRun,
    _midrank_percentile,
    creator_totals,
    influences,
    note_passages,
    passage_leaders,
)
from attribution.content_id_page import PALETTE, write_index_page, write_pages, write_piece_page
from attribution.tokenize import EventTokenizer
from royaltysim.cli import app
from tests.attribution.catalogue import write_catalogue, write_config

SCORED_ID = "copy-0123abcd"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny build (3 outputs, 6 training pieces by 3 creators) plus one scored piece in RUN/scored/."""
    from attribution.build import build
    from attribution.config import load_build_config

    root = tmp_path_factory.mktemp("content_id")
    write_catalogue(root)
    run_dir = root / "run"
    build(load_build_config(write_config(root)), run_dir, progress=False)
    # RUN/scored/ in the shared layout (issue 18): out001 scored again under a file-derived id.
    scored = run_dir / "scored"
    (scored / "outputs").mkdir(parents=True)
    shutil.copy(run_dir / "outputs" / "out001.npy", scored / "outputs" / f"{SCORED_ID}.npy")
    shutil.copy(run_dir / "outputs" / "out001.mid", scored / "outputs" / f"{SCORED_ID}.mid")
    row = pd.read_parquet(run_dir / "outputs.parquet").query("output_id == 'out001'").iloc[0]
    pd.DataFrame([{
        "output_id": SCORED_ID, "events": row["events"], "seconds": row["seconds"], "notes": row["notes"],
        "midi": f"scored/outputs/{SCORED_ID}.mid", "tokens": f"scored/outputs/{SCORED_ID}.npy",
        "source_file": "copy.mid", "file_sha256": "0123abcd" + "0" * 56, "scored_at": "2026-11-30T00:00:00Z",
        "trak_cache": "key", "settings": "{}", "windows": 1,
    }]).to_parquet(scored / "outputs.parquet")
    for name in ("attribution.parquet", "passages.parquet"):
        df = pd.read_parquet(run_dir / name).query("output_id == 'out001'")
        df.assign(output_id=SCORED_ID).to_parquet(scored / name)
    return run_dir


def _chromium(*args: str, url: Path, profile: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    assert exe, "chromium is not installed: run `make setup` as root (apt-get install chromium)"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
           "--virtual-time-budget=5000", *args, url.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_page_loads_in_chromium_with_roll_legend_and_playable_audio(run, tmp_path):
    audio.find_synthesiser()  # fails the test (not a skip) when FluidSynth or the soundfont is missing
    out = tmp_path / "pages"
    index, pages, note = write_pages(run, out)
    assert note == "" and len(pages) == 4  # three outputs and the scored piece
    page = out / "out000.html"
    dom = _chromium("--dump-dom", url=page, profile=tmp_path / "profile").stdout

    assert 'data-scripts="ran"' in dom  # the page's script ran to its end
    piece = ContentIdRun(run).piece("out000")
    roll = re.search(r'<svg class="roll" id="roll-piece".*?</svg>', dom, re.S).group(0)
    assert roll.count('class="note"') == len(piece.notes) > 0
    assert roll.count('class="passage"') == piece.passages["passage"].nunique() > 0
    legend = re.search(r'<ul class="legend" id="legend">(.*?)</ul>', dom, re.S).group(1)
    names = re.findall(r"<b>([^<]+)</b>", legend)
    assert names and set(names) <= {"ada", "bo", "cy", "no creator with a positive score"}

    sources = re.findall(r'<audio[^>]*src="([^"]+)"', dom)
    assert len(sources) >= 2  # the piece and at least one influence
    for src in sources:
        assert (out / src).is_file() and (out / src).stat().st_size > 1000
    durations = [float(d) for d in re.findall(r'<audio[^>]*data-duration="([0-9.]+)"', dom)]
    assert len(durations) == len(sources) and min(durations) > 0  # Chromium decoded every file
    assert "data-error" not in dom
    assert dom.count('class="playhead"') == len(sources)  # one playhead per audio element, added by the script

    shot = tmp_path / "page.png"
    _chromium("--window-size=1100,1400", f"--screenshot={shot}", url=page, profile=tmp_path / "profile")
    import matplotlib.image

    pixels = (matplotlib.image.imread(shot)[..., :3] * 255).round().astype(int)
    first = re.search(r'<span class="sw" style="background: (#[0-9A-Fa-f]{6})"', legend).group(1)
    rgb = np.array([int(first[i : i + 2], 16) for i in (1, 3, 5)])
    assert first in PALETTE
    # painted on the roll: its notes and passage strips (a legend swatch alone is ~200 pixels)
    assert (np.abs(pixels - rgb).sum(-1) <= 6).sum() > 3000


def test_page_is_written_without_audio_when_fluidsynth_is_absent(run, tmp_path, monkeypatch):
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    page = write_piece_page(run, "out002", tmp_path)
    html = page.read_text()
    assert "<audio" not in html and not (tmp_path / "audio").exists()
    assert "No audio on this page" in html and "`fluidsynth` program is not on PATH" in html
    assert 'id="roll-piece"' in html and 'id="legend"' in html


def test_a_missing_or_broken_soundfont_is_named(tmp_path):
    with pytest.raises(audio.AudioUnavailable, match="no General MIDI soundfont at .*nothing.sf2"):
        audio.find_synthesiser(tmp_path / "nothing.sf2")
    (tmp_path / "bad.sf2").write_bytes(b"not a soundfont")
    with pytest.raises(audio.AudioUnavailable, match="bad.sf2 is not a SoundFont 2 file"):
        audio.find_synthesiser(tmp_path / "bad.sf2")
    synth = audio.find_synthesiser()  # Debian's soundfont renders a two-note file
    notes = np.array([[60, 0.0, 0.5, 80], [64, 0.5, 1.0, 80]], dtype=float)
    out = synth.render(notes, tmp_path / "two.ogg")
    assert out.read_bytes()[:4] == b"OggS" and out.stat().st_size > 1000


def test_a_scored_piece_gets_a_page_and_a_row_in_the_index(run, tmp_path):
    page = write_piece_page(run, SCORED_ID, tmp_path, audio=False)
    html = page.read_text()
    assert "scored against the training music" in html and "copy.mid" in html
    index = write_index_page(run, tmp_path).read_text()
    for pid in ("out000", "out001", "out002", SCORED_ID):
        assert f'href="{pid}.html"' in index
    assert index.count(">scored<") == 1 and index.count(">generated<") == 3
    with pytest.raises(ContentIdError, match="known ids: out000, out001, out002, copy-0123abcd"):
        write_piece_page(run, "nope", tmp_path, audio=False)


def test_passage_leader_is_the_creator_with_the_largest_summed_score(run):
    piece = ContentIdRun(run).piece("out001")
    creator_of = piece.table.corpus.set_index("train_id")["creator"]
    for lead in passage_leaders(piece):
        rows = piece.passages[piece.passages["passage"] == lead.passage]
        totals = rows.groupby(rows["train_id"].map(creator_of))["score"].sum()
        assert lead.creator == (totals.idxmax() if totals.max() > 0 else None)
        if lead.creator:
            assert lead.share == pytest.approx(totals.max() / totals.clip(lower=0).sum())
    assert creator_totals(piece.passages, piece.table.corpus).shape[1] == 3


def test_notes_belong_to_the_passage_of_their_note_on():
    tok = EventTokenizer()
    shift = lambda steps: 256 + steps - 1  # noqa: E731 -- TIME_SHIFT of `steps` 10 ms steps
    tokens = np.array([tok.bos_id, 60, shift(10), 62, shift(10), 128 + 60, 128 + 62, 64, shift(5), tok.eos_id])
    notes = tok.decode(tokens)  # C4 at 0 s, D4 at 0.1 s, E4 at 0.2 s
    # events 0-2 (tokens 1-3) are passage 0; events 3-8 (tokens 4-9) passage 1
    assert note_passages(tokens, notes, tok, [(0, 3), (3, 9)]).tolist() == [0, 0, 1]
    assert note_passages(tokens, notes, tok, [(0, 1), (1, 9)]).tolist() == [0, 1, 1]


def test_midrank_percentile_counts_ties_as_half():
    assert _midrank_percentile(np.array([0.0, 0.0, 1.0, 2.0])).tolist() == [0.25, 0.25, 0.625, 0.875]


def test_influences_follow_the_stated_rules(run):
    cid = ContentIdRun(run)
    piece = cid.piece("out000")
    found = influences(cid, piece, top=4)
    trak = piece.table.pivot("trak").iloc[0]
    assert [i.train_id for i in found] == list(trak[trak > 0].sort_values(ascending=False).index[:4])
    _, owner, _ = cid.windows()
    row_of = {t: k for k, t in enumerate(piece.table.corpus["train_id"])}
    for inf in found:
        sims = {m: piece.table.pivot(m).iloc[0] for m in piece.table.methods if m.startswith("sim_")}
        lower_half = [((s < s[inf.train_id]).sum() + 0.5 * (s == s[inf.train_id]).sum()) / len(s) < 0.5
                      for s in sims.values()]
        assert inf.hidden == all(lower_half)
        assert owner[inf.window] == row_of[inf.train_id]  # the snippet is a window of that very piece


def test_pages_command_writes_the_index_and_refuses_an_unknown_piece(run, tmp_path):
    result = CliRunner().invoke(app, ["attribution", "pages", str(run), "out000", "--out", str(tmp_path), "--no-audio"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "index.html").is_file() and (tmp_path / "out000.html").is_file()
    assert not (tmp_path / "out001.html").exists()
    result = CliRunner().invoke(app, ["attribution", "pages", str(run), "out999", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "no piece 'out999'" in result.output
    assert not (tmp_path / "x").exists()
