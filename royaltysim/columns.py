"""The glossary of exported columns: what each column of a run, sweep or sensitivity table means.

:func:`describe_column` gives a column's meaning, or ``None`` for a name the glossary does not know (the
tests export a run, a sweep and a sensitivity folder and require every column to be described).
:func:`columns_markdown` renders the glossary as ``docs/columns.md``
(``python -m royaltysim.columns > docs/columns.md``; a test checks the file is current).

Four kinds of names are described by rule rather than listed: run-level measures (their label and unit
from :data:`royaltysim.measures.MEASURES`), swept or sampled parameters (dotted scenario paths such as
``platform.ai_pool_rate``, documented in docs/parameters.md), a strategy's return (``return_<strategy>``),
and a sensitivity output (``<measure>: <arm>`` or ``<measure>: <arm> minus <arm>``). In Stata files the
names become valid Stata names (``platform.ai_pool_rate`` -> ``platform_ai_pool_rate``, at most 32
characters, :func:`royaltysim.export.stata_names`) and each variable's label is the name here.
"""

from __future__ import annotations

import re

__all__ = ["TABLES", "COLUMNS", "describe_column", "columns_markdown"]

#: each exported table: which folders hold it and what one row is
TABLES: dict[str, str] = {
    "model": "run: one row per (arm, seed, month); money in $ of the platform's fee currency",
    "creators": "run: one row per (arm, seed, month, creator)",
    "creator_income": "run and sweep: one row per (arm, seed, creator) of whole-run money (sweep: per run too)",
    "measures": "run and sweep: one row per (arm, seed) (sweep: per run) with every run-level measure",
    "summary": "run: each measure's mean over seeds with its 95% interval, per arm. Sweep and sensitivity folders: "
               "each monthly metric's final-month mean, sd and 95% interval per arm and parameter point",
    "comparisons": "run: paired differences arm minus reference over seeds, per arm and measure, with 95% intervals",
    "sweep": "sweep and sensitivity: one row per (run, arm, month), the model table with the run's parameters",
    "design": "sensitivity: one row per design point, its parameters and each output's mean over the seeds",
    "outputs": "sensitivity: one row per (point, seed, output)",
    "sobol": "sensitivity (Sobol): one row per (output, parameter, index), S1 and ST with bootstrap intervals",
    "morris": "sensitivity (Morris): one row per (output, parameter, index), mu, mu_star and sigma with intervals",
}

#: every column listed by name (see the module docstring for the names described by rule)
COLUMNS: dict[str, str] = {
    # keys
    "scheme": "the arm's label (each arm is a human-pool and an AI-pool royalty rule)",
    "seed": "replicate seed; within a seed every arm runs on the same random numbers",
    "step": "month, counted from 1",
    "creator": "creator key in the attribution run (a composer, or a collection)",
    "name": "the creator's readable name",
    "run_id": "the run's key: a hash of its whole resolved scenario, seed and source data",
    "point": "parameter point of the sweep or sensitivity design, from 0",
    # model: rules and money
    "human_scheme": "the human pool's scheme in force this month (an arm's schedule may change it)",
    "ai_scheme": "the AI pool's scheme in force this month",
    "revenue": "$ the platform took from listeners this month",
    "human_pool": "$ in the royalty pool for human streams",
    "ai_pool": "$ paid into the AI royalty pool",
    "paid": "$ paid to creators from both pools",
    "unallocated": "$ of the pools that a scheme found no basis to pay (stays with the platform)",
    "unallocated_human": "$ of the human pool left unpaid",
    "unallocated_ai": "$ of the AI pool left unpaid",
    "unallocated_human_share": "share of the human pool left unpaid",
    "unallocated_ai_share": "share of the AI pool left unpaid",
    "ai_cost": "$ the AI service spent serving its streams",
    "platform_margin": "$ the platform kept: revenue less royalties paid and the AI's serving cost",
    "subscribers": "listeners subscribed this month",
    "joins": "listeners who joined this month",
    "churns": "listeners who left this month",
    "consumer_value": "$ value of the month's listening to the listeners",
    "consumer_surplus": "$ listeners' value less the price they paid",
    "platform_profit": "$ the platform's profit",
    "creator_surplus": "$ royalties less what creators spent on new works",
    "total_welfare": "$ consumer surplus + platform profit + creator surplus",
    "fraud_streams": "streams of the stream farm's uploads",
    "demonetised_streams": "fraudulent streams detected and not paid",
    "fraud_uploads": "the stream farm's uploads in the catalogue",
    "bot_fees": "$ the farm paid for its bot accounts",
    "fraud_human_paid": "$ of the human pool paid to the farm",
    "fraud_ai_paid": "$ of the AI pool paid to the farm",
    "fraud_human_share": "share of the human pool paid to the farm",
    "fraud_ai_share": "share of the AI pool paid to the farm",
    "fraud_profit": "$ the farm was paid less its bot fees",
    "ai_shapley_se": "the largest standard error of a creator's share of the AI pool from Shapley Royalty Share's "
                     "permutation sampling this month (0 when no sampled Shapley rule paid)",
    "ai_shapley_permutations": "permutations sampled by Shapley Royalty Share this month (0 when none)",
    "ai_quality": "quality of the AI's music: opted-in share of training value to the power of its elasticity",
    "ai_stream_share": "share of all streams that went to AI music",
    "consumer_welfare": "listeners' welfare index (taste match and quality of what they played)",
    "active_creators": "creators in the market at the end of the month",
    "entries": "creators who entered the market this month",
    "exits": "creators who left the market this month",
    "opt_outs": "creators who took their catalogue out of the AI's training set this month",
    "opt_ins": "creators who put their catalogue back into the training set this month",
    "opted_in": "creators in the AI's training set at the end of the month",
    "new_works": "works released this month",
    "flood_works": "cheap flood works released this month",
    "works": "works in the catalogues of creators in the market",
    "flooders": "creators playing the flooding strategy",
    "imitators": "creators imitating the AI's style",
    "imitation_drift": "mean pull of active creators' style toward the AI's (0: none)",
    "gini_income_month": "Gini of the month's income among creators in the market (0: equal, 1: one takes all)",
    "top1_share_income_month": "top 1% of creators' share of the month's income",
    "top10_share_income_month": "top 10% of creators' share of the month's income",
    "theil_income_month": "Theil index of the month's income (0: equal)",
    "atkinson_income_month": "Atkinson index of the month's income (epsilon from metrics.atkinson_epsilon)",
    "share_below_line_month": "share of creators in the market below the subsistence line this month",
    "hhi_income_month": "Herfindahl-Hirschman index of the month's income shares",
    "ai_misallocation_month": "share of the month's AI pool that would have to move to match true contribution",
    "ai_rank_agreement_month": "rank correlation of AI-pool pay with true contribution this month",
    "reference": "what true contribution means in the run (ground truth, or the causal method's shares)",
    "causal_method": "the attribution method causal schemes paid on (for `best`: the one chosen and why)",
    # creators
    "active": "in the market this month",
    "strategy": "the creator's strategy this month (plain, flood, imitate...)",
    "streams": "the creator's human streams this month",
    "human_pay": "$ from the human pool",
    "ai_pay": "$ from the AI pool",
    "income": "income this month in income units (month-0 pool per creator), both pools",
    "net_income": "income less this month's costs, in income units",
    "expected_income": "the creator's adaptive expectation of income (empty before the first month)",
    "imitation": "the creator's pull toward the AI's style (0: none)",
    "true_share": "the creator's share of true contribution among those the AI pool could pay",
    # creator_income
    "income_run": "$ over the run, human + AI pool",
    "human_pay_run": "$ from the human pool over the run",
    "ai_pay_run": "$ from the AI pool over the run",
    "true_share_run": "mean monthly share of true contribution",
    "months": "months in the run",
    "ever_active": "in the market in some month, or paid",
    "active_end": "in the market in the last month",
    # summaries and comparisons
    "measure": "the run-level measure (see the measures listed below)",
    "metric": "the monthly metric, at the run's final month",
    "mean": "mean over seeds",
    "low": "lower end of the 95% interval",
    "high": "upper end of the 95% interval",
    "ci_low": "lower end of the interval (95%, or the sensitivity section's confidence)",
    "ci_high": "upper end of the interval",
    "sd": "standard deviation over seeds",
    "n": "number of seeds (or values) behind the estimate",
    "method": "how the interval was computed (t, bootstrap, bounded...)",
    "arm_mean": "the arm's mean over seeds",
    "reference_mean": "the reference arm's mean over seeds",
    "difference": "mean paired difference arm minus reference",
    "p_value": "two-sided p-value of the paired difference",
    "verdict": "higher, lower, no detectable difference, identical or one seed",
    # sensitivity
    "output": "the analysed output (a measure of an arm, or a paired difference between arms)",
    "parameter": "the parameter's dotted scenario path",
    "label": "the parameter's readable name",
    "index": "S1 or ST (Sobol: first-order and total), or mu, mu_star, sigma (Morris)",
    "value": "the index's value (outputs table: the output's value in that run)",
    "conf": "half-width of the index's bootstrap interval",
}

_PARAMETER = re.compile(r"^[a-z_]+(\[\d+\])?(\.[a-z_0-9]+(\[\d+\])?)+$")
_OUTPUT = re.compile(r"^(?P<measure>[a-z0-9_]+): (?P<arm>.+?)( minus (?P<minus>.+))?$")


def describe_column(name: str) -> str | None:
    """What column ``name`` means, or ``None`` when the glossary does not know it."""
    from royaltysim.measures import MEASURES

    if name in COLUMNS:
        return COLUMNS[name]
    if name in MEASURES:
        m = MEASURES[name]
        return f"{m.label} ({m.unit})"
    if name.startswith("return_"):
        return f"what the {name.removeprefix('return_')} strategy earned its players last month, relative to their expectations"
    if _PARAMETER.match(name):
        return "a swept or sampled parameter: its dotted scenario path (docs/parameters.md)"
    found = _OUTPUT.match(name)
    if found and found["measure"] in MEASURES:
        what = f"{found['arm']} minus {found['minus']}" if found["minus"] else found["arm"]
        return f"sensitivity output: {MEASURES[found['measure']].label}, {what}, mean over the seeds"
    return None


def columns_markdown() -> str:
    """The glossary as Markdown (``docs/columns.md``)."""
    from royaltysim.measures import MEASURES

    lines = [
        "# Exported columns",
        "",
        "<!-- generated by `python -m royaltysim.columns > docs/columns.md`; tests/royaltysim/test_export.py checks it -->",
        "",
        "`royaltysim export FOLDER --to csv|stata` (and `Results.to_csv`/`to_stata`, `SweepResults.to_csv`/`to_stata`,",
        "`royaltysim.export.export_folder`) writes these tables. In Stata files each name becomes a valid Stata name",
        "(letters, digits and `_`, at most 32 characters: `platform.ai_pool_rate` -> `platform_ai_pool_rate`) and",
        "its variable label is the name below.",
        "",
        "## Tables",
        "",
        "| table | rows |",
        "|---|---|",
        *[f"| `{t}` | {what} |" for t, what in TABLES.items()],
        "",
        "## Columns",
        "",
        "| column | meaning |",
        "|---|---|",
        *[f"| `{c}` | {what} |" for c, what in COLUMNS.items()],
        "",
        "## Run-level measures",
        "",
        "Columns of `measures`, and values of `measure` in `summary` and `comparisons`.",
        "",
        "| measure | meaning | unit |",
        "|---|---|---|",
        *[f"| `{m.name}` | {m.label} | {m.unit} |" for m in MEASURES.values()],
        "",
        "## Columns named by rule",
        "",
        "| name | meaning |",
        "|---|---|",
        "| a dotted scenario path, e.g. `platform.ai_pool_rate`, `schemes[2].ai.params.top_k` | the value of a swept "
        "or sampled parameter in that run (docs/parameters.md) |",
        "| `return_<strategy>` | what that strategy earned its players last month, relative to their expectations |",
        "| `<measure>: <arm>` or `<measure>: <arm> minus <other arm>` | a sensitivity output (`design`): the "
        "measure of the arm, or the paired difference within each seed, mean over the seeds |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(columns_markdown(), end="")
