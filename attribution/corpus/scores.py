"""music21 scores -> notes: :func:`parse_score` and the worker that runs it for a loader.

music21 reads the score formats (MusicXML, Humdrum, ABC); the walk from its streams to a notes array
(:mod:`attribution.midi`) is written here, because the obvious music21 route is too slow: see
:func:`_part_notes`, which merges tied notes in one pass instead of calling ``stripTies``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from attribution.midi import END, START, empty_notes, sort_notes

from .records import MIN_NOTES, _truncate

__all__ = ["DEFAULT_TEMPO_BPM", "DEFAULT_VELOCITY", "SCORE_SUFFIXES", "parse_score"]

#: Score formats read from the music21 corpus, best first: when a piece exists in two formats
#: (``bwv277.krn`` and ``bwv277.mxl``) only the first in this order is used.
SCORE_SUFFIXES: tuple[str, ...] = (".mxl", ".musicxml", ".xml", ".krn", ".abc")
DEFAULT_TEMPO_BPM = 100.0
DEFAULT_VELOCITY = 80


def parse_score(path: str | Path, max_seconds: float | None = None) -> list[tuple[str, str, np.ndarray]]:
    """Parse a score file with music21 into ``(suffix, title, notes)`` per piece in the file.

    Most files hold one piece (``suffix == ""``). An ABC file holding several tunes is either the
    voices of one piece (all tunes share a title, as in the Josquin files: they are merged as
    parts) or a collection of different tunes (each becomes a piece, ``suffix == "#<number>"``).

    Notes: tied notes are merged (as music21's ``stripTies`` does), every part is read, chords are
    expanded, rests, grace notes, chord symbols and unpitched notes are skipped. Quarter lengths
    become seconds at the score's first metronome mark (``DEFAULT_TEMPO_BPM`` when it has none); repeats are not
    expanded. Velocity is the note's volume if the score sets one, else ``DEFAULT_VELOCITY``.
    With ``max_seconds`` only notes starting before it are kept.

    Raises:
        Exception: whatever music21 raises for an unreadable file.
    """
    from music21 import converter, stream

    path = Path(path)
    fallback = f"{path.parent.name} {path.stem}" if path.stem.startswith("movement") else path.stem
    parsed = converter.parse(str(path), forceSource=True)
    if isinstance(parsed, stream.Opus):
        scores = list(parsed.scores)
        titles = {_score_title(s, "") for s in scores}
        if len(scores) > 1 and len(titles) > 1:
            out = []
            used: set[str] = set()
            for i, score in enumerate(scores, start=1):
                number = score.metadata.number if score.metadata and score.metadata.number else str(i)
                if number in used:  # two tunes with the same ABC X: number still need distinct ids
                    number = f"{number}-{i}"
                used.add(number)
                notes = _truncate(_score_notes([score]), max_seconds)
                out.append((f"#{number}", _score_title(score, f"{fallback} #{number}"), notes))
            return out
        title = _score_title(scores[0], fallback) if scores else fallback
        return [("", title, _truncate(_score_notes(scores), max_seconds))]
    return [("", _score_title(parsed, fallback), _truncate(_score_notes([parsed]), max_seconds))]


def _score_title(score, fallback: str) -> str:
    md = getattr(score, "metadata", None)
    title = str(md.bestTitle or "").strip() if md is not None else ""
    # music21 fills in the file name when a score has no title; that is not a title.
    if not title or Path(title).stem == Path(fallback).name or re.fullmatch(r"[\w.-]+\.(mxl|xml|krn|abc)", title):
        return fallback
    return title


def _first_bpm(scores) -> float:
    from music21 import tempo

    for score in scores:
        for mark in score.recurse().getElementsByClass(tempo.MetronomeMark):
            bpm = mark.getQuarterBPM()
            if bpm and bpm > 0:
                return float(bpm)
    return DEFAULT_TEMPO_BPM


def _velocity(*elements) -> float:
    for el in elements:
        if el is not None and el.hasVolumeInformation() and el.volume.velocity is not None:
            return float(np.clip(el.volume.velocity, 1, 127))
    return float(DEFAULT_VELOCITY)


def _voiced_notes(part):
    """``(voice, offset_ql, element)`` of each note or chord of a part, offsets within the part."""
    from music21 import stream

    for el in part.notes:  # notes directly in the part (scores without measures)
        yield "", float(el.offset), el
    for m in part.getElementsByClass(stream.Measure):
        base = float(m.offset)
        for el in m.notes:
            yield "", base + float(el.offset), el
        for v in m.voices:
            vbase = base + float(v.offset)
            for el in v.notes:
                yield str(v.id), vbase + float(el.offset), el


def _part_notes(part) -> list[list[float]]:
    """``[midi, start_ql, end_ql, velocity]`` of one part's sounding notes, tied notes merged.

    Like music21's ``stripTies`` (which re-sorts the stream for every merge and takes minutes on a
    string quartet), in one pass: a note tied from the previous note of the same pitch in the same
    voice, ending where it starts, extends it. As ``stripTies`` does, a tie start followed by the
    same pitch without a tie mark ends the chain there; a tie continued in another voice is followed.
    """
    from music21 import chord, harmony, note

    events = []
    for voice, start, el in _voiced_notes(part):
        if isinstance(el, (harmony.Harmony, note.Unpitched)) or el.duration.isGrace:
            continue
        ql = float(el.duration.quarterLength)
        if ql <= 0:
            continue
        members = el.notes if isinstance(el, chord.Chord) else (el,)
        for member in members:
            if not hasattr(member, "pitch") or not 0 <= member.pitch.midi <= 127:
                continue
            kind = member.tie.type if member.tie is not None else None
            vel = _velocity(member, el) if member is not el else _velocity(el)
            events.append((start, voice, member.pitch.midi, start + ql, kind, vel))
    events.sort(key=lambda e: (e[0], e[1], e[2]))

    rows: list[list[float]] = []
    tied: dict[tuple[str, int], list[float]] = {}  # (voice, midi) -> open chain [midi, start, end, vel]
    for start, voice, midi, end, kind, vel in events:
        key = (voice, midi)
        held = tied.get(key)
        if held is None and kind in ("continue", "stop"):
            # A tie may cross into another voice: follow any open chain of this pitch that ends here.
            key = next((k for k, h in tied.items() if k[1] == midi and abs(h[2] - start) < 1e-6), key)
            held = tied.get(key)
        if held is not None:
            if abs(held[2] - start) < 1e-6:
                held[2] = end
                if kind not in ("start", "continue"):
                    rows.append(tied.pop(key))
                continue
            if start >= held[2] - 1e-6:  # the chain broke off: it ends where it ends
                rows.append(tied.pop(key))
        row = [float(midi), start, end, vel]
        if kind in ("start", "continue") and key not in tied:
            tied[key] = row
        else:
            rows.append(row)
    rows.extend(tied.values())
    return rows


def _score_notes(scores) -> np.ndarray:
    """Notes of several scores played together (each from time 0), in seconds."""
    seconds_per_quarter = 60.0 / _first_bpm(scores)
    rows: list[list[float]] = []
    for score in scores:
        parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
        for part in parts:
            rows.extend(_part_notes(part))
    if not rows:
        return empty_notes()
    notes = np.array(rows, dtype=np.float64)
    notes[:, START:END + 1] *= seconds_per_quarter
    notes[:, START] = np.maximum(notes[:, START], 0.0)  # a stray negative offset (pickup) starts at 0
    return sort_notes(notes)


def _parse_file_worker(path: str, max_seconds: float | None) -> list[tuple[str, str, np.ndarray | None, str]]:
    """Top-level (picklable) worker: ``(suffix, title, notes or None, skip reason)`` per piece."""
    try:
        with warnings.catch_warnings():
            # music21 warns about every overfull measure; the notes are still read, so keep quiet.
            warnings.simplefilter("ignore")
            entries = parse_score(path, max_seconds)
    except Exception as exc:  # a corrupt score must not stop the load; its reason is reported
        return [("", Path(path).stem, None, f"music21 could not parse it: {type(exc).__name__}: {exc}")]
    out: list[tuple[str, str, np.ndarray | None, str]] = []
    for suffix, title, notes in entries:
        if len(notes) < MIN_NOTES:
            out.append((suffix, title, None, f"only {len(notes)} note(s); pieces need at least {MIN_NOTES}"))
        else:
            out.append((suffix, title, notes, ""))
    return out
