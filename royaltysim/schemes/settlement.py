"""The settlement: everything a royalty scheme may look at in one month.

:class:`Settlement` holds the month's pool, human streams, what each user paid, catalogue and
training-set sizes, plays of AI outputs, their causal attribution and similarity to each catalogue,
and who is eligible; it validates and normalises them once, on construction (or, for what changes, in
:meth:`Settlement.derive`). :class:`SettlementError` is raised for inputs of the wrong shape, type or
values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["Settlement", "SettlementError"]


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
