"""Scenario validation: every problem reported at once, with key paths and allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from royaltysim.config import NETWORK_GENERATORS, ScenarioError, load_scenario, validate_scenario
from royaltysim.schemes import scheme_names

from .conftest import small_scenario, write_yaml

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))


def test_valid_scenario_fills_defaults(run_dir: Path, tmp_path: Path) -> None:
    sc = load_scenario(write_yaml(tmp_path / "ok.yaml", small_scenario(run_dir)))
    assert sc.labels == ["pro-rata", "similarity", "causal"]
    assert sc.schemes[0].human.name == "pro_rata"  # the human pool defaults to pro-rata
    assert sc.platform.platform_cut == pytest.approx(0.30)
    assert sc.source.run == run_dir.resolve()


def test_relative_run_resolves_next_to_the_scenario(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mine").symlink_to(run_dir, target_is_directory=True)
    raw = small_scenario(Path("runs/mine"))
    sc = load_scenario(write_yaml(tmp_path / "rel.yaml", raw))
    assert sc.source.run == (tmp_path / "runs" / "mine").resolve()


def test_every_error_is_reported_together(run_dir: Path, tmp_path: Path) -> None:
    raw = small_scenario(run_dir, steps=0)
    raw["consumers"] = {"n": 300, "listeners": 5}
    raw["network"] = {"generator": "small_world", "params": {}}
    raw["schemes"][1]["ai"] = {"name": "similarity", "params": {"top_k": 0, "topk": 3}}
    raw["schemes"][2]["ai"] = {"name": "causual"}
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_yaml(tmp_path / "bad.yaml", raw))
    err = info.value
    paths = dict(err.issues)
    assert set(paths) >= {
        "steps",
        "consumers.listeners",
        "network.generator",
        "schemes[1].ai.params.top_k",
        "schemes[1].ai.params.topk",
        "schemes[2].ai.name",
    }
    assert "top_k (default 1)" in paths["schemes[1].ai.params.topk"]  # allowed parameters are listed
    assert all(name in paths["schemes[2].ai.name"] for name in scheme_names())
    assert all(g in paths["network.generator"] for g in NETWORK_GENERATORS)
    assert "premium_share" in paths["consumers.listeners"]  # allowed keys are listed
    assert str(tmp_path / "bad.yaml") in str(err)


def test_network_parameters_are_checked_against_the_generator(run_dir: Path) -> None:
    raw = small_scenario(run_dir, network={"generator": "watts_strogatz_graph", "params": {"k": 4, "m": 2}})
    with pytest.raises(ScenarioError) as info:
        validate_scenario(raw)
    paths = dict(info.value.issues)
    assert "network.params.m" in paths and "k, p" in paths["network.params.m"]
    assert "network.params.p" in paths  # required and missing


def test_duplicate_labels_and_missing_keys(run_dir: Path) -> None:
    raw = small_scenario(run_dir)
    raw["schemes"][1]["label"] = "pro-rata"
    del raw["question"]
    with pytest.raises(ScenarioError) as info:
        validate_scenario(raw)
    paths = dict(info.value.issues)
    assert "question" in paths and "repeated" in paths["schemes"]


def test_missing_run_and_unknown_method(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="does not exist"):
        validate_scenario(small_scenario(tmp_path / "nowhere"))
    raw = small_scenario(run_dir)
    raw["source"]["causal_method"] = "trek"
    with pytest.raises(ScenarioError) as info:
        validate_scenario(raw)
    assert "trak" in dict(info.value.issues)["source.causal_method"]


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("question: x\nsteps: 3\nschemes:\n  - label: [a\n")
    with pytest.raises(ScenarioError, match=r"(?s)broken\.yaml:\d+:\d+.*YAML syntax error"):
        load_scenario(path)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_shipped_scenarios_are_valid_and_self_documenting(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("# Question:"), "a scenario opens with the question it asks"
    sections = {"\nsweep:": "sweep", "\nsensitivity:": "sensitivity", "\nplatform_choice:": "choose"}
    command = next((cmd for key, cmd in sections.items() if key in text), "run")
    assert f"royaltysim {command} scenarios/{path.name}" in text, "and the command that runs it"
    load_scenario(path, check_files=(path.parents[1] / "runs" / "default" / "attribution.parquet").is_file())


def test_shipped_scenarios_cover_the_issue() -> None:
    assert {p.stem for p in SCENARIOS} >= {"baseline", "user_centric", "opt_out", "imitation_flooding"}


# ------------------------------------------------------------------ issue 13: holes in validation, messages


def _float_fields() -> list[tuple[str, str]]:
    """(section, key) of every float setting of every scenario section."""
    from royaltysim.config import BehaviourConfig, ConsumersConfig, MetricsConfig, PlatformConfig

    sections = {"consumers": ConsumersConfig, "platform": PlatformConfig, "behaviour": BehaviourConfig,
                "metrics": MetricsConfig}
    return [(name, key) for name, model in sections.items() for key, f in model.model_fields.items()
            if f.annotation is float]


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")], ids=["inf", "-inf", "nan"])
def test_every_float_setting_refuses_inf_and_nan(run_dir: Path, value: float) -> None:
    fields = _float_fields()
    assert ("consumers", "premium_fee") in fields and ("behaviour", "talent_sigma") in fields
    assert ("metrics", "atkinson_epsilon") in fields
    raw = small_scenario(run_dir)
    for section, key in fields:
        raw.setdefault(section, {})[key] = value
    raw["source"]["attribution_snr"] = value
    with pytest.raises(ScenarioError) as info:
        validate_scenario(raw)
    paths = dict(info.value.issues)
    for section, key in fields:
        assert "finite" in paths[f"{section}.{key}"] or value != value  # nan may fail a bound first
    assert "source.attribution_snr" in paths
    # and in sweeps: a swept .inf is as bad as a written one
    raw = small_scenario(run_dir, sweep={"grid": {"platform.ai_pool_rate": [0.5, value]}})
    with pytest.raises(ScenarioError, match="ai_pool_rate"):
        validate_scenario(raw)
    raw = small_scenario(run_dir, sweep={"samples": {"n": 2, "params": {"platform.ai_pool_rate": {"uniform": [0, value]}}}})
    with pytest.raises(ScenarioError, match="finite"):
        validate_scenario(raw)


@pytest.mark.parametrize(
    "generator, params, key, words",
    [
        ("barabasi_albert_graph", {"m": -1}, "m", "from 1 to 299"),
        ("barabasi_albert_graph", {"m": 300}, "m", "from 1 to 299"),
        ("barabasi_albert_graph", {"m": 2.5}, "m", "integer"),
        ("barabasi_albert_graph", {"m": "3"}, "m", "integer"),
        ("powerlaw_cluster_graph", {"m": 2, "p": 1.5}, "p", "from 0 to 1"),
        ("watts_strogatz_graph", {"k": 400, "p": 0.1}, "k", "from 0 to 299"),
        ("connected_watts_strogatz_graph", {"k": 1, "p": 0.1}, "k", "from 2"),
        ("connected_watts_strogatz_graph", {"k": 4, "p": 0.1, "tries": 0}, "tries", "from 1"),
        ("fast_gnp_random_graph", {"p": float("inf")}, "p", "from 0 to 1"),
        ("erdos_renyi_graph", {"p": 0.1, "directed": True}, "directed", "undirected"),
        ("random_regular_graph", {"d": -2}, "d", "from 0 to 299"),
    ],
)
def test_network_values_are_checked_before_networkx_sees_them(run_dir: Path, generator, params, key, words) -> None:
    raw = small_scenario(run_dir, network={"generator": generator, "params": params})
    with pytest.raises(ScenarioError) as info:
        validate_scenario(raw)
    paths = dict(info.value.issues)
    assert words in paths[f"network.params.{key}"], paths
    assert generator in paths[f"network.params.{key}"]


def test_odd_regular_graph_and_swept_network_values(run_dir: Path) -> None:
    raw = small_scenario(run_dir, consumers={"n": 301, "sessions": 10},
                         network={"generator": "random_regular_graph", "params": {"d": 3}})
    with pytest.raises(ScenarioError, match="must be even"):
        validate_scenario(raw)
    raw = small_scenario(run_dir, sweep={"grid": {"network.params.m": [2, -1]}})
    with pytest.raises(ScenarioError, match=r"network\.params\.m=-1"):
        validate_scenario(raw)
    raw = small_scenario(run_dir, sweep={"grid": {"consumers.n": [300, 2]}})  # m = 3 is too many for 2 listeners
    with pytest.raises(ScenarioError, match=r"consumers\.n=2"):
        validate_scenario(raw)


@pytest.mark.parametrize(
    "network",
    [
        {"generator": "barabasi_albert_graph", "params": {"m": 2}},
        {"generator": "watts_strogatz_graph", "params": {"k": 4, "p": 0.1}},
        {"generator": "powerlaw_cluster_graph", "params": {"m": 2, "p": 0.3}},
        {"generator": "erdos_renyi_graph", "params": {"p": 0.02}},
        {"generator": "fast_gnp_random_graph", "params": {"p": 0.02}},
        {"generator": "connected_watts_strogatz_graph", "params": {"k": 4, "p": 0.1, "tries": 20}},
        {"generator": "newman_watts_strogatz_graph", "params": {"k": 4, "p": 0.1}},
        {"generator": "random_regular_graph", "params": {"d": 4}},
    ],
    ids=lambda n: n["generator"],
)
def test_every_valid_network_builds(run_dir: Path, network: dict) -> None:
    import numpy as np

    from royaltysim.model import _network

    sc = validate_scenario(small_scenario(run_dir, network=network))
    adjacency = _network(sc, np.random.default_rng(0))
    assert adjacency.shape == (300, 300) and adjacency.nnz > 0
    assert (adjacency != adjacency.T).nnz == 0  # undirected


def test_messages_name_the_allowed_keys_and_values(run_dir: Path) -> None:
    raw = small_scenario(run_dir, consumers="many")
    raw["source"] = {"kind": "fited", "run": str(run_dir)}
    raw["sweep"] = {"samples": {"n": 2, "params": {"platform.platform_cut": "wide",
                                                   "platform.ai_pool_rate": {"unifrom": [0, 1]}}},
                    "grid": {"platform.ai_listening_share": 0.2}}
    with pytest.raises(ScenarioError) as info:
        validate_scenario(raw)
    paths = dict(info.value.issues)
    text = str(info.value)
    assert "instance of" not in text and "Extra inputs" not in text and "Value error" not in text
    assert "premium_share" in paths["consumers"]
    assert "corpus, fitted" in paths["source"]
    assert "uniform, loguniform, integers, choice" in paths["sweep.samples.params.platform.platform_cut"]
    assert "uniform, loguniform" in paths["sweep.samples.params.platform.ai_pool_rate.unifrom"]
    assert "[0.1, 0.2" in paths["sweep.grid.platform.ai_listening_share"]
    with pytest.raises(ScenarioError) as info:
        validate_scenario(small_scenario(run_dir, schemes="causal"))
    assert "label, human, ai" in dict(info.value.issues)["schemes"]


def test_the_human_pool_refuses_rules_made_for_the_ai_pool(run_dir: Path) -> None:
    raw = small_scenario(run_dir)
    raw["schemes"][0]["human"] = {"name": "causal"}
    raw["schemes"][1]["human"] = {"name": "similarity", "params": {"top_k": 2}}
    with pytest.raises(ScenarioError) as info:
        validate_scenario(raw)
    paths = dict(info.value.issues)
    for where in ("schemes[0].human.name", "schemes[1].human.name"):
        assert "rule for the AI pool" in paths[where] and "pro_rata" in paths[where] and "`ai:`" in paths[where]
    raw = small_scenario(run_dir)
    raw["schemes"][0]["ai"] = {"name": "pro_rata"}  # a streaming rule for the AI pool is a real policy (baseline)
    validate_scenario(raw)


def _broken_run(run_dir: Path, tmp_path: Path, how: str) -> Path:
    import shutil

    import pandas as pd

    run = tmp_path / f"run_{how}"
    shutil.copytree(run_dir, run)
    target = run / "attribution.parquet"
    if how == "corrupt":
        target.write_bytes(b"PAR1" + b"\x00garbage" * 50)
    elif how == "truncated":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif how == "no_columns":
        pd.DataFrame(index=range(3)).to_parquet(target)
    elif how == "no_score":
        pd.read_parquet(target).drop(columns="score").to_parquet(target)
    elif how == "nan_score":
        scores = pd.read_parquet(target)
        scores.loc[0, "score"] = float("nan")
        scores.to_parquet(target)
    elif how == "stray_piece":
        scores = pd.read_parquet(target)
        scores.loc[0, "train_id"] = "not_in_the_corpus"
        scores.to_parquet(target)
    return run


@pytest.mark.parametrize("how, words", [
    ("corrupt", "cannot be read"), ("truncated", "cannot be read"), ("no_columns", "lacks the column"),
    ("no_score", "['score']"), ("nan_score", "NaN"), ("stray_piece", "not_in_the_corpus"),
])
def test_validate_reads_and_checks_the_attribution_table(run_dir: Path, tmp_path: Path, how: str, words: str) -> None:
    run = _broken_run(run_dir, tmp_path, how)
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_yaml(tmp_path / "s.yaml", small_scenario(run)))
    paths = dict(info.value.issues)
    assert words in paths["source.run"] and "attribution.parquet" in paths["source.run"]
    assert "rebuild" in paths["source.run"]


def test_unreadable_scenario_files_are_messages(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="is a folder; give a scenario YAML file"):
        load_scenario(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("question: Dvo\u0159\u00e1k\n".encode("cp1250"))
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_scenario(latin)
    bomb = tmp_path / "bomb.yaml"
    from .test_safe_yaml import alias_bomb

    bomb.write_text(alias_bomb())
    with pytest.raises(ScenarioError, match="aliases"):
        load_scenario(bomb)


def test_sweep_size_is_checked_before_expansion(run_dir: Path) -> None:
    import time

    grid = {"platform.ai_pool_rate": [0.5] * 999, "platform.platform_cut": [0.3] * 999}
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match=r"9,980,010 runs \(999 x 999 x 10 replicates\)"):
        validate_scenario(small_scenario(run_dir, sweep={"grid": grid, "replicates": 10}))
    samples = {"n": 100_000, "params": {"platform.ai_pool_rate": {"uniform": [0, 1]}}}
    with pytest.raises(ScenarioError, match="1,000,000,000 runs"):
        validate_scenario(small_scenario(run_dir, sweep={"samples": samples, "replicates": 10_000}))
    assert time.perf_counter() - t0 < 5.0
