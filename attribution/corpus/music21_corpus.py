"""The music21 corpus source: the scores bundled with the installed ``music21`` wheel.

:func:`load_music21_corpus` reads them as pieces whose creator is their corpus folder (``bach``,
``mozart``, ...; the mixed ``trecento`` folder is split by :func:`trecento_creator`). The folders we may
not use for a commercial royalty study are refused with their reason (:data:`EXCLUDED`). Files are
parsed by :mod:`.scores` through the cache of :mod:`.cache`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .cache import _music21_version, _parse_files, default_cache_dir
from .records import CorpusError, LoadReport, Piece, _check_max_seconds, _empty_result_error
from .scores import SCORE_SUFFIXES

__all__ = [
    "CREATOR_ALIASES",
    "DEFAULT_CREATORS",
    "EXCLUDED",
    "NONCOMMERCIAL",
    "TRECENTO_COMPOSERS",
    "load_music21_corpus",
    "music21_corpus_root",
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

#: Trecento composers that the music21 file names mention by name (lower case). A file naming one
#: of them is attributed to that composer even when the name is not in the composer slot of the name.
TRECENTO_COMPOSERS: frozenset[str] = frozenset(
    {"ciconia", "gherardello", "lorenzo", "gratiosus", "bartholus", "egardus", "phillippoctus",
     "barbitonsoris", "perrinet", "guymont"}
)


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
