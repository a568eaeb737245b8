"""Costs: what each attribution method cost next to the retraining it approximates, in CPU-seconds.

CPU-seconds (wall seconds times the threads used) make a multi-threaded build stage and 1- or 2-thread
retraining comparable. The ground truth's models are listed by kind and retraining mode: LDS subsets per mode,
leave-one-creator-out, its matched random controls, leave-one-piece-out, the replay check and the full-data
references.
"""

from __future__ import annotations

import os

import pandas as pd

__all__ = ["COST_COLUMNS", "GROUND_TRUTH_ITEMS", "cost_table"]

COST_COLUMNS = ["item", "kind", "seconds", "core_seconds"]
# (kind, order or None for any, label), in the order the costs are listed
GROUND_TRUTH_ITEMS = (
    ("lds", "reshuffled", "retraining: LDS subsets, reshuffled"),
    ("lds", "fixed", "retraining: LDS subsets, fixed order (trajectory-exact)"),
    ("loco", None, "retraining: leave-one-creator-out"),
    ("ctrl", None, "retraining: matched random controls"),
    ("loo", None, "retraining: leave-one-piece-out"),
    ("replay", None, "retraining: replay check (nothing removed)"),
    ("full", None, "retraining: full-data references"),
)


def cost_table(attribution_costs: list[dict], models: pd.DataFrame, meta: dict) -> tuple[pd.DataFrame, dict]:
    """The cost table (item, kind, seconds, core_seconds) and its facts.

    Args:
        attribution_costs: item, kind ("attribution"), seconds -- measured on the build's threads.
        models: the ground truth's models.parquet (kind, order, seconds, threads).
        meta: the run's build config (its ``threads``, else the machine's cores).
    """
    costs = [dict(c) for c in attribution_costs]
    order = models["order"] if "order" in models else pd.Series("reshuffled", index=models.index)
    threads = models["threads"].fillna(1) if "threads" in models else pd.Series(1, index=models.index)
    for kind, mode, label in GROUND_TRUTH_ITEMS:
        pick = (models["kind"] == kind) & ((order == mode) if mode else True)
        if pick.sum():
            costs.append({"item": f"{label} ({int(pick.sum())} model{'' if pick.sum() == 1 else 's'})", "kind": "ground truth",
                          "seconds": float(models.loc[pick, "seconds"].sum()),
                          "core_seconds": float((models.loc[pick, "seconds"] * threads[pick]).sum())})
    # a build that left the thread count to torch ran on every core of its machine (taken to be this one's)
    build_threads = int(meta.get("config", {}).get("threads") or meta.get("machine", {}).get("cpus") or os.cpu_count() or 1)
    for c in costs:  # an item measured in CPU-seconds already (training a method's own models) keeps them
        if c["kind"] == "attribution" and c.get("core_seconds") is None:
            c["core_seconds"] = c["seconds"] * build_threads
    table = pd.DataFrame(costs, columns=COST_COLUMNS)
    facts = {
        "ground_truth_core_seconds": float((models["seconds"] * threads).sum()) if len(models) else 0.0,
        "build_threads": build_threads,
        "models": int(len(models)),
        "seconds_per_model": float(models["seconds"].median()) if len(models) else float("nan"),
    }
    return table, facts
