"""What every corpus loader returns: :class:`Piece` records and a :class:`LoadReport`.

A :class:`Piece` is one training item (notes plus who made it); a loader turns a collection of files
into pieces and a :class:`LoadReport` of what it could not use. A file that cannot be read never stops
a load: it is skipped, logged and listed in the report. Wrong arguments (a missing folder, a manifest
without the required columns, a request for a collection we may not use, nothing loaded at all) raise
:class:`CorpusError`, which says what to fix.

Also the small checks every loader shares: the ``max_seconds`` cap, the note-count floor
:data:`MIN_NOTES` and the error for a load that yields nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attribution.errors import AttributionError
from attribution.midi import END, START, validate_notes

__all__ = ["CorpusError", "LoadReport", "MIN_NOTES", "Piece"]

#: Pieces with fewer notes than this are skipped (fragments, empty parts, failed conversions).
MIN_NOTES = 8


class CorpusError(AttributionError):
    """A corpus cannot be loaded as asked: missing path, malformed manifest, refused folder, no pieces."""


@dataclass(frozen=True)
class Piece:
    """One training piece: its notes and who made it.

    Attributes:
        train_id: stable, readable id: the file's path relative to its collection, without suffix
            (``"bach/bwv1.6"``); ``"#<n>"`` is appended for the n-th tune of a multi-tune file.
        creator: who is paid for it (the corpus folder, a manifest's ``creator`` column, MAESTRO's
            ``canonical_composer``).
        title: human-readable title (the score's title, else the file name).
        source: where the notes came from (``"music21:bach/bwv1.6.mxl"`` or a file path).
        notes: notes array (see :mod:`attribution.midi`); read-only. Equality and hashing use the
            other fields only.
    """

    train_id: str
    creator: str
    title: str
    source: str
    notes: np.ndarray = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        notes = validate_notes(self.notes, where=f"notes of piece {self.train_id!r}").view()
        notes.flags.writeable = False
        object.__setattr__(self, "notes", notes)

    @property
    def seconds(self) -> float:
        """Length in seconds: the last note end (0 for no notes)."""
        return float(self.notes[:, END].max()) if len(self.notes) else 0.0

    @property
    def n_notes(self) -> int:
        return int(len(self.notes))


@dataclass
class LoadReport:
    """What a loader did.

    Attributes:
        loaded: number of pieces returned.
        skipped: ``(path, reason)`` of each file (or tune) that could not be used.
        ignored: ``(path, reason)`` of files deliberately not read (analyses, other formats of a
            piece already read, backups).
        from_cache: files read from the parse cache.
        parsed: files parsed (and then cached).
        elapsed_s: wall-clock seconds the load took.
    """

    loaded: int
    skipped: list[tuple[str, str]]
    ignored: list[tuple[str, str]] = field(default_factory=list)
    from_cache: int = 0
    parsed: int = 0
    elapsed_s: float = 0.0

    def summary(self, max_listed: int = 10) -> str:
        lines = [
            f"loaded {self.loaded} piece(s) in {self.elapsed_s:.1f} s "
            f"({self.parsed} file(s) parsed, {self.from_cache} from cache); skipped {len(self.skipped)}; "
            f"ignored {len(self.ignored)} non-score or duplicate file(s)"
        ]
        for path, reason in self.skipped[:max_listed]:
            lines.append(f"  skipped {path}: {reason}")
        if len(self.skipped) > max_listed:
            lines.append(f"  ... and {len(self.skipped) - max_listed} more skipped")
        return "\n".join(lines)


def _truncate(notes: np.ndarray, max_seconds: float | None) -> np.ndarray:
    """Keep the notes that start before ``max_seconds`` (whole, even if they end after it)."""
    if max_seconds is None:
        return notes
    return notes[notes[:, START] < max_seconds]


def _check_max_seconds(max_seconds: float | None) -> None:
    if max_seconds is not None and not max_seconds > 0:
        raise CorpusError(f"max_seconds must be positive or None (no cap), got {max_seconds!r}")


def _empty_result_error(where: str, report: LoadReport) -> CorpusError:
    reasons = "; ".join(f"{p}: {r}" for p, r in report.skipped[:5]) or "no files matched"
    return CorpusError(f"no pieces could be loaded from {where} ({len(report.skipped)} skipped: {reasons})")
