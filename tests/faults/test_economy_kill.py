"""Killed economy commands leave the old results or the new ones, and a rerun completes (issue 13, finding 6).

``royaltysim run`` is killed (SIGKILL, SIGINT) at random moments and at the one that matters most -- the
instant anything in ``--out`` changes -- while it replaces an earlier run's folder with ``--force``. After
every kill the folder must be entirely the old run (every file byte for byte) or entirely the new one
(every table of the new seed, readable, no file of the old run left). ``royaltysim sweep`` is killed
while its runs execute; every run file left must be whole, and the rerun resumes and completes.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pandas as pd
import yaml

from tests.faults._economy import rsim, scenario_file, small_run, start

def _snapshot(out: Path) -> dict[str, tuple[int, int]]:
    try:
        return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in out.iterdir()}
    except OSError:  # (the folder is being swapped this instant)
        return {}


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def _seed(out: Path) -> int:
    return yaml.safe_load((out / "scenario.yaml").read_text())["seed"]


def _state(out: Path, old: dict[str, bytes], new_seed: int) -> str:
    """"old" or "new"; fails on anything else (a mix, a missing or unreadable file)."""
    files = _files(out)
    assert set(files) == set(old), f"files differ from a whole run: {sorted(set(files) ^ set(old))}"
    same = {name for name in files if files[name] == old[name]}
    if same == set(files):
        return "old"
    assert not same, f"a mix of two runs: {sorted(same)} are the old run's, {sorted(set(files) - same)} the new one's"
    assert _seed(out) == new_seed
    for name in files:
        if name.endswith(".parquet"):
            table = pd.read_parquet(out / name)  # readable: not truncated
            if "seed" in table.columns:
                assert set(table["seed"]) == {new_seed}, name
    return "new"


def _kill_when_out_changes(proc, out: Path, before: dict, sig: int) -> bool:
    """Poll ``out`` until anything in it changes, then send ``sig`` at once; False if the process ended first."""
    while proc.poll() is None:
        if _snapshot(out) != before:
            os.killpg(proc.pid, sig)
            return True
        time.sleep(0.001)
    return False


def _kill_after(proc, seconds: float, sig: int) -> None:
    try:
        proc.wait(timeout=seconds)
    except Exception:  # noqa: BLE001 - still running: this is the moment
        os.killpg(proc.pid, sig)


def test_a_killed_run_leaves_the_old_folder_or_the_new_one(tmp_path: Path) -> None:
    run = small_run(tmp_path / "attribution")
    scenario = scenario_file(tmp_path / "study.yaml", run, steps=2)
    out = tmp_path / "out"

    def replace_with(seed: int) -> list:  # each command replaces the folder's run with the other seed's
        return ["run", scenario, "--out", out, "--seed", seed, "--force"]

    t0 = time.perf_counter()
    first = rsim(["run", scenario, "--out", out, "--seed", 1])
    duration = time.perf_counter() - t0
    assert first.returncode == 0, first.stderr
    assert {"scenario.yaml", "model.parquet", "creators.parquet", "report.html"} <= set(_files(out))

    # the moment that matters: the instant the folder starts to change
    old = _files(out)
    proc = start(replace_with(2))
    caught = _kill_when_out_changes(proc, out, _snapshot(out), signal.SIGKILL)
    proc.wait()
    assert caught, f"the run ended without changing {out}: {proc.stderr.read()}"
    assert _state(out, old, 2) == "new"  # the swap is one step: once anything changed, everything had

    # random moments, SIGKILL and SIGINT (Ctrl-C)
    rng = random.Random(13)
    seen = []
    for sig in (signal.SIGKILL, signal.SIGINT):
        old, seed = _files(out), 3 - _seed(out)
        proc = start(replace_with(seed))
        _kill_after(proc, rng.uniform(0.3, duration), sig)
        _, err = proc.communicate()
        seen.append(_state(out, old, seed))
        if sig == signal.SIGINT and proc.returncode != 0:
            assert "Traceback" not in err and "interrupted" in err, err
            assert not list(tmp_path.glob(".out.*")), "an interrupted run removes its partial folder"
    # and a rerun completes, whatever the kills left
    old, seed = _files(out), 3 - _seed(out)
    final = rsim(replace_with(seed))
    assert final.returncode == 0, final.stderr
    assert _state(out, old, seed) == "new"
    assert not list(tmp_path.glob(".out.*")), "partial folders of killed runs are cleared by the next run"
    print(f"states after random kills: {seen}")


def _assert_whole_runs(out: Path) -> None:
    """Every file a sweep keeps per run is readable, and each run's model table has all its rows."""
    for f in sorted((out / "runs").glob("*.parquet")):
        table = pd.read_parquet(f)  # readable: not truncated
        if f.name.count(".") == 1:  # <run_id>.parquet: the run's model table
            assert len(table) == 3 * 2, f  # whole: 3 schemes x 2 months
    assert not list((out / "runs").glob("*.tmp")), "no partial run file is left"


def test_a_killed_sweep_keeps_whole_runs_and_resumes(tmp_path: Path) -> None:
    run = small_run(tmp_path / "attribution")
    sweep = {"grid": {"platform.ai_pool_rate": [0.2, 0.5, 0.8]}, "replicates": 2}
    scenario = scenario_file(tmp_path / "sweep.yaml", run, steps=2, sweep=sweep)
    out = tmp_path / "sweep"
    args = ["sweep", scenario, "--out", out, "--workers", "1"]

    proc = start(args)
    deadline = time.monotonic() + 120
    while proc.poll() is None and not list((out / "runs").glob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.Random(5).uniform(0.0, 2.0))  # somewhere among the runs
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    if proc.returncode != 0:
        assert "interrupted" in err and "rerun" in err, err
    _assert_whole_runs(out)

    proc = start(args)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _assert_whole_runs(out)

    done = rsim(args, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "6 runs (" in done.stdout
    table = pd.read_parquet(out / "sweep.parquet")
    assert table.groupby(["platform.ai_pool_rate", "seed"]).size().tolist() == [3 * 2] * 6
    summary = pd.read_parquet(out / "summary.parquet")
    assert set(summary["platform.ai_pool_rate"]) == {0.2, 0.5, 0.8} and (summary["n"] == 2).all()
