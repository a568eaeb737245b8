"""Sampling new pieces from a trained music transformer (temperature / top-k, seeded, from BOS or a prompt).

Each generated piece keeps its token ids (what attribution scores) and is written as MIDI through the
tokenizer, so a listener can hear what is being attributed.

:func:`sample` draws every event from the model's distribution (temperature, top-k). A *decoding rule*
may constrain it; the one here is :class:`NoteCloser`, which keeps notes from hanging:

* ``max_note_seconds``: no note sounds longer. When the sampler draws a time shift that would carry a
  sounding note past the limit, that draw is replaced by the NOTE_OFF of the longest-sounding note
  (forced), and the model draws again at the next position, now knowing the note has ended. Time shifts
  are never removed from the distribution: an earlier version that removed the long ones held the default
  model inside short steps, halved its pieces' length and doubled their note density (benchmarks/RESULTS.md,
  "Generation quality").
* ``close_at_end``: the last positions are kept for the NOTE_OFFs of whatever still sounds (note-ons are
  removed from the distribution once only enough positions remain to close the sounding notes, and a note
  struck less than 0.1 s before the closing first gets the time shift that takes it to 0.1 s or more), so no
  note is left for the MIDI writer to cut and none is closed on the step it began.

Attribution stays exact whatever the rule does: the forced and constrained events are ordinary events of
the saved sequence; the ``.npy`` tokens are exactly what is written as MIDI (its decode) and what TRAK and
the ground truth score. Their log-likelihood is the model's own ``log p(event | prefix)`` (not the
sampler's 1 for a forced event), so a forced note-off the model found unlikely counts as such. Which
positions were forced is recorded (:attr:`NoteCloser.forced`).

With neither option set (the :class:`GenerationConfig` defaults), sampling is bit-identical to the
sampler before the rule existed: the build's outputs do not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .model import MusicTransformer

__all__ = ["GenerationConfig", "NoteCloser", "sample", "generate_outputs"]

#: The shortest time shift the end rule lets the model draw for a note struck just before the closing (where the
#: note-length limit allows it): 0.1 s, below the corpus's 10th-percentile note (0.15 s).
END_SHIFT_SECONDS = 0.1


@dataclass
class GenerationConfig:
    n_outputs: int = 32
    length: int = 256  # events including BOS; at most the model's block_size + 1
    temperature: float = 1.0
    top_k: int | None = 40
    seed: int = 1234
    # decoding rule (see NoteCloser); None/False leave sampling exactly as it was before the rule existed
    max_note_seconds: float | None = None
    close_notes_at_end: bool = False

    def note_closer(self, tokenizer) -> NoteCloser | None:
        """The decoding rule these settings ask for, or None for plain sampling."""
        if self.max_note_seconds is None and not self.close_notes_at_end:
            return None
        return NoteCloser(tokenizer, max_note_seconds=self.max_note_seconds, close_at_end=self.close_notes_at_end)


class NoteCloser:
    """A decoding rule that closes notes: a longest note and/or no note left sounding at the end.

    Tracks, for each sequence being sampled, which pitches sound since which grid step (replaying the
    tokenizer's decode rules: a NOTE_ON of a sounding pitch restarts it). Before each draw
    (:meth:`constrain`) it keeps the end's positions for closing notes; after it (:meth:`override`) it
    replaces a time shift that would carry a note past ``max_note_seconds`` by that note's NOTE_OFF. The
    note to close first is the one sounding longest (lowest pitch on ties). See the module docstring for how
    attribution treats it.

    Args:
        tokenizer: the run's :class:`~attribution.tokenize.EventTokenizer`.
        max_note_seconds: longest note, in seconds (at least one grid step); None: no limit.
        close_at_end: end every sequence with the NOTE_OFFs of the notes still sounding.

    Attributes:
        forced: after :func:`sample`, (n, length) bool, True at the positions whose event was forced.
        constrained: (n, length) bool, True where the rule removed some events from the distribution or
            replaced the draw (forced positions included).
    """

    def __init__(self, tokenizer, max_note_seconds: float | None = None, close_at_end: bool = False) -> None:
        self.limit: int | None = None
        if max_note_seconds is not None:
            finite = isinstance(max_note_seconds, (int, float)) and np.isfinite(max_note_seconds)
            steps = int(np.floor(max_note_seconds / tokenizer.time_step + 1e-9)) if finite else 0
            if steps < 1:
                raise ValueError(
                    f"max_note_seconds must be at least one time step ({tokenizer.time_step} s), got {max_note_seconds!r}"
                )
            self.limit = steps
        self.close_at_end = bool(close_at_end)
        self._off = np.array([tokenizer.note_off_id(p) for p in range(128)])
        self._on = np.array([tokenizer.note_on_id(p) for p in range(128)])
        self._shift_steps = np.arange(1, tokenizer.max_shift_steps + 1)
        self._shift = np.array([tokenizer.shift_id(k) for k in self._shift_steps])
        self._end_steps = max(1, int(round(END_SHIFT_SECONDS / tokenizer.time_step)))
        self.forced = np.zeros((0, 0), dtype=bool)
        self.constrained = np.zeros((0, 0), dtype=bool)

    def start(self, prefix: np.ndarray, length: int) -> None:
        """Begin ``len(prefix)`` sequences of ``length`` tokens from the (n, P) ``prefix``."""
        n, p = prefix.shape
        self._start = np.full((n, 128), -1, dtype=np.int64)  # grid step a pitch started sounding, -1 silent
        self._now = np.zeros(n, dtype=np.int64)
        self._length = length
        self.forced = np.zeros((n, length), dtype=bool)
        self.constrained = np.zeros((n, length), dtype=bool)
        for j in range(p):
            self.update(prefix[:, j])

    def update(self, tokens: np.ndarray) -> None:
        """Advance the note state by one event per sequence."""
        for i, t in enumerate(np.asarray(tokens).tolist()):
            if t < 128:
                self._start[i, t] = self._now[i]
            elif t < 256:
                self._start[i, t - 128] = -1
            elif self._shift[0] <= t <= self._shift[-1]:
                self._now[i] += t - self._shift[0] + 1

    def _oldest(self, i: int) -> tuple[int, int]:
        """The pitch sounding longest in sequence ``i`` (lowest on ties) and for how many steps; (-1, 0) if none."""
        sounding = np.flatnonzero(self._start[i] >= 0)
        if not len(sounding):
            return -1, 0
        held = self._now[i] - self._start[i, sounding]
        k = int(np.argmax(held))  # the first maximum: the lowest pitch on ties
        return int(sounding[k]), int(held[k])

    def constrain(self, logits: torch.Tensor, position: int) -> torch.Tensor:
        """The logits for the event at ``position`` (0-based), with the end rule applied; (n, V) -> (n, V).

        With ``close_at_end``: once only as many positions remain as notes sound, the next event is the
        NOTE_OFF of the longest-sounding one (forced). Two positions earlier, note-ons are removed (a note
        struck then would have to be closed at once). One position before the closing, if a note was struck
        less than ``END_SHIFT_SECONDS`` ago, only time shifts that take it to that length (within the limit)
        remain, so no note is closed on the step it began: the end rule never makes a zero-length or click-length
        note (at most the limit allows).
        """
        if not self.close_at_end:
            return logits
        remaining = self._length - position  # events still to draw, this one included
        out = logits.clone()
        for i in range(out.size(0)):
            sounding = self._start[i] >= 0
            n_sounding = int(sounding.sum())
            if remaining > n_sounding + 2:
                continue
            self.constrained[i, position] = True
            # a note struck shortly before the closing gets a real duration: the youngest sounding note reaches at
            # least END_SHIFT_SECONDS, where the limit allows (the model's own choice here was often one grid step)
            youngest = int(self._now[i] - self._start[i][sounding].max()) if n_sounding else self._end_steps
            struck = remaining == n_sounding + 1 and youngest < self._end_steps
            shifts = self._end_shifts(i, youngest) if struck else None
            if remaining <= n_sounding or (shifts is not None and not len(shifts)):
                self._keep_only(out, i, [self._off[self._oldest(i)[0]]])
                self.forced[i, position] = True
            elif shifts is not None:
                self._keep_only(out, i, shifts)
            else:
                out[i, self._on] = float("-inf")
        return out

    def _end_shifts(self, i: int, youngest: int) -> np.ndarray:
        """The time shifts that take sequence ``i``'s youngest note to ``END_SHIFT_SECONDS`` without carrying its
        oldest past the limit (as long as the limit allows; none when the oldest is at the limit)."""
        room = self.limit - self._oldest(i)[1] if self.limit is not None else len(self._shift)
        fits = self._shift_steps <= room
        if not fits.any():
            return self._shift[fits]
        shortest = min(self._end_steps - youngest, int(self._shift_steps[fits].max()))
        return self._shift[fits & (self._shift_steps >= shortest)]

    @staticmethod
    def _keep_only(logits: torch.Tensor, i: int, ids) -> None:
        """Leave row ``i`` only the events ``ids`` (their logits kept; all zero if the model had ruled them out)."""
        ids = torch.as_tensor(np.asarray(ids), dtype=torch.long)
        keep = logits[i, ids].clone()
        logits[i] = float("-inf")
        logits[i, ids] = keep if torch.isfinite(keep).any() else torch.zeros_like(keep)

    def override(self, tokens: torch.Tensor, position: int) -> torch.Tensor:
        """The drawn events (n, 1), a time shift that would carry a note past the limit replaced.

        The replacement is the NOTE_OFF of the longest-sounding note, or, when every sounding note was struck
        on this very step (a limit shorter than the longest time shift), the longest shift the limit allows:
        a note is never closed on the step it began.
        """
        if self.limit is None:
            return tokens
        out = tokens.clone()
        first, last = int(self._shift[0]), int(self._shift[-1])
        for i, t in enumerate(tokens[:, 0].tolist()):
            if first <= t <= last and not self.forced[i, position]:
                pitch, held = self._oldest(i)
                if pitch >= 0 and held + (t - first + 1) > self.limit:
                    longest = int(self._shift[min(self.limit, len(self._shift)) - 1])
                    out[i, 0] = int(self._off[pitch]) if held else longest
                    self.forced[i, position] = self.constrained[i, position] = True
        return out


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
    prompt: np.ndarray | None = None,
    rule: NoteCloser | None = None,
) -> np.ndarray:
    """Sample ``n`` sequences of ``length`` tokens starting with BOS; returns (n, length) int64.

    ``banned`` token ids (PAD, BOS and, to get full-length pieces, EOS) are never sampled. ``prompt``: a
    1-d token sequence starting with BOS that every sequence begins with verbatim (None: BOS alone);
    ``length`` counts it. ``rule``: a decoding rule (:class:`NoteCloser`), applied to the logits before top-k
    and to each draw after it.
    """
    if length > model.config.block_size + 1:
        raise ValueError(
            f"length {length} exceeds the model context ({model.config.block_size} + 1); "
            "lower generation.length or train with a larger block_size"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if prompt is None:
        prompt = np.array([bos_id], dtype=np.int64)
    prompt = np.asarray(prompt, dtype=np.int64)
    if prompt.ndim != 1 or len(prompt) == 0 or prompt[0] != bos_id:
        raise ValueError(f"a prompt is a 1-d token sequence starting with BOS ({bos_id}), got {prompt[:4]}...")
    if len(prompt) >= length:
        raise ValueError(f"the prompt has {len(prompt)} tokens, so length {length} leaves nothing to generate")
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    idx = torch.as_tensor(np.tile(prompt, (n, 1)), dtype=torch.long)
    if rule is not None:
        rule.start(idx.numpy(), length)
    cache: list[list[torch.Tensor]] = [[] for _ in model.blocks]
    for _ in tqdm(range(length - len(prompt)), desc="generate", disable=not progress):
        # key/value cache: only the newest event goes through the model at each step
        logits = model.next_logits(idx[:, -1:] if cache[0] else idx, cache) / temperature
        if banned:
            logits[:, banned] = float("-inf")
        if rule is not None:
            logits = rule.constrain(logits, idx.size(1))
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=gen)
        if rule is not None:
            nxt = rule.override(nxt, idx.size(1))
            rule.update(nxt[:, 0].numpy())
        idx = torch.cat([idx, nxt], dim=1)
    return idx.numpy()


def generate_outputs(
    model: MusicTransformer, tokenizer, cfg: GenerationConfig, folder: Path, progress: bool = False
) -> list[dict]:
    """Sample ``cfg.n_outputs`` pieces, write ``folder/<output_id>.mid`` and ``.npy``; return one row per output."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    from .midi import write_midi

    rule = cfg.note_closer(tokenizer)
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
        rule=rule,
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
        if rule is not None:  # only then: the default build's outputs.parquet keeps its columns
            rows[-1]["forced_events"] = int(rule.forced[i].sum())
    return rows
