"""The retraining ground truth's files on disk, read with pandas alone.

:mod:`attribution.retrain` trains the counterfactual models and writes their tidy tables under
``RUN/ground_truth/``; this module is the one place that names those files and reads them back. It imports
no torch (only numpy and pandas), so the economy (:mod:`royaltysim.population`) and the evaluation read a
ground truth without paying for torch start-up.

Contents:

* the folder and file names (``LOCO``, ``CONTROLS``, ``CREATOR_CONTRIBUTION`` ...), the output id of held-out
  music (``HELDOUT``) and the name of the group of creators left out together (``REST``);
* :func:`is_stale` -- the outputs fingerprint check: was the ground truth measured on the outputs the run
  holds now?
* readers (:func:`read_loco`, :func:`read_controls`, :func:`read_creator_value`, :func:`read_contribution`
  ...) that return ``None`` for a file the ground truth does not have and raise
  :class:`GroundTruthFileError` for one that lacks a column;
* the derived tables that are pure functions of those files: :func:`creator_contribution` (each creator's
  counterfactual contribution, the economy's "true contribution") and :func:`net_of_controls` (leave-one-
  creator-out minus its matched random control: what a creator's music did beyond removing that much music).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = [
    "GROUND_TRUTH_DIR",
    "CONFIG",
    "CONFIG_HISTORY",
    "MODELS",
    "UTILITIES",
    "LDS_MASKS",
    "LDS_FIXED_MASKS",
    "OUTPUTS_FINGERPRINT",
    "LOCO",
    "CONTROLS",
    "LOO",
    "CREATOR_VALUE",
    "CREATOR_CONTRIBUTION",
    "HELDOUT",
    "REST",
    "COLUMNS",
    "GroundTruthFileError",
    "ground_truth_path",
    "recorded_fingerprint",
    "is_stale",
    "read_table",
    "read_models",
    "read_loco",
    "read_controls",
    "read_loo",
    "read_creator_value",
    "read_contribution",
    "creator_contribution",
    "net_of_controls",
    "net_contribution",
]

GROUND_TRUTH_DIR = "ground_truth"  # RUN/ground_truth/
CONFIG = "config.yaml"  # the GroundTruthConfig used last
CONFIG_HISTORY = "config_history.yaml"  # every GroundTruthConfig run into the folder, oldest first
MODELS = "models.parquet"  # one row per finished model
UTILITIES = "utilities.parquet"  # kind, name, seed, output_id, utility
LDS_MASKS = "lds_masks.npy"  # (subsets, n_pieces) bool, reshuffled mode
LDS_FIXED_MASKS = "lds_fixed_masks.npy"  # the same for the fixed-order (trajectory-exact) mode
OUTPUTS_FINGERPRINT = "outputs.sha256"  # attribution.table.outputs_fingerprint of the outputs every utility scored
LOCO = "loco.parquet"  # creator, seed, output_id, delta (full minus without the creator)
CONTROLS = "ctrl.parquet"  # creator (matched to), draw, seed, output_id, delta (full minus without the control's pieces)
LOO = "loo.parquet"  # train_id, creator, seed, output_id, delta
CREATOR_VALUE = "creator_value.parquet"  # creator, value (held-out drop per event), basis, seeds
CREATOR_CONTRIBUTION = "creator_contribution.parquet"  # output_id, creator, delta, basis, seeds

HELDOUT = "__heldout__"  # output_id of the held-out real-music utility (mean log-likelihood per event)
REST = "__rest__"  # creator name of the model that left every creator not listed in loco.creators out together

# the columns a reader needs of each table (others may be present)
COLUMNS: dict[str, list[str]] = {
    MODELS: ["kind", "name", "seed", "seconds"],
    LOCO: ["creator", "seed", "output_id", "delta"],
    CONTROLS: ["creator", "draw", "seed", "output_id", "delta"],
    LOO: ["train_id", "creator", "seed", "output_id", "delta"],
    CREATOR_VALUE: ["creator", "value"],
    CREATOR_CONTRIBUTION: ["output_id", "creator", "delta"],
}


class GroundTruthFileError(ValueError):
    """A ground-truth file exists but cannot be used (a missing column); the message names the file and the fix."""


def ground_truth_path(run_dir: str | Path, name: str = "") -> Path:
    """``RUN/ground_truth/<name>`` (the folder itself without a name)."""
    root = Path(run_dir) / GROUND_TRUTH_DIR
    return root / name if name else root


def recorded_fingerprint(run_dir: str | Path) -> str | None:
    """The outputs fingerprint the ground truth recorded (None when it recorded none)."""
    path = ground_truth_path(run_dir, OUTPUTS_FINGERPRINT)
    return path.read_text().strip() if path.is_file() else None


def is_stale(run_dir: str | Path) -> bool:
    """True when the ground truth was measured on other generated outputs than the run holds now.

    A ground truth without a recorded fingerprint, or a run without its outputs' token files, has nothing to
    compare and counts as current.
    """
    from .table import outputs_fingerprint  # pandas and numpy only

    recorded = recorded_fingerprint(run_dir)
    if recorded is None:
        return False
    try:
        return recorded != outputs_fingerprint(run_dir)
    except FileNotFoundError:
        return False


def read_table(run_dir: str | Path, name: str) -> pd.DataFrame | None:
    """A parquet table of the ground truth, or None when the ground truth does not have it.

    Raises:
        GroundTruthFileError: the file lacks a column of ``COLUMNS[name]``.
    """
    path = ground_truth_path(run_dir, name)
    if not path.is_file():
        return None
    table = pd.read_parquet(path)
    missing = [c for c in COLUMNS.get(name, []) if c not in table.columns]
    if missing:
        raise GroundTruthFileError(
            f"{path} lacks the column(s) {missing} (has {list(table.columns)}); it was written by another version or "
            f"damaged: re-collect it with `royaltysim attribution groundtruth {run_dir}` (finished models are kept)"
        )
    return table


def read_models(run_dir: str | Path) -> pd.DataFrame | None:
    """models.parquet: one row per finished model (kind, name, seed, left_out, order, ..., seconds, threads)."""
    return read_table(run_dir, MODELS)


def read_loco(run_dir: str | Path) -> pd.DataFrame | None:
    """loco.parquet: creator, seed, output_id, delta (full minus without the creator's catalogue)."""
    return read_table(run_dir, LOCO)


def read_controls(run_dir: str | Path) -> pd.DataFrame | None:
    """ctrl.parquet: creator (the catalogue matched), draw, seed, output_id, delta (full minus without the control)."""
    return read_table(run_dir, CONTROLS)


def read_loo(run_dir: str | Path) -> pd.DataFrame | None:
    """loo.parquet: train_id, creator, seed, output_id, delta (one piece left out)."""
    return read_table(run_dir, LOO)


def read_creator_value(run_dir: str | Path) -> pd.DataFrame | None:
    """creator_value.parquet: creator, value (mean held-out drop per event over seeds), basis, seeds."""
    return read_table(run_dir, CREATOR_VALUE)


def read_contribution(run_dir: str | Path) -> pd.DataFrame | None:
    """creator_contribution.parquet: output_id, creator, delta, basis, seeds (see :func:`creator_contribution`)."""
    return read_table(run_dir, CREATOR_CONTRIBUTION)


# ----------------------------------------------------------------------------------- derived tables
def creator_contribution(loco: pd.DataFrame, corpus: pd.DataFrame, alone: list[str] | None = None) -> pd.DataFrame:
    """Each creator's counterfactual contribution to every output and to held-out music, mean over seeds.

    Creators left out alone get their own difference (``basis`` "alone"). When a ``__rest__`` model left the
    unlisted creators out together, each of them gets the group's difference times its share of the group's
    training events (``basis`` "group"): retraining cannot tell members of one left-out group apart, and the
    split by events is the neutral one (splitting by an attribution method would make the truth depend on
    the estimate it is meant to check). Creators in neither get no row.

    Args:
        loco: creator, seed, output_id, delta (loco.parquet, or :func:`net_of_controls`).
        corpus: the run's corpus.parquet (creator, and events when present).
        alone: the creators that were left out alone (default: every creator of ``loco`` but ``__rest__``); the
            group is everyone else. Pass it when ``loco`` lacks some of them (e.g. catalogues without a control),
            so that they are not taken for members of the group.

    Returns:
        output_id, creator, delta (full minus without), basis, seeds (how many seeds were averaged).
    """
    cols = ["output_id", "creator", "delta", "basis", "seeds"]
    if loco.empty:
        return pd.DataFrame(columns=cols)
    mean = loco.groupby(["output_id", "creator"], as_index=False).agg(delta=("delta", "mean"), seeds=("seed", "nunique"))
    single = mean[mean["creator"] != REST].assign(basis="alone")
    parts = [single]
    group = mean[mean["creator"] == REST]
    if len(group):
        weight = "events" if "events" in corpus.columns else None
        sizes = corpus.groupby("creator")[weight].sum() if weight else corpus["creator"].value_counts()
        alone = single["creator"].unique() if alone is None else alone
        members = sizes.drop(labels=[c for c in alone if c in sizes.index])
        share = members / members.sum()
        split = group.merge(share.rename("share").rename_axis("creator").reset_index(), how="cross", suffixes=("_g", ""))
        split = split.assign(delta=split["delta"] * split["share"], basis="group")
        parts.append(split[["output_id", "creator", "delta", "basis", "seeds"]])
    return pd.concat(parts, ignore_index=True)[cols].sort_values(["output_id", "creator"], ignore_index=True)


def net_of_controls(loco: pd.DataFrame, controls: pd.DataFrame) -> pd.DataFrame:
    """Leave-one-creator-out minus its matched random control, per creator, seed and output.

    The control of a catalogue leaves out random pieces of other creators with the same training events, in the
    same batch order and seed, so ``control_delta`` is what removing that much music does and ``delta`` =
    ``loco_delta - control_delta`` what this creator's music did beyond it. Several control draws are averaged.
    Only (creator, seed) pairs with both a leave-out model and a control are returned.

    Returns:
        creator, seed, output_id, delta (net), loco_delta, control_delta, draws.
    """
    cols = ["creator", "seed", "output_id", "delta", "loco_delta", "control_delta", "draws"]
    if loco is None or controls is None or loco.empty or controls.empty:
        return pd.DataFrame(columns=cols)
    ctrl = controls.groupby(["creator", "seed", "output_id"], as_index=False).agg(
        control_delta=("delta", "mean"), draws=("draw", "nunique")
    )
    both = loco.rename(columns={"delta": "loco_delta"}).merge(ctrl, on=["creator", "seed", "output_id"], how="inner")
    both["delta"] = both["loco_delta"] - both["control_delta"]
    return both[cols].sort_values(["creator", "seed", "output_id"], ignore_index=True)


def net_contribution(run_dir: str | Path, corpus: pd.DataFrame) -> pd.DataFrame | None:
    """:func:`creator_contribution` of the leave-one-creator-out drops net of their matched controls.

    None when the ground truth has no leave-one-creator-out models or no matched controls
    (``loco.controls`` in the ground-truth config).
    """
    loco, controls = read_loco(run_dir), read_controls(run_dir)
    net = net_of_controls(loco, controls)
    if net.empty:
        return None
    # a catalogue left out alone but without a control gets no row (never a share of the group's)
    return creator_contribution(net, corpus, alone=[c for c in loco["creator"].unique() if c != REST])

