"""Scheme combinators: royalty schemes built from other schemes, nestable to any depth in a scenario.

A combinator is a registered scheme (see :mod:`royaltysim.schemes`) whose parameters include other
schemes: a parameter typed :class:`~royaltysim.schemes.NestedScheme` holds one
(``{name: NAME, params: {...}}``), one typed :class:`~royaltysim.schemes.SchemeParts` a weighted list
(``[{weight: W, scheme: {...}}, ...]``). It pays its inner schemes through :func:`~royaltysim.schemes.pay`,
so every level of a nesting is held to the payout contract, and it keeps the contract itself: payouts
are non-negative, zero for the ineligible, and add up to the whole pool or (no basis) to nothing.

Combinators here:

* ``mix`` -- a weighted mix of any schemes (``hybrid`` is the mix of a flat floor and ``causal``);
* ``floor`` -- a minimum payment per creator or per work, topped up from the others' shares;
* ``cap`` -- a maximum share of the pool per creator, the excess re-spread by the inner shares;
* ``threshold`` -- nothing for creators under a number of human streams (a year or a month);
* ``eligibility`` -- only creators in the AI's training set (opted in), or with works.

:func:`spec_issues` validates a nested scheme specification without data (the scenario loader calls
it for each arm's ``human:`` and ``ai:``), listing each problem with its key path.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Literal, get_type_hints

import numpy as np

from royaltysim.schemes import (
    NestedScheme,
    SchemeParameterError,
    SchemeParts,
    Settlement,
    UnknownSchemeError,
    _choice,
    _number,
    check_parameters,
    get_scheme,
    pay,
    register_scheme,
    scheme_info,
    scheme_names,
    scheme_parameters,
)

__all__ = [
    "mix",
    "floor",
    "cap",
    "threshold",
    "eligibility",
    "hybrid",
    "hybrid_parts",
    "nested_parameters",
    "spec_issues",
    "describe_params",
]

# relative slack on a mix's weights summing to 1 (0.1 + 0.2 + 0.7 is not exactly 1.0 in floats)
_WEIGHT_TOL = 1e-9


# --------------------------------------------------------------------------- nested specifications


def _spec(combinator: str, param: str, spec: Any) -> tuple[str, dict[str, Any]]:
    """(name, params) of a nested scheme specification; :class:`SchemeParameterError` if malformed."""
    if not isinstance(spec, Mapping) or "name" not in spec or set(spec) - {"name", "params"}:
        raise SchemeParameterError(
            f"scheme {combinator!r}: {param} must be a scheme, {{name: NAME, params: {{...}}}}; got {spec!r}"
        )
    params = spec.get("params") or {}
    if not isinstance(params, Mapping):
        raise SchemeParameterError(f"scheme {combinator!r}: {param}.params must be a mapping; got {params!r}")
    name = spec["name"]
    if not isinstance(name, str) or name not in scheme_names():
        raise UnknownSchemeError(
            f"scheme {combinator!r}: {param}.name {name!r} is unknown; valid schemes are: {', '.join(scheme_names())}"
        )
    return name, dict(params)


def _parts(combinator: str, parts: Any) -> list[tuple[float, str, dict[str, Any]]]:
    """(weight, name, params) of each part of a mix; :class:`SchemeParameterError` if malformed."""
    if not isinstance(parts, (list, tuple)) or not parts:
        raise SchemeParameterError(
            f"scheme {combinator!r}: parts must be a non-empty list of {{weight: W, scheme: {{name: ...}}}}; "
            f"got {parts!r}"
        )
    out = []
    for i, part in enumerate(parts):
        if not isinstance(part, Mapping) or set(part) != {"weight", "scheme"}:
            raise SchemeParameterError(
                f"scheme {combinator!r}: parts[{i}] must have exactly the keys weight and scheme; got {part!r}"
            )
        weight = _number(combinator, f"parts[{i}].weight", part["weight"], low=0.0, high=1.0)
        out.append((weight, *_spec(combinator, f"parts[{i}].scheme", part["scheme"])))
    total = sum(w for w, _, _ in out)
    if abs(total - 1.0) > _WEIGHT_TOL:
        raise SchemeParameterError(
            f"scheme {combinator!r}: the parts' weights sum to {total:.10g}; they must sum to 1"
        )
    return out


@cache
def nested_parameters(name: str) -> dict[str, type]:
    """Parameters of scheme ``name`` that hold schemes, with their type (NestedScheme or SchemeParts)."""
    try:
        hints = get_type_hints(get_scheme(name))
    except (NameError, TypeError):
        return {}
    return {k: hints[k] for k in scheme_parameters(name) if hints.get(k) in (NestedScheme, SchemeParts)}


def spec_issues(spec: Any, where: str, pool: Literal["human", "ai"], *, top: bool = True) -> list[tuple[str, str]]:
    """Every problem with scheme specification ``spec`` for ``pool``, as (key path, message) pairs.

    Checks the name, the parameter names and values (through :func:`check_parameters`, one at a time
    so each message names its key) and, recursively, every nested scheme with its own key path
    (``schemes[0].ai.params.parts[1].scheme.params.negative``). A rule designed for the AI pool may
    not be named, at any depth, for the human pool. ``top``: ``spec`` is an arm's own ``human:`` /
    ``ai:`` entry, whose shape pydantic already checks.
    """
    if not isinstance(spec, Mapping):
        return [] if top else [(where, f"expected a scheme, {{name: NAME, params: {{...}}}}; got {spec!r}")]
    issues: list[tuple[str, str]] = []
    if not top:
        for key in sorted(set(spec) - {"name", "params"}, key=str):
            issues.append((f"{where}.{key}", f"a scheme has only the keys name and params; got {key!r}"))
    name = spec.get("name", "pro_rata" if top else None)
    params = spec.get("params", {}) or {}
    if not isinstance(name, str) or name not in scheme_names():
        return issues + [(f"{where}.name", f"unknown scheme {name!r}; valid schemes: {', '.join(scheme_names())}")]
    nested = nested_parameters(name)
    if pool == "human" and not nested and scheme_info(name).pool == "ai":
        # the human pool is money for human streams; a rule built on the AI's outputs or training set
        # would hand it out by what the AI did (causal: attribution the human streams do not have)
        human = ", ".join(n for n in scheme_names() if scheme_info(n).pool != "ai" or nested_parameters(n))
        return issues + [(f"{where}.name", f"{name!r} is a rule for the AI pool (it pays on "
                          f"{scheme_info(name).basis or 'the AI'}), and the human pool pays for human streams; "
                          f"use one of {human} here, and put {name!r} under `ai:`")]
    if not isinstance(params, Mapping):  # (an arm's own params are checked by pydantic)
        return issues if top else issues + [(f"{where}.params", f"params must be a mapping; got {params!r}")]
    allowed = scheme_parameters(name)
    listed = ", ".join(f"{k} (default {v!r})" for k, v in allowed.items()) or "none"
    for key, value in params.items():
        path = f"{where}.params.{key}"
        if key not in allowed:
            issues.append((path, f"scheme {name!r} has no parameter {key!r}; allowed: {listed}"))
        elif nested.get(key) is NestedScheme:
            issues += spec_issues(value, path, pool, top=False)
        elif nested.get(key) is SchemeParts:
            issues += _parts_issues(name, value, path, pool)
        else:
            try:
                check_parameters(name, {key: value})
            except (SchemeParameterError, UnknownSchemeError) as exc:
                issues.append((path, str(exc)))
    return issues


def _parts_issues(name: str, parts: Any, where: str, pool: Literal["human", "ai"]) -> list[tuple[str, str]]:
    if not isinstance(parts, list) or not parts:
        return [(where, f"expected a non-empty list of {{weight: W, scheme: {{name: ...}}}}; got {parts!r}")]
    issues: list[tuple[str, str]] = []
    weights: list[float] = []
    for i, part in enumerate(parts):
        at = f"{where}[{i}]"
        if not isinstance(part, Mapping) or set(part) != {"weight", "scheme"}:
            issues.append((at, f"each part has exactly the keys weight and scheme; got {part!r}"))
            continue
        try:
            weights.append(_number(name, "weight", part["weight"], low=0.0, high=1.0))
        except SchemeParameterError as exc:
            issues.append((f"{at}.weight", str(exc)))
        issues += spec_issues(part["scheme"], f"{at}.scheme", pool, top=False)
    if len(weights) == len(parts) and abs(sum(weights) - 1.0) > _WEIGHT_TOL:
        issues.append((where, f"the parts' weights sum to {sum(weights):.10g}; they must sum to 1"))
    return issues


def _describe(spec: Any) -> str:
    if not isinstance(spec, Mapping):
        return str(spec)
    name, params = spec.get("name", "?"), spec.get("params") or {}
    inner = describe_params(name, params) if isinstance(params, Mapping) and isinstance(name, str) else str(params)
    return f"{name} ({inner})" if inner else str(name)


def describe_params(name: str, params: Mapping[str, Any]) -> str:
    """A scheme's parameters in a line, nested schemes written as ``0.3 fixed_fee + 0.7 causal (negative shift)``.

    For reports and tables: ``describe_params("cap", {"max_share": 0.1, "scheme": {"name": "pro_rata"}})``
    is ``max_share 0.1, scheme pro_rata``.
    """
    nested = nested_parameters(name) if name in scheme_names() else {}
    out = []
    for key, value in params.items():
        if nested.get(key) is SchemeParts and isinstance(value, list):
            parts = " + ".join(
                f"{p.get('weight')} {_describe(p.get('scheme'))}" if isinstance(p, Mapping) else str(p) for p in value
            )
            out.append(f"{key} {parts}")
        elif nested.get(key) is NestedScheme:
            out.append(f"{key} {_describe(value)}")
        else:
            out.append(f"{key} {value}")
    return ", ".join(out)


# --------------------------------------------------------------------------- combinators


def _mix(s: Settlement, parts: list[tuple[float, str, dict[str, Any]]]) -> np.ndarray:
    paid = [(w, pay(n, s, **p)) for w, n, p in parts if w > 0]
    paid = [(w, x) for w, x in paid if x.sum() > 0]
    if not paid:
        return np.zeros(s.n_creators)
    total = sum(w for w, _ in paid)
    out = np.zeros(s.n_creators)
    for w, x in paid:
        out += (w / total) * x
    return out


@register_scheme("mix", pool="ai", basis="the bases of the schemes mixed, each on its weight of the pool")
def mix(
    s: Settlement,
    parts: SchemeParts = [  # noqa: B006 -- never mutated; a list so the reference can print it as YAML
        {"weight": 0.2, "scheme": {"name": "fixed_fee"}},
        {"weight": 0.8, "scheme": {"name": "causal"}},
    ],
) -> np.ndarray:
    """A weighted mix of any schemes: each pays its weight of the pool by its own rule.

    ``R_a = sum_i w_i * R_a^(i)``, ``R^(i)`` the payouts of part ``i``'s scheme on the whole pool and
    the weights ``w_i >= 0`` summing to 1. A part with no basis (it would pay nothing) or weight 0
    drops out and the others' weights are scaled up to cover its share, so a mix pays the whole pool
    whenever any part has a basis. Parts may be combinators themselves.

    Args:
        parts: the schemes mixed, each ``{weight: W, scheme: {name: NAME, params: {...}}}``; the
            weights are shares of the pool, each in [0, 1], summing to 1.
    """
    return _mix(s, _parts("mix", parts))


@register_scheme(
    "floor",
    pool="ai",
    basis="a minimum amount per eligible creator (or per work), the rest by the inner scheme's shares",
)
def floor(
    s: Settlement,
    scheme: NestedScheme = {"name": "causal"},  # noqa: B006 -- never mutated
    amount: float = 0.0,
    per: Literal["creator", "work"] = "creator",
) -> np.ndarray:
    """A minimum payment: no eligible creator gets less than ``amount`` (per creator or per work).

    With ``g_a`` the floor (``amount``, or ``amount`` times the creator's active works) and ``r_a``
    the inner scheme's shares, ``R_a = max(g_a, k * r_a)`` with ``k`` set so that the payouts add up
    to the pool: creators the inner scheme pays less than their floor are topped up, and the top-ups
    come out of everyone else's pay in proportion to it (found by iterating until no one else falls
    below their floor). When the floors add up to the pool or more (or the inner scheme has no
    basis), the pool is split in proportion to the floors; with no floor to pay (``amount`` 0, no
    works) it is exactly the inner scheme.

    Args:
        scheme: the scheme that splits the pool above the floors (any scheme, nested to any depth).
        amount: the minimum payment a month, in the fee currency (>= 0), per eligible creator or
            per active work (``per``).
        per: ``creator``: every eligible creator is owed ``amount``; ``work``: ``amount`` for each of
            their active works.
    """
    amount = _number("floor", "amount", amount, low=0.0)
    _choice("floor", "per", per, ("creator", "work"))
    name, params = _spec("floor", "scheme", scheme)
    inner = pay(name, s, **params)
    g = np.where(s.eligible, amount * (1.0 if per == "creator" else s.works), 0.0)
    owed = float(g.sum())
    if owed <= 0:
        return inner
    if owed >= s.pool or inner.sum() <= 0:
        return s.pool * g / owed
    r = inner / inner.sum()
    floored = np.zeros(s.n_creators, dtype=bool)
    while True:  # the floored set only grows, so this ends within n_creators rounds
        rest = r[~floored].sum()  # > 0 while the floors sum to less than the pool (bar rounding)
        if rest <= 0:
            return s.pool * g / owed
        k = (s.pool - g[floored].sum()) / rest
        below = ~floored & (k * r < g)
        if not below.any():
            return np.where(floored, g, k * r)
        floored |= below


@register_scheme(
    "cap",
    pool="ai",
    basis="the inner scheme's shares, each creator's capped at a share of the pool",
)
def cap(
    s: Settlement,
    scheme: NestedScheme = {"name": "causal"},  # noqa: B006 -- never mutated
    max_share: float = 0.1,
) -> np.ndarray:
    """A cap per creator: no one gets more than ``max_share`` of the pool; the excess goes to the rest.

    The inner scheme's payouts above ``max_share * P`` are taken off and re-spread over the uncapped
    creators in proportion to their inner payouts, repeatedly, until no one is above the cap
    (``R_a = min(cap, k * r_a)`` with ``k`` set so the payouts add up to the pool). Creators the inner
    scheme pays nothing stay at nothing. If fewer than ``1 / max_share`` creators have any inner pay,
    the cap cannot hold and the pool is split equally among them (the cap never leaves money unpaid).
    No basis when the inner scheme has none.

    Args:
        scheme: the scheme whose payouts are capped (any scheme, nested to any depth).
        max_share: the most one creator may get, as a share of the pool, in (0, 1]; 1 is no cap.
    """
    max_share = _number("cap", "max_share", max_share, low=0.0, high=1.0, low_open=True)
    name, params = _spec("cap", "scheme", scheme)
    inner = pay(name, s, **params)
    paid = inner > 0
    n_paid = int(paid.sum())
    if n_paid == 0:
        return inner
    if n_paid * max_share <= 1.0:
        return np.where(paid, s.pool / n_paid, 0.0)
    limit = max_share * s.pool
    r = inner / inner.sum()
    capped = np.zeros(s.n_creators, dtype=bool)
    while True:  # the capped set only grows and never holds every paid creator (n_paid * limit > pool)
        k = (s.pool - limit * capped.sum()) / r[~capped].sum()
        above = ~capped & (k * r > limit)
        if not above.any():
            return np.where(capped, limit, k * r)
        capped |= above


@register_scheme(
    "threshold",
    pool="human",
    basis="the inner scheme's basis, among creators with at least a number of human streams",
)
def threshold(
    s: Settlement,
    scheme: NestedScheme = {"name": "pro_rata"},  # noqa: B006 -- never mutated
    min_streams: float = 1000.0,
    per: Literal["year", "month"] = "year",
) -> np.ndarray:
    """A minimum-stream rule (Spotify, 2024): creators under the threshold earn nothing.

    A creator with fewer than ``min_streams`` human streams (``per: year``: fewer than
    ``min_streams / 12`` this month, since the pools are settled monthly; ``per: month``: fewer than
    ``min_streams`` this month) is not eligible; the inner scheme splits the whole pool among the
    rest, so their money is redistributed by its rule. Spotify applies its rule per track; the
    settlement counts streams per creator. No basis when no eligible creator reaches the threshold.

    Args:
        scheme: the scheme that splits the pool among the creators above the threshold (any scheme,
            nested to any depth).
        min_streams: the fewest human streams (>= 0) a creator needs, in the period ``per``.
        per: the period ``min_streams`` counts over: ``year`` (applied as its monthly equivalent,
            ``min_streams / 12`` this month) or ``month``.
    """
    min_streams = _number("threshold", "min_streams", min_streams, low=0.0)
    _choice("threshold", "per", per, ("year", "month"))
    name, params = _spec("threshold", "scheme", scheme)
    monthly = min_streams / 12.0 if per == "year" else min_streams
    return pay(name, s.derive(eligible=s.eligible & (s.creator_streams >= monthly)), **params)


@register_scheme(
    "eligibility",
    pool="human",
    basis="the inner scheme's basis, among the creators who meet a condition",
)
def eligibility(
    s: Settlement,
    scheme: NestedScheme = {"name": "pro_rata"},  # noqa: B006 -- never mutated
    require: Literal["training_set", "works"] = "training_set",
) -> np.ndarray:
    """Eligibility: only creators who meet a condition are paid, by the inner scheme.

    ``training_set``: creators with works in the AI's training set, i.e. opted in (an opted-out
    creator has none there), e.g. to pay streaming money only to creators who license the AI;
    ``works``: creators with at least one active work. Both pools already pay only active creators
    and the AI pool only opted-in ones (see the two pools); this narrows either further. No basis
    when no eligible creator meets the condition.

    Args:
        scheme: the scheme that splits the pool among the creators who qualify (any scheme, nested
            to any depth).
        require: who qualifies: ``training_set`` (has works in the AI's training set: opted in) or
            ``works`` (has at least one active work).
    """
    _choice("eligibility", "require", require, ("training_set", "works"))
    name, params = _spec("eligibility", "scheme", scheme)
    qualifies = s.training_works > 0 if require == "training_set" else s.works > 0
    return pay(name, s.derive(eligible=s.eligible & qualifies), **params)


@register_scheme(
    "hybrid",
    pool="ai",
    basis="a floor split equally or by the training set, the rest by plays and causal attribution",
)
def hybrid(
    s: Settlement,
    floor: float = 0.2,
    floor_basis: Literal["equal", "works", "seconds"] = "equal",
    negative: Literal["clip", "shift", "abs"] = "clip",
) -> np.ndarray:
    """A guaranteed floor plus attribution: ``floor * P`` as a flat licence, the rest causal.

    ``R_a = P * (floor * f_a + (1 - floor) * c_a)``, with ``f`` equal shares of eligible creators
    (``floor_basis="equal"``) or their training share (``"works"`` / ``"seconds"``) and ``c`` the
    :func:`causal` shares (``negative`` as there). If one part has no basis, the whole pool is paid
    on the other; no basis only when neither has one. It is the ``mix`` of ``fixed_fee`` (or
    ``training_share``) at weight ``floor`` and ``causal`` at ``1 - floor``, and pays exactly what
    that mix pays.

    Args:
        floor: the share of the pool paid as the floor, in [0, 1]. 0 is exactly ``causal``, 1 exactly
            the floor alone (``fixed_fee`` or ``training_share``).
        floor_basis: how the floor is split among eligible creators. ``equal``: the same amount each,
            as ``fixed_fee``; ``works``: in proportion to the works each has in the AI's training set,
            as ``training_share`` with ``basis: works``; ``seconds``: in proportion to the seconds of
            music each has in the training set, as ``training_share`` with ``basis: seconds`` (a long
            work counts more than a short one).
        negative: negative attribution scores in the causal part, as in ``causal``: ``clip``,
            ``shift`` or ``abs``.
    """
    floor = _number("hybrid", "floor", floor, low=0.0, high=1.0)
    _choice("hybrid", "floor_basis", floor_basis, ("equal", "works", "seconds"))
    _choice("hybrid", "negative", negative, ("clip", "shift", "abs"))
    return mix(s, parts=hybrid_parts(floor, floor_basis, negative))


def hybrid_parts(floor: float, floor_basis: str = "equal", negative: str = "clip") -> list[dict[str, Any]]:
    """The ``mix`` parts that ``hybrid(floor, floor_basis, negative)`` is."""
    floor_scheme: dict[str, Any] = {"name": "fixed_fee"}
    if floor_basis != "equal":
        floor_scheme = {"name": "training_share", "params": {"basis": floor_basis}}
    return [
        {"weight": floor, "scheme": floor_scheme},
        {"weight": 1.0 - floor, "scheme": {"name": "causal", "params": {"negative": negative}}},
    ]
