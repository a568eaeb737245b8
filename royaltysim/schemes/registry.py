"""The scheme registry, its payout contract and the scheme reference read from it.

* :func:`register_scheme` registers a scheme under a name; :func:`get_scheme`, :func:`scheme_names`,
  :func:`scheme_parameters` and the read-only :data:`SCHEMES` look them up.
* :func:`pay` runs a scheme by name and enforces the payout contract (see :mod:`royaltysim.schemes`);
  :func:`check_parameters` validates a scheme's parameters without real data.
* :func:`scheme_info` builds a scheme's reference entry (:class:`SchemeInfo`, :class:`SchemeParam`)
  from its registration, docstring, signature and type hints; :class:`NestedScheme` and
  :class:`SchemeParts` type the parameters that hold other schemes.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import numpy as np

from royaltysim.schemes.settlement import Settlement, _close

__all__ = [
    "Scheme",
    "SCHEMES",
    "UnknownSchemeError",
    "SchemeParameterError",
    "SchemeOutputError",
    "register_scheme",
    "scheme_names",
    "get_scheme",
    "scheme_parameters",
    "SchemeParam",
    "SchemeInfo",
    "scheme_info",
    "check_parameters",
    "pay",
    "NestedScheme",
    "SchemeParts",
]

Scheme = Callable[..., np.ndarray]


class NestedScheme(dict):
    """Type of a scheme parameter that is itself a scheme: ``{name: NAME, params: {...}}`` in a scenario."""


class SchemeParts(list):
    """Type of a scheme parameter that is a weighted list of schemes: ``[{weight: W, scheme: {name: ...}}, ...]``."""


class UnknownSchemeError(ValueError):
    """No scheme is registered under this name."""


class SchemeParameterError(ValueError):
    """A scheme was given a parameter it does not take, or a value it cannot use."""


class SchemeOutputError(RuntimeError):
    """A registered scheme broke the payout contract (a bug in the scheme, not in the input)."""


_REGISTRY: dict[str, Scheme] = {}
# each scheme's parameters after the settlement, with their defaults: read from its signature once, at
# registration, since inspecting a signature costs more than a small economy's settlement
_PARAMETERS: dict[str, dict[str, Any]] = {}
# each scheme's (pool, basis) from its registration, for the scheme reference (see scheme_info)
_REFERENCE: dict[str, tuple[str | None, str]] = {}
SCHEMES: Mapping[str, Scheme] = MappingProxyType(_REGISTRY)
"""Read-only view of the registered schemes, by name."""


def register_scheme(
    name: str, *, pool: Literal["human", "ai"] | None = None, basis: str = ""
) -> Callable[[Scheme], Scheme]:
    """Register ``f(s: Settlement, **params) -> payouts`` under ``name``.

    Every parameter after the settlement must be keyword-usable and have a default, so a scenario
    may leave it out and :func:`scheme_parameters` can list it.

    The scheme reference (:func:`scheme_info`, ``royaltysim schemes``, ``docs/schemes.md``) is read
    from the registration and the function: give ``pool`` (the pool the rule is designed for,
    ``human`` or ``ai``) and ``basis`` (what it pays on, in words), and write the function's docstring
    as a one-line summary, the rule in words, and an ``Args:`` entry for every parameter.
    """

    def decorator(func: Scheme) -> Scheme:
        if name in _REGISTRY:
            existing = _REGISTRY[name].__qualname__
            raise ValueError(f"a scheme named {name!r} is already registered ({existing})")
        params = list(inspect.signature(func).parameters.values())
        if not params or params[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise TypeError(f"scheme {name!r}: the first parameter must be the Settlement")
        for p in params[1:]:
            if p.default is inspect.Parameter.empty or p.kind in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
                inspect.Parameter.POSITIONAL_ONLY,
            ):
                raise TypeError(
                    f"scheme {name!r}: parameter {p.name!r} must be a keyword parameter with a default"
                )
        _REGISTRY[name] = func
        _PARAMETERS[name] = {p.name: p.default for p in params[1:]}
        _REFERENCE[name] = (pool, basis)
        return func

    return decorator


def scheme_names() -> list[str]:
    """Names of all registered schemes, sorted."""
    return sorted(_REGISTRY)


def get_scheme(name: str) -> Scheme:
    """The scheme registered as ``name``; :class:`UnknownSchemeError` lists the valid names."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownSchemeError(
            f"unknown royalty scheme {name!r}; valid schemes are: {', '.join(scheme_names())}"
        ) from None


def scheme_parameters(name: str) -> dict[str, Any]:
    """Parameters of scheme ``name`` and their defaults, in signature order."""
    get_scheme(name)  # unknown names raise here
    return dict(_PARAMETERS[name])


# --------------------------------------------------------------------------- reference


@dataclass(frozen=True)
class SchemeParam:
    """One parameter of a scheme, as the scheme reference shows it.

    Attributes:
        name: its key under ``params:`` in a scenario.
        default: the value a scenario that leaves it out gets (the signature's default).
        allowed: the values a scenario may write, in words (from the type hint), e.g. ``one of: works, seconds``.
        meaning: the parameter's ``Args:`` entry in the scheme's docstring ("" when it has none).
    """

    name: str
    default: Any
    allowed: str
    meaning: str


@dataclass(frozen=True)
class SchemeInfo:
    """What the scheme reference (``royaltysim schemes``, ``docs/schemes.md``) says about one scheme.

    Nothing here is written twice: ``pool`` and ``basis`` come from :func:`register_scheme`, the
    ``summary`` (first line), ``description`` (the rule in words, up to ``Args:``) and each
    parameter's meaning from the scheme's docstring, parameter names and defaults from its signature
    and the values they accept from its type hints. Docstring markup is reduced to Markdown code
    spans (``` ``x`` ``` and ``:func:`x``` both become ```x```).

    Attributes:
        name: the registered name (``name:`` in a scenario's ``human:`` or ``ai:``).
        pool: the pool the rule is designed for: ``human`` (human streams) or ``ai``; None if unstated.
        basis: what the rule pays on, in words ("" if unstated).
        summary: one line.
        description: the rule in words, with its formula.
        params: its parameters, in signature order.
    """

    name: str
    pool: str | None
    basis: str
    summary: str
    description: str
    params: tuple[SchemeParam, ...]


_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr):`~?([^`]+)`")
_ARG = re.compile(r"(\w+)(?:\s*\([^)]*\))?:\s*(.*)")


def _markdown(text: str) -> str:
    """Docstring markup as Markdown code spans: ``x`` and :func:`x` become `x`."""
    return _ROLE.sub(r"`\1`", text).replace("``", "`")


def _docstring_parts(func: Scheme) -> tuple[str, str, dict[str, str]]:
    """(summary, description, {parameter: meaning}) of a Google-style docstring."""
    lines = inspect.cleandoc(func.__doc__ or "").splitlines()
    summary = lines[0].strip() if lines else ""
    body: list[str] = []
    args: dict[str, list[str]] = {}
    in_args, indent, current = False, None, None
    for line in lines[1:]:
        if line.strip() == "Args:":
            in_args = True
            continue
        if in_args and line.strip() and not line[0].isspace():
            in_args = False  # the next section (or text) ends the arguments
        if not in_args:
            body.append(line)
            continue
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        match = _ARG.fullmatch(line.strip()) if depth == indent else None
        if match:
            current = match[1]
            args[current] = [match[2]]
        elif current is not None:
            args[current].append(line.strip())
    meanings = {k: _markdown(" ".join(v).strip()) for k, v in args.items()}
    return _markdown(summary), _markdown("\n".join(body).strip()), meanings


def _allowed(hint: Any) -> str:
    """The values a type hint accepts, in a scenario's (YAML) terms."""
    if hint is NestedScheme:
        return "a scheme: `{name: NAME, params: {...}}` (any registered scheme, nested to any depth)"
    if hint is SchemeParts:
        return "a list of `{weight: W, scheme: {name: NAME, params: {...}}}`, weights >= 0 summing to 1"
    origin = get_origin(hint)
    if origin is Literal:
        return "one of: " + ", ".join(str(a) for a in get_args(hint))
    if origin in (Union, UnionType):
        parts = [_allowed(a) for a in get_args(hint) if a is not NoneType]
        return " or ".join(parts) + (", or null" if NoneType in get_args(hint) else "")
    return {bool: "true or false", int: "an integer", float: "a number", str: "text"}.get(hint, str(hint))


def scheme_info(name: str) -> SchemeInfo:
    """The reference entry of scheme ``name`` (see :class:`SchemeInfo` for where each part comes from)."""
    func = get_scheme(name)  # unknown names raise here
    pool, basis = _REFERENCE.get(name, (None, ""))
    summary, description, meanings = _docstring_parts(func)
    try:
        hints = get_type_hints(func)
    except (NameError, TypeError):  # a scheme defined where its hints cannot be resolved
        hints = {}
    params = tuple(
        SchemeParam(key, default, _allowed(hints[key]) if key in hints else "", meanings.get(key, ""))
        for key, default in _PARAMETERS[name].items()
    )
    return SchemeInfo(name, pool, basis, summary, description, params)


def _check_names(name: str, params: Mapping[str, Any]) -> None:
    allowed = scheme_parameters(name)
    unknown = [k for k in params if k not in allowed]
    if unknown:
        listed = ", ".join(f"{k} (default {v!r})" for k, v in allowed.items()) or "none"
        raise SchemeParameterError(
            f"scheme {name!r} got unknown parameter(s) {unknown}; allowed parameters: {listed}"
        )


def check_parameters(name: str, params: Mapping[str, Any]) -> None:
    """Validate a scheme's parameter names *and* values without real data.

    Runs the scheme once on an empty one-creator settlement, which is enough for every value check
    (schemes check their parameters before looking at the data). Raises :class:`UnknownSchemeError`
    or :class:`SchemeParameterError`; a scenario loader can call this for each configured scheme.
    """
    _check_names(name, params)
    get_scheme(name)(Settlement.build(0.0, n_creators=1), **params)


def pay(name: str, s: Settlement, **params: Any) -> np.ndarray:
    """Payouts of scheme ``name`` on settlement ``s``: shape (n_creators,), see the package's contract."""
    scheme = get_scheme(name)
    _check_names(name, params)
    payouts = np.asarray(scheme(s, **params), dtype=float)
    if payouts.shape != (s.n_creators,):
        raise SchemeOutputError(
            f"scheme {name!r} returned shape {payouts.shape}; expected ({s.n_creators},)"
        )
    tol = 1e-9 * max(1.0, s.pool)
    if not np.isfinite(payouts).all() or (payouts.size and payouts.min() < -tol):
        raise SchemeOutputError(f"scheme {name!r} returned negative or non-finite payouts")
    if (payouts[~s.eligible] != 0).any():
        raise SchemeOutputError(f"scheme {name!r} paid ineligible creators")
    total = payouts.sum()
    if total != 0 and not _close(float(total), s.pool, rtol=1e-9, atol=tol):
        raise SchemeOutputError(f"scheme {name!r} paid {float(total)!r} out of a pool of {s.pool!r}")
    return np.maximum(payouts, 0.0)  # (what np.clip(payouts, 0.0, None) computes, for less)
