"""The report's tables, every number computed from :class:`~royaltysim.runner.Results`.

* :func:`question_measures` -- the measures that answer the scenario's question;
* :func:`answer_table` -- for each question measure, every arm against the reference arm: levels and the
  paired difference with its 95% interval;
* :func:`summary_table` -- every run-level measure by arm;
* :func:`band_table` -- gains and losses by rank band of the reference arm (top 10, 11-100, ...);
* :func:`creator_table` -- each creator's income under each arm and the change against the reference arm;
* :func:`lorenz_table` -- Lorenz curves of whole-run income (mean over seeds);
* :func:`payout_per_stream` -- the human-streams pool over human streams.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from royaltysim import metrics
from royaltysim.measures import DEFAULT_QUESTION_MEASURES, MEASURES, rank_bands
from royaltysim.report.wording import _digits, _fmt_difference, _fmt_level
from royaltysim.stats import paired_difference, verdict

if TYPE_CHECKING:
    from royaltysim.runner import Results


def question_measures(results: Results) -> list[str]:
    """The measures that answer the scenario's question (``compare.measures``, else the defaults)."""
    return list(results.scenario.compare.measures) or list(DEFAULT_QUESTION_MEASURES)


def answer_table(results: Results, measures: list[str] | None = None) -> pd.DataFrame:
    """The question's answer: every arm against the reference arm on each question measure.

    One row per (measure, arm): ``measure, label, unit, arm, reference, arm_level, reference_level,
    difference, interval, verdict`` (formatted for the page) and the raw ``compare`` columns.
    """
    names = measures or question_measures(results)
    if len(results.labels) < 2:
        return pd.DataFrame()
    comp = results.compare(measures=names)
    summ = results.summary(names).set_index(["scheme", "measure"])
    digits = {n: _digits(MEASURES[n], comp[comp["measure"] == n]) for n in names}
    rows = []
    for r in comp.itertuples(index=False):
        m = MEASURES[r.measure]
        arm_iv, ref_iv = summ.loc[(r.scheme, r.measure)], summ.loc[(r.reference, r.measure)]
        diff, ci = _fmt_difference(m, r._asdict(), digits[r.measure])
        rows.append({
            "measure": r.measure, "label": m.label, "unit": m.unit, "arm": r.scheme, "reference": r.reference,
            "reference_level": _fmt_level(m, ref_iv["mean"], ref_iv["low"], ref_iv["high"]),
            "arm_level": _fmt_level(m, arm_iv["mean"], arm_iv["low"], arm_iv["high"]),
            "difference": diff,
            "interval": ci,
            "verdict": r.verdict,
            **{f"raw_{k}": getattr(r, k) for k in ("difference", "low", "high", "p_value", "n")},
        })
    return pd.DataFrame(rows)


def summary_table(results: Results) -> pd.DataFrame:
    """Every run-level measure (rows, by label and unit) by arm (columns): mean over seeds [95% interval]."""
    s = results.summary()
    rows = {}
    for name in dict.fromkeys(s["measure"]):
        m = MEASURES[name]
        g = s[s["measure"] == name].set_index("scheme")
        rows[f"{m.label} ({m.unit}) [{name}]"] = {
            label: _fmt_level(m, g.loc[label, "mean"], g.loc[label, "low"], g.loc[label, "high"])
            for label in results.labels
        }
    return pd.DataFrame.from_dict(rows, orient="index")[results.labels]


def payout_per_stream(results: Results) -> float:
    """The human-streams pool over human streams, over the whole run (all arms and seeds): $ per stream."""
    streams = results.creators["streams"].sum()
    return float(results.model["human_pool"].sum() / streams) if streams > 0 else float("nan")


def _monthly(income: pd.DataFrame) -> pd.DataFrame:
    """Whole-run income as $ a month."""
    return income.assign(income_month=income["income_run"] / income["months"].clip(lower=1))


def band_table(results: Results) -> pd.DataFrame:
    """Gains and losses by rank band of the reference arm, seed by seed, with paired 95% intervals.

    A creator's band is their rank by whole-run income under the reference arm in that seed. One row per
    (arm, band): ``arm, band, creators, reference_month`` ($ a month per creator of the band under the
    reference arm), ``arm_month``, ``change_month`` with ``low``/``high`` (paired over seeds) and
    ``change_pct`` with ``pct_low``/``pct_high`` (the change over the band's mean income under the reference
    arm).
    """
    ref = results.reference_arm
    inc = rank_bands(_monthly(results.creator_income()), ref)
    per = inc.groupby(["scheme", "seed", "band"], sort=False).agg(
        total=("income_month", "sum"), creators=("creator", "size")).reset_index()
    order = list(dict.fromkeys(inc.sort_values("rank")["band"]))
    rows = []
    base = per[per["scheme"] == ref].set_index(["seed", "band"])
    for label in results.labels:
        if label == ref:
            continue
        g = per[per["scheme"] == label].set_index(["seed", "band"]).reindex(base.index)
        for band in order:
            b, a = base.xs(band, level="band").sort_index(), g.xs(band, level="band").sort_index()
            n = b["creators"].to_numpy(dtype=float)
            per_ref, per_arm = b["total"].to_numpy() / n, a["total"].to_numpy() / n
            iv = paired_difference(per_arm, per_ref)
            # relative to the band's mean income under the reference arm (a ratio of means over seeds: a seed in
            # which the band earned almost nothing would dominate a mean of ratios)
            scale = float(per_ref.mean())
            rel = (lambda x: x / scale) if scale > 0 else (lambda x: np.nan)
            rows.append({
                "arm": label, "band": band, "creators": float(n.mean()), "reference_month": scale,
                "arm_month": float(per_arm.mean()), "change_month": iv.estimate, "low": iv.low, "high": iv.high,
                "verdict": verdict(iv), "change_pct": rel(iv.estimate), "pct_low": rel(iv.low), "pct_high": rel(iv.high),
            })
    return pd.DataFrame(rows)


def creator_table(results: Results) -> pd.DataFrame | None:
    """Each creator's income ($ a month, mean over seeds) under each arm and the paired change against the
    reference arm, best paid under the reference first; None when creators differ from seed to seed (a fitted
    population is drawn anew for each seed, so a creator key is not the same person twice).

    Columns: ``creator, name``, one per arm (``$ a month``), per other arm ``<arm> change``, ``<arm> low``,
    ``<arm> high``, ``<arm> verdict``, and ``gone under <reference>`` (share of seeds in which the creator
    was in the market and left by the end).
    """
    if results.scenario.source.kind != "corpus":
        return None
    ref = results.reference_arm
    inc = _monthly(results.creator_income())
    wide = inc.pivot_table(index=["seed", "creator"], columns="scheme", values="income_month").sort_index()
    out = pd.DataFrame({"creator": wide.index.get_level_values("creator").unique()})
    out["name"] = out["creator"].map(results.names).fillna(out["creator"])
    means = wide.groupby(level="creator").mean()
    for label in results.labels:
        out[label] = out["creator"].map(means[label])
    for label in results.labels:
        if label == ref:
            continue
        ivs = {c: paired_difference(g[label].to_numpy(), g[ref].to_numpy())
               for c, g in wide.groupby(level="creator")}
        out[f"{label} change"] = out["creator"].map({c: iv.estimate for c, iv in ivs.items()})
        out[f"{label} low"] = out["creator"].map({c: iv.low for c, iv in ivs.items()})
        out[f"{label} high"] = out["creator"].map({c: iv.high for c, iv in ivs.items()})
        out[f"{label} verdict"] = out["creator"].map({c: verdict(iv) for c, iv in ivs.items()})
    r = inc[inc["scheme"] == ref]
    gone = (r["ever_active"] & ~r["active_end"]).groupby(r["creator"]).mean()
    out[f"gone under {ref}"] = out["creator"].map(gone)
    return out.sort_values(ref, ascending=False).reset_index(drop=True)


def lorenz_table(results: Results, points: int = 101) -> pd.DataFrame:
    """Lorenz curves of whole-run income, averaged over seeds on a common grid: ``scheme, population_share,
    income_share``."""
    grid = np.linspace(0, 1, points)
    frames = []
    inc = results.creator_income()
    inc = inc[inc["ever_active"]]
    for label in results.labels:
        curves = []
        for _, g in inc[inc["scheme"] == label].groupby("seed"):
            pop, share = metrics.lorenz(np.clip(g["income_run"].to_numpy(), 0, None))
            curves.append(np.interp(grid, pop, share))
        frames.append(pd.DataFrame({"scheme": label, "population_share": grid,
                                    "income_share": np.mean(curves, axis=0)}))
    return pd.concat(frames, ignore_index=True)
