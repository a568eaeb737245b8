"""royaltysim: who should be paid when an AI music model makes money, and what each royalty rule does.

``import royaltysim`` stays light (no pandas, Mesa or torch at import time); the Python API is
loaded on first use:

>>> import royaltysim
>>> results = royaltysim.run("scenarios/baseline.yaml")   # doctest: +SKIP
>>> results.model.groupby("scheme")["gini"].last()          # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["run", "Results", "Scenario", "ScenarioError", "load_scenario"]

if TYPE_CHECKING:
    from royaltysim.config import Scenario, ScenarioError, load_scenario
    from royaltysim.runner import Results, run

_LAZY = {
    "run": "royaltysim.runner",
    "Results": "royaltysim.runner",
    "Scenario": "royaltysim.config",
    "ScenarioError": "royaltysim.config",
    "load_scenario": "royaltysim.config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'royaltysim' has no attribute {name!r}")
