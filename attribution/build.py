"""The attribution build: corpus -> tokens -> trained model -> generated pieces -> attribution table.

``build(config, run_dir)`` runs every stage and writes a run folder (see :mod:`attribution.table` for the
contract with the economy)::

    config.yaml            resolved config, package versions, the inputs' hashes, model quality, stage
                           timings, and the SHA-256 of every file published with it
    corpus.parquet         the training pieces (train_id, creator, title, events, seconds, notes, source)
    heldout.parquet        validation pieces (never trained on; held-out real music)
    outputs.parquet        generated pieces;  outputs/<output_id>.mid and .npy (their tokens)
    attribution.parquet    output_id, train_id, creator, method, score
    passages.parquet       TRAK score of each passage (segment of events) of each output, per piece
    model/                 checkpoints, training history (resumable), windows.npz (the exact training and
                           validation windows; train_piece indexes corpus.parquet rows)
    cache/                 traker's features, keyed to the model (safe to delete)

Stages that are already done are reused on a rerun, each only when everything that determines it is the
same: the corpus parse cache is keyed to each file's content, training resumes or reuses ``model/`` only
when its ``train_config.yaml`` records the same windows (SHA-256 of their tokens), recipe and torch and
royaltysim versions, and traker's store is keyed to the checkpoints' bytes, the windows, the TRAK settings
and the versions. Outputs, scores and similarity are recomputed on every build. A folder whose model was
trained on other inputs is refused before anything is written (``force`` trains anew).

Results are staged in ``.staging/`` and published together (:mod:`attribution.runfolder`), so a killed
build leaves the old run or the new one, and a refused build leaves the folder untouched.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .config import BuildConfig, BuildConfigError, MaestroCorpus, MidiFolderCorpus, Music21Corpus, config_problems
from .errors import RunFolderError
from .runfolder import STAGING, atomic_write, atomic_write_text, commit, file_digests, recover, sha256_file
from .table import AttributionTable
from .windows import piece_sum

__all__ = ["build", "BuildResult", "load_pieces", "split_pieces", "train_piece_embeddings", "trak_inputs"]

log = logging.getLogger(__name__)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:  # non-Linux: fall back to the process peak
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class StageLog:
    """Wall time and peak resident memory of each stage (sampled every 50 ms)."""

    stages: dict[str, dict[str, float]] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str):
        peak = [_rss_bytes()]
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.05):
                peak[0] = max(peak[0], _rss_bytes())

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            peak[0] = max(peak[0], _rss_bytes())
            self.stages[name] = {
                "seconds": round(time.perf_counter() - t0, 2),
                "peak_rss_mb": round(peak[0] / 2**20, 1),
            }
            log.info("stage %s: %.1fs, peak RSS %.0f MB", name, self.stages[name]["seconds"], self.stages[name]["peak_rss_mb"])


@dataclass
class BuildResult:
    run_dir: Path
    table: AttributionTable
    metrics: dict
    stages: dict[str, dict[str, float]]


def load_pieces(cfg: BuildConfig, progress: bool = True):
    """Load the configured corpus; returns (pieces, load report)."""
    from . import corpus as C

    src = cfg.corpus
    if isinstance(src, Music21Corpus):
        return C.load_music21_corpus(
            src.creators,
            max_seconds=src.max_seconds,
            max_pieces_per_creator=src.max_pieces_per_creator,
            progress=progress,
        )
    if isinstance(src, MidiFolderCorpus):
        return C.load_midi_folder(
            src.manifest, sustain=src.sustain, max_seconds=src.max_seconds, allow_outside=src.allow_outside
        )
    if isinstance(src, MaestroCorpus):
        return C.load_maestro(
            src.root, csv_path=src.csv, splits=src.splits, sustain=src.sustain, max_seconds=src.max_seconds,
            allow_outside=src.allow_outside,
        )
    raise TypeError(f"unhandled corpus source {src!r}")


def split_pieces(creators: list[str], cfg: BuildConfig) -> np.ndarray:
    """Boolean mask of validation pieces: a seeded fraction of pieces of creators with enough pieces."""
    rng = np.random.default_rng(cfg.split.seed)
    creators_arr = np.asarray(creators)
    is_val = np.zeros(len(creators), dtype=bool)
    for creator in sorted(set(creators)):
        idx = np.flatnonzero(creators_arr == creator)
        if len(idx) < cfg.split.min_pieces_for_validation:
            continue
        k = int(round(cfg.split.validation_fraction * len(idx)))
        if k:
            is_val[rng.choice(idx, size=k, replace=False)] = True
    return is_val


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("royaltysim", "torch", "traker", "music21", "pretty_midi", "numpy", "pandas"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out



def _embeddings(model, tokens: np.ndarray, pad_id: int, batch_size: int = 64) -> np.ndarray:
    """Mean-pooled final hidden states over non-PAD positions; (n, T) -> (n, d_model)."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(tokens), batch_size):
            x = torch.as_tensor(tokens[start : start + batch_size], dtype=torch.long)
            h = model.hidden_states(x)  # (B, T, d)
            mask = (x != pad_id).unsqueeze(-1).to(h.dtype)
            out.append(((h * mask).sum(1) / mask.sum(1).clamp_min(1)).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.d_model))


def train_piece_embeddings(model, windows, n_pieces: int) -> np.ndarray:
    """Each training piece's embedding for ``sim_embedding``: its windows' embeddings weighted by their events."""
    win_emb = _embeddings(model, windows.tokens[:, :-1], windows.pad_id)
    weights = (windows.tokens[:, 1:] != windows.pad_id).sum(1).astype(float)
    piece_emb = piece_sum((win_emb * weights[:, None]).T, windows.piece, n_pieces).T
    return piece_emb / np.maximum(piece_sum(weights, windows.piece, n_pieces), 1.0)[:, None]


def trak_inputs(cfg: BuildConfig, checkpoints: list[Path]):
    """The checkpoints TRAK ensembles (``trak.checkpoints``), its settings, and each checkpoint's learning rate."""
    from .scoring import TrakConfig
    from .train import TrainConfig, _lr_at

    ckpts = list(checkpoints)
    if cfg.trak.checkpoints != "all":
        ckpts = ckpts[-int(cfg.trak.checkpoints) :]
    train_cfg = TrainConfig(**cfg.train.model_dump())
    lrs = [_lr_at(int(p.stem.split("_")[1]) - 1, train_cfg) for p in ckpts]
    return ckpts, TrakConfig(**cfg.trak.model_dump(exclude={"checkpoints"})), lrs


def build(cfg: BuildConfig, run_dir: str | Path, progress: bool = True, force: bool = False) -> BuildResult:
    """Run the whole attribution pipeline into ``run_dir``.

    Every check comes before the first write, so a refused build leaves ``run_dir`` as it was: the config
    (:func:`attribution.config.config_problems`), the folder, the corpus, and whether ``run_dir/model`` may be
    reused. A model is reused (or resumed) only when its ``train_config.yaml`` records the same training
    windows, recipe and code versions; a folder whose model was trained on anything else is refused with
    :class:`RunFolderError`, unless ``force``, which trains anew (and never reuses the folder's model).

    A new model is trained in ``run_dir/.staging/model`` (resumed there after a kill), every result is staged
    beside it, and all are published together at the end (:mod:`attribution.runfolder`): a killed build
    leaves the old results or the new ones.
    """
    import torch

    from .generate import GenerationConfig, generate_outputs
    from .model import ModelConfig, MusicTransformer
    from .scoring import cache_key, compute_gradient_scores
    from .similarity import cosine_matrix, interval_ngram_similarity, pitch_hist_similarity
    from .tokenize import EventTokenizer
    from .train import TrainConfig, evaluate_loss, load_model, train_model, training_record, unigram_loss
    from .windows import make_windows

    run_dir = Path(run_dir)
    problems = config_problems(cfg)
    if problems:
        raise BuildConfigError("\n".join([f"build config: {len(problems)} error(s)", *(f"  {p}" for p in problems)]))
    _check_writable(run_dir)
    if recover(run_dir):
        log.info("finished publishing the build that was interrupted in %s", run_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    stages = StageLog()
    metrics: dict = {}

    # 1. corpus and tokens (nothing is written before step 2 has checked the folder)
    with stages.stage("corpus"):
        pieces, report = load_pieces(cfg, progress=progress)
        tokenizer = EventTokenizer(**cfg.tokenizer.model_dump())
        sequences = [tokenizer.encode(p.notes) for p in pieces]
        is_val = split_pieces([p.creator for p in pieces], cfg)
    log.info(report.summary())
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    train_pieces = [pieces[i] for i in train_idx]
    model_cfg = ModelConfig(vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id, **cfg.model.model_dump())
    train_cfg = TrainConfig(**cfg.train.model_dump())
    train_windows = make_windows([sequences[i] for i in train_idx], model_cfg.block_size, tokenizer.pad_id)
    val_windows = make_windows([sequences[i] for i in val_idx], model_cfg.block_size, tokenizer.pad_id)
    _check_sizes(cfg, len(pieces), len(train_windows))

    # 2. which model folder: the published one if it was trained on exactly these inputs, else a staged one
    val_or_none = val_windows if len(val_windows) else None
    record = training_record(train_windows, model_cfg, train_cfg, val_or_none)
    model_dir = _model_folder(run_dir, record, force)
    staging = _open_staging(run_dir, record)  # the first write
    model_staged = model_dir == staging / "model"

    def piece_rows(idx: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "train_id": [pieces[i].train_id for i in idx],
                "creator": [pieces[i].creator for i in idx],
                "title": [pieces[i].title for i in idx],
                "events": [int(len(sequences[i])) for i in idx],
                "seconds": [float(pieces[i].seconds) for i in idx],
                "notes": [int(pieces[i].n_notes) for i in idx],
                "source": [pieces[i].source for i in idx],
            }
        )

    corpus_df = piece_rows(train_idx)
    heldout_df = piece_rows(val_idx)
    atomic_write(staging / "heldout.parquet", lambda p: heldout_df.to_parquet(p, index=False))
    metrics["corpus"] = {
        "pieces_loaded": len(pieces),
        "train_pieces": len(train_idx),
        "validation_pieces": len(val_idx),
        "creators": int(corpus_df["creator"].nunique()),
        "train_events": int(corpus_df["events"].sum()),
        "train_seconds": round(float(corpus_df["seconds"].sum()), 1),
        "skipped_files": [{"path": p, "reason": r} for p, r in report.skipped],
    }

    # 3. training (resumes a model folder of the same inputs)
    model_dir.mkdir(parents=True, exist_ok=True)
    _write_windows(model_dir / "windows.npz", train_windows, val_windows, tokenizer.pad_id, record["windows_sha256"])
    with stages.stage("train"):
        result = train_model(
            train_windows, model_cfg, train_cfg, model_dir, val_windows=val_or_none, progress=progress,
        )
    final = load_model(result.checkpoints[-1])
    metrics["model"] = {
        "params": final.num_params(),
        "train_windows": len(train_windows),
        "validation_windows": len(val_windows),
        "tokens_per_second": round(result.tokens_per_second, 1),
    }
    if len(val_windows):
        metrics["model"]["validation_loss"] = round(evaluate_loss(final, val_windows), 4)
        metrics["model"]["unigram_validation_loss"] = round(
            unigram_loss(train_windows, val_windows, tokenizer.vocab_size), 4
        )

    # 4. generation
    gen_cfg = GenerationConfig(**cfg.generation.model_dump())
    with stages.stage("generate"):
        out_rows = generate_outputs(final, tokenizer, gen_cfg, staging / "outputs", progress=progress)
    outputs_df = pd.DataFrame(out_rows)
    output_tokens = np.stack([np.load(staging / r["tokens"], allow_pickle=False) for r in out_rows])

    # 5. gradient attribution (traker's store is keyed to the checkpoints' bytes, the windows and the versions)
    ckpts, trak_cfg, ckpt_lrs = trak_inputs(cfg, result.checkpoints)
    with stages.stage("trak"):
        grads = compute_gradient_scores(
            MusicTransformer(model_cfg), ckpts, train_windows.tokens, output_tokens, trak_cfg,
            run_dir / "cache" / "trak", checkpoint_lrs=ckpt_lrs, progress=progress,
        )
    n_pieces = len(train_idx)
    piece_scores = {m: piece_sum(v, train_windows.piece, n_pieces) for m, v in grads.methods.items()}
    passages = piece_sum(grads.segments, train_windows.piece, n_pieces)  # (n_out, n_seg, n_pieces)

    # 6. similarity legal proxies
    with stages.stage("similarity"):
        from tqdm.auto import tqdm

        bar = tqdm(total=3, desc="similarity", disable=not progress)
        out_notes = [tokenizer.decode(t) for t in output_tokens]
        train_notes = [p.notes for p in train_pieces]
        piece_scores["sim_pitch_hist"] = pitch_hist_similarity(out_notes, train_notes)
        bar.update(1)
        piece_scores["sim_interval_ngram"] = interval_ngram_similarity(out_notes, train_notes, cfg.similarity.ngram)
        bar.update(1)
        piece_emb = train_piece_embeddings(final, train_windows, n_pieces)
        out_emb = _embeddings(final, output_tokens[:, : model_cfg.block_size], tokenizer.pad_id)
        piece_scores["sim_embedding"] = np.clip(cosine_matrix(out_emb, piece_emb), 0.0, None)
        bar.update(1)
        bar.close()

    # 7. the attribution table, staged
    train_ids = corpus_df["train_id"].to_numpy()
    creators = corpus_df["creator"].to_numpy()
    frames = []
    for method, matrix in piece_scores.items():
        n_out = matrix.shape[0]
        frames.append(
            pd.DataFrame(
                {
                    "output_id": np.repeat(outputs_df["output_id"].to_numpy(), n_pieces),
                    "train_id": np.tile(train_ids, n_out),
                    "creator": np.tile(creators, n_out),
                    "method": method,
                    "score": matrix.ravel(),
                }
            )
        )
    scores_df = pd.concat(frames, ignore_index=True)
    AttributionTable(scores=scores_df, corpus=corpus_df, outputs=outputs_df).save(staging)
    bounds = grads.segment_bounds
    n_out, n_seg = passages.shape[:2]
    passages_df = pd.DataFrame(
        {
            "output_id": np.repeat(outputs_df["output_id"].to_numpy(), n_seg * n_pieces),
            "passage": np.tile(np.repeat(np.arange(n_seg), n_pieces), n_out),
            "first_event": np.tile(np.repeat([b[0] for b in bounds], n_pieces), n_out),
            "end_event": np.tile(np.repeat([b[1] for b in bounds], n_pieces), n_out),
            "train_id": np.tile(train_ids, n_out * n_seg),
            "score": passages.ravel().astype(np.float32),
        }
    )
    atomic_write(staging / "passages.parquet", lambda p: passages_df.to_parquet(p, index=False))

    metrics["attribution"] = {
        "methods": sorted(piece_scores),
        "outputs": int(n_out),
        "trak_checkpoints": [p.name for p in ckpts],
        "proj_dim": grads.proj_dim,
        "passage_additivity_max_abs_error": float(np.abs(passages.sum(1) - piece_scores["trak"]).max()),
    }
    files = file_digests(staging, _RESULT_FILES) | {
        f"model/{name}": sha256_file(model_dir / name) for name in ("windows.npz", "train_config.yaml")
    }
    resolved = {
        "config": cfg.model_dump(mode="json"),
        "versions": _versions(),
        "inputs": {  # what the model and the scores were keyed to (a rebuild reuses them only if these match)
            "windows_sha256": record["windows_sha256"],
            "trak_cache": cache_key(ckpts, train_windows.tokens, trak_cfg),
        },
        "machine": {"platform": platform.platform(), "cpus": _cpu_count()},
        "metrics": metrics,
        "stages": stages.stages,
        "files": files,  # SHA-256 of every file published with this config (readers check them)
    }
    atomic_write_text(staging / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))

    # 8. publish everything at once (config.yaml last)
    commit(run_dir, (["model"] if model_staged else []) + _RESULT_FILES + ["config.yaml"])
    table = AttributionTable(scores=scores_df, corpus=corpus_df, outputs=outputs_df, path=run_dir)
    return BuildResult(run_dir=run_dir, table=table, metrics=metrics, stages=stages.stages)


#: What a build publishes besides ``model/`` and ``config.yaml``, in publishing order.
_RESULT_FILES = ["heldout.parquet", "corpus.parquet", "outputs", "outputs.parquet", "attribution.parquet", "passages.parquet"]


def _check_writable(run_dir: Path) -> None:
    """Refuse an ``--out`` that is a file or lies where nothing can be written, before any work."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"--out {run_dir} is a file, not a folder; choose a folder for the run")
    probe = run_dir
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise RunFolderError(f"--out {run_dir} cannot be created: {probe} is a file; choose another folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RunFolderError(f"--out {run_dir} cannot be written: no write permission on {probe}; choose another folder")


def _check_sizes(cfg: BuildConfig, n_pieces: int, n_train_windows: int) -> None:
    """Problems that need the corpus to see, raised before anything is written."""
    from .corpus import CorpusError

    if n_train_windows == 0:
        raise CorpusError(
            f"the corpus gave no training music ({n_pieces} piece(s) loaded, all held out for validation or too "
            "short); add pieces or lower split.validation_fraction"
        )
    if cfg.trak.lambda_reg == 0 and cfg.trak.proj_dim >= n_train_windows:
        raise BuildConfigError(
            f"trak.proj_dim: {cfg.trak.proj_dim} must be below the number of training windows ({n_train_windows}) "
            "when trak.lambda_reg is 0 (X^T X would be singular); lower trak.proj_dim or set trak.lambda_reg > 0"
        )


def _read_record(path: Path) -> dict | None:
    """A training folder's ``train_config.yaml`` (None if there is none or it cannot be read)."""
    if not path.is_file():
        return None
    try:
        record = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return None
    return record if isinstance(record, dict) else None


def _model_folder(run_dir: Path, record: dict, force: bool) -> Path:
    """Where to train: ``run_dir/model`` when it holds exactly these inputs, else the staging (or a refusal).

    Raises:
        RunFolderError: ``run_dir/model`` holds a model trained on other (or unrecorded) inputs and ``force``
            is not set. Nothing has been written at this point.
    """
    from .train import has_trained_state, load_checkpoint, record_differences

    live, staged = run_dir / "model", run_dir / STAGING / "model"
    if force:
        return staged
    previous = _read_record(live / "train_config.yaml")
    if previous is None:
        exists = (live / "train_config.yaml").exists()
        diffs = ["its train_config.yaml cannot be read" if exists else "no train_config.yaml records what it was trained on"]
    else:
        diffs = record_differences(previous, record, strict=True)
        if not diffs:
            for path in sorted(live.glob("*.pt")):  # reused: each must load safely, checked before any write
                load_checkpoint(path)
            return live
    if has_trained_state(live):
        raise RunFolderError(
            f"{live} holds a model trained on other inputs than this build's: {'; '.join(diffs)}. Nothing was "
            f"written. Build into a new folder (--out OTHER), or rerun with --force to train this config into "
            f"{run_dir} (its model and results are replaced once the new build finishes)."
        )
    return staged


def _open_staging(run_dir: Path, record: dict) -> Path:
    """The staging folder, emptied of an interrupted build's leftovers except a model of these same inputs."""
    from .train import record_differences

    staging = run_dir / STAGING
    if staging.is_dir():
        for child in staging.iterdir():
            if child.name == "model" and child.is_dir():
                previous = _read_record(child / "train_config.yaml")
                if previous is not None and not record_differences(previous, record, strict=True):
                    continue  # an interrupted training of the same inputs: resume it
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    staging.mkdir(parents=True, exist_ok=True)
    return staging


def _write_windows(path: Path, train, val, pad_id: int, digest: str) -> None:
    """``model/windows.npz`` (what retraining reads), rewritten only when it does not hold these windows."""
    from .train import windows_sha256
    from .windows import Windows

    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as w:
                pad = int(w["pad_id"])
                old_val = Windows(w["val_tokens"], w["val_piece"], pad)
                held = windows_sha256(Windows(w["train_tokens"], w["train_piece"], pad), old_val if len(old_val) else None)
            if held == digest:
                return
        except (OSError, ValueError, KeyError):
            pass  # unreadable: written anew
    atomic_write(
        path,
        lambda p: np.savez_compressed(
            p, train_tokens=train.tokens, train_piece=train.piece,
            val_tokens=val.tokens, val_piece=val.piece, pad_id=pad_id,
        ),
    )


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
