"""Notes: the one in-memory form of a performance, and its MIDI reader and writer.

A *notes array* is a float64 array of shape ``(n, 4)`` whose columns are ``pitch`` (MIDI 0-127),
``start`` and ``end`` (seconds) and ``velocity`` (MIDI 0-127), sorted by ``(start, pitch)``. Every
other module (corpus loaders, the event tokenizer, generation) speaks this form; :func:`validate_notes`
checks it at the boundaries.

MIDI files are read and written with ``pretty_midi``. Only the sustain pedal is handled here:
:func:`read_midi` folds CC64 into note lengths, the way a listener hears it, so that a performance
recorded with the pedal (MAESTRO) and a score rendering without one are the same kind of data.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

__all__ = [
    "PITCH",
    "START",
    "END",
    "VELOCITY",
    "MidiReadError",
    "apply_sustain",
    "empty_notes",
    "read_midi",
    "sort_notes",
    "validate_notes",
    "write_midi",
]

# Column indices of a notes array.
PITCH, START, END, VELOCITY = 0, 1, 2, 3

SUSTAIN_CC = 64
# A pedal value of 64 or more is "down" (the MIDI convention for on/off controllers).
SUSTAIN_THRESHOLD = 64


class MidiReadError(ValueError):
    """A MIDI file is missing, unreadable or corrupt.

    Attributes:
        path: the file.
        reason: what went wrong, in words.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read MIDI file {self.path}: {reason}")

    def __reduce__(self):  # keeps the (path, reason) signature when sent between processes
        return (type(self), (self.path, self.reason))


def empty_notes() -> np.ndarray:
    """A notes array with no notes: shape ``(0, 4)``, float64."""
    return np.zeros((0, 4), dtype=np.float64)


def sort_notes(notes: np.ndarray) -> np.ndarray:
    """The same notes sorted by ``(start, pitch)`` (stable for ties), as a float64 array."""
    notes = np.asarray(notes, dtype=np.float64)
    if notes.size == 0:
        return empty_notes()
    if notes.ndim != 2 or notes.shape[1] != 4:
        raise ValueError(
            f"expected a notes array of shape (n, 4) (pitch, start_s, end_s, velocity), got shape {notes.shape}"
        )
    order = np.lexsort((notes[:, PITCH], notes[:, START]))
    return notes[order]


def validate_notes(notes: np.ndarray, where: str = "notes") -> np.ndarray:
    """Check that ``notes`` is a well-formed notes array and return it as float64.

    Raises:
        ValueError: naming ``where``, the first offending row and the rule it breaks.
    """
    arr = np.asarray(notes)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(
            f"{where}: expected an array of shape (n, 4) with columns pitch, start_s, end_s, velocity; "
            f"got shape {arr.shape}"
        )
    arr = arr.astype(np.float64, copy=False)
    if len(arr) == 0:
        return arr
    checks = [
        (~np.isfinite(arr).all(axis=1), "all values must be finite"),
        ((arr[:, PITCH] < 0) | (arr[:, PITCH] > 127) | (arr[:, PITCH] != np.round(arr[:, PITCH])),
         "pitch must be an integer in 0..127"),
        (arr[:, START] < 0, "start must be >= 0 seconds"),
        (arr[:, END] < arr[:, START], "end must be >= start"),
        ((arr[:, VELOCITY] < 0) | (arr[:, VELOCITY] > 127), "velocity must be in 0..127"),
    ]
    for bad, rule in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{where}: row {i} {arr[i].tolist()} is invalid: {rule}")
    starts, pitches = arr[:, START], arr[:, PITCH]
    unsorted = (np.diff(starts) < 0) | ((np.diff(starts) == 0) & (np.diff(pitches) < 0))
    if unsorted.any():
        i = int(np.flatnonzero(unsorted)[0]) + 1
        raise ValueError(f"{where}: row {i} is out of order; notes must be sorted by (start, pitch) "
                         "(use attribution.midi.sort_notes)")
    return arr


def _pedal_intervals(times: np.ndarray, values: np.ndarray, end_of_track: float) -> list[tuple[float, float]]:
    """Spans ``[down, up)`` during which the pedal is held; a pedal never released ends the track."""
    order = np.argsort(times, kind="stable")
    intervals: list[tuple[float, float]] = []
    down_since: float | None = None
    for t, v in zip(times[order], values[order]):
        is_down = v >= SUSTAIN_THRESHOLD
        if is_down and down_since is None:
            down_since = float(t)
        elif not is_down and down_since is not None:
            if t > down_since:
                intervals.append((down_since, float(t)))
            down_since = None
    if down_since is not None:
        intervals.append((down_since, max(end_of_track, down_since)))
    return intervals


def apply_sustain(
    notes: np.ndarray, pedal_times: np.ndarray, pedal_values: np.ndarray, end_of_track: float | None = None
) -> np.ndarray:
    """Lengthen notes released while the sustain pedal is down.

    A note whose key is released while the pedal is down keeps sounding until the pedal is released
    or the same pitch is struck again, whichever comes first. Notes released with the pedal up, and
    every note of a track without pedal events, are returned unchanged; no note is ever dropped or
    shortened. The pedal state at time ``t`` is the state after all pedal events at or before ``t``.

    Args:
        notes: one track's notes array (any order).
        pedal_times: times (s) of the track's CC64 events.
        pedal_values: their values (0-127).
        end_of_track: where a pedal that is never released lets go; defaults to the last note end
            or pedal event.
    """
    notes = sort_notes(notes)
    pedal_times = np.asarray(pedal_times, dtype=np.float64)
    pedal_values = np.asarray(pedal_values, dtype=np.float64)
    if len(notes) == 0 or len(pedal_times) == 0:
        return notes
    if end_of_track is None:
        end_of_track = float(max(notes[:, END].max(), pedal_times.max()))
    intervals = _pedal_intervals(pedal_times, pedal_values, end_of_track)
    if not intervals:
        return notes
    downs = np.array([d for d, _ in intervals])
    ups = np.array([u for _, u in intervals])

    out = notes.copy()
    # For each note, the next onset of the same pitch (inf if none): the re-strike cuts the sustain.
    next_onset = np.full(len(out), np.inf)
    for pitch in np.unique(out[:, PITCH]):
        idx = np.flatnonzero(out[:, PITCH] == pitch)  # already in start order
        starts = out[idx, START]
        later = np.searchsorted(starts, starts, side="right")
        has_later = later < len(idx)
        next_onset[idx[has_later]] = starts[later[has_later]]
    # The interval containing each release, if any: the last one with down <= end, if end < up.
    j = np.searchsorted(downs, out[:, END], side="right") - 1
    held = (j >= 0) & (out[:, END] < ups[np.clip(j, 0, None)])
    sustained_end = np.minimum(ups[np.clip(j, 0, None)], next_onset)
    out[:, END] = np.where(held, np.maximum(out[:, END], sustained_end), out[:, END])
    return out


def read_midi(path: str | Path, sustain: bool = True) -> np.ndarray:
    """Read every non-drum note of a MIDI file into one notes array.

    Args:
        path: a ``.mid``/``.midi`` file.
        sustain: fold the sustain pedal (CC64) into note lengths (see :func:`apply_sustain`). The pedal
            acts on the notes of its own track and channel (pretty_midi's instrument), which is how
            piano recordings such as MAESTRO store it.

    Raises:
        MidiReadError: the file is missing, unreadable or not valid MIDI.
    """
    import pretty_midi

    path = Path(path)
    if not path.is_file():
        raise MidiReadError(path, "file does not exist")
    try:
        with warnings.catch_warnings():
            # pretty_midi warns about meta events on non-zero tracks, which is common and harmless.
            warnings.simplefilter("ignore", RuntimeWarning)
            midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido/pretty_midi raise many types (OSError, EOFError, KeyError, ...)
        raise MidiReadError(path, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc

    tracks = []
    for inst in midi.instruments:
        if inst.is_drum or not inst.notes:
            continue
        notes = np.array([(n.pitch, n.start, n.end, n.velocity) for n in inst.notes], dtype=np.float64)
        if sustain:
            pedal = [(cc.time, cc.value) for cc in inst.control_changes if cc.number == SUSTAIN_CC]
            if pedal:
                times, values = np.array(pedal, dtype=np.float64).T
                notes = apply_sustain(notes, times, values)
        tracks.append(notes)
    if not tracks:
        return empty_notes()
    return sort_notes(np.concatenate(tracks))


def write_midi(notes: np.ndarray, path: str | Path, program: int = 0) -> None:
    """Write notes as a single-track MIDI file (General MIDI ``program``, 0 = acoustic grand piano).

    Velocities are rounded and clipped to 1..127. A note shorter than one MIDI tick is written one
    tick long, since a zero-length note is lost by MIDI readers.
    """
    import pretty_midi

    notes = validate_notes(notes, where=f"notes for {path}")
    if not 0 <= program <= 127:
        raise ValueError(f"program must be a General MIDI program number in 0..127, got {program}")
    midi = pretty_midi.PrettyMIDI()
    tick = midi.tick_to_time(1)
    inst = pretty_midi.Instrument(program=program)
    for pitch, start, end, velocity in notes:
        inst.notes.append(
            pretty_midi.Note(
                velocity=int(np.clip(round(velocity), 1, 127)),
                pitch=int(pitch),
                start=float(start),
                end=float(max(end, start + tick)),
            )
        )
    midi.instruments.append(inst)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))
