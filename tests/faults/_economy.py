"""Helpers of the economy's fault tests: the command line as a subprocess, bounded in memory, and a small world."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from tests.royaltysim.conftest import make_table, small_scenario, write_yaml

__all__ = ["ADDRESS_LIMIT", "rsim", "start", "small_run", "scenario_file", "small_scenario", "alias_bomb"]

#: the address space every command here runs in: a hostile input must be refused inside it, not exhaust it
ADDRESS_LIMIT = 2 * 2**30

# the libraries reserve address space they never use (pyarrow's jemalloc, one malloc arena per thread,
# OpenBLAS buffers per core): without that, `royaltysim validate` holds ~400 MB of address space, not 2 GB
_ENV = {"ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2", "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1", "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_LIMIT, ADDRESS_LIMIT))


def _command(args: list[str | Path]) -> list[str]:
    return [sys.executable, "-c", "import sys; from royaltysim.cli import app; sys.argv[0] = 'royaltysim'; app()",
            *map(str, args)]


def rsim(args: list[str | Path], *, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``royaltysim ARGS`` to completion in a subprocess limited to :data:`ADDRESS_LIMIT`."""
    return subprocess.run(_command(args), capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **_ENV}, preexec_fn=_limit)


def start(args: list[str | Path], *, cwd: Path | None = None) -> subprocess.Popen:
    """Start ``royaltysim ARGS`` in its own process group (so a kill reaches its workers too)."""
    return subprocess.Popen(_command(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env={**os.environ, **_ENV}, preexec_fn=_limit, start_new_session=True)


def small_run(folder: Path) -> Path:
    """A small attribution run (8 creators, 10 outputs) saved in ``folder``."""
    make_table().save(folder)
    return folder


def scenario_file(path: Path, run: Path, **overrides: object) -> Path:
    """A quick scenario on ``run`` (300 listeners, three arms) written to ``path``."""
    return write_yaml(path, small_scenario(run, **overrides))


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The issue's 657-byte "billion laughs": each level lists `width` aliases of the one below (9**9 leaves)."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"
