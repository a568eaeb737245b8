"""The training corpus: real symbolic music whose creators are known.

A :class:`Piece` is one training item (notes plus who made it); a loader turns a collection of files
into pieces and a :class:`LoadReport` of what it could not use. Three loaders, one module each:

* :func:`load_music21_corpus` (:mod:`.music21_corpus`) – the scores bundled with the installed ``music21``
  wheel, with the creator taken from the corpus folder (``bach``, ``mozart``, ...). Parsing
  (:mod:`.scores`) is slow, so it runs in worker processes once and every parsed file is cached on disk
  (:mod:`.cache`).
* :func:`load_midi_folder` (:mod:`.manifests`) – any MIDI files listed in a CSV manifest
  (``path, creator[, title]``).
* :func:`load_maestro` (:mod:`.maestro`) – the MAESTRO piano-performance dataset in its own CSV layout.

A file that cannot be read never stops a load: it is skipped, logged and listed in the report. Wrong
arguments (a missing folder, a manifest without the required columns, a request for a collection we
may not use, nothing loaded at all) raise :class:`CorpusError`, which says what to fix
(:mod:`.records`).

A manifest is input a user may receive from someone else, so it is confined: its paths must lie inside
its own folder (MAESTRO's: inside ``root``) unless ``allow_outside=True``, and one file credited to two
creators is refused rather than paid twice.
"""

from .cache import default_cache_dir
from .maestro import load_maestro
from .manifests import load_midi_folder
from .music21_corpus import (
    CREATOR_ALIASES,
    DEFAULT_CREATORS,
    EXCLUDED,
    NONCOMMERCIAL,
    TRECENTO_COMPOSERS,
    _creator_of,  # noqa: F401  (tests check the creator of single file names)
    load_music21_corpus,
    music21_corpus_root,
    trecento_creator,
)
from .records import MIN_NOTES, CorpusError, LoadReport, Piece
from .scores import DEFAULT_TEMPO_BPM, DEFAULT_VELOCITY, SCORE_SUFFIXES, parse_score

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
