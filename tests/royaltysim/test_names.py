"""Creators' readable names from corpus metadata, collections and the documented fallback."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from royaltysim.names import FALLBACK, clean_composer, readable_names

REPO = Path(__file__).resolve().parents[2]


def _corpus(pieces: dict[str, list[tuple[str, str | None]]]) -> tuple[pd.DataFrame, dict[str, str]]:
    rows, composers = [], {}
    for creator, items in pieces.items():
        for i, (path, composer) in enumerate(items):
            rows.append({"creator": creator, "source": f"music21:{path}", "title": f"piece {i}"})
            if composer is not None:
                composers[path] = composer
    return pd.DataFrame(rows), composers


def test_clean_composer() -> None:
    assert clean_composer("Bartholus F-Pn 568") == "Bartholus"
    assert clean_composer("Gratiosus I-Pu 684/1475?") == "Gratiosus"
    assert clean_composer("Philippe de Vitry\n(1291 - 1361)") == "Philippe de Vitry"
    assert clean_composer("Johannes Ciconia (opus dubium)") == "Johannes Ciconia"
    assert clean_composer("Chopin, Frederic") == "Frederic Chopin"
    assert clean_composer("Mediolano ? 324") == "Mediolano"
    assert clean_composer("  ") is None and clean_composer(None) is None


def test_names_from_metadata_collections_and_fallback() -> None:
    corpus, composers = _corpus({
        "trecento_bartholus": [("trecento/a.xml", "Bartholus F-Pn 568")],
        # anonymous pieces of one edition volume, one of them attributed: named after the edition
        "trecento_pmfc12": [("trecento/p1.xml", "Anonymous I-Rvat 1419"), ("trecento/p2.xml", "Anonymous GB-Lbm 29987"),
                            ("trecento/p3.xml", "Mediolano ? 324")],
        # madrigals also record their poets: the composer is the one whose name is the folder's
        "monteverdi": [("m/1.mxl", "Claudio Monteverdi"), ("m/2.mxl", "Battista Guarini"), ("m/3.mxl", "Battista Guarini"),
                       ("m/4.mxl", "Claudio Monteverdi"), ("m/5.mxl", "Claudio Monteverdi"), ("m/6.mxl", None)],
        "haydn": [("haydn/q.mxl", None)],  # no composer recorded: the documented fallback
        "cpebach": [("cpebach/h186.mxl", "Carl Philipp Emanuel Bach")],
        "trecento_jacopo": [("trecento/j1.xml", "Jacopo da Bologna")],
        "trecento_pmfc06": [("trecento/j2.xml", "Jacopo da Bologna"), ("trecento/j3.xml", "Jacopo da Bologna")],
        "obscure_folder": [("o/x.xml", None)],
    })
    names = readable_names(list(corpus["creator"].unique()) + ["creator_00017"], corpus, composers)
    assert names["trecento_bartholus"] == "Bartholus"
    assert names["trecento_pmfc12"] == "Polyphonic Music of the Fourteenth Century, vol. 12"
    assert names["monteverdi"] == "Claudio Monteverdi"
    assert names["haydn"] == FALLBACK["haydn"] == "Joseph Haydn"
    assert names["cpebach"] == "Carl Philipp Emanuel Bach"
    # one composer under two keys: the collection tells them apart
    assert names["trecento_jacopo"] == "Jacopo da Bologna"
    assert names["trecento_pmfc06"] == "Jacopo da Bologna (PMFC, vol. 6)"
    assert names["obscure_folder"] == "Obscure Folder"
    assert names["creator_00017"] == "synthetic creator 17"
    assert len(set(names.values())) == len(names)


@pytest.mark.skipif(not (REPO / "runs" / "default" / "corpus.parquet").is_file(), reason="no shipped run")
def test_the_shipped_corpus_gets_proper_names() -> None:
    pytest.importorskip("music21")
    corpus = pd.read_parquet(REPO / "runs" / "default" / "corpus.parquet")
    names = readable_names(sorted(corpus["creator"].unique()), corpus)
    assert names["trecento_pmfc12"] == "Polyphonic Music of the Fourteenth Century, vol. 12"
    assert names["monteverdi"] == "Claudio Monteverdi" and names["schumann_clara"] == "Clara Schumann"
    assert len(set(names.values())) == len(names)
    assert not any("_" in n for n in names.values())
