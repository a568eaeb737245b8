"""Loading a scenario: a YAML file or dict becomes a validated :class:`~royaltysim.config.schema.Scenario`.

:func:`load_scenario` reads a file within bounds, :func:`validate_scenario` validates a dict (structure
with pydantic, meaning with :mod:`~royaltysim.config.checks`) and raises one :class:`ScenarioError` listing
every problem; :func:`check_scenario` re-runs the checks on a scenario built in Python, and
:func:`scenario_to_yaml` writes the resolved scenario for a run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from royaltysim.config.checks import (
    _consumer_count,
    _network_issues,
    _scheme_issues,
    _source_issues,
    _sweep_issues,
)
from royaltysim.config.messages import _pydantic_issues
from royaltysim.config.schema import Scenario
from royaltysim.errors import InputError
from royaltysim.safe_yaml import YamlError, load_yaml_file


def repo_root() -> Path:
    """The repository root (the folder holding ``pyproject.toml`` above the ``royaltysim`` package)."""
    return Path(__file__).resolve().parents[2]


class ScenarioError(InputError, ValueError):
    """A scenario file (or dict) is invalid; ``issues`` lists ``(key_path, message)`` pairs."""

    def __init__(self, source: str, issues: list[tuple[str, str]]):
        self.source = source
        self.issues = issues
        lines = [f"{source}: {len(issues)} problem(s) in the scenario"]
        lines += [f"  - {path}: {msg}" if path else f"  - {msg}" for path, msg in issues]
        super().__init__("\n".join(lines))


def _resolve_run(run: Path, base: Path | None) -> Path:
    """Relative run folders are looked up next to the scenario file, then in the cwd, then the repo."""
    if run.is_absolute():
        return run
    candidates = ([base / run] if base else []) + [Path.cwd() / run, repo_root() / run]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return (repo_root() / run).resolve()


def validate_scenario(
    raw: dict[str, Any], *, source: str = "scenario", base: Path | None = None, check_files: bool = True
) -> Scenario:
    """Validate a scenario dict; raise :class:`ScenarioError` listing every problem found.

    Args:
        raw: the parsed YAML.
        source: how to name the scenario in messages (its file path).
        base: folder that relative paths are resolved against first (the scenario file's folder).
        check_files: also check that the attribution run exists and has the named methods.
    """
    if not isinstance(raw, dict):
        raise ScenarioError(source, [("", f"a scenario must be a mapping of keys; got {type(raw).__name__}")])
    issues = _scheme_issues(raw.get("schemes")) + _network_issues(raw.get("network", {}), _consumer_count(raw))
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as err:
        issues = _pydantic_issues(err) + issues
    if scenario is not None:
        resolved_run = _resolve_run(scenario.source.run, base)
        scenario = scenario.model_copy(update={"source": scenario.source.model_copy(update={"run": resolved_run})})
        if check_files and not issues:
            issues += _source_issues(scenario)
        if scenario.sweep is not None and not issues:
            issues += _sweep_issues(scenario, check_files)
        if scenario.sensitivity is not None and not issues:
            from royaltysim.sensitivity import sensitivity_issues

            issues += sensitivity_issues(scenario, check_files)
        if scenario.fit is not None and not issues:
            from royaltysim.fit import fit_issues

            issues += fit_issues(scenario.model_dump(mode="json"), scenario.fit)
        if scenario.platform_choice is not None and not issues:
            from royaltysim.platform_choice import platform_choice_issues

            issues += platform_choice_issues(scenario, check_files)
    # the same key can be reported by both layers (e.g. a non-dict params); keep the first
    seen: set[tuple[str, str]] = set()
    unique = [i for i in issues if not (i in seen or seen.add(i))]
    if unique or scenario is None:
        raise ScenarioError(source, unique)
    return scenario


def check_scenario(scenario: Scenario, *, check_files: bool = True) -> Scenario:
    """Re-run every check on a scenario built in Python (not through :func:`load_scenario`)."""
    raw = scenario.model_dump(mode="json")
    return validate_scenario(raw, source="scenario", base=None, check_files=check_files)


def load_scenario(path: str | Path, *, check_files: bool = True) -> Scenario:
    """Read and validate a scenario YAML file.

    The file is read within bounds (:mod:`royaltysim.safe_yaml`: size, UTF-8, aliases expanded to at most
    a few hundred thousand values, no recursion), so a hostile file is refused rather than let run out of
    memory.

    Raises:
        ScenarioError: the file is missing, a folder, unreadable, not UTF-8, not valid YAML (the message
            names file and line), too large once expanded, or the scenario is invalid (every problem listed
            with its key path and allowed values).
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.yaml"))[:5]
        hint = f" (it holds {', '.join(found)})" if found else " (scenarios live in `scenarios/*.yaml`)"
        raise ScenarioError(str(path), [("", f"is a folder; give a scenario YAML file{hint}")])
    if not path.is_file():
        raise ScenarioError(str(path), [("", "file not found; scenarios live in `scenarios/*.yaml`")])
    try:
        raw = load_yaml_file(path, what="scenario")
    except YamlError as exc:
        raise ScenarioError(exc.where, [("", exc.problem)]) from None
    return validate_scenario(raw, source=str(path), base=path.resolve().parent, check_files=check_files)


def scenario_to_yaml(scenario: Scenario) -> str:
    """The resolved scenario (every default filled in) as YAML, for a run folder."""
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
