"""Ground truth by retraining: the counterfactual models that training-data attribution approximates.

A *ground truth* is a set of models retrained with the run's own recipe (``model/train_config.yaml``)
on subsets of its own training windows (``model/windows.npz``), each scored with the utility TRAK
attributes: the log-likelihood of every generated output (:func:`~attribution.model.sequence_log_likelihood`)
and the mean log-likelihood per event of the held-out real music. Kinds of retrained model (a
:class:`RetrainJob` each):

* ``lds``  – a random ``lds.fraction`` of the training *pieces*, ``lds.subsets`` subsets x ``lds.seeds``,
  each retrained from scratch with its own batch order ("reshuffled" mode): the linear datamodeling score
  (LDS) compares summed attribution over a subset with these utilities.
* ``lds`` in fixed order (``lds_fixed``, folder ``lds_fixed/``) – the same subsets, in trajectory-exact mode:
  each replays its seed's full-data reference run (same initialisation, same batch order, same thread
  count, deterministic kernels) with the windows of the pieces outside the subset removed from their
  batches. This is the counterfactual a royalty claim names ("this training run without my music"); the
  reshuffled mode is the one TDA methods are usually checked against. Removed windows leave the batch
  mean (see :func:`attribution.train.train_model`).
* ``full`` – all pieces, one model per seed used by ``loco``/``loo``/``lds_fixed``: the reference the
  changes are measured from and the run the fixed-order models replay.
* ``replay`` – with ``full.replay_check``, the reference replayed in fixed order with nothing removed: its
  utilities must equal the reference's (the exactness of the fixed-order mode, in nats).
* ``loco`` – leave one creator's whole catalogue out, per creator and seed (royalties are paid per
  catalogue; the held-out utility drop is the creator's counterfactual value to the model). By default
  (``loco.order: fixed``) the left-out model replays its seed's full-data run with the creator's windows
  removed from every batch, so its difference from the reference is the data alone; a fresh run on the
  remaining windows (``reshuffled``) also changes the batch order, which on the default build moves the
  outputs' log-likelihood about as much as a new seed.
* ``ctrl`` – with ``loco.controls``, per left-out catalogue, random pieces of *other* creators with the same
  total training events left out instead (:func:`control_mask`): "what removing that much music does",
  so that "what this creator's music did" can be reported apart from it.
* ``loo``  – leave one piece out, for a seeded sample of pieces and several seeds (noisy by nature).

Layout under ``RUN/ground_truth/``::

    config.yaml               the GroundTruthConfig used last
    config_history.yaml       every GroundTruthConfig run into this folder, oldest first, with its start time
                              (a folder may hold several configs' models, e.g. the default then an add-on)
    <kind>/<name>_seed<s>/    one model: train_config.yaml, history; when finished ``meta.yaml`` (kind, seed,
                              left-out creator/piece, kept piece indices, training seconds) and
                              ``utilities.npz`` (outputs: log-likelihood of each output in outputs.parquet
                              order; heldout: mean log-likelihood per held-out event). Weights are deleted
                              after scoring unless ``keep_weights`` is set.
    models.parquet            one row per finished model: kind, name, seed, left_out, order, n_pieces,
                              n_windows, seconds, threads, heldout_ll
    utilities.parquet         kind, name, seed, output_id, utility  (tidy; every finished model)
    lds_masks.npy             (subsets, n_pieces) bool, row j = subset j (corpus.parquet row order), reshuffled mode
    lds_fixed_masks.npy       the same for the fixed-order subsets with a finished model
    ctrl.parquet              creator (the catalogue matched), draw, seed, output_id, delta: matched random controls
    outputs.sha256            fingerprint of the generated outputs every utility was measured on
    loco.parquet              creator, seed, output_id, delta  (full minus without-creator utility;
                              output_id ``__heldout__`` = held-out log-likelihood per event)
    creator_value.parquet     creator, value, basis, seeds  (mean over seeds of the held-out drop per event)
    creator_contribution.parquet  output_id, creator, delta, basis, seeds: every creator's counterfactual
                              contribution to each output and to held-out music (the economy's "true
                              contribution"); with ``loco.rest`` the unlisted creators share their group's
                              difference in proportion to training events (basis "group", else "alone")
    loo.parquet               train_id, creator, seed, output_id, delta  (same convention, one piece left out)

A model is finished when its ``meta.yaml`` exists (written last, atomically), so a rerun skips it; an
interrupted model resumes from its own ``last.pt``. Subset masks and the leave-one-out sample are pure
functions of their seeds and indices, so raising ``lds.subsets`` or ``loo.pieces`` keeps every model
already trained. Models train as tasks on Dask (``dask.distributed``, the engine sweeps use): a local
cluster of ``workers`` single-threaded processes by default, an existing cluster with ``scheduler``, or in
this process with one worker; each model sets its own torch thread count (``threads``; default: the
machine's cores shared among the workers). A model's numbers depend on its job, seed and thread count only
(recorded in ``meta.yaml``; the thread count changes the order of floating-point sums), never on which
worker trained it or how many there were; a fixed-order model always runs on its reference's thread
count. Every finished model records ``inputs_sha256`` (the run's training windows and recipe): a model of
other inputs is refused, before anything is written, rather than reused.

Modules: :mod:`.config` (what to retrain), :mod:`.plan` (the run's inputs and one job per model),
:mod:`.execute` (training the jobs, in this process or on Dask) and :mod:`.collect` (the tidy tables and the
:class:`GroundTruth` arrays); the file names and pandas-only readers are in :mod:`attribution.groundtruth_files`.
"""

from __future__ import annotations

from ..groundtruth_files import GROUND_TRUTH_DIR, HELDOUT, OUTPUTS_FINGERPRINT, REST, creator_contribution
from .collect import GroundTruth, LdsTruth, collect_groundtruth, load_groundtruth
from .config import GroundTruthConfig, GroundTruthConfigError, load_groundtruth_config
from .execute import GroundTruthRun, output_utilities, run_groundtruth, train_job
from .plan import RetrainJob, RunInputs, control_mask, lds_mask, load_run_inputs, loo_sample, plan_jobs

__all__ = [
    "GroundTruthConfig",
    "GroundTruthConfigError",
    "RetrainJob",
    "RunInputs",
    "GroundTruthRun",
    "train_job",
    "output_utilities",
    "loo_sample",
    "GroundTruth",
    "LdsTruth",
    "control_mask",
    "OUTPUTS_FINGERPRINT",
    "GROUND_TRUTH_DIR",
    "load_groundtruth_config",
    "load_run_inputs",
    "plan_jobs",
    "lds_mask",
    "run_groundtruth",
    "collect_groundtruth",
    "load_groundtruth",
    "HELDOUT",
    "REST",
    "creator_contribution",
]

