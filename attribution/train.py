"""Seeded, resumable training of the music transformer, with checkpoints for TRAK ensembles.

Layout of a training folder::

    train_config.yaml   what determines the model (written first): model + training config, the SHA-256 of
                        the training (and validation) windows, the torch and royaltysim versions
    ckpt_000300.pt      model weights at selected steps (TRAK ensembles these)
    last.pt             model + optimiser + step, for resuming after interruption
    history.csv         step, train loss, validation loss
    DONE                written when training finished

The batch order is a pure function of (seed, step), so a resumed run continues exactly as an
uninterrupted one would. A folder is resumed or reused only when its ``train_config.yaml`` records the
same inputs (:func:`training_record`, :func:`record_differences`); every file is written atomically.

Checkpoints hold tensors, plain dicts, numbers and strings only, and are read with torch's weights-only
unpickler (:func:`load_checkpoint`): a planted checkpoint cannot run code.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import io
import math
import pickle
import time
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from .errors import CheckpointError, RunFolderError
from .model import ModelConfig, MusicTransformer
from .runfolder import atomic_write, atomic_write_text
from .windows import Windows

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train_model",
    "load_model",
    "load_checkpoint",
    "list_checkpoints",
    "evaluate_loss",
    "unigram_loss",
    "training_record",
    "record_differences",
    "windows_sha256",
    "has_trained_state",
]


ATTENTION = ("fused", "explicit")


@dataclass
class TrainConfig:
    seed: int = 0
    steps: int = 1500
    batch_size: int = 32
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    # fractions of `steps` at which to save weights (TRAK ensembles these checkpoints)
    checkpoints: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])
    eval_every: int = 250
    save_every: int = 200  # steps between resumable snapshots (last.pt)
    threads: int | None = None  # torch intra-op threads; None = torch's default
    # "fused": torch's scaled_dot_product_attention while training (about 2x faster on CPU than "explicit",
    # the same function up to float rounding); the saved weights are scored with the explicit form either way
    attention: str = "fused"

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION:
            raise ValueError(f"train.attention is {self.attention!r}; use one of {', '.join(ATTENTION)}")

    def checkpoint_steps(self) -> list[int]:
        return sorted({max(1, round(f * self.steps)) for f in self.checkpoints})


@dataclass
class TrainResult:
    folder: Path
    checkpoints: list[Path]
    final_train_loss: float
    val_loss: float | None
    seconds: float
    tokens_per_second: float


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def _batch_indices(step: int, n: int, cfg: TrainConfig) -> np.ndarray:
    """Window indices of a step: epochs are seeded permutations, so the order depends on (seed, step) only."""
    per_epoch = max(1, n // cfg.batch_size)
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([cfg.seed, epoch]).permutation(n)
    return perm[k * cfg.batch_size : (k + 1) * cfg.batch_size]


@torch.no_grad()
def evaluate_loss(model: MusicTransformer, windows: Windows, batch_size: int = 64) -> float:
    """Mean cross-entropy (nats per event) over all non-PAD targets of ``windows``."""
    model.eval()
    total, count = 0.0, 0
    pad = model.config.pad_id
    for start in range(0, len(windows), batch_size):
        batch = torch.as_tensor(windows.tokens[start : start + batch_size])
        logits, _ = model(batch[:, :-1])
        targets = batch[:, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=pad, reduction="sum"
        )
        total += float(loss)
        count += int((targets != pad).sum())
    return total / max(count, 1)


def unigram_loss(train: Windows, evaluate: Windows, vocab_size: int) -> float:
    """Cross-entropy of the add-one unigram distribution of ``train`` events, on ``evaluate``."""
    targets = train.tokens[:, 1:].ravel()
    counts = np.bincount(targets[targets != train.pad_id], minlength=vocab_size) + 1.0
    logp = np.log(counts / counts.sum())
    ev = evaluate.tokens[:, 1:].ravel()
    ev = ev[ev != evaluate.pad_id]
    return float(-logp[ev].mean())


def list_checkpoints(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("ckpt_*.pt"))


def has_trained_state(folder: Path) -> bool:
    """True if ``folder`` holds anything training wrote after its config: weights, a snapshot or DONE."""
    folder = Path(folder)
    return (folder / "last.pt").exists() or (folder / "DONE").exists() or bool(list_checkpoints(folder))


def code_versions(packages: tuple[str, ...] = ("torch", "royaltysim"), missing: str = "unknown") -> dict[str, str]:
    """Versions of the code that determines a trained model (recorded with it; another version retrains), or of
    ``packages`` (``missing`` for one not installed)."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = missing
    return out


def windows_sha256(windows: Windows, val_windows: Windows | None = None, drop: np.ndarray | None = None) -> str:
    """SHA-256 of the windows' data: tokens, piece of each window and PAD id, validation windows and ``drop``.

    Two corpora that differ in one pitch of one piece give different hashes (unlike their window counts).
    """
    h = hashlib.sha256()
    for name, w in (("train", windows), ("val", val_windows)):
        if w is None:
            continue
        tokens = np.ascontiguousarray(w.tokens, dtype=np.int64)
        h.update(f"{name}:{tokens.shape}:{int(w.pad_id)}".encode())
        h.update(tokens.tobytes())
        h.update(np.ascontiguousarray(w.piece, dtype=np.int64).tobytes())
    if drop is not None:
        h.update(b"drop:" + np.packbits(np.asarray(drop, dtype=bool)).tobytes())
    return h.hexdigest()


def training_record(
    windows: Windows,
    model_config: ModelConfig,
    cfg: TrainConfig,
    val_windows: Windows | None = None,
    drop: np.ndarray | None = None,
) -> dict:
    """What determines a trained model, as ``train_config.yaml`` records it."""
    record = {
        "model": model_config.to_dict(),
        "train": asdict(cfg),
        "n_windows": len(windows),
        "windows_sha256": windows_sha256(windows, val_windows, drop),
        "versions": code_versions(),
    }
    if drop is not None:
        record["dropped_windows"] = int(np.asarray(drop, dtype=bool).sum())
    return record


def record_differences(previous: dict, record: dict, strict: bool = False) -> list[str]:
    """How a folder's recorded training differs from ``record``, one phrase per difference ([] = the same).

    The thread count is how a run executes, not what it trains, and is not compared. A record written before
    a key existed (no ``attention``: explicit; no ``windows_sha256`` or ``versions``) is compared on the keys it
    has, unless ``strict``, where the missing data hash counts as a difference (its data are unknown).
    """
    diffs = []
    old_train = {"attention": "explicit", **(previous.get("train") or {})}
    new_train = record.get("train") or {}
    for section, old, new in (("model", previous.get("model") or {}, record.get("model") or {}),
                              ("train", old_train, new_train)):
        for key in sorted(set(old) | set(new)):
            if key != "threads" and old.get(key) != new.get(key):
                diffs.append(f"{section}.{key} {old.get(key)!r} -> {new.get(key)!r}")
    for key in ("n_windows", "dropped_windows"):
        if previous.get(key) != record.get(key):
            diffs.append(f"{key} {previous.get(key)!r} -> {record.get(key)!r}")
    if "windows_sha256" in previous or strict:
        if previous.get("windows_sha256") is None:
            diffs.append("training data unknown (recorded by an older royaltysim, without a data hash)")
        elif previous["windows_sha256"] != record.get("windows_sha256"):
            diffs.append("training data differ (a piece was added, removed or edited, or the tokenizer or split changed)")
    old_versions, new_versions = previous.get("versions") or {}, record.get("versions") or {}
    for pkg in sorted(set(old_versions) & set(new_versions)):
        if old_versions[pkg] != new_versions[pkg]:
            diffs.append(f"{pkg} {old_versions[pkg]} -> {new_versions[pkg]}")
    return diffs


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by :func:`train_model` with torch's weights-only unpickler.

    Raises:
        CheckpointError: the file is unreadable (e.g. truncated), or holds Python objects beyond tensors and
            plain data, which safe loading refuses without running them (a planted pickle).
    """
    path = Path(path)
    fix = f"delete {path} (or its folder) and rebuild, e.g. with `royaltysim attribution build ... --force`"
    try:
        with warnings.catch_warnings():  # (torch warns about the pickle protocol of files it then refuses)
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = next((line for line in str(exc).splitlines() if "GLOBAL" in line), "").strip()
        raise CheckpointError(
            f"{path} holds Python objects, not only weights ({reason or 'refused by weights-only loading'}), so "
            f"royaltysim did not write it; it was not loaded, as unpickling it could run code. If you did not put "
            f"it there, treat the folder as untrusted; {fix}"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint ({first}); {fix}") from None
    if not isinstance(state, dict) or not {"model", "model_config", "step"} <= set(state):
        raise CheckpointError(f"{path} is not a checkpoint royaltysim wrote (no model, model_config and step); {fix}")
    return state


def load_model(path: Path) -> MusicTransformer:
    """Load a checkpoint (or ``last.pt``) written by :func:`train_model` (safely: see :func:`load_checkpoint`)."""
    state = load_checkpoint(path)
    model = MusicTransformer(ModelConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    model.eval()
    return model


def train_model(
    windows: Windows,
    model_config: ModelConfig,
    cfg: TrainConfig,
    folder: Path,
    val_windows: Windows | None = None,
    progress: bool = True,
    desc: str = "train",
    drop: np.ndarray | None = None,
    device: str = "cpu",
) -> TrainResult:
    """Train (or resume training) a model on ``windows``; everything is written into ``folder``.

    ``drop``: (n_windows,) bool, windows left out *in place*: every step draws the same batch as training on
    all of ``windows`` would and then removes the dropped windows from it (a step whose batch is all
    dropped still advances the schedule). Initialisation and batch order are those of the full run, so the
    model differs from it by the dropped windows' gradients alone -- the counterfactual a leave-out ground
    truth wants, without the noise of a new training trajectory. ``None`` or all False trains exactly
    as without it. Removed windows leave the batch *mean* (the loss averages over the events that remain):
    the step sees the batch the run would have drawn had the music never been there, rather than a
    fixed-size mean with zero weights, which would also shrink that step's gradient.

    ``device``: where the model trains ("cpu", "cuda", "cuda:1"); the weights are saved for CPU loading.
    """
    folder = Path(folder)
    if drop is not None:
        drop = np.asarray(drop, dtype=bool)
        if drop.shape != (len(windows),):
            raise ValueError(f"drop has shape {drop.shape}; expected ({len(windows)},), one flag per window")
    if len(windows) == 0:
        raise ValueError("no training windows: the corpus produced no token sequences")
    if model_config.d_model % model_config.n_head:
        raise ValueError(
            f"n_head={model_config.n_head} does not divide d_model={model_config.d_model}; "
            "use a divisor of d_model as n_head"
        )
    resolved = training_record(windows, model_config, cfg, val_windows, drop)
    cfg_path = folder / "train_config.yaml"
    if cfg_path.exists():
        previous = yaml.safe_load(cfg_path.read_text()) or {}
        diffs = record_differences(previous, resolved)
        if diffs:
            raise RunFolderError(
                f"{folder} holds a training run with a different config ({'; '.join(diffs)}); remove the folder "
                "or choose another output folder to train this config"
            )

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = MusicTransformer(model_config).use_fused_attention(cfg.attention == "fused").to(device)
    # written only once the model could be built, so a config that cannot train leaves no record behind
    folder.mkdir(parents=True, exist_ok=True)
    if not cfg_path.exists():
        atomic_write_text(cfg_path, yaml.safe_dump(resolved, sort_keys=False))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
    )
    start_step = 0
    last = folder / "last.pt"
    history_path = folder / "history.csv"
    if (folder / "DONE").exists() and last.exists():
        state = load_checkpoint(last)
        return TrainResult(folder, list_checkpoints(folder), state["train_loss"], state.get("val_loss"), 0.0, 0.0)
    if last.exists():
        state = load_checkpoint(last)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_step = state["step"]
        _truncate_history(history_path, start_step)
    elif history_path.exists():
        history_path.unlink()

    save_at = set(cfg.checkpoint_steps())
    tokens = torch.as_tensor(windows.tokens).to(device)
    pad = model_config.pad_id
    t0 = time.perf_counter()
    seen_tokens = 0
    ema = None
    val_loss = None
    model.train()
    bar = tqdm(range(start_step, cfg.steps), desc=desc, disable=not progress, initial=start_step, total=cfg.steps)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, cfg)
        idx = _batch_indices(step, len(windows), cfg)
        if drop is not None:
            idx = idx[~drop[idx]]
        if idx.size:  # (a batch whose windows were all dropped passes with no update)
            batch = tokens[torch.as_tensor(idx, device=tokens.device)]
            _, loss = model(batch[:, :-1], batch[:, 1:])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            seen_tokens += int((batch[:, 1:] != pad).sum())
            ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        done = step + 1
        row = None
        if val_windows is not None and (done % cfg.eval_every == 0 or done == cfg.steps):
            val_loss = evaluate_loss(model, val_windows)
            model.train()
            row = [done, ema, val_loss]
        if done in save_at:
            _save(folder / f"ckpt_{done:06d}.pt", model, model_config, done)
        if done in save_at or done == cfg.steps or done % cfg.save_every == 0:
            _save(last, model, model_config, done, opt, ema, val_loss)
        if row is not None:
            with history_path.open("a", newline="") as f:
                csv.writer(f).writerow(row)
        bar.set_postfix(loss=f"{ema:.3f}" if ema is not None else "-", val=f"{val_loss:.3f}" if val_loss else "-")
    seconds = time.perf_counter() - t0
    model.use_fused_attention(False)
    atomic_write_text(folder / "DONE", f"{cfg.steps}\n")
    return TrainResult(
        folder=folder,
        checkpoints=list_checkpoints(folder),
        final_train_loss=float(ema) if ema is not None else float("nan"),
        val_loss=val_loss,
        seconds=seconds,
        tokens_per_second=seen_tokens / seconds if seconds > 0 else 0.0,
    )


def _truncate_history(path: Path, step: int) -> None:
    """Keep the history rows up to ``step`` (a resumed run rewrites later ones; a kill may cut the last)."""
    if not path.exists():
        return
    rows = [r for r in csv.reader(io.StringIO(path.read_text())) if len(r) == 3 and r[0].isdigit() and int(r[0]) <= step]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    atomic_write_text(path, out.getvalue())


def _save(path: Path, model, model_config: ModelConfig, step: int, opt=None, train_loss=None, val_loss=None) -> None:
    # plain data only (tensors, dicts, ints, floats, None), so load_checkpoint's weights-only reading suffices
    state = {"model": model.state_dict(), "model_config": model_config.to_dict(), "step": int(step)}
    if opt is not None:
        state.update(
            optimizer=opt.state_dict(),
            train_loss=None if train_loss is None else float(train_loss),
            val_loss=None if val_loss is None else float(val_loss),
        )
    atomic_write(path, lambda tmp: torch.save(state, tmp))
