"""MIDI collections listed in a CSV manifest (``path, creator[, title]``): :func:`load_midi_folder`.

A manifest is input a user may receive from someone else, so it is confined (:func:`_confine`): its
paths must lie inside its own folder (MAESTRO's: inside ``root``, see :mod:`.maestro`, which shares
these helpers) unless ``allow_outside=True``, and one file credited to two creators is refused rather
than paid twice.
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

from attribution.midi import MidiReadError, read_midi

from .records import (
    MIN_NOTES,
    CorpusError,
    LoadReport,
    Piece,
    _check_max_seconds,
    _empty_result_error,
    _truncate,
)

__all__ = ["load_midi_folder"]

logger = logging.getLogger(__name__)


def _load_midi_rows(
    rows: list[tuple[Path, str, str, str]],
    *,
    sustain: bool,
    max_seconds: float | None,
    progress: bool,
    desc: str,
) -> tuple[list[Piece], list[tuple[str, str]]]:
    """Read ``(path, train_id, creator, title)`` rows; unreadable files are skipped with a reason."""
    from tqdm.auto import tqdm

    pieces: list[Piece] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for path, train_id, creator, title in tqdm(rows, desc=desc, unit="file", disable=not progress):
        where = str(path)
        if train_id in seen:
            skipped.append((where, f"listed more than once (train_id {train_id!r})"))
            continue
        seen.add(train_id)
        if not creator:
            skipped.append((where, "empty creator"))
            continue
        try:
            notes = _truncate(read_midi(path, sustain=sustain), max_seconds)
        except MidiReadError as exc:
            skipped.append((where, exc.reason))
            logger.warning("skipped %s: %s", where, exc.reason)
            continue
        if len(notes) < MIN_NOTES:
            reason = f"only {len(notes)} note(s); pieces need at least {MIN_NOTES}"
            skipped.append((where, reason))
            logger.warning("skipped %s: %s", where, reason)
            continue
        pieces.append(Piece(train_id=train_id, creator=creator, title=title or Path(train_id).name,
                            source=where, notes=notes))
    return pieces, skipped


def _read_csv(path: Path, required: list[str], optional: list[str], fix: str):
    import pandas as pd

    if path.is_dir():
        raise CorpusError(f"manifest {path} is a folder; {fix}")
    if not path.is_file():
        raise CorpusError(f"manifest {path} does not exist; {fix}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"manifest {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8 (a spreadsheet's 'CSV UTF-8' format)"
        ) from None
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except Exception as exc:
        raise CorpusError(f"manifest {path} is not a readable CSV file: {exc}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise CorpusError(
            f"manifest {path} lacks column(s) {missing}; expected columns {required}"
            + (f" and optionally {optional}" if optional else "")
            + f", found {list(df.columns)}"
        )
    return df


def _confine(
    rows: list[tuple[Path, str, str, str]],
    rels: list[str],
    base: Path,
    where: str,
    allow_outside: bool,
) -> tuple[list[tuple[Path, str, str, str]], list[tuple[str, str]]]:
    """Check the files a manifest lists before any is read; returns the rows to read and the duplicates.

    Raises :class:`CorpusError` for files outside ``base`` (unless ``allow_outside``; symbolic links count
    where they point) and for a file credited to two creators. A file listed twice for one creator is read once.
    """
    root = base.resolve()
    outside: list[str] = []
    first: dict[Path, tuple[str, str]] = {}  # real path -> (creator, manifest path) of its first row
    conflicts: dict[str, set[str]] = {}
    kept: list[tuple[Path, str, str, str]] = []
    duplicates: list[tuple[str, str]] = []
    for row, rel in zip(rows, rels):
        try:
            real = row[0].resolve()
        except (OSError, ValueError) as exc:  # e.g. a NUL byte, a symlink loop
            raise CorpusError(f"{where}: path {rel!r} cannot be resolved ({exc}); fix that row") from None
        if not allow_outside and not real.is_relative_to(root):
            outside.append(rel)
            continue
        creator = row[2]
        if creator and real in first:  # (a row without a creator is skipped when read)
            if creator != first[real][0]:
                conflicts.setdefault(first[real][1], {first[real][0]}).add(creator)
            else:
                duplicates.append((str(row[0]), f"the same file as {first[real][1]!r}, listed earlier"))
            continue
        if creator:
            first[real] = (creator, rel)
        kept.append(row)
    if outside:
        shown = ", ".join(repr(r) for r in outside[:5]) + (f" and {len(outside) - 5} more" if len(outside) > 5 else "")
        raise CorpusError(
            f"{where} lists {len(outside)} file(s) outside its folder {base}: {shown}. A manifest may only name "
            "files inside its own folder; move the files there, or set corpus.allow_outside: true in the build "
            "config if you trust where this manifest came from"
        )
    if conflicts:
        shown = "; ".join(f"{rel!r} to {sorted(c)}" for rel, c in list(conflicts.items())[:5])
        raise CorpusError(
            f"{where} credits the same file to more than one creator: {shown}. Royalties follow the creator, "
            "so list each file once with the creator to be paid (a joint work as one creator, e.g. 'A / B')"
        )
    return kept, duplicates


def _train_id(rel: str) -> str:
    rel = rel.replace("\\", "/")
    while rel.startswith("./"):
        rel = rel[2:]
    suffix = Path(rel).suffix
    return rel[: -len(suffix)] if suffix else rel


def load_midi_folder(
    manifest_csv: Path,
    *,
    sustain: bool = True,
    max_seconds: float | None = None,
    progress: bool = False,
    allow_outside: bool = False,
) -> tuple[list[Piece], LoadReport]:
    """Load the MIDI files listed in a CSV manifest with columns ``path, creator[, title]``.

    ``path`` is relative to the manifest's folder; ``train_id`` is that path without its suffix.
    Missing, corrupt or near-empty files are skipped and reported.

    Args:
        allow_outside: also read files outside the manifest's folder (``../x.mid``, absolute paths).

    Raises:
        CorpusError: the manifest is missing, not UTF-8, unreadable or lacks a required column; it names a
            file outside its folder (without ``allow_outside``) or credits one file to two creators; or no
            file loaded.
    """
    t0 = time.perf_counter()
    _check_max_seconds(max_seconds)
    manifest_csv = Path(manifest_csv)
    df = _read_csv(manifest_csv, ["path", "creator"], ["title"],
                   fix="write a CSV with columns path, creator[, title] (paths relative to it)")
    base = manifest_csv.parent
    rows = [
        (base / rel, _train_id(rel), creator.strip(), (row_title or "").strip())
        for rel, creator, row_title in zip(
            df["path"], df["creator"], df["title"] if "title" in df.columns else [""] * len(df)
        )
    ]
    rows, duplicates = _confine(rows, list(df["path"]), base, f"manifest {manifest_csv}", allow_outside)
    pieces, skipped = _load_midi_rows(rows, sustain=sustain, max_seconds=max_seconds,
                                      progress=progress, desc=f"reading {manifest_csv.name}")
    skipped += duplicates
    report = LoadReport(loaded=len(pieces), skipped=skipped, elapsed_s=time.perf_counter() - t0)
    if not pieces:
        raise _empty_result_error(f"manifest {manifest_csv}", report)
    return pieces, report
