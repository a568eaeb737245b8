"""Atomic, non-destructive writes: whole folders swapped in one step, whole files replaced, --out checked first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from royaltysim import atomic
from royaltysim.atomic import OutputFolderError, atomic_file, check_out_folder, publish_files, staged_folder


def _folder(path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(path.iterdir())}


def test_a_staged_folder_appears_whole_and_replaces_only_with_force(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with staged_folder(out) as stage:
        assert stage.parent == tmp_path and stage.name.startswith(".run.partial-")
        (stage / "a.txt").write_text("old a")
        (stage / "b.txt").write_text("old b")
        assert not out.exists()  # nothing at --out until every file is written
    assert _folder(out) == {"a.txt": "old a", "b.txt": "old b"}
    with pytest.raises(OutputFolderError, match=r"already holds results \(a.txt, b.txt\).*--force"):
        with staged_folder(out):
            pass
    with staged_folder(out, force=True) as stage:
        (stage / "a.txt").write_text("new a")
        assert _folder(out) == {"a.txt": "old a", "b.txt": "old b"}  # the old results stay until the swap
    assert _folder(out) == {"a.txt": "new a"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging or old folder left


def test_an_interrupted_write_leaves_the_old_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "a.txt").write_text("old")
    for error in (KeyboardInterrupt, RuntimeError):
        with pytest.raises(error):
            with staged_folder(out, force=True) as stage:
                (stage / "a.txt").write_text("half")
                raise error()
        assert _folder(out) == {"a.txt": "old"}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_without_an_atomic_exchange_a_kill_between_renames_is_repaired(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)  # a system without renameat2
    out = tmp_path / "run"
    with staged_folder(out) as stage:
        (stage / "a.txt").write_text("old")
    with staged_folder(out, force=True) as stage:
        (stage / "a.txt").write_text("new")
    assert _folder(out) == {"a.txt": "new"}
    # a process killed after setting the old folder aside, before renaming the new one in:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    out.rename(tmp_path / f".run.old-{pid}-dead")
    (tmp_path / f".run.partial-{pid}-dead").mkdir()
    check_out_folder(out, force=True)  # the next run puts the old results back first
    assert _folder(out) == {"a.txt": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_the_exchange_is_one_step_on_linux(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    assert atomic._exchange(a, b)
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


def test_out_must_be_a_folder_that_can_be_written(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(OutputFolderError, match="is a file"):
        check_out_folder(afile)
    with pytest.raises(OutputFolderError, match="is a file, so no folder"):
        check_out_folder(afile / "sub" / "run")
    (tmp_path / "empty").mkdir()
    assert check_out_folder(tmp_path / "empty") == tmp_path / "empty"  # an empty folder is fine
    sweep = tmp_path / "sweep"
    (sweep / "runs").mkdir(parents=True)
    (sweep / "sweep.parquet").write_text("x")
    assert check_out_folder(sweep, reuse_if="runs") == sweep  # a sweep folder is resumed
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(OutputFolderError, match="not writable"):
                check_out_folder(locked / "run")
        finally:
            locked.chmod(0o700)


def test_files_are_replaced_whole(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "t.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_text("ne")
            raise RuntimeError
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["t.txt"]
    with atomic_file(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    # the file gets the mode open() would give it (mkstemp's private 0o600 would hide results from others)
    assert target.stat().st_mode & 0o777 == 0o666 & ~atomic._umask()

    moved: list[str] = []
    real = os.replace

    def replace(src, dst) -> None:
        moved.append(Path(dst).name)
        real(src, dst)

    with publish_files(tmp_path, last="page.html") as stage:
        for name in ("page.html", "a.png", "z.png"):
            (stage / name).write_text(name)
        monkeypatch.setattr(atomic.os, "replace", replace)
    monkeypatch.undo()
    assert moved == ["a.png", "z.png", "page.html"]  # the page after the figures it shows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "page.html", "t.txt", "z.png"]
