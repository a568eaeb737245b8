"""Scenario configuration: a YAML scenario file becomes one typed :class:`Scenario` object.

This is the only package that touches raw dicts. :func:`load_scenario` reads a file, validates its
structure with pydantic and its meaning against the live registries (royalty scheme names and their
parameters from :mod:`royaltysim.schemes`, networkx generators and their arguments, attribution
methods present in the run), collects **every** problem and raises one :class:`ScenarioError` that
lists each with its key path (``schemes[2].ai.params.top_k``) and the allowed values.

Every default of the economy lives in :mod:`~royaltysim.config.schema`, next to a comment that says where
it comes from (``reference/streaming-facts.md``, the calibration of :mod:`royaltysim.calibration`, or a
stated modelling assumption); ``docs/parameters.md`` tables them all.
Money is measured in **income units**: one unit is the month-0 royalty pool divided by the number of
creators (scheme-independent), so creator costs and outside options keep their meaning when a
scenario is scaled from 30 creators to thousands.

The package's modules, each re-exported here:

* :mod:`~royaltysim.config.schema` -- the pydantic models (:class:`Scenario` and its parts);
* :mod:`~royaltysim.config.messages` -- pydantic's errors as key paths and messages naming the allowed keys;
* :mod:`~royaltysim.config.checks` -- checks against the live registries, networkx and the attribution run
  (:data:`NETWORK_GENERATORS`);
* :mod:`~royaltysim.config.loading` -- :func:`load_scenario`, :func:`validate_scenario`,
  :func:`check_scenario`, :func:`scenario_to_yaml`, :class:`ScenarioError` and :func:`repo_root`.
"""

from __future__ import annotations

from royaltysim.config.checks import NETWORK_GENERATORS
from royaltysim.config.loading import (
    ScenarioError,
    check_scenario,
    load_scenario,
    repo_root,
    scenario_to_yaml,
    validate_scenario,
)
from royaltysim.config.schema import (
    AiPoolTerms,
    Arm,
    BehaviourConfig,
    CompareSpec,
    ConsumersConfig,
    CorpusSource,
    FittedSource,
    MetricsConfig,
    NetworkConfig,
    Phase,
    PlatformConfig,
    Scenario,
    SchemeSpec,
    Source,  # noqa: F401  (public in the old module, not in __all__)
)

# a private name other modules import from here: royaltysim.platform_choice and royaltysim.sensitivity check
# their swept scenarios with it
from royaltysim.config.checks import _sweep_issues  # noqa: F401

__all__ = [
    "Scenario",
    "ScenarioError",
    "SchemeSpec",
    "Arm",
    "Phase",
    "AiPoolTerms",
    "CompareSpec",
    "CorpusSource",
    "FittedSource",
    "ConsumersConfig",
    "NetworkConfig",
    "PlatformConfig",
    "BehaviourConfig",
    "MetricsConfig",
    "NETWORK_GENERATORS",
    "load_scenario",
    "validate_scenario",
    "check_scenario",
    "scenario_to_yaml",
    "repo_root",
]
