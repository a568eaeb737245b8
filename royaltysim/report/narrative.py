"""The report in sentences: the answer, the findings and each paired comparison in words.

* :func:`describe_difference` -- one sentence for one paired comparison;
* :func:`answer_summary` -- the answer in one sentence per arm;
* :func:`findings` -- plain-language findings, leading with the question's measures; a difference whose
  interval contains zero is never ranked ("no detectable difference"), entries and exits are always stated;
* :func:`unallocated_findings` -- a sentence per arm and pool whose scheme left money unpaid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from royaltysim.measures import MEASURES, Measure
from royaltysim.report.tables import answer_table, band_table, question_measures
from royaltysim.report.wording import _digits, _fmt_difference, _fmt_level, _pct, _seed_span
from royaltysim.shapley import sampling_findings

if TYPE_CHECKING:
    from royaltysim.runner import Results

#: creators listed by name in the findings at most
_NAMED = 8


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
