"""Hostile input to the economy's commands: a clear message, exit status 2, bounded memory and time.

Issue 13, findings 5 and 7: each input the probe found is fed to the real command in a subprocess whose
address space is limited to 2 GiB (``tests/faults/_economy.py``). A refusal must come as a message (no
traceback) with exit status 2, within the limit and within seconds, and must name what to change.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.faults._economy import alias_bomb, rsim, scenario_file, small_run, small_scenario
from tests.royaltysim.conftest import write_yaml


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return small_run(tmp_path_factory.mktemp("attribution"))


def _write(path: Path, raw: dict | bytes | str) -> Path:
    if isinstance(raw, dict):
        return write_yaml(path, raw)
    path.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
    return path


def _broken_copy(run_dir: Path, folder: Path, how: str) -> Path:
    run = folder / f"run_{how}"
    shutil.copytree(run_dir, run)
    target = run / "attribution.parquet"
    if how == "corrupt":
        target.write_bytes(target.read_bytes()[:200])
    else:  # a table without its columns
        pd.DataFrame({"unrelated": [1, 2, 3]}).to_parquet(target)
    return run


# (name, scenario (dict, text or bytes; "RUN" is replaced by the attribution run), command, words in the message)
CASES = [
    ("alias bomb", alias_bomb(), ["validate"], "aliases"),
    ("consumers.n 10 million", {"consumers": {"n": 10_000_000, "sessions": 30}}, ["validate"], "--max-memory"),
    ("consumers.n 10 million, run", {"consumers": {"n": 10_000_000, "sessions": 30}}, ["run"], "--max-memory"),
    ("fitted 200k x 100k", {"source": {"kind": "fitted", "run": "RUN", "n_creators": 200_000, "n_outputs": 100_000}},
     ["run"], "attribution (100,000 outputs x 200,000 creators)"),
    ("dense random graph", {"consumers": {"n": 10_000},
                            "network": {"generator": "fast_gnp_random_graph", "params": {"p": 0.5}}},
     ["run"], "social network (~24,997,500 edges)"),
    ("premium_fee .inf", {"consumers": {"n": 300, "premium_fee": float("inf")}}, ["validate"], "finite"),
    ("atkinson_epsilon .inf", {"metrics": {"atkinson_epsilon": float("inf")}}, ["run"], "metrics.atkinson_epsilon"),
    ("network m -1", {"network": {"generator": "barabasi_albert_graph", "params": {"m": -1}}}, ["run"],
     "network.params.m"),
    ("not UTF-8", "question: caf\u00e9\n".encode("latin-1"), ["validate"], "not UTF-8"),
    ("a grid of 10 million runs", {"sweep": {"grid": {"platform.ai_pool_rate": [0.5] * 999,
                                                      "platform.platform_cut": [0.3] * 999}, "replicates": 10}},
     ["validate"], "9,980,010 runs"),
    ("a billion samples", {"sweep": {"samples": {"n": 100_000, "params": {
        "platform.ai_pool_rate": {"uniform": [0, 1]}}}, "replicates": 10_000}}, ["sweep"], "1,000,000,000 runs"),
    ("human pool paid by attribution", {"schemes": [{"label": "a", "human": {"name": "causal"}}]}, ["validate"],
     "rule for the AI pool"),
]


@pytest.mark.parametrize("name, scenario, command, words", CASES, ids=[c[0] for c in CASES])
def test_hostile_scenarios_are_refused_within_bounds(run_dir, tmp_path, name, scenario, command, words) -> None:
    if isinstance(scenario, dict):
        raw = small_scenario(run_dir)
        for key, value in scenario.items():
            raw[key] = {k: (str(run_dir) if v == "RUN" else v) for k, v in value.items()} if key == "source" else value
        scenario = raw
    path = _write(tmp_path / "hostile.yaml", scenario)
    extra = ["--out", tmp_path / "out"] if command[0] in ("run", "sweep") else []
    t0 = time.perf_counter()
    done = rsim([*command, path, *extra], timeout=60)
    seconds = time.perf_counter() - t0
    assert done.returncode == 2, f"{name}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr, done.stderr
    assert words in done.stderr, done.stderr
    assert seconds < 30, f"{name} took {seconds:.0f} s to refuse"
    assert not (tmp_path / "out").exists(), "nothing is written for a refused input"


@pytest.mark.parametrize("how, words", [("corrupt", "cannot be read"), ("columnless", "lacks the column")])
def test_a_broken_attribution_table_is_refused_by_validate_and_run(run_dir, tmp_path, how, words) -> None:
    run = _broken_copy(run_dir, tmp_path, how)
    path = scenario_file(tmp_path / "s.yaml", run)
    for command in (["validate", path], ["run", path, "--out", tmp_path / "out"]):
        done = rsim(command, timeout=60)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert words in done.stderr and "attribution.parquet" in done.stderr, done.stderr


@pytest.mark.parametrize("args, words", [
    (["run", "SCENARIO", "--seed", "-1"], "--seed"),
    (["run", "SCENARIO", "--steps", "0"], "--steps"),
    (["run", "FOLDER"], "is a folder"),
    (["run", "SCENARIO", "--out", "AFILE"], "is a file"),
    (["sweep", "SWEEP", "--workers", "-1"], "--workers"),
    (["sweep", "SWEEP", "--workers", "0"], "--workers"),
    (["sweep", "SWEEP", "--scheduler", "tcp://127.0.0.1:9"], "no Dask scheduler could be reached"),
])
def test_bad_command_lines_are_messages_not_hangs(run_dir, tmp_path, args, words) -> None:
    scenario = scenario_file(tmp_path / "s.yaml", run_dir)
    sweep = scenario_file(tmp_path / "sweep.yaml", run_dir, sweep={"grid": {"platform.platform_cut": [0.2, 0.3]}})
    afile = tmp_path / "afile"
    afile.write_text("x")
    names = {"SCENARIO": scenario, "SWEEP": sweep, "FOLDER": tmp_path, "AFILE": afile}
    command = [names.get(a, a) for a in args]
    if "--out" not in command:
        command += ["--out", tmp_path / "out"]
    done = rsim(command, timeout=45)  # `--workers -1` used to wait forever, an unreachable scheduler 30 s
    assert done.returncode == 2, f"exit {done.returncode}\n{done.stderr}"
    assert "Traceback" not in done.stderr and words in done.stderr, done.stderr
