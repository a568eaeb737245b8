"""The training corpus: real symbolic music whose creators are known.

A :class:`Piece` is one training item (notes plus who made it); a loader turns a collection of files
into pieces and a :class:`LoadReport` of what it could not use. Three loaders:

* :func:`load_music21_corpus` – the scores bundled with the installed ``music21`` wheel, with the
  creator taken from the corpus folder (``bach``, ``mozart``, ...). Parsing is slow, so it runs in
  worker processes once and every parsed file is cached on disk.
* :func:`load_midi_folder` – any MIDI files listed in a CSV manifest (``path, creator[, title]``).
* :func:`load_maestro` – the MAESTRO piano-performance dataset in its own CSV layout.

A file that cannot be read never stops a load: it is skipped, logged and listed in the report. Wrong
arguments (a missing folder, a manifest without the required columns, a request for a collection we
may not use, nothing loaded at all) raise :class:`CorpusError`, which says what to fix.

A manifest is input a user may receive from someone else, so it is confined: its paths must lie inside
its own folder (MAESTRO's: inside ``root``) unless ``allow_outside=True``, and one file credited to two
creators is refused rather than paid twice.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import json
import logging
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attribution.errors import AttributionError
from attribution.midi import (
    END,
    START,
    MidiReadError,
    empty_notes,
    read_midi,
    sort_notes,
    validate_notes,
)

__all__ = [
    "CREATOR_ALIASES",
    "CorpusError",
    "DEFAULT_CREATORS",
    "DEFAULT_TEMPO_BPM",
    "DEFAULT_VELOCITY",
    "EXCLUDED",
    "LoadReport",
    "MIN_NOTES",
    "NONCOMMERCIAL",
    "Piece",
    "SCORE_SUFFIXES",
    "TRECENTO_COMPOSERS",
    "default_cache_dir",
    "load_maestro",
    "load_midi_folder",
    "load_music21_corpus",
    "music21_corpus_root",
    "parse_score",
    "trecento_creator",
]

logger = logging.getLogger(__name__)

#: Corpus folders loaded by default. Each folder is one creator, except ``trecento`` (see
#: :func:`trecento_creator`).
DEFAULT_CREATORS: tuple[str, ...] = (
    "bach", "monteverdi", "mozart", "haydn", "beethoven", "schumann_clara", "schumann_robert",
    "trecento",
    "beach", "chopin", "ciconia", "corelli", "cpebach", "handel", "johnson_j_r", "joplin", "josquin",
    "liliuokalani", "luca", "lusitano", "schoenberg", "schubert", "verdi", "weber", "webern",
)

_FOLK_REASON = (
    "folk-tune transcriptions contributed by individual encoders with no licence that grants "
    "commercial use, and traditional tunes have no identifiable creator to pay"
)
#: Corpus folders that are never loaded by default, with the reason.
EXCLUDED: dict[str, str] = {
    "palestrina": (
        "the Humdrum encodings are 'Copyright 2000, John Miller' with 'rights to all derivative "
        "electronic formats reserved' under a separate licensing agreement (see each file's !!!YEM lines)"
    ),
    "essenFolksong": (
        "the Essen ABC files are distributed with permission for non-commercial use only "
        "(music21/corpus/essenFolksong/license.txt)"
    ),
    "ryansMammoth": _FOLK_REASON,
    "oneills1850": _FOLK_REASON,
    "airdsAirs": _FOLK_REASON,
    "nottingham-dataset": _FOLK_REASON,
    "miscFolk": _FOLK_REASON,
    "demos": "music21's demonstration and layout-test files, not a creator's catalogue",
    "leadSheet": "music21's lead-sheet examples, not a creator's catalogue",
    "theoryExercises": "music21's theory exercises, not a creator's catalogue",
}
#: The excluded folders that ``allow_noncommercial=True`` unlocks (for research use only).
NONCOMMERCIAL: frozenset[str] = frozenset(
    {"palestrina", "essenFolksong", "ryansMammoth", "oneills1850", "airdsAirs", "nottingham-dataset",
     "miscFolk"}
)

#: Score formats read from the music21 corpus, best first: when a piece exists in two formats
#: (``bwv277.krn`` and ``bwv277.mxl``) only the first in this order is used.
SCORE_SUFFIXES: tuple[str, ...] = (".mxl", ".musicxml", ".xml", ".krn", ".abc")
DEFAULT_TEMPO_BPM = 100.0
DEFAULT_VELOCITY = 80
#: Pieces with fewer notes than this are skipped (fragments, empty parts, failed conversions).
MIN_NOTES = 8

#: Trecento composers that the music21 file names mention by name (lower case). A file naming one
#: of them is attributed to that composer even when the name is not in the composer slot of the name.
TRECENTO_COMPOSERS: frozenset[str] = frozenset(
    {"ciconia", "gherardello", "lorenzo", "gratiosus", "bartholus", "egardus", "phillippoctus",
     "barbitonsoris", "perrinet", "guymont"}
)

# Bump when parse_score's output changes, so caches written by older code are not reused.
_PARSER_VERSION = 2
_CACHE_ENV = "ROYALTYSIM_CACHE"


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


# ====================================================================== music21 scores -> notes
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


# ====================================================================== music21 corpus discovery
_TRECENTO_SLOT = re.compile(r"^PMFC_(?P<vol>\d+)[-_](?P<name>[A-Za-z]+)[-_]\d+[a-z]?[-_]")
_TRECENTO_VOLUME = re.compile(r"^PMFC_(?P<vol>\d+)")
_LEADING_NAME = re.compile(r"^(?P<name>[A-Za-z]+)[-_]")


def trecento_creator(file_name: str) -> str:
    """The creator of a file in music21's ``trecento`` folder, from its file name.

    The folder mixes composers from volumes of *Polyphonic Music of the Fourteenth Century* (PMFC).
    In order:

    1. a composer in the name's composer slot: ``PMFC_06-Jacopo-01-...`` -> ``trecento_jacopo``,
       ``PMFC_06_Giovanni-01-...`` -> ``trecento_giovanni``, ``PMFC_06_Piero_2-...`` ->
       ``trecento_piero``; a non-PMFC file starts with its composer: ``Fava_...`` -> ``trecento_fava``;
    2. a composer of :data:`TRECENTO_COMPOSERS` named elsewhere in the name:
       ``PMFC_24_1-Gloria Ciconia 1`` -> ``trecento_ciconia``;
    3. otherwise the PMFC volume, as an anthology creator: ``PMFC_04-Cara mi donna`` ->
       ``trecento_pmfc04``.
    """
    stem = Path(file_name).name
    for suffix in SCORE_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    slot = _TRECENTO_SLOT.match(stem)
    if slot:
        return f"trecento_{slot['name'].lower()}"
    volume = _TRECENTO_VOLUME.match(stem)
    if not volume:
        lead = _LEADING_NAME.match(stem)
        if lead:
            return f"trecento_{lead['name'].lower()}"
    words = {w.lower() for w in re.split(r"[^A-Za-z]+", stem) if w}
    named = sorted(words & TRECENTO_COMPOSERS)
    if named:
        return f"trecento_{named[0]}"
    if volume:
        return f"trecento_pmfc{int(volume['vol']):02d}"
    slug = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    return f"trecento_{slug or 'anonymous'}"


def music21_corpus_root() -> Path:
    """The ``corpus`` folder inside the installed music21 package (found without importing it)."""
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError(
            "music21 is not installed; install the attribution extra: pip install -e '.[attribution]'"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "corpus"
    if not root.is_dir():
        raise CorpusError(
            f"music21 is installed without its corpus ({root} is missing); reinstall the music21 wheel "
            "from PyPI, which bundles it"
        )
    return root


def default_cache_dir() -> Path:
    """``$ROYALTYSIM_CACHE`` if set, else ``~/.cache/royaltysim``."""
    env = os.environ.get(_CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "royaltysim"


def _music21_version() -> str:
    try:
        return importlib.metadata.version("music21")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class _ScoreFile:
    rel: str  # posix path relative to the corpus root, with suffix
    path: Path
    creator: str

    @property
    def rel_stem(self) -> str:
        return self.rel[: -len(Path(self.rel).suffix)]


#: One person, one creator: trecento names that denote a composer who has another name in the corpus,
#: and PMFC volumes that are one composer's collected works (vol. 4: Landini, ed. Schrade; vol. 24:
#: Ciconia, ed. Bent & Hallmark), so royalties for one composer are never split across aliases.
CREATOR_ALIASES: dict[str, str] = {
    "trecento_ciconia": "ciconia",
    "trecento_pmfc24": "ciconia",
    "trecento_pmfc04": "trecento_landini",
}


def _creator_of(rel: str) -> str:
    folder, _, rest = rel.partition("/")
    creator = trecento_creator(Path(rest).name) if folder == "trecento" else folder
    return CREATOR_ALIASES.get(creator, creator)


def _discover(root: Path, folders: Iterable[str]) -> tuple[list[_ScoreFile], list[tuple[str, str]]]:
    """Score files under ``folders``, one per piece, and the files ignored (with reasons)."""
    chosen: list[_ScoreFile] = []
    ignored: list[tuple[str, str]] = []
    for folder in folders:
        by_piece: dict[str, list[Path]] = {}
        for path in sorted((root / folder).rglob("*")):
            if not path.is_file() or path.name.startswith(".") or "__pycache__" in path.parts:
                continue
            rel = path.relative_to(root).as_posix()
            suffix = path.suffix.lower()
            if suffix == ".rntxt":
                ignored.append((rel, "Roman-numeral analysis, not music"))
                continue
            if suffix not in SCORE_SUFFIXES:
                ignored.append((rel, f"not a score format read here ({', '.join(SCORE_SUFFIXES)})"))
                continue
            by_piece.setdefault(str(path.with_suffix("")), []).append(path)
        stems = set(by_piece)
        for stem, paths in sorted(by_piece.items()):
            paths.sort(key=lambda p: SCORE_SUFFIXES.index(p.suffix.lower()))
            best = paths[0]
            best_rel = best.relative_to(root).as_posix()
            for other in paths[1:]:
                ignored.append((other.relative_to(root).as_posix(), f"same piece as {best_rel}"))
            if stem.endswith("_bak") and stem[: -len("_bak")] in stems:
                ignored.append((best_rel, "backup copy of a piece already read"))
                continue
            chosen.append(_ScoreFile(rel=best_rel, path=best, creator=_creator_of(best_rel)))
    chosen.sort(key=lambda f: f.rel)
    return chosen, ignored


def _resolve_creators(
    root: Path, creators: Sequence[str] | None, allow_noncommercial: bool
) -> tuple[list[str], set[str] | None]:
    """Folders to scan and, when sub-creators of ``trecento`` were asked for, which ones."""
    if creators is None:
        creators = DEFAULT_CREATORS
    if isinstance(creators, str):
        raise CorpusError(f"creators must be a list of corpus folder names, got the string {creators!r}")
    available = sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
    )
    folders: list[str] = []
    trecento_subset: set[str] | None = None
    for name in creators:
        if name in EXCLUDED and not (allow_noncommercial and name in NONCOMMERCIAL):
            hint = (
                " Pass allow_noncommercial=True to load it anyway for non-commercial research."
                if name in NONCOMMERCIAL else ""
            )
            raise CorpusError(f"corpus folder {name!r} is excluded: {EXCLUDED[name]}.{hint}")
        if name in available:
            if name not in folders:
                folders.append(name)
        elif name.startswith("trecento_") and "trecento" in available:
            trecento_subset = (trecento_subset or set()) | {name}
            if "trecento" not in folders:
                folders.append("trecento")
        else:
            usable = [a for a in available if a not in EXCLUDED]
            raise CorpusError(
                f"unknown creator {name!r}: not a folder of the music21 corpus at {root}. "
                f"Available folders: {usable} (plus trecento_<composer>, see trecento_creator)"
            )
    if trecento_subset is not None and "trecento" in creators:
        trecento_subset = None  # the whole folder was asked for as well
    return folders, trecento_subset


# ====================================================================== music21 parse cache
def _cache_path(cache_root: Path, f: _ScoreFile, max_seconds: float | None) -> Path:
    # keyed to the file's content, not its size and time: an edited score is never read from the cache
    content = hashlib.sha256(f.path.read_bytes()).hexdigest()
    key = json.dumps([_PARSER_VERSION, f.rel, content, max_seconds])
    digest = hashlib.sha1(key.encode()).hexdigest()[:24]
    return cache_root / f"{digest}.npz"


def _read_cache(path: Path) -> list[tuple[str, str, np.ndarray | None, str]] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return [
                (m["suffix"], m["title"], data[f"notes_{i}"] if m["ok"] else None, m["reason"])
                for i, m in enumerate(meta)
            ]
    except Exception as exc:  # a damaged cache entry is re-parsed, never fatal
        logger.warning("ignoring unreadable cache file %s (%s); re-parsing", path, exc)
        return None


def _write_cache(path: Path, rel: str, entries: list[tuple[str, str, np.ndarray | None, str]]) -> None:
    meta = [
        {"rel": rel, "suffix": s, "title": t, "ok": n is not None, "reason": r}
        for s, t, n, r in entries
    ]
    arrays = {f"notes_{i}": n for i, (_, _, n, _) in enumerate(entries) if n is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
    tmp.replace(path)


def _parse_files(
    files: list[_ScoreFile],
    max_seconds: float | None,
    cache_root: Path | None,
    workers: int,
    progress: bool,
) -> tuple[dict[str, list[tuple[str, str, np.ndarray | None, str]]], int]:
    """Parse (or read from cache) each file; returns ``{rel: entries}`` and the number of cache hits."""
    from tqdm.auto import tqdm

    results: dict[str, list[tuple[str, str, np.ndarray | None, str]]] = {}
    todo: list[tuple[_ScoreFile, Path | None]] = []
    for f in files:
        cpath = _cache_path(cache_root, f, max_seconds) if cache_root is not None else None
        cached = _read_cache(cpath) if cpath is not None else None
        if cached is not None:
            results[f.rel] = cached
        else:
            todo.append((f, cpath))
    hits = len(results)
    if not todo:
        return results, hits

    def store(f: _ScoreFile, cpath: Path | None, entries) -> None:
        results[f.rel] = entries
        if cpath is not None:
            try:
                _write_cache(cpath, f.rel, entries)
            except OSError as exc:
                logger.warning("could not write parse cache %s: %s", cpath, exc)

    bar = tqdm(total=len(todo), desc="parsing music21 scores", unit="file", disable=not progress)
    try:
        if workers <= 1 or len(todo) == 1:
            for f, cpath in todo:
                store(f, cpath, _parse_file_worker(str(f.path), max_seconds))
                bar.update()
        else:
            # Largest files first, so no worker is left parsing a string quartet alone at the end.
            todo.sort(key=lambda item: item[0].path.stat().st_size, reverse=True)
            with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
                futures = {
                    pool.submit(_parse_file_worker, str(f.path), max_seconds): (f, cpath) for f, cpath in todo
                }
                for fut in as_completed(futures):
                    f, cpath = futures[fut]
                    try:
                        store(f, cpath, fut.result())
                    except Exception as exc:  # the worker process died (e.g. out of memory)
                        results[f.rel] = [("", Path(f.rel).stem, None, f"parser process failed: {exc!r}")]
                    bar.update()
    finally:
        bar.close()
    return results, hits


def _caps(
    max_pieces_per_creator: int | dict[str, int] | None, creators: set[str]
) -> Callable[[str], int | None]:
    if max_pieces_per_creator is None:
        return lambda creator: None
    if isinstance(max_pieces_per_creator, dict):
        bad = {k: v for k, v in max_pieces_per_creator.items() if not (isinstance(v, int) and v >= 0)}
        if bad:
            raise CorpusError(f"max_pieces_per_creator values must be integers >= 0, got {bad}")
        unknown = sorted(set(max_pieces_per_creator) - creators)
        if unknown:
            raise CorpusError(
                f"max_pieces_per_creator names creator(s) {unknown} that are not being loaded; "
                f"creators being loaded: {sorted(creators)}"
            )
        return lambda creator: max_pieces_per_creator.get(creator)
    if not (isinstance(max_pieces_per_creator, int) and max_pieces_per_creator >= 0):
        raise CorpusError(
            f"max_pieces_per_creator must be an int >= 0, a dict creator -> int, or None; "
            f"got {max_pieces_per_creator!r}"
        )
    return lambda creator: max_pieces_per_creator


def load_music21_corpus(
    creators: list[str] | None = None,
    *,
    max_seconds: float | None = 180.0,
    max_pieces_per_creator: int | dict[str, int] | None = None,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    allow_noncommercial: bool = False,
    corpus_root: Path | None = None,
) -> tuple[list[Piece], LoadReport]:
    """Load the scores bundled with music21 as pieces whose creator is their corpus folder.

    Args:
        creators: corpus folders to load (default :data:`DEFAULT_CREATORS`); ``trecento_<name>``
            selects one creator of the ``trecento`` folder (see :func:`trecento_creator`).
        max_seconds: keep only notes starting in the first ``max_seconds`` of each piece (None: all).
        max_pieces_per_creator: at most this many pieces per creator (an int for all, or a dict
            creator -> int), the first in ``train_id`` order, so one creator (Bach's ~400
            chorales) does not dominate. Skipped files do not count towards it.
        cache_dir: parsed pieces are cached under ``cache_dir / "music21-<version>"``, one ``.npz``
            per file, keyed by its path, content (SHA-256) and ``max_seconds``. Default
            :func:`default_cache_dir`.
        workers: parser processes (default ``min(2, cpu count)``; 1 parses in this process).
        progress: show a tqdm progress bar.
        allow_noncommercial: allow folders of :data:`NONCOMMERCIAL` (research use only).
        corpus_root: a folder laid out like music21's corpus (default: the installed one).

    Returns:
        The pieces sorted by ``train_id``, and a report of the files skipped or ignored.

    Raises:
        CorpusError: unknown or excluded creator, bad argument, or no piece could be loaded.
    """
    t0 = time.perf_counter()
    _check_max_seconds(max_seconds)
    root = Path(corpus_root) if corpus_root is not None else music21_corpus_root()
    if not root.is_dir():
        raise CorpusError(f"corpus folder {root} does not exist")
    folders, trecento_subset = _resolve_creators(root, creators, allow_noncommercial)
    files, ignored = _discover(root, folders)
    if trecento_subset is not None:
        known = {f.creator for f in files if f.rel.startswith("trecento/")}
        if trecento_subset - known:
            raise CorpusError(
                f"unknown trecento creator(s) {sorted(trecento_subset - known)}; known: {sorted(known)}"
            )
        files = [f for f in files if not f.rel.startswith("trecento/") or f.creator in trecento_subset]

    cap_of = _caps(max_pieces_per_creator, {f.creator for f in files})
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    cache_root = Path(cache_dir or default_cache_dir()).expanduser() / f"music21-{_music21_version()}"

    by_creator: dict[str, list[_ScoreFile]] = {}
    for f in files:
        by_creator.setdefault(f.creator, []).append(f)
    next_index = {c: 0 for c in by_creator}
    loaded: dict[str, list[Piece]] = {c: [] for c in by_creator}
    skipped: list[tuple[str, str]] = []
    hits = parsed = 0
    # Parse the first `cap` files of each creator; top up from the next ones for files that failed.
    while True:
        batch: list[_ScoreFile] = []
        for creator, cfiles in by_creator.items():
            cap = cap_of(creator)
            want = len(cfiles) if cap is None else cap - len(loaded[creator])
            take = cfiles[next_index[creator]: next_index[creator] + max(want, 0)]
            next_index[creator] += len(take)
            batch.extend(take)
        if not batch:
            break
        results, batch_hits = _parse_files(batch, max_seconds, cache_root, workers, progress)
        hits += batch_hits
        parsed += len(batch) - batch_hits
        for f in sorted(batch, key=lambda f: f.rel):
            for suffix, title, notes, reason in results[f.rel]:
                where = f.rel + suffix
                if notes is None:
                    skipped.append((where, reason))
                    logger.warning("skipped %s: %s", where, reason)
                    continue
                loaded[f.creator].append(
                    Piece(train_id=f.rel_stem + suffix, creator=f.creator, title=title,
                          source=f"music21:{f.rel}", notes=notes)
                )
    pieces: list[Piece] = []
    for creator, plist in loaded.items():
        cap = cap_of(creator)
        pieces.extend(plist if cap is None else plist[:cap])
    pieces.sort(key=lambda p: p.train_id)
    report = LoadReport(loaded=len(pieces), skipped=skipped, ignored=ignored,
                        from_cache=hits, parsed=parsed, elapsed_s=time.perf_counter() - t0)
    if not pieces:
        raise _empty_result_error(f"the music21 corpus folders {folders}", report)
    logger.info("music21 corpus: %s", report.summary())
    return pieces, report


# ====================================================================== MIDI collections
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
