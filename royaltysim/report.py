"""The run report: a summary table, plain-language findings and seaborn figures in one HTML page.

:func:`summary_table` condenses :class:`~royaltysim.runner.Results` to one row per scheme,
:func:`findings` turns that table into sentences (every number in them is computed here from the
run), and :func:`write_report` draws the figures (PNG files beside ``report.html``) and renders the
page from ``templates/report.html.j2``:

* ``lorenz.png`` -- Lorenz curves of creators' income over the whole run, per scheme;
* ``inequality.png`` -- Gini and top 1% / 10% shares month by month;
* ``payout_vs_contribution.png`` -- each creator's share of the AI pool against their true contribution;
* ``active.png`` -- active and opted-in creators month by month.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from royaltysim import metrics

if TYPE_CHECKING:
    from royaltysim.runner import Results

__all__ = ["summary_table", "findings", "lorenz_table", "write_report", "FIGURES"]

FIGURES = {
    "lorenz.png": "Lorenz curves of creators' income over the run",
    "inequality.png": "Inequality month by month",
    "payout_vs_contribution.png": "AI payout share vs true contribution",
    "active.png": "Active and opted-in creators month by month",
}
_TEMPLATE = "report.html.j2"


def _cumulative_income(results: Results) -> pd.DataFrame:
    """Per (scheme, creator): income over the run (income units), AI pay, mean true share; ever-active only."""
    c = results.creators
    ever = c.groupby(["scheme", "creator"])["active"].transform("max") | (c["income"] > 0)
    c = c[ever]
    return c.groupby(["scheme", "creator"], sort=False).agg(
        income=("income", "sum"), ai_pay=("ai_pay", "sum"), true_share=("true_share", "mean")
    ).reset_index()


def lorenz_table(results: Results) -> pd.DataFrame:
    """Lorenz curve points of income over the run: columns ``scheme, population_share, income_share``."""
    frames = []
    for label, g in _cumulative_income(results).groupby("scheme", sort=False):
        pop, inc = metrics.lorenz(np.clip(g["income"].to_numpy(), 0, None))
        frames.append(pd.DataFrame({"scheme": label, "population_share": pop, "income_share": inc}))
    return pd.concat(frames, ignore_index=True)


def summary_table(results: Results) -> pd.DataFrame:
    """One row per scheme: inequality of income over the run, incentives, money, welfare, misallocation."""
    m = results.model
    cum = _cumulative_income(results)
    rows = []
    for label in results.labels:
        g = m[m["scheme"] == label].sort_values("step")
        inc = np.clip(cum.loc[cum["scheme"] == label, "income"].to_numpy(), 0, None)
        ai = cum.loc[cum["scheme"] == label, "ai_pay"].to_numpy()
        first, last = g.iloc[0], g.iloc[-1]
        rows.append(
            {
                "scheme": label,
                "human pool": last["human_scheme"],
                "AI pool": last["ai_scheme"],
                "gini": metrics.gini(inc),
                "top 1% share": metrics.top_share(inc, 0.01),
                "top 10% share": metrics.top_share(inc, 0.10),
                "AI pool top 10% share": metrics.top_share(np.clip(ai, 0, None), 0.10),
                "share below line (last month)": last["share_below_line"],
                "active creators (start)": int(first["active_creators"] + first["exits"] - first["entries"]),
                "active creators (end)": int(last["active_creators"]),
                "entries": int(g["entries"].sum()),
                "exits": int(g["exits"].sum()),
                "opt-outs": int(g["opt_outs"].sum()),
                "opted in (end)": int(last["opted_in"]),
                "new works": int(g["new_works"].sum()),
                "flooders (end)": int(last["flooders"]),
                "imitation drift (end)": last["imitation_drift"],
                "AI quality (end)": last["ai_quality"],
                "platform margin": g["platform_margin"].mean(),
                "consumer welfare": g["consumer_welfare"].mean(),
                "AI misallocation": g["ai_misallocation"].mean(),
                "AI rank agreement": g["ai_rank_agreement"].mean(),
            }
        )
    return pd.DataFrame(rows).set_index("scheme")


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def findings(results: Results, table: pd.DataFrame | None = None) -> list[str]:
    """Plain-language findings, each computed from the run; the first arm is the comparison point."""
    t = summary_table(results) if table is None else table
    labels = list(t.index)
    base = labels[0]
    out: list[str] = []
    n_creators = results.creators["creator"].nunique()
    months = int(results.model["step"].max())
    out.append(
        f"{len(labels)} scheme(s) compared over {months} months with {n_creators} creators and "
        f"{results.scenario.consumers.n:,} listeners, all on the same seed ({results.scenario.seed})."
    )
    m = results.model
    ai_share = m["ai_pool"].sum() / (m["ai_pool"] + m["human_pool"]).sum()
    out.append(
        f"The AI pool is {_pct(ai_share)} of all royalties over the run (all schemes together); the rest is "
        "the human-streams pool, so differences in total income are driven by the AI pool only as far as it "
        "is large."
    )
    for label in labels[1:]:
        a, b = t.loc[label], t.loc[base]
        out.append(
            f"{label} pays the top 10% of creators {_pct(a['top 10% share'])} of all income vs "
            f"{_pct(b['top 10% share'])} under {base} (Gini {a['gini']:.2f} vs {b['gini']:.2f}); "
            f"of the AI pool alone, the top 10% get {_pct(a['AI pool top 10% share'])} vs "
            f"{_pct(b['AI pool top 10% share'])}."
        )
    if len(labels) > 1:
        most, least = t["gini"].idxmin(), t["gini"].idxmax()
        out.append(f"Income is most equal under {most} (Gini {t.loc[most, 'gini']:.2f}) and least equal under "
                   f"{least} (Gini {t.loc[least, 'gini']:.2f}).")
        best = t["AI misallocation"].idxmin()
        worst = t["AI misallocation"].idxmax()
        out.append(
            f"Measured against true contribution ({results.reference}), {best} misallocates "
            f"{_pct(t.loc[best, 'AI misallocation'])} of the AI pool on average and {worst} "
            f"{_pct(t.loc[worst, 'AI misallocation'])} (share of the money that would have to move)."
        )
        end = t["active creators (end)"]
        if end.max() != end.min():
            out.append(f"{end.idxmax()} keeps the most creators active ({end.max()}), {end.idxmin()} the fewest "
                       f"({end.min()}), after {int(t['exits'].max())} exits at most.")
        else:
            out.append(f"Every scheme ends with {end.iloc[0]} active creators.")
    b = results.scenario.behaviour
    if b.opt_out:
        o = t["opted in (end)"]
        out.append(f"Opted in to AI training at the end: " + ", ".join(f"{k} {v}" for k, v in o.items())
                   + f" (AI quality {', '.join(f'{k} {v:.2f}' for k, v in t['AI quality (end)'].items())}).")
    if b.flooding:
        f = t["flooders (end)"]
        flooding = ", ".join(f"{k} {v}" for k, v in f.items())
        out.append(f"Creators flooding the catalogue in the last month: {flooding}.")
    if b.imitation:
        d = t["imitation drift (end)"]
        out.append("Imitation drift toward the AI's style at the end (0 own style, 1 the AI's): "
                   + ", ".join(f"{k} {v:.2f}" for k, v in d.items()) + ".")
    w = t["consumer welfare"]
    if len(labels) > 1:
        out.append(f"Consumer welfare is highest under {w.idxmax()} ({w.max():.3f}) and lowest under {w.idxmin()} "
                   f"({w.min():.3f}); the platform keeps {_pct(t['platform margin'].min())} to "
                   f"{_pct(t['platform margin'].max())} of revenue.")
    out.append(
        "This is one seed: differences of a creator or two, or of a few percentage points, may be noise "
        "(replicates with confidence intervals are a separate sweep)."
    )
    return out


def _figures(results: Results, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    order = results.labels
    m = results.model

    lz = lorenz_table(results)
    fig, ax = plt.subplots(figsize=(6, 5))
    sns.lineplot(data=lz, x="population_share", y="income_share", hue="scheme", hue_order=order, ax=ax,
                 estimator=None, sort=False)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="equality")
    ax.set(xlabel="share of creators (poorest first)", ylabel="share of income over the run",
           title="Lorenz curves")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "lorenz.png", dpi=110)
    plt.close(fig)

    long = m.melt(id_vars=["scheme", "step"], value_vars=["gini", "top10_share", "top1_share"],
                  var_name="measure", value_name="value")
    grid = sns.relplot(data=long, x="step", y="value", hue="scheme", hue_order=order, col="measure",
                       kind="line", height=3.2, aspect=1.1, facet_kws={"sharey": False})
    grid.set_axis_labels("month", "")
    grid.figure.suptitle("Inequality of monthly income", y=1.03)
    grid.savefig(out / "inequality.png", dpi=110)
    plt.close(grid.figure)

    cum = _cumulative_income(results)
    totals = cum.groupby("scheme")["ai_pay"].transform("sum").replace(0, np.nan)
    cum = cum.assign(ai_share=(cum["ai_pay"] / totals).fillna(0.0))
    fig, ax = plt.subplots(figsize=(6, 5))
    sns.scatterplot(data=cum, x="true_share", y="ai_share", hue="scheme", hue_order=order, ax=ax, alpha=0.7)
    hi = float(max(cum["true_share"].max(), cum["ai_share"].max(), 1e-9))
    ax.plot([0, hi], [0, hi], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="true contribution share", ylabel="share of the AI pool over the run")
    ax.set_title("AI payout vs true contribution\n" + textwrap.fill(f"({results.reference})", 70), fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "payout_vs_contribution.png", dpi=110)
    plt.close(fig)

    long = m.melt(id_vars=["scheme", "step"], value_vars=["active_creators", "opted_in"],
                  var_name="count", value_name="creators")
    grid = sns.relplot(data=long, x="step", y="creators", hue="scheme", hue_order=order, col="count",
                       kind="line", height=3.2, aspect=1.2)
    grid.set_axis_labels("month", "creators")
    grid.savefig(out / "active.png", dpi=110)
    plt.close(grid.figure)


def write_report(results: Results, out_dir: str | Path) -> Path:
    """Write ``report.html`` and its PNG figures into ``out_dir``; returns the HTML path."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _figures(results, out)
    table = summary_table(results)
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    html = env.get_template(_TEMPLATE).render(
        scenario=results.scenario,
        findings=findings(results, table),
        table=table.T.to_html(classes="summary", float_format=lambda x: f"{x:.3f}"),
        figures=FIGURES,
        runtime=f"{results.runtime_s:.1f}",
        reference=results.reference,
    )
    path = out / "report.html"
    path.write_text(html)
    return path
