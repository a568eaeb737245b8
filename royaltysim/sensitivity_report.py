"""The sensitivity report: ``sensitivity_report.html`` with the figures economists read a sensitivity analysis by.

Sobol: one horizontal bar chart per output, first-order (S1) and total (ST) index of each parameter side by
side with their bootstrap intervals as error bars, parameters ordered by ST. Morris: one mu* vs sigma
scatter per output with both intervals, each point labelled with its parameter. The page (template
``templates/sensitivity.html.j2``) leads with the answer: each output's parameters ranked, with intervals.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from royaltysim.measures import MEASURES  # noqa: E402
from royaltysim.sensitivity import REPORT_FILE, SensitivityResult  # noqa: E402

__all__ = ["write_sensitivity_report", "ranking"]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")[:60]


def ranking(indices: pd.DataFrame, output: str, method: str) -> pd.DataFrame:
    """One output's parameters, most influential first: by ST (Sobol) or mu* (Morris), with their intervals."""
    key = "ST" if method == "sobol" else "mu_star"
    rows = indices[indices["output"] == output]
    wide = rows.pivot_table(index=["parameter", "label"], columns="index", values=["value", "ci_low", "ci_high"],
                            sort=False)
    wide.columns = [f"{idx}_{stat}" for stat, idx in wide.columns]
    return wide.reset_index().sort_values(f"{key}_value", ascending=False, kind="stable").reset_index(drop=True)


def _sobol_figure(ranked: pd.DataFrame, title: str, out: Path, name: str) -> str:
    n = len(ranked)
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * n + 1.6))
    ypos = np.arange(n)[::-1]
    for offset, index, colour in ((0.18, "S1", "#4c72b0"), (-0.18, "ST", "#dd8452")):
        v = ranked[f"{index}_value"].to_numpy()
        err = np.vstack([v - ranked[f"{index}_ci_low"], ranked[f"{index}_ci_high"] - v])
        ax.barh(ypos + offset, v, height=0.34, xerr=err, color=colour, capsize=3,
                label={"S1": "first order S1 (alone)", "ST": "total ST (with interactions)"}[index])
    ax.set_yticks(ypos, [textwrap.fill(lbl, 34) for lbl in ranked["label"]])
    ax.axvline(0, color="#888", lw=0.8)
    ax.set_xlabel("share of the output's variance (Sobol index)")
    ax.set_title(textwrap.fill(title, 70), fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def _morris_figure(ranked: pd.DataFrame, title: str, unit: str, out: Path, name: str) -> str:
    fig, ax = plt.subplots(figsize=(7, 5))
    x, y = ranked["mu_star_value"].to_numpy(), ranked["sigma_value"].to_numpy()
    ax.errorbar(x, y, xerr=np.vstack([x - ranked["mu_star_ci_low"], ranked["mu_star_ci_high"] - x]).clip(0),
                yerr=np.vstack([y - ranked["sigma_ci_low"], ranked["sigma_ci_high"] - y]).clip(0),
                fmt="o", color="#4c72b0", ecolor="#aaa", capsize=3)
    for xi, yi, lbl in zip(x, y, ranked["label"]):
        ax.annotate(textwrap.fill(lbl, 28), (xi, yi), textcoords="offset points", xytext=(5, 4), fontsize=8)
    top = max(float(np.nanmax(ranked[["mu_star_ci_high", "sigma_ci_high"]].to_numpy())), float(np.nanmax(x)),
              float(np.nanmax(y)), 1e-12) * 1.1
    ax.plot([0, top], [0, top], ls=":", color="#999", lw=0.8, label="sigma = mu*")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel(textwrap.fill(f"mu*: mean |elementary effect| over the parameter's range ({unit})", 80))
    ax.set_ylabel("sigma (spread: interactions or non-linearity)")
    ax.set_title(textwrap.fill(title, 70), fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def _fmt(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.3g}"


def write_sensitivity_report(result: SensitivityResult, out_dir: str | Path | None = None, *, question: str = "",
                             command: str = "", seconds: float | None = None) -> Path:
    """Write ``sensitivity_report.html`` and its PNGs into ``out_dir`` (default: the analysis folder)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    spec = result.spec
    out = Path(out_dir or result.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for o in spec.outputs:
        ranked = ranking(result.indices, o.name, spec.method)
        values = result.design[o.name].to_numpy(dtype=float)
        m = MEASURES[o.measure]
        if spec.method == "sobol":
            figure = _sobol_figure(ranked, o.label, out, f"sobol_{_slug(o.name)}.png")
            top = ranked.iloc[0]
            answer = (f"{top['label']} drives it most: total index {_fmt(top['ST_value'])} "
                      f"[{_fmt(top['ST_ci_low'])}, {_fmt(top['ST_ci_high'])}], first order {_fmt(top['S1_value'])}")
            s1 = float(ranked["S1_value"].sum())
            note = (f"First-order indices sum to {s1:.2f}: " + ("the rest of the variance comes from interactions "
                    "between parameters." if s1 < 0.8 else "the parameters act mostly alone (additively)."))
            cols = ["S1", "ST"]
        else:
            figure = _morris_figure(ranked, o.label, m.unit, out, f"morris_{_slug(o.name)}.png")
            top = ranked.iloc[0]
            answer = (f"{top['label']} moves it most: mu* {_fmt(top['mu_star_value'])} "
                      f"[{_fmt(top['mu_star_ci_low'])}, {_fmt(top['mu_star_ci_high'])}] ({m.unit} over its range)")
            note = "A point far above the dotted line (sigma > mu*) acts through interactions or non-linearly."
            cols = ["mu", "mu_star", "sigma"]
        rows = [{"label": r["label"], "path": r["parameter"],
                 "cells": [(_fmt(r[f"{c}_value"]), f"[{_fmt(r[f'{c}_ci_low'])}, {_fmt(r[f'{c}_ci_high'])}]")
                           for c in cols]} for _, r in ranked.iterrows()]
        sections.append({"name": o.name, "label": o.label, "unit": m.unit, "figure": figure, "answer": answer,
                         "note": note, "cols": cols, "rows": rows,
                         "spread": f"mean {_fmt(float(values.mean()))}, from {_fmt(float(values.min()))} to "
                                   f"{_fmt(float(values.max()))} over the design"})
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    page = env.get_template("sensitivity.html.j2").render(
        question=question, command=command, spec=spec, sections=sections, result=result,
        level=f"{spec.confidence:.0%}", seconds=seconds,
        ranges=[{"path": p, "label": spec.label(p), "low": r.bounds[0], "high": r.bounds[1], "log": r.log,
                 "integer": r.integer} for p, r in spec.parameters.items()],
    )
    path = out / REPORT_FILE
    path.write_text(page)
    return path
