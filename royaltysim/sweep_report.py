"""The sweep report: run-level measures by scheme across the swept parameters, never pooled over the others.

``write_sweep_report(result, out_dir)`` writes ``sweep_report.html`` with PNG figures beside it. Every
number is a run-level measure of :mod:`royaltysim.measures` (``gini_income_run`` is the Gini of each
creator's whole-run income, as in a run report), from the sweep's ``measures.parquet``:

* for each numeric swept parameter, line plots of the plotted measures by scheme (mean over replicate
  seeds, 95% interval kept inside the measure's bounds), one column of panels for each combination of the
  *other* swept parameters: a curve is never averaged over another parameter;
* for a two-parameter grid, a heat map per scheme of the mean ``gini_income_run``;
* findings computed from the numbers: which arms a parameter cannot affect (their runs are identical at
  every value); for each scheme, the change from the lowest to the highest value of a parameter, paired
  over seeds (every point of a sweep runs the same seeds) with its interval, at each setting of the other
  parameters; where two schemes trade places, only when the difference is detectable on both sides;
* when the sweep varies ``source.attribution_snr`` and the attribution run has been evaluated against its
  retraining ground truth, every method's measured creator-level SNR
  (``RUN/evaluation/creator_snr.parquet``, written by ``royaltysim attribution evaluate``) marked on the
  SNR plots, the run's best method (``best_method.yaml``, what ``causal_method: best`` pays on) highlighted,
  and what each scheme's curves give at the SNRs of the main methods and the best one (interpolated on the
  log-SNR axis).
"""

from __future__ import annotations

import html
import itertools
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from royaltysim.measures import MEASURES, sweep_measures  # noqa: E402
from royaltysim.stats import mean_interval, paired_difference, verdict  # noqa: E402
from royaltysim.sweep import SweepResult  # noqa: E402

__all__ = ["write_sweep_report", "PLOT_MEASURES", "SNR_PARAM", "measured_snr_markers", "sweep_summary",
           "could_not_matter"]

SNR_PARAM = "source.attribution_snr"
SNR_FILE = Path("evaluation") / "creator_snr.parquet"
# methods whose SNR the findings read the curves at (every method is marked on the plots), besides the best one
MARKED = ("trak_models", "trak", "trak_1ckpt", "tracin", "grad_dot", "grad_cos", "dattri_trak", "catalogue_size", "sim_pitch_hist",
          "sim_interval_ngram", "sim_embedding")


def measured_snr_markers(run: str | Path) -> pd.DataFrame:
    """Every method's measured creator-level SNR for an attribution run (empty when not evaluated), but the
    pooled random baseline (0 by construction).

    Columns: method, snr, snr_low, snr_high (95% CI), creators (how many were left out to measure it), best (the
    method the run's ``best_method.yaml`` names: what ``causal_method: best`` pays on).
    """
    from attribution.best_method import BestMethodError, read_best_method

    path = Path(run) / SNR_FILE
    cols = ["method", "snr", "snr_low", "snr_high", "creators", "best"]
    if not path.is_file():
        return pd.DataFrame(columns=cols)
    table = pd.read_parquet(path)
    try:
        best = read_best_method(run, check_outputs=False)
    except BestMethodError:
        best = None
    table["best"] = table["method"] == (best.method if best is not None else None)
    return table[(table["method"] != "random") & table["snr"].notna()][cols].reset_index(drop=True)

#: run-level measures plotted (the first three always, the rest when they vary)
PLOT_MEASURES = ["gini_income_run", "ai_misallocation_month_mean", "creators_active_end",
                 # what the platform gets: its margin, and the training data (and AI quality) that opt-outs cost it
                 "platform_margin_month_mean", "opted_in_end", "ai_quality_end"]
#: the measures the findings follow unless the scenario's `compare:` names others
FINDING_MEASURES = ["gini_income_run", "ai_misallocation_month_mean"]


def _numeric(table: pd.DataFrame, params: list[str]) -> list[str]:
    return [p for p in params if pd.api.types.is_numeric_dtype(table[p]) and table[p].nunique() > 1]


def _swept(table: pd.DataFrame, params: list[str]) -> list[str]:
    return [p for p in params if p in table.columns and table[p].nunique() > 1]


def _slug(param: str) -> str:
    return param.replace(".", "_").replace("[", "_").replace("]", "")


def _title(name: str) -> str:
    label = MEASURES[name].label
    return label[0].upper() + label[1:]


def sweep_summary(measures: pd.DataFrame, params: list[str], names: list[str] | None = None) -> pd.DataFrame:
    """Each measure's mean over seeds with its 95% interval (inside the measure's bounds) by scheme and point.

    Columns: ``scheme``, the parameters, ``measure, mean, low, high, n``.
    """
    names = names or [m for m in MEASURES if m in measures.columns]
    keys = ["scheme", *[p for p in params if p in measures.columns]]
    rows = []
    for key, g in measures.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        for name in names:
            iv = mean_interval(g[name].to_numpy(dtype=float), bounds=MEASURES[name].bounds)
            rows.append({**dict(zip(keys, key)), "measure": name, "mean": iv.estimate, "low": iv.low,
                         "high": iv.high, "n": iv.n})
    return pd.DataFrame(rows)


def could_not_matter(measures: pd.DataFrame, params: list[str], names: list[str] | None = None) -> dict[str, list[str]]:
    """For each swept parameter, the schemes whose every measure is identical at each of its values, seed by
    seed and at every setting of the other parameters: the parameter cannot affect them."""
    names = names or [m for m in MEASURES if m in measures.columns]
    out: dict[str, list[str]] = {}
    swept = _swept(measures, params)
    for param in swept:
        others = [p for p in swept if p != param]
        idle = []
        for scheme, g in measures.groupby("scheme", sort=False):
            groups = g.groupby(["seed", *others], dropna=False) if others else g.groupby("seed")
            if all(len(sub) > 1 and np.allclose(sub[names].to_numpy(float), sub[names].to_numpy(float)[0], rtol=0,
                                                atol=1e-12, equal_nan=True) for _, sub in groups):
                idle.append(str(scheme))
        if idle:
            out[param] = idle
    return out


def _settings(measures: pd.DataFrame, others: list[str]) -> list[dict]:
    if not others:
        return [{}]
    combos = measures[others].drop_duplicates().sort_values(others)
    return [dict(zip(others, row)) for row in combos.itertuples(index=False)]


def _where(frame: pd.DataFrame, setting: dict) -> pd.DataFrame:
    for k, v in setting.items():
        frame = frame[frame[k] == v]
    return frame


def _setting_text(setting: dict) -> str:
    return ", ".join(f"{k} = {v:g}" if isinstance(v, (int, float)) else f"{k} = {v}" for k, v in setting.items())


def _line_plots(measures: pd.DataFrame, param: str, params: list[str], names: list[str], out: Path,
                markers: pd.DataFrame | None = None, n_creators: int | None = None) -> str:
    """Rows: measures; columns: each setting of the other swept parameters (never pooled)."""
    others = [p for p in _swept(measures, params) if p != param]
    settings = _settings(measures, others)
    schemes = list(dict.fromkeys(measures["scheme"]))
    summary = sweep_summary(measures, [param, *others], names)
    rows, cols = len(names), len(settings)
    fig, grid = plt.subplots(rows, cols, figsize=(3.9 * cols + 0.6, 2.9 * rows + 0.4), squeeze=False, sharex=True)
    values = measures[param].astype(float)
    log = values.min() > 0 and values.max() / values.min() >= 20  # e.g. signal-to-noise ratios spanning decades
    for r, name in enumerate(names):
        m = MEASURES[name]
        k = 100.0 if m.kind == "share" else 1.0
        for c, setting in enumerate(settings):
            ax = grid[r][c]
            sub = _where(summary[summary["measure"] == name], setting)
            for i, scheme in enumerate(schemes):
                g = sub[sub["scheme"] == scheme].sort_values(param)
                x = g[param].astype(float).to_numpy()
                ax.plot(x, g["mean"] * k, marker="o", ms=3.5, color=f"C{i}", label=str(scheme))
                if np.isfinite(g["low"]).all():
                    ax.fill_between(x, g["low"] * k, g["high"] * k, color=f"C{i}", alpha=0.18, lw=0)
            if log:
                ax.set_xscale("log")
            # axes that do not magnify small differences: a share or index in [0, 1] on its whole range, a count of
            # creators from 0 to the population, any other share at least 10 percentage points tall
            if m.bounds[0] is not None and m.bounds[1] is not None and m.kind in ("share", "index") and m.bounds[0] >= 0:
                ax.set_ylim(m.bounds[0] * k, m.bounds[1] * k)
            elif m.unit == "creators" and n_creators:
                ax.set_ylim(0, n_creators * 1.02)
            elif m.kind == "share":
                low, high = ax.get_ylim()
                if high - low < 10:
                    mid = (low + high) / 2
                    ax.set_ylim(mid - 5, mid + 5)
            if markers is not None and len(markers):
                lo, hi = values.min(), values.max()
                named = _labelled(markers, lo, hi, log)
                for mk in markers.itertuples():
                    x = float(np.clip(mk.snr, lo, hi))  # off the swept range: drawn at its edge, labelled with the value
                    color = "C3" if mk.best else "0.45"
                    ax.axvline(x, color=color, ls="-" if mk.best else ":", lw=1.4 if mk.best else 0.8)
                    if r == 0 and mk.method in named:
                        ax.annotate(f"{mk.method} {mk.snr:.2g}" + (" (best)" if mk.best else ""), (x, 1.0),
                                    xycoords=("data", "axes fraction"), rotation=90, fontsize=6 if not mk.best else 7,
                                    va="top", ha="right", color="C3" if mk.best else "0.3", xytext=(-2, -2),
                                    textcoords="offset points", fontweight="bold" if mk.best else "normal")
            title = _title(name) + (f"\n{_setting_text(setting)}" if setting else "")
            ax.set_title("\n".join(textwrap.wrap(title, 46)), fontsize=9)
            ax.set_ylabel(m.unit.split(" (")[0] + (" (%)" if m.kind == "share" else ""), fontsize=8.5)
            if r == rows - 1:
                ax.set_xlabel(param)
    grid[0][-1].legend(title="scheme", fontsize=7.5, title_fontsize=8, loc="best")
    fig.tight_layout()
    name = f"sweep_{_slug(param)}.png"
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return name


def _labelled(markers: pd.DataFrame, lo: float, hi: float, log: bool, gap: float = 0.035) -> set[str]:
    """The markers that get a text label: the best method first, then :data:`MARKED`, then the rest, each only if
    it stands at least ``gap`` of the axis' width from every label already placed (every marker keeps its line;
    the report's table lists them all with their SNRs)."""
    def pos(v: float) -> float:
        v = float(np.clip(v, lo, hi))
        if log:
            return (np.log10(max(v, 1e-12)) - np.log10(lo)) / max(np.log10(hi) - np.log10(lo), 1e-12)
        return (v - lo) / max(hi - lo, 1e-12)

    order = sorted(markers.itertuples(), key=lambda m: (not m.best, m.method not in MARKED, -float(m.snr)))
    placed: list[float] = []
    named = set()
    for mk in order:
        p = pos(mk.snr)
        if all(abs(p - q) >= gap for q in placed):
            placed.append(p)
            named.add(mk.method)
    return named


def _heatmaps(measures: pd.DataFrame, x: str, y: str, out: Path, metric: str = "gini_income_run") -> str:
    schemes = list(dict.fromkeys(measures["scheme"]))
    fig, axes = plt.subplots(1, len(schemes), figsize=(3.9 * len(schemes), 3.4), squeeze=False)
    means = measures.groupby(["scheme", y, x])[metric].mean()
    vmin, vmax = means.min(), means.max()
    for ax, scheme in zip(axes[0], schemes):
        grid = means.loc[scheme].unstack(x)
        sns.heatmap(grid, ax=ax, annot=True, fmt=".3f", vmin=vmin, vmax=vmax, cmap="viridis", cbar=ax is axes[0][-1])
        ax.set_title(f"{scheme}: mean {metric}", fontsize=9)
    fig.suptitle(_title(metric) + " (mean over seeds)", fontsize=10)
    fig.tight_layout()
    name = f"sweep_heatmap_{metric}.png"
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return name


def _fmt(name: str, value: float, signed: bool = False) -> str:
    return MEASURES[name].format(value, signed=signed)


def _ci(name: str, low: float, high: float) -> str:
    if not np.isfinite(low):
        return "one seed"
    return f"[{_fmt(name, low, True)}, {_fmt(name, high, True)}]"


def _paired(measures: pd.DataFrame, name: str, a: pd.DataFrame, b: pd.DataFrame):
    """Paired difference a - b over the seeds both have."""
    x = a.set_index("seed")[name]
    y = b.set_index("seed")[name]
    seeds = x.index.intersection(y.index)
    return paired_difference(x.loc[seeds].to_numpy(float), y.loc[seeds].to_numpy(float), bounds=MEASURES[name].bounds)


def _effects(measures: pd.DataFrame, params: list[str], names: list[str], idle: dict[str, list[str]]) -> list[str]:
    """Each scheme's change from the lowest to the highest value of each parameter, paired over seeds, at every
    setting of the other parameters; a measure no scheme detectably changes at any setting gets one sentence."""
    lines = []
    swept = _swept(measures, params)
    for param in _numeric(measures, swept):
        others = [p for p in swept if p != param]
        lo, hi = measures[param].min(), measures[param].max()
        for name in names:
            found, quiet = [], 0
            for setting in _settings(measures, others):
                where = f" (at {html.escape(_setting_text(setting))})" if setting else ""
                parts = []
                detected = False
                for scheme, g in _where(measures, setting).groupby("scheme", sort=False):
                    if str(scheme) in idle.get(param, []):
                        continue
                    iv = _paired(measures, name, g[g[param] == hi], g[g[param] == lo])
                    v = verdict(iv)
                    a, b = g[g[param] == lo][name].mean(), g[g[param] == hi][name].mean()
                    if v in ("higher", "lower"):
                        detected = True
                        word = "rises" if v == "higher" else "falls"
                        parts.append(f"<b>{html.escape(str(scheme))}</b> {word} from {_fmt(name, a)} to {_fmt(name, b)} "
                                     f"({_fmt(name, iv.estimate, True)} {_ci(name, iv.low, iv.high)})")
                    elif v == "identical":
                        parts.append(f"<b>{html.escape(str(scheme))}</b> does not change")
                    else:
                        parts.append(f"<b>{html.escape(str(scheme))}</b>: no detectable change ({_fmt(name, a)} to "
                                     f"{_fmt(name, b)}; {_fmt(name, iv.estimate, True)} {_ci(name, iv.low, iv.high)})")
                if detected:
                    found.append(f"Raising <code>{html.escape(param)}</code> from {lo:g} to {hi:g}{where}, "
                                 f"{html.escape(MEASURES[name].label)}: " + "; ".join(parts)
                                 + " (paired over seeds, 95% intervals).")
                elif parts:
                    quiet += 1
            lines += found
            if quiet and not found:
                lines.append(f"Raising <code>{html.escape(param)}</code> from {lo:g} to {hi:g}: no detectable change in "
                             f"{html.escape(MEASURES[name].label)} under any scheme"
                             + (" at any setting of the other parameters" if others else "")
                             + " (paired over seeds, 95% intervals).")
    return lines


def _crossings(measures: pd.DataFrame, params: list[str], name: str) -> list[str]:
    """Where two schemes trade places along a parameter: only when the paired difference is detectable on both
    sides (an order that flips inside the noise is not reported)."""
    lines = []
    swept = _swept(measures, params)
    schemes = list(dict.fromkeys(measures["scheme"]))
    for param in _numeric(measures, swept):
        others = [p for p in swept if p != param]
        xs = sorted(measures[param].unique())
        for setting in _settings(measures, others):
            sub = _where(measures, setting)
            for a, b in itertools.combinations(schemes, 2):
                signs = []
                for x in xs:
                    at = sub[sub[param] == x]
                    iv = _paired(measures, name, at[at["scheme"] == a], at[at["scheme"] == b])
                    signs.append((x, verdict(iv), iv))
                detected = [(x, v, iv) for x, v, iv in signs if v in ("higher", "lower")]
                for (x0, v0, iv0), (x1, v1, iv1) in zip(detected, detected[1:]):
                    if v0 != v1:
                        where = f" (at {html.escape(_setting_text(setting))})" if setting else ""
                        lines.append(
                            f"{html.escape(MEASURES[name].label[0].upper() + MEASURES[name].label[1:])}: "
                            f"<b>{html.escape(str(a))}</b> minus <b>{html.escape(str(b))}</b> is "
                            f"{_fmt(name, iv0.estimate, True)} {_ci(name, iv0.low, iv0.high)} at "
                            f"<code>{html.escape(param)}</code> = {x0:g} and {_fmt(name, iv1.estimate, True)} "
                            f"{_ci(name, iv1.low, iv1.high)} at {x1:g}{where}: the order flips (paired over seeds)."
                        )
    return lines


def _at_measured_snr(measures: pd.DataFrame, markers: pd.DataFrame, params: list[str]) -> list[str]:
    """Each scheme's mean misallocation and platform margin at each method's measured SNR (log-SNR interpolation);
    a scheme is named least misallocating there only if it misallocates detectably less than every other scheme
    at both swept SNRs around it (paired over seeds)."""
    if SNR_PARAM not in measures.columns or markers.empty:
        return []
    others = [p for p in _swept(measures, params) if p != SNR_PARAM]
    grid = np.sort(measures[SNR_PARAM].astype(float).unique())
    if len(grid) < 2:
        return []
    schemes = list(dict.fromkeys(measures["scheme"]))
    markers = markers[markers["method"].isin(MARKED) | markers["best"].astype(bool)]
    lines = []
    for setting in _settings(measures, others):
        sub = _where(measures, setting)
        curves = sub.groupby(["scheme", SNR_PARAM])[["ai_misallocation_month_mean", "platform_margin_month_mean"]].mean()
        where = f" (at {html.escape(_setting_text(setting))})" if setting else ""
        for r in markers.itertuples():
            if not np.isfinite(r.snr) or r.snr <= 0:
                side = "below" if np.isfinite(r.snr) else "above"
                lines.append(f"{html.escape(r.method)}: measured SNR {r.snr:.3g} lies {side} any swept level.")
                continue
            x = np.log(np.clip(r.snr, grid[0], grid[-1]))

            def at(col: str, scheme: str) -> float:
                c = curves.loc[scheme][col].reindex(grid)
                return float(np.interp(x, np.log(grid), c.to_numpy()))

            mis = {sc: at("ai_misallocation_month_mean", sc) for sc in schemes}
            best = min(mis, key=mis.get)
            i = int(np.clip(np.searchsorted(grid, np.exp(x)), 1, len(grid) - 1))
            around = {grid[i - 1], grid[i]} if grid[0] <= r.snr <= grid[-1] else {grid[0] if r.snr < grid[0] else grid[-1]}
            clear = all(
                verdict(_paired(sub, "ai_misallocation_month_mean",
                                sub[(sub["scheme"] == best) & (sub[SNR_PARAM] == s)],
                                sub[(sub["scheme"] == other) & (sub[SNR_PARAM] == s)])) == "lower"
                for s in around for other in schemes if other != best
            )
            edge = "" if grid[0] <= r.snr <= grid[-1] else f" (outside the swept {grid[0]:g}-{grid[-1]:g}: read at the edge)"
            lead = (f"the least misallocating scheme is <b>{html.escape(str(best))}</b> (detectably, at the swept SNRs "
                    "around it)" if clear else "no scheme misallocates detectably least")
            lines.append(
                f"At the SNR measured for <b>{html.escape(r.method)}</b>{' (the run’s best method)' if r.best else ''}, {r.snr:.2f} [{r.snr_low:.2f}, {r.snr_high:.2f}]"
                f"{edge}{where}, {lead}; share of the AI pool misallocated (mean over months and seeds) "
                + ", ".join(f"{html.escape(str(sc))} {100 * v:.1f}%" for sc, v in mis.items())
                + "; platform margin " + ", ".join(f"{html.escape(str(sc))} {100 * at('platform_margin_month_mean', sc):.2f}%"
                                                   for sc in schemes) + "."
            )
    return lines


def _summary_html(summary: pd.DataFrame, params: list[str]) -> str:
    if summary.empty:
        return ""
    shown = summary.copy()
    shown["value"] = [f"{_fmt(r.measure, r.mean)} {_ci(r.measure, r.low, r.high)}" if np.isfinite(r.low) and r.low != r.high
                      else _fmt(r.measure, r.mean) for r in shown.itertuples()]
    shown["measure"] = [f"{MEASURES[m].label} [{m}]" for m in shown["measure"]]
    keys = [p for p in params if p in shown.columns]
    wide = shown.pivot_table(index=["measure", *keys], columns="scheme", values="value", aggfunc="first")
    return wide.to_html(classes="summary", na_rep="")


def write_sweep_report(
    result: SweepResult,
    out_dir: str | Path | None = None,
    title: str = "Sweep",
    run: str | Path | None = None,
    measures: list[str] | None = None,
) -> Path:
    """Write ``sweep_report.html`` (and its PNGs) into ``out_dir`` (default: the sweep folder).

    Args:
        run: the attribution run the scenario reads; its measured SNRs are marked when the sweep varies
            ``source.attribution_snr`` (see :func:`measured_snr_markers`).
        measures: run-level measures the findings follow and the plots show first (a scenario's
            ``compare.measures``; default ``gini_income_run`` and ``ai_misallocation_month_mean``).
    """
    markers = measured_snr_markers(run) if run is not None and SNR_PARAM in result.params else pd.DataFrame()
    out = Path(out_dir or result.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = result.table
    figures: list[str] = []
    findings: list[str] = []
    body = ""
    if table.empty:
        body = "<p>No run finished; see failures.json.</p>"
    else:
        meas = result.measures if not result.measures.empty else sweep_measures(table, result.creator_income, result.params)
        if meas.empty:
            body = "<p>The runs kept no per-creator income; run the sweep again to compute run-level measures.</p>"
        else:
            followed = list(dict.fromkeys((measures or []) + FINDING_MEASURES))
            plotted = list(dict.fromkeys((measures or []) + [m for m in PLOT_MEASURES if m in PLOT_MEASURES[:3]
                                                             or meas[m].nunique() > 1]))
            swept = _swept(meas, result.params)
            numeric = _numeric(meas, swept)
            n_creators = (int(result.creator_income.groupby("run_id")["creator"].nunique().max())
                          if not result.creator_income.empty else None)
            figures = [_line_plots(meas, p, result.params, plotted, out, markers if p == SNR_PARAM else None,
                                   n_creators) for p in numeric]
            if len(numeric) == 2 and len(swept) == 2:
                figures.append(_heatmaps(meas, numeric[0], numeric[1], out))
            idle = could_not_matter(meas, result.params)
            for param, schemes in idle.items():
                findings.append(
                    f"<code>{html.escape(param)}</code> cannot affect {', '.join(f'<b>{html.escape(s)}</b>' for s in schemes)}: "
                    "their results are identical at every value of it, seed by seed (the runs were repeated anyway)."
                )
            findings += _effects(meas, result.params, followed, idle)
            for name in followed:
                findings += _crossings(meas, result.params, name)
            if SNR_PARAM in numeric:
                findings += _at_measured_snr(meas, markers, result.params)
                if markers.empty:
                    findings.append(
                        "No measured SNR to mark: evaluate the attribution run against its retraining ground truth "
                        "(<code>royaltysim attribution groundtruth RUN</code>, then <code>royaltysim attribution "
                        "evaluate RUN</code>)."
                    )
            body = _summary_html(sweep_summary(meas, swept, plotted), swept)
    failures = "".join(
        f"<li>seed {f['seed']}, {html.escape(str(f['params']))}: {html.escape(f['error'])}</li>" for f in result.failures
    )
    seeds = sorted(table["seed"].unique()) if not table.empty else []
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1280px;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}}
table.summary{{border-collapse:collapse;font-size:0.82em}}table.summary td,table.summary th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}
table.summary th{{background:#f5f5f5}} li{{margin-bottom:0.3em}} .meta{{color:#666;font-size:0.9em}}
img{{max-width:100%}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="meta">{result.total} runs ({result.total - len(result.failures)} finished, {len(result.failures)} failed);
swept: {", ".join(f"<code>{html.escape(p)}</code>" for p in result.params) or "nothing (replicates only)"}; {len(seeds)} replicate
seeds at every point. Every number is a run-level measure (<code>measures.parquet</code>, computed from each run's per-creator
income in <code>creator_income.parquet</code>; "whole-run income" is the sum of a creator's pay over every month). Levels are means
over the seeds with 95% Student t intervals kept inside each measure's bounds; a change or a difference between schemes is paired
over the seeds (every point runs the same seeds). Plots show one column of panels per setting of the other swept parameters,
never an average over them.</p>
<h2>Findings</h2><ul>{"".join(f"<li>{f}</li>" for f in findings) or "<li>No numeric parameter was swept.</li>"}</ul>
{"".join(f'<p><img src="{f}"></p>' for f in figures)}
<h2>Summary</h2>{body}
{"<h2>Failed runs</h2><ul>" + failures + "</ul>" if failures else ""}
</body></html>"""
    path = out / "sweep_report.html"
    path.write_text(page)
    return path
