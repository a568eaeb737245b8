"""The reference documentation in ``docs/`` agrees with the code it describes.

* ``docs/schemes.md`` is what the scheme registry renders, and ``royaltysim schemes`` prints the same;
  every scheme documents its pool, basis and each parameter; each scheme's example arm validates.
* ``docs/scenarios.md`` documents every key of the ``sweep:`` section and every sampler, and each of
  its examples validates through the scenario loader and has the number of runs it states.
* ``docs/ODD.md`` follows the ODD protocol, names every scenario key (and only keys that exist), and
  every link in ``docs/`` points at a file, heading, function or class that exists.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from royaltysim.cli import app
from royaltysim.config import Scenario, load_scenario, validate_scenario
from royaltysim.scheme_docs import scheme_example, scheme_reference
from royaltysim.schemes import (
    SCHEMES,
    _allowed,
    _docstring_parts,
    scheme_info,
    scheme_parameters,
)
from royaltysim.sweep import ParamRange, SweepSpec, expand_sweep

from .conftest import small_scenario, write_yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
runner = CliRunner()


# --------------------------------------------------------------------------- reading Markdown

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_SPAN = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_KEY = re.compile(r"[a-z_][a-z0-9_]*(\[(\d+|i)\])?(\.[a-z_][a-z0-9_]*(\[(\d+|i)\])?)*")


def _prose(text: str) -> str:
    """Markdown without its fenced code blocks."""
    return _FENCE.sub("", text)


def _yaml_blocks(text: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(text) if lang == "yaml"]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(text: str) -> set[str]:
    return {_slug(m[1]) for m in re.finditer(r"^#+ (.+)$", _prose(text), re.M)}


# --------------------------------------------------------------------------- the scenario schema


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (through unions, Optional and lists; not dict values)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) is dict:
        return []
    return [m for arg in get_args(annotation) for m in _models(arg)]


def _is_dict(annotation: Any) -> bool:
    return get_origin(annotation) is dict or any(_is_dict(a) for a in get_args(annotation))


ALL_SCHEME_PARAMETERS = {p for name in SCHEMES for p in scheme_parameters(name)}


def _key_exists(path: str) -> bool:
    """Whether a dotted scenario key (``behaviour.exit_rate``, ``schemes[i].ai.params.top_k``) exists."""
    parts = [re.sub(r"\[(\d+|i)\]$", "", p) for p in path.split(".")]
    models: list[type[BaseModel]] = [Scenario]
    for depth, name in enumerate(parts):
        owners = [m for m in models if name in m.model_fields]
        if not owners:
            return False
        annotations = [m.model_fields[name].annotation for m in owners]
        rest = parts[depth + 1:]
        if any(_is_dict(a) for a in annotations):
            if name == "params" and any(m.__name__ == "SchemeSpec" for m in owners) and rest:
                return len(rest) == 1 and rest[0] in ALL_SCHEME_PARAMETERS
            return True  # a free mapping (network parameters, sweep paths)
        models = [m for a in annotations for m in _models(a)]
        if rest and not models:
            return False
    return True


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every key of a model, as a dotted path (list positions left out)."""
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        inner = _models(info.annotation)
        if inner and not _is_dict(info.annotation):
            for m in inner:
                keys |= _leaf_keys(m, path + ".")
        else:
            keys.add(path)
    return keys


_FILE = re.compile(r"\.(parquet|ya?ml|html|json|md|py|png|csv|npz|sha256)$")  # `sweep.parquet` is a file
_MODULE = re.compile(r"(royaltysim|attribution)\.")  # `attribution.table.apply_negative_policy` is code


def _scenario_keys(text: str) -> list[str]:
    """Every code span of ``text``'s prose that is written as a scenario key.

    That is a dotted lower-case path (``behaviour.exit_rate``, ``schemes[i].ai.name``) that is not a
    file name or a module path, or a single top-level key (``seed``).
    """
    spans = [s for s in _SPAN.findall(_prose(text)) if _KEY.fullmatch(s)]
    return [
        s for s in spans
        if ("." in s and not _FILE.search(s) and not _MODULE.match(s)) or re.sub(r"\[.*", "", s) in Scenario.model_fields
    ]


def test_scenario_keys_are_read_from_code_spans() -> None:
    text = ("`creators.exit_threshold`, `royaltysim.metrics`, `sweep.parquet`, `seed`, `plain`, `R_a = P`\n"
            "```yaml\nbehaviour.not_prose: 1 `x.y`\n```\n`schemes[i].ai.params.top_k`")
    assert _scenario_keys(text) == ["creators.exit_threshold", "seed", "schemes[i].ai.params.top_k"]


def _normalise(key: str) -> str:
    return re.sub(r"\[(\d+|i)\]", "", key)


def test_key_resolver_tells_real_keys_from_made_up_ones() -> None:
    for real in ("seed", "behaviour.exit_rate", "source.n_creators", "source.kind", "schemes[i].ai.params.top_k",
                 "schemes[2].human.name", "network.params.m", "sweep.samples.n", "sweep.grid"):
        assert _key_exists(real), real
    for fake in ("creators.exit_threshold", "behaviour.exit_threshold", "metrics.gini", "schemes[i].ai.params.nope",
                 "source.kind.x", "platform.cut"):
        assert not _key_exists(fake), fake


# --------------------------------------------------------------------------- the scheme reference


def test_docs_schemes_md_is_generated_from_the_registry() -> None:
    committed = (DOCS / "schemes.md").read_text()
    assert committed == scheme_reference(markdown=True), (
        "docs/schemes.md is out of date; regenerate it: royaltysim schemes --markdown > docs/schemes.md"
    )


def test_cli_schemes_markdown_prints_docs_schemes_md() -> None:
    result = runner.invoke(app, ["schemes", "--markdown"])
    assert result.exit_code == 0, result.output
    assert result.output == (DOCS / "schemes.md").read_text()


def test_cli_schemes_describes_every_scheme_with_its_parameters() -> None:
    result = runner.invoke(app, ["schemes"])
    assert result.exit_code == 0, result.output
    for name in SCHEMES:
        info = scheme_info(name)
        assert f"\n{name}  [" in result.output
        assert info.summary in result.output
        for p in info.params:
            default = yaml.safe_dump(p.default, default_flow_style=True).removesuffix("\n...\n").strip()
            assert f"    {p.name} (default {default}; {p.allowed})" in result.output


def test_cli_schemes_by_name_and_unknown_names() -> None:
    only = runner.invoke(app, ["schemes", "hybrid"])
    assert only.exit_code == 0, only.output
    assert "\nhybrid  [" in only.output and "\ncausal  [" not in only.output
    assert "floor_basis (default equal; one of: equal, works, seconds)" in only.output
    bad = runner.invoke(app, ["schemes", "hybird"])
    assert bad.exit_code == 2
    assert "unknown royalty scheme 'hybird'" in bad.output and "hybrid" in bad.output


@pytest.mark.parametrize("name", list(SCHEMES))
def test_every_scheme_documents_its_pool_basis_and_each_parameter(name: str) -> None:
    info = scheme_info(name)
    assert info.pool in ("human", "ai"), f"register {name!r} with pool='human' or pool='ai'"
    assert info.basis, f"register {name!r} with basis='what it pays on'"
    assert info.summary and info.description
    documented = set(_docstring_parts(SCHEMES[name])[2])
    assert documented == set(scheme_parameters(name)), (
        f"{name}'s docstring Args: {sorted(documented)}; its parameters: {sorted(scheme_parameters(name))}"
    )
    for p in info.params:
        assert p.meaning and p.allowed, p
        assert p.default == scheme_parameters(name)[p.name]


def test_scheme_info_reads_summary_rule_arguments_and_hints() -> None:
    def rule(s: Any, k: int = 2, mode: Literal["a", "b"] = "a", cap: float | None = None) -> None:
        """One line.

        The rule, ``R_a = P``, see :func:`causal`.

        Args:
            k (int): how many,
                continued here.
            mode: which one.
            cap: at most this.
        """

    summary, description, args = _docstring_parts(rule)
    assert summary == "One line."
    assert description == "The rule, `R_a = P`, see `causal`."
    assert args == {"k": "how many, continued here.", "mode": "which one.", "cap": "at most this."}
    assert _allowed(int) == "an integer"
    assert _allowed(Literal["a", "b"]) == "one of: a, b"
    assert _allowed(float | None) == "a number, or null"

    hybrid = scheme_info("hybrid")
    assert [p.name for p in hybrid.params] == ["floor", "floor_basis", "negative"]
    floor_basis = hybrid.params[1]
    assert floor_basis.default == "equal" and floor_basis.allowed == "one of: equal, works, seconds"
    assert "seconds of music" in floor_basis.meaning


@pytest.mark.parametrize("name", list(SCHEMES))
def test_each_scheme_example_is_a_valid_arm(name: str, run_dir: Path) -> None:
    entry = yaml.safe_load(scheme_example(scheme_info(name)))  # {"ai": {...}} or {"human": {...}}
    raw = small_scenario(run_dir, schemes=[{"label": name, **entry}])
    validate_scenario(raw)


def test_schemes_md_arm_example_validates(run_dir: Path) -> None:
    block = _yaml_blocks((DOCS / "schemes.md").read_text())[0]
    validate_scenario(small_scenario(run_dir, schemes=yaml.safe_load(block)["schemes"]))


# --------------------------------------------------------------------------- scenarios.md and sweeps


def _scenarios_md() -> str:
    return (DOCS / "scenarios.md").read_text()


def _sweep_examples() -> tuple[dict, list[tuple[str, dict]]]:
    blocks = _yaml_blocks(_scenarios_md())
    bases = [yaml.safe_load(b) for b in blocks if re.search(r"^question:", b, re.M)]
    sweeps = [(b, yaml.safe_load(b)) for b in blocks if b.startswith("sweep:")]
    assert len(bases) == 1, "docs/scenarios.md should hold one base scenario for its sweep examples"
    return bases[0], sweeps


def test_scenarios_md_documents_every_sweep_key_and_sampler() -> None:
    spans = set(_SPAN.findall(_prose(_scenarios_md())))
    missing = sorted(f"sweep.{k}" for k in _leaf_keys(SweepSpec) if f"sweep.{k}" not in spans)
    assert not missing, f"docs/scenarios.md does not document {missing}"
    samplers = sorted(k for k in ParamRange.model_fields if not any(s.startswith(f"{k}:") for s in spans))
    assert not samplers, f"docs/scenarios.md does not document the samplers {samplers}"
    top = sorted(k for k in Scenario.model_fields if k not in spans)
    assert not top, f"docs/scenarios.md does not list the top-level keys {top}"


def test_scenarios_md_has_an_example_for_each_sampler() -> None:
    _, sweeps = _sweep_examples()
    used = {kind for _, raw in sweeps for spec in raw["sweep"].get("samples", {}).get("params", {}).values()
            for kind in spec}
    assert used == set(ParamRange.model_fields)
    assert any("grid" in raw["sweep"] for _, raw in sweeps)


def test_every_sweep_example_validates_and_has_the_runs_it_states(run_dir: Path, tmp_path: Path) -> None:
    base, sweeps = _sweep_examples()
    base = {**base, "source": {**base["source"], "run": str(run_dir)}}
    for i, (text, raw) in enumerate(sweeps):
        path = write_yaml(tmp_path / f"sweep_{i}.yaml", {**base, **raw})
        scenario = load_scenario(path)  # raises ScenarioError listing every problem
        stated = re.search(r"= (\d+) runs", text)
        assert stated, f"sweep example {i} should state its number of runs:\n{text}"
        resolved = scenario.model_dump(mode="json")
        resolved.pop("sweep")
        assert len(expand_sweep(resolved, scenario.sweep, scenario.seed)) == int(stated[1]), text


def test_scenarios_md_arm_example_validates(run_dir: Path) -> None:
    arms = [yaml.safe_load(b) for b in _yaml_blocks(_scenarios_md()) if b.startswith("schemes:")]
    assert arms
    validate_scenario(small_scenario(run_dir, schemes=arms[0]["schemes"]))


# --------------------------------------------------------------------------- ODD.md

ODD_SECTIONS = (
    "1 Purpose and patterns",
    "2 Entities, state variables and scales",
    "3 Process overview and scheduling",
    "4 Design concepts",
    "4.1 Basic principles",
    "4.2 Emergence",
    "4.3 Adaptation",
    "4.4 Objectives",
    "4.5 Learning",
    "4.6 Prediction",
    "4.7 Sensing",
    "4.8 Interaction",
    "4.9 Stochasticity",
    "4.10 Collectives",
    "4.11 Observation",
    "5 Initialisation",
    "6 Input data",
    "7 Submodels",
)


def _odd() -> str:
    return (DOCS / "ODD.md").read_text()


def test_odd_has_every_element_of_the_protocol_in_order() -> None:
    headings = [m[1].strip() for m in re.finditer(r"^#+ (.+)$", _prose(_odd()), re.M)]
    positions = [headings.index(s) if s in headings else -1 for s in ODD_SECTIONS]
    assert -1 not in positions, [s for s, p in zip(ODD_SECTIONS, positions) if p < 0]
    assert positions == sorted(positions)


def test_odd_names_only_scenario_keys_that_exist() -> None:
    keys = _scenario_keys(_odd())
    assert len(keys) > 50
    unknown = sorted({k for k in keys if not _key_exists(k)})
    assert not unknown, f"docs/ODD.md names keys the scenario schema does not have: {unknown}"


@pytest.mark.parametrize("doc", ["schemes.md", "scenarios.md", "parameters.md"])
def test_other_docs_name_only_scenario_keys_that_exist(doc: str) -> None:
    unknown = sorted({k for k in _scenario_keys((DOCS / doc).read_text()) if not _key_exists(k)})
    assert not unknown, f"docs/{doc} names keys the scenario schema does not have: {unknown}"


def test_odd_names_every_scenario_key() -> None:
    named = {_normalise(k) for k in _scenario_keys(_odd())}
    schema = {k for k in _leaf_keys(Scenario) if not k.startswith("sweep.")}
    missing = sorted(schema - named)
    assert not missing, f"docs/ODD.md does not describe these scenario keys (write each as `section.key`): {missing}"


def _defines(module: Path, dotted: str) -> bool:
    """Whether ``module`` defines ``dotted`` (a function, class, method or module-level name)."""
    body: list[ast.stmt] = ast.parse(module.read_text()).body
    for part in dotted.split("."):
        found = None
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == part:
                found = node
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == part for t in node.targets):
                found = node
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == part:
                found = node
        if found is None:
            return False
        body = getattr(found, "body", [])
    return True


@pytest.mark.parametrize("doc", ["ODD.md", "schemes.md", "scenarios.md", "parameters.md"])
def test_every_link_in_the_docs_resolves(doc: str) -> None:
    text = (DOCS / doc).read_text()
    problems = []
    for label, target in _LINK.findall(_prose(text)):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        path = (DOCS / file).resolve() if file else DOCS / doc
        if not path.exists():
            problems.append(f"{target}: no such file")
            continue
        if anchor and path.suffix == ".md" and anchor not in _anchors(path.read_text()):
            problems.append(f"{target}: no heading with that anchor")
        name = re.fullmatch(r"`([A-Za-z_][\w.]*)`", label)
        if name and path.suffix == ".py" and not _defines(path, name[1]):
            problems.append(f"{target}: does not define {name[1]}")
    assert not problems, f"docs/{doc}: " + "; ".join(problems)


def test_odd_links_the_code_of_every_agent_and_submodel() -> None:
    linked = {label.strip("`") for label, target in _LINK.findall(_odd()) if target.endswith(".py")}
    for name in ("Creator", "Creator.respond", "Consumers", "Consumers.listen", "Platform", "Platform.settle",
                 "RoyaltyModel", "RoyaltyModel.step", "build_world", "corpus_population", "fitted_population",
                 "with_attribution_noise", "Consumers.welfare", "RoyaltyModel._ai_quality", "RoyaltyModel._collect"):
        assert name in linked, f"docs/ODD.md should link the code of {name}"
