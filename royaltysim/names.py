"""Creators' readable names: a composer's name, or a collection's proper title, for a creator key.

An attribution run names each creator by the corpus folder its music came from (``bach``,
``trecento_pmfc12``). Reports show who is paid, so :func:`readable_names` turns the keys into names:

1. **music21's corpus metadata** (its core metadata bundle, when music21 is installed and the run's
   ``corpus.parquet`` says its pieces came from music21): the composer recorded for the creator's pieces,
   cleaned of manuscript sigla and dates (``"Bartholus F-Pn 568"`` -> ``"Bartholus"``). Of the composers
   recorded, the most common one whose name contains the folder's name wins (Monteverdi's madrigals also
   record their poets), else the most common one when it covers at least half of the pieces;
   ``"Anonymous ..."`` never names a creator.
2. **Collections** (:data:`COLLECTIONS`): an anonymous edition volume such as ``trecento_pmfc12`` is named
   by its edition, *Polyphonic Music of the Fourteenth Century* (PMFC), with its volume.
3. **A documented fallback** (:data:`FALLBACK`) for the few music21 folders whose pieces record no
   composer (Haydn's quartets, Josquin, Joplin...).
4. Otherwise the key itself with underscores as spaces and capitals (``creator_00017`` of a fitted
   population -> ``"synthetic creator 17"``).

Two keys never get the same name: a clash is told apart by the collection (``"Jacopo da Bologna (PMFC
vol. 6)"``). music21's bundle takes a few seconds to read, so the composer of each of its source paths
is cached (``$XDG_CACHE_HOME/royaltysim``, per music21 version).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pandas as pd

__all__ = ["readable_names", "music21_composers", "clean_composer", "COLLECTIONS", "FALLBACK"]

#: anonymous collections: a folder pattern and the proper title of the edition it comes from
COLLECTIONS: dict[str, str] = {
    # music21's trecento folders split Polyphonic Music of the Fourteenth Century (Éditions de l'Oiseau-Lyre)
    # by volume; the corpus loader names each volume's anonymous pieces after it
    r"trecento_pmfc(\d+)": "Polyphonic Music of the Fourteenth Century, vol. {volume}",
}

#: music21 folders whose pieces record no composer in music21's metadata (checked against music21 9.x)
FALLBACK: dict[str, str] = {
    "handel": "George Frideric Handel",
    "haydn": "Joseph Haydn",
    "joplin": "Scott Joplin",
    "josquin": "Josquin des Prez",
    "schoenberg": "Arnold Schoenberg",
    "verdi": "Giuseppe Verdi",
    "trecento_giovanni": "Giovanni da Cascia",
    "trecento_piero": "Maestro Piero",
    "trecento_fava": "Anonymous (Fava codex)",
}

_SIGLUM = re.compile(r"\s+(?:[A-Z]{1,2}-[A-Za-z]+\b.*|\?.*)$")  # "F-Pn 568", "I-Rvat 1419", "? 324"
_PAREN = re.compile(r"\s*\((?:opus dubium|\d{4}\s*-\s*\d{4})\)\s*$", re.IGNORECASE)
_SYNTHETIC = re.compile(r"creator_0*(\d+)$")


def clean_composer(raw: str | None) -> str | None:
    """A metadata composer string as a name: first line, no manuscript sigla or dates; None if nothing is left."""
    if not raw or not str(raw).strip():
        return None
    name = str(raw).strip().splitlines()[0].strip()
    name = _SIGLUM.sub("", name)
    name = _PAREN.sub("", name).strip(" ,.")
    if "," in name and name.count(",") == 1:  # "Chopin, Frederic" -> "Frederic Chopin"
        last, first = (p.strip() for p in name.split(","))
        if first and last and " " not in last:
            name = f"{first} {last}"
    return name or None


def _anonymous(name: str) -> bool:
    return name.lower().startswith(("anon", "anonyous"))


def _cache_file(version: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "royaltysim"
    return root / f"music21-{version}-composers.json"


@lru_cache(maxsize=1)
def music21_composers() -> dict[str, str]:
    """The composer music21's core metadata records for each corpus source path (``{}`` without music21)."""
    try:
        import music21
    except ImportError:
        return {}
    cache = _cache_file(str(music21.__version__))
    if cache.is_file():
        try:
            return json.loads(cache.read_text())
        except (OSError, ValueError):
            pass
    from music21 import corpus

    bundle = corpus.corpora.CoreCorpus().metadataBundle
    bundle.read()
    found = {}
    for entry in bundle._metadataEntries.values():  # music21 offers no public iterator over its entries
        composer = getattr(entry.metadata, "composer", None)
        if composer:
            found[str(entry.sourcePath)] = str(composer)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(found))
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only home: the names are recomputed next time
    return found


def _from_metadata(key: str, composers: list[str]) -> str | None:
    named = [c for c in composers if not _anonymous(c)]
    if not named:
        return None
    counts = Counter(named)
    tokens = [t for t in re.split(r"[_\W]+", key.lower()) if len(t) > 2 and t not in ("trecento",)]
    matching = [(n, c) for c, n in counts.items() if any(t in c.lower() for t in tokens)]
    if matching:
        return max(matching, key=lambda nc: (nc[0], len(nc[1])))[1]
    best, n = counts.most_common(1)[0]
    return best if n * 2 >= len(composers) else None


def _collection(key: str) -> str | None:
    for pattern, title in COLLECTIONS.items():
        m = re.fullmatch(pattern, key)
        if m:
            return title.format(volume=int(m.group(1)))
    return None


def readable_names(creators: list[str], corpus: pd.DataFrame | None = None,
                   composers: dict[str, str] | None = None) -> dict[str, str]:
    """A readable name for each creator key (see the module docstring for the order of sources).

    Args:
        creators: the creator keys.
        corpus: the run's ``corpus.parquet`` (``creator`` and ``source`` columns; ``source`` like
            ``music21:bach/bwv1.6.mxl``); None for a synthetic population.
        composers: music21 source path -> recorded composer (default: :func:`music21_composers`, read only when
            the corpus came from music21).
    """
    by_creator: dict[str, list[str]] = {}
    if corpus is not None and {"creator", "source"} <= set(corpus.columns):
        src = corpus["source"].astype(str)
        from_m21 = src.str.startswith("music21:")
        if from_m21.any():
            lookup = music21_composers() if composers is None else composers
            for creator, path in zip(corpus.loc[from_m21, "creator"], src[from_m21].str.slice(len("music21:"))):
                by_creator.setdefault(str(creator), []).append(clean_composer(lookup.get(path)) or "")
    names: dict[str, str] = {}
    collections: dict[str, str] = {}
    for key in creators:
        recorded = [c for c in by_creator.get(key, []) if c]
        collection = _collection(key)
        if collection:
            collections[key] = collection
        name = _from_metadata(key, recorded) if recorded else None
        if name is None or (collection and len(set(recorded)) > 1):  # a volume of several composers
            name = collection or FALLBACK.get(key)
        if name is None:
            m = _SYNTHETIC.fullmatch(key)
            name = f"synthetic creator {int(m.group(1))}" if m else key.replace("_", " ").strip().title()
        names[key] = name
    # a name shared by two keys is told apart by the collection, then by the key
    for tell in (lambda k: collections[k].replace("Polyphonic Music of the Fourteenth Century", "PMFC")
                 if k in collections else None, lambda k: k):
        counts = Counter(names.values())
        for key, name in list(names.items()):
            if counts[name] > 1 and tell(key) is not None:
                names[key] = f"{name} ({tell(key)})"
    return names
