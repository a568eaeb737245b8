"""Links from the report to the documentation of every mechanism the run used.

:func:`arm_links` links each arm's schemes to their section of ``docs/schemes.md``, and
:func:`mechanism_links` the model's processes (listening, settlement, creators' decisions, AI quality, true
contribution, stochasticity, measures) to their sections of ``docs/ODD.md``, by GitHub's heading anchors
(:func:`github_slug`); :func:`doc_href` makes each link relative to the run folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from royaltysim.combinators import describe_params

if TYPE_CHECKING:
    from royaltysim.runner import Results

#: the documentation of the model (``docs/`` of the source tree)
DOCS = Path(__file__).resolve().parents[2] / "docs"
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
