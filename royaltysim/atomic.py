"""Writing results so that a killed process leaves the old results or the new ones, never a mix.

Two mechanisms, and the rule for ``--out``:

* :func:`atomic_file` -- one file: written under a temporary name in the same folder, flushed to disk and
  renamed over the target (``os.replace`` is atomic on POSIX). Readers see the whole old file or the whole
  new one. Used for a sweep's run files and tables, one file at a time.
* :func:`staged_folder` -- a whole run folder: every file is written into a hidden sibling folder
  (``.NAME.partial-PID-XXXX``), and only when all are written is it swapped with the old folder in one
  step (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames, with the old folder put back by the
  next run if a kill falls between them). SIGKILL at any moment leaves the old folder complete, or the new
  one; SIGINT removes the partial folder.
* :func:`check_out_folder` -- ``--out`` is checked before any simulation: it must not be a file, its
  parent must be writable, and an existing non-empty folder is refused unless ``force`` (``--force``) is
  given, so results are never overwritten silently.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from royaltysim.errors import InputError

__all__ = ["OutputFolderError", "atomic_file", "write_text_atomic", "staged_folder", "publish_files", "check_out_folder"]

_PARTIAL = ".partial-"
_OLD = ".old-"


class OutputFolderError(InputError):
    """``--out`` cannot be used: a file, not writable, or a folder of results that ``--force`` must allow."""


# --------------------------------------------------------------------------- files


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot open a folder for syncing
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` whole, on error it is removed.

    >>> with atomic_file("out/table.parquet") as tmp:   # doctest: +SKIP
    ...     frame.to_parquet(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; the file it becomes gets open()'s usual mode
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


# --------------------------------------------------------------------------- folders


def _renameat2_exchange() -> object | None:
    """libc's ``renameat2`` (Linux, glibc >= 2.28), or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step; False where the system cannot (then nothing changed)."""
    func = _renameat2_exchange()
    if func is None:
        return False
    rc = func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)  # type: ignore[operator]
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(out: Path) -> list[tuple[Path, str, int]]:
    """Partial and old sibling folders of ``out`` left by earlier processes: (path, kind, pid)."""
    pattern = re.compile(rf"^\.{re.escape(out.name)}(\.partial-|\.old-)(\d+)-")
    found = []
    if out.parent.is_dir():
        for p in out.parent.iterdir():
            m = pattern.match(p.name)
            if m:
                found.append((p, m[1], int(m[2])))
    return found


def _recover(out: Path) -> None:
    """Put back a folder a killed swap left aside, and remove partial folders of processes that are gone."""
    for path, kind, pid in _leftovers(out):
        if pid == os.getpid() or _alive(pid):
            continue  # another live process is writing (or swapping) it
        if kind == _OLD and not out.exists():
            os.rename(path, out)  # the old results, set aside just before a kill; they are whole
        else:
            shutil.rmtree(path, ignore_errors=True)


def check_out_folder(out: str | Path, *, force: bool = False, reuse_if: str | None = None) -> Path:
    """Check ``--out`` before any work; raise :class:`OutputFolderError` with the fix when it cannot be used.

    Args:
        out: the folder to write.
        force: allow replacing (or adding to) an existing non-empty folder.
        reuse_if: a file or folder name whose presence marks a folder this command may keep adding to
            (a sweep folder's ``runs``), which is then accepted without ``force``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"--out {out} is a file, not a folder; give a folder path (it is created)")
    _recover(out)
    existing = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    if not existing.is_dir():
        raise OutputFolderError(f"--out {out}: {existing} is a file, so no folder can be made under it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputFolderError(f"--out {out}: {existing} is not writable; choose a folder you can write to")
    if out.is_dir() and any(out.iterdir()):
        if reuse_if is not None and (out / reuse_if).exists():
            return out
        if not force:
            names = sorted(p.name for p in out.iterdir())
            shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
            raise OutputFolderError(
                f"--out {out} already holds results ({shown}); give a new folder, or add --force to replace them"
            )
    return out


@contextlib.contextmanager
def staged_folder(out: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder beside ``out``; on success it becomes ``out`` in one step.

    The staging folder is made at once, so an unwritable ``out`` fails before any work; the old ``out`` (if
    ``force``) stays whole until the swap, then is removed. On any error or interrupt the staging folder is
    removed and ``out`` is left as it was.
    """
    out = check_out_folder(out, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}{_PARTIAL}{os.getpid()}-", dir=out.parent))
    except OSError as exc:
        raise OutputFolderError(f"--out {out}: cannot write in {out.parent} ({exc.strerror})") from None
    try:
        yield stage
        for folder, _, files in os.walk(stage):
            for name in files:
                with open(Path(folder) / name, "rb") as f:
                    os.fsync(f.fileno())
        _publish(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


@contextlib.contextmanager
def publish_files(out: str | Path, *, last: str | None = None) -> Iterator[Path]:
    """Yield a staging folder inside ``out``; on success each file in it replaces its namesake in ``out``.

    For a folder that keeps growing (a sweep's, beside its ``runs/``): each file is replaced whole, and
    ``last`` (the page that links the others) is replaced after the files it shows. On error or interrupt
    the staging folder is removed and ``out`` keeps its old files.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".publish{_PARTIAL}{os.getpid()}-", dir=out))
    try:
        yield stage
        names = sorted((p.name for p in stage.iterdir() if p.is_file()), key=lambda n: (n == last, n))
        for name in names:
            with open(stage / name, "rb") as f:
                os.fsync(f.fileno())
            os.replace(stage / name, out / name)
        _fsync_dir(out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, out: Path) -> None:
    """Make ``stage`` the folder ``out``: an atomic swap with the old one where the system allows."""
    os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes it private; a results folder is not
    if not out.exists():
        os.rename(stage, out)
    elif not any(out.iterdir()):
        os.rename(stage, out)  # over an empty folder: one rename
    elif _exchange(stage, out):
        shutil.rmtree(stage, ignore_errors=True)  # (now the old results)
    else:
        aside = out.parent / f".{out.name}{_OLD}{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(out, aside)  # a kill here leaves `aside`, which the next run puts back (_recover)
        os.rename(stage, out)
        shutil.rmtree(aside, ignore_errors=True)
    _fsync_dir(out.parent)


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` would, for every thread, for a moment)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def name_final_folder(stage: str | Path, out: str | Path) -> None:
    """``scenario.yaml``'s rerun line names the folder it was written in: make it the final one, not the stage."""
    path = Path(stage) / "scenario.yaml"
    if path.is_file():
        write_text_atomic(path, path.read_text(encoding="utf-8").replace(str(stage), str(out), 1))
