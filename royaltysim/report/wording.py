"""How the report writes numbers: levels, paired differences and their intervals, shares and seed spans.

Private helpers of the report's tables (:mod:`~royaltysim.report.tables`) and sentences
(:mod:`~royaltysim.report.narrative`): a level with its 95% interval, a paired difference with enough
decimals to show it and its interval, a share in percent, and the seeds a run covers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from royaltysim.measures import Measure


def _fmt_interval(m: Measure, low: float, high: float, *, signed: bool = False, digits: int | None = None) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "no interval (one seed)"
    return f"[{m.format(low, signed=signed, digits=digits)}, {m.format(high, signed=signed, digits=digits)}]"


def _fmt_level(m: Measure, mean: float, low: float, high: float) -> str:
    """A level with its interval; just the value when the interval is a point (the same in every seed) or absent."""
    if not np.isfinite(low) or low == high:
        return m.format(mean)
    return f"{m.format(mean)} {_fmt_interval(m, low, high)}"


def _digits(m: Measure, rows: pd.DataFrame) -> int:
    """Decimals that show every difference and interval end of ``rows`` (one measure's comparisons) alike."""
    triples = rows[["difference", "low", "high"]].to_numpy(dtype=float)
    return max((m.digits_for(*t) for t in triples), default=m.digits)


def _fmt_difference(m: Measure, row: pd.Series | dict, digits: int | None = None) -> tuple[str, str]:
    """A paired difference and its interval, with enough decimals to show them."""
    d = m.digits_for(row["difference"], row["low"], row["high"]) if digits is None else digits
    return m.format(row["difference"], signed=True, digits=d), _fmt_interval(m, row["low"], row["high"], signed=True,
                                                                             digits=d)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if abs(x) >= 0.1 else f"{100 * x:.1f}%"


def _seed_span(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{len(seeds)} seeds ({seeds[0]}-{seeds[-1]})"
    return f"{len(seeds)} seeds ({', '.join(map(str, seeds))})"
