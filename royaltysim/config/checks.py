"""Checks of a scenario's meaning against the live world, each returning ``(key path, message)`` pairs.

* the listeners' network: a generator of :data:`NETWORK_GENERATORS` with the arguments networkx takes and
  values it can build (:func:`_network_issues`);
* each arm's schemes, nested ones included, against the scheme registry (:func:`_scheme_issues`);
* the attribution run: its tables readable, with their columns, finite scores and the named methods
  (:func:`_source_issues`);
* a sweep: every swept path exists and every swept value gives a valid scenario (:func:`_sweep_issues`).
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from royaltysim.config.messages import _pydantic_issues
from royaltysim.config.schema import ConsumersConfig, NetworkConfig, Scenario

#: networkx generators a scenario may name: each takes the number of nodes first and a ``seed``.
NETWORK_GENERATORS: tuple[str, ...] = (
    "barabasi_albert_graph",
    "watts_strogatz_graph",
    "powerlaw_cluster_graph",
    "erdos_renyi_graph",
    "fast_gnp_random_graph",
    "connected_watts_strogatz_graph",
    "newman_watts_strogatz_graph",
    "random_regular_graph",
)
# arguments the model fills itself (node count and seed); a scenario may not set them
_NETWORK_RESERVED = ("n", "seed", "create_using", "initial_graph")


def _network_value_issue(gen: str, key: str, value: Any, n: int | None) -> str | None:
    """What is wrong with the value of one generator parameter, in words (None when nothing is).

    networkx checks some of these only while it builds the graph (``m: -1`` is a traceback minutes into a
    run), and others never (``p: 1.5``, a float ``m``); ``n`` is the number of listeners (None if unknown).
    """

    def integer(low: int, high: int | None, what: str) -> str | None:
        span = f">= {low}" if high is None else f"from {low} to {high}"
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            return f"{key} ({what}) must be an integer {span}; got {value!r}"
        return None

    below_n = None if n is None else n - 1
    if key == "p":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0
        return None if ok else f"p (a probability) must be a number from 0 to 1; got {value!r}"
    if key == "m":
        return integer(1, below_n, "links each new listener makes, below consumers.n")
    if key == "k":
        low = 2 if gen == "connected_watts_strogatz_graph" else 0  # fewer than 2 neighbours is never connected
        return integer(low, below_n, "ring neighbours of each listener, below consumers.n")
    if key == "d":
        issue = integer(0, below_n, "friends of each listener, below consumers.n")
        if issue is None and n is not None and (n * value) % 2:
            issue = f"d * consumers.n must be even for a regular graph; got d = {value} with consumers.n = {n}"
        return issue
    if key == "tries":
        return integer(1, 1000, "attempts at a connected graph")
    if key == "directed" and value is not False:
        return f"the listeners' network is undirected: leave directed out or set it to false; got {value!r}"
    return None


def _network_issues(raw: Any, n_consumers: Any = None) -> list[tuple[str, str]]:
    import networkx as nx

    if not isinstance(raw, dict):
        return []
    n = n_consumers if isinstance(n_consumers, int) and not isinstance(n_consumers, bool) else None
    issues: list[tuple[str, str]] = []
    gen = raw.get("generator", NetworkConfig.model_fields["generator"].default)
    params = raw.get("params", {"m": 3} if "generator" not in raw else {})
    if not isinstance(gen, str) or gen not in NETWORK_GENERATORS:
        allowed_gens = ", ".join(NETWORK_GENERATORS)
        issues.append(("network.generator", f"unknown generator {gen!r}; allowed: {allowed_gens}"))
        return issues
    sig = inspect.signature(getattr(nx, gen))
    allowed = {
        k: p
        for k, p in sig.parameters.items()
        if k not in _NETWORK_RESERVED + ("backend",)
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }
    if not isinstance(params, dict):
        return issues  # pydantic reports the type
    for key in params:
        if key not in allowed:
            listed = ", ".join(allowed) or "none"
            why = "is set by the model" if key in _NETWORK_RESERVED else "is not a parameter"
            issues.append((f"network.params.{key}", f"{key!r} {why} of {gen}; allowed: {listed}"))
    for key, p in allowed.items():
        if p.default is inspect.Parameter.empty and key not in params:
            issues.append((f"network.params.{key}", f"{gen} needs {key!r}; allowed: {', '.join(allowed)}"))
    for key, value in params.items():
        problem = _network_value_issue(gen, key, value, n) if key in allowed else None
        if problem:
            issues.append((f"network.params.{key}", f"{problem} ({gen})"))
    return issues


def _consumer_count(raw: Any) -> Any:
    """``consumers.n`` of a raw scenario (its default when left out; whatever was written otherwise)."""
    consumers = raw.get("consumers", {}) if isinstance(raw, dict) else {}
    return consumers.get("n", ConsumersConfig.model_fields["n"].default) if isinstance(consumers, dict) else None


def _scheme_issues(raw: Any) -> list[tuple[str, str]]:
    # each arm's human: and ai: scheme, nested schemes included (royaltysim.combinators.spec_issues)
    from royaltysim.combinators import spec_issues

    if not isinstance(raw, list):
        return []
    issues: list[tuple[str, str]] = []
    for i, arm in enumerate(raw):
        if not isinstance(arm, dict):
            continue
        for pool in ("human", "ai"):
            issues += spec_issues(arm.get(pool, {}), f"schemes[{i}].{pool}", pool)
        schedule = arm.get("schedule")
        for j, phase in enumerate(schedule if isinstance(schedule, list) else []):
            for pool in ("human", "ai"):
                if isinstance(phase, dict) and isinstance(phase.get(pool), dict):
                    issues += spec_issues(phase[pool], f"schemes[{i}].schedule[{j}].{pool}", pool)
    return issues


def _read_run_table(path: Path, columns: list[str], numeric: tuple[str, ...] = ()) -> tuple[Any, str | None]:
    """Read one table of an attribution run; ``(table, None)`` or ``(None, what is wrong with it)``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"{path} cannot be read as a parquet table ({first}); it is damaged or not a table"
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        return None, (f"{path} lacks the column(s) {missing}; an attribution run's {path.name} has {columns} "
                      f"(it has {table.column_names})")
    for col in numeric:
        column = table.column(col)
        if not pa.types.is_floating(column.type) and not pa.types.is_integer(column.type):
            return None, f"{path}: column {col!r} holds {column.type}, expected numbers"
        finite = pc.is_finite(column) if pa.types.is_floating(column.type) else None
        if finite is not None and (column.null_count or not pc.all(finite).as_py()):
            return None, f"{path}: column {col!r} has missing, infinite or NaN values; every score must be a number"
    return table, None


def _source_issues(scenario: Scenario) -> list[tuple[str, str]]:
    """The attribution run: its three tables readable, with their columns, finite scores and the named methods."""
    import pyarrow.compute as pc

    from attribution.table import (
        CORPUS_COLUMNS, CORPUS_FILE, OUTPUT_COLUMNS, OUTPUTS_FILE, SCORE_COLUMNS, SCORED_DIR, SCORES_FILE,
    )

    src = scenario.source
    rebuild = "rebuild it with `royaltysim attribution build CONFIG.yaml --out RUN` or point `source.run` at another run"
    if not src.run.is_dir():
        return [("source.run", f"attribution run folder {src.run} does not exist; build the default one with "
                 "`make attribution` (royaltysim attribution build configs/attribution-default.yaml --out "
                 "runs/default) or point `source.run` at an existing run")]
    missing = [f for f in (SCORES_FILE, CORPUS_FILE, OUTPUTS_FILE) if not (src.run / f).is_file()]
    if missing:
        return [("source.run", f"{src.run} is not a complete attribution run: missing {missing} (is its build "
                 "still running or was it interrupted? rerun `make attribution`)")]
    if src.outputs != "build":  # the pieces scored after the build (RUN/scored/) must be there and readable
        scored = src.run / SCORED_DIR
        if not all((scored / f).is_file() for f in (SCORES_FILE, OUTPUTS_FILE)):
            return [("source.outputs", f"{src.outputs}: {scored} holds no scored pieces; score some with "
                     f"`royaltysim attribution score {src.run} PIECE.mid ...`, or set source.outputs: build")]
        found = [_read_run_table(scored / SCORES_FILE, SCORE_COLUMNS, numeric=("score",)),
                 _read_run_table(scored / OUTPUTS_FILE, OUTPUT_COLUMNS)]
        if any(p for _, p in found):
            return [("source.outputs", f"{p}; score the pieces again with `royaltysim attribution score`") for _, p in found if p]
    scores, problem = _read_run_table(src.run / SCORES_FILE, SCORE_COLUMNS, numeric=("score",))
    corpus, problem2 = _read_run_table(src.run / CORPUS_FILE, CORPUS_COLUMNS)
    _, problem3 = _read_run_table(src.run / OUTPUTS_FILE, OUTPUT_COLUMNS)
    problems = [p for p in (problem, problem2, problem3) if p]
    if problems:
        return [("source.run", f"{p}; {rebuild}") for p in problems]
    if scores.num_rows == 0:
        return [("source.run", f"{src.run / SCORES_FILE} has no scores; {rebuild}")]
    strays = pc.unique(pc.filter(scores.column("train_id"), pc.invert(pc.is_in(scores.column("train_id"),
                                                                             corpus.column("train_id")))))
    if len(strays):
        return [("source.run", f"{src.run / SCORES_FILE} scores {len(strays)} piece(s) missing from {CORPUS_FILE}, "
                 f"e.g. {strays.to_pylist()[:3]}; {rebuild}")]
    methods = sorted(str(m) for m in pc.unique(scores.column("method")).to_pylist())
    issues = []
    causal = [m for m in methods if not m.startswith("sim_")]
    sims = [m for m in methods if m.startswith("sim_")]
    if src.causal_method == "best":
        from attribution.best_method import BestMethodError, read_best_method

        try:
            read_best_method(src.run)
        except BestMethodError as err:
            issues.append(("source.causal_method", str(err)))
    elif src.causal_method not in causal:
        issues.append(("source.causal_method", f"{src.causal_method!r} is not a causal method of {src.run}; "
                       f"available: best, {', '.join(causal) or 'none'}"))
    if src.similarity_method not in sims:
        issues.append(("source.similarity_method", f"{src.similarity_method!r} is not a similarity method of "
                       f"{src.run}; available: {', '.join(sims) or 'none'}"))
    return issues


def _sweep_issues(scenario: Scenario, check_files: bool) -> list[tuple[str, str]]:
    """Every swept path must exist in the scenario, and every swept value must give a valid scenario.

    Each distinct (path, value) is checked once, on the base scenario with that one change (the sweep's
    size was checked before: :class:`~royaltysim.sweep.SweepSpec` refuses more than ``MAX_RUNS`` runs).
    """
    from royaltysim.sweep import SweepError, set_path, sweep_points

    base = scenario.model_dump(mode="json")
    base.pop("sweep")
    if scenario.sweep.steps is not None:
        base["steps"] = scenario.sweep.steps
    try:
        points = sweep_points(base, scenario.sweep)
    except SweepError as err:
        return [("sweep", str(err))]
    issues: list[tuple[str, str]] = []
    seen: set[str] = set()
    for point in points:
        for path, value in point.items():
            key = f"{path}={value!r}"
            if key in seen:
                continue
            seen.add(key)
            probe = copy.deepcopy(base)
            set_path(probe, path, value)
            extra = _scheme_issues(probe.get("schemes")) + _network_issues(probe.get("network", {}),
                                                                            _consumer_count(probe))
            try:
                checked = Scenario.model_validate(probe)
                if check_files and path.startswith("source.") and not extra:
                    extra += _source_issues(checked)
            except ValidationError as err:
                extra = _pydantic_issues(err) + extra
            issues += [(f"sweep: {path}={value!r} -> {p}", m) for p, m in extra]
    return issues
