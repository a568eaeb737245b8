"""How much memory and time a scenario needs, estimated from its sizes before anything is built.

:func:`estimate` reads a scenario's sizes (:class:`Sizes`: listeners and their sessions, the social
network's edges, creators, AI outputs, arms and months) and adds up the cost of each part of a run
(:class:`Estimate`); :func:`check_resources` refuses, with a :class:`ResourceError` that shows the
estimate, its largest parts and the fix, a scenario that needs more memory than the machine has (physical
memory, a cgroup limit or ``RLIMIT_AS``; ``--max-memory`` sets another budget) or more time than
``--max-time``. ``royaltysim validate`` prints the estimate; ``run`` and ``sweep`` check it first, so
``consumers.n: 10000000``, a dense ``fast_gnp_random_graph`` or a fitted 200k x 100k population is a
message, not a ``MemoryError`` minutes later.

The estimate is linear in the sizes that drive each part:

* memory = 290 MB + listener-sessions x 100 B + listeners x 100 B + edges x 380 B
  + creator-output cells x 34 B + creator-months (all arms) x 1.07 kB + creators x 4.5 kB;
* time = 8.5 s + listener-months x (6 us + 0.04 us a further session) + cell-months x 50 ns
  + creator-months x 22 us + edges x 5 us (networkx builds the graph in Python) + node pairs x 0.2 us
  (``erdos_renyi_graph`` visits every pair) + cells x 0.6 us (drawing a fitted population).

Calibration: ``python benchmarks/economy_resources.py`` on 2026-11-30, 2 x86_64 cores, 23 GiB, the
committed code of that day; each configuration is one subprocess running the ``royaltysim run`` path
(validate, world, every arm, tables, report), peak RSS from ``getrusage``. The cores were shared with a
training job and four other sessions (load average 6-8), so the times spread by 2x either way; memory
does not depend on load. Sizes: listeners x sessions, expected edges, creators x outputs, arms x months.

============  ==============  =========  ============  ======  ========  ========  ======  ========
config        listeners       edges      creators x    arms x  peak MB   estimate  time s  estimate
                                         outputs       months
============  ==============  =========  ============  ======  ========  ========  ======  ========
base            1,000 x  30       2,991     43 x   32  1 x 12      320   281 -12%     5.3       8.6
users_30k      30,000 x  30      89,991     43 x   32  1 x 12      373   399  +7%     8.2      11.5
users_100k    100,000 x  30     299,991     43 x   32  1 x 12      694   682  -2%    11.3      18.6
sessions_100   30,000 x 100      89,991     43 x   32  1 x 12      603   599  -1%    17.0      12.5
edges_ba30     30,000 x  30     899,100     43 x   32  1 x 12      622   692 +11%    42.3      15.6
edges_gnp       5,000 x  30     624,875     43 x   32  1 x 12      528   519  -2%    35.5      12.1
creators_5k     1,000 x  30       2,991  5,000 x   32  1 x 12      365   368  +1%    22.5      10.1
cells_5kx1k     1,000 x  30       2,991  5,000 x 1000  1 x 12      562   525  -6%    20.4      15.9
months_5k       1,000 x  30       2,991  5,000 x   32  3 x 48    1,079 1,042  -3%    34.1      26.6
mixed          50,000 x  50     250,000  2,000 x  500  2 x 24      757   749  -1%    42.7      34.0
erdos_renyi     6,000 x  30     179,970     43 x   32  1 x 12      334   360  +8%     9.2      13.5
dense_gnp       3,000 x  30   2,249,250     43 x   32  1 x 12    1,281 1,101 -14%    24.5      20.0
============  ==============  =========  ============  ======  ========  ========  ======  ========

``mixed``, ``erdos_renyi`` and ``dense_gnp`` were measured after the coefficients were first set (out of
sample); the per-edge cost then rose from 310 to 380 B, as a dense graph's adjacency dicts cost more per
edge. Replicate seeds (``seeds``) run in worker processes, two at a time on these cores: each worker holds
one run and a 200 MB interpreter, and every seed's tables come back to the main process. Measured as the
largest total RSS of all the processes at once (sampled every 20 ms), with the replicate runner of the
same day: ``seeds_4`` (``creators_5k`` at 2 arms x 24 months, 4 seeds) 1,851 MB against 1,944 (+5%), 28 s
against 21; ``months_5k`` with 5 seeds 4,427 MB against 5,128 (+16%). Memory is within 15% everywhere. A refusal is about orders of magnitude: ``consumers.n: 10000000``
needs ~40 GiB, a fitted 200k x 100k population ~650 GiB; a dense `fast_gnp_random_graph` (p 0.5) over the default 10,000
listeners ~9 GiB and 2 minutes of graph building, so it runs on a 16 GiB machine and is refused on an 8 GiB one.
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from royaltysim.errors import InputError

__all__ = [
    "Sizes",
    "Estimate",
    "ResourceError",
    "sizes_of",
    "estimate",
    "estimate_sizes",
    "check_resources",
    "machine_memory",
    "parse_bytes",
    "parse_seconds",
    "format_bytes",
    "format_seconds",
]

# --- memory, bytes (see the calibration table in the module docstring)
BASE_MEMORY = 290e6  # interpreter, numpy/pandas/scipy/mesa/networkx/pyarrow, matplotlib for the report
PER_LISTENER_SESSION = 100.0  # a month's draws, picks, counts and the stream matrix being built
PER_LISTENER = 100.0  # fee, volume, taste vector, group
PER_EDGE = 380.0  # networkx's dict-of-dicts graph while it is built, then the CSR adjacency
PER_CELL = 34.0  # (outputs x creators) float arrays: attribution, similarity, reference, a month's settlement
PER_CREATOR_MONTH = 1070.0  # the creators table: one row per arm, month and creator, as dicts then columns
PER_CREATOR = 4500.0  # Mesa agents, their works' qualities, the world's per-creator arrays
WORKER_MEMORY = 200e6  # a process that runs seeds: its own interpreter and libraries

# --- time, seconds (measured on 2 cores shared with other work: an idle machine is up to twice as fast)
BASE_SECONDS = 8.5  # imports, reading the attribution run, the report's fixed cost
PER_LISTENER_MONTH = 6e-6  # one listener's month in one arm: choices, streams, settlement, welfare
PER_SESSION_MONTH = 0.04e-6  # each further session of a listener
PER_CELL_MONTH = 50e-9  # settling the AI pool over (outputs x creators)
PER_CREATOR_MONTH_S = 22e-6  # a creator's decisions and row, per arm and month
PER_EDGE_S = 5e-6  # networkx builds the graph edge by edge, in Python
PER_PAIR_S = 0.2e-6  # erdos_renyi_graph draws a number for every pair of listeners
PER_CELL_S = 0.6e-6  # drawing a fitted population


class ResourceError(InputError):
    """A scenario needs more memory (or time) than allowed; the message shows the estimate and the fix."""


def parse_bytes(text: str | int | float) -> int:
    """``"64G"``, ``"512M"``, ``"1.5T"``, ``"2GiB"`` or a number of bytes -> bytes (binary units)."""
    if isinstance(text, (int, float)):
        return int(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(text).lower())
    if not m:
        raise ValueError(f"{text!r} is not a size; write e.g. 512M, 16G or 1.5T")
    return int(float(m[1]) * 1024 ** " kmgt".index(m[2] or " "))


def parse_seconds(text: str | int | float) -> float:
    """``"90s"``, ``"30m"``, ``"2h"``, ``"1d"`` or a number of seconds -> seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text).lower())
    if not m:
        raise ValueError(f"{text!r} is not a duration; write e.g. 90s, 30m, 2h or 1d")
    return float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]


def format_bytes(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 2**10:.0f} KiB"


def format_seconds(s: float) -> str:
    if s >= 86400 * 2:
        return f"{s / 86400:.1f} days"
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.0f} min"
    return f"{s:.0f} s"


# --------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Sizes:
    """The sizes a run's cost grows with.

    Attributes:
        listeners, sessions: ``consumers.n`` and ``consumers.sessions``.
        edges: expected edges of the social network (from its generator and parameters).
        pairs: listener pairs the generator visits one by one (``erdos_renyi_graph``: all of them; else 0).
        creators, outputs: creators in the economy and AI outputs that credit them.
        fitted: the population is drawn (``source.kind: fitted``) rather than read.
        arms, steps: policies compared and months simulated (each arm runs every month).
        seeds: replicate seeds (``seeds``), each a whole run of every arm.
        parallel: seeds simulated at once, each in its own process (at most the usable cores).
    """

    listeners: int
    sessions: int
    edges: float
    pairs: float
    creators: int
    outputs: int
    fitted: bool
    arms: int
    steps: int
    seeds: int = 1
    parallel: int = 1


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _network_edges(generator: str, params: dict[str, Any], n: int) -> tuple[float, float]:
    """Expected edges of the listeners' network, and the node pairs its generator visits."""
    num = {k: v for k, v in params.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    p = min(max(float(num.get("p", 0.0)), 0.0), 1.0)
    pairs = n * (n - 1) / 2
    if generator in ("barabasi_albert_graph", "powerlaw_cluster_graph"):
        m = num.get("m", 1)
        return max(m, 0) * max(n - m, 0), 0.0
    if generator in ("watts_strogatz_graph", "connected_watts_strogatz_graph"):
        return n * (max(num.get("k", 0), 0) // 2), 0.0
    if generator == "newman_watts_strogatz_graph":
        return n * (max(num.get("k", 0), 0) // 2) * (1 + p), 0.0
    if generator == "random_regular_graph":
        return n * max(num.get("d", 0), 0) / 2, 0.0
    if generator == "erdos_renyi_graph":
        return p * pairs, pairs
    if generator == "fast_gnp_random_graph":
        return p * pairs, 0.0
    return float(n), 0.0  # (an unknown generator is refused by validation; keep the estimate finite)


def _run_counts(run: Path) -> tuple[int, int]:
    """Creators and outputs of an attribution run, read from its tables (0, 0 when unreadable)."""
    try:
        stamp = tuple((run / f).stat().st_mtime_ns for f in ("corpus.parquet", "outputs.parquet"))
    except OSError:
        return 0, 0
    return _read_run_counts(run, stamp)


@functools.lru_cache(maxsize=64)
def _read_run_counts(run: Path, stamp: tuple[int, ...]) -> tuple[int, int]:
    try:
        import pyarrow.parquet as pq

        creators = len(set(pq.read_table(run / "corpus.parquet", columns=["creator"]).column("creator").to_pylist()))
        outputs = pq.ParquetFile(run / "outputs.parquet").metadata.num_rows
        return creators, outputs
    except Exception:  # noqa: BLE001 - validation reports a broken run; the estimate just lacks its sizes
        return 0, 0


def sizes_of(scenario: Any, *, steps: int | None = None, seeds: int | list[int] | None = None) -> Sizes:
    """The :class:`Sizes` of a scenario (a :class:`~royaltysim.config.Scenario` or its resolved dict).

    ``steps`` and ``seeds`` override the scenario's (``--steps``, ``--seeds``).
    """
    raw = scenario if isinstance(scenario, dict) else scenario.model_dump(mode="json")
    consumers, source, network = raw["consumers"], raw["source"], raw["network"]
    n = int(consumers["n"])
    edges, pairs = _network_edges(network["generator"], network.get("params") or {}, n)
    run_creators, run_outputs = _run_counts(Path(source["run"]))
    fitted = source.get("kind") == "fitted"
    seeds = raw.get("seeds", 1) if seeds is None else seeds
    n_seeds = max(len(seeds) if isinstance(seeds, list) else int(seeds), 1)
    creators = int(source["n_creators"]) if fitted else run_creators
    outputs = int(source.get("n_outputs") or 0) or run_outputs if fitted else run_outputs
    return Sizes(
        listeners=n,
        sessions=int(consumers["sessions"]),
        edges=float(edges),
        pairs=float(pairs),
        creators=creators,
        outputs=outputs,
        fitted=fitted,
        arms=len(raw["schemes"]),
        steps=int(steps if steps is not None else raw["steps"]),
        seeds=n_seeds,
        parallel=min(n_seeds, _usable_cores()),
    )


# --------------------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class Estimate:
    """Peak memory (bytes) and wall time (seconds) of one run, with the part each size contributes."""

    sizes: Sizes
    memory_parts: dict[str, float] = field(default_factory=dict)
    time_parts: dict[str, float] = field(default_factory=dict)

    @property
    def memory_bytes(self) -> float:
        return sum(self.memory_parts.values())

    @property
    def seconds(self) -> float:
        return sum(self.time_parts.values())

    @staticmethod
    def _largest(parts: dict[str, float], fmt, k: int = 3) -> str:
        """The parts beyond the fixed base that make up at least 10% of the total, largest first."""
        total = sum(parts.values())
        top = sorted(((v, name) for name, v in parts.items() if name != "base" and v >= 0.1 * total), reverse=True)
        return " (" + ", ".join(f"{name} {fmt(v)}" for v, name in top[:k]) + ")" if top else ""

    def describe(self) -> str:
        """One line: memory and time with their largest parts."""
        return (f"about {format_bytes(self.memory_bytes)} of memory{self._largest(self.memory_parts, format_bytes)} "
                f"and {format_seconds(self.seconds)}{self._largest(self.time_parts, format_seconds)}")


def estimate(scenario: Any, *, steps: int | None = None, seeds: int | list[int] | None = None) -> Estimate:
    """Estimate the peak memory and the time of running ``scenario`` (every arm and seed) and its report."""
    return estimate_sizes(sizes_of(scenario, steps=steps, seeds=seeds))


def estimate_sizes(s: Sizes) -> Estimate:
    """:func:`estimate` from the sizes alone."""
    cells = float(s.creators) * s.outputs
    listener_sessions = float(s.listeners) * s.sessions
    creator_months = float(s.creators) * s.steps * s.arms
    memory = {
        "base": BASE_MEMORY,
        f"listening ({s.listeners:,} listeners x {s.sessions} sessions)": listener_sessions * PER_LISTENER_SESSION
        + s.listeners * PER_LISTENER,
        f"social network (~{s.edges:,.0f} edges)": s.edges * PER_EDGE,
        f"attribution ({s.outputs:,} outputs x {s.creators:,} creators)": cells * PER_CELL,
        f"creators table ({s.arms} arm{'s' * (s.arms != 1)} x {s.steps} months x {s.creators:,} creators)": creator_months
        * PER_CREATOR_MONTH + s.creators * PER_CREATOR,
    }
    months = s.steps * s.arms
    seconds = {
        "base": BASE_SECONDS,
        f"listening ({months} arm-months)": float(s.listeners) * months
        * (PER_LISTENER_MONTH + max(s.sessions - 1, 0) * PER_SESSION_MONTH),
        "settlement": cells * months * PER_CELL_MONTH,
        "creators' decisions": creator_months * PER_CREATOR_MONTH_S,
        "building the network": s.edges * PER_EDGE_S + s.pairs * PER_PAIR_S,
        "drawing the population": cells * PER_CELL_S if s.fitted else 0.0,
    }
    if s.seeds > 1:
        # each seed's run in its own process (a fresh interpreter), `parallel` at a time; every seed's tables
        # come back to this process
        one_run = sum(v for k, v in memory.items() if k != "base")
        tables = creator_months * PER_CREATOR_MONTH
        memory[f"{s.seeds} seeds, {s.parallel} at a time"] = (
            (s.parallel - 1) * one_run + (s.parallel > 1) * s.parallel * WORKER_MEMORY + (s.seeds - 1) * tables
        )
        one_time = sum(v for k, v in seconds.items() if k != "base")
        seconds[f"{s.seeds} seeds, {s.parallel} at a time"] = (math.ceil(s.seeds / s.parallel) - 1) * one_time
    return Estimate(s, memory, seconds)


# --------------------------------------------------------------------------- the machine


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            return int(text)
    return None


def _address_overhead() -> int:
    """Address space this process holds beyond its resident memory (libraries, thread stacks, arenas)."""
    try:
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return max(0, (int(status["VmSize"].split()[0]) - int(status["VmRSS"].split()[0])) * 1024)
    except (OSError, KeyError, ValueError):
        return 0


def machine_memory() -> tuple[int, str]:
    """The memory a run may use here, and what sets it (physical memory, a cgroup limit or ``RLIMIT_AS``)."""
    limits: list[tuple[int, str]] = []
    try:
        limits.append((os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "this machine's memory"))
    except (ValueError, OSError, AttributeError):
        pass
    cgroup = _cgroup_limit()
    if cgroup is not None:
        limits.append((cgroup, "the container's memory limit"))
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limits.append((max(soft - _address_overhead(), 0), "the process's address-space limit (ulimit -v)"))
    except (ImportError, ValueError, OSError):
        pass
    return min(limits) if limits else (2**63, "no known limit")


def check_resources(
    scenario: Any,
    *,
    steps: int | None = None,
    seeds: int | list[int] | None = None,
    max_memory: int | None = None,
    max_seconds: float | None = None,
    concurrent: int = 1,
    runs: int = 1,
    workers: int = 1,
    what: str = "this scenario",
) -> Estimate:
    """Estimate a scenario's needs and refuse what exceeds the budget; returns the estimate.

    Args:
        scenario: the scenario (or, for a sweep, its largest run's resolved dict).
        steps, seeds: the months and replicate seeds actually run (``--steps``, ``--seeds``), if they differ
            from the scenario's.
        max_memory: memory budget in bytes (default: :func:`machine_memory`).
        max_seconds: time budget (default: none).
        concurrent: runs in memory at once (a local sweep's workers).
        runs, workers: a sweep's number of runs and the workers they share (for its time).
        what: how to name it in messages.

    Raises:
        ResourceError: the estimate exceeds a budget; the message shows it and how to fix it.
    """
    est = estimate(scenario, steps=steps, seeds=seeds)
    need = est.memory_bytes * concurrent
    budget, why = (max_memory, "--max-memory") if max_memory is not None else machine_memory()
    why = f"set by {why}" if why == "--max-memory" else f"of {why}"
    if need > budget:
        times = f" x {concurrent} runs at once" if concurrent > 1 else ""
        fixes = "reduce the largest part (consumers.n, consumers.sessions, the network's density, creators or outputs, " \
                "steps or arms)"
        if concurrent > 1:
            fixes += ", run fewer at once (--workers)"
        raise ResourceError(
            f"{what} needs {est.describe()}{times}: {format_bytes(need)} is more than the {format_bytes(budget)} "
            f"{why}. To fix: {fixes}; or, on a machine that has the memory, pass --max-memory "
            f"{math.ceil(need / 2**30 * 1.2)}G."
        )
    total = est.seconds * math.ceil(runs / max(workers, 1))
    if max_seconds is not None and total > max_seconds:
        raise ResourceError(
            f"{what} needs {est.describe()}" + (f" per run, {format_seconds(total)} for {runs:,} runs on {workers} "
                                                f"workers" if runs > 1 else "")
            + f": more than --max-time {format_seconds(max_seconds)}. Shorten it (steps, arms, consumers.n"
            + (", fewer runs or more workers" if runs > 1 else "") + "), or raise --max-time."
        )
    return est
