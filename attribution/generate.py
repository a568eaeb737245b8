"""Sampling new pieces from a trained music transformer (temperature / top-k, seeded).

Each generated piece keeps its token ids (what attribution scores) and is written as MIDI through the
tokenizer, so a listener can hear what is being attributed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .model import MusicTransformer

__all__ = ["GenerationConfig", "sample", "generate_outputs"]


@dataclass
class GenerationConfig:
    n_outputs: int = 32
    length: int = 256  # events including BOS; at most the model's block_size + 1
    temperature: float = 1.0
    top_k: int | None = 40
    seed: int = 1234


@torch.no_grad()
def sample(
    model: MusicTransformer,
    n: int,
    length: int,
    bos_id: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    banned: list[int] | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Sample ``n`` sequences of ``length`` tokens starting with BOS; returns (n, length) int64.

    ``banned`` token ids (PAD, BOS and, to get full-length pieces, EOS) are never sampled.
    """
    if length > model.config.block_size + 1:
        raise ValueError(
            f"length {length} exceeds the model context ({model.config.block_size} + 1); "
            "lower generation.length or train with a larger block_size"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    idx = torch.full((n, 1), bos_id, dtype=torch.long)
    cache: list[list[torch.Tensor]] = [[] for _ in model.blocks]
    for _ in tqdm(range(length - 1), desc="generate", disable=not progress):
        # key/value cache: only the newest event goes through the model at each step
        logits = model.next_logits(idx[:, -1:] if cache[0] else idx, cache) / temperature
        if banned:
            logits[:, banned] = float("-inf")
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=gen)
        idx = torch.cat([idx, nxt], dim=1)
    return idx.numpy()


def generate_outputs(
    model: MusicTransformer, tokenizer, cfg: GenerationConfig, folder: Path, progress: bool = False
) -> list[dict]:
    """Sample ``cfg.n_outputs`` pieces, write ``folder/<output_id>.mid`` and ``.npy``; return one row per output."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    from .midi import write_midi

    tokens = sample(
        model,
        cfg.n_outputs,
        cfg.length,
        tokenizer.bos_id,
        temperature=cfg.temperature,
        top_k=cfg.top_k,
        seed=cfg.seed,
        banned=[tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id],
        progress=progress,
    )
    rows = []
    for i, seq in enumerate(tokens):
        output_id = f"out{i:03d}"
        notes = tokenizer.decode(seq)
        np.save(folder / f"{output_id}.npy", seq)
        write_midi(notes, folder / f"{output_id}.mid")
        rows.append(
            {
                "output_id": output_id,
                "events": int(len(seq) - 1),
                "notes": int(len(notes)),
                "seconds": float(notes[:, 2].max()) if len(notes) else 0.0,
                "midi": f"outputs/{output_id}.mid",
                "tokens": f"outputs/{output_id}.npy",
                "temperature": cfg.temperature,
                "top_k": cfg.top_k,
                "seed": cfg.seed,
            }
        )
    return rows
