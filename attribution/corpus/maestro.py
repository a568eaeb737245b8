"""The MAESTRO piano-performance dataset in its own CSV layout: :func:`load_maestro`.

Its CSV is confined to ``root`` like a manifest to its folder (see :mod:`.manifests`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from .manifests import _confine, _load_midi_rows, _read_csv, _train_id
from .records import CorpusError, LoadReport, Piece, _check_max_seconds, _empty_result_error

__all__ = ["load_maestro"]

logger = logging.getLogger(__name__)

_MAESTRO_COLUMNS = ["canonical_composer", "canonical_title", "midi_filename"]


def load_maestro(
    root: Path,
    *,
    csv_path: Path | None = None,
    splits: list[str] | None = None,
    sustain: bool = True,
    max_seconds: float | None = None,
    progress: bool = True,
    allow_outside: bool = False,
) -> tuple[list[Piece], LoadReport]:
    """Load the MAESTRO dataset from its own layout: ``root/maestro-v*.csv`` and the MIDI files.

    Creator is ``canonical_composer`` as written in the CSV (including joint credits such as
    ``"Frédéric Chopin / Franz Liszt"``); title is ``canonical_title``; ``train_id`` is
    ``midi_filename`` (relative to ``root``) without its suffix.

    Args:
        csv_path: the metadata CSV (default: the newest ``maestro-v*.csv`` in ``root``).
        splits: keep only these values of the ``split`` column (e.g. ``["train"]``).
        allow_outside: also read files the CSV names outside ``root``.

    Raises:
        CorpusError: ``root`` or the CSV is missing, a column is missing, an unknown split is asked
            for, or no file could be loaded.
    """
    t0 = time.perf_counter()
    _check_max_seconds(max_seconds)
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"MAESTRO folder {root} does not exist; download MAESTRO and pass its root folder")
    if csv_path is None:
        found = sorted(root.glob("maestro-v*.csv"))
        if not found:
            raise CorpusError(
                f"no maestro-v*.csv in {root}; pass csv_path= or point root at the unpacked MAESTRO folder"
            )
        csv_path = found[-1]
        if len(found) > 1:
            logger.info("several MAESTRO CSVs in %s; using %s", root, csv_path.name)
    df = _read_csv(Path(csv_path), _MAESTRO_COLUMNS, ["split"],
                   fix="pass the metadata CSV that ships with MAESTRO (maestro-v3.0.0.csv)")
    if splits is not None:
        if "split" not in df.columns:
            raise CorpusError(f"splits={splits} was asked for but {csv_path} has no 'split' column")
        unknown = sorted(set(splits) - set(df["split"]))
        if unknown:
            raise CorpusError(
                f"split(s) {unknown} do not occur in {csv_path}; available: {sorted(set(df['split']))}"
            )
        df = df[df["split"].isin(splits)]
    rows = [
        (root / rel, _train_id(rel), composer.strip(), title.strip())
        for rel, composer, title in zip(df["midi_filename"], df["canonical_composer"], df["canonical_title"])
    ]
    rows, duplicates = _confine(rows, list(df["midi_filename"]), root, f"MAESTRO CSV {csv_path}", allow_outside)
    pieces, skipped = _load_midi_rows(rows, sustain=sustain, max_seconds=max_seconds,
                                      progress=progress, desc="reading MAESTRO")
    skipped += duplicates
    report = LoadReport(loaded=len(pieces), skipped=skipped, elapsed_s=time.perf_counter() - t0)
    if not pieces:
        raise _empty_result_error(f"MAESTRO at {root}", report)
    return pieces, report
