"""The reported measures: one name, one meaning, one function, used by the run report, the Python API, sweeps
and the parquet columns alike.

A measure's name states its basis:

* ``*_income_run`` -- over each creator's **whole-run income** (the sum of every month's pay; creators who
  were ever in the market), e.g. ``gini_income_run``;
* ``*_income_month`` -- over **one month's** income (the creators in the market that month). In
  ``model.parquet`` it is a column with a value each month; as a run-level measure it is the last month's
  value, e.g. ``gini_income_month``;
* ``*_month_mean`` -- the mean over the run's months of a monthly value (``ai_misallocation_month_mean``);
* ``*_end`` / ``*_run`` -- a count at the last month / summed over the run (``creators_active_end``,
  ``exits_run``).

:data:`MONTH_COLUMNS` renames the model's monthly columns to these names (``gini`` ->
``gini_income_month``), :func:`creator_income` condenses the creators' table to one row per (scheme,
seed, creator) of whole-run money, and :func:`run_measures` computes every run-level measure of
:data:`MEASURES` from those two tables, one row per (scheme, seed). Money is in the platform's fee
currency ("$"): the model pays creators in it, and its payout per stream is calibrated to the published
$0.003-0.005 (``royaltysim calibrate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from royaltysim import metrics

if TYPE_CHECKING:
    from royaltysim.stats import Bounds

__all__ = [
    "Measure",
    "MEASURES",
    "MONTH_COLUMNS",
    "DEFAULT_QUESTION_MEASURES",
    "measure",
    "creator_income",
    "run_measures",
    "rank_bands",
    "band_edges",
    "MONTH_BOUNDS",
    "bounds_of",
    "sweep_measures",
]

#: the model's monthly columns under the names that say they are one month's values
MONTH_COLUMNS = {
    "gini": "gini_income_month",
    "top1_share": "top1_share_income_month",
    "top10_share": "top10_share_income_month",
    "theil": "theil_income_month",
    "atkinson": "atkinson_income_month",
    "hhi": "hhi_income_month",
    "share_below_line": "share_below_line_month",
    "ai_misallocation": "ai_misallocation_month",
    "ai_rank_agreement": "ai_rank_agreement_month",
}


@dataclass(frozen=True)
class Measure:
    """A run-level measure: one number per (scheme, seed).

    Attributes:
        name: the column name everywhere (report, API, sweeps, parquet).
        label: what it is, in words, with its basis (shown as a figure or table title).
        unit: its unit or scale in words (an axis label).
        bounds: the values it can take (intervals stay inside them).
        digits: decimals to show.
        kind: ``share`` (shown as a percentage), ``money`` ($), ``count`` or ``index``.
    """

    name: str
    label: str
    unit: str
    bounds: Bounds
    digits: int
    kind: Literal["share", "money", "count", "index"]

    def format(self, value: float, *, signed: bool = False, digits: int | None = None) -> str:
        """``value`` as the report shows it (shares as percentages, or points for a signed difference).

        ``digits`` overrides the measure's decimals (see :meth:`digits_for`)."""
        if not np.isfinite(value):
            return "n/a"
        sign = "+" if signed else ""
        d = self.digits if digits is None else digits
        if self.kind == "share":
            return f"{100 * value:{sign}.{d}f}" + (" pp" if signed else "%")
        if self.kind == "money":
            return f"{'-' if value < 0 else ('+' if signed else '')}${abs(value):,.{d}f}"
        if digits is None and self.kind == "count" and float(value).is_integer():
            d = 0
        return f"{value:{sign},.{d}f}"

    def digits_for(self, *values: float, extra: int = 3) -> int:
        """Decimals that show each non-zero value with a significant digit and tell different values apart
        (a difference of 0.003 pp is not printed as 0.0 pp), at most ``extra`` more than the measure's own."""
        finite = [v for v in values if np.isfinite(v)]
        for d in range(self.digits, self.digits + extra + 1):
            shown = [self.format(v, signed=True, digits=d) for v in finite]
            looks_zero = [not any(ch in "123456789" for ch in s) for s in shown]  # "-0.00 pp" reads as zero too
            if not any(z and v != 0 for z, v in zip(looks_zero, finite)) and len(set(shown)) == len(set(finite)):
                return d
        return self.digits + extra


_SHARE = (0.0, 1.0)
_COUNT = (0.0, None)

#: every run-level measure, by name
MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("gini_income_run", "Gini of creators' whole-run income",
                "Gini (0: all earn the same, 1: one takes all)", _SHARE, 3, "index"),
        Measure("top1_share_income_run", "top 1% of creators' share of whole-run income", "share of income",
                _SHARE, 1, "share"),
        Measure("top10_share_income_run", "top 10% of creators' share of whole-run income", "share of income",
                _SHARE, 1, "share"),
        Measure("bottom50_share_income_run", "bottom 50% of creators' share of whole-run income", "share of income",
                _SHARE, 2, "share"),
        Measure("ai_top10_share_run", "top 10% of creators' share of the AI pool over the run", "share of the AI pool",
                _SHARE, 1, "share"),
        Measure("income_month_mean", "mean creator income a month (creators ever in the market)", "$ a month",
                _COUNT, 2, "money"),
        Measure("gini_income_month", "Gini of the last month's income", "Gini (0: all earn the same, 1: one takes all)",
                _SHARE, 3, "index"),
        Measure("top10_share_income_month", "top 10% of creators' share of the last month's income",
                "share of income", _SHARE, 1, "share"),
        Measure("share_below_line_month", "share of creators below the subsistence line in the last month",
                "share of creators", _SHARE, 1, "share"),
        Measure("ai_misallocation_month_mean", "share of the AI pool paid against true contribution, mean over months",
                "share of the AI pool that would have to move", _SHARE, 1, "share"),
        Measure("ai_rank_agreement_month_mean", "rank agreement of AI pay with true contribution, mean over months",
                "Spearman correlation (1: same order)", (-1.0, 1.0), 3, "index"),
        Measure("creators_active_start", "creators in the market at the start", "creators", _COUNT, 1, "count"),
        Measure("creators_active_end", "creators in the market in the last month", "creators", _COUNT, 1, "count"),
        Measure("creators_gone_end", "creators who were in the market and are gone at the end", "creators",
                _COUNT, 1, "count"),
        Measure("exits_run", "exits over the run", "exits", _COUNT, 1, "count"),
        Measure("entries_run", "entries over the run", "entries", _COUNT, 1, "count"),
        Measure("opted_in_end", "creators opted in to AI training in the last month", "creators", _COUNT, 1, "count"),
        Measure("opt_outs_run", "opt-outs of AI training over the run", "opt-outs", _COUNT, 1, "count"),
        Measure("ai_quality_end", "AI quality in the last month (1: trained on every catalogue)",
                "quality (share of full training value)", _SHARE, 3, "index"),
        Measure("new_works_run", "new works released over the run", "works", _COUNT, 0, "count"),
        Measure("flooders_end", "creators flooding the catalogue in the last month", "creators", _COUNT, 1, "count"),
        Measure("imitation_drift_end", "imitation drift toward the AI's style in the last month",
                "drift (0: own style, 1: the AI's)", _SHARE, 3, "index"),
        Measure("consumer_welfare_month_mean", "listener welfare, mean over months",
                "utility a stream (taste match + log relative quality)", (None, None), 3, "index"),
        Measure("platform_margin_month_mean", "platform margin, mean over months", "share of revenue kept",
                (None, 1.0), 1, "share"),
        # the demand side and welfare in money (royaltysim.demand): $ a month, means over months
        Measure("subscribers_end", "listeners subscribed in the last month", "listeners", _COUNT, 1, "count"),
        Measure("churn_month_mean", "share of subscribers who leave, mean over months", "share of subscribers a month",
                _SHARE, 2, "share"),
        Measure("revenue_month_mean", "platform revenue, mean over months", "$ a month", _COUNT, 2, "money"),
        Measure("consumer_surplus_month_mean", "listeners' surplus (value less price), mean over months", "$ a month",
                (None, None), 2, "money"),
        Measure("platform_profit_month_mean", "platform profit (revenue less royalties and AI cost), mean over months",
                "$ a month", (None, None), 2, "money"),
        Measure("creator_surplus_month_mean", "creators' royalties less their spending on works, mean over months",
                "$ a month", (None, None), 2, "money"),
        Measure("total_welfare_month_mean", "total welfare (listeners + platform + creators), mean over months",
                "$ a month", (None, None), 2, "money"),
        # fraud (royaltysim.fraud): what the stream farm's uploads took
        Measure("fraud_share_human_pool_run", "share of the human-streams pool paid to fraud uploads over the run",
                "share of the human pool", _SHARE, 2, "share"),
        Measure("fraud_share_ai_pool_run", "share of the AI pool paid to fraud uploads over the run",
                "share of the AI pool", _SHARE, 2, "share"),
        Measure("fraud_profit_month_mean", "the stream farm's profit (royalties less bot fees), mean over months",
                "$ a month", (None, None), 2, "money"),
    )
}

#: what a scenario's report leads with when its `compare:` section names no measures
DEFAULT_QUESTION_MEASURES = ("gini_income_run", "top10_share_income_run", "ai_misallocation_month_mean",
                             "creators_active_end")


def measure(name: str) -> Measure:
    """The measure called ``name``; a ``KeyError`` lists the names there are."""
    try:
        return MEASURES[name]
    except KeyError:
        raise KeyError(f"no measure {name!r}; measures: {', '.join(MEASURES)}") from None


def creator_income(creators: pd.DataFrame) -> pd.DataFrame:
    """Whole-run money per (scheme, seed, creator) from the creators' monthly table.

    Columns: ``scheme, seed, creator, income_run`` ($ over the run: human + AI pay), ``human_pay_run``,
    ``ai_pay_run``, ``true_share_run`` (mean monthly share of true contribution), ``months``, ``ever_active``
    (in the market in some month, or paid), ``active_end`` (in the market in the last month).
    """
    c = creators
    last = c["step"] == c.groupby(["scheme", "seed"])["step"].transform("max")
    g = c.assign(pay=c["human_pay"] + c["ai_pay"], active_last=c["active"] & last).groupby(
        ["scheme", "seed", "creator"], sort=False
    )
    out = g.agg(
        income_run=("pay", "sum"), human_pay_run=("human_pay", "sum"), ai_pay_run=("ai_pay", "sum"),
        true_share_run=("true_share", "mean"), months=("step", "nunique"), active_any=("active", "max"),
        active_end=("active_last", "max"),
    ).reset_index()
    out["ever_active"] = out.pop("active_any").astype(bool) | (out["income_run"] > 0)
    out["active_end"] = out["active_end"].astype(bool)
    return out


def _income_measures(g: pd.DataFrame) -> dict[str, float]:
    ever = g[g["ever_active"]]
    income = np.clip(ever["income_run"].to_numpy(dtype=float), 0, None)
    ai = np.clip(ever["ai_pay_run"].to_numpy(dtype=float), 0, None)
    if income.size == 0:
        income = ai = np.zeros(1)
    months = max(int(g["months"].max()), 1)
    return {
        "gini_income_run": metrics.gini(income),
        "top1_share_income_run": metrics.top_share(income, 0.01),
        "top10_share_income_run": metrics.top_share(income, 0.10),
        "bottom50_share_income_run": 1.0 - metrics.top_share(income, 0.50),
        "ai_top10_share_run": metrics.top_share(ai, 0.10),
        "income_month_mean": float(income.mean() / months),
        "creators_gone_end": float((g["ever_active"] & ~g["active_end"]).sum()),
    }


def _model_measures(g: pd.DataFrame) -> dict[str, float]:
    g = g.sort_values("step")
    first, last = g.iloc[0], g.iloc[-1]
    return {
        "gini_income_month": float(last["gini_income_month"]),
        "top10_share_income_month": float(last["top10_share_income_month"]),
        "share_below_line_month": float(last["share_below_line_month"]),
        "ai_misallocation_month_mean": float(g["ai_misallocation_month"].mean()),
        "ai_rank_agreement_month_mean": float(g["ai_rank_agreement_month"].mean()),
        "creators_active_start": float(first["active_creators"] + first["exits"] - first["entries"]),
        "creators_active_end": float(last["active_creators"]),
        "exits_run": float(g["exits"].sum()),
        "entries_run": float(g["entries"].sum()),
        "opted_in_end": float(last["opted_in"]),
        "opt_outs_run": float(g["opt_outs"].sum()),
        "ai_quality_end": float(last["ai_quality"]),
        "new_works_run": float(g["new_works"].sum()),
        "flooders_end": float(last["flooders"]),
        "imitation_drift_end": float(last["imitation_drift"]),
        "consumer_welfare_month_mean": float(g["consumer_welfare"].mean()),
        "platform_margin_month_mean": float(g["platform_margin"].mean()),
        **_market_measures(g),
    }


def _market_measures(g: pd.DataFrame) -> dict[str, float]:
    """The demand side's, welfare's and fraud's run-level measures (NaN on tables written before they existed)."""
    if "total_welfare" not in g.columns:
        return dict.fromkeys(_MARKET_MEASURES, float("nan"))
    last = g.iloc[-1]
    subs = g["subscribers"].to_numpy(dtype=float)
    human, ai = float(g["human_pool"].sum()), float(g["ai_pool"].sum())
    return {
        "subscribers_end": float(last["subscribers"]),
        "churn_month_mean": float(np.mean(np.divide(g["churns"].to_numpy(dtype=float), subs, out=np.zeros_like(subs),
                                                    where=subs > 0))),
        "revenue_month_mean": float(g["revenue"].mean()),
        "consumer_surplus_month_mean": float(g["consumer_surplus"].mean()),
        "platform_profit_month_mean": float(g["platform_profit"].mean()),
        "creator_surplus_month_mean": float(g["creator_surplus"].mean()),
        "total_welfare_month_mean": float(g["total_welfare"].mean()),
        "fraud_share_human_pool_run": float(g["fraud_human_paid"].sum()) / human if human > 0 else 0.0,
        "fraud_share_ai_pool_run": float(g["fraud_ai_paid"].sum()) / ai if ai > 0 else 0.0,
        "fraud_profit_month_mean": float(g["fraud_profit"].mean()),
    }


_MARKET_MEASURES = ("subscribers_end", "churn_month_mean", "revenue_month_mean", "consumer_surplus_month_mean",
                    "platform_profit_month_mean", "creator_surplus_month_mean", "total_welfare_month_mean",
                    "fraud_share_human_pool_run", "fraud_share_ai_pool_run", "fraud_profit_month_mean")


def run_measures(model: pd.DataFrame, income: pd.DataFrame, keys: Sequence[str] = ("scheme", "seed")) -> pd.DataFrame:
    """Every measure of :data:`MEASURES`, one row per ``keys`` (default: scheme and seed).

    Args:
        model: the monthly model table with :data:`MONTH_COLUMNS` names (``Results.model``, a sweep's table).
        income: :func:`creator_income` of the same runs (with the same ``keys`` columns).
        keys: what identifies one run of one arm (a sweep adds ``run_id``).
    """
    keys = list(keys)
    from_model = {k: _model_measures(g) for k, g in model.groupby(keys, sort=False)}
    from_income = {k: _income_measures(g) for k, g in income.groupby(keys, sort=False)}
    missing = sorted(set(from_model) ^ set(from_income), key=str)
    if missing:
        raise ValueError(f"the model and creator tables cover different runs: {missing[:5]}")
    rows = [{**dict(zip(keys, k if isinstance(k, tuple) else (k,))), **from_model[k], **from_income[k]}
            for k in from_model]
    return pd.DataFrame(rows, columns=keys + list(MEASURES))


def band_edges(n_creators: int) -> list[tuple[int, int]]:
    """Rank bands ``(first, last)`` (1-based, inclusive): top 10, 11-100, 101-1,000, the rest, as ``n`` allows."""
    edges, start = [], 1
    for end in (10, 100, 1000):
        if n_creators <= end:
            break
        edges.append((start, end))
        start = end + 1
    edges.append((start, n_creators))
    return edges


def rank_bands(income: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Each creator's rank band by whole-run income under the ``reference`` arm, seed by seed.

    Returns ``income`` with ``rank`` (1 = the best paid under the reference arm in that seed; ties share
    the lower rank) and ``band`` (e.g. ``"11-42"``) columns; a creator keeps their band in every arm.
    """
    ref = income[income["scheme"] == reference]
    if ref.empty:
        raise ValueError(f"no arm called {reference!r}; arms: {sorted(income['scheme'].unique())}")
    ranks = []
    for seed, g in ref.groupby("seed", sort=False):
        r = g["income_run"].rank(ascending=False, method="first").astype(int)
        labels = pd.Series(index=g.index, dtype=object)
        for first, last in band_edges(len(g)):
            labels[(r >= first) & (r <= last)] = f"top {last}" if first == 1 else f"{first:,}-{last:,}"
        ranks.append(pd.DataFrame({"seed": seed, "creator": g["creator"], "rank": r, "band": labels}))
    return income.merge(pd.concat(ranks), on=["seed", "creator"], how="left")


#: bounds of the model's monthly columns (for intervals over seeds); columns not listed are unbounded
MONTH_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    **{col: (0.0, 1.0) for col in ("gini_income_month", "top1_share_income_month", "top10_share_income_month",
                                   "atkinson_income_month", "hhi_income_month", "share_below_line_month",
                                   "ai_misallocation_month", "ai_quality", "imitation_drift", "unallocated_ai_share",
                                   "unallocated_human_share", "ai_stream_share", "fraud_human_share",
                                   "fraud_ai_share")},
    "ai_rank_agreement_month": (-1.0, 1.0),
    "platform_margin": (None, 1.0),
    **{col: (0.0, None) for col in ("active_creators", "opted_in", "entries", "exits", "opt_outs", "new_works",
                                    "flooders", "imitators", "theil_income_month", "revenue", "paid",
                                    "subscribers", "joins", "churns", "fraud_streams", "demonetised_streams",
                                    "fraud_uploads", "bot_fees", "fraud_human_paid", "fraud_ai_paid")},
}


def bounds_of(name: str) -> tuple[float | None, float | None]:
    """The bounds of a run-level measure or a monthly model column (``(None, None)`` when unbounded)."""
    if name in MEASURES:
        return MEASURES[name].bounds
    return MONTH_BOUNDS.get(name, (None, None))


def sweep_measures(table: pd.DataFrame, income: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """Every run-level measure of a sweep: one row per (run, scheme) with ``point``, ``seed`` and the swept
    parameters as columns (from a sweep's monthly ``table`` and its runs' :func:`creator_income`)."""
    if table.empty or income.empty:
        return pd.DataFrame()
    keys = ["run_id", "scheme", "seed"]
    found = run_measures(table, income, keys)
    ids = table.drop_duplicates("run_id").set_index("run_id")
    front = [c for c in ["point", *params] if c in ids.columns]
    for col in reversed(front):
        found.insert(1, col, found["run_id"].map(ids[col]))
    return found
