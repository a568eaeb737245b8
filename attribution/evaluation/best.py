"""The evaluation's verdict for the economy: which method is most faithful at creator level on this run.

After every method has been scored against leave-one-creator-out, :func:`write_best` picks the causal method
with the highest creator-level SNR against it (:func:`attribution.best_method.choose_best`) and writes
``RUN/evaluation/best_method.yaml`` with that method's catalogue scores for every creator of the run
(``best_scores.parquet``), which a scenario's ``causal_method: best`` pays on. For ``group_influence`` the
scores come from its parameters fitted on every left-out creator (the cross-validated fits only score it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..best_method import BEST_FILE, BEST_SCORES_FILE, choose_best, method_cost, write_best_method
from .catalogue import METHOD as GROUP_METHOD
from .catalogue import LOCAL_1CKPT_METHOD, LOCAL_METHOD, SELF_METHOD, CatalogueTerms, fit_group_influence
from .leaveout import SELF_RIDGE, TRUTHS, creator_matrix

__all__ = ["write_best", "creator_scores"]


def creator_scores(method: str, scores: dict[str, np.ndarray], catalogue: CatalogueTerms | None,
                   truth: tuple[np.ndarray, list[str]], creators: np.ndarray, names: list[str]) -> tuple[np.ndarray, dict]:
    """(n_outputs, len(names)) catalogue scores of ``method`` for every creator, and the fit used (if any)."""
    if method in (GROUP_METHOD, SELF_METHOD, LOCAL_METHOD, LOCAL_1CKPT_METHOD):
        if method == LOCAL_1CKPT_METHOD:  # the same estimator on the final checkpoint's terms
            catalogue, method = catalogue.final, LOCAL_METHOD
        terms = catalogue.columns(names)
        if method == SELF_METHOD:
            return np.tile(terms.second[SELF_RIDGE], (len(truth[0]), 1)), {"ridge": SELF_RIDGE}
        deltas, fitted_on = truth
        fitted = catalogue.columns(fitted_on)
        if method == LOCAL_METHOD:
            terms, fitted = terms.localised(), fitted.localised()
        fit = fit_group_influence(fitted, deltas)
        return fit.scores(terms), {"ridge": fit.ridge, "weight": fit.weight, "kappa": fit.kappa(fitted), "r": fit.r,
                                   "fitted_on": list(fitted_on)}
    return creator_matrix(scores[method], creators, names), {}


def write_best(run_dir: Path, snr: pd.DataFrame, truths: dict, scores: dict[str, np.ndarray],
               catalogue: CatalogueTerms | None, inputs, costs: pd.DataFrame, models: pd.DataFrame,
               facts: dict) -> dict | None:
    """Write the run's best-method record and scores (or remove stale ones when nothing qualifies); its record."""
    best = choose_best(snr, "loco")
    if best is None or "loco" not in truths:
        for f in (BEST_FILE, BEST_SCORES_FILE):
            (run_dir / f).unlink(missing_ok=True)
        return None
    method = str(best["method"])
    names = sorted(set(inputs.creators))
    matrix, fit = creator_scores(method, scores, catalogue, truths["loco"], inputs.creators, names)
    table = pd.DataFrame({"output_id": np.repeat(list(inputs.output_ids), len(names)),
                          "creator": np.tile(names, len(inputs.output_ids)), "score": matrix.ravel()})
    snr_loco = snr[snr["truth"] == "loco"].set_index("method")
    net = snr[(snr["truth"] == "loco_net") & (snr["method"] == method)]
    loco_models = models[models["kind"] == "loco"] if len(models) else models
    threads = loco_models["threads"].fillna(1) if "threads" in loco_models else 1
    size = snr_loco.loc["catalogue_size"] if "catalogue_size" in snr_loco.index else None
    record = {
        "method": method,
        "family": str(best["family"]),
        "snr": float(best["snr"]), "snr_low": float(best["snr_low"]), "snr_high": float(best["snr_high"]),
        "r": float(best["r"]), "snr_corrected": float(best["snr_corrected"]),
        "truth": "loco", "truth_label": TRUTHS["loco"], "mode": str(best["mode"]), "creators": int(best["creators"]),
        "seeds": list(facts.get("loco_seeds", [])), "reliability": float(best["reliability"]),
        "catalogue_size_snr": float(size["snr"]) if size is not None else float("nan"),
        "snr_net": float(net["snr"].iloc[0]) if len(net) else float("nan"),
        "cost_core_seconds": method_cost(method, costs),
        "ground_truth_core_seconds": float((loco_models["seconds"] * threads).sum()) if len(loco_models) else float("nan"),
        "ground_truth_models": int(len(loco_models)),
        "candidates": {str(m): float(v) for m, v in snr_loco["snr"].items()},
        "outputs_fingerprint": inputs.outputs_sha256,
    }
    if fit:
        record["fit"] = fit
    write_best_method(run_dir, record, table)
    return record
