"""Corpus loaders: music21 corpus (creators, exclusions, caching, caps), MIDI manifests, MAESTRO."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pretty_midi
import pytest

from attribution.corpus import (
    DEFAULT_CREATORS,
    EXCLUDED,
    MIN_NOTES,
    NONCOMMERCIAL,
    CorpusError,
    LoadReport,
    Piece,
    load_maestro,
    load_midi_folder,
    load_music21_corpus,
    parse_score,
    trecento_creator,
)

# ---------------------------------------------------------------------------- helpers
_STEPS = {60: ("C", 0), 62: ("D", 0), 64: ("E", 0), 65: ("F", 0), 67: ("G", 0), 69: ("A", 0), 71: ("B", 0)}


def _pitch_xml(midi: int) -> str:
    step, alter = _STEPS[midi % 12 + 60]
    return f"<pitch><step>{step}</step><octave>{midi // 12 - 1}</octave></pitch>"


def musicxml(events: list[tuple], title: str = "Test piece", tempo: float | None = 120.0) -> str:
    """A one-part MusicXML score. Events (divisions = 1 per quarter):
    ("n", midi, quarters[, "start"|"stop"]) note (optionally tied), ("c", [midi...], quarters) chord,
    ("r", quarters) rest, ("g", midi) grace note. Each event list is one measure of 4/4 per 4 quarters.
    """
    notes = []
    for ev in events:
        if ev[0] == "n":
            tie = f'<tie type="{ev[3]}"/>' if len(ev) > 3 else ""
            tied = f'<notations><tied type="{ev[3]}"/></notations>' if len(ev) > 3 else ""
            notes.append(f"<note>{_pitch_xml(ev[1])}<duration>{ev[2]}</duration>{tie}<voice>1</voice>{tied}</note>")
        elif ev[0] == "c":
            for i, m in enumerate(ev[1]):
                chord = "<chord/>" if i else ""
                notes.append(f"<note>{chord}{_pitch_xml(m)}<duration>{ev[2]}</duration><voice>1</voice></note>")
        elif ev[0] == "r":
            notes.append(f"<note><rest/><duration>{ev[1]}</duration><voice>1</voice></note>")
        elif ev[0] == "g":
            notes.append(f"<note><grace/>{_pitch_xml(ev[1])}<voice>1</voice><type>eighth</type></note>")
    # Split into measures of 4 quarters (chord members and grace notes take no time).
    measures, current, filled = [], [], 0
    for xml in notes:
        current.append(xml)
        if "<chord/>" not in xml and "<grace/>" not in xml:
            filled += int(xml.split("<duration>")[1].split("</duration>")[0])
        if filled >= 4:
            measures.append(current)
            current, filled = [], 0
    if current:
        measures.append(current)
    sound = f'<direction><direction-type><words/></direction-type><sound tempo="{tempo}"/></direction>' if tempo else ""
    body = []
    for i, m in enumerate(measures, start=1):
        attrs = "<attributes><divisions>1</divisions><time><beats>4</beats><beat-type>4</beat-type></time></attributes>"
        head = attrs + sound if i == 1 else ""
        body.append(f'<measure number="{i}">{head}{"".join(m)}</measure>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="3.1">'
        f"<work><work-title>{title}</work-title></work>"
        '<part-list><score-part id="P1"><part-name>Voice</part-name></score-part></part-list>'
        f'<part id="P1">{"".join(body)}</part></score-partwise>'
    )


def scale_xml(n: int, title: str = "Scale") -> str:
    pitches = [60, 62, 64, 65, 67, 69, 71, 72]
    return musicxml([("n", pitches[i % 8], 1) for i in range(n)], title=title)


def write_midi_file(path, n_notes=10, pedal=False, start=0.0):
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    for i in range(n_notes):
        inst.notes.append(pretty_midi.Note(80, 60 + i % 12, start + 0.5 * i, start + 0.5 * i + 0.3))
    if pedal:
        inst.control_changes += [pretty_midi.ControlChange(64, 127, 0.1), pretty_midi.ControlChange(64, 0, 1.0)]
    pm.instruments.append(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))
    return path


# ---------------------------------------------------------------------------- parsing one score
def test_parse_score_ties_chords_rests_grace_and_tempo(tmp_path):
    path = tmp_path / "piece.xml"
    path.write_text(musicxml([
        ("n", 60, 1), ("c", [64, 67], 1), ("r", 1), ("g", 65), ("n", 62, 1),
        ("n", 60, 2, "start"), ("n", 60, 1, "stop"), ("n", 72, 1),
    ]))
    [(suffix, title, notes)] = parse_score(path)
    assert suffix == "" and title == "Test piece"
    expected = [(60, 0.0, 0.5), (64, 0.5, 1.0), (67, 0.5, 1.0), (62, 1.5, 2.0), (60, 2.0, 3.5), (72, 3.5, 4.0)]
    np.testing.assert_allclose(notes[:, :3], expected)
    assert (notes[:, 3] == 80).all()
    # Without a metronome mark: 100 bpm; max_seconds keeps whole notes starting before the cap.
    path.write_text(musicxml([("n", 60, 1)] * 8, tempo=None))
    [(_, _, notes)] = parse_score(path, max_seconds=1.0)
    np.testing.assert_allclose(notes[:, 1], [0.0, 0.6])
    np.testing.assert_allclose(notes[:, 2], [0.6, 1.2])


# ---------------------------------------------------------------------------- trecento creators
@pytest.mark.parametrize("name, creator", [
    ("PMFC_06-Jacopo-01-Aquila-Altera.xml", "trecento_jacopo"),
    ("PMFC_06-Jacopo-03b-Di_Novo.xml", "trecento_jacopo"),
    ("PMFC_06_Giovanni-01-Angnel_son_biancho.xml", "trecento_giovanni"),
    ("PMFC_06_Piero_6a-Quando_laire_comenca.xml", "trecento_piero"),
    ("Fava_Dicant_nunc_iudei.xml", "trecento_fava"),
    ("PMFC_24_1-Gloria Ciconia 1.xml", "trecento_ciconia"),
    ("PMFC_12_20-Agnus Dei Gherardello.xml", "trecento_gherardello"),
    ("PMFC_04-Cara mi donna.xml", "trecento_pmfc04"),
    ("PMFC_01-Lugentium siccentur.xml", "trecento_pmfc01"),
    ("PMFC_06_10-I senti gia come l_arco.xml", "trecento_pmfc06"),
    ("PMFC_13_01-Kyrie-Summe-Clementissime.mxl", "trecento_pmfc13"),
    ("PMFC_24_15-O virum omnimoda.xml", "trecento_pmfc24"),
])
def test_trecento_creator(name, creator):
    assert trecento_creator(name) == creator


# ---------------------------------------------------------------------------- music21 corpus loader
def test_default_creators_exclude_noncommercial_and_non_creator_folders():
    assert "palestrina" in EXCLUDED and "essenFolksong" in NONCOMMERCIAL
    assert not set(DEFAULT_CREATORS) & set(EXCLUDED)
    assert "demos" in EXCLUDED and "demos" not in NONCOMMERCIAL


def test_excluded_and_unknown_folders_raise(tmp_path):
    with pytest.raises(CorpusError, match="palestrina.*excluded.*John Miller.*allow_noncommercial=True"):
        load_music21_corpus(["bach", "palestrina"], cache_dir=tmp_path, progress=False)
    with pytest.raises(CorpusError, match="demos.*not a creator"):
        load_music21_corpus(["demos"], cache_dir=tmp_path, progress=False, allow_noncommercial=True)
    with pytest.raises(CorpusError, match="unknown creator 'bahc'.*Available folders"):
        load_music21_corpus(["bahc"], cache_dir=tmp_path, progress=False)
    with pytest.raises(CorpusError, match="unknown trecento creator"):
        load_music21_corpus(["trecento_nobody"], cache_dir=tmp_path, progress=False)


def test_parses_small_pieces_of_the_installed_corpus_and_caches_them(tmp_path):
    creators = ["handel", "verdi", "webern"]
    pieces, report = load_music21_corpus(creators, cache_dir=tmp_path, workers=2, progress=False)
    assert [p.creator for p in pieces] == creators
    assert [p.train_id for p in pieces] == [
        "handel/rinaldo/Lascia_chio_pianga", "verdi/laDonnaEMobile", "webern/webern_dormi_jesu_op_16_no_2"
    ]
    assert all(p.n_notes >= MIN_NOTES and 0 < p.seconds <= 180.0 + 30 for p in pieces)
    assert all(p.source.startswith("music21:") for p in pieces)
    assert (report.loaded, report.parsed, report.from_cache, report.skipped) == (3, 3, 0, [])
    assert list(tmp_path.glob("music21-*/*.npz"))
    again, report2 = load_music21_corpus(creators, cache_dir=tmp_path, workers=2, progress=False)
    assert (report2.parsed, report2.from_cache) == (0, 3)
    for a, b in zip(pieces, again):
        assert a == b
        np.testing.assert_array_equal(a.notes, b.notes)


@pytest.fixture
def fake_corpus(tmp_path):
    """A folder laid out like music21's corpus, with the awkward cases."""
    root = tmp_path / "corpus"
    alice = root / "alice"
    alice.mkdir(parents=True)
    (alice / "a_broken.xml").write_text("<score-partwise><part id='P1'><measure>not closed")
    (alice / "b.xml").write_text(scale_xml(12, "B"))
    (alice / "b.krn").write_text("**kern\n*-\n")  # the same piece in another format: ignored
    (alice / "b.rntxt").write_text("Time Signature: 4/4\nm1 C: I\n")  # an analysis: ignored
    (alice / "c.musicxml").write_text(scale_xml(9, "C"))
    (alice / "d.xml").write_text(scale_xml(10, "D"))
    bob = root / "bob"
    bob.mkdir()
    (bob / "tiny.xml").write_text(scale_xml(3, "Tiny"))
    (bob / "long.xml").write_text(scale_xml(400, "Long"))
    trecento = root / "trecento"
    trecento.mkdir()
    (trecento / "PMFC_06-Jacopo-01-Aquila.xml").write_text(scale_xml(8, "Aquila"))
    (trecento / "PMFC_04-Cara mi donna.xml").write_text(scale_xml(8, "Cara"))
    return root


def test_fake_corpus_skips_lists_and_ignores(fake_corpus, tmp_path, caplog):
    pieces, report = load_music21_corpus(
        ["alice", "bob", "trecento"], corpus_root=fake_corpus, cache_dir=tmp_path / "cache",
        workers=1, progress=False, max_seconds=20.0,
    )
    assert [p.train_id for p in pieces] == [
        "alice/b", "alice/c", "alice/d", "bob/long", "trecento/PMFC_04-Cara mi donna",
        "trecento/PMFC_06-Jacopo-01-Aquila",
    ]
    assert [p.creator for p in pieces][-2:] == ["trecento_landini", "trecento_jacopo"]  # PMFC vol. 4 is Landini
    skipped = dict(report.skipped)
    assert set(skipped) == {"alice/a_broken.xml", "bob/tiny.xml"}
    assert "could not parse" in skipped["alice/a_broken.xml"]
    assert "only 3 note(s)" in skipped["bob/tiny.xml"]
    assert "alice/a_broken.xml" in caplog.text
    ignored = dict(report.ignored)
    assert "same piece as alice/b.xml" in ignored["alice/b.krn"] and "alice/b.rntxt" in ignored
    assert "alice/a_broken.xml" in report.summary()
    long = pieces[3]
    assert long.n_notes == 40 and long.notes[:, 1].max() == 19.5  # 0.5 s per note, capped at 20 s
    assert pieces[0].title == "B"


def test_cap_per_creator_is_deterministic_and_tops_up_after_failures(fake_corpus, tmp_path):
    kwargs = dict(corpus_root=fake_corpus, cache_dir=tmp_path / "cache", workers=1, progress=False)
    pieces, report = load_music21_corpus(["alice", "bob"], max_pieces_per_creator=2, **kwargs)
    # alice's first file is broken: the next two in sorted order take its place.
    assert [p.train_id for p in pieces] == ["alice/b", "alice/c", "bob/long"]
    pieces, _ = load_music21_corpus(["alice", "bob"], max_pieces_per_creator={"alice": 1}, **kwargs)
    assert [p.train_id for p in pieces] == ["alice/b", "bob/long"]
    with pytest.raises(CorpusError, match="not being loaded"):
        load_music21_corpus(["alice"], max_pieces_per_creator={"alcie": 1}, **kwargs)
    only, _ = load_music21_corpus(["trecento_jacopo"], **kwargs)
    assert [p.creator for p in only] == ["trecento_jacopo"]


def test_cache_is_keyed_by_max_seconds(fake_corpus, tmp_path):
    kwargs = dict(corpus_root=fake_corpus, cache_dir=tmp_path / "cache", workers=1, progress=False)
    _, first = load_music21_corpus(["bob"], max_seconds=10.0, **kwargs)
    _, same = load_music21_corpus(["bob"], max_seconds=10.0, **kwargs)
    _, other = load_music21_corpus(["bob"], max_seconds=None, **kwargs)
    assert (first.parsed, same.parsed, same.from_cache, other.parsed) == (2, 0, 2, 2)


def test_nothing_loaded_is_an_error(fake_corpus, tmp_path):
    (fake_corpus / "carol").mkdir()
    (fake_corpus / "carol" / "x.xml").write_text(scale_xml(2))
    with pytest.raises(CorpusError, match="no pieces could be loaded.*only 2 note"):
        load_music21_corpus(["carol"], corpus_root=fake_corpus, cache_dir=tmp_path, workers=1, progress=False)


# ---------------------------------------------------------------------------- MIDI manifests
def test_midi_manifest(tmp_path):
    write_midi_file(tmp_path / "midi" / "alice" / "one.mid", pedal=True)
    write_midi_file(tmp_path / "midi" / "bob" / "two.midi", n_notes=12)
    (tmp_path / "midi" / "bob" / "corrupt.mid").write_bytes(b"not a midi file")
    (tmp_path / "midi" / "list.csv").write_text(
        "path,creator,title\n"
        "alice/one.mid,Alice,First\n"
        "bob/two.midi,Bob,\n"
        "bob/corrupt.mid,Bob,Broken\n"
        "bob/missing.mid,Bob,Missing\n"
    )
    pieces, report = load_midi_folder(tmp_path / "midi" / "list.csv")
    assert [(p.train_id, p.creator, p.title) for p in pieces] == [
        ("alice/one", "Alice", "First"), ("bob/two", "Bob", "two")
    ]
    assert pieces[0].notes[0, 2] == pytest.approx(1.0, abs=0.01)  # held by the pedal to its release
    raw, _ = load_midi_folder(tmp_path / "midi" / "list.csv", sustain=False)
    assert raw[0].notes[0, 2] == pytest.approx(0.3, abs=0.01)
    skipped = dict(report.skipped)
    assert set(skipped) == {str(tmp_path / "midi/bob/corrupt.mid"), str(tmp_path / "midi/bob/missing.mid")}
    assert "does not exist" in skipped[str(tmp_path / "midi/bob/missing.mid")]
    assert report.loaded == 2 and isinstance(report, LoadReport)
    capped, _ = load_midi_folder(tmp_path / "midi" / "list.csv", max_seconds=5.0)
    assert [p.n_notes for p in capped] == [10, 10]  # bob/two has 12 notes, one every 0.5 s


def test_midi_manifest_errors(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_midi_folder(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("file,author\nx.mid,A\n")
    with pytest.raises(CorpusError) as info:
        load_midi_folder(bad)
    message = str(info.value)
    assert str(bad) in message and "['path', 'creator']" in message and "['file', 'author']" in message
    only_corrupt = tmp_path / "corrupt.csv"
    (tmp_path / "x.mid").write_bytes(b"junk")
    only_corrupt.write_text("path,creator\nx.mid,A\n")
    with pytest.raises(CorpusError, match="no pieces could be loaded"):
        load_midi_folder(only_corrupt)


# ---------------------------------------------------------------------------- MAESTRO
def test_maestro_layout(tmp_path):
    root = tmp_path / "maestro-v3.0.0"
    for name in ("2018/a.midi", "2018/b.midi", "2017/c.midi"):
        write_midi_file(root / name)
    pd.DataFrame({
        "canonical_composer": ["Frédéric Chopin", "Johann Sebastian Bach", "Frédéric Chopin"],
        "canonical_title": ["Ballade No. 1", "Prelude in C", "Etude Op. 10 No. 1"],
        "split": ["train", "test", "train"],
        "midi_filename": ["2018/a.midi", "2018/b.midi", "2017/c.midi"],
        "audio_filename": ["2018/a.wav", "2018/b.wav", "2017/c.wav"],
        "year": [2018, 2018, 2017],
        "duration": [5.0, 5.0, 5.0],
    }).to_csv(root / "maestro-v3.0.0.csv", index=False)
    pieces, report = load_maestro(root, progress=False)
    assert [(p.train_id, p.creator, p.title) for p in pieces] == [
        ("2018/a", "Frédéric Chopin", "Ballade No. 1"),
        ("2018/b", "Johann Sebastian Bach", "Prelude in C"),
        ("2017/c", "Frédéric Chopin", "Etude Op. 10 No. 1"),
    ]
    train, _ = load_maestro(root, splits=["train"], progress=False)
    assert [p.train_id for p in train] == ["2018/a", "2017/c"]
    with pytest.raises(CorpusError, match=r"split\(s\) \['dev'\].*available: \['test', 'train'\]"):
        load_maestro(root, splits=["dev"], progress=False)
    with pytest.raises(CorpusError, match="no maestro-v"):
        load_maestro(tmp_path, progress=False)
    (root / "other.csv").write_text("midi_filename\n2018/a.midi\n")
    with pytest.raises(CorpusError, match=r"\['canonical_composer', 'canonical_title'\]"):
        load_maestro(root, csv_path=root / "other.csv", progress=False)


def test_piece_is_immutable_and_validated():
    notes = np.array([(60, 0.0, 1.0, 80), (62, 0.5, 2.5, 80)], dtype=float)
    piece = Piece("x/y", "X", "Y", "test", notes)
    assert piece.seconds == 2.5 and piece.n_notes == 2
    with pytest.raises(ValueError):
        piece.notes[0, 0] = 61
    with pytest.raises(ValueError, match="piece 'bad'"):
        Piece("bad", "X", "Y", "test", np.array([(60, 1.0, 0.5, 80)], dtype=float))


def test_one_person_is_one_creator():
    from attribution.corpus import _creator_of

    assert _creator_of("trecento/PMFC_24_1-Gloria Ciconia 1.xml") == "ciconia"
    assert _creator_of("ciconia/quod_jactatur.xml") == "ciconia"
    assert _creator_of("trecento/PMFC_04-Cara mi donna.xml") == "trecento_landini"
