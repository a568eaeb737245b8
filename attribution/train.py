"""Seeded, resumable training of the music transformer, with checkpoints for TRAK ensembles.

Layout of a training folder::

    train_config.yaml   resolved model + training config (written first)
    ckpt_000300.pt      model weights at selected steps (TRAK ensembles these)
    last.pt             model + optimiser + step, for resuming after interruption
    history.csv         step, train loss, validation loss
    DONE                written when training finished

The batch order is a pure function of (seed, step), so a resumed run continues exactly as an
uninterrupted one would.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from .model import ModelConfig, MusicTransformer
from .windows import Windows

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train_model",
    "load_model",
    "list_checkpoints",
    "evaluate_loss",
    "unigram_loss",
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


def load_model(path: Path) -> MusicTransformer:
    """Load a checkpoint (or ``last.pt``) written by :func:`train_model`."""
    state = torch.load(path, map_location="cpu", weights_only=False)
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
) -> TrainResult:
    """Train (or resume training) a model on ``windows``; everything is written into ``folder``.

    ``drop``: (n_windows,) bool, windows left out *in place*: every step draws the same batch as training on
    all of ``windows`` would and then removes the dropped windows from it (a step whose batch is all
    dropped still advances the schedule). Initialisation and batch order are those of the full run, so the
    model differs from it by the dropped windows' gradients alone -- the counterfactual a leave-out ground
    truth wants, without the noise of a new training trajectory. ``None`` or all False trains exactly
    as without it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    resolved = {"model": model_config.to_dict(), "train": asdict(cfg), "n_windows": len(windows)}
    if drop is not None:
        drop = np.asarray(drop, dtype=bool)
        if drop.shape != (len(windows),):
            raise ValueError(f"drop has shape {drop.shape}; expected ({len(windows)},), one flag per window")
        resolved["dropped_windows"] = int(drop.sum())
    cfg_path = folder / "train_config.yaml"
    if cfg_path.exists():
        previous = yaml.safe_load(cfg_path.read_text())

        def recipe(c: dict) -> dict:  # the thread count is how the run executes, not what it trains
            train = {"attention": "explicit", **c.get("train", {})}  # (folders from before the option)
            return {**c, "train": {k: v for k, v in train.items() if k != "threads"}}

        if recipe(previous) != recipe(resolved):
            raise ValueError(
                f"{folder} holds a training run with a different config; remove the folder or choose "
                "another output folder to train this config"
            )
    else:
        cfg_path.write_text(yaml.safe_dump(resolved, sort_keys=False))
    if len(windows) == 0:
        raise ValueError("no training windows: the corpus produced no token sequences")

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = MusicTransformer(model_config).use_fused_attention(cfg.attention == "fused")
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
        state = torch.load(last, map_location="cpu", weights_only=False)
        return TrainResult(folder, list_checkpoints(folder), state["train_loss"], state.get("val_loss"), 0.0, 0.0)
    if last.exists():
        state = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_step = state["step"]
    elif history_path.exists():
        history_path.unlink()

    save_at = set(cfg.checkpoint_steps())
    tokens = torch.as_tensor(windows.tokens)
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
            batch = tokens[idx]
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
    (folder / "DONE").write_text(f"{cfg.steps}\n")
    return TrainResult(
        folder=folder,
        checkpoints=list_checkpoints(folder),
        final_train_loss=float(ema) if ema is not None else float("nan"),
        val_loss=val_loss,
        seconds=seconds,
        tokens_per_second=seen_tokens / seconds if seconds > 0 else 0.0,
    )


def _save(path: Path, model, model_config: ModelConfig, step: int, opt=None, train_loss=None, val_loss=None) -> None:
    state = {"model": model.state_dict(), "model_config": model_config.to_dict(), "step": step}
    if opt is not None:
        state.update(optimizer=opt.state_dict(), train_loss=train_loss, val_loss=val_loss)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
