"""The metagradient method of an evaluation: replayed metagradients (:mod:`attribution.estimators.metagradient`) on
a run folder, cached in ``RUN/evaluation/metagradient.npz``.

The run's recorded training (``model/train_config.yaml``, ``model/windows.npz``) is replayed from its seed and must
end on the run's final checkpoint (else the run is refused: its scores would belong to another training run); the
scores are ``d loglik(output) / d w_window`` summed over each piece's windows, the first-order prediction of the
trajectory-exact ("fixed" order) leave-out ground truth. With ``outputs`` set, a seeded sample of outputs is
scored and the other outputs' rows are NaN: per-output metrics (LDS) are then over the sample.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
from pathlib import Path


from ..retrain import RunInputs
from ..windows import piece_sum

__all__ = ["cached_metagradient", "cost_item", "METHOD"]

log = logging.getLogger(__name__)

METHOD = "metagradient"


def cached_metagradient(run_dir: Path, inputs: RunInputs, settings: dict | None = None):
    """Piece scores ``(n_outputs, n_pieces)`` and the :class:`~attribution.estimators.EstimatorResult` (window
    scores, seconds, facts) of the metagradient method, from the cache when it was made for exactly this run's
    final weights, recipe, windows, outputs, settings and torch version.

    Raises:
        FileNotFoundError: the final checkpoint is missing and no cache for it stands.
        ValueError: the replay does not reproduce the recorded run, or a setting is invalid.
    """
    from ..estimators.common import cached_scores, fingerprint
    from ..estimators.metagradient import MetagradientConfig, metagradient_scores

    cfg = MetagradientConfig(**(settings or {}))
    steps = int(inputs.train_config["steps"])
    ckpt = Path(run_dir) / "model" / f"ckpt_{steps:06d}.pt"
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "absent"
    key = {"estimator": METHOD, "settings": cfg.to_dict(), "torch": torch_version, "checkpoint": ckpt.name,
           "recipe": {"model": inputs.model_config, "train": {k: v for k, v in inputs.train_config.items() if k != "threads"}},
           "windows": fingerprint(inputs.train_tokens), "outputs": fingerprint(inputs.output_tokens)}
    path = Path(run_dir) / "evaluation" / f"{METHOD}.npz"
    if not ckpt.is_file():
        held, _ = cached_scores(path, key, None, ignore=("weights",))
        if held is None:
            raise FileNotFoundError(
                f"{ckpt} (the run's final weights) is missing and {path} holds no metagradient scores for it and these "
                "settings; rebuild the run, or leave metagradient out of --methods"
            )
        log.info("%s: the final checkpoint is not here; using the metagradient scores cached in %s", run_dir, path)
        return piece_sum(held.scores, inputs.train_piece, inputs.n_pieces), held
    key["weights"] = hashlib.sha256(ckpt.read_bytes()).hexdigest()[:16]

    def compute():
        from ..train import load_checkpoint

        recorded = load_checkpoint(ckpt)["model"]
        return metagradient_scores(inputs.model_config, inputs.train_config, inputs.train_tokens, inputs.output_tokens,
                                   cfg, recorded)

    result, _ = cached_scores(path, key, compute)
    return piece_sum(result.scores, inputs.train_piece, inputs.n_pieces), result


def cost_item(result, n_outputs: int) -> str:
    """The cost table's line for the method: what was replayed, for how many outputs."""
    f = result.facts
    scored = len(f.get("outputs_scored", []))
    return (f"metagradient: replayed metagradients through the {f.get('steps')}-step training run ({f.get('dtype')}, "
            f"explicit attention), {scored} of {n_outputs} outputs, {result.n_params} parameters")

