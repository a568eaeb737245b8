"""Collecting a ground truth: every finished model into arrays (:class:`GroundTruth`) and tidy tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .. import groundtruth_files as files
from ..groundtruth_files import GROUND_TRUTH_DIR, HELDOUT, OUTPUTS_FINGERPRINT, creator_contribution
from .config import GroundTruthConfig
from .plan import RunInputs, _is_done, _read_meta, load_run_inputs

__all__ = ["LdsTruth", "GroundTruth", "collect_groundtruth", "load_groundtruth"]

@dataclass
class LdsTruth:
    """The LDS subsets of one retraining mode: masks (M, n_pieces), utilities (M, S, n_outputs; NaN = not
    finished), the S seeds, and the subset indices (rows of ``lds_mask``) the M rows are."""

    mode: str
    masks: np.ndarray
    utilities: np.ndarray
    seeds: list[int]
    subsets: list[int]


@dataclass
class GroundTruth:
    """The finished models of a ground truth, as arrays aligned with the run's outputs and pieces.

    Attributes:
        models: one row per finished model (kind, name, seed, left_out, n_pieces, n_windows, seconds, heldout_ll).
        output_ids: outputs, in outputs.parquet order (the columns of every utility array).
        lds_masks: (M, n_pieces) bool, the subsets with at least one finished seed.
        lds_utilities: (M, S, n_outputs) output log-likelihoods; NaN where a seed is not finished.
        lds_seeds: the S seeds.
        loco: creator, seed, output_id, delta (full minus without; ``__heldout__`` = held-out per event).
        loo: train_id, creator, seed, output_id, delta.
        creator_value: creator, value (mean held-out drop over seeds), basis, seeds.
        contribution: output_id, creator, delta, basis, seeds (:func:`creator_contribution`).
    """

    models: pd.DataFrame
    output_ids: list[str]
    lds_masks: np.ndarray
    lds_utilities: np.ndarray
    lds_seeds: list[int]
    loco: pd.DataFrame
    loo: pd.DataFrame
    creator_value: pd.DataFrame
    contribution: pd.DataFrame = field(default_factory=pd.DataFrame)
    references: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)  # full models: seed -> (outputs, heldout)
    # every LDS retraining mode with finished models: "reshuffled" (lds_masks/lds_utilities/lds_seeds above)
    # and "fixed" (trajectory-exact replays of the references)
    lds_modes: dict[str, LdsTruth] = field(default_factory=dict)
    controls: pd.DataFrame = field(default_factory=pd.DataFrame)  # creator (matched to), draw, seed, output_id, delta
    replays: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)  # replay/all_seed<s>: (outputs, heldout)

    def seconds(self, kind: str) -> float:
        return float(self.models.loc[self.models["kind"] == kind, "seconds"].sum())

    def core_seconds(self, kind: str | None = None) -> float:
        """Training seconds times the threads each model used (CPU-seconds), for ``kind`` or every model."""
        m = self.models if kind is None else self.models[self.models["kind"] == kind]
        threads = m["threads"].fillna(1) if "threads" in m else 1
        return float((m["seconds"] * threads).sum())


def _finished(root: Path) -> list[tuple[dict, np.ndarray, float]]:
    rows = []
    for meta_path in sorted(root.glob("*/*/meta.yaml")):
        folder = meta_path.parent
        if not _is_done(folder):
            continue
        u = np.load(folder / "utilities.npz")
        rows.append((_read_meta(folder), u["outputs"], float(u["heldout"])))
    return rows


def _deltas(finished, kind: str, output_ids: list[str], with_name: bool = False) -> pd.DataFrame:
    """full(seed) - without(seed) on every output and on held-out music, for models of ``kind``."""
    refs = {m["seed"]: (u, h) for m, u, h in finished if m["kind"] == "full"}
    rows = []
    for m, u, h in finished:
        if m["kind"] != kind or m["seed"] not in refs:
            continue
        ref_u, ref_h = refs[m["seed"]]
        for oid, d in zip([*output_ids, HELDOUT], [*(ref_u - u), ref_h - h]):
            rows.append({"left_out": m["left_out"], "name": m["name"], "seed": m["seed"], "output_id": oid, "delta": float(d)})
    cols = ["left_out", "name", "seed", "output_id", "delta"]
    out = pd.DataFrame(rows, columns=cols)
    return out if with_name else out.drop(columns="name")


def collect_groundtruth(run_dir: str | Path, cfg: GroundTruthConfig | None = None, inputs: RunInputs | None = None) -> GroundTruth:
    """Gather every finished model into arrays and write the tidy tables (see the module docstring)."""
    run_dir = Path(run_dir)
    root = run_dir / GROUND_TRUTH_DIR
    inputs = inputs or load_run_inputs(run_dir)
    if cfg is None:
        cfg_path = root / files.CONFIG
        cfg = GroundTruthConfig.model_validate(yaml.safe_load(cfg_path.read_text())) if cfg_path.is_file() else GroundTruthConfig()
    finished = _finished(root)
    output_ids = inputs.output_ids
    # every utility must score the outputs the run has now (a rebuild may have sampled others); models from
    # before fingerprints were recorded are taken to score the current outputs
    recorded = {m["outputs_sha256"] for m, _, _ in finished if m.get("outputs_sha256")}
    if recorded - {inputs.outputs_sha256}:
        raise ValueError(
            f"{root}: the retrained models scored other generated outputs than {run_dir}/outputs.parquet now holds "
            "(the run was rebuilt or resampled); move that ground_truth folder away and retrain it"
        )
    scored = inputs.outputs_sha256
    cols = ["kind", "name", "seed", "left_out", "order", "n_pieces", "n_windows", "seconds", "threads", "heldout_ll"]
    # models trained before thread count and order were recorded ran on one thread, reshuffled
    defaults = {"threads": 1, "order": "reshuffled"}
    models = pd.DataFrame([{k: m.get(k, defaults.get(k)) for k in cols} for m, _, _ in finished], columns=cols)
    util_rows = [
        {"kind": m["kind"], "name": m["name"], "seed": m["seed"], "output_id": oid, "utility": float(v)}
        for m, u, _ in finished
        for oid, v in zip(output_ids, u)
    ]
    utilities = pd.DataFrame(util_rows, columns=["kind", "name", "seed", "output_id", "utility"])

    # LDS per mode: subsets in index order; a subset counts once any of its seeds is finished.
    modes = {}
    for mode, planned in (("reshuffled", cfg.lds.seeds), ("fixed", cfg.lds_fixed.seeds)):
        lds = [(m, u) for m, u, _ in finished if m["kind"] == "lds" and m.get("order", "reshuffled") == mode]
        if not lds and mode == "fixed":
            continue
        modes[mode] = _lds_truth(mode, lds, planned, inputs.n_pieces, len(output_ids))
    masks, util, seeds = modes["reshuffled"].masks, modes["reshuffled"].utilities, modes["reshuffled"].seeds

    loco = _deltas(finished, "loco", output_ids).rename(columns={"left_out": "creator"})
    controls = _deltas(finished, "ctrl", output_ids, with_name=True).rename(columns={"left_out": "creator"})
    controls.insert(1, "draw", controls.pop("name").str.rsplit("~", n=1).str[-1].astype(int))
    loo = _deltas(finished, "loo", output_ids).rename(columns={"left_out": "train_id"})
    creator_of = dict(zip(inputs.corpus["train_id"].astype(str), inputs.corpus["creator"]))
    loo.insert(1, "creator", loo["train_id"].map(creator_of))
    contribution = creator_contribution(loco, inputs.corpus, alone=cfg.loco.creators)
    held = contribution[contribution["output_id"] == HELDOUT]
    creator_value = held[["creator", "delta", "basis", "seeds"]].rename(columns={"delta": "value"}).reset_index(drop=True)

    root.mkdir(parents=True, exist_ok=True)
    models.to_parquet(root / files.MODELS, index=False)
    utilities.to_parquet(root / files.UTILITIES, index=False)
    np.save(root / files.LDS_MASKS, masks)
    if "fixed" in modes:
        np.save(root / files.LDS_FIXED_MASKS, modes["fixed"].masks)
    loco.to_parquet(root / files.LOCO, index=False)
    controls.to_parquet(root / files.CONTROLS, index=False)
    loo.to_parquet(root / files.LOO, index=False)
    for name in (files.CREATOR_VALUE, files.CREATOR_CONTRIBUTION):  # stale tables must not outlive their models
        (root / name).unlink(missing_ok=True)
    (root / OUTPUTS_FINGERPRINT).write_text(scored + "\n")
    if len(creator_value):
        creator_value.to_parquet(root / files.CREATOR_VALUE, index=False)
        contribution.to_parquet(root / files.CREATOR_CONTRIBUTION, index=False)
    return GroundTruth(
        models=models, output_ids=output_ids, lds_masks=masks, lds_utilities=util, lds_seeds=seeds,
        loco=loco, loo=loo, creator_value=creator_value, contribution=contribution,
        references={int(m["seed"]): (u, float(h)) for m, u, h in finished if m["kind"] == "full"},
        lds_modes=modes, controls=controls,
        replays={int(m["seed"]): (u, float(h)) for m, u, h in finished if m["kind"] == "replay"},
    )


def _lds_truth(mode: str, lds: list, planned_seeds: list[int], n_pieces: int, n_outputs: int) -> LdsTruth:
    seeds = sorted({m["seed"] for m, _ in lds} | set(planned_seeds)) if lds else list(planned_seeds)
    indices = sorted({int(m["name"][1:]) for m, _ in lds})
    masks = np.zeros((len(indices), n_pieces), dtype=bool)
    util = np.full((len(indices), len(seeds), n_outputs), np.nan)
    pos = {j: r for r, j in enumerate(indices)}
    for m, u in lds:
        r = pos[int(m["name"][1:])]
        masks[r, m["keep"]] = True
        util[r, seeds.index(m["seed"])] = u
    return LdsTruth(mode=mode, masks=masks, utilities=util, seeds=seeds, subsets=indices)


def load_groundtruth(run_dir: str | Path) -> GroundTruth:
    """Read the ground truth of a run (re-collected from the model folders, so always current)."""
    root = Path(run_dir) / GROUND_TRUTH_DIR
    if not root.is_dir() or not any(root.glob("*/*/meta.yaml")):
        raise FileNotFoundError(
            f"{root} holds no finished retrained model; run `royaltysim attribution groundtruth {run_dir}` first"
        )
    return collect_groundtruth(run_dir)
