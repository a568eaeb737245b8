"""Hostile and broken manifests: confined to their folder, one creator per file, errors as messages
(issue 13, findings 7 and 8)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from attribution.corpus import CorpusError, load_maestro, load_midi_folder
from royaltysim.cli import app
from tests.attribution.catalogue import write_catalogue, write_config


@pytest.fixture
def catalogue(tmp_path):
    """A catalogue in tmp_path/cat and a secret MIDI file beside it, outside the catalogue's folder."""
    cat = tmp_path / "cat"
    write_catalogue(cat)
    write_catalogue(tmp_path / "outside")
    (tmp_path / "outside" / "ada_0.mid").rename(tmp_path / "outside" / "secret.mid")
    return cat


def _add_rows(manifest, *rows):
    df = pd.read_csv(manifest)
    pd.concat([df, pd.DataFrame(rows)], ignore_index=True).to_csv(manifest, index=False)


def _build(cfg, run):
    return CliRunner().invoke(app, ["attribution", "build", str(cfg), "--out", str(run), "-q"])


@pytest.mark.parametrize("path", ["../outside/secret.mid", "ABSOLUTE", "sub/../../outside/secret.mid"])
def test_a_path_outside_the_manifest_folder_is_refused(catalogue, path):
    if path == "ABSOLUTE":
        path = str(catalogue.parent / "outside" / "secret.mid")
    (catalogue / "sub").mkdir()
    _add_rows(catalogue / "manifest.csv", {"path": path, "creator": "eve", "title": "secret"})
    with pytest.raises(CorpusError) as info:
        load_midi_folder(catalogue / "manifest.csv")
    message = str(info.value)
    assert path in message and "corpus.allow_outside: true" in message and str(catalogue) in message
    pieces, _ = load_midi_folder(catalogue / "manifest.csv", allow_outside=True)  # the explicit option
    assert "eve" in {p.creator for p in pieces}


def test_a_symbolic_link_out_of_the_folder_is_refused(catalogue):
    (catalogue / "link.mid").symlink_to(catalogue.parent / "outside" / "secret.mid")
    _add_rows(catalogue / "manifest.csv", {"path": "link.mid", "creator": "eve", "title": "link"})
    with pytest.raises(CorpusError, match="outside its folder"):
        load_midi_folder(catalogue / "manifest.csv")


def test_the_build_refuses_an_outside_path_unless_the_config_allows_it(catalogue, tmp_path):
    _add_rows(catalogue / "manifest.csv", {"path": "../outside/secret.mid", "creator": "eve", "title": "secret"})
    result = _build(write_config(catalogue), tmp_path / "run")
    assert result.exit_code == 2 and "outside its folder" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
    cfg = write_config(catalogue, corpus={"source": "midi_folder", "manifest": "manifest.csv", "allow_outside": True})
    result = _build(cfg, tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "eve" in set(pd.read_parquet(tmp_path / "run" / "corpus.parquet")["creator"]) | set(
        pd.read_parquet(tmp_path / "run" / "heldout.parquet")["creator"]
    )


@pytest.mark.parametrize("alias", ["ada_0.mid", "./ada_0.mid", "sub/../ada_0.mid"])
def test_one_file_credited_to_two_creators_is_refused(catalogue, alias):
    (catalogue / "sub").mkdir()
    _add_rows(catalogue / "manifest.csv", {"path": alias, "creator": "mallory", "title": "mine"})
    with pytest.raises(CorpusError) as info:
        load_midi_folder(catalogue / "manifest.csv")
    assert "more than one creator" in str(info.value) and "mallory" in str(info.value) and "ada" in str(info.value)


def test_one_file_listed_twice_for_one_creator_is_read_once(catalogue):
    _add_rows(catalogue / "manifest.csv", {"path": "./ada_0.mid", "creator": "ada", "title": "again"})
    pieces, report = load_midi_folder(catalogue / "manifest.csv")
    assert len(pieces) == 9 and any("listed earlier" in reason for _, reason in report.skipped)


def test_maestro_csv_is_confined_to_its_root(tmp_path):
    root = tmp_path / "maestro"
    write_catalogue(root)
    write_catalogue(tmp_path / "outside")
    pd.DataFrame({"canonical_composer": ["A", "B"], "canonical_title": ["x", "y"],
                  "midi_filename": ["ada_0.mid", "../outside/bo_0.mid"]}).to_csv(root / "maestro-v3.0.0.csv", index=False)
    with pytest.raises(CorpusError, match="corpus.allow_outside"):
        load_maestro(root, progress=False)


def test_a_manifest_that_is_not_utf8_is_a_message_naming_the_file(catalogue, tmp_path):
    (catalogue / "manifest.csv").write_bytes("path,creator\nada_0.mid,Dvo\u0159\u00e1k\n".encode("cp1250"))
    result = _build(write_config(catalogue), tmp_path / "run")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "manifest.csv is not UTF-8" in result.output and "save it as UTF-8" in result.output


def test_a_manifest_without_a_creator_column_is_a_message(catalogue, tmp_path):
    (catalogue / "manifest.csv").write_text("path,title\nada_0.mid,x\n")
    result = _build(write_config(catalogue), tmp_path / "run")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "lacks column(s) ['creator']" in result.output and "manifest.csv" in result.output
    assert not (tmp_path / "run").exists()
