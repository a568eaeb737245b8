"""The report's figures (PNG, drawn with matplotlib and seaborn; :data:`FIGURES` names and captions them).

* ``answer.png`` -- the paired difference of each question measure, arm by arm, with its interval;
* ``bands.png`` -- the change in each rank band's income against the reference arm;
* ``months.png`` -- monthly inequality and active creators as differences from the reference arm;
* ``payout_vs_contribution.png`` -- each creator's share of the AI pool against their true contribution;
* ``lorenz.png`` -- Lorenz curves of whole-run income (mean over seeds).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from royaltysim.measures import MEASURES, Measure
from royaltysim.report.tables import lorenz_table, question_measures

if TYPE_CHECKING:
    from royaltysim.runner import Results

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
