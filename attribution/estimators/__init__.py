"""Influence-function estimators computed through external libraries, each a method of the evaluation.

The abstraction is an *estimator*: given a trained model, its training windows and the generated outputs, the
window-level scores ``(n_outputs, n_windows)`` of the same task TRAK attributes (:mod:`.common`), with what they
cost and which parameters they cover. One module each:

* :mod:`.ekfac` -- EK-FAC influence functions through ``kronfluence`` (method ``ekfac``);
* :mod:`.logra` -- LoGra, Kronecker-factored projected gradients with their own curvature, through dattri's
  ``LoGraAttributor`` (method ``logra``);
* :mod:`.common` -- the shared task, result and score cache.

:data:`ESTIMATORS` maps each method's name to its settings class and scoring function; the evaluation
(:mod:`attribution.evaluation.methods`) runs those asked for with ``--methods`` and caches their scores.
"""

from .common import EstimatorResult, cached_scores, covered_parameters, linear_modules, window_nll
from .ekfac import EkfacConfig, ekfac_scores
from .logra import LograConfig, logra_scores

__all__ = [
    "ESTIMATORS",
    "EstimatorResult",
    "EkfacConfig",
    "LograConfig",
    "ekfac_scores",
    "logra_scores",
    "cached_scores",
    "covered_parameters",
    "linear_modules",
    "window_nll",
]

# method name -> (settings class, scoring function(model, train_tokens, output_tokens, cfg) -> EstimatorResult)
ESTIMATORS = {
    "ekfac": (EkfacConfig, ekfac_scores),
    "logra": (LograConfig, logra_scores),
}
