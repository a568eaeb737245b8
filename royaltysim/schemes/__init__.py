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

Schemes in this package: ``pro_rata``, ``user_centric``, ``artist_centric`` (streaming pools);
``training_share``, ``similarity``, ``causal``, ``fixed_fee`` (AI pools). Schemes built from other
schemes -- ``mix``, ``floor``, ``cap``, ``threshold``, ``eligibility`` and ``hybrid`` (a mix) -- are in
:mod:`royaltysim.combinators`; their nested schemes are parameters typed :class:`NestedScheme` or
:class:`SchemeParts`.
The Shapley rules (``shapley_royalty_share`` for the AI pool, ``shapley_streaming`` for the human
pool) are in :mod:`royaltysim.shapley`, and attribution with a usage fallback (``causal_fallback``, STIM's
licence) in :mod:`royaltysim.fallback`.

The package's modules, each re-exported here:

* :mod:`~royaltysim.schemes.settlement` -- :class:`Settlement` and :class:`SettlementError`;
* :mod:`~royaltysim.schemes.registry` -- the registry (:func:`register_scheme`, :func:`get_scheme`,
  :data:`SCHEMES`, ...), :func:`pay` with its contract checks, and the scheme reference
  (:func:`scheme_info`);
* :mod:`~royaltysim.schemes.builtin` -- the built-in schemes above and their building blocks.
"""

from __future__ import annotations

from typing import Any

from royaltysim.schemes.registry import (
    SCHEMES,
    NestedScheme,
    Scheme,
    SchemeInfo,
    SchemeOutputError,
    SchemeParam,
    SchemeParameterError,
    SchemeParts,
    UnknownSchemeError,
    check_parameters,
    get_scheme,
    pay,
    register_scheme,
    scheme_info,
    scheme_names,
    scheme_parameters,
)
from royaltysim.schemes.settlement import Settlement, SettlementError

# importing the built-in schemes registers them, in the order they are defined there
from royaltysim.schemes.builtin import (
    artist_centric,
    causal,
    fixed_fee,
    pro_rata,
    similarity,
    training_share,
    user_centric,
)

# private names other modules import from here: the building blocks of the schemes in royaltysim.combinators,
# royaltysim.fallback and royaltysim.shapley, and the docstring parsing tests/royaltysim/test_docs.py checks
from royaltysim.schemes.builtin import _choice, _number, _shares  # noqa: F401
from royaltysim.schemes.registry import _allowed, _docstring_parts  # noqa: F401

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
