"""MIDI <-> notes: pedal handling, merging of tracks, errors on unreadable files."""

from __future__ import annotations

import pickle

import numpy as np
import pretty_midi
import pytest

from attribution.midi import (
    MidiReadError,
    apply_sustain,
    empty_notes,
    read_midi,
    sort_notes,
    validate_notes,
    write_midi,
)

TICK = 1 / 440  # pretty_midi's default resolution (220 ticks per beat) at its default 120 bpm


def make_midi(path, notes, pedal=(), drums=(), program=0, second_track=()):
    """Write a MIDI file: notes/drums/second_track are (pitch, start, end, velocity), pedal (time, value)."""
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=program)
    for p, s, e, v in notes:
        inst.notes.append(pretty_midi.Note(velocity=v, pitch=p, start=s, end=e))
    for t, value in pedal:
        inst.control_changes.append(pretty_midi.ControlChange(number=64, value=value, time=t))
    pm.instruments.append(inst)
    if drums:
        drum = pretty_midi.Instrument(program=0, is_drum=True)
        drum.notes.extend(pretty_midi.Note(velocity=v, pitch=p, start=s, end=e) for p, s, e, v in drums)
        pm.instruments.append(drum)
    if second_track:
        other = pretty_midi.Instrument(program=40)
        other.notes.extend(pretty_midi.Note(velocity=v, pitch=p, start=s, end=e) for p, s, e, v in second_track)
        pm.instruments.append(other)
    pm.write(str(path))
    return path


SCALE = [(60 + i, 0.5 * i, 0.5 * i + 0.4, 70 + i) for i in range(10)]


def test_file_without_pedal_keeps_every_note_unchanged(tmp_path):
    path = make_midi(tmp_path / "no_pedal.mid", SCALE)
    for sustain in (True, False):
        notes = read_midi(path, sustain=sustain)
        assert notes.shape == (10, 4)
        np.testing.assert_allclose(notes, np.array(SCALE, dtype=float), atol=TICK)


def test_pedal_lengthens_notes_released_while_down(tmp_path):
    notes = [
        (60, 0.0, 0.5, 80),   # released with the pedal down (0.2-2.0) -> sounds until 2.0
        (64, 0.5, 0.9, 80),   # released with the pedal down, but E4 is struck again at 1.5 -> 1.5
        (64, 1.5, 1.7, 80),   # released with the pedal down -> until the release at 2.0
        (67, 2.5, 2.8, 80),   # pedal up: unchanged
        (72, 3.0, 3.2, 80),   # second pedal 3.1-3.6 -> 3.6
        (74, 4.0, 4.5, 80),   # after the last release: kept and unchanged
        (76, 5.0, 5.5, 80),
    ]
    pedal = [(0.2, 127), (2.0, 0), (3.1, 100), (3.6, 10)]
    path = make_midi(tmp_path / "pedal.mid", notes, pedal=pedal)
    got = read_midi(path)
    expected = np.array(
        [(60, 0.0, 2.0, 80), (64, 0.5, 1.5, 80), (64, 1.5, 2.0, 80), (67, 2.5, 2.8, 80),
         (72, 3.0, 3.6, 80), (74, 4.0, 4.5, 80), (76, 5.0, 5.5, 80)],
        dtype=float,
    )
    np.testing.assert_allclose(got, expected, atol=TICK)
    raw = read_midi(path, sustain=False)
    np.testing.assert_allclose(raw, np.array(notes, dtype=float), atol=TICK)


def test_pedal_never_released_holds_to_end_of_track():
    notes = np.array([(60, 0.0, 0.5, 80), (62, 1.0, 3.0, 80)], dtype=float)
    got = apply_sustain(notes, pedal_times=np.array([0.1]), pedal_values=np.array([127]))
    np.testing.assert_allclose(got[:, 2], [3.0, 3.0])


def test_sustain_never_shortens_or_drops_notes():
    # Overlapping same-pitch notes and pedal chatter (down, down, up) must not lose anything.
    notes = np.array([(60, 0.0, 1.0, 80), (60, 0.5, 0.7, 80), (61, 0.2, 0.3, 80)], dtype=float)
    got = apply_sustain(notes, np.array([0.1, 0.15, 0.8]), np.array([127, 90, 0]))
    assert len(got) == 3
    # Sorted (start, pitch): C4 ends with the pedal up; C#4 and the re-struck C4 are held to 0.8.
    np.testing.assert_allclose(got[:, 2], [1.0, 0.8, 0.8])
    assert (got[:, 2] >= sort_notes(notes)[:, 2]).all()


def test_tracks_are_merged_sorted_and_drums_ignored(tmp_path):
    path = make_midi(
        tmp_path / "multi.mid",
        [(60, 1.0, 1.5, 80)],
        drums=[(36, 0.0, 0.1, 100)],
        second_track=[(48, 0.0, 2.0, 60), (72, 1.0, 1.2, 90)],
    )
    got = read_midi(path)
    np.testing.assert_allclose(got[:, 0], [48, 60, 72])
    validate_notes(got)


def test_corrupt_and_missing_files_raise_midi_read_error(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06garbage that is not MIDI")
    with pytest.raises(MidiReadError) as info:
        read_midi(bad)
    assert info.value.path == bad and info.value.reason and str(bad) in str(info.value)
    with pytest.raises(MidiReadError, match="does not exist"):
        read_midi(tmp_path / "missing.mid")
    again = pickle.loads(pickle.dumps(info.value))  # errors cross process boundaries intact
    assert again.path == bad and again.reason == info.value.reason


def test_write_then_read_round_trip(tmp_path):
    notes = np.array([(60, 0.0, 0.5, 80), (64, 0.0, 0.0, 100), (67, 1.25, 2.0, 1)], dtype=float)
    write_midi(notes, tmp_path / "out.mid")
    got = read_midi(tmp_path / "out.mid")
    assert len(got) == 3  # the zero-length note is written one tick long, not lost
    np.testing.assert_allclose(got[:, [0, 1, 3]], notes[:, [0, 1, 3]], atol=TICK)
    np.testing.assert_allclose(got[:, 2], notes[:, 2], atol=2 * TICK)
    write_midi(empty_notes(), tmp_path / "empty.mid")
    assert read_midi(tmp_path / "empty.mid").shape == (0, 4)


def test_validate_notes_names_the_problem():
    with pytest.raises(ValueError, match="shape"):
        validate_notes(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="out of order"):
        validate_notes(np.array([(60, 1.0, 2.0, 80), (60, 0.0, 1.0, 80)], dtype=float))
    with pytest.raises(ValueError, match="row 0.*end must be >= start"):
        validate_notes(np.array([(60, 1.0, 0.5, 80)], dtype=float))
    with pytest.raises(ValueError, match="pitch"):
        validate_notes(np.array([(128, 0.0, 0.5, 80)], dtype=float))
    with pytest.raises(ValueError, match="shape"):
        sort_notes(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="program"):
        write_midi(empty_notes(), "never_written.mid", program=200)
