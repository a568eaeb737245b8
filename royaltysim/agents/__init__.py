"""The economy's actors: creators (Mesa agents), the platform (a Mesa agent) and listeners (vectorised).

* :class:`Creator` (:mod:`~royaltysim.agents.creator`) -- one catalogue of works (quality per work, a
  style vector), a cost of making work, an outside option and an enjoyment of making music. Each month
  it reads its royalty statement, updates an adaptive expectation of income and decides: stay or exit
  (or re-enter), how many works to release, which strategy to play (``plain``, ``flood``, ``imitate``
  or both, learnt from what each strategy earned the creators who played it), and whether to opt in to
  AI training.
* :class:`Platform` (:mod:`~royaltysim.agents.platform`) -- collects fees, keeps its cut, and settles a
  human-streams pool and an AI royalty pool with the scheme of each pool (looked up by name in
  :mod:`royaltysim.schemes`; the platform never branches on a scheme's name).
* :class:`Consumers` (:mod:`~royaltysim.agents.consumers`) -- **all listeners in one object of numpy
  arrays**, not one Python object each; a month's randomness is drawn up front as
  :class:`ListeningDraws`, which the per-agent reference (:mod:`royaltysim.reference`, one Mesa agent
  per listener) consumes too, so the two can be compared draw for draw. Why listeners are vectorised,
  and how their hot path stays fast and draw-for-draw equal to the reference, is told there; the
  table-guided inverse-CDF sampler of their choices is in :mod:`~royaltysim.agents.sampling`.
"""

from __future__ import annotations

from royaltysim.agents.consumers import Consumers, Listening, ListeningDraws
from royaltysim.agents.creator import STRATEGIES, Creator
from royaltysim.agents.platform import Catalogue, Platform, Statement
from royaltysim.agents.sampling import cumulative_probabilities

# private helpers of the listeners' hot path, imported from here by tests/royaltysim/test_agents.py and test_model.py
from royaltysim.agents.consumers import _column_sums, _row_sums  # noqa: F401
from royaltysim.agents.sampling import _guide, _sample_grouped  # noqa: F401

__all__ = [
    "Consumers",
    "Listening",
    "ListeningDraws",
    "Catalogue",
    "Statement",
    "Platform",
    "Creator",
    "STRATEGIES",
    "cumulative_probabilities",
]
