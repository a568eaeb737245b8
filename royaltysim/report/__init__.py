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

The package's modules, each re-exported here:

* :mod:`~royaltysim.report.tables` -- the tables (:func:`answer_table`, :func:`band_table`,
  :func:`creator_table`, :func:`summary_table`, :func:`lorenz_table`, :func:`payout_per_stream`);
* :mod:`~royaltysim.report.narrative` -- the sentences (:func:`findings`, :func:`answer_summary`,
  :func:`describe_difference`, :func:`unallocated_findings`);
* :mod:`~royaltysim.report.figures` -- the figures (:data:`FIGURES`);
* :mod:`~royaltysim.report.links` -- the links to the documentation (:data:`DOCS`);
* :mod:`~royaltysim.report.page` -- :func:`write_report`;
* :mod:`~royaltysim.report.wording` -- how numbers and intervals are written (private helpers).
"""

from __future__ import annotations

from royaltysim.report.figures import FIGURES
from royaltysim.report.links import DOCS, arm_links, doc_href, github_slug, mechanism_links
from royaltysim.report.narrative import (
    UNALLOCATED_MATERIAL,  # noqa: F401  (public in the old module, not in __all__)
    answer_summary,
    describe_difference,
    findings,
    unallocated_findings,
)
from royaltysim.report.page import write_report
from royaltysim.report.tables import (
    answer_table,
    band_table,
    creator_table,
    lorenz_table,
    payout_per_stream,
    question_measures,
    summary_table,
)

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
