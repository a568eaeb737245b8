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
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import logging
import os
import time
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from . import groundtruth_files as files
from .config import load_yaml_config
from .errors import AttributionError, RunFolderError
from .groundtruth_files import GROUND_TRUTH_DIR, HELDOUT, OUTPUTS_FINGERPRINT, REST, creator_contribution
from .table import output_token_files, tokens_fingerprint

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

log = logging.getLogger(__name__)


Kind = Literal["lds", "full", "loco", "loo", "ctrl", "replay"]
Order = Literal["fixed", "reshuffled"]


# --------------------------------------------------------------------------------------- config
class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LdsSection(_Section):
    subsets: int = Field(32, ge=0)  # number of random subsets (0 = no LDS ground truth)
    fraction: float = Field(0.5, gt=0, lt=1)  # share of training pieces in each subset
    seeds: list[int] = Field(default_factory=lambda: [0])  # training seeds per subset (>= 2 gives a noise floor)
    # train seeds[1:] only on the first `noise_subsets` subsets (None = all): a cheaper seed-vs-seed noise floor
    noise_subsets: int | None = Field(None, ge=0)
    mask_seed: int = 0


class FixedLdsSection(_Section):
    """LDS subsets retrained in trajectory-exact mode: each replays its seed's full-data reference run.

    The subsets are those of ``lds`` (same ``fraction`` and ``mask_seed``, so subset j is the same pieces in
    both modes and the two modes can be compared subset by subset); seed s replays ``full/all_seed<s>``.
    """

    subsets: int = Field(0, ge=0)
    seeds: list[int] = Field(default_factory=lambda: [0])
    noise_subsets: int | None = Field(None, ge=0)  # replay seeds[1:] only on the first noise_subsets subsets


class LocoSection(_Section):
    enabled: bool = True
    seeds: list[int] = Field(default_factory=lambda: [0])
    creators: list[str] | None = None  # None = every creator in corpus.parquet
    # with a `creators` list: also leave every other creator out *together* (one model per seed); their joint
    # value is split among them in proportion to training events (see collect_groundtruth)
    rest: bool = False
    # fixed: each left-out model replays the full-data reference run of its seed (same initialisation, same
    # batches) with the creator's windows removed from every batch, so the difference is the data alone;
    # reshuffled: a fresh run of the recipe on the remaining windows, whose new batch order moves the outputs'
    # log-likelihood about as much as a new seed does (measured on runs/default: see benchmarks/RESULTS.md)
    order: Order = "fixed"
    # matched random controls: per left-out catalogue (and the rest group), this many models that leave out
    # random pieces of *other* creators with the same total events instead, in the same order and seeds; the
    # creator's own effect is then "what this creator's music did" (loco) minus "what removing that much music
    # does" (ctrl), see ctrl.parquet
    controls: int = Field(0, ge=0)
    control_seed: int = 0


class FullSection(_Section):
    # extra seeds of the all-pieces reference model (loco/loo seeds always get one); two or more seeds give
    # the seed-vs-seed noise floor of the leave-out differences without retraining every leave-out twice
    seeds: list[int] = Field(default_factory=list)
    # keep these models' final checkpoints: `attribution evaluate` then also scores TRAK over independently
    # trained models (method trak_models), the ensemble TRAK was designed for
    keep_weights: bool = False
    # replay the first fixed-order seed's reference with nothing removed (folder replay/all_seed<s>): its
    # utilities must equal the reference's, which proves the fixed-order mode is trajectory-exact
    replay_check: bool = False


class LooSection(_Section):
    pieces: int = Field(0, ge=0)  # size of the seeded sample of pieces (0 = no leave-one-piece-out)
    seeds: list[int] = Field(default_factory=lambda: [0, 1])
    sample_seed: int = 0
    order: Order = "fixed"  # as loco.order


class GroundTruthConfig(_Section):
    """What to retrain. Sizes are chosen from the measured time of one model (see configs/groundtruth-*.yaml)."""

    lds: LdsSection = Field(default_factory=LdsSection)
    lds_fixed: FixedLdsSection = Field(default_factory=FixedLdsSection)
    full: FullSection = Field(default_factory=FullSection)
    loco: LocoSection = Field(default_factory=LocoSection)
    loo: LooSection = Field(default_factory=LooSection)
    keep_weights: bool = False  # keep each retrained model's final checkpoint (about 4 MB per 1M parameters)

    @model_validator(mode="after")
    def _distinct_seeds(self) -> GroundTruthConfig:
        named = (("lds.seeds", self.lds.seeds), ("lds_fixed.seeds", self.lds_fixed.seeds), ("full.seeds", self.full.seeds), ("loco.seeds", self.loco.seeds), ("loo.seeds", self.loo.seeds))
        for name, seeds in named:
            if len(set(seeds)) != len(seeds):
                raise ValueError(f"{name} lists a seed twice: {seeds}")
        return self


class GroundTruthConfigError(AttributionError):
    """A ground-truth config file is missing or invalid; the message lists every error with its key path."""


def load_groundtruth_config(path: str | Path) -> GroundTruthConfig:
    return load_yaml_config(path, GroundTruthConfig, GroundTruthConfigError, "ground-truth config")


# ---------------------------------------------------------------------------------------- inputs
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
    from .runfolder import check_published, verify
    from .table import _published_digests

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


# --------------------------------------------------------------------------------------- workers
def _keeps_weights(cfg: GroundTruthConfig, job: RetrainJob) -> bool:
    return cfg.keep_weights or (job.kind == "full" and cfg.full.keep_weights)


@functools.lru_cache(maxsize=2)
def _cached_inputs(run_dir: str) -> RunInputs:
    return load_run_inputs(run_dir)


def _is_done(folder: Path) -> bool:
    return (folder / "meta.yaml").is_file() and (folder / "utilities.npz").is_file()


def _read_meta(folder: Path) -> dict:
    return yaml.safe_load((folder / "meta.yaml").read_text())


def output_utilities(model, output_tokens: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Log-likelihood of each output under ``model`` (the TRAK target), (n_outputs,)."""
    import torch

    from .model import sequence_log_likelihood

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(output_tokens), batch_size):
            batch = torch.as_tensor(output_tokens[start : start + batch_size], dtype=torch.long)
            out.append(sequence_log_likelihood(model, batch).double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def train_job(
    job: RetrainJob, run_dir: str | Path, root: str | Path, keep_weights: bool = False, threads: int = 1, device: str = "cpu"
) -> dict:
    """Retrain, score and record one model into ``root / job.folder``; returns its metadata.

    Runs in a worker process (or in-process for ``workers=1``). Idempotent: a finished folder is read back.
    """
    import torch

    from .model import ModelConfig
    from .train import TrainConfig, evaluate_loss, load_model, train_model
    from .windows import Windows

    folder = Path(root) / job.folder
    if _is_done(folder):
        return _read_meta(folder)
    inputs = _cached_inputs(str(Path(run_dir).resolve()))
    mask = np.zeros(inputs.n_pieces, dtype=bool)
    mask[list(job.keep)] = True
    everything = Windows(inputs.train_tokens, inputs.train_piece, inputs.pad_id)
    if job.order == "fixed":  # the full run's batches, the left-out windows removed from each
        windows, drop = everything, ~mask[inputs.train_piece]
    else:
        windows, drop = everything.subset(mask), None
    if job.order == "fixed":  # a replay is exact only on the reference's own thread count (order of float sums)
        ref = Path(root) / RetrainJob("full", "all", job.seed, ()).folder
        if not _is_done(ref):
            raise RuntimeError(f"{job.folder} replays {ref}, which is not finished; train the references first")
        threads = int(_read_meta(ref).get("threads") or threads)
    # CPU kernels here are deterministic; this makes any that are not (and CUDA's) raise instead of drift
    torch.use_deterministic_algorithms(True)
    base = TrainConfig(**inputs.train_config)
    # Only the seed changes the trajectory; one final checkpoint, no validation passes.
    tcfg = replace(base, seed=job.seed, checkpoints=[1.0], eval_every=base.steps, threads=threads)
    mcfg = ModelConfig(**inputs.model_config)
    threads_before = torch.get_num_threads()
    t0 = time.perf_counter()
    try:
        result = train_model(
            windows, mcfg, tcfg, folder, val_windows=None, progress=False, desc=job.folder, drop=drop, device=device
        )
    finally:
        torch.set_num_threads(threads_before)
    seconds = time.perf_counter() - t0
    model = load_model(result.checkpoints[-1])
    utilities = output_utilities(model, inputs.output_tokens)
    heldout = np.nan
    if len(inputs.val_tokens):
        heldout = -evaluate_loss(model, Windows(inputs.val_tokens, np.zeros(len(inputs.val_tokens), np.int64), inputs.pad_id))
    np.savez(folder / "utilities.npz", outputs=utilities, heldout=np.float64(heldout), output_ids=np.array(inputs.output_ids))
    meta = {
        "kind": job.kind,
        "name": job.name,
        "seed": job.seed,
        "left_out": job.left_out,
        "n_pieces": len(job.keep),
        "events": int(inputs.corpus["events"].to_numpy()[list(job.keep)].sum()) if "events" in inputs.corpus else None,
        "n_windows": len(windows) if drop is None else int((~drop).sum()),
        "order": job.order,
        "seconds": round(seconds, 2),
        "threads": threads,
        "device": device,
        "outputs_sha256": inputs.outputs_sha256,
        "inputs_sha256": inputs.inputs_sha256,
        "heldout_ll": float(heldout),
        "final_train_loss": float(result.final_train_loss),
        "keep": list(job.keep),
    }
    if not keep_weights:
        for p in folder.glob("*.pt"):
            p.unlink()
    tmp = folder / "meta.yaml.tmp"
    tmp.write_text(yaml.safe_dump(meta, sort_keys=False))
    tmp.replace(folder / "meta.yaml")
    return meta


# ------------------------------------------------------------------------------------ orchestrate
@dataclass
class GroundTruthRun:
    """What one call to :func:`run_groundtruth` did."""

    root: Path
    planned: int
    already_done: int
    trained: int
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def _append_config_history(root: Path, cfg: GroundTruthConfig) -> None:
    """Add ``cfg`` to ``config_history.yaml`` (written whole to a temporary file, then renamed)."""
    path = root / files.CONFIG_HISTORY
    history = (yaml.safe_load(path.read_text()) or []) if path.is_file() else []
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    history.append({"started": started, "config": cfg.model_dump(mode="json")})
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(history, sort_keys=False))
    os.replace(tmp, path)


def run_groundtruth(
    run_dir: str | Path,
    cfg: GroundTruthConfig,
    workers: int = 1,
    progress: bool = True,
    limit: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
    device: str = "cpu",
) -> GroundTruthRun:
    """Train every planned model that is not finished yet, then collect the tidy tables.

    Args:
        workers: models trained at once on a local Dask cluster of that many processes; 1 (and no
            scheduler) trains in this process.
        threads: torch threads per model; None = the machine's cores divided among the workers (at least 1).
            A fixed-order model always uses its reference's thread count (exactness needs the same float sums).
        limit: train at most this many new models (useful to budget time; rerun to continue).
        scheduler: address of an existing Dask scheduler (``tcp://host:8786``); its workers must see
            ``run_dir`` at the same path.
        device: torch device models train on ("cpu", "cuda").
    """
    from tqdm.auto import tqdm

    if workers < 1:
        raise GroundTruthConfigError(f"--workers is {workers}; give 1 or more (models trained at once)")
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // workers)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    run_dir = Path(run_dir)
    inputs = load_run_inputs(run_dir)
    root = run_dir / GROUND_TRUTH_DIR
    jobs = plan_jobs(cfg, inputs)
    fingerprint = inputs.inputs_sha256
    for job in jobs:  # a finished model must be the model the plan asks for
        folder = root / job.folder
        if _is_done(folder) and _read_meta(folder).get("inputs_sha256", fingerprint) != fingerprint:
            raise GroundTruthConfigError(
                f"{folder} was trained on other training windows or another recipe than {run_dir}/model has now "
                "(the run was rebuilt); move the ground_truth folder away (or use another run folder) and retrain"
            )
        if _is_done(folder) and tuple(_read_meta(folder)["keep"]) != job.keep:
            raise GroundTruthConfigError(
                f"{folder} was trained on other pieces than this config plans (changed lds.fraction, "
                "lds.mask_seed or loo.sample_seed?); remove that folder or restore the config"
            )
        if _is_done(folder) and _read_meta(folder).get("order", "reshuffled") != job.order:
            raise GroundTruthConfigError(
                f"{folder} was trained with batch order {_read_meta(folder).get('order', 'reshuffled')!r}, this config "
                f"plans {job.order!r} (loco.order / loo.order); remove that folder or restore the config"
            )
    # every check passed: only now is anything written
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / "config.yaml.tmp"
    tmp.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    os.replace(tmp, root / files.CONFIG)
    _append_config_history(root, cfg)
    todo = [j for j in jobs if not _is_done(root / j.folder)]
    done_before = len(jobs) - len(todo)
    if limit is not None:
        todo = todo[:limit]
    report = GroundTruthRun(root=root, planned=len(jobs), already_done=done_before, trained=0)
    t0 = time.perf_counter()
    bar = tqdm(total=len(jobs), initial=done_before, desc="ground-truth models", disable=not progress, unit="model")
    # the references first, as their own phase: a fixed-order model replays its reference's thread count
    refs = [j for j in todo if j.kind == "full"]
    for phase in (refs, [j for j in todo if j.kind != "full"]):
        _train_phase(phase, run_dir, root, cfg, workers, threads, report, bar, scheduler, device)
    bar.close()
    report.seconds = time.perf_counter() - t0
    collect_groundtruth(run_dir, cfg, inputs)
    return report


def _train_phase(todo, run_dir, root, cfg, workers, threads, report, bar, scheduler=None, device="cpu") -> None:
    """Train ``todo``: in this process (one worker, no scheduler) or as tasks on a Dask cluster."""
    def record(job: RetrainJob, exc: BaseException | None) -> None:
        if exc is None:
            report.trained += 1
        else:  # keep going: one failed model must not lose the others
            log.error("ground-truth model %s failed: %s", job.folder, exc)
            report.failed.append((job.folder, repr(exc)))
        bar.update(1)

    if not todo:
        return
    if scheduler is None and workers == 1:
        for job in todo:
            try:
                train_job(job, run_dir, root, _keeps_weights(cfg, job), threads, device)
                record(job, None)
            except Exception as exc:
                record(job, exc)
        return
    from dask.distributed import Client, as_completed

    cluster = None if scheduler else _local_cluster(workers)
    try:
        client = Client(scheduler or cluster, timeout="10s")
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise GroundTruthConfigError(
            f"cannot reach the Dask scheduler {scheduler!r} ({exc}); start it (`dask scheduler`) or drop "
            "--scheduler to train on a local cluster"
        ) from None
    try:
        futures = {
            client.submit(
                train_job, job, str(Path(run_dir).resolve()), str(Path(root).resolve()), _keeps_weights(cfg, job),
                threads, device, key=f"groundtruth-{Path(root).resolve()}-{job.folder}", pure=False,
            ): job
            for job in todo
        }
        for fut in as_completed(futures):
            try:
                fut.result()
                record(futures[fut], None)
            except Exception as exc:  # a failed model, or a worker that died training it (KilledWorker)
                record(futures[fut], exc)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _local_cluster(workers: int):
    """A Dask cluster of ``workers`` single-threaded processes on this machine (torch threads are per model)."""
    from dask.distributed import LocalCluster

    return LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1",
        silence_logs=logging.ERROR,
    )


# -------------------------------------------------------------------------------------- collect
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
