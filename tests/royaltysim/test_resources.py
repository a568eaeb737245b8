"""The resource estimate: sizes read from a scenario, refusals with the estimate and the fix, budgets."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from royaltysim import resources
from royaltysim.config import validate_scenario
from royaltysim.resources import (
    ResourceError,
    check_resources,
    estimate,
    machine_memory,
    parse_bytes,
    parse_seconds,
    sizes_of,
)

from .conftest import small_scenario


@pytest.mark.parametrize(
    "generator, params",
    [
        ("barabasi_albert_graph", {"m": 3}),
        ("powerlaw_cluster_graph", {"m": 3, "p": 0.2}),
        ("watts_strogatz_graph", {"k": 6, "p": 0.2}),
        ("newman_watts_strogatz_graph", {"k": 6, "p": 0.2}),
        ("erdos_renyi_graph", {"p": 0.01}),
        ("fast_gnp_random_graph", {"p": 0.01}),
        ("random_regular_graph", {"d": 4}),
    ],
)
def test_expected_edges_match_networkx(generator: str, params: dict) -> None:
    n = 2000
    edges, _ = resources._network_edges(generator, params, n)
    actual = getattr(nx, generator)(n=n, **params, seed=0).number_of_edges()
    assert edges == pytest.approx(actual, rel=0.1)


def test_sizes_come_from_the_scenario_and_its_run(run_dir: Path) -> None:
    sc = validate_scenario(small_scenario(run_dir))
    s = sizes_of(sc)
    assert (s.listeners, s.sessions, s.arms, s.steps) == (300, 10, 3, 4)
    assert (s.creators, s.outputs, s.fitted) == (8, 10, False)  # the fixture run: 8 creators, 10 outputs
    fitted = validate_scenario(small_scenario(run_dir, source={"kind": "fitted", "run": str(run_dir),
                                                               "n_creators": 500, "n_outputs": 40}))
    assert (sizes_of(fitted).creators, sizes_of(fitted).outputs) == (500, 40)
    assert sizes_of(sc, steps=9).steps == 9


def test_the_issues_sizes_are_refused_with_the_estimate_and_the_fix(run_dir: Path) -> None:
    huge = {
        "consumers.n = 10,000,000": small_scenario(run_dir, consumers={"n": 10_000_000, "sessions": 30}),
        "fitted 200k x 100k": small_scenario(run_dir, source={"kind": "fitted", "run": str(run_dir),
                                                              "n_creators": 200_000, "n_outputs": 100_000}),
        "dense random graph": small_scenario(run_dir, consumers={"n": 100_000},
                                             network={"generator": "fast_gnp_random_graph", "params": {"p": 0.5}}),
    }
    for name, raw in huge.items():
        sc = validate_scenario(raw)
        with pytest.raises(ResourceError) as info:
            check_resources(sc, max_memory=16 * 2**30)
        text = str(info.value)
        assert "is more than the 16.0 GiB set by --max-memory" in text and "--max-memory" in text.split("To fix")[1], name
    # the 200k x 100k population: the attribution arrays dominate and are named as the largest part
    est = estimate(validate_scenario(huge["fitted 200k x 100k"]))
    assert est.memory_bytes > 500 * 2**30 and "attribution (100,000 outputs x 200,000 creators)" in est.describe()


def test_small_scenarios_pass_and_budgets_are_honoured(run_dir: Path) -> None:
    sc = validate_scenario(small_scenario(run_dir))
    est = check_resources(sc)
    assert 200e6 < est.memory_bytes < 1e9 and 0 < est.seconds < 120
    with pytest.raises(ResourceError, match="more than the 100.0 MiB set by --max-memory"):
        check_resources(sc, max_memory=100 * 2**20)
    with pytest.raises(ResourceError, match="--max-time 1 s"):
        check_resources(sc, max_seconds=1)
    with pytest.raises(ResourceError, match=r"x 64 runs at once.*--workers"):
        check_resources(sc, max_memory=2 * 2**30, concurrent=64)


def test_the_machine_budget_honours_an_address_space_limit(monkeypatch) -> None:
    import resource

    total, why = machine_memory()
    assert total > 0 and why
    monkeypatch.setattr(resource, "getrlimit", lambda which: (2 * 2**30, resource.RLIM_INFINITY))
    budget, why = machine_memory()
    assert budget < 2 * 2**30 and "ulimit -v" in why


def test_sizes_and_durations_parse() -> None:
    assert parse_bytes("16G") == 16 * 2**30 and parse_bytes("512M") == 512 * 2**20 and parse_bytes("2GiB") == 2**31
    assert parse_bytes("1.5t") == int(1.5 * 2**40) and parse_bytes(1000) == 1000
    assert parse_seconds("90s") == 90 and parse_seconds("30m") == 1800 and parse_seconds("2h") == 7200
    for bad in ("lots", "-1G", "1Q"):
        with pytest.raises(ValueError, match="not a size"):
            parse_bytes(bad)
    with pytest.raises(ValueError, match="not a duration"):
        parse_seconds("soon")
