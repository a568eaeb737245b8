"""The most faithful creator-level method of a run: chosen by its evaluation, read by the economy (no torch).

``royaltysim attribution evaluate`` measures every method's creator-level signal-to-noise ratio against
leave-one-creator-out retraining and writes which one is most faithful on that run:

* ``RUN/evaluation/best_method.yaml`` -- the method, its SNR with a 95% CI, the truth it was measured on (mode,
  creators, seeds, reliability), the catalogue-size baseline's SNR on the same truth, its cost next to the
  ground truth's, the fitted parameters (for ``group_influence``) and the fingerprint of the outputs it scored;
* ``RUN/evaluation/best_scores.parquet`` -- that method's catalogue-level scores for every creator of the run
  (output_id, creator, score): what a scenario's ``causal_method: best`` pays on. A catalogue-level estimator
  (``group_influence``) is not a sum of piece scores, so the economy reads its creator matrix from here.

This module holds the file names, the choice (:func:`choose_best`, a pure function of the SNR table), the cost
of a method (:func:`method_cost`) and the reader (:func:`read_best_method`, which refuses a record measured on
other outputs than the run holds). It imports numpy, pandas and yaml only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .errors import AttributionError

__all__ = [
    "BEST",
    "BEST_FILE",
    "BEST_SCORES_FILE",
    "CANDIDATE_FAMILIES",
    "BestMethodError",
    "BestMethod",
    "choose_best",
    "method_cost",
    "write_best_method",
    "read_best_method",
]

BEST = "best"  # the causal_method name that means "the method this run's evaluation found most faithful"
BEST_FILE = Path("evaluation") / "best_method.yaml"
BEST_SCORES_FILE = Path("evaluation") / "best_scores.parquet"
CANDIDATE_FAMILIES = ("tda", "peer")  # causal estimators; baselines and similarity proxies are never "best"
_SCORE_COLUMNS = ["output_id", "creator", "score"]
_KEYS = ("method", "snr", "snr_low", "snr_high", "truth", "outputs_fingerprint")


class BestMethodError(AttributionError):
    """An evaluation's best-method record cannot be used (damaged, or measured on other outputs)."""


@dataclass(frozen=True)
class BestMethod:
    """A run's best-method record (``record``: the YAML as written) and its creator scores (tidy)."""

    record: dict
    scores: pd.DataFrame  # output_id, creator, score

    @property
    def method(self) -> str:
        return str(self.record["method"])

    @property
    def snr(self) -> float:
        return float(self.record["snr"])

    def label(self) -> str:
        """One line for reports: the method, its SNR with CI and the truth it was measured on."""
        r = self.record
        return (f"{r['method']} (creator-level SNR {r['snr']:.2f} [{r['snr_low']:.2f}, {r['snr_high']:.2f}] against "
                f"{r.get('truth_label', r['truth'])}, {r.get('creators', '?')} creators; catalogue size "
                f"{r.get('catalogue_size_snr', float('nan')):.2f})")

    def matrix(self, output_ids: list[str], creators: list[str], path: Path) -> np.ndarray:
        """(n_outputs, n_creators) scores; ``BestMethodError`` naming ``path`` when an output or creator is missing."""
        wide = self.scores.pivot_table(index="output_id", columns="creator", values="score", aggfunc="first")
        missing_o = [o for o in output_ids if o not in wide.index]
        missing_c = [c for c in creators if c not in wide.columns]
        if missing_o or missing_c:
            raise BestMethodError(
                f"{path} lacks outputs {missing_o[:3]} / creators {missing_c[:3]} of the run: it holds the outputs and "
                "creators the evaluation scored (pieces scored later with `royaltysim attribution score` have no "
                "catalogue-level scores); rerun `royaltysim attribution evaluate RUN`, or name a method in "
                "source.causal_method (e.g. trak)"
            )
        return wide.reindex(index=output_ids, columns=creators).to_numpy(dtype=float)


def choose_best(snr: pd.DataFrame, truth: str = "loco") -> pd.Series | None:
    """The causal method with the highest SNR against ``truth`` (rows of the evaluation's SNR table), or None.

    Candidates are the ``tda`` and ``peer`` families with a finite SNR; ties go to the first listed.
    """
    if snr is None or not len(snr):
        return None
    rows = snr[(snr["truth"] == truth) & snr["family"].isin(CANDIDATE_FAMILIES) & np.isfinite(snr["snr"].astype(float))]
    if not len(rows):
        return None
    return rows.loc[rows["snr"].astype(float).idxmax()]


# (prefix of a method's name, the cost items it needs: prefixes of the cost table's items)
_COST_RULES = (
    ("group_influence_local_1ckpt", ("group influence (final checkpoint)",)),
    ("group_", ("trak + tracin", "group influence:")),
    ("trak_ridge", ("trak + tracin", "trak_ridge")),
    ("trak_1ckpt_ridge", ("trak + tracin", "trak_ridge")),
    ("trak_1ckpt_proj", ("trak + tracin", "trak_1ckpt with")),
    ("trak_models", ()),  # its own items, named by the method: traker over its models, and training them (below)
    ("trak_margin", ("trak_margin + ",)),
    ("metagradient", ("metagradient:",)),
    ("dattri_trak_1ckpt_proj", ("dattri_trak_1ckpt",)),
    ("dattri", ()),  # its own item, named by the method (below)
    ("ekfac", ("ekfac:",)),  # the influence estimators' own items (attribution.evaluation.methods)
    ("logra", ("logra:",)),
    ("", ("trak + tracin",)),  # trak, trak_1ckpt, tracin, grad_dot, grad_cos: the build's one traker pass
)


def method_cost(method: str, costs: pd.DataFrame) -> float:
    """CPU-seconds a method cost: the sum of the cost items it needs (NaN when none is recorded)."""
    if not len(costs):
        return float("nan")
    items = costs["item"].astype(str)
    needs = next(need for prefix, need in _COST_RULES if method.startswith(prefix))
    pick = items.str.startswith(tuple(needs)) if needs else pd.Series(False, index=costs.index)
    if method.startswith(("dattri", "trak_models")):
        pick |= items.str.startswith(method + " ") | items.str.startswith(method + ":")
    pick &= costs["kind"] == "attribution"
    return float(costs.loc[pick, "core_seconds"].sum()) if pick.any() else float("nan")


def write_best_method(run_dir: str | Path, record: dict, scores: pd.DataFrame) -> Path:
    """Write ``best_method.yaml`` and ``best_scores.parquet`` (output_id, creator, score) under ``RUN/evaluation``."""
    run_dir = Path(run_dir)
    missing = [k for k in _KEYS if k not in record]
    assert not missing, missing
    (run_dir / BEST_FILE).parent.mkdir(parents=True, exist_ok=True)
    scores[_SCORE_COLUMNS].to_parquet(run_dir / BEST_SCORES_FILE, index=False)
    clean = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in record.items()}
    (run_dir / BEST_FILE).write_text(
        "# written by `royaltysim attribution evaluate`: the most faithful creator-level method on this run;\n"
        "# a scenario's `source.causal_method: best` pays on its scores (best_scores.parquet)\n"
        + yaml.safe_dump(clean, sort_keys=False))
    return run_dir / BEST_FILE


def read_best_method(run_dir: str | Path, check_outputs: bool = True) -> BestMethod | None:
    """The run's best-method record and scores; None when the run has not been evaluated (no record).

    Raises:
        BestMethodError: the record or its scores are damaged, or (``check_outputs``) were measured on other
            generated outputs than the run holds now (the run was rebuilt after its evaluation).
    """
    run_dir = Path(run_dir)
    path, scores_path = run_dir / BEST_FILE, run_dir / BEST_SCORES_FILE
    if not path.is_file():
        return None
    fix = "rerun `royaltysim attribution evaluate RUN`, or name a method in source.causal_method (e.g. trak)"
    try:
        record = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BestMethodError(f"{path} is not valid YAML ({exc}); {fix}") from exc
    missing = [k for k in _KEYS if not isinstance(record, dict) or k not in record]
    if missing:
        raise BestMethodError(f"{path} lacks {missing}; it was written by another version or damaged: {fix}")
    if not scores_path.is_file():
        raise BestMethodError(f"{path} names {record['method']!r} but {scores_path} is missing; {fix}")
    scores = pd.read_parquet(scores_path)
    if [c for c in _SCORE_COLUMNS if c not in scores.columns] or not np.isfinite(scores["score"].to_numpy(float)).all():
        raise BestMethodError(f"{scores_path} lacks the columns {_SCORE_COLUMNS} or holds non-finite scores; {fix}")
    if check_outputs:
        from .table import outputs_fingerprint

        try:
            now = outputs_fingerprint(run_dir)
        except FileNotFoundError:
            now = None
        if now is not None and now != record["outputs_fingerprint"]:
            raise BestMethodError(
                f"{path} is stale: it was measured on other generated outputs than {run_dir / 'outputs.parquet'} holds "
                f"now (the run was rebuilt after its evaluation); {fix}")
    return BestMethod(record, scores)
