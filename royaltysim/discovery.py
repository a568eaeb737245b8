"""Scenario discovery: in which region of the parameter space does one arm beat another? PRIM boxes.

A sweep or sensitivity folder holds, for every parameter point and seed, every run-level measure of every
arm (``measures.parquet``). :func:`paired_points` turns it into one row per point: the parameters, and for
each measure the paired difference ``arm - versus`` (within each seed, on common random numbers) averaged
over the seeds. A :class:`Case` says when the arm *beats* the other on a measure (``lower`` or ``higher`` is
better), e.g. "for creators: a higher creator surplus" or "for the platform: a higher profit"; several cases
together must all hold.

:func:`discover` finds, with the Patient Rule Induction Method (Friedman and Fisher 1999) as the EMA
Workbench implements it (:class:`ema_workbench.analysis.prim.Prim`), the box of parameter ranges where the
arm beats the other: PRIM peels the parameter space toward the points where the case holds, tracing a
trajectory from *coverage* (share of all points where it holds that lie in the box) to *density* (share of
the box's points where it holds). The box reported is the one of widest coverage whose density reaches
``threshold``, with its restricted parameters only, each with PRIM's quasi-p-value (small: the restriction
matters). :func:`boxes_markdown` writes the boxes as sentences; ``royaltysim discover`` prints and saves them.

The EMA Workbench is an optional dependency (``pip install -e ".[discovery]"``); it is imported on use.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from royaltysim.errors import InputError

__all__ = ["DiscoveryError", "Case", "Box", "parse_case", "paired_points", "discover", "boxes_markdown"]


class DiscoveryError(InputError, ValueError):
    """A folder, arm or measure that scenario discovery cannot use (the message lists what there is)."""


@dataclass(frozen=True)
class Case:
    """The arm beats the other on ``measure`` when its paired difference is below (``lower``) or above 0."""

    measure: str
    better: Literal["lower", "higher"]

    def holds(self, difference: np.ndarray) -> np.ndarray:
        return difference < 0 if self.better == "lower" else difference > 0

    def __str__(self) -> str:
        return f"{self.measure}:{self.better}"


def parse_case(text: str) -> Case:
    """``"gini_income_run:lower"`` -> :class:`Case`; a bad text is refused with the form expected."""
    found = re.fullmatch(r"\s*([a-z0-9_]+)\s*:\s*(lower|higher)\s*", text)
    if not found:
        raise DiscoveryError(f"a case is MEASURE:lower or MEASURE:higher (which is better), e.g. "
                             f"gini_income_run:lower; got {text!r}")
    return Case(found[1], found[2])  # type: ignore[arg-type]


@dataclass
class Box:
    """A PRIM box: where ``arm`` beats ``versus`` on every case, as ranges of the restricted parameters.

    Attributes:
        name: what the box answers (e.g. "creators").
        limits: one row per restricted parameter: ``parameter, low, high, qp_value`` (PRIM's quasi-p-value of
            the restriction; small means it matters).
        coverage: share of the points where the cases hold that lie in the box.
        density: share of the box's points where the cases hold.
        n_box, n_points, n_hold: points in the box, in all, and where the cases hold.
        bounds: each parameter's whole range over the points (a limit at its end restricts only one side).
        complement: the cases hold at ``threshold`` or more of all points, so the box is where they do *not*
            (coverage and density then count those points).
    """

    name: str
    arm: str
    versus: str
    cases: list[Case]
    limits: pd.DataFrame
    coverage: float
    density: float
    n_box: int
    n_points: int
    n_hold: int
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    complement: bool = False
    threshold: float = 0.8

    def sentence(self) -> str:
        """The box as a sentence a reader can check against the table."""
        what = " and ".join(f"a {c.better} {c.measure}" for c in self.cases)
        head = (f"**{self.name}**: {self.arm} beats {self.versus} ({what}) at {self.n_hold} of {self.n_points} "
                f"points ({self.n_hold / self.n_points:.0%}).")
        if self.n_hold == 0:
            return head + " No region to find."
        if self.limits.empty:
            if self.n_hold == self.n_points:
                return head + " It does everywhere the points reach."
            return head + (f" PRIM found no region where it {'fails' if self.complement else 'does'} at "
                           f"{self.threshold:.0%} of the points or more.")
        parts = []
        for _, r in self.limits.iterrows():
            lo, hi = self.bounds.get(r["parameter"], (-math.inf, math.inf))
            if np.isclose(r["low"], lo):
                parts.append(f"{r['parameter']} <= {r['high']:.3g}")
            elif np.isclose(r["high"], hi):
                parts.append(f"{r['parameter']} >= {r['low']:.3g}")
            else:
                parts.append(f"{r['parameter']} in [{r['low']:.3g}, {r['high']:.3g}]")
        where = " and ".join(parts)
        if self.complement:
            return (head + f" It does not where {where}: there it fails at {self.density:.0%} of the {self.n_box} "
                    f"points, which hold {self.coverage:.0%} of the points where it fails.")
        return (head + f" Where {where}, it does at {self.density:.0%} of the {self.n_box} points there, which "
                f"hold {self.coverage:.0%} of the points where it does.")


def paired_points(folder: str | Path, arm: str, versus: str, measures: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per parameter point: the parameters (``x``) and each measure's paired difference ``arm - versus``,
    mean over the seeds (``y``), from a sweep or sensitivity folder's ``measures.parquet``."""
    path = Path(folder) / "measures.parquet"
    if not path.is_file():
        raise DiscoveryError(f"{folder} has no measures.parquet: give a sweep folder (royaltysim sweep) or a "
                             "sensitivity folder (royaltysim sensitivity)")
    table = pd.read_parquet(path)
    arms = list(dict.fromkeys(table["scheme"]))
    for label in (arm, versus):
        if label not in arms:
            raise DiscoveryError(f"no arm {label!r} in {path}; arms: {', '.join(arms)}")
    params = [c for c in table.columns if "." in c or "[" in c]
    if not params:
        raise DiscoveryError(f"{path} has no parameter columns (dotted scenario paths): was anything swept?")
    missing = [m for m in measures if m not in table.columns]
    if missing:
        from royaltysim.measures import MEASURES

        have = [m for m in MEASURES if m in table.columns]
        raise DiscoveryError(f"no measure {', '.join(map(repr, missing))} in {path}; measures: {', '.join(have)}")
    keyed = table.set_index(["point", "seed", "scheme"])[list(measures)]
    diff = keyed.xs(arm, level="scheme") - keyed.xs(versus, level="scheme")  # paired within each seed
    y = diff.groupby(level="point").mean()
    x = table.groupby("point")[params].first().loc[y.index]
    numeric = [p for p in params if pd.api.types.is_numeric_dtype(x[p])]
    return x[numeric].astype(float), y


def _prim_box(x: pd.DataFrame, hold: np.ndarray, threshold: float, peel_alpha: float) -> tuple[pd.DataFrame, pd.Series]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the workbench warns about optional parallel back-ends on import
        from ema_workbench.analysis import prim
        from ema_workbench.analysis import scenario_discovery_util as sdutil

    finder = prim.Prim(x, hold, threshold=threshold, peel_alpha=peel_alpha)
    box = finder.find_box()  # (no box reaching the threshold: PRIM returns the whole space, unrestricted)
    trajectory = box.peeling_trajectory
    good = trajectory[trajectory["density"] >= threshold]
    i = int((good if len(good) else trajectory.loc[[trajectory["density"].idxmax()]])
            .sort_values(["coverage", "density"], ascending=False).index[0])
    box.select(i)
    stats, limits = box.inspect(i, style="data")[0]
    restricted = list(sdutil._determine_restricted_dims(box.box_lims[i], finder.box_init))
    rows = []
    for p in restricted:
        row = limits.loc[p]
        qp = [v for v in row.iloc[2:].to_numpy(dtype=float) if np.isfinite(v)]
        rows.append({"parameter": p, "low": float(row.iloc[0]), "high": float(row.iloc[1]),
                     "qp_value": max(qp) if qp else math.nan})
    return pd.DataFrame(rows, columns=["parameter", "low", "high", "qp_value"]), stats


def discover(folder: str | Path, arm: str, versus: str, cases: dict[str, Sequence[Case]], *,
             threshold: float = 0.8, peel_alpha: float = 0.05) -> list[Box]:
    """One PRIM box per named set of cases (e.g. ``{"creators": [...], "platform": [...]}``).

    Args:
        folder: a sweep or sensitivity folder.
        arm, versus: the arm that should beat the other (labels as in the scenario).
        cases: name -> the cases that must all hold there.
        threshold: the density the reported box must reach (when no box does, the densest one is reported).
        peel_alpha: the share of points PRIM peels off a side at each step.
    """
    if not 0 < threshold <= 1:
        raise DiscoveryError(f"threshold is the density the box must reach, in (0, 1]; got {threshold}")
    measures = list(dict.fromkeys(c.measure for group in cases.values() for c in group))
    x, y = paired_points(folder, arm, versus, measures)
    bounds = {p: (float(x[p].min()), float(x[p].max())) for p in x.columns}
    out = []
    for name, group in cases.items():
        hold = np.logical_and.reduce([c.holds(y[c.measure].to_numpy()) for c in group])
        n_hold = int(hold.sum())
        if n_hold in (0, len(hold)):  # nothing to tell apart: the answer is everywhere or nowhere
            limits = pd.DataFrame(columns=["parameter", "low", "high", "qp_value"])
            box = Box(name, arm, versus, list(group), limits, 1.0 if n_hold else 0.0, n_hold / len(hold), len(hold),
                      len(hold), n_hold, bounds, threshold=threshold)
        else:
            # holding at the threshold share everywhere, the readable region is the one where it fails
            complement = n_hold / len(hold) >= threshold
            limits, stats = _prim_box(x, ~hold if complement else hold, threshold, peel_alpha)
            box = Box(name, arm, versus, list(group), limits, float(stats["coverage"]), float(stats["density"]),
                      int(stats["n"]), len(hold), n_hold, bounds, complement, threshold)
        out.append(box)
    return out


def boxes_markdown(boxes: Sequence[Box], folder: str | Path) -> str:
    """The boxes as a short Markdown page: a sentence each, then its limits table."""
    lines = [f"# Scenario discovery (PRIM) on {folder}", ""]
    for box in boxes:
        lines += [box.sentence(), ""]
        if not box.limits.empty:
            lines += ["| parameter | low | high | quasi-p |", "|---|---|---|---|"]
            lines += [f"| `{r['parameter']}` | {r['low']:.4g} | {r['high']:.4g} | {r['qp_value']:.2g} |"
                      for _, r in box.limits.iterrows()]
            lines.append("")
    return "\n".join(lines)
