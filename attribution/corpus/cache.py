"""The music21 parse cache, and the driver that parses what it lacks in worker processes.

Parsing a score with music21 is slow, so it runs in worker processes
once and every parsed file is cached on disk: one ``.npz`` per file under
``default_cache_dir() / "music21-<version>"``, keyed by the parser version, the file's path and content
(SHA-256) and ``max_seconds``. A damaged entry is re-parsed, never fatal.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .scores import _parse_file_worker

if TYPE_CHECKING:
    from .music21_corpus import _ScoreFile

__all__ = ["default_cache_dir"]

logger = logging.getLogger(__name__)

# Bump when parse_score's output changes, so caches written by older code are not reused.
_PARSER_VERSION = 2
_CACHE_ENV = "ROYALTYSIM_CACHE"


def default_cache_dir() -> Path:
    """``$ROYALTYSIM_CACHE`` if set, else ``~/.cache/royaltysim``."""
    env = os.environ.get(_CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "royaltysim"


def _music21_version() -> str:
    try:
        return importlib.metadata.version("music21")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


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
