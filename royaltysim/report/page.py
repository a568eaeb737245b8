"""The HTML writer: :func:`write_report` renders ``report.html`` (``royaltysim/templates/report.html.j2``)
with its tables, findings, figures and links to the documentation."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from royaltysim.measures import MEASURES
from royaltysim.report.figures import _figures
from royaltysim.report.links import _ODD, _SCHEMES, DOCS, _link, arm_links, mechanism_links
from royaltysim.report.narrative import answer_summary, findings
from royaltysim.report.tables import (
    answer_table,
    band_table,
    creator_table,
    payout_per_stream,
    question_measures,
    summary_table,
)
from royaltysim.report.wording import _seed_span

if TYPE_CHECKING:
    from royaltysim.runner import Results

_TEMPLATE = "report.html.j2"


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
        loader=FileSystemLoader(Path(__file__).parents[1] / "templates"), autoescape=select_autoescape(["html", "j2"])
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
