"""The run report: the question's answer as paired differences over seeds, who wins and who loses, figures.

Every number is computed here from :class:`~royaltysim.runner.Results` (its run-level measures, see
:mod:`royaltysim.measures`, and its paired comparisons, see :mod:`royaltysim.stats`):

* :func:`answer_table` -- for each measure that answers the scenario's question (its ``compare:``
  section), every arm against the reference arm: levels and the paired difference with its 95% interval;
* :func:`findings` -- the same in sentences; a difference whose interval contains zero is never ranked
  ("no detectable difference"), entries and exits are always stated;
* :func:`band_table` -- gains and losses by rank band of the reference arm (top 10, 11-100, ...);
* :func:`creator_table` -- each creator's income under each arm and the change against the reference arm
  (creators of an attribution run, who are the same people in every seed);
* :func:`write_report` -- ``report.html`` with its figures:

  - ``answer.png`` -- the paired difference of each question measure, arm by arm, with its interval;
  - ``bands.png`` -- the change in each rank band's income against the reference arm;
  - ``months.png`` -- monthly inequality and active creators as differences from the reference arm;
  - ``payout_vs_contribution.png`` -- each creator's share of the AI pool against their true contribution;
  - ``lorenz.png`` -- Lorenz curves of whole-run income (mean over seeds).

Money is in the platform's fee currency ("$") a month, for the simulated platform's listeners; the
report states its payout per stream, which ``royaltysim calibrate`` checks against the published
$0.003-0.005.

The report links the documentation of every mechanism the run used (:func:`mechanism_links`): each
arm's schemes to their section of ``docs/schemes.md``, and the model's processes (listening, settlement,
creators' decisions, AI quality, true contribution, stochasticity, measures) to their sections of
``docs/ODD.md``, by GitHub's heading anchors (:func:`github_slug`).
"""

from __future__ import annotations

import html
import os
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from royaltysim import metrics
from royaltysim.combinators import describe_params
from royaltysim.measures import DEFAULT_QUESTION_MEASURES, MEASURES, Measure, rank_bands
from royaltysim.shapley import sampling_findings
from royaltysim.stats import paired_difference, verdict

if TYPE_CHECKING:
    from royaltysim.runner import Results

__all__ = [
    "question_measures",
    "answer_table",
    "answer_summary",
    "describe_difference",
    "findings",
    "band_table",
    "creator_table",
    "summary_table",
    "lorenz_table",
    "payout_per_stream",
    "unallocated_findings",
    "write_report",
    "FIGURES",
    "DOCS",
    "github_slug",
    "doc_href",
    "arm_links",
    "mechanism_links",
]

FIGURES = {
    "answer.png": "The answer: each arm minus the reference arm, seed by seed (dot: mean over seeds; bar: 95% "
                  "interval; the dashed line is no difference)",
    "bands.png": "Who gains and who loses: change in each rank band's income against the reference arm, $ a month "
                 "per creator of the band (bar: mean over seeds; whisker: paired 95% interval; bands by rank under the "
                 "reference arm)",
    "months.png": "Month by month: each arm minus the reference arm (line: mean over seeds; band: 95% interval)",
    "payout_vs_contribution.png": "Each creator's share of the AI pool over the run against their true contribution "
                                  "(mean over seeds)",
    "lorenz.png": "Lorenz curves of creators' whole-run income (mean over seeds)",
}
_TEMPLATE = "report.html.j2"
#: creators listed by name in the findings at most
_NAMED = 8


# ----------------------------------------------------------------------------------------- wording


def question_measures(results: Results) -> list[str]:
    """The measures that answer the scenario's question (``compare.measures``, else the defaults)."""
    return list(results.scenario.compare.measures) or list(DEFAULT_QUESTION_MEASURES)


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


def describe_difference(name: str, arm: str, reference: str, row: pd.Series | dict) -> str:
    """One sentence for one paired comparison (a row of :meth:`Results.compare`).

    Only a difference whose interval excludes zero gets a direction ("higher"/"lower"); otherwise the
    sentence says "no detectable difference" and gives both levels and the interval.
    """
    m = MEASURES[name]
    a, r = m.format(row["arm_mean"]), m.format(row["reference_mean"])
    diff, ci = _fmt_difference(m, row)
    n = int(row["n"])
    what = m.label[0].upper() + m.label[1:]
    v = row["verdict"]
    if v == "one seed":
        return (f"{what}: {arm} {a}, {reference} {r}: one seed, so no interval and no ranking; "
                "run more seeds (`--seeds`) to compare.")
    if v == "identical":
        return f"{what}: identical under {arm} and {reference} in every one of {n} seeds ({a})."
    if v == "no detectable difference":
        return (f"{what}: no detectable difference between {arm} and {reference} ({a} vs {r}; "
                f"difference {diff}, 95% interval {ci} over {n} seeds).")
    return (f"{what} is {v} under {arm} than under {reference}: {a} vs {r}, a difference of {diff} "
            f"(95% interval {ci}, paired over {n} seeds).")


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if abs(x) >= 0.1 else f"{100 * x:.1f}%"


def _seed_span(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{len(seeds)} seeds ({seeds[0]}-{seeds[-1]})"
    return f"{len(seeds)} seeds ({', '.join(map(str, seeds))})"


# ----------------------------------------------------------------------------------------- tables


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


def answer_summary(results: Results, measures: list[str] | None = None) -> list[str]:
    """The answer in one sentence per arm: what differs detectably from the reference arm, and what does not."""
    table = answer_table(results, measures)
    out = []
    for arm, g in table.groupby("arm", sort=False):
        found = [f"{r.label}: {r.verdict} ({r.difference} {r.interval})" for r in g.itertuples()
                 if r.verdict in ("higher", "lower")]
        same = [r.label for r in g.itertuples() if r.verdict in ("no detectable difference", "identical")]
        unknown = [r.label for r in g.itertuples() if r.verdict == "one seed"]
        text = f"{arm} against {g['reference'].iloc[0]}: "
        text += ("; ".join(found) + ". ") if found else "no detectable difference on any of these measures. "
        if found and same:
            text += "No detectable difference in " + "; ".join(same) + ". "
        if unknown:
            text = f"{arm} against {g['reference'].iloc[0]}: one seed, so nothing is compared; run more seeds. "
        out.append(text.strip())
    return out


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


#: share of a pool left unallocated over a run above which the findings say so
UNALLOCATED_MATERIAL = 0.01


def unallocated_findings(model: pd.DataFrame, material: float = UNALLOCATED_MATERIAL) -> list[str]:
    """A sentence per arm and pool whose scheme left more than ``material`` of the pool unpaid over the run.

    A scheme with no basis to pay on in a month (e.g. a similarity threshold no output reaches) pays
    nothing; the money stays with the platform and would otherwise show up only as a higher margin.
    """
    out = []
    for label, g in model.groupby("scheme", sort=False):
        seeds = max(g["seed"].nunique(), 1) if "seed" in g else 1
        for pool, name in (("ai", "AI pool"), ("human", "human-streams pool")):
            total, left = g[f"{pool}_pool"].sum(), g.get(f"unallocated_{pool}", pd.Series(dtype=float)).sum()
            if total > 0 and left / total > material:
                months = (g[f"unallocated_{pool}"] > 1e-9 * g[f"{pool}_pool"]).sum() / seeds
                out.append(
                    f"Under {label}, {100 * left / total:.1f}% of the {name} went unpaid over the run: in {months:.3g} "
                    f"of {len(g) / seeds:.0f} months (mean over seeds) its scheme ({g[f'{pool}_scheme'].iloc[0]}) found "
                    "nothing to pay on (e.g. a similarity threshold no output reaches), and the money stayed with the "
                    "platform as margin."
                )
    return out


# ----------------------------------------------------------------------------------------- findings


def _arm_phrase(m: Measure, row: pd.Series, digits: int | None = None) -> str:
    """How one arm compares with the reference on one measure, in a few words (never a rank without evidence)."""
    a = m.format(row["arm_mean"])
    diff, ci = _fmt_difference(m, row, digits)
    v = row["verdict"]
    if v == "one seed":
        return f"{row['scheme']} {a} (one seed: not compared)"
    if v == "identical":
        return f"identical under {row['scheme']} in every seed"
    if v == "no detectable difference":
        return f"no detectable difference under {row['scheme']} ({a}; {diff} {ci})"
    return f"{v} under {row['scheme']} ({a}; {diff} {ci})"


def _paired_sentences(results: Results, names: list[str]) -> list[str]:
    """One sentence per measure: the reference arm's level, then every other arm against it."""
    if len(results.labels) < 2 or not names:
        return []
    comp = results.compare(measures=names)
    out = []
    for name in names:
        rows = comp[comp["measure"] == name]
        m = MEASURES[name]
        first = rows.iloc[0]
        n = int(first["n"])
        tail = f" (95% intervals, paired over {n} seeds)" if n > 1 else ""
        out.append(f"{m.label[0].upper() + m.label[1:]}, against {first['reference']} "
                   f"({m.format(first['reference_mean'])}): "
                   + "; ".join(_arm_phrase(m, r, _digits(m, rows)) for _, r in rows.iterrows()) + f"{tail}.")
    return out


def _names(results: Results, creators: list[str]) -> str:
    shown = [results.names.get(c, c) for c in creators[:_NAMED]]
    more = len(creators) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _exit_findings(results: Results) -> list[str]:
    ref = results.reference_arm
    meas = results.measures()
    summ = results.summary(["creators_active_start", "creators_gone_end", "exits_run", "entries_run",
                            "creators_active_end"]).set_index(["scheme", "measure"])
    n = results.n_creators()
    months = int(results.model["step"].max())

    def level(label: str, name: str) -> str:
        s = summ.loc[(label, name)]
        return _fmt_level(MEASURES[name], s["mean"], s["low"], s["high"])

    out = [
        f"Entries and exits under {ref}: of {n:,} creators, {level(ref, 'creators_active_start')} are in the market "
        f"at the start; over {months} months {level(ref, 'exits_run')} exits and {level(ref, 'entries_run')} entries "
        f"happen, and {level(ref, 'creators_gone_end')} creators who were in the market are gone at the end, leaving "
        f"{level(ref, 'creators_active_end')} (means over seeds, 95% intervals)."
    ]
    if meas["exits_run"].max() == 0 and meas["entries_run"].max() == 0:
        out[-1] = f"No creator enters or leaves the market under any arm in {months} months."
    out += _paired_sentences(results, ["creators_gone_end", "entries_run"])
    if results.scenario.source.kind == "corpus":
        inc = results.creator_income()
        r = inc[inc["scheme"] == ref]
        gone = (r["ever_active"] & ~r["active_end"]).groupby(r["creator"]).mean()
        always = sorted(gone[gone == 1].index, key=lambda c: results.names.get(c, c))
        if always:
            out.append(f"Gone by the end in every seed under {ref} ({len(always)} creators): {_names(results, always)}.")
    return out


def _band_findings(results: Results, bands: pd.DataFrame) -> list[str]:
    out = []
    ref = results.reference_arm
    for label, g in bands.groupby("arm", sort=False):
        parts = []
        for r in g.itertuples():
            ci = f"[{r.low:+,.2f}, {r.high:+,.2f}]" if np.isfinite(r.low) else "(one seed)"
            if r.verdict in ("higher", "lower"):
                word = "gain" if r.verdict == "higher" else "lose"
                pct = f", {100 * r.change_pct:+.1f}%" if np.isfinite(r.change_pct) else ""
                parts.append(f"the {r.band} {word} ${abs(r.change_month):,.2f} a month each {ci}{pct}")
            elif r.verdict == "identical":
                parts.append(f"the {r.band} are paid the same")
            else:
                parts.append(f"the {r.band}: no detectable change ({'+' if r.change_month >= 0 else '-'}"
                             f"${abs(r.change_month):,.2f} {ci})")
        out.append(f"Under {label} against {ref}, by rank under {ref}: " + "; ".join(parts) + ".")
    return out


def findings(results: Results) -> list[str]:
    """Plain-language findings, every number computed from the run and every comparison paired over seeds.

    Leads with the question's measures; a difference whose 95% interval contains zero is reported as
    "no detectable difference", never ranked.
    """
    sc = results.scenario
    ref = results.reference_arm
    seeds = results.seeds
    months = int(results.model["step"].max())
    setup = (f"{len(results.labels)} arm{'s' if len(results.labels) > 1 else ''} over {months} months with "
             f"{results.n_creators():,} creators and {sc.consumers.n:,} listeners, on {_seed_span(seeds)}.")
    if len(results.labels) > 1:
        setup += (f" Within a seed every arm runs on the same random numbers, so each comparison is the difference "
                  f"against {ref} seed by seed")
        setup += (", with a 95% interval over the seeds (paired t)." if len(seeds) > 1 else
                  "; with one seed there is no interval, so nothing is ranked (run more seeds with --seeds).")
    elif len(seeds) == 1:
        setup += " With one seed the levels have no interval (run more seeds with --seeds)."
    out = [setup]
    out += _paired_sentences(results, question_measures(results))
    m = results.model
    ai_share = m["ai_pool"].sum() / (m["ai_pool"] + m["human_pool"]).sum()
    out.append(
        f"The AI pool is {_pct(ai_share)} of all royalties over the run (all arms and seeds together); the rest is "
        "the human-streams pool, paid by each arm's human rule."
    )
    out += unallocated_findings(m)
    out += sampling_findings(m)  # Shapley Royalty Share's standard error, where an arm samples it
    out += _exit_findings(results)
    if len(results.labels) > 1:
        out += _band_findings(results, band_table(results))
    b = sc.behaviour
    extra = (["opted_in_end", "ai_quality_end"] if b.opt_out else []) + (["flooders_end"] if b.flooding else []) \
        + (["imitation_drift_end"] if b.imitation else [])
    extra = [e for e in extra if e not in question_measures(results)]
    out += _paired_sentences(results, extra)
    shown = set(question_measures(results))
    out += _paired_sentences(results, [x for x in ("consumer_welfare_month_mean", "platform_margin_month_mean")
                                       if x not in shown])
    # the stream farm and the demand side, when the scenario has them (royaltysim.fraud, royaltysim.demand)
    market = (["fraud_share_human_pool_run", "fraud_share_ai_pool_run", "fraud_profit_month_mean"] if sc.fraud.on else [])
    market += ["subscribers_end", "revenue_month_mean"] if sc.demand.enabled else []
    if sc.fraud.on or sc.demand.enabled:
        market += ["consumer_surplus_month_mean", "platform_profit_month_mean", "creator_surplus_month_mean",
                   "total_welfare_month_mean"]
    out += _paired_sentences(results, [x for x in market if x not in shown])
    return out


# ----------------------------------------------------------------------------------------- figures


def _wrap(text: str, width: int = 38) -> str:
    return "\n".join(textwrap.wrap(text, width))


def _scale(m: Measure) -> tuple[float, str]:
    """Factor and axis unit for a measure's differences (shares in percentage points)."""
    if m.kind == "share":
        return 100.0, "percentage points"
    if m.kind == "money":
        return 1.0, "$ a month"
    return 1.0, m.unit.split(" (")[0]


def _answer_figure(results: Results, names: list[str], out: Path) -> None:
    import matplotlib.pyplot as plt

    comp = results.compare(measures=names)
    arms = [a for a in results.labels if a != results.reference_arm]
    cols = 2 if len(names) == 4 else min(len(names), 3)
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 0.5 + (0.9 + 0.45 * len(arms)) * rows), squeeze=False)
    for ax in axes.ravel()[len(names):]:
        ax.remove()
    for ax, name in zip(axes.ravel(), names):
        m = MEASURES[name]
        k, unit = _scale(m)
        g = comp[comp["measure"] == name].set_index("scheme").reindex(arms)
        y = np.arange(len(arms))[::-1]
        est = g["difference"].to_numpy() * k
        lo, hi = g["low"].to_numpy() * k, g["high"].to_numpy() * k
        colours = ["C3" if v in ("higher", "lower") else "0.45" for v in g["verdict"]]
        for yi, e, l, h, c in zip(y, est, lo, hi, colours):
            if np.isfinite(l):
                ax.plot([l, h], [yi, yi], color=c, lw=2.2, solid_capstyle="butt")
            ax.plot([e], [yi], "o", color=c, ms=6)
        ax.axvline(0, color="0.2", ls="--", lw=1)
        span = np.nanmax(np.abs(np.concatenate([lo, hi, est]))) if np.isfinite(np.concatenate([lo, hi, est])).any() else 0
        ax.set_xlim(-1.15 * span - 1e-12, 1.15 * span + 1e-12)
        ax.set_yticks(y, arms)
        ax.set_ylim(-0.6, len(arms) - 0.4)
        ax.set_title(_wrap(m.label[0].upper() + m.label[1:]), fontsize=10)
        ax.set_xlabel(f"minus {results.reference_arm} ({unit})", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "answer.png", dpi=110)
    plt.close(fig)


def _bands_figure(results: Results, bands: pd.DataFrame, out: Path) -> None:
    import matplotlib.pyplot as plt

    arms = list(dict.fromkeys(bands["arm"]))
    order = list(dict.fromkeys(bands["band"]))
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(order) * max(len(arms), 1) ** 0.5, 3.8))
    width = 0.8 / max(len(arms), 1)
    x = np.arange(len(order))
    for i, arm in enumerate(arms):
        g = bands[bands["arm"] == arm].set_index("band").reindex(order)
        pos = x - 0.4 + width * (i + 0.5)
        est = g["change_month"].to_numpy()
        ax.bar(pos, est, width * 0.9, color=f"C{i + 1}", label=arm)
        err = np.vstack([est - g["low"].to_numpy(), g["high"].to_numpy() - est])
        ax.errorbar(pos, est, yerr=np.where(np.isfinite(err), err, 0), fmt="none", ecolor="0.15", capsize=3, lw=1)
    ax.axhline(0, color="0.2", lw=1)
    n = bands.groupby("band", sort=False)["creators"].first().reindex(order)
    ax.set_xticks(x, [f"{b}\n({c:,.0f} creators)" for b, c in zip(order, n)])
    ax.set_xlabel(f"rank by whole-run income under {results.reference_arm}")
    ax.set_ylabel(f"change against {results.reference_arm}\n($ a month per creator of the band)")
    ax.legend(title="arm", fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(out / "bands.png", dpi=110)
    plt.close(fig)


def _months_figure(results: Results, out: Path) -> None:
    import matplotlib.pyplot as plt

    from royaltysim.stats import paired_difference as pdiff

    ref = results.reference_arm
    arms = [a for a in results.labels if a != ref]
    shown = [("gini_income_month", "Gini of the month's income", 1.0, "Gini points"),
             ("top10_share_income_month", "top 10% share of the month's income", 100.0, "percentage points"),
             ("active_creators", "creators in the market", 1.0, "creators")]
    m = results.model
    base = m[m["scheme"] == ref].set_index(["seed", "step"]).sort_index()
    fig, axes = plt.subplots(1, len(shown), figsize=(4.4 * len(shown), 3.4), squeeze=False)
    for ax, (col, title, k, unit) in zip(axes[0], shown):
        for i, arm in enumerate(arms):
            g = m[m["scheme"] == arm].set_index(["seed", "step"]).reindex(base.index)
            steps = sorted(base.index.get_level_values("step").unique())
            ivs = [pdiff(g.xs(s, level="step")[col].to_numpy(), base.xs(s, level="step")[col].to_numpy())
                   for s in steps]
            est = np.array([iv.estimate for iv in ivs]) * k
            ax.plot(steps, est, color=f"C{i + 1}", label=arm)
            lo, hi = np.array([iv.low for iv in ivs]) * k, np.array([iv.high for iv in ivs]) * k
            if np.isfinite(lo).all():
                ax.fill_between(steps, lo, hi, color=f"C{i + 1}", alpha=0.2, lw=0)
        ax.axhline(0, color="0.2", ls="--", lw=1)
        for arm in results.scenario.schemes:  # a schedule's switch months, in the arm's colour
            colour = "0.2" if arm.label == ref else f"C{arms.index(arm.label) + 1}"
            for phase in arm.schedule:
                ax.axvline(phase.from_month, color=colour, ls=":", lw=1.5)
                ax.annotate(f"{arm.label}: switch", (phase.from_month, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(3, -10), textcoords="offset points", fontsize=7, color=colour)
        ax.set_title(_wrap(title[0].upper() + title[1:], 40), fontsize=10)
        ax.set_xlabel("month")
        ax.set_ylabel(f"minus {ref} ({unit})", fontsize=9)
    axes[0][-1].legend(title="arm", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "months.png", dpi=110)
    plt.close(fig)


def _payout_figure(results: Results, out: Path) -> None:
    import matplotlib.pyplot as plt

    inc = results.creator_income()
    inc = inc[inc["ever_active"]]
    totals = inc.groupby(["scheme", "seed"])["ai_pay_run"].transform("sum").replace(0, np.nan)
    inc = inc.assign(ai_share=(inc["ai_pay_run"] / totals).fillna(0.0))
    avg = inc.groupby(["scheme", "creator"], sort=False)[["ai_share", "true_share_run"]].mean().reset_index()
    fig, ax = plt.subplots(figsize=(6.0, 5.6))
    for i, label in enumerate(results.labels):
        g = avg[avg["scheme"] == label]
        ax.scatter(g["true_share_run"], g["ai_share"], s=22, alpha=0.75, color=f"C{i}", label=label)
    hi = float(max(avg["true_share_run"].max(), avg["ai_share"].max(), 1e-9)) * 1.05
    ax.plot([0, hi], [0, hi], color="grey", linestyle="--", linewidth=1, label="paid as contributed")
    if results.scenario.source.kind == "corpus":  # name the creators paid most under any arm
        top = avg.sort_values("ai_share", ascending=False).drop_duplicates("creator").head(5)
        for r in top.itertuples():
            name = results.names.get(r.creator, r.creator).replace("Polyphonic Music of the Fourteenth Century,", "PMFC")
            ax.annotate(name, (r.true_share_run, r.ai_share), fontsize=7.5, xytext=(4, -3), textcoords="offset points",
                        ha="left" if r.true_share_run < 0.6 * hi else "right")
    ax.set(xlabel="true contribution (share of all creators', mean over months)",
           ylabel="share of the AI pool over the run", xlim=(0, hi), ylim=(0, hi))
    ax.set_title("AI pay vs true contribution\n" + textwrap.fill(f"(true contribution: {results.reference})", 64),
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4, frameon=False)
    fig.tight_layout()
    fig.savefig(out / "payout_vs_contribution.png", dpi=110)
    plt.close(fig)


def _lorenz_figure(results: Results, out: Path) -> None:
    import matplotlib.pyplot as plt

    lz = lorenz_table(results)
    fig, ax = plt.subplots(figsize=(5.6, 5.6))
    for i, label in enumerate(results.labels):
        g = lz[lz["scheme"] == label]
        ax.plot(g["population_share"], g["income_share"], color=f"C{i}", label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="equality")
    ax.set(xlabel="share of creators (poorest first)", ylabel="share of whole-run income", xlim=(0, 1), ylim=(0, 1),
           title="Lorenz curves")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "lorenz.png", dpi=110)
    plt.close(fig)


def _figures(results: Results, out: Path, bands: pd.DataFrame) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    made = {}
    if len(results.labels) > 1:
        _answer_figure(results, question_measures(results), out)
        made["answer.png"] = FIGURES["answer.png"]
        if not bands.empty:
            _bands_figure(results, bands, out)
            made["bands.png"] = FIGURES["bands.png"]
        _months_figure(results, out)
        made["months.png"] = FIGURES["months.png"]
    if results.model["ai_pool"].sum() > 0:
        _payout_figure(results, out)
        made["payout_vs_contribution.png"] = FIGURES["payout_vs_contribution.png"]
    _lorenz_figure(results, out)
    made["lorenz.png"] = FIGURES["lorenz.png"]
    return made


# ----------------------------------------------------------------------------------------- links to the docs

#: the documentation of the model (``docs/`` of the source tree)
DOCS = Path(__file__).resolve().parents[1] / "docs"
_ODD = "ODD.md"
_SCHEMES = "schemes.md"


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces as hyphens
    (``"7.4 Creators' decisions"`` -> ``"74-creators-decisions"``, ``"`pro_rata`"`` -> ``"pro_rata"``)."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def doc_href(doc: str, heading: str, out_dir: Path, docs: str | Path = DOCS) -> str | None:
    """The link to ``heading`` of ``docs/<doc>`` from a page in ``out_dir``.

    ``docs`` is the docs folder (the link is relative to ``out_dir``, so the run folder and the source tree
    move together) or a URL it is published at. None when the folder has no such file (an installed package
    without its source tree): the report then names the section without a link.
    """
    anchor = github_slug(heading)
    if isinstance(docs, str) and re.match(r"^[a-z][a-z0-9+.-]*://", docs):
        return f"{docs.rstrip('/')}/{doc}#{anchor}"
    target = Path(docs) / doc
    if not target.is_file():
        return None
    try:
        path = os.path.relpath(target.resolve(), Path(out_dir).resolve())
    except ValueError:  # another drive (Windows): no relative path
        return f"{target.resolve().as_uri()}#{anchor}"
    return f"{Path(path).as_posix()}#{anchor}"


def _link(doc: str, heading: str, out_dir: Path, docs: str | Path, text: str | None = None) -> dict:
    return {"text": text or heading.replace("`", ""), "href": doc_href(doc, heading, out_dir, docs),
            "where": f"docs/{doc}, {heading.replace('`', '')}"}


def arm_links(results: Results, out_dir: Path, docs: str | Path = DOCS) -> list[dict]:
    """Each arm with the scheme of each pool, its parameters, and the link to the scheme's section of schemes.md.

    One dict per arm: ``label`` and ``pools``, a list of ``{pool, scheme: link, params}``.
    """
    rows = []
    for arm in results.scenario.schemes:
        pools = []
        specs = [("human pool", arm.human), ("AI pool", arm.ai)]
        for phase in arm.schedule:  # a schedule's later rules, each with the month it starts
            specs += [(f"{pool} from month {phase.from_month}", spec)
                      for pool, spec in (("human pool", phase.human), ("AI pool", phase.ai)) if spec is not None]
        for pool, spec in specs:
            params = describe_params(spec.name, spec.params)  # nested schemes in words, not as dicts
            pools.append({"pool": pool, "scheme": _link(_SCHEMES, f"`{spec.name}`", out_dir, docs), "params": params})
        if arm.ai_pool is not None:
            terms = arm.ai_pool
            pools.append({"pool": "AI pool paid in", "scheme": _link(_SCHEMES, "AI pool terms", out_dir, docs),
                          "params": f"{terms.rate:g} of {terms.income} AI income, at least "
                                    f"${terms.minimum_per_play:g} per AI stream"})
        rows.append({"label": arm.label, "pools": pools})
    return rows


def mechanism_links(results: Results, out_dir: Path, docs: str | Path = DOCS) -> list[dict]:
    """The model's mechanisms this run used, each with a line on what it does here and its ODD section.

    One dict per mechanism: ``what`` (a sentence about this run) and ``link`` (``text``, ``href``, ``where``).
    """
    sc = results.scenario
    b = sc.source
    behaviour = sc.behaviour
    choices = ["exit and re-entry", "releases", "strategy choice"]
    choices += [name for name, on in (("opting out of AI training", behaviour.opt_out),
                                      ("imitating the AI's style", behaviour.imitation),
                                      ("flooding the catalogue", behaviour.flooding)) if on]
    n = results.n_creators()
    truth = (f"Who the creators are (a population of {n:,} drawn to match the attribution run's statistics) and what "
             "counts as their true contribution (the population's own causal attribution)" if b.kind == "fitted" else
             f"Who the creators are (the {n:,} creators of the attribution run {b.run}) and what counts as their true "
             f"contribution ({results.reference or b.reference})")
    if b.attribution_snr is not None:
        truth += f"; causal schemes paid on it plus noise at a signal-to-noise ratio of {b.attribution_snr:g}"
    items = [
        ("A month, step by step, and how the arms and seeds are run", "3 Process overview and scheduling"),
        ("How the world each seed shares across arms is drawn", "5 Initialisation"),
        ("The random numbers, and why arms of one seed differ only by their rules (common random numbers)",
         "4.9 Stochasticity"),
        (f"How {sc.consumers.n:,} listeners choose what to play: taste, popularity and word of mouth",
         "7.1 Listening"),
        ("How revenue becomes the human-streams pool and the AI pool, and how each arm's schemes pay them",
         "7.2 Revenue, pools and settlement"),
        ("What creators read from the market before they decide", "7.3 What creators learn from the market"),
        (f"Creators' decisions in this run: {', '.join(choices)}", "7.4 Creators' decisions"),
    ]
    if sc.platform.ai_listening_share > 0:
        items.append(("How the AI's quality follows the catalogues it is trained on", "7.5 AI quality"))
    items += [
        (truth, "7.6 Creator populations and true contribution"),
        ("What is recorded each month, and how run-level measures and paired comparisons are made",
         "4.11 Observation"),
        ("Listener welfare and the inequality measures", "7.7 Welfare and measures"),
        ("What listening is worth to listeners in money, platform profit and total welfare"
         + (", and how listeners join and churn" if sc.demand.enabled else ""), "7.8 Demand and welfare in money"),
    ]
    if sc.fraud.on:
        items.append((f"A stream farm faking {100 * sc.fraud.fake_stream_share:g}% of all streams for AI-generated "
                      f"uploads, {100 * sc.fraud.detection_rate:g}% of them detected", "7.9 Fraud and flooding"))
    return [{"what": what, "link": _link(_ODD, heading, out_dir, docs, f"ODD {heading}")} for what, heading in items]


# ----------------------------------------------------------------------------------------- the page


def _money(x: float) -> str:
    return f"${x:,.2f}" if np.isfinite(x) else "n/a"


def _band_rows(bands: pd.DataFrame) -> list[dict]:
    rows = []
    for r in bands.itertuples():
        rows.append({
            "arm": r.arm, "band": r.band, "creators": f"{r.creators:,.0f}", "reference": _money(r.reference_month),
            "arm_month": _money(r.arm_month),
            "change": f"{'+' if r.change_month >= 0 else '-'}{_money(abs(r.change_month))}",
            "interval": f"[{r.low:+,.2f}, {r.high:+,.2f}]" if np.isfinite(r.low) else "one seed",
            "pct": f"{100 * r.change_pct:+.1f}%" if np.isfinite(r.change_pct) else "n/a",
            "verdict": r.verdict,
        })
    return rows


def _creator_rows(results: Results, table: pd.DataFrame | None) -> tuple[list[str], list[list[str]]]:
    if table is None:
        return [], []
    ref = results.reference_arm
    arms = [a for a in results.labels if a != ref]
    head = ["creator", f"{ref} ($ a month)"] + [f"{a}: change ($ a month) [95% interval]" for a in arms] \
        + [f"gone at the end under {ref} (share of seeds)"]
    rows = []
    for r in table.to_dict("records"):
        cells = [html.escape(str(r["name"])), _money(r[ref])]
        for a in arms:
            ci = f"[{r[f'{a} low']:+,.2f}, {r[f'{a} high']:+,.2f}]" if np.isfinite(r[f"{a} low"]) else ""
            mark = "" if r[f"{a} verdict"] in ("higher", "lower") else " ·"
            cells.append(f"{'+' if r[f'{a} change'] >= 0 else '-'}{_money(abs(r[f'{a} change']))} {ci}{mark}")
        cells.append(f"{100 * r[f'gone under {ref}']:.0f}%")
        rows.append(cells)
    return head, rows


def write_report(results: Results, out_dir: str | Path, docs: str | Path = DOCS) -> Path:
    """Write ``report.html`` and its PNG figures into ``out_dir``; returns the HTML path.

    ``docs``: where the report's links to the documentation point (see :func:`doc_href`).
    """
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bands = band_table(results) if len(results.labels) > 1 else pd.DataFrame()
    figures = _figures(results, out, bands)
    answer = answer_table(results)
    creators = creator_table(results)
    head, rows = _creator_rows(results, creators)
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    sc = results.scenario
    page = env.get_template(_TEMPLATE).render(
        scenario=sc,
        seeds=_seed_span(results.seeds),
        n_creators=f"{results.n_creators():,}",
        reference_arm=results.reference_arm,
        question_measures=[MEASURES[n] for n in question_measures(results)],
        answer=answer.to_dict("records") if not answer.empty else [],
        answer_summary=answer_summary(results) if not answer.empty else [],
        findings=findings(results),
        bands=_band_rows(bands) if not bands.empty else [],
        creator_head=head,
        creator_rows=rows,
        fitted=sc.source.kind != "corpus",
        table=summary_table(results).to_html(classes="summary", escape=True),
        figures=figures,
        runtime=f"{results.runtime_s:.1f}",
        reference=results.reference,
        causal_method=results.causal_method,
        payout=f"{payout_per_stream(results):.4f}",
        arms=arm_links(results, out, docs),
        mechanisms=mechanism_links(results, out, docs),
        pools_link=_link(_SCHEMES, "The two pools", out, docs, "the two pools"),
        truth_link=_link(_ODD, "7.6 Creator populations and true contribution", out, docs, "ODD 7.6"),
    )
    path = out / "report.html"
    path.write_text(page)
    return path
