"""The fit's figure: ``fit.png``, what ``royaltysim calibrate --fit`` shows beside its tables.

One function, :func:`plot_fit`, draws a finished :class:`~royaltysim.fit.FitResult` in two panels:

* left, one row per fitted fact: the simulated value at the start (the scenario's own values) and at the fit,
  as the error in half-widths of the fact's published tolerance band, ``(simulated - published) / h``. The
  band is the shaded strip from -1 to 1, the published value the line at 0, and a row's term of the distance
  is the square of where its point lies, so every fact reads on the same scale whatever its unit. The
  published value with its band and the simulated value at the fit are also printed on each fact's own scale
  at the right;
* right, the distance of every evaluation of the optimiser (``trace.parquet``), the main fit and each
  bootstrap refit on other seeds, with the best found so far as a step line.

Plotting follows the rest of royaltysim's reports: matplotlib on the Agg backend, seaborn's ``whitegrid``
style (as a context, so importing or calling this leaves the caller's matplotlib settings alone).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from royaltysim.fit import FitResult

__all__ = ["plot_fit"]

#: the error axis always shows at least this many half-widths either side, so the band reads as a band
_MIN_REACH = 2.5


def _on_scale(x: float) -> str:
    return f"{x:.3g}"


def _facts_panel(ax, facts) -> None:  # noqa: ANN001 - matplotlib Axes, pandas DataFrame
    n = len(facts)
    y = np.arange(n)[::-1]
    h = facts["tolerance"].to_numpy(float)
    z_fit = (facts["simulated"].to_numpy(float) - facts["published"].to_numpy(float)) / h
    z_start = (facts["simulated_start"].to_numpy(float) - facts["published"].to_numpy(float)) / h
    sd = facts["seed_sd"].to_numpy(float) / h

    ax.axvspan(-1, 1, color="#55a868", alpha=0.15, lw=0, label="published tolerance band")
    ax.axvline(0, color="#55a868", lw=1.2, label="published value")
    for yi, a, b in zip(y, z_start, z_fit, strict=True):
        if abs(b - a) > 0.05:
            ax.annotate("", xy=(b, yi), xytext=(a, yi),
                        arrowprops={"arrowstyle": "->", "color": "#999", "lw": 0.9, "shrinkA": 4, "shrinkB": 5})
    # a ring larger than the fit's dot, so a fact the fit did not move still shows both
    ax.scatter(z_start, y, s=110, facecolors="white", edgecolors="#777", lw=1.3, zorder=3,
               label="simulated at the start (scenario's values)")
    has_sd = np.isfinite(sd)
    ax.errorbar(z_fit, y, xerr=np.where(has_sd, sd, 0.0), fmt="o", ms=7, color="#4c72b0", ecolor="#4c72b0",
                elinewidth=1, capsize=3 if has_sd.any() else 0, zorder=4,
                label="simulated at the fit" + (" (± sd over its seeds)" if has_sd.any() else ""))
    reach = max(_MIN_REACH, float(np.nanmax(np.abs(np.r_[z_fit, z_start, z_fit + sd, z_fit - sd]))) * 1.12)
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_yticks(y, [textwrap.fill(lbl.replace("$", r"\$"), 38) for lbl in facts["label"]], fontsize=8.5)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("(simulated - published) / half-width of the band   (a fact's distance term is its square)",
                  fontsize=9)
    for yi, r in zip(y, facts.itertuples(), strict=True):
        ax.annotate(f"{_on_scale(r.published)} [{_on_scale(r.low)}, {_on_scale(r.high)}]  fit {_on_scale(r.simulated)}",
                    (1.0, yi), xycoords=("axes fraction", "data"), xytext=(6, 0), textcoords="offset points",
                    va="center", fontsize=7.5, color="#444")
    ax.annotate("published [band]  simulated, on each fact's scale", (1.0, 1.0), xycoords="axes fraction",
                xytext=(6, 4), textcoords="offset points", va="bottom", fontsize=7.5, color="#444")


def _trace_panel(ax, trace, failed: float) -> None:  # noqa: ANN001 - matplotlib Axes, pandas DataFrame
    ok = trace[trace["distance"] < failed]
    refits = max(int(ok["fit"].max()) if len(ok) else 0, 1)
    for fit_id, rows in ok.groupby("fit", sort=True):
        rows = rows.sort_values("evaluation")
        main = fit_id == 0
        # refits in greys from dark to light, so each line can be told from the next
        colour = "#4c72b0" if main else str(0.35 + 0.4 * (fit_id - 1) / refits)
        who = f"fit on seed{'s' if ',' in rows['seeds'].iloc[0] else ''} {rows['seeds'].iloc[0]}"
        ax.scatter(rows["evaluation"], rows["distance"], s=22 if main else 14, color=colour, zorder=3 if main else 2)
        ax.step(rows["evaluation"], rows["distance"].cummin(), where="post", color=colour, lw=1.6 if main else 1,
                label=(who + " (main)") if main else ("refit " + who.removeprefix("fit ")))
    n_failed = int((trace["distance"] >= failed).sum())
    d = ok["distance"].to_numpy(float)
    if d.size and d.min() > 0 and d.max() / d.min() > 30:
        ax.set_yscale("log")
    ax.set_xlabel("evaluation (one candidate, all its seeds)", fontsize=9)
    ax.set_ylabel("distance", fontsize=9)
    ax.set_title("Distance at each evaluation\nof the optimiser" + (f" ({n_failed} failed not shown)"
                                                                    if n_failed else ""), fontsize=10)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7.5, title="best so far", title_fontsize=7.5)


def plot_fit(result: FitResult, path: str | Path) -> Path:
    """Draw ``result`` (facts at the start and at the fit; distance over the evaluations) into one PNG at ``path``.

    The PNG is written atomically (:func:`royaltysim.atomic.atomic_file`): a reader sees no figure or the
    whole figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from royaltysim.atomic import atomic_file
    from royaltysim.fit import FAILED_DISTANCE

    path = Path(path)
    facts = result.facts
    n = len(facts)
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        fig, (left, right) = plt.subplots(1, 2, figsize=(14.5, 2.6 + 0.42 * n), layout="constrained",
                                          gridspec_kw={"width_ratios": [2.3, 1]})
        _facts_panel(left, facts)
        left.set_title(f"Facts at the start and at the fit: distance {result.start_distance:.3g} -> "
                       f"{result.distance:.3g} over {n} facts", fontsize=10)
        _trace_panel(right, result.trace, FAILED_DISTANCE)
        fig.legend(*left.get_legend_handles_labels(), loc="outside lower left", ncol=4, fontsize=8, frameon=False)
        estimates = "; ".join(f"{r.param} = {r.estimate:.4g} (start {r.start:.4g}, range {r.low:g}-{r.high:g}; "
                              f"{result.spread(r.param)})" for r in result.params.itertuples())
        fig.suptitle(textwrap.fill(f"Fit: {estimates}", 150) + f"\nseeds {result.seeds}, {result.simulations} "
                     f"simulations, {result.runtime_s:.0f} s, {result.date}", fontsize=10)
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
    return path
