"""EventTokenizer: vocabulary, lossless round trip (random notes and real MIDI files), robust decoding."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.midi import read_midi, sort_notes, write_midi
from attribution.tokenize import EventTokenizer, pitch_name

TOK = EventTokenizer()
DT = TOK.time_step
EPS = 1e-9
MIDI_TICK = 1 / 440  # pretty_midi's default resolution at 120 bpm


def assert_keeps_every_note(original: np.ndarray, decoded: np.ndarray, tok: EventTokenizer) -> None:
    """Every original note is in ``decoded``: pitch exact, start within half a step, end within one
    step (earlier only when cut by the next strike of the same key, later only when merged with a
    longer unison or lengthened to one step), velocity within its bin."""
    dt = tok.time_step
    original = sort_notes(original)
    steps = np.floor(original[:, 1] / dt + 0.5)
    keys = {(int(p), int(s)) for p, s in zip(original[:, 0], steps)}
    assert len(decoded) == len(keys), "one decoded note per (pitch, start step)"
    index = {(int(p), int(round(s / dt))): (e, v) for p, s, e, v in decoded}
    onsets = {(int(p), round(s / dt)) for p, s, _, _ in decoded}
    for (p, s, e, v), step in zip(original, steps):
        key = (int(p), int(step))
        assert key in index, f"note {p, s, e, v} was lost"
        assert abs(step * dt - s) <= dt / 2 + EPS
        e_dec, v_dec = index[key]
        unison = original[(original[:, 0] == p) & (steps == step)]
        if e_dec < e - dt - EPS:
            assert (int(p), round(e_dec / dt)) in onsets, f"note {p, s, e} ended early without a re-strike"
        if e_dec > e + dt + EPS:
            lengthened = abs(e_dec - (step + 1) * dt) < EPS
            assert lengthened or unison[:, 2].max() >= e_dec - dt - EPS, f"note {p, s, e} got longer"
        loudest = tok.bin_to_velocity(tok.velocity_to_bin(unison[:, 3]).max())
        assert v_dec == loudest
        if len(unison) == 1:
            assert abs(v_dec - v) <= np.ceil(127 / tok.velocity_bins) / 2 + EPS


@st.composite
def note_arrays(draw, max_notes=40):
    n = draw(st.integers(0, max_notes))
    # A narrow pitch range forces same-pitch overlaps and unisons; times both on and off the grid.
    pitch = draw(st.lists(st.integers(58, 64), min_size=n, max_size=n))
    start = draw(st.lists(
        st.one_of(st.integers(0, 400).map(lambda k: k * 0.005), st.floats(0, 25, allow_nan=False)),
        min_size=n, max_size=n,
    ))
    dur = draw(st.lists(st.one_of(st.just(0.0), st.floats(0, 3, allow_nan=False)), min_size=n, max_size=n))
    vel = draw(st.lists(st.integers(1, 127), min_size=n, max_size=n))
    rows = [(p, s, s + d, v) for p, s, d, v in zip(pitch, start, dur, vel)]
    return sort_notes(np.array(rows, dtype=float).reshape(-1, 4))


def test_default_vocabulary():
    assert TOK.vocab_size == 391
    assert (TOK.pad_id, TOK.bos_id, TOK.eos_id) == (388, 389, 390)
    small = EventTokenizer(time_step=0.02, max_shift_steps=50, velocity_bins=8)
    assert small.vocab_size == 128 + 128 + 50 + 8 + 3
    assert TOK.describe(60) == "note_on C4"
    assert TOK.describe(128 + 70) == "note_off A#4"
    assert TOK.describe(256 + 24) == "shift 0.25s"
    assert TOK.describe(256 + 99) == "shift 1s"
    assert TOK.describe(TOK.bos_id) == "bos" and TOK.describe(TOK.pad_id) == "pad"
    vel = TOK.describe(256 + 100 + int(TOK.velocity_to_bin(80)))
    assert vel.startswith("velocity ") and abs(int(vel.split()[1]) - 80) <= 2
    assert pitch_name(0) == "C-1" and pitch_name(127) == "G9"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        TOK.describe(391)


def test_every_velocity_bin_is_used_and_decodes_inside_itself():
    for bins in (1, 7, 32, 100, 127):
        tok = EventTokenizer(velocity_bins=bins)
        b = tok.velocity_to_bin(np.arange(1, 128))
        assert set(b.tolist()) == set(range(bins))
        assert (tok.velocity_to_bin(tok.bin_to_velocity(np.arange(bins))) == np.arange(bins)).all()


def test_encode_frames_and_emits_velocity_only_on_change():
    notes = np.array([(60, 0.0, 0.5, 80), (64, 0.0, 0.5, 80), (67, 0.5, 1.0, 80), (72, 1.0, 1.5, 30)], float)
    tokens = TOK.encode(notes)
    assert tokens.dtype == np.int64
    assert tokens[0] == TOK.bos_id and tokens[-1] == TOK.eos_id
    names = [TOK.describe(t) for t in tokens[1:-1]]
    assert sum(n.startswith("velocity") for n in names) == 2
    assert names[:4] == ["velocity 78", "note_on C4", "note_on E4", "shift 0.5s"]
    # Offs come before ons at the same time.
    assert names[4:7] == ["note_off C4", "note_off E4", "note_on G4"]
    assert TOK.encode(np.zeros((0, 4))).tolist() == [TOK.bos_id, TOK.eos_id]


def test_long_gaps_use_several_shifts():
    notes = np.array([(60, 0.0, 0.1, 80), (62, 12.34, 12.5, 80)], float)
    tokens = TOK.encode(notes)
    shifts = [TOK.describe(t) for t in tokens if 256 <= t < 356]
    assert shifts.count("shift 1s") >= 12
    np.testing.assert_allclose(TOK.decode(tokens)[:, 1], [0.0, 12.34], atol=EPS)


@settings(max_examples=100, deadline=None)
@given(note_arrays())
def test_round_trip_random_notes(notes):
    decoded = TOK.decode(TOK.encode(notes))
    np.testing.assert_array_equal(decoded, TOK.quantize(notes))
    assert_keeps_every_note(notes, decoded, TOK)


@settings(max_examples=40, deadline=None)
@given(note_arrays(max_notes=20), st.sampled_from([0.005, 0.02, 0.125]), st.integers(1, 30), st.integers(1, 127))
def test_round_trip_other_settings(notes, time_step, max_shift, bins):
    tok = EventTokenizer(time_step=time_step, max_shift_steps=max_shift, velocity_bins=bins)
    decoded = tok.decode(tok.encode(notes))
    np.testing.assert_array_equal(decoded, tok.quantize(notes))
    assert_keeps_every_note(notes, decoded, tok)


def test_overlap_and_unison_rules():
    notes = np.array([
        (60, 0.0, 1.0, 50),   # cut at 0.5 by the next C4
        (60, 0.5, 0.8, 60),
        (64, 2.0, 2.3, 40),   # unison with the next: one note to 2.6, loudest velocity
        (64, 2.0, 2.6, 100),
        (67, 3.0, 3.001, 80), # rounds to zero length: one step
    ], float)
    got = TOK.decode(TOK.encode(notes))
    np.testing.assert_allclose(got[:, :3], [(60, 0.0, 0.5), (60, 0.5, 0.8), (64, 2.0, 2.6), (67, 3.0, 3.01)])
    assert got[2, 3] == TOK.bin_to_velocity(TOK.velocity_to_bin(100))


def test_decode_tolerates_malformed_sequences():
    t = TOK
    shift = lambda steps: 256 + steps - 1  # noqa: E731
    tokens = [
        t.pad_id, 128 + 50,              # note-off without note-on: ignored
        60, shift(10), 60,               # repeated note-on: the first C4 ends at 0.1
        62, 62,                          # repeated note-on on the same step: one note
        t.eos_id, shift(5), 128 + 60,    # tokens after EOS are still read
        64,                              # left open at the end: closed with one step
    ]
    got = t.decode(tokens)
    expected = [(60, 0.0, 0.1), (60, 0.1, 0.15), (62, 0.1, 0.15), (64, 0.15, 0.16)]
    np.testing.assert_allclose(got[:, :3], expected)
    assert t.decode([t.bos_id, t.eos_id]).shape == (0, 4)
    with pytest.raises(ValueError, match="token 9999"):
        t.decode([60, 9999])


def test_config_round_trip_and_validation():
    tok = EventTokenizer(time_step=0.008, max_shift_steps=125, velocity_bins=16)
    again = EventTokenizer.from_dict(tok.to_dict())
    assert again == tok and again.vocab_size == tok.vocab_size
    with pytest.raises(ValueError, match="unknown EventTokenizer setting"):
        EventTokenizer.from_dict({"time_step": 0.01, "bins": 3})
    for bad in ({"time_step": 0}, {"max_shift_steps": 0}, {"velocity_bins": 128}):
        with pytest.raises(ValueError):
            EventTokenizer(**bad)


def _performance(path, with_pedal: bool):
    """A small piano performance: chords, repeated notes, same-pitch overlaps, optional pedal."""
    rng = np.random.default_rng(7)
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    t = 0.0
    for _ in range(60):
        for p in rng.choice(np.arange(48, 72), size=rng.integers(1, 4), replace=False):
            dur = float(rng.uniform(0.02, 1.5))
            piano.notes.append(pretty_midi.Note(int(rng.integers(20, 120)), int(p), t, t + dur))
        t += float(rng.choice([0.0, 0.013, 0.1, 0.25, 1.7]))
    if with_pedal:
        for down in np.arange(0.3, t, 2.0):
            piano.control_changes.append(pretty_midi.ControlChange(64, 127, float(down)))
            piano.control_changes.append(pretty_midi.ControlChange(64, 0, float(down + 1.2)))
    pm.instruments.append(piano)
    pm.write(str(path))
    return path


@pytest.mark.parametrize("with_pedal", [False, True])
def test_round_trip_midi_file(tmp_path, with_pedal):
    src = _performance(tmp_path / "performance.mid", with_pedal)
    notes = read_midi(src, sustain=True)
    if with_pedal:
        assert (notes[:, 2] > read_midi(src, sustain=False)[:, 2]).any()
    decoded = TOK.decode(TOK.encode(notes))
    assert_keeps_every_note(notes, decoded, TOK)
    write_midi(decoded, tmp_path / "decoded.mid")
    back = read_midi(tmp_path / "decoded.mid")
    assert back.shape == decoded.shape
    np.testing.assert_allclose(back, decoded, atol=MIDI_TICK)
