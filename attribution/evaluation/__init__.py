"""Attribution faithfulness: every method of a run scored against the same retraining ground truth.

The abstraction is an *evaluation*: piece-level score matrices (one per method, ``(n_outputs, n_pieces)``)
confronted with a :class:`~attribution.retrain.GroundTruth` of the same run, in every retraining mode it holds
("reshuffled": fresh training runs; "fixed": trajectory-exact replays of the full-data run). One module per
metric family, each a set of pure functions on arrays (tested against hand-computed values) plus the block
that adds that family's rows to the tidy metrics table:

* :mod:`.methods` -- the scores of every method: the run's table, TRAK variants, dattri's TRAK (the peer),
  a random baseline;
* :mod:`.lds` -- the linear datamodeling score per mode, its seed-vs-seed ceiling and cross-seed agreement;
* :mod:`.leaveout` -- leave-one-creator-out beside its matched random controls, leave-one-piece-out, the
  creator-level SNR, and the replay-exactness check of the fixed mode;
* :mod:`.overlap` -- similarity against TDA (top-k overlap, hidden influencers, rank profile), the peer
  against ours;
* :mod:`.catalogue` -- catalogue-level group influence (first-order TRAK sum plus the catalogue's second-order
  self-influence), cross-validated across creators, and the partial correlation given catalogue size;
* :mod:`.best` -- the most faithful causal method at creator level, written for the economy
  (``best_method.yaml``, see :mod:`attribution.best_method`);
* :mod:`.costs` -- each method's cost next to the retraining's;
* :mod:`.metrics` -- the tidy metrics table (method, family, mode, metric, value, CI, spread, n);
* :mod:`.report` -- findings, the printed tables, figures and ``report.html``;
* :mod:`.run` -- :func:`evaluate`, which writes ``RUN/evaluation/`` (see :data:`~.run.FILES`).
"""

from ..snr import bootstrap_mean_ci, creator_snr
from .best import write_best
from .catalogue import (
    CatalogueTerms,
    GroupFit,
    catalogue_terms,
    cross_validated_scores,
    fit_group_influence,
    partial_r,
    self_influence,
)
from .costs import cost_table
from .lds import lds_mode_metrics, lds_per_output, mode_agreement, spearman
from .leaveout import (
    SNR_COLUMNS,
    control_summary,
    creator_matrix,
    loco_metrics,
    loco_per_output,
    loo_metrics,
    replay_exactness,
)
from .methods import (
    EVAL_DIR,
    dattri_trak_scores,
    method_scores,
    random_scores,
    stored_trak_features,
    trak_from_features,
)
from .trak_variants import ENSEMBLE_SIZES, ensemble_checkpoints, ensemble_method, trak_margin, trak_over_models, trak_over_projections
from .metrics import METRIC_COLUMNS, MetricRows
from .overlap import mass_outside_topk, rank_profile, topk_overlap
from .report import FIGURES, findings, lds_table, leaveout_table, write_report
from .run import FILES, HEADLINE_MODE, SNR_FILE, SNR_NET_FILE, Evaluation, evaluate, lds_truths

__all__ = [
    "spearman",
    "lds_per_output",
    "lds_mode_metrics",
    "mode_agreement",
    "bootstrap_mean_ci",
    "topk_overlap",
    "mass_outside_topk",
    "rank_profile",
    "creator_matrix",
    "loco_per_output",
    "loco_metrics",
    "loo_metrics",
    "replay_exactness",
    "control_summary",
    "creator_snr",
    "random_scores",
    "dattri_trak_scores",
    "trak_from_features",
    "stored_trak_features",
    "trak_over_models",
    "trak_over_projections",
    "ensemble_checkpoints",
    "ENSEMBLE_SIZES",
    "ensemble_method",
    "trak_margin",
    "method_scores",
    "cost_table",
    "CatalogueTerms",
    "GroupFit",
    "catalogue_terms",
    "self_influence",
    "fit_group_influence",
    "cross_validated_scores",
    "partial_r",
    "write_best",
    "MetricRows",
    "METRIC_COLUMNS",
    "SNR_COLUMNS",
    "Evaluation",
    "evaluate",
    "lds_truths",
    "findings",
    "lds_table",
    "leaveout_table",
    "write_report",
    "FIGURES",
    "FILES",
    "EVAL_DIR",
    "HEADLINE_MODE",
    "SNR_FILE",
    "SNR_NET_FILE",
]
