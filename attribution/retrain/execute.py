"""Retraining the planned models: one model per task (:func:`train_job`), in this process or on Dask
(:func:`run_groundtruth`), resumable because a finished model is a folder.
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

from .. import groundtruth_files as files
from ..groundtruth_files import GROUND_TRUTH_DIR
from .collect import collect_groundtruth
from .config import GroundTruthConfig, GroundTruthConfigError
from .plan import RetrainJob, RunInputs, _is_done, _read_meta, load_run_inputs, plan_jobs

__all__ = ["GroundTruthRun", "run_groundtruth", "train_job", "restore_weights", "output_utilities"]

log = logging.getLogger("attribution.retrain")

def _keeps_weights(cfg: GroundTruthConfig, job: RetrainJob) -> bool:
    return cfg.keep_weights or (job.kind == "full" and cfg.full.keep_weights)


@functools.lru_cache(maxsize=2)
def _cached_inputs(run_dir: str) -> RunInputs:
    return load_run_inputs(run_dir)


def output_utilities(model, output_tokens: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Log-likelihood of each output under ``model`` (the TRAK target), (n_outputs,)."""
    import torch

    from ..model import sequence_log_likelihood

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

    from ..model import ModelConfig
    from ..train import TrainConfig, evaluate_loss, load_model, train_model
    from ..windows import Windows

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


RESTORE_TOLERANCE = 1e-3  # nats: a restored reference must reproduce its recorded utilities this closely


def _weights_missing(root: Path, cfg: GroundTruthConfig, job: RetrainJob, own_seed: int | None) -> bool:
    """A finished full-data reference whose weights the config keeps but which has none on disk (lost with an
    earlier machine: only utilities are committed). The run's own seed is skipped: its weights are RUN/model."""
    folder = root / job.folder
    return (job.kind == "full" and _keeps_weights(cfg, job) and job.seed != own_seed and _is_done(folder)
            and not any(folder.glob("ckpt_*.pt")))


def restore_weights(job: RetrainJob, run_dir: str | Path, root: str | Path, threads: int = 1, device: str = "cpu") -> dict:
    """Retrain a finished model whose weights are gone, put its final checkpoint back and check it is that model.

    Trains into ``RUN/cache/restore`` (the recorded folder is not touched until the end) on the thread count the
    model was recorded with, compares the new utilities with the recorded ones and records the largest gap in
    ``meta.yaml`` (``weights_restored``); a gap over :data:`RESTORE_TOLERANCE` is logged as a warning, and the
    weights are kept either way (an independently trained model of that seed; its recorded utilities stay).
    """
    import shutil

    folder = Path(root) / job.folder
    meta = _read_meta(folder)
    scratch = Path(run_dir) / "cache" / "restore"
    shutil.rmtree(scratch / job.folder, ignore_errors=True)
    redo = train_job(job, run_dir, scratch, keep_weights=True, threads=int(meta.get("threads") or threads), device=device)
    recorded = np.load(folder / "utilities.npz")["outputs"]
    new = np.load(scratch / job.folder / "utilities.npz")["outputs"]
    gap = float(np.max(np.abs(recorded - new))) if len(new) else 0.0
    if gap > RESTORE_TOLERANCE:
        log.warning("restored weights of %s reproduce its recorded utilities only to %.4g nats", job.folder, gap)
    for p in (scratch / job.folder).glob("ckpt_*.pt"):
        os.replace(p, folder / p.name)
    meta["weights_restored"] = {"on": datetime.date.today().isoformat(), "max_abs_gap_nats": gap,
                                "seconds": redo["seconds"], "threads": redo["threads"]}
    tmp = folder / "meta.yaml.tmp"
    tmp.write_text(yaml.safe_dump(meta, sort_keys=False))
    tmp.replace(folder / "meta.yaml")
    shutil.rmtree(scratch / job.folder, ignore_errors=True)
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
    own_seed = inputs.train_config.get("seed")
    todo = [j for j in jobs if not _is_done(root / j.folder) or _weights_missing(root, cfg, j, own_seed)]
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
    def task(job: RetrainJob):  # a finished model whose kept weights are gone is retrained to restore them
        return (functools.partial(restore_weights, job) if _is_done(Path(root) / job.folder)
                else functools.partial(train_job, job, keep_weights=_keeps_weights(cfg, job)))

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
                task(job)(run_dir=run_dir, root=root, threads=threads, device=device)
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
                task(job), run_dir=str(Path(run_dir).resolve()), root=str(Path(root).resolve()), threads=threads,
                device=device, key=f"groundtruth-{Path(root).resolve()}-{job.folder}", pure=False,
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
