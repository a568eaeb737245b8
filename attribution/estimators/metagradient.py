"""Replayed metagradients: the exact derivative of an output's log-likelihood with respect to per-window data
weights, taken through the recorded training run (as MAGIC does; Ilyas & Engstrom 2025, arXiv 2504.16430).

The training run of :func:`attribution.train.train_model` is a deterministic map from data weights ``w`` (one per
training window, all 1 in the recorded run) to final weights ``theta_K(w)``: the same initialisation (the recipe's
seed), the same batch order (:func:`attribution.train._batch_indices`), the same learning-rate schedule, gradient
clipping and AdamW update. A window's weight enters every step whose batch holds it, exactly as the trajectory-exact
("fixed" order) retraining removes windows: the batch loss is

    L_k(theta, w) = sum_{i in B_k} w_i S_i(theta) / sum_{i in B_k} w_i n_i

with ``S_i`` the summed cross-entropy of window i's ``n_i`` non-PAD events, so ``w_i = 0`` leaves the window out of
the batch *mean* (as ``train_model(drop=...)`` does) and ``w = 1`` is the recorded loss. A batch whose weights are
all zero makes no optimiser step (AdamW's step counter does not advance), as in ``train_model``.

:class:`TrainingReplay` is that map, written functionally (:func:`torch.func.functional_call`), and
:func:`metagradients` its reverse-mode derivative for the outputs' log-likelihoods ``f_j(theta_K)``
(:func:`attribution.model.sequence_log_likelihood`): the adjoint of ``(theta, m, v)`` (AdamW's state) is carried
backwards through every step's update, its clipping and its schedule, and each step adds its batch's share to
``df_j/dw_i``. Through the update this needs the derivative of a gradient (a Hessian-vector product), so the
replay runs the model's *explicit* attention, which torch double-differentiates (the fused kernel the recorded
run may have trained with is the same function up to float rounding; the difference is measured, see
:func:`replay_error`). Removing a set ``S`` of windows then changes the output by about ``-sum_{i in S} df/dw_i``
(first order in the weights), so the score of a window is ``df/dw_i`` itself: positive = the window helps.

Cost and memory (the reverse pass of one step is one forward with a graph and a double backward, ~3-4 steps):

* States ``(theta, m, v)`` are kept every ``segment`` steps (default ``ceil(sqrt(steps))``) and a segment's
  states are recomputed when the reverse pass reaches it, so memory is ``~2 sqrt(steps)`` states (3 x the
  parameters each) rather than ``steps`` of them, for one more forward replay.
* One reverse pass serves every target: each step's forward graph is built once, and the targets' adjoints go
  through its backward ``targets_per_pass`` at a time, vectorised with :func:`torch.func.vmap` (exact: the
  adjoint map is linear, vmap only batches it). The backward part grows with the number of targets, the rest not.

Written here rather than taken from a library because no maintained package replays *this* training loop: MAGIC's
reference code (and ``torchopt``'s differentiable optimisers) implement their own loops and optimisers; the
tests check this one against finite differences of the replay and against the retraining code's own models.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.func import functional_call, grad, vjp, vmap

from ..model import ModelConfig, MusicTransformer, event_log_probs
from ..train import TrainConfig, _batch_indices, _lr_at
from .common import EstimatorResult

__all__ = ["MetagradientConfig", "ReplayState", "TrainingReplay", "metagradients", "metagradient_scores",
           "replay_error", "reverse_pass", "sample_outputs"]

BETAS = (0.9, 0.98)  # attribution.train's AdamW
EPS = 1e-8  # torch's AdamW default, as train_model uses it
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class MetagradientConfig:
    outputs: int | None = None  # None: every output; N: a seeded sample of N outputs (the others' rows are NaN)
    sample_seed: int = 0
    dtype: str = "float32"  # the replay's float type ("float64": exact to ~1e-10, about 2x the time)
    segment: int | None = None  # steps between kept states; None: ceil(sqrt(steps))
    targets_per_pass: int = 4  # outputs whose adjoints go through a step's backward together (memory per target)

    def __post_init__(self) -> None:
        if self.outputs is not None and self.outputs < 1:
            raise ValueError(f"metagradient outputs must be >= 1 or None (every output), got {self.outputs}")
        if self.dtype not in DTYPES:
            raise ValueError(f"metagradient dtype {self.dtype!r} is not one of {sorted(DTYPES)}")
        if self.segment is not None and self.segment < 1:
            raise ValueError(f"metagradient segment must be >= 1 (steps between kept states), got {self.segment}")
        if self.targets_per_pass < 1:
            raise ValueError(f"metagradient targets_per_pass must be >= 1, got {self.targets_per_pass}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ReplayState:
    """The training state before a step: weights, AdamW's moments (by parameter name) and its step counter."""

    theta: dict[str, torch.Tensor]
    m: dict[str, torch.Tensor]
    v: dict[str, torch.Tensor]
    t: int  # optimiser steps taken (steps whose batch kept some weight)


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt with a zero (not infinite) derivative at 0, where a parameter has had no gradient yet."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


class TrainingReplay:
    """The recorded training run as a function of per-window data weights (see the module docstring).

    Args:
        model_config, train_config: the run's recipe (``model/train_config.yaml``); the seed fixes the
            initialisation and the batch order.
        train_tokens: (n_windows, T+1) the training windows in the run's order (``model/windows.npz``).
        dtype: the float type of the replay (the initial weights are drawn in float32, as in training, then cast).
    """

    def __init__(self, model_config: ModelConfig, train_config: TrainConfig, train_tokens: np.ndarray,
                 dtype: torch.dtype = torch.float32, device: str = "cpu") -> None:
        if model_config.dropout:
            raise ValueError(f"model.dropout is {model_config.dropout}: a replay cannot redraw the recorded run's "
                             "dropout masks; metagradients need a model trained with dropout 0")
        self.mcfg, self.cfg, self.dtype, self.device = model_config, train_config, dtype, device
        self.tokens = torch.as_tensor(np.asarray(train_tokens), dtype=torch.long, device=device)
        self.n = len(self.tokens)
        self.counts = (self.tokens[:, 1:] != model_config.pad_id).sum(1).to(dtype)
        with torch.random.fork_rng(devices=[]):  # train_model seeds torch's generator, then builds the model
            torch.manual_seed(train_config.seed)
            model = MusicTransformer(model_config)
        self.model = model.use_fused_attention(False).to(device=device, dtype=dtype).eval()
        # named_parameters lists the tied head/embedding weight once, as AdamW saw it; functional_call re-ties it
        self.names = [n for n, _ in self.model.named_parameters()]
        self.decay = {n: p.dim() >= 2 for n, p in self.model.named_parameters()}

    def initial_state(self) -> ReplayState:
        theta = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        zeros = {n: torch.zeros_like(p) for n, p in theta.items()}
        return ReplayState(theta, zeros, {n: z.clone() for n, z in zeros.items()}, 0)

    def batch(self, k: int) -> np.ndarray:
        """Window indices of step ``k`` (the recorded run's order)."""
        return _batch_indices(k, self.n, self.cfg)

    def _loss(self, theta: dict, wb: torch.Tensor, tokens: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        logits = functional_call(self.model, theta, (tokens[:, :-1],))[0]
        nll = -event_log_probs(logits, tokens[:, 1:], self.mcfg.pad_id).sum(-1)  # (B,) S_i
        return (wb * nll).sum() / (wb * counts).sum()

    def update(self, k: int, t: int, theta: dict, m: dict, v: dict, wb: torch.Tensor, idx: np.ndarray):
        """Step ``k`` of training, the optimiser's ``t+1``-th step, as a differentiable function of its inputs.

        Mirrors ``train_model``: the weighted batch loss, ``clip_grad_norm_`` and torch's single-tensor AdamW
        (decoupled weight decay on parameters of 2 or more dimensions). Returns (theta, m, v) after the step.
        """
        cfg = self.cfg
        sel = torch.as_tensor(idx, device=self.device)
        grads = grad(self._loss)(theta, wb, self.tokens[sel], self.counts[sel])
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()]))
        coef = torch.clamp(cfg.grad_clip / (norm + 1e-6), max=1.0)
        lr, step = _lr_at(k, cfg), t + 1
        b1, b2 = BETAS
        step_size = lr / (1 - b1**step)
        bc2_sqrt = (1 - b2**step) ** 0.5
        out_theta, out_m, out_v = {}, {}, {}
        for n in self.names:
            g = grads[n] * coef
            p = theta[n] * (1 - lr * cfg.weight_decay) if self.decay[n] else theta[n]
            out_m[n] = torch.lerp(m[n], g, 1 - b1)
            out_v[n] = torch.addcmul(v[n] * b2, g, g, value=1 - b2)
            denom = _safe_sqrt(out_v[n]) / bc2_sqrt + EPS
            out_theta[n] = torch.addcdiv(p, out_m[n], denom, value=-step_size)
        return out_theta, out_m, out_v

    def _weights(self, w: np.ndarray | torch.Tensor | None) -> torch.Tensor:
        if w is None:
            return torch.ones(self.n, dtype=self.dtype, device=self.device)
        w = torch.as_tensor(w, dtype=self.dtype, device=self.device)
        if w.shape != (self.n,):
            raise ValueError(f"data weights have shape {tuple(w.shape)}; expected ({self.n},), one per training window")
        return w

    def _active(self, idx: np.ndarray, w: torch.Tensor) -> bool:
        sel = torch.as_tensor(idx, device=self.device)
        return bool(idx.size) and bool((w[sel] * self.counts[sel]).sum() > 0)

    @torch.no_grad()
    def advance(self, state: ReplayState, k: int, w: torch.Tensor) -> ReplayState:
        """The state after step ``k`` (no graph); a batch of zero weight passes without an optimiser step."""
        idx = self.batch(k)
        if not self._active(idx, w):
            return state
        sel = torch.as_tensor(idx, device=self.device)
        theta, m, v = self.update(k, state.t, state.theta, state.m, state.v, w[sel], idx)
        return ReplayState(theta, m, v, state.t + 1)

    def run(self, w: np.ndarray | torch.Tensor | None = None, keep_every: int | None = None
            ) -> tuple[ReplayState, dict[int, ReplayState]]:
        """Replay training with data weights ``w`` (None: all 1); returns the final state and the states before
        every ``keep_every``-th step ({} when None)."""
        w = self._weights(w)
        state, kept = self.initial_state(), {}
        for k in range(self.cfg.steps):
            if keep_every and k % keep_every == 0:
                kept[k] = state
            state = self.advance(state, k, w)
        return state, kept

    def load_into(self, state: ReplayState) -> MusicTransformer:
        """A float32 :class:`MusicTransformer` holding the state's weights (explicit attention, eval mode)."""
        model = MusicTransformer(self.mcfg)
        model.load_state_dict({**{n: t.float() for n, t in state.theta.items()}, "head.weight": state.theta["tok_emb.weight"].float()})
        return model.eval()

    def log_likelihoods(self, theta: dict, output_tokens: np.ndarray) -> torch.Tensor:
        """Each output's log-likelihood under weights ``theta``, (n_outputs,) in the replay's dtype."""
        out = torch.as_tensor(np.asarray(output_tokens), dtype=torch.long, device=self.device)
        with torch.no_grad():
            logits = functional_call(self.model, theta, (out[:, :-1],))[0]
            return event_log_probs(logits, out[:, 1:], self.mcfg.pad_id).sum(-1)


def _output_grads(replay: TrainingReplay, theta: dict, rows: torch.Tensor) -> dict[str, torch.Tensor]:
    """d f_j / d theta for each output row: name -> (n_rows, *shape)."""
    def f(th, row):
        logits = functional_call(replay.model, th, (row[None, :-1],))[0]
        return event_log_probs(logits, row[None, 1:], replay.mcfg.pad_id).sum()

    return vmap(grad(f), in_dims=(None, 0))(theta, rows)


def metagradients(replay: TrainingReplay, output_tokens: np.ndarray, w: np.ndarray | None = None,
                  segment: int | None = None, targets_per_pass: int = 4) -> tuple[np.ndarray, ReplayState]:
    """``d f_j(theta_K) / d w_i`` for every output j and window i, (n_outputs, n_windows) float64, at weights ``w``
    (None: all 1, the recorded run), by one reverse pass through the replayed run; also the replay's final state.

    ``segment``: steps between kept states (None: ``ceil(sqrt(steps))``); memory is about
    ``(steps / segment + segment)`` states plus ``targets_per_pass`` step graphs.
    """
    segment = segment or max(1, math.ceil(math.sqrt(replay.cfg.steps)))
    final, kept = replay.run(w, keep_every=segment)
    return reverse_pass(replay, final, kept, output_tokens, w, targets_per_pass), final


def reverse_pass(replay: TrainingReplay, final: ReplayState, kept: dict[int, ReplayState], output_tokens: np.ndarray,
                 w: np.ndarray | None = None, targets_per_pass: int = 4) -> np.ndarray:
    """The reverse half of :func:`metagradients`, from a forward replay's final state and kept states."""
    steps = replay.cfg.steps
    starts = sorted(kept)
    weights = replay._weights(w)
    rows = torch.as_tensor(np.asarray(output_tokens), dtype=torch.long, device=replay.device)
    chunks = [slice(s, min(s + targets_per_pass, len(rows))) for s in range(0, len(rows), targets_per_pass)]
    adjoints = []  # per chunk: (a_theta, a_m, a_v), each name -> (chunk, *shape)
    for c in chunks:
        a_theta = _output_grads(replay, final.theta, rows[c])
        zeros = {n: torch.zeros_like(t) for n, t in a_theta.items()}
        adjoints.append((a_theta, zeros, {n: z.clone() for n, z in zeros.items()}))
    meta = torch.zeros(len(rows), replay.n, dtype=torch.float64)
    for start, end in reversed(list(zip(starts, starts[1:] + [steps]))):
        states = [kept[start]]  # the states before steps start .. end-1, recomputed from the kept one
        for k in range(start, end - 1):
            states.append(replay.advance(states[-1], k, weights))
        for k in range(end - 1, start - 1, -1):
            state, idx = states[k - start], replay.batch(k)
            if not replay._active(idx, weights):
                continue  # no optimiser step: the state passes through unchanged, and so do the adjoints
            sel = torch.as_tensor(idx, device=replay.device)

            def step_fn(theta, m, v, wb, k=k, t=state.t, idx=idx):
                return replay.update(k, t, theta, m, v, wb, idx)

            _, pullback = vjp(step_fn, state.theta, state.m, state.v, weights[sel])
            for j, c in enumerate(chunks):
                a_theta, a_m, a_v, a_w = vmap(pullback)(adjoints[j])
                adjoints[j] = (a_theta, a_m, a_v)
                meta[c, sel.cpu()] += a_w.detach().to(torch.float64).cpu()
        del states
    return meta.numpy()


def replay_error(replay: TrainingReplay, state: ReplayState, recorded: dict[str, torch.Tensor],
                 output_tokens: np.ndarray) -> dict:
    """How far a replayed final state is from the recorded run's final weights (a state dict).

    Returns the largest absolute weight difference, the relative norm of the difference and the largest difference
    of the outputs' log-likelihoods (nats); a faithful replay differs by float rounding only.
    """
    diff2 = norm2 = 0.0
    worst = 0.0
    for n in replay.names:
        a, b = state.theta[n].double().cpu(), recorded[n].double().cpu()
        diff2 += float(((a - b) ** 2).sum())
        norm2 += float((b**2).sum())
        worst = max(worst, float((a - b).abs().max()))
    replayed = replay.log_likelihoods(state.theta, output_tokens).double().cpu()
    theta_rec = {n: recorded[n].to(device=replay.device, dtype=replay.dtype) for n in replay.names}
    reference = replay.log_likelihoods(theta_rec, output_tokens).double().cpu()
    return {"max_abs_weight_diff": worst, "relative_weight_diff": math.sqrt(diff2 / max(norm2, 1e-300)),
            "max_abs_loglik_diff_nats": float((replayed - reference).abs().max()) if len(reference) else 0.0}


def sample_outputs(n_outputs: int, cfg: MetagradientConfig) -> np.ndarray:
    """The outputs scored: all of them, or a seeded sample of ``cfg.outputs`` (sorted indices)."""
    if cfg.outputs is None or cfg.outputs >= n_outputs:
        return np.arange(n_outputs)
    return np.sort(np.random.default_rng([cfg.sample_seed, 15]).choice(n_outputs, cfg.outputs, replace=False))


def metagradient_scores(model_config: dict, train_config: dict, train_tokens: np.ndarray, output_tokens: np.ndarray,
                        cfg: MetagradientConfig, recorded: dict[str, torch.Tensor] | None = None,
                        max_replay_error: float = 1e-2) -> EstimatorResult:
    """Metagradient scores of every training window for the outputs ``cfg`` selects, (n_outputs, n_windows).

    Rows of outputs outside the sample are NaN. ``recorded``: the run's final state dict; the replay must reproduce
    it (relative weight difference at most ``max_replay_error``), else the scores would be those of another run.

    Raises:
        ValueError: the replay does not reproduce the recorded run (another torch version, recipe or windows).
    """
    t0 = time.perf_counter()
    mcfg = ModelConfig(**model_config)
    tcfg = TrainConfig(**{k: v for k, v in train_config.items() if k in TrainConfig.__dataclass_fields__})
    replay = TrainingReplay(mcfg, tcfg, train_tokens, dtype=DTYPES[cfg.dtype])
    chosen = sample_outputs(len(output_tokens), cfg)
    segment = cfg.segment or max(1, math.ceil(math.sqrt(tcfg.steps)))
    final, kept = replay.run(keep_every=segment)
    facts = {"outputs_scored": [int(i) for i in chosen], "dtype": cfg.dtype, "attention": "explicit (replay)",
             "recorded_attention": tcfg.attention, "steps": tcfg.steps, "segment": segment,
             "targets_per_pass": cfg.targets_per_pass}
    if recorded is not None:  # checked before the reverse pass, which would be spent on another run
        err = replay_error(replay, final, recorded, np.asarray(output_tokens)[chosen])
        facts["replay"] = err
        if not err["relative_weight_diff"] <= max_replay_error:
            raise ValueError(
                f"the replayed training run ends {err['relative_weight_diff']:.3g} (relative) away from the recorded "
                f"final weights (at most {max_replay_error:g} allowed; largest log-likelihood difference "
                f"{err['max_abs_loglik_diff_nats']:.3g} nats): the run was trained by another torch version, recipe or "
                "set of windows than this one; rebuild it, or leave metagradient out of --methods"
            )
    scores = np.full((len(output_tokens), replay.n), np.nan)
    scores[chosen] = reverse_pass(replay, final, kept, np.asarray(output_tokens)[chosen],
                                  targets_per_pass=cfg.targets_per_pass)
    n_params = sum(t.numel() for t in final.theta.values())
    return EstimatorResult(scores, time.perf_counter() - t0, ["all parameters"], int(n_params), facts)
