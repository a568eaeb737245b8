"""royaltysim: who should be paid when an AI music model makes money, and what each royalty rule does.

``import royaltysim`` stays light (no pandas, Mesa or torch at import time); the Python API is
loaded on first use, yet every public name is listed by ``dir(royaltysim)`` and known to editors
and type checkers (through the ``TYPE_CHECKING`` imports below):

>>> import royaltysim
>>> results = royaltysim.run("scenarios/baseline.yaml")   # doctest: +SKIP
>>> results.compare(measures=["gini_income_run"])            # doctest: +SKIP
>>> print(royaltysim.scheme_reference(["hybrid"]))       # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "__version__",
    "run",
    "Results",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "scheme_names",
    "scheme_info",
    "scheme_reference",
]

if TYPE_CHECKING:
    from royaltysim.config import Scenario, ScenarioError, load_scenario
    from royaltysim.runner import Results, run
    from royaltysim.scheme_docs import scheme_reference
    from royaltysim.schemes import scheme_info, scheme_names

    __version__: str

# public name -> the module that defines it, imported on first use (keep in step with the imports above)
_LAZY = {
    "run": "royaltysim.runner",
    "Results": "royaltysim.runner",
    "Scenario": "royaltysim.config",
    "ScenarioError": "royaltysim.config",
    "load_scenario": "royaltysim.config",
    "scheme_names": "royaltysim.schemes",
    "scheme_info": "royaltysim.schemes",
    "scheme_reference": "royaltysim.scheme_docs",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("royaltysim")
        except PackageNotFoundError:  # a source tree that was never installed (`pip install -e .`)
            return "0+unknown"
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'royaltysim' has no attribute {name!r}")


def __dir__() -> list[str]:
    # the public names are not module globals until first use; list them without importing anything
    return sorted(set(globals()) | set(__all__))
