"""The sweep report: each metric's mean and 95% CI by scheme across the swept parameters.

``write_sweep_report(result, out_dir)`` writes ``sweep_report.html`` with PNG figures beside it:

* for each numeric swept parameter, line plots of Gini, AI-pool misallocation and active creators
  (mean over replicates, shaded 95% CI; other parameters averaged over) with one line per scheme;
* for a two-parameter grid, a heat map per scheme of the mean Gini;
* a table of every (scheme, point, metric) mean with its CI, and findings computed from the numbers;
* when the sweep varies ``source.attribution_snr`` and the attribution run has been evaluated against its
  retraining ground truth, each real method's measured creator-level SNR
  (``RUN/evaluation/creator_snr.parquet``, written by ``royaltysim attribution evaluate``) marked on the
  SNR plots, and what each scheme's curves give at those SNRs (interpolated on the log-SNR axis).
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from royaltysim.sweep import SweepResult, summarise  # noqa: E402

__all__ = ["write_sweep_report", "PLOT_METRICS", "SNR_PARAM", "measured_snr_markers"]

SNR_PARAM = "source.attribution_snr"
SNR_FILE = Path("evaluation") / "creator_snr.parquet"
# methods worth a marker (the rest of the evaluation's table is ridge variants and per-seed baselines)
MARKED = ("trak_models", "trak", "trak_1ckpt", "tracin", "grad_dot", "grad_cos", "dattri_trak", "catalogue_size", "sim_pitch_hist",
          "sim_interval_ngram", "sim_embedding")


def measured_snr_markers(run: str | Path) -> pd.DataFrame:
    """Each real method's measured creator-level SNR for an attribution run (empty when not evaluated).

    Columns: method, snr, snr_low, snr_high (95% CI), creators (how many were left out to measure it).
    """
    path = Path(run) / SNR_FILE
    cols = ["method", "snr", "snr_low", "snr_high", "creators"]
    if not path.is_file():
        return pd.DataFrame(columns=cols)
    table = pd.read_parquet(path)
    return table[table["method"].isin(MARKED) & table["snr"].notna()][cols].reset_index(drop=True)

PLOT_METRICS = {"gini": "Gini of creator income", "ai_misallocation": "AI-pool misallocation",
                "active_creators": "active creators",
                # what the platform gets: its margin, and the training data (and AI quality) that opt-outs cost it
                "platform_margin": "platform margin", "opted_in": "creators in the training set", "ai_quality": "AI quality"}


def _numeric(table: pd.DataFrame, params: list[str]) -> list[str]:
    return [p for p in params if pd.api.types.is_numeric_dtype(table[p]) and table[p].nunique() > 1]


def _line_plots(last: pd.DataFrame, param: str, out: Path, markers: pd.DataFrame | None = None) -> str:
    metrics = [m for m in PLOT_METRICS if m in last.columns and (m in list(PLOT_METRICS)[:3] or last[m].nunique() > 1)]
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    axes = [list(grid.ravel())]
    for ax in axes[0][len(metrics):]:
        ax.remove()
    axes = [axes[0][: len(metrics)]]
    for ax, metric in zip(axes[0], metrics):
        sns.lineplot(data=last, x=param, y=metric, hue="scheme", errorbar=("ci", 95), marker="o", ax=ax,
                     n_boot=500, seed=0)
        values = last[param].astype(float)
        if values.min() > 0 and values.max() / values.min() >= 20:
            ax.set_xscale("log")  # e.g. signal-to-noise ratios spanning decades
        ax.set_title(PLOT_METRICS[metric])
        if markers is not None and len(markers):
            lo, hi = values.min(), values.max()
            for r in markers.itertuples():
                x = float(np.clip(r.snr, lo, hi))  # off the swept range: drawn at its edge, labelled with the value
                ax.axvline(x, color="0.45", ls=":", lw=1)
                if metric == metrics[0]:
                    ax.annotate(f"{r.method} {r.snr:.2g}", (x, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                                fontsize=7, va="top", ha="right", color="0.3", xytext=(-2, -2),
                                textcoords="offset points")
        ax.set_xlabel(param)
        ax.set_ylabel("")
        if ax is not axes[0][-1] and ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.tight_layout()
    name = f"sweep_{param.replace('.', '_').replace('[', '_').replace(']', '')}.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def _heatmaps(last: pd.DataFrame, x: str, y: str, out: Path, metric: str = "gini") -> str:
    schemes = list(dict.fromkeys(last["scheme"]))
    fig, axes = plt.subplots(1, len(schemes), figsize=(3.8 * len(schemes), 3.3), squeeze=False)
    means = last.groupby(["scheme", y, x])[metric].mean()
    vmin, vmax = means.min(), means.max()
    for ax, scheme in zip(axes[0], schemes):
        grid = means.loc[scheme].unstack(x)
        sns.heatmap(grid, ax=ax, annot=True, fmt=".3f", vmin=vmin, vmax=vmax, cmap="viridis", cbar=ax is axes[0][-1])
        ax.set_title(f"{scheme}: mean {metric}")
    fig.tight_layout()
    name = f"sweep_heatmap_{metric}.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def _at_measured_snr(summary: pd.DataFrame, markers: pd.DataFrame) -> list[str]:
    """Each scheme's mean misallocation and platform margin at each method's measured SNR (log-SNR interpolation)."""
    sub = summary[summary["metric"].isin(["ai_misallocation", "platform_margin"])]
    if SNR_PARAM not in sub.columns or markers.empty:
        return []
    curves = sub.groupby(["metric", "scheme", SNR_PARAM])["mean"].mean()
    grid = np.sort(sub[SNR_PARAM].astype(float).unique())
    if len(grid) < 2:
        return []
    lines = []
    schemes = list(dict.fromkeys(sub["scheme"]))
    for r in markers.itertuples():
        if not np.isfinite(r.snr) or r.snr <= 0:
            where = "below" if np.isfinite(r.snr) else "above"
            lines.append(f"{html.escape(r.method)}: measured SNR {r.snr:.3g} lies {where} any swept level.")
            continue
        x = np.log(np.clip(r.snr, grid[0], grid[-1]))
        def at(metric: str, scheme: str) -> float:
            c = curves.loc[(metric, scheme)].reindex(grid)
            return float(np.interp(x, np.log(grid), c.to_numpy()))
        mis = {sc: at("ai_misallocation", sc) for sc in schemes}
        best = min(mis, key=mis.get)
        edge = "" if grid[0] <= r.snr <= grid[-1] else f" (outside the swept {grid[0]:g}-{grid[-1]:g}: read at the edge)"
        lines.append(
            f"At the SNR measured for <b>{html.escape(r.method)}</b>, {r.snr:.2f} [{r.snr_low:.2f}, {r.snr_high:.2f}]"
            f"{edge}, the least misallocating scheme is <b>{html.escape(str(best))}</b>; AI-pool misallocation "
            + ", ".join(f"{html.escape(str(sc))} {v:.3f}" for sc, v in mis.items())
            + (("; platform margin " + ", ".join(f"{html.escape(str(sc))} {at('platform_margin', sc):.4g}" for sc in schemes))
               if "platform_margin" in sub["metric"].values else "")
            + "."
        )
    return lines


def _findings(summary: pd.DataFrame, params: list[str]) -> list[str]:
    lines = []
    for param in params:
        if param not in summary.columns:
            continue
        sub = summary[summary["metric"] == "gini"]
        for scheme, g in sub.groupby("scheme"):
            by = g.groupby(param)["mean"].mean().sort_index()
            if len(by) < 2 or not pd.api.types.is_numeric_dtype(by.index):
                continue
            lo, hi = by.index[0], by.index[-1]
            lines.append(
                f"Under <b>{html.escape(str(scheme))}</b>, raising <code>{html.escape(param)}</code> from {lo:g} to "
                f"{hi:g} moves the mean Gini from {by.iloc[0]:.3f} to {by.iloc[-1]:.3f}."
            )
    lines += _crossings(summary, params, "ai_misallocation", "misallocates less")
    lines += _crossings(summary, params, "platform_margin", "leaves the platform a smaller margin")
    overall = summary[summary["metric"] == "ai_misallocation"].groupby("scheme")["mean"].mean().sort_values()
    if len(overall) > 1:
        lines.append(
            f"Averaged over the sweep, <b>{html.escape(str(overall.index[0]))}</b> pays the AI pool closest to "
            f"the reference contribution (misallocation {overall.iloc[0]:.3f}) and "
            f"<b>{html.escape(str(overall.index[-1]))}</b> furthest from it ({overall.iloc[-1]:.3f})."
        )
    return lines


def _crossings(summary: pd.DataFrame, params: list[str], metric: str, verb: str) -> list[str]:
    """Where two schemes' curves of ``metric`` cross along a swept parameter (``verb`` says what the lower one does)."""
    lines = []
    sub = summary[summary["metric"] == metric]
    for param in params:
        if param not in sub.columns or not pd.api.types.is_numeric_dtype(sub[param]):
            continue
        curves = sub.groupby(["scheme", param])["mean"].mean().unstack(param)
        if curves.shape[1] < 2:
            continue
        xs = list(curves.columns)
        schemes = list(curves.index)
        for i, a in enumerate(schemes):
            for b in schemes[i + 1 :]:
                diff = (curves.loc[a] - curves.loc[b]).to_numpy()
                for k in range(len(xs) - 1):
                    if np.sign(diff[k]) != np.sign(diff[k + 1]) and diff[k] != 0 and diff[k + 1] != 0:
                        low, high = (a, b) if diff[k] < 0 else (b, a)
                        lines.append(
                            f"<b>{html.escape(str(low))}</b> {verb} than <b>{html.escape(str(high))}</b> at "
                            f"<code>{html.escape(param)}</code> = {xs[k]:g}, and the order flips by {xs[k + 1]:g} "
                            f"({metric}: {curves.loc[low, xs[k]]:.3f} vs {curves.loc[high, xs[k]]:.3f}, then "
                            f"{curves.loc[low, xs[k + 1]]:.3f} vs {curves.loc[high, xs[k + 1]]:.3f})."
                        )
    return lines


def write_sweep_report(
    result: SweepResult, out_dir: str | Path | None = None, title: str = "Sweep", run: str | Path | None = None
) -> Path:
    """Write ``sweep_report.html`` (and its PNGs) into ``out_dir`` (default: the sweep folder).

    ``run``: the attribution run the scenario reads; its measured SNRs are marked when the sweep varies
    ``source.attribution_snr`` (see :func:`measured_snr_markers`).
    """
    markers = measured_snr_markers(run) if run is not None and SNR_PARAM in result.params else pd.DataFrame()
    out = Path(out_dir or result.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = result.table
    if table.empty:
        body = "<p>No run finished; see failures.json.</p>"
        figures: list[str] = []
        findings: list[str] = []
        summary = pd.DataFrame()
    else:
        last = table[table["step"] == table["step"].max()]
        numeric = _numeric(last, result.params)
        figures = [_line_plots(last, p, out, markers if p == SNR_PARAM else None) for p in numeric]
        if len(numeric) == 2:
            figures.append(_heatmaps(last, numeric[0], numeric[1], out))
        summary = result.summary if not result.summary.empty else summarise(table, result.params)
        findings = _findings(summary, numeric)
        if SNR_PARAM in numeric:
            findings += _at_measured_snr(summary, markers)
            if markers.empty:
                findings.append(
                    "No measured SNR to mark: evaluate the attribution run against its retraining ground truth "
                    "(<code>royaltysim attribution groundtruth RUN</code>, then <code>royaltysim attribution evaluate RUN</code>)."
                )
        shown = summary[summary["metric"].isin(list(PLOT_METRICS) + ["top10_share", "consumer_welfare"])]
        body = shown.round(4).to_html(index=False, classes="summary", na_rep="")
    failures = "".join(
        f"<li>seed {f['seed']}, {html.escape(str(f['params']))}: {html.escape(f['error'])}</li>" for f in result.failures
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;line-height:1.45}}
table.summary{{border-collapse:collapse;font-size:0.85em}}table.summary td,table.summary th{{border:1px solid #ccc;padding:2px 6px}}
img{{max-width:100%}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{result.total} runs ({result.total - len(result.failures)} finished, {len(result.failures)} failed);
swept: {", ".join(f"<code>{html.escape(p)}</code>" for p in result.params) or "nothing (replicates only)"}.
Means over replicate seeds with 95% confidence intervals (Student t for the table, bootstrap for the bands),
at the final month. Every number comes from <code>sweep.parquet</code> beside this page.</p>
<h2>Findings</h2><ul>{"".join(f"<li>{f}</li>" for f in findings) or "<li>No numeric parameter was swept.</li>"}</ul>
{"".join(f'<p><img src="{f}"></p>' for f in figures)}
<h2>Summary</h2>{body}
{"<h2>Failed runs</h2><ul>" + failures + "</ul>" if failures else ""}
</body></html>"""
    path = out / "sweep_report.html"
    path.write_text(page)
    return path
