"""A small decoder-only music transformer (nanoGPT-style, one file).

``MusicTransformer(config).forward(idx, targets) -> (logits, loss)``. The model is written so that
``torch.func`` can take per-example gradients through it (attention is computed explicitly rather than
with fused kernels, no dropout at attribution time), which TRAK and the gradient baselines need. Training
switches to torch's fused attention (:meth:`MusicTransformer.use_fused_attention`): the same function to
float rounding, and about twice as fast on CPU (0.42 s against 0.77 s a step of the default model on 2
cores), which halves the cost of the retraining ground truth.

Also here: :func:`sequence_log_likelihood`, the utility whose counterfactual change defines the causal
value of a training piece (Deng et al., 2312.06646): the log-likelihood of a whole sequence, a sum over
its events.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ModelConfig", "MusicTransformer", "event_log_probs", "sequence_log_likelihood"]


@dataclass
class ModelConfig:
    vocab_size: int = 391
    block_size: int = 256  # context length in events
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    dropout: float = 0.0
    pad_id: int = 388

    def to_dict(self) -> dict:
        return asdict(self)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        assert cfg.d_model % cfg.n_head == 0
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)
        mask = torch.tril(torch.ones(cfg.block_size, cfg.block_size, dtype=torch.bool))
        self.register_buffer("mask", mask.view(1, 1, cfg.block_size, cfg.block_size), persistent=False)
        # Fused attention (torch's scaled_dot_product_attention) for whole-sequence passes: the same function,
        # about 2x faster to train on CPU. Off by default: attribution takes per-example gradients with
        # torch.func through the explicit form, and sampling uses the key/value cache.
        self.fused = False

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, n_head, T, head_dim)
        return tuple(t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past: int) -> torch.Tensor:
        B, _, T, hd = q.shape
        S = k.size(2)  # past + T keys
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))  # (B, nh, T, S)
        att = att.masked_fill(~self.mask[:, :, past : past + T, :S], float("-inf"))
        att = self.dropout(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, -1)  # (B, T, C)
        return self.proj(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(x)
        if self.fused:
            B, _, T, _ = q.shape
            p = self.dropout.p if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            return self.proj(y.transpose(1, 2).contiguous().view(B, T, -1))
        return self._attend(q, k, v, past=0)

    def forward_cached(self, x: torch.Tensor, cache: list[torch.Tensor]) -> torch.Tensor:
        """Attend from new positions ``x`` to the cached keys/values and themselves; extends ``cache``."""
        q, k, v = self._heads(x)
        past = cache[0].size(2) if cache else 0
        if cache:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        cache[:] = [k, v]
        return self._attend(q, k, v, past=past)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, 4 * cfg.d_model),
            nn.GELU(),
            nn.Linear(4 * cfg.d_model, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))

    def forward_cached(self, x: torch.Tensor, cache: list[torch.Tensor]) -> torch.Tensor:
        x = x + self.attn.forward_cached(self.ln1(x), cache)
        return x + self.mlp(self.ln2(x))


class MusicTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.d_model)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying, as in GPT-2
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def use_fused_attention(self, fused: bool = True) -> "MusicTransformer":
        """Compute whole-sequence attention with torch's fused kernel (training) or explicitly (attribution)."""
        for block in self.blocks:
            block.attn.fused = bool(fused)
        return self

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def hidden_states(self, idx: torch.Tensor) -> torch.Tensor:
        """Final-layer hidden states, (B, T, d_model)."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} events exceeds block_size {self.config.block_size}")
        pos = torch.arange(T, device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(pos)  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)

    @torch.no_grad()
    def next_logits(self, idx: torch.Tensor, cache: list[list[torch.Tensor]]) -> torch.Tensor:
        """Logits after new tokens ``idx`` (B, T), reusing and extending a key/value ``cache``.

        For sampling only (one list per layer; start with ``[[] for _ in blocks]``): each new event
        costs one position's work instead of re-running the whole prefix. Same numbers as
        :meth:`forward` up to float rounding.
        """
        past = cache[0][0].size(2) if cache[0] else 0
        T = idx.size(1)
        if past + T > self.config.block_size:
            raise ValueError(f"{past + T} events exceed block_size {self.config.block_size}")
        pos = torch.arange(past, past + T, device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(pos)
        for block, layer_cache in zip(self.blocks, cache):
            x = block.forward_cached(x, layer_cache)
        return self.head(self.ln_f(x))[:, -1, :]

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) event ids -> logits (B, T, vocab); loss is mean cross-entropy over non-PAD targets."""
        logits = self.head(self.hidden_states(idx))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)),
                targets.reshape(-1),
                ignore_index=self.config.pad_id,
            )
        return logits, loss


def event_log_probs(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """log p(target_t | context) per position, zero at PAD targets. Shapes (..., T, V), (..., T) -> (..., T)."""
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    return picked * (targets != pad_id).to(picked.dtype)


def sequence_log_likelihood(model: MusicTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """log p(tokens[1:] | tokens[0]) = sum over events of log p(e_t | e_<t), per sequence; (B, T+1) -> (B,)."""
    logits, _ = model(tokens[:, :-1])
    return event_log_probs(logits, tokens[:, 1:], model.config.pad_id).sum(-1)
