"""SIGKILL an attribution build at random points: the run folder holds the old run or the new one (or, in
the instant of publishing, is refused by readers until the next build finishes it), and a rerun completes
(issue 13, findings 4 and 6)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from attribution.errors import AttributionError
from attribution.runfolder import verify
from attribution.table import AttributionTable
from tests.attribution.catalogue import published_digest, transpose, write_catalogue, write_config

CLI = "import sys; from royaltysim.cli import app; sys.exit(app())"


def _command(cfg, run, *extra):
    return [sys.executable, "-c", CLI, "attribution", "build", str(cfg), "--out", str(run), "-q", *extra]


def _state(run) -> str:
    """'none' (no run), 'half' (readers refuse: publishing was cut), or the windows hash of an intact run."""
    try:
        AttributionTable.load(run)
    except AttributionError as exc:
        if "interrupted while a build published" in str(exc):
            return "half"
        assert "is missing" in str(exc) or "does not exist" in str(exc), str(exc)
        return "none"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert not verify(run, config["files"]), "a published file differs from what its build recorded"
    key = config["inputs"]["windows_sha256"]
    assert yaml.safe_load((run / "model" / "train_config.yaml").read_text())["windows_sha256"] == key
    return key


def _kill_after(cmd, seconds: float) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _complete(cmd) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return time.perf_counter() - t0


def test_killed_builds_leave_the_old_or_the_new_run_and_a_rerun_completes(tmp_path):
    rng = np.random.default_rng(13)
    write_catalogue(tmp_path)
    cfg = write_config(tmp_path)
    old_run = tmp_path / "old"
    seconds = _complete(_command(cfg, old_run))
    old = _state(old_run)
    old_files = published_digest(old_run)

    # A first build killed at a random point: no run yet (or a whole one); the rerun resumes what it staged.
    first = tmp_path / "first"
    _kill_after(_command(cfg, first), rng.uniform(0.2, 1.0) * seconds)
    assert _state(first) in ("none", "half", old)
    _complete(_command(cfg, first))
    assert _state(first) == old

    # A piece edited, then forced rebuilds of the old run killed at random points: the old run or the new one.
    transpose(tmp_path / "bo_1.mid")
    seen, finished = [], set()
    for k, fraction in enumerate(sorted(rng.uniform(0.1, 1.0, size=3))):
        run = tmp_path / f"run{k}"
        shutil.copytree(old_run, run)
        _kill_after(_command(cfg, run, "--force"), fraction * seconds)
        seen.append(_state(run))
        if seen[-1] == old:
            assert published_digest(run) == old_files  # byte for byte the old run
        _complete(_command(cfg, run, "--force"))
        finished.add(_state(run))
        assert not (run / ".staging").exists()
    [new] = finished
    assert new not in (old, "none", "half")
    assert set(seen) <= {old, new, "half"}, seen
    print("states after each kill:", ["old" if s == old else "new" if s == new else s for s in seen])


PUBLISH_KILLER = """
import os, signal, sys
from pathlib import Path
run, n = Path(sys.argv[1]), int(sys.argv[2])
real, count = os.replace, [0]
def replace(src, dst):
    real(src, dst)
    if (run / ".staging" / "COMMITTED").exists():  # publishing: die after the n-th rename
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from royaltysim.cli import app
sys.exit(app(sys.argv[3:]))
"""


@pytest.mark.parametrize("renames", [3, 6])
def test_a_build_killed_while_publishing_is_refused_by_readers_and_finished_by_the_next(tmp_path, renames):
    write_catalogue(tmp_path)
    cfg = write_config(tmp_path)
    run = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, "-c", PUBLISH_KILLER, str(run), str(renames), "attribution", "build", str(cfg), "--out", str(run), "-q"],
        capture_output=True, text=True, timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert _state(run) == "half"
    shown = subprocess.run([sys.executable, "-c", CLI, "attribution", "show", str(run)], capture_output=True, text=True)
    assert shown.returncode == 2 and "rerun the same" in shown.stderr and "Traceback" not in shown.stderr
    _complete(_command(cfg, run))
    assert _state(run) not in ("none", "half")
    assert not (run / ".staging").exists() and sorted(os.listdir(run / "outputs"))
