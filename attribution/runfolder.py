"""A run folder written as one transaction: atomic files, and results published together by renames.

A build never writes its results where a reader looks while it works. It stages them in
``RUN/.staging/``; once every one is there it writes the commit record ``.staging/COMMITTED`` (the names
to publish, in order) and renames each into place, ``config.yaml`` last, then removes the staging.

* Killed before the record: the old results are untouched. The next build discards the staging (or resumes
  the model trained in it, see :mod:`attribution.build`).
* Killed after it: :func:`recover` finishes the renames (the next build calls it first), and meanwhile
  :func:`check_published` makes readers refuse the folder with a message instead of reading a mix.

So a reader sees the old run, the new run, or a clear error. Single files are written with
:func:`atomic_write` (a temporary file in the same folder, then ``os.replace``), so no file is ever seen
half-written. The published ``config.yaml`` lists the SHA-256 of every file it published
(:func:`file_digests`), which :func:`verify` checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import RunFolderError

__all__ = [
    "STAGING",
    "atomic_write",
    "atomic_write_text",
    "check_published",
    "commit",
    "file_digests",
    "recover",
    "sha256_file",
    "verify",
]

STAGING = ".staging"
COMMITTED = "COMMITTED"
_REPLACED = ".replaced"  # inside the staging: folders moved out of the way while publishing


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``.

    ``write`` may be e.g. ``df.to_parquet`` or ``lambda p: np.savez(p, ...)``. The temporary name keeps the
    suffix (savez and parquet writers look at it) and the process id (two writers never share it).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digests(root: str | Path, names: Iterable[str]) -> dict[str, str]:
    """``{relative path: sha256}`` of the files ``names`` (files, or folders whose files are all listed)."""
    root = Path(root)
    out: dict[str, str] = {}
    for name in names:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            out[f.relative_to(root).as_posix()] = sha256_file(f)
    return out


def verify(run_dir: str | Path, digests: dict[str, str], only: Iterable[str] | None = None) -> list[str]:
    """Files of ``digests`` (all, or those in ``only``) that are missing or changed, as messages ([] = intact)."""
    run_dir = Path(run_dir)
    problems = []
    for name, digest in digests.items():
        if only is not None and name not in only:
            continue
        path = run_dir / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name} differs from what the build wrote")
    return problems


def check_published(run_dir: str | Path) -> None:
    """Raise :class:`RunFolderError` when ``run_dir`` is half-way through publishing a build."""
    if (Path(run_dir) / STAGING / COMMITTED).is_file():
        raise RunFolderError(
            f"{run_dir} was interrupted while a build published its results, so it holds some old and some new "
            "files; rerun the same `royaltysim attribution build ... --out` to finish publishing"
        )


def commit(run_dir: str | Path, names: list[str]) -> None:
    """Publish ``.staging/<name>`` for each name onto ``run_dir/<name>``, in order (a folder replaces a folder)."""
    staging = Path(run_dir) / STAGING
    missing = [n for n in names if not (staging / n).exists()]
    if missing:
        raise FileNotFoundError(f"cannot publish {missing}: not in {staging}")
    atomic_write_text(staging / COMMITTED, json.dumps(names))
    _apply(Path(run_dir), names)


def recover(run_dir: str | Path) -> bool:
    """Finish publishing a build that was killed after its commit record; True if there was one."""
    record = Path(run_dir) / STAGING / COMMITTED
    if not record.is_file():
        return False
    _apply(Path(run_dir), json.loads(record.read_text()))
    return True


def _apply(run_dir: Path, names: list[str]) -> None:
    staging = run_dir / STAGING
    replaced = staging / _REPLACED
    for name in names:  # idempotent: a name already published is no longer in the staging
        src, dst = staging / name, run_dir / name
        if not src.exists():
            continue
        if src.is_dir():
            if dst.exists():
                replaced.mkdir(exist_ok=True)
                shutil.rmtree(replaced / name, ignore_errors=True)
                os.replace(dst, replaced / name)
            os.replace(src, dst)
        else:
            os.replace(src, dst)
    (staging / COMMITTED).unlink()  # published: from here on the staging is only leftovers
    shutil.rmtree(staging, ignore_errors=True)
