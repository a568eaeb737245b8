"""The plan of a ground truth: the run's inputs (:class:`RunInputs`), one :class:`RetrainJob` per model, and
the pure functions that choose their pieces (LDS subsets, the leave-one-out sample, matched controls).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..errors import RunFolderError
from ..groundtruth_files import REST
from ..table import output_token_files, tokens_fingerprint
from .config import GroundTruthConfig, GroundTruthConfigError, Kind, Order

__all__ = ["RunInputs", "load_run_inputs", "RetrainJob", "lds_mask", "loo_sample", "control_mask", "plan_jobs"]

@dataclass
class RunInputs:
    """What retraining needs from a run folder: the exact windows, the recipe, the outputs."""

    run_dir: Path
    train_tokens: np.ndarray  # (n_windows, T+1)
    train_piece: np.ndarray  # (n_windows,) row of corpus.parquet
    val_tokens: np.ndarray  # (n_val_windows, T+1) held-out real music
    pad_id: int
    corpus: pd.DataFrame  # train_id, creator, ... in piece-index order
    output_ids: list[str]
    output_tokens: np.ndarray  # (n_outputs, L), BOS first
    model_config: dict
    train_config: dict

    @property
    def outputs_sha256(self) -> str:
        """Fingerprint of the generated outputs (attribution.table.outputs_fingerprint)."""
        return tokens_fingerprint(self.output_tokens)

    @property
    def inputs_sha256(self) -> str:
        """Fingerprint of everything a retrained model is a function of, besides its job: the training and
        validation windows' data, the piece of each window, the model and training recipe."""
        h = hashlib.sha256()
        for a in (self.train_tokens, self.train_piece, self.val_tokens):
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        recipe = {"model": self.model_config, "train": {k: v for k, v in self.train_config.items() if k != "threads"}}
        h.update(json.dumps(recipe, sort_keys=True, default=str).encode())
        return h.hexdigest()

    @property
    def n_pieces(self) -> int:
        return len(self.corpus)

    @property
    def creators(self) -> np.ndarray:
        return self.corpus["creator"].to_numpy()


def load_run_inputs(run_dir: str | Path) -> RunInputs:
    """Read windows, recipe, corpus and outputs of a finished ``royaltysim attribution build``."""
    run_dir = Path(run_dir)
    needed = [
        run_dir / "model" / "windows.npz",
        run_dir / "model" / "train_config.yaml",
        run_dir / "corpus.parquet",
        run_dir / "outputs.parquet",
    ]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{run_dir} is not a finished attribution run: missing {missing}; "
            "build it first with `royaltysim attribution build CONFIG --out RUN`"
        )
    from ..runfolder import check_published, verify
    from ..table import _published_digests

    check_published(run_dir)  # a build killed while publishing holds some old and some new files
    damaged = verify(run_dir, _published_digests(run_dir), only=[str(p.relative_to(run_dir)) for p in needed])
    if damaged:
        raise RunFolderError(
            f"{run_dir} does not hold what its build wrote ({'; '.join(damaged)}); rebuild it with "
            "`royaltysim attribution build CONFIG --out RUN --force` before retraining on it"
        )
    w = np.load(run_dir / "model" / "windows.npz")
    recipe = yaml.safe_load((run_dir / "model" / "train_config.yaml").read_text())
    corpus = pd.read_parquet(run_dir / "corpus.parquet")
    outputs = pd.read_parquet(run_dir / "outputs.parquet")
    output_tokens = np.stack([np.load(f) for f in output_token_files(run_dir, outputs)])
    train_piece = w["train_piece"].astype(np.int64)
    if len(train_piece) and train_piece.max() >= len(corpus):
        raise ValueError(
            f"{run_dir}/model/windows.npz refers to piece {train_piece.max()} but corpus.parquet has "
            f"{len(corpus)} rows: the run folder mixes two builds; rebuild it"
        )
    return RunInputs(
        run_dir=run_dir,
        train_tokens=w["train_tokens"],
        train_piece=train_piece,
        val_tokens=w["val_tokens"],
        pad_id=int(w["pad_id"]),
        corpus=corpus,
        output_ids=list(outputs["output_id"]),
        output_tokens=output_tokens,
        model_config=recipe["model"],
        # a run trained before the attention option existed was trained in explicit form; retrain it that way
        train_config={"attention": "explicit", **recipe["train"]},
    )


# ------------------------------------------------------------------------------------------ jobs
@dataclass(frozen=True)
class RetrainJob:
    """One model to retrain: which pieces it sees and with which seed."""

    kind: Kind
    name: str  # e.g. "s007", "all", a creator, a train_id
    seed: int
    keep: tuple[int, ...]  # piece indices (corpus.parquet rows) in its training set
    left_out: str | None = None  # creator (loco, ctrl: the catalogue it is matched to) or train_id (loo)
    # "fixed": the full run's initialisation and batches with the left-out windows removed from each batch;
    # "reshuffled": a new run of the recipe on the kept windows (its own batch order)
    order: Order = "reshuffled"

    @property
    def folder(self) -> str:
        # fixed-order LDS subsets share their names with the reshuffled ones (same pieces), not their folder
        kind = "lds_fixed" if self.kind == "lds" and self.order == "fixed" else self.kind
        return f"{kind}/{_safe(self.name)}_seed{self.seed}"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def lds_mask(n_pieces: int, fraction: float, mask_seed: int, index: int) -> np.ndarray:
    """Subset ``index``: exactly ``round(fraction * n_pieces)`` pieces, a pure function of (mask_seed, index)."""
    k = max(1, int(round(fraction * n_pieces)))
    mask = np.zeros(n_pieces, dtype=bool)
    mask[np.random.default_rng([mask_seed, index]).choice(n_pieces, size=k, replace=False)] = True
    return mask


def loo_sample(n_pieces: int, pieces: int, sample_seed: int) -> np.ndarray:
    """The first ``pieces`` of a seeded permutation (so a larger sample extends a smaller one)."""
    return np.random.default_rng(sample_seed).permutation(n_pieces)[: min(pieces, n_pieces)]


def control_mask(left_out: np.ndarray, events: np.ndarray, control_seed: int, key: str, draw: int) -> np.ndarray:
    """Random pieces outside ``left_out`` whose events add up as close as possible to the left-out pieces'.

    Pieces outside the catalogue are visited in a seeded random order (a pure function of ``control_seed``,
    the catalogue's name and the draw); each is taken if it does not carry the total past the target. Then the
    one piece left that brings the total closest to the target is added if it does. Returns the (n_pieces,)
    mask of pieces to *drop*.
    """
    target = float(events[left_out].sum())
    pool = np.flatnonzero(~left_out)
    if events[pool].sum() < target:
        raise GroundTruthConfigError(
            f"loco.controls: {key!r} has {target:.0f} training events but the other creators only "
            f"{events[pool].sum():.0f}; a matched control cannot be drawn (drop it from loco.creators)"
        )
    order = np.random.default_rng([control_seed, zlib.crc32(key.encode()), draw]).permutation(pool)
    drop = np.zeros(len(events), dtype=bool)
    total = 0.0
    for i in order:
        if total + events[i] <= target:
            drop[i] = True
            total += events[i]
    rest = np.flatnonzero(~drop & ~left_out)
    if len(rest):
        best = rest[np.argmin(np.abs(total + events[rest] - target))]
        if abs(total + events[best] - target) < target - total:
            drop[best] = True
    return drop


def plan_jobs(cfg: GroundTruthConfig, inputs: RunInputs) -> list[RetrainJob]:
    """Every model the config asks for, in the order they are trained.

    References first (every difference and every replay needs them), then the cheap exactness checks, then
    reshuffled LDS (first seed over all subsets, so a partial ground truth is a usable one, then the noise
    seeds), leave-one-creator-out and its matched controls, then the fixed-order LDS.
    """
    n = inputs.n_pieces
    everything = tuple(range(n))
    creators = inputs.creators
    jobs: list[RetrainJob] = []
    fixed_seeds = set(cfg.lds_fixed.seeds if cfg.lds_fixed.subsets else [])
    ref_seeds = sorted(
        set(cfg.full.seeds)
        | set(cfg.loco.seeds if cfg.loco.enabled else [])
        | set(cfg.loo.seeds if cfg.loo.pieces else [])
        | fixed_seeds
    )
    jobs += [RetrainJob("full", "all", s, everything) for s in ref_seeds]
    if cfg.full.replay_check:
        replay_seeds = sorted(fixed_seeds | set(cfg.loco.seeds if cfg.loco.enabled else [])) or ref_seeds
        jobs.append(RetrainJob("replay", "all", replay_seeds[0], everything, order="fixed"))
    if cfg.loo.pieces:
        ids = inputs.corpus["train_id"].to_numpy()
        for seed in cfg.loo.seeds:
            for p in loo_sample(n, cfg.loo.pieces, cfg.loo.sample_seed):
                keep = tuple(i for i in everything if i != int(p))
                jobs.append(RetrainJob("loo", str(ids[p]), seed, keep, left_out=str(ids[p]), order=cfg.loo.order))

    def lds_jobs(subsets: int, seeds: list[int], noise_subsets: int | None, order: Order) -> list[RetrainJob]:
        out = []
        for k, seed in enumerate(seeds):  # every subset with the first seed before any extra seed
            count = subsets if k == 0 or noise_subsets is None else min(noise_subsets, subsets)
            for j in range(count):
                keep = tuple(int(i) for i in np.flatnonzero(lds_mask(n, cfg.lds.fraction, cfg.lds.mask_seed, j)))
                out.append(RetrainJob("lds", f"s{j:03d}", seed, keep, order=order))
        return out

    jobs += lds_jobs(cfg.lds.subsets, cfg.lds.seeds, cfg.lds.noise_subsets, "reshuffled")
    if cfg.loco.enabled:
        known = sorted(set(creators))
        chosen = known if cfg.loco.creators is None else cfg.loco.creators
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise GroundTruthConfigError(f"loco.creators: {unknown} are not creators of this run; known: {known}")
        groups = [(c, creators == c) for c in chosen]
        if cfg.loco.rest and set(chosen) != set(known):
            groups.append((REST, ~np.isin(creators, list(chosen))))
        events = inputs.corpus["events"].to_numpy(dtype=float) if "events" in inputs.corpus else np.ones(n)
        for seed in cfg.loco.seeds:
            for name, out in groups:
                jobs.append(RetrainJob("loco", name, seed, tuple(int(i) for i in np.flatnonzero(~out)), left_out=name, order=cfg.loco.order))
        for seed in cfg.loco.seeds:
            for name, out in groups:
                for d in range(cfg.loco.controls):
                    drop = control_mask(out, events, cfg.loco.control_seed, name, d)
                    keep = tuple(int(i) for i in np.flatnonzero(~drop))
                    jobs.append(RetrainJob("ctrl", f"{name}~{d}", seed, keep, left_out=name, order=cfg.loco.order))
    jobs += lds_jobs(cfg.lds_fixed.subsets, cfg.lds_fixed.seeds, cfg.lds_fixed.noise_subsets, "fixed")
    return jobs


# ------------------------------------------------------------------------------------- folders
def _is_done(folder: Path) -> bool:
    return (folder / "meta.yaml").is_file() and (folder / "utilities.npz").is_file()


def _read_meta(folder: Path) -> dict:
    return yaml.safe_load((folder / "meta.yaml").read_text())
