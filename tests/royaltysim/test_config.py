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
    command = "sweep" if "\nsweep:" in text else "run"
    assert f"royaltysim {command} scenarios/{path.name}" in text, "and the command that runs it"
    load_scenario(path, check_files=(path.parents[1] / "runs" / "default" / "attribution.parquet").is_file())


def test_shipped_scenarios_cover_the_issue() -> None:
    assert {p.stem for p in SCENARIOS} >= {"baseline", "user_centric", "opt_out", "imitation_flooding"}
