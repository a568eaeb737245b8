"""Royalty schemes: rules that split one month's pool of money among creators.

A :class:`Settlement` is everything a rule may look at in one month (the pool, human streams, what each
user paid, catalogue and training-set sizes, plays of AI outputs, their causal attribution and
similarity to each catalogue, and who is eligible). A *scheme* is a small pure function::

    scheme(s: Settlement, **params) -> np.ndarray   # shape (s.n_creators,)

registered by name with :func:`register_scheme`. The platform only ever calls :func:`pay` with the
name read from a scenario, so adding a scheme is one new function here and one test.

Contract of every scheme:

* payouts are non-negative and zero for every creator whose ``eligible`` flag is False;
* they sum to ``s.pool`` (to float rounding) whenever the scheme has a *basis* to pay on;
* when it has none -- no eligible creator, no (eligible) streams, no AI plays, all-zero
  weights -- it returns all zeros, and the caller keeps the whole pool as "unallocated".
  A scheme never pays part of the pool: money it cannot place on one basis is re-spread
  on the basis it has (each scheme's docstring says how).

Schemes in this module: ``pro_rata``, ``user_centric``, ``artist_centric`` (streaming pools);
``training_share``, ``similarity``, ``causal``, ``fixed_fee`` (AI pools). Schemes built from other
schemes -- ``mix``, ``floor``, ``cap``, ``threshold``, ``eligibility`` and ``hybrid`` (a mix) -- are in
:mod:`royaltysim.combinators`; their nested schemes are parameters typed :class:`NestedScheme` or
:class:`SchemeParts`.
The Shapley rules (``shapley_royalty_share`` for the AI pool, ``shapley_streaming`` for the human
pool) are in :mod:`royaltysim.shapley`, and attribution with a usage fallback (``causal_fallback``, STIM's
licence) in :mod:`royaltysim.fallback`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType, NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import numpy as np
import scipy.sparse as sp

from attribution.table import apply_negative_policy

__all__ = [
    "Settlement",
    "SettlementError",
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
    "pro_rata",
    "user_centric",
    "artist_centric",
    "training_share",
    "similarity",
    "causal",
    "fixed_fee",
    "hybrid",
    "NestedScheme",
    "SchemeParts",
]

Scheme = Callable[..., np.ndarray]


class NestedScheme(dict):
    """Type of a scheme parameter that is itself a scheme: ``{name: NAME, params: {...}}`` in a scenario."""


class SchemeParts(list):
    """Type of a scheme parameter that is a weighted list of schemes: ``[{weight: W, scheme: {name: ...}}, ...]``."""


# --------------------------------------------------------------------------- settlement


class SettlementError(ValueError):
    """A settlement's inputs have the wrong shape, type or values."""


def _as_vector(name: str, value: Any, n: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.shape != (n,):
        raise SettlementError(f"Settlement.{name} has shape {arr.shape}; expected ({n},) = ({what},)")
    if not np.isfinite(arr).all():
        bad = float(arr[~np.isfinite(arr)][0])
        raise SettlementError(f"Settlement.{name} must be finite; found {bad}")
    return arr


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    """``np.isclose(a, b, rtol, atol)`` for two numbers, without the cost of an array call."""
    return bool(abs(a - b) <= atol + rtol * abs(b))


def _require_non_negative(name: str, arr: np.ndarray) -> None:
    if arr.size and arr.min() < 0:
        idx = np.unravel_index(int(np.argmin(arr)), arr.shape)
        raise SettlementError(
            f"Settlement.{name} must be >= 0; found {float(arr[idx])} at index {tuple(int(i) for i in idx)}"
        )


@dataclass(frozen=True, eq=False)
class Settlement:
    """What a scheme sees in one month. Creator arrays are indexed 0..n_creators-1.

    Build one with :meth:`build`, which fills sensible defaults for whatever a scheme does not need.
    ``__post_init__`` validates shapes and values and normalises types (float arrays, a canonical
    ``csr_matrix`` for streams, a bool mask for ``eligible``); it never densifies ``streams``.
    ``s.derive(pool=..., user_pool=..., eligible=...)`` derives another pool's settlement, checking
    only what changes (``dataclasses.replace`` does the same but checks every field again); change
    ``user_pool`` together with ``pool``. Settlements compare by identity (``eq=False``):
    element-wise equality of arrays is not a bool.

    Attributes:
        pool: money this scheme must pay out (>= 0).
        streams: (n_users, n_creators) human streams this month.
        user_pool: (n_users,) each user's contribution to ``pool`` (user-centric); sums to ``pool``.
        works: (n_creators,) active works per catalogue.
        training_works: (n_creators,) works in the AI training set (0 when opted out).
        training_seconds: (n_creators,) seconds of music in the AI training set.
        ai_plays: (n_outputs,) plays of each AI output this month (revenue weight).
        attribution: (n_outputs, n_creators) causal (TDA) scores aggregated to creators; may be negative.
        similarity: (n_outputs, n_creators) similarity of each output to each catalogue (>= 0).
        eligible: (n_creators,) bool: who may be paid from this pool.
        reference: (n_outputs, n_creators) each creator's true contribution to each output (>= 0): the
            retraining ground truth's shares where the run has one, else the causal method's shares (see
            :func:`royaltysim.population.corpus_population`); zeros when left out. What Shapley Royalty
            Share (:mod:`royaltysim.shapley`) values the AI's utility on.
    """

    pool: float
    streams: sp.csr_matrix
    user_pool: np.ndarray
    works: np.ndarray
    training_works: np.ndarray
    training_seconds: np.ndarray
    ai_plays: np.ndarray
    attribution: np.ndarray
    similarity: np.ndarray
    eligible: np.ndarray
    reference: np.ndarray | None = None
    _listeners: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._check(_SETTLEMENT_FIELDS)

    def derive(self, **changes: Any) -> Settlement:
        """This settlement with ``changes``, checking only what changes.

        The same settlement as ``dataclasses.replace(self, **changes)``, for less: the fields left as
        they are were checked when this one was built and are shared, not checked again; the changed
        ones are checked as a new settlement's are, and against the rest (shapes, ``user_pool``
        summing to ``pool``). New ``streams`` or ``ai_plays`` may change the sizes, so with either
        everything is checked.
        """
        unknown = sorted(set(changes) - set(_SETTLEMENT_FIELDS))
        if unknown:
            raise TypeError(f"Settlement has no field(s) {unknown}; fields: {list(_SETTLEMENT_FIELDS)}")
        derived = object.__new__(Settlement)
        derived.__dict__.update(self.__dict__)
        derived.__dict__.update(changes)
        if "streams" in changes:
            derived.__dict__["_listeners"] = None
        derived._check(frozenset(changes))
        return derived

    def _check(self, names: frozenset[str]) -> None:
        """Validate and normalise the fields in ``names``; the others are taken as already checked."""
        set_ = object.__setattr__  # frozen: normalise once, here, then never again
        if not names.isdisjoint(("streams", "ai_plays")):
            names = _SETTLEMENT_FIELDS  # the sizes every other field is checked against may change

        if "pool" in names:
            try:
                pool = float(self.pool)
            except (TypeError, ValueError):
                pool = float("nan")
            if not np.isfinite(pool) or pool < 0:
                raise SettlementError(f"Settlement.pool must be a finite number >= 0; got {self.pool!r}")
            set_(self, "pool", pool)

        if "streams" in names:
            streams = self.streams
            if sp.issparse(streams):
                # a csr_matrix is kept as is (re-wrapping it would forget that its format is canonical)
                streams = streams if type(streams) is sp.csr_matrix else sp.csr_matrix(streams)
            else:
                dense = np.asarray(streams, dtype=float)
                if dense.ndim != 2:
                    raise SettlementError(
                        f"Settlement.streams has shape {dense.shape}; expected (n_users, n_creators)"
                    )
                streams = sp.csr_matrix(dense)
            if streams.dtype != np.float64:
                if not np.issubdtype(streams.dtype, np.number) or np.issubdtype(streams.dtype, np.complexfloating):
                    raise SettlementError(f"Settlement.streams must hold real numbers; got dtype {streams.dtype}")
                streams = streams.astype(np.float64)
            if not streams.has_canonical_format:
                streams = streams.copy()
                streams.sum_duplicates()
            if streams.nnz:
                if not np.isfinite(streams.data).all():
                    raise SettlementError("Settlement.streams must be finite")
                if streams.data.min() < 0:
                    raise SettlementError(f"Settlement.streams must be >= 0; found {float(streams.data.min())}")
            set_(self, "streams", streams)
        n_users, n_creators = self.streams.shape

        for name in ("works", "training_works", "training_seconds"):
            if name in names:
                set_(self, name, _as_vector(name, getattr(self, name), n_creators, "n_creators"))
        if "user_pool" in names:
            set_(self, "user_pool", _as_vector("user_pool", self.user_pool, n_users, "n_users"))
        if "ai_plays" in names:
            ai_plays = np.asarray(self.ai_plays, dtype=float)
            if ai_plays.ndim != 1:
                raise SettlementError(f"Settlement.ai_plays has shape {ai_plays.shape}; expected (n_outputs,)")
            set_(self, "ai_plays", _as_vector("ai_plays", ai_plays, ai_plays.shape[0], "n_outputs"))
        n_outputs = self.ai_plays.shape[0]

        if "reference" in names and self.reference is None:
            set_(self, "reference", np.zeros((n_outputs, n_creators)))
        for name in ("attribution", "similarity", "reference"):
            if name not in names:
                continue
            arr = np.asarray(getattr(self, name), dtype=float)
            if arr.shape != (n_outputs, n_creators):
                raise SettlementError(
                    f"Settlement.{name} has shape {arr.shape}; expected ({n_outputs}, {n_creators}) "
                    "= (n_outputs, n_creators)"
                )
            if not np.isfinite(arr).all():
                raise SettlementError(f"Settlement.{name} must be finite")
            set_(self, name, arr)

        if "eligible" in names:
            eligible = np.asarray(self.eligible)
            if eligible.shape != (n_creators,):
                raise SettlementError(
                    f"Settlement.eligible has shape {eligible.shape}; expected ({n_creators},) = (n_creators,)"
                )
            if eligible.dtype != bool:
                if eligible.size and not np.all(np.isin(eligible, (0, 1))):
                    raise SettlementError(
                        "Settlement.eligible must be a bool mask (or 0/1); "
                        f"found values {np.unique(eligible)[:5].tolist()}"
                    )
                eligible = eligible.astype(bool)
            set_(self, "eligible", eligible)

        for name in ("works", "training_works", "training_seconds", "user_pool", "ai_plays", "similarity", "reference"):
            if name in names:
                _require_non_negative(name, getattr(self, name))
        if n_users and not names.isdisjoint(("pool", "user_pool")):
            if not _close(float(self.user_pool.sum()), self.pool, rtol=1e-9, atol=1e-9):
                raise SettlementError(
                    f"Settlement.user_pool sums to {float(self.user_pool.sum())!r} but pool is {self.pool!r}; "
                    "each user's contribution must add up to the pool (leave user_pool out to split the pool "
                    "equally)"
                )

    # ---------------------------------------------------------------- sizes
    @property
    def n_creators(self) -> int:
        return int(self.streams.shape[1])

    @property
    def n_users(self) -> int:
        return int(self.streams.shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.ai_plays.shape[0])

    # ---------------------------------------------------- derived, cached
    @property
    def creator_streams(self) -> np.ndarray:
        """(n_creators,) total human streams of each creator this month."""
        s = self.streams  # as s.sum(axis=0) adds them (in storage order), without its matrix product
        return np.bincount(s.indices, weights=s.data, minlength=s.shape[1]).astype(float)

    @property
    def listeners(self) -> np.ndarray:
        """(n_creators,) distinct users who streamed each creator at least once this month."""
        if self._listeners is None:
            s = self.streams
            counts = np.bincount(s.indices[s.data > 0], minlength=self.n_creators)
            object.__setattr__(self, "_listeners", counts)
        return self._listeners

    # --------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        pool: float = 0.0,
        *,
        n_creators: int | None = None,
        n_users: int | None = None,
        n_outputs: int | None = None,
        streams: sp.spmatrix | sp.sparray | np.ndarray | None = None,
        user_pool: np.ndarray | None = None,
        works: np.ndarray | None = None,
        training_works: np.ndarray | None = None,
        training_seconds: np.ndarray | None = None,
        ai_plays: np.ndarray | None = None,
        attribution: np.ndarray | None = None,
        similarity: np.ndarray | None = None,
        eligible: np.ndarray | None = None,
        reference: np.ndarray | None = None,
    ) -> Settlement:
        """A settlement with defaults for what is left out.

        Sizes are inferred from the arrays given (or taken from ``n_*``). Defaults: no streams,
        ``user_pool`` an equal split of ``pool`` over users, zero works / training works / training
        seconds, ``ai_plays`` one play per output (every output weighs the same), zero attribution,
        similarity and reference, every creator eligible. ``streams`` may be any scipy sparse matrix or a dense array.
        """

        def first(*candidates: int | None) -> int | None:
            return next((c for c in candidates if c is not None), None)

        def length(a: Any, axis: int = 0) -> int | None:
            return None if a is None else int(np.shape(a)[axis])

        n_creators = first(
            n_creators,
            length(streams, 1),
            length(works),
            length(training_works),
            length(training_seconds),
            length(eligible),
            length(attribution, 1),
            length(similarity, 1),
            length(reference, 1),
        )
        if n_creators is None:
            raise SettlementError(
                "Settlement.build cannot tell how many creators there are: pass n_creators or a "
                "creator-indexed array (works, eligible, streams, ...)"
            )
        n_users = first(n_users, length(streams, 0), length(user_pool), 0)
        n_outputs = first(
            n_outputs, length(ai_plays), length(attribution, 0), length(similarity, 0), length(reference, 0), 0
        )
        assert n_users is not None and n_outputs is not None

        if streams is None:
            streams = sp.csr_matrix((n_users, n_creators), dtype=float)
        if user_pool is None:
            user_pool = np.full(n_users, float(pool) / n_users) if n_users else np.zeros(0)
        zeros_c = np.zeros(n_creators)
        return cls(
            pool=pool,
            streams=streams,
            user_pool=user_pool,
            works=zeros_c if works is None else works,
            training_works=zeros_c if training_works is None else training_works,
            training_seconds=zeros_c if training_seconds is None else training_seconds,
            ai_plays=np.ones(n_outputs) if ai_plays is None else ai_plays,
            attribution=np.zeros((n_outputs, n_creators)) if attribution is None else attribution,
            similarity=np.zeros((n_outputs, n_creators)) if similarity is None else similarity,
            eligible=np.ones(n_creators, dtype=bool) if eligible is None else eligible,
            reference=reference,
        )


_SETTLEMENT_FIELDS = frozenset(f.name for f in fields(Settlement) if f.init)


# --------------------------------------------------------------------------- registry


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
    """Payouts of scheme ``name`` on settlement ``s``: shape (n_creators,), see the module contract."""
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


# --------------------------------------------------------------------------- building blocks


def _choice(scheme: str, param: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise SchemeParameterError(
            f"scheme {scheme!r}: {param}={value!r} is not allowed; choose one of {list(options)}"
        )


def _number(
    scheme: str,
    param: str,
    value: Any,
    *,
    low: float,
    high: float = np.inf,
    low_open: bool = False,
    integer: bool = False,
) -> float:
    """A finite number parameter within [low, high] ((low, high] if ``low_open``), as float."""
    ok_type = isinstance(value, (int, float, np.integer, np.floating))
    if integer and ok_type and not isinstance(value, (int, np.integer)):
        ok_type = bool(np.isfinite(value)) and float(value).is_integer()  # 500.0 from a YAML file is fine
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise SchemeParameterError(f"scheme {scheme!r}: {param} must be {kind}; got {value!r}")
    v = float(value)
    below = v <= low if low_open else v < low
    if not np.isfinite(v) or below or v > high:
        lo = "(" if low_open else "["
        hi = f"{high}]" if np.isfinite(high) else "inf)"
        raise SchemeParameterError(
            f"scheme {scheme!r}: {param}={value!r} is out of range; expected a value in {lo}{low}, {hi}"
        )
    return v


def _shares(weights: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Non-negative weights of eligible creators normalised to sum to 1; all zeros if none is positive."""
    w = np.where(eligible, np.maximum(weights, 0.0), 0.0)
    total = w.sum()
    return w / total if total > 0 else np.zeros_like(w)


def _output_mix(plays: np.ndarray, per_output: np.ndarray) -> np.ndarray:
    """Creator shares of AI revenue: plays-weighted mix of per-output shares.

    ``per_output`` is (n_outputs, n_creators) with rows summing to 1, or all-zero for outputs
    that credit nobody. Those outputs' revenue is re-spread over the crediting outputs in
    proportion to their plays, so the result sums to 1 unless no played output credits anyone.
    """
    credited = per_output.sum(axis=1) > 0
    w = np.where(credited, plays, 0.0)
    total = w.sum()
    if total <= 0:
        return np.zeros(per_output.shape[1])
    return (w / total) @ per_output


def _fixed_fee_shares(s: Settlement) -> np.ndarray:
    return _shares(np.ones(s.n_creators), s.eligible)


def _training_shares(s: Settlement, basis: str) -> np.ndarray:
    return _shares(s.training_works if basis == "works" else s.training_seconds, s.eligible)


def _causal_shares(s: Settlement, negative: str) -> np.ndarray:
    out = np.zeros(s.n_creators)
    if s.n_outputs == 0 or not s.eligible.any():
        return out
    phi = apply_negative_policy(s.attribution[:, s.eligible], negative, axis=1)  # (n_outputs, n_eligible)
    totals = phi.sum(axis=1, keepdims=True)
    per_output = np.divide(phi, totals, out=np.zeros_like(phi), where=totals > 0)
    out[s.eligible] = _output_mix(s.ai_plays, per_output)
    return out


# --------------------------------------------------------------------------- streaming schemes


@register_scheme("pro_rata", pool="human", basis="each creator's human streams this month")
def pro_rata(s: Settlement) -> np.ndarray:
    """Pro-rata (market-centric): the rule most streaming services use today.

    All streams go into one count and each creator gets their share of it:
    ``R_a = P * S_a / T`` with ``S_a = sum_u s_ua`` and ``T`` the streams of eligible creators.
    No basis (all zeros) when eligible creators have no streams.
    """
    return s.pool * _shares(s.creator_streams, s.eligible)


@register_scheme(
    "user_centric", pool="human", basis="each user's contribution to the pool and that user's human streams"
)
def user_centric(s: Settlement) -> np.ndarray:
    """User-centric (SoundCloud "fan-powered"): each user's money follows only their own listening.

    ``R_a = sum_u P_u * s_ua / t_u`` with ``P_u = user_pool[u]`` and ``t_u`` the user's streams of
    eligible creators. Money of users with no eligible streams (silent subscribers, or who only played
    ineligible creators) has no listening to follow; it is re-spread pro rata over all eligible
    streams, as services that pilot user-centric do with inactive accounts. No basis when eligible
    creators have no streams.
    """
    out = np.zeros(s.n_creators)
    if s.pool == 0 or s.n_users == 0:
        return out
    mask = s.eligible.astype(float)
    t_u = np.asarray(s.streams @ mask).ravel()  # (n_users,) eligible streams per user
    if not np.any(t_u > 0):
        return out
    per_stream = np.divide(s.user_pool, t_u, out=np.zeros_like(t_u), where=t_u > 0)  # (n_users,)
    out = np.asarray(s.streams.T @ per_stream).ravel() * mask
    leftover = max(s.pool - out.sum(), 0.0)
    return out + leftover * _shares(s.creator_streams, s.eligible)


@register_scheme(
    "artist_centric",
    pool="human",
    basis="human streams, capped per user and boosted for creators with enough streams and listeners",
)
def artist_centric(
    s: Settlement,
    user_cap: float | None = 1000.0,
    boost: float = 2.0,
    boost_min_streams: float = 1000.0,
    boost_min_listeners: int = 500,
) -> np.ndarray:
    """Artist-centric (Deezer and UMG, 2023): pro rata on weighted streams.

    1. Cap: a user with ``t_u > user_cap`` streams this month (all creators) has their row scaled by
       ``user_cap / t_u``, so heavy (or fraudulent) listeners weigh at most ``user_cap`` streams.
       ``user_cap=None`` disables the cap.
    2. Boost: streams of a creator with at least ``boost_min_streams`` (uncapped) monthly streams
       from at least ``boost_min_listeners`` distinct listeners are multiplied by ``boost``.
    3. ``R_a = P * W_a / sum_b W_b`` over eligible creators, ``W_a`` the capped, boosted streams.

    Deezer's thresholds are 1,000 streams/user, 1,000 streams and 500 listeners; simulations at
    smaller scale should scale them down. No basis when eligible creators have no streams.

    Args:
        user_cap: most streams a month one user's listening counts for (> 0); a user who streamed
            more has every stream scaled down so that they count ``user_cap`` in all. ``None``
            (``null`` in a scenario): no cap.
        boost: multiplier on the streams of a creator who qualifies (> 0; 1 = no boost).
        boost_min_streams: human streams this month (before the cap, from all users) a creator needs
            to qualify for the boost (>= 0).
        boost_min_listeners: distinct listeners this month a creator needs to qualify for the boost
            (an integer >= 0).
    """
    if user_cap is not None:
        user_cap = _number("artist_centric", "user_cap", user_cap, low=0.0, low_open=True)
    boost = _number("artist_centric", "boost", boost, low=0.0, low_open=True)
    boost_min_streams = _number("artist_centric", "boost_min_streams", boost_min_streams, low=0.0)
    boost_min_listeners = int(
        _number("artist_centric", "boost_min_listeners", boost_min_listeners, low=0.0, integer=True)
    )
    raw = s.creator_streams
    if user_cap is None:
        capped = raw
    else:
        t_u = np.asarray(s.streams.sum(axis=1), dtype=float).ravel()
        scale = np.minimum(1.0, np.divide(user_cap, t_u, out=np.ones_like(t_u), where=t_u > 0))
        capped = np.asarray(s.streams.T @ scale).ravel()
    qualifies = (raw >= boost_min_streams) & (s.listeners >= boost_min_listeners)
    weighted = capped * np.where(qualifies, boost, 1.0)
    return s.pool * _shares(weighted, s.eligible)


# --------------------------------------------------------------------------- AI schemes


@register_scheme(
    "training_share", pool="ai", basis="what each creator has in the AI's training set (works or seconds of music)"
)
def training_share(s: Settlement, basis: Literal["works", "seconds"] = "works") -> np.ndarray:
    """Flat licence split by contribution to the training set (today's dataset licences).

    ``R_a = P * x_a / sum_b x_b`` over eligible creators, ``x`` the training works
    (``basis="works"``) or seconds of training music (``basis="seconds"``). Ignores what the model
    actually generates. No basis when eligible creators contributed nothing.

    Args:
        basis: what counts as a creator's contribution to the training set. ``works``: the number
            of works they have in it, so every work counts the same; ``seconds``: the seconds of
            music they have in it, so a long work counts more than a short one. An opted-out
            creator has nothing in the set.
    """
    _choice("training_share", "basis", basis, ("works", "seconds"))
    return s.pool * _training_shares(s, basis)


@register_scheme(
    "similarity",
    pool="ai",
    basis="plays of each AI output and its similarity to each catalogue (`source.similarity_method`)",
)
def similarity(
    s: Settlement,
    top_k: int = 1,
    threshold: float = 0.0,
    split: Literal["proportional", "equal"] = "proportional",
) -> np.ndarray:
    """Similarity "legal proxy" (Content-ID style matching of outputs to catalogues).

    Each output ``o`` earns ``w_o = ai_plays_o / sum(ai_plays)`` of the pool. Its *matches* are
    the eligible creators among its ``top_k`` most similar catalogues (all creators tied with the
    k-th are included, so relabelling creators never changes the result) whose similarity is
    positive and ``>= threshold``. Among its matches the output's revenue is split in proportion to
    similarity (``split="proportional"``) or equally (``"equal"``). An opted-out top match is not
    replaced by the next eligible one: the output simply matches fewer creators.

    Outputs with no match (nothing similar enough) have no claimant; their revenue is re-spread
    over matched outputs in proportion to plays. No basis when no played output matches anyone.

    Args:
        top_k: how many of an output's most similar catalogues it may match (an integer >= 1;
            every creator tied with the k-th matches too).
        threshold: the least similarity that counts as a match (>= 0); 0 lets any positive
            similarity match.
        split: how an output's revenue is divided among its matches: ``proportional`` to their
            similarity, or ``equal`` shares.
    """
    top_k = int(_number("similarity", "top_k", top_k, low=1.0, integer=True))
    threshold = _number("similarity", "threshold", threshold, low=0.0)
    _choice("similarity", "split", split, ("proportional", "equal"))
    sim = s.similarity  # (n_outputs, n_creators)
    if s.n_outputs == 0 or s.n_creators == 0:
        return np.zeros(s.n_creators)
    k = min(top_k, s.n_creators)
    kth = -np.partition(-sim, k - 1, axis=1)[:, k - 1 : k]  # (n_outputs, 1) k-th largest similarity
    matched = (sim >= kth) & (sim >= threshold) & (sim > 0) & s.eligible[None, :]
    weights = np.where(matched, sim if split == "proportional" else 1.0, 0.0)
    totals = weights.sum(axis=1, keepdims=True)
    per_output = np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)
    return s.pool * _output_mix(s.ai_plays, per_output)


@register_scheme(
    "causal",
    pool="ai",
    basis=(
        "plays of each AI output and its causal attribution to each catalogue (`source.causal_method`; "
        "with `source.attribution_snr`, the true contribution plus noise)"
    ),
)
def causal(s: Settlement, negative: Literal["clip", "shift", "abs"] = "clip") -> np.ndarray:
    """Attribution-based royalties: pay each creator their causal share of each output.

    ``R_a = P * sum_o w_o * phi_a(o) / sum_b phi_b(o)``, ``w_o = ai_plays_o / sum(ai_plays)`` and
    ``phi`` the training-data attribution aggregated to creators. Ineligible creators' scores are
    dropped first (an opted-out creator's influence is not paid to anyone), then negative scores are
    treated by ``negative`` (see :func:`attribution.table.apply_negative_policy`: ``clip`` to zero,
    ``shift`` so the least helpful eligible creator gets zero, ``abs`` for magnitude).

    Outputs whose eligible attribution is all zero credit nobody; their revenue is re-spread over
    credited outputs in proportion to plays. No basis when no played output credits anyone.

    Args:
        negative: what a negative score (a catalogue that made the output *less* likely) is worth,
            applied per output to the eligible creators' totals. ``clip``: nothing; ``shift``:
            subtract the output's lowest eligible score, so the least helpful eligible creator gets
            zero and everyone else is paid their advantage over them; ``abs``: its magnitude, as if
            it had helped.
    """
    _choice("causal", "negative", negative, ("clip", "shift", "abs"))
    return s.pool * _causal_shares(s, negative)


@register_scheme("fixed_fee", pool="ai", basis="nothing but who is eligible")
def fixed_fee(s: Settlement) -> np.ndarray:
    """Flat licence: every eligible creator gets the same amount, ``R_a = P / n_eligible``.

    No basis when nobody is eligible.
    """
    return s.pool * _fixed_fee_shares(s)


# the combinators (mix, floor, cap, threshold, eligibility) and hybrid, a mix, register themselves on import;
# imported last because they build on everything above
from royaltysim import combinators as _combinators  # noqa: E402,F401
from royaltysim import fallback as _fallback  # noqa: E402,F401  (causal_fallback)
from royaltysim import shapley as _shapley  # noqa: E402,F401  (shapley_royalty_share, shapley_streaming)


def __getattr__(name: str) -> Any:
    # hybrid is a mix now and lives with the combinators; `royaltysim.schemes.hybrid` still finds it
    if name == "hybrid":
        return _combinators.hybrid
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
