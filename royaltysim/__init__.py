"""royaltysim: who should be paid when an AI music model makes money, and what each royalty rule does.

``import royaltysim`` stays light (no pandas, Mesa or torch at import time); the Python API is
loaded on first use, yet every public name is listed by ``dir(royaltysim)`` and known to editors
and type checkers (through the ``TYPE_CHECKING`` imports below):

>>> import royaltysim
>>> results = royaltysim.run("scenarios/baseline.yaml", seeds=3)      # doctest: +SKIP
>>> results.compare("causal", "pro-rata", measures=["gini_income_run"])  # doctest: +SKIP
>>> sweep = royaltysim.sweep("scenarios/sweep_royalty_rate.yaml", "out/sweep")  # doctest: +SKIP
>>> print(royaltysim.scheme_reference(["hybrid"]))       # doctest: +SKIP

``royaltysim.sweep`` names both the function and the module ``royaltysim/sweep.py`` (where
``run_sweep`` and ``SweepSpec`` live): importing a submodule makes it an attribute of its package, which
would hide a function of the same name. So the attribute is the module, made callable: calling it calls
:func:`royaltysim.runner.sweep`, whichever was imported first (see :class:`_Package`).
"""

from __future__ import annotations

import sys as _sys
import types as _types
from typing import TYPE_CHECKING, Any

__all__ = [
    "__version__",
    "run",
    "Results",
    "sweep",
    "SweepResults",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "scheme_names",
    "scheme_info",
    "scheme_reference",
]

if TYPE_CHECKING:
    from royaltysim.config import Scenario, ScenarioError, load_scenario
    from royaltysim.runner import Results, SweepResults, run, sweep
    from royaltysim.scheme_docs import scheme_reference
    from royaltysim.schemes import scheme_info, scheme_names

    __version__: str

# public name -> the module that defines it, imported on first use (keep in step with the imports above)
_LAZY = {
    "run": "royaltysim.runner",
    "Results": "royaltysim.runner",
    "sweep": "royaltysim.runner",
    "SweepResults": "royaltysim.runner",
    "Scenario": "royaltysim.config",
    "ScenarioError": "royaltysim.config",
    "load_scenario": "royaltysim.config",
    "scheme_names": "royaltysim.schemes",
    "scheme_info": "royaltysim.schemes",
    "scheme_reference": "royaltysim.scheme_docs",
}


#: public functions that share their name with a submodule: the attribute is the submodule, made callable
_CALLABLE_SUBMODULES = {"sweep"}


def _function(name: str) -> Any:
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


class _CallableModule(_types.ModuleType):
    """A submodule that is also the package's function of the same name (``royaltysim.sweep(...)``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _function(self.__name__.rpartition(".")[2])(*args, **kwargs)

    @property
    def __signature__(self) -> Any:  # what `inspect.signature` and notebooks' help show for the call
        import inspect

        return inspect.signature(_function(self.__name__.rpartition(".")[2]))


class _Package(_types.ModuleType):
    """The package's module type: a submodule in :data:`_CALLABLE_SUBMODULES` becomes callable as the import
    system attaches it here (``import royaltysim.sweep`` sets the attribute through ``setattr``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (name in _CALLABLE_SUBMODULES and isinstance(value, _types.ModuleType)
                and value.__name__ == f"{__name__}.{name}" and not isinstance(value, _CallableModule)):
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in _CALLABLE_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")  # attached (callable) by _Package.__setattr__
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("royaltysim")
        except PackageNotFoundError:  # a source tree that was never installed (`pip install -e .`)
            return "0+unknown"
    if name in _LAZY:
        return _function(name)
    raise AttributeError(f"module 'royaltysim' has no attribute {name!r}")


def __dir__() -> list[str]:
    # the public names are not module globals until first use; list them without importing anything
    return sorted(set(globals()) | set(__all__))
