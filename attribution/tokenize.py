"""Performance-event tokenization: notes <-> a sequence of integer tokens, as in Music Transformer.

:class:`EventTokenizer` implements the event vocabulary of Oore et al. (2018) used by Music
Transformer (Huang et al., 2019)::

    NOTE_ON  x 128       a key goes down (MIDI pitch 0-127)
    NOTE_OFF x 128       a key goes up
    TIME_SHIFT x S       time moves on by 1..S steps of ``time_step`` seconds
    VELOCITY x B         the velocity bin of the following NOTE_ONs
    PAD, BOS, EOS

The encoding is lossless on the time grid: :meth:`EventTokenizer.decode` of
:meth:`EventTokenizer.encode` gives back exactly :meth:`EventTokenizer.quantize` of the input,
which keeps every note (pitch exact, times rounded to the grid, velocity to its bin), with two
exceptions forced by the encoding, where one key cannot sound twice at once:

* notes of the same pitch that overlap: the earlier one ends where the later one starts;
* notes of the same pitch that start on the same step (a unison of two parts) are one key strike:
  they become one note with the later end and the louder velocity.

A note whose length rounds to zero is given one step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from attribution.midi import END, PITCH, START, VELOCITY, empty_notes, sort_notes, validate_notes

__all__ = ["ENDINGS", "EventTokenizer", "pitch_name"]

_N_PITCHES = 128
#: How :meth:`EventTokenizer.decode` ends a note: its NOTE_OFF, a new NOTE_ON of its pitch, the sequence's end.
ENDINGS = ("off", "restrike", "end")
_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def pitch_name(pitch: int) -> str:
    """Scientific pitch name with C4 = MIDI 60 (``"C4"``, ``"F#3"``, ``"C-1"`` for MIDI 0)."""
    return f"{_NAMES[pitch % 12]}{pitch // 12 - 1}"


class EventTokenizer:
    """Notes <-> performance-event tokens on a fixed time grid.

    Token ids, in order: NOTE_ON 0-127, NOTE_OFF 128-255, TIME_SHIFT of 1..``max_shift_steps``
    steps, VELOCITY bins 0..``velocity_bins``-1, then PAD, BOS, EOS. The defaults (10 ms steps,
    shifts up to 1 s, 32 velocity bins) give the 388 events of Music Transformer plus 3 specials.

    Args:
        time_step: grid step in seconds.
        max_shift_steps: longest single TIME_SHIFT, in steps; longer gaps use several.
        velocity_bins: number of equal-width velocity bins over MIDI velocities 1-127.
    """

    def __init__(self, time_step: float = 0.01, max_shift_steps: int = 100, velocity_bins: int = 32) -> None:
        if not (isinstance(time_step, (int, float)) and np.isfinite(time_step) and time_step > 0):
            raise ValueError(f"time_step must be a positive number of seconds, got {time_step!r}")
        if not (isinstance(max_shift_steps, (int, np.integer)) and max_shift_steps >= 1):
            raise ValueError(f"max_shift_steps must be an integer >= 1, got {max_shift_steps!r}")
        if not (isinstance(velocity_bins, (int, np.integer)) and 1 <= velocity_bins <= 127):
            raise ValueError(f"velocity_bins must be an integer in 1..127, got {velocity_bins!r}")
        self.time_step = float(time_step)
        self.max_shift_steps = int(max_shift_steps)
        self.velocity_bins = int(velocity_bins)
        # Bins of (nearly) equal width over MIDI velocities 1..127: velocity v is in bin
        # floor((v - 1) * bins / 127); a bin decodes to the middle of the velocities in it.
        v = np.arange(1, 128)
        self._bin_of_velocity = np.concatenate([[0], (v - 1) * self.velocity_bins // 127])
        lows = np.array([v[self._bin_of_velocity[1:] == b].min() for b in range(self.velocity_bins)])
        highs = np.array([v[self._bin_of_velocity[1:] == b].max() for b in range(self.velocity_bins)])
        self._velocity_of_bin = ((lows + highs) // 2).astype(np.float64)
        self._note_on = 0
        self._note_off = _N_PITCHES
        self._shift = 2 * _N_PITCHES  # id of a shift of 1 step
        self._velocity = self._shift + self.max_shift_steps
        self._pad = self._velocity + self.velocity_bins
        self._bos = self._pad + 1
        self._eos = self._pad + 2

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        return self._eos + 1

    @property
    def pad_id(self) -> int:
        return self._pad

    @property
    def bos_id(self) -> int:
        return self._bos

    @property
    def eos_id(self) -> int:
        return self._eos

    def note_on_id(self, pitch: int) -> int:
        return self._note_on + int(pitch)

    def note_off_id(self, pitch: int) -> int:
        return self._note_off + int(pitch)

    def shift_id(self, steps: int) -> int:
        """The TIME_SHIFT of ``steps`` grid steps (1..``max_shift_steps``)."""
        if not 1 <= steps <= self.max_shift_steps:
            raise ValueError(f"a single shift is 1..{self.max_shift_steps} steps, got {steps}")
        return self._shift + int(steps) - 1

    def velocity_to_bin(self, velocity: np.ndarray | float) -> np.ndarray:
        """Bin index (0-based) of MIDI velocities; values are clipped to 1..127 first."""
        v = np.clip(np.rint(np.asarray(velocity, dtype=np.float64)), 1, 127).astype(np.int64)
        return self._bin_of_velocity[v]

    def bin_to_velocity(self, bin_index: np.ndarray | int) -> np.ndarray:
        """The velocity a bin decodes to: the middle of the velocities in it."""
        return self._velocity_of_bin[np.asarray(bin_index, dtype=np.int64)]

    def describe(self, token: int) -> str:
        """A readable name: ``"note_on C4"``, ``"note_off A#2"``, ``"shift 0.25s"``, ``"velocity 80"``."""
        t = int(token)
        if 0 <= t < self._note_off:
            return f"note_on {pitch_name(t)}"
        if t < self._shift:
            return f"note_off {pitch_name(t - self._note_off)}"
        if t < self._velocity:
            return f"shift {(t - self._shift + 1) * self.time_step:g}s"
        if t < self._pad:
            return f"velocity {int(self.bin_to_velocity(t - self._velocity))}"
        if t == self._pad:
            return "pad"
        if t == self._bos:
            return "bos"
        if t == self._eos:
            return "eos"
        raise ValueError(f"token {token} is outside the vocabulary (0..{self.vocab_size - 1})")

    # ------------------------------------------------------------------ notes -> canonical grid
    def _quantized_steps(self, notes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Pitches, start/end steps and velocity bins of what the encoding can represent."""
        notes = validate_notes(sort_notes(notes), where="notes to tokenize")
        if len(notes) == 0:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z, z
        pitch = notes[:, PITCH].astype(np.int64)
        # floor(x + 0.5): round half up, so a time on a half step always goes the same way.
        start = np.floor(notes[:, START] / self.time_step + 0.5).astype(np.int64)
        end = np.floor(notes[:, END] / self.time_step + 0.5).astype(np.int64)
        end = np.maximum(end, start + 1)
        vbin = self.velocity_to_bin(notes[:, VELOCITY])

        # One key strike per (pitch, start step): unisons merge into the longest, loudest note.
        order = np.lexsort((start, pitch))
        pitch, start, end, vbin = pitch[order], start[order], end[order], vbin[order]
        key_change = np.ones(len(pitch), dtype=bool)
        key_change[1:] = (pitch[1:] != pitch[:-1]) | (start[1:] != start[:-1])
        first = np.flatnonzero(key_change)
        end = np.maximum.reduceat(end, first)
        vbin = np.maximum.reduceat(vbin, first)
        pitch, start = pitch[first], start[first]

        # A key that is struck again while it sounds is released at the new strike.
        same_pitch_next = np.zeros(len(pitch), dtype=bool)
        same_pitch_next[:-1] = pitch[1:] == pitch[:-1]
        next_start = np.empty_like(start)
        next_start[:-1] = start[1:]
        cut = same_pitch_next & (end > next_start)
        end = np.where(cut, next_start, end)
        return pitch, start, end, vbin

    def quantize(self, notes: np.ndarray) -> np.ndarray:
        """The notes as the encoding represents them: exactly ``decode(encode(notes))``."""
        pitch, start, end, vbin = self._quantized_steps(notes)
        if len(pitch) == 0:
            return empty_notes()
        out = np.column_stack([
            pitch.astype(np.float64),
            start * self.time_step,
            end * self.time_step,
            self.bin_to_velocity(vbin),
        ])
        return sort_notes(out)

    # ------------------------------------------------------------------ encode / decode
    def encode(self, notes: np.ndarray) -> np.ndarray:
        """Notes -> ``[BOS, events..., EOS]`` as int64.

        Events at the same time are ordered note-offs, then (velocity, note-on) pairs, each by
        pitch; a VELOCITY token precedes a NOTE_ON only when the bin changes.
        """
        pitch, start, end, vbin = self._quantized_steps(notes)
        n = len(pitch)
        # Event table: (time step, kind 0=off/1=on, pitch, velocity bin).
        times = np.concatenate([end, start])
        kinds = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
        pitches = np.concatenate([pitch, pitch])
        bins = np.concatenate([vbin, vbin])
        order = np.lexsort((pitches, kinds, times))

        tokens: list[int] = [self._bos]
        now = 0
        current_bin = -1
        for i in order:
            t = int(times[i])
            gap = t - now
            while gap > 0:
                step = min(gap, self.max_shift_steps)
                tokens.append(self._shift + step - 1)
                gap -= step
            now = t
            if kinds[i] == 0:
                tokens.append(self._note_off + int(pitches[i]))
            else:
                if bins[i] != current_bin:
                    current_bin = int(bins[i])
                    tokens.append(self._velocity + current_bin)
                tokens.append(self._note_on + int(pitches[i]))
        tokens.append(self._eos)
        return np.asarray(tokens, dtype=np.int64)

    def decode(self, tokens: np.ndarray | list[int], with_endings: bool = False):
        """Tokens -> notes, tolerant of what a sampler may produce.

        PAD, BOS and EOS are ignored. A NOTE_OFF of a pitch that is not sounding is ignored; a
        NOTE_ON of a sounding pitch ends the old note first (dropping it if it started on the same
        step, as it would have no length); notes still sounding at the end end there, and a note
        that would have no length is given one step. Before any VELOCITY token, notes get velocity
        80's bin.

        With ``with_endings``, returns ``(notes, endings)``: for each note (in the notes' order) how it
        ended, one of :data:`ENDINGS` -- ``"off"`` its NOTE_OFF, ``"restrike"`` a NOTE_ON of its pitch,
        ``"end"`` the end of the sequence (a note the sequence left sounding, which a MIDI writer cuts).

        Raises:
            ValueError: a token outside ``0..vocab_size - 1``.
        """
        arr = np.asarray(tokens)
        if arr.ndim != 1:
            raise ValueError(f"tokens must be a 1-d sequence, got shape {arr.shape}")
        if len(arr) and (arr.min() < 0 or arr.max() >= self.vocab_size):
            bad = int(arr[(arr < 0) | (arr >= self.vocab_size)][0])
            raise ValueError(f"token {bad} is outside the vocabulary (0..{self.vocab_size - 1})")
        now = 0
        velocity = float(self.bin_to_velocity(self.velocity_to_bin(80)))
        sounding: dict[int, tuple[int, float]] = {}
        rows: list[tuple[float, int, int, float]] = []
        endings: list[str] = []
        for tok in arr.tolist():
            if tok < self._note_off:
                if tok in sounding:
                    s, v = sounding.pop(tok)
                    if now > s:
                        rows.append((tok, s, now, v))
                        endings.append("restrike")
                sounding[tok] = (now, velocity)
            elif tok < self._shift:
                p = tok - self._note_off
                if p in sounding:
                    s, v = sounding.pop(p)
                    rows.append((p, s, max(now, s + 1), v))
                    endings.append("off")
            elif tok < self._velocity:
                now += tok - self._shift + 1
            elif tok < self._pad:
                velocity = float(self.bin_to_velocity(tok - self._velocity))
            # PAD, BOS, EOS carry no music.
        for p, (s, v) in sounding.items():
            rows.append((p, s, max(now, s + 1), v))
            endings.append("end")
        if not rows:
            return (empty_notes(), np.array([], dtype=object)) if with_endings else empty_notes()
        out = np.array(rows, dtype=np.float64)
        out[:, START] *= self.time_step
        out[:, END] *= self.time_step
        if not with_endings:
            return sort_notes(out)
        order = np.lexsort((out[:, PITCH], out[:, START]))  # sort_notes' order, applied to the endings too
        return out[order], np.asarray(endings, dtype=object)[order]

    # ------------------------------------------------------------------ config
    def to_dict(self) -> dict[str, Any]:
        """The constructor arguments, for saving beside a model."""
        return {
            "time_step": self.time_step,
            "max_shift_steps": self.max_shift_steps,
            "velocity_bins": self.velocity_bins,
        }

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> EventTokenizer:
        """Rebuild a tokenizer saved with :meth:`to_dict`."""
        allowed = {"time_step", "max_shift_steps", "velocity_bins"}
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise ValueError(f"unknown EventTokenizer setting(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EventTokenizer) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.to_dict().items()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"EventTokenizer({args})"
