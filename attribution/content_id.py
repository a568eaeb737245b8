"""Content ID: what one piece draws on, read from a run folder (no torch, no recomputation of scores).

A *piece* is a generated output of the build (``RUN/outputs.parquet`` ...) or a piece scored after it
(``RUN/scored/outputs.parquet`` ..., the same layout; a piece id is looked up in the build first). For
one piece this module gathers what the Content ID page shows (:mod:`attribution.content_id_page`):

* :class:`ContentIdRun` -- a run's tables, loaded once, and :meth:`ContentIdRun.piece` for one piece.
* :func:`passage_leaders` -- for each passage (a segment of events, ``passages.parquet``), the creator it
  draws on most: the largest sum of the passage's TRAK scores over that creator's pieces.
* :func:`influences` -- the training pieces with the highest causal (TRAK) score, beside their similarity
  (``sim_*``) scores and percentiles, each marked a *hidden influencer* or not (rule: :data:`HIDDEN_RULE`),
  with the training window that best matches the passage drawing most on it (rule: :data:`MATCH_RULE`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .errors import AttributionError
from .similarity import interval_ngrams, pitch_class_histogram
from .table import AttributionTable, is_similarity_method
from .tokenize import EventTokenizer

__all__ = [
    "ContentIdRun",
    "Influence",
    "Piece",
    "PassageLead",
    "HIDDEN_RULE",
    "MATCH_RULE",
    "ContentIdError",
    "best_window",
    "creator_totals",
    "influences",
    "passage_leaders",
    "note_passages",
    "token_clock",
]

SCORED = "scored"
TRAK = "trak"

HIDDEN_RULE = (
    "A hidden influencer is one of the pieces listed here (the highest causal scores, all positive) that sits in "
    "the lower half of all training pieces by similarity to this piece, under every similarity measure: the "
    "model drew on it, but a similarity test would not point at it."
)
MATCH_RULE = (
    "Each snippet is one training window of that piece (a stretch of {window} events exactly as the model saw it "
    "in training), chosen to match the passage of this piece that draws most on it: the window sharing the most "
    "two-step melodic interval patterns of the top line with that passage, ties broken by the closest mix of "
    "pitch classes."
)


class ContentIdError(AttributionError):
    """A piece id, or a run folder's tables for it, cannot be shown."""


@dataclass
class Piece:
    """One piece of a run and everything scored about it."""

    piece_id: str
    kind: str  # "generated" (an output of the build) or "scored" (scored after the build)
    info: dict  # its row of outputs.parquet (build or scored/)
    tokens: np.ndarray  # the token ids that were attributed, BOS first
    notes: np.ndarray  # the tokens decoded
    table: AttributionTable  # this piece's scores, over the build's corpus
    passages: pd.DataFrame  # its rows of passages.parquet (may be empty)


@dataclass
class PassageLead:
    """A passage's span and the creator it draws on most (``None``: no creator has a positive total)."""

    passage: int
    first_event: int
    end_event: int
    creator: str | None
    share: float  # the leader's positive total over the passage's positive creator totals (0 if none)
    top_piece: str | None  # the single piece with the highest passage score


@dataclass
class Influence:
    """A training piece with a high causal score for one piece, and how similar it is."""

    train_id: str
    title: str
    creator: str
    trak: float
    share: float  # of the piece's positive piece-level TRAK mass
    similarity: dict[str, tuple[float, float]] = field(default_factory=dict)  # method -> (score, mid-rank percentile)
    hidden: bool = False
    passage: int | None = None  # the passage of the piece drawing most on this training piece
    window: int | None = None  # row of model/windows.npz chosen by MATCH_RULE


class ContentIdRun:
    """A run's tables for Content ID pages, loaded once.

    Args:
        run_dir: a run folder written by ``royaltysim attribution build`` (scored pieces, if any, in
            ``RUN/scored/``).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.build = AttributionTable.load(self.run_dir)  # checks the run is complete and unchanged
        config = yaml.safe_load((self.run_dir / "config.yaml").read_text()) or {}
        try:
            self.tokenizer = EventTokenizer.from_dict((config.get("config") or {}).get("tokenizer") or {})
            self.block_size = int(config["config"]["model"]["block_size"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ContentIdError(
                f"{self.run_dir / 'config.yaml'} has no usable config.tokenizer / config.model.block_size ({exc}); "
                "rebuild the run with `royaltysim attribution build CONFIG --out RUN`"
            ) from None
        self.scored = self._load_scored()
        self._windows: tuple[np.ndarray, np.ndarray, int] | None = None

    def _load_scored(self) -> AttributionTable | None:
        folder = self.run_dir / SCORED
        if not (folder / "outputs.parquet").is_file():
            return None
        for name in ("attribution.parquet", "passages.parquet"):
            if not (folder / name).is_file():
                raise ContentIdError(
                    f"{folder / name} is missing while {folder / 'outputs.parquet'} lists scored pieces; "
                    "rescore them with `royaltysim attribution score RUN PIECE.mid`"
                )
        return AttributionTable(
            scores=pd.read_parquet(folder / "attribution.parquet"), corpus=self.build.corpus,
            outputs=pd.read_parquet(folder / "outputs.parquet"), path=folder,
        )

    @property
    def piece_ids(self) -> list[str]:
        """The build's outputs, then the scored pieces."""
        scored = self.scored.output_ids if self.scored is not None else []
        return self.build.output_ids + [s for s in scored if s not in set(self.build.output_ids)]

    def kind(self, piece_id: str) -> str:
        if piece_id in set(self.build.output_ids):
            return "generated"
        if self.scored is not None and piece_id in set(self.scored.output_ids):
            return "scored"
        known = self.piece_ids
        raise ContentIdError(
            f"no piece {piece_id!r} in {self.run_dir}: it is neither a generated output (outputs.parquet) nor a "
            f"scored piece ({SCORED}/outputs.parquet); known ids: {', '.join(known[:8])}"
            f"{' ...' if len(known) > 8 else ''}"
        )

    def table_for(self, piece_id: str) -> AttributionTable:
        """The build's table or the scored one, whichever holds ``piece_id``."""
        return self.build if self.kind(piece_id) == "generated" else self.scored

    def piece(self, piece_id: str) -> Piece:
        kind = self.kind(piece_id)
        source = self.table_for(piece_id)
        info = source.outputs.set_index("output_id").loc[piece_id].to_dict()
        root = self.run_dir if kind == "generated" else self.run_dir / SCORED
        rel = info.get("tokens") or f"outputs/{piece_id}.npy"
        token_file = self.run_dir / rel if (self.run_dir / rel).is_file() else root / rel
        if not token_file.is_file():
            raise ContentIdError(
                f"the tokens of {piece_id} ({rel}) are missing from {self.run_dir}; rebuild or rescore the piece"
            )
        tokens = np.load(token_file, allow_pickle=False)
        scores = source.scores[source.scores["output_id"] == piece_id]
        if TRAK not in set(scores["method"]):
            raise ContentIdError(f"{piece_id} has no {TRAK!r} scores in {source.path}; rebuild or rescore it")
        outputs = source.outputs[source.outputs["output_id"] == piece_id]
        table = AttributionTable(scores=scores, corpus=self.build.corpus, outputs=outputs, path=source.path)
        passages = pd.read_parquet(Path(source.path) / "passages.parquet", filters=[("output_id", "==", piece_id)])
        return Piece(piece_id, kind, info, tokens, self.tokenizer.decode(tokens), table, passages)

    def windows(self) -> tuple[np.ndarray, np.ndarray, int]:
        """The training windows ``(tokens (n, T+1), corpus row of each, pad id)`` from ``model/windows.npz``."""
        if self._windows is None:
            path = self.run_dir / "model" / "windows.npz"
            if not path.is_file():
                raise ContentIdError(f"{path} is missing; rebuild the run to restore its training windows")
            with np.load(path) as w:
                self._windows = (w["train_tokens"], w["train_piece"], int(w["pad_id"]))
        return self._windows

    def window_notes(self, row: int) -> np.ndarray:
        """The notes of one training window, decoded as the model saw them (from the window's first event)."""
        tokens, _, pad = self.windows()
        seq = tokens[row]
        return self.tokenizer.decode(seq[seq != pad])


def creator_totals(passages: pd.DataFrame, corpus: pd.DataFrame) -> pd.DataFrame:
    """(passage x creator) sums of passage TRAK over each creator's pieces."""
    creator_of = corpus.set_index("train_id")["creator"]
    rows = passages.assign(creator=passages["train_id"].map(creator_of))
    return rows.pivot_table(index="passage", columns="creator", values="score", aggfunc="sum").fillna(0.0)


def passage_leaders(piece: Piece) -> list[PassageLead]:
    """For each passage, the creator with the largest positive total of the passage's TRAK scores."""
    if piece.passages.empty:
        return []
    totals = creator_totals(piece.passages, piece.table.corpus)
    bounds = piece.passages.groupby("passage")[["first_event", "end_event"]].first()
    best_piece = piece.passages.loc[piece.passages.groupby("passage")["score"].idxmax()].set_index("passage")["train_id"]
    leads = []
    for p, row in totals.iterrows():
        positive = row.clip(lower=0)
        lead = row.idxmax() if row.max() > 0 else None
        share = float(positive[lead] / positive.sum()) if lead is not None else 0.0
        top = best_piece.get(p) if lead is not None else None
        leads.append(PassageLead(int(p), int(bounds.loc[p, "first_event"]), int(bounds.loc[p, "end_event"]), lead, share, top))
    return leads


def token_clock(tokens: np.ndarray, tokenizer: EventTokenizer) -> np.ndarray:
    """``clock[j]``: the time (s) after the first ``j`` tokens; length ``len(tokens) + 1``."""
    t = np.asarray(tokens, dtype=np.int64)
    first_shift, first_velocity = 2 * 128, 2 * 128 + tokenizer.max_shift_steps
    steps = np.where((t >= first_shift) & (t < first_velocity), t - first_shift + 1, 0)
    return np.concatenate([[0], np.cumsum(steps)]) * tokenizer.time_step


def note_passages(tokens: np.ndarray, notes: np.ndarray, tokenizer: EventTokenizer, bounds: list[tuple[int, int]]) -> np.ndarray:
    """For each decoded note, the passage holding its NOTE_ON event (-1 if none does).

    Passage ``[first, end)`` counts events after BOS: event ``e`` is token ``e + 1``. A key struck twice on
    the same step keeps the later strike, as :meth:`EventTokenizer.decode` does.
    """
    clock = np.rint(token_clock(tokens, tokenizer) / tokenizer.time_step).astype(np.int64)
    onset_token: dict[tuple[int, int], int] = {}
    for j, tok in enumerate(np.asarray(tokens).tolist()):
        if tok < 128:
            onset_token[(tok, int(clock[j]))] = j
    firsts = np.array([b[0] for b in bounds], dtype=np.int64)
    ends = np.array([b[1] for b in bounds], dtype=np.int64)
    out = np.full(len(notes), -1, dtype=np.int64)
    for i, (pitch, start) in enumerate(notes[:, :2]):
        j = onset_token.get((int(pitch), int(round(start / tokenizer.time_step))))
        if j is None or not len(bounds):
            continue
        event = j - 1
        k = int(np.searchsorted(firsts, event, side="right") - 1)
        if k >= 0 and event < ends[k]:
            out[i] = k
    return out


def _midrank_percentile(values: np.ndarray) -> np.ndarray:
    """Mid-rank percentile in [0, 1] of each value among all (ties share the middle of their ranks)."""
    v = np.asarray(values, float)
    less = (v[None, :] < v[:, None]).sum(1)
    equal = (v[None, :] == v[:, None]).sum(1)
    return (less + 0.5 * equal) / len(v)


def _containment(part: Counter, whole: Counter) -> float:
    total = sum(part.values())
    return sum(min(c, whole[g]) for g, c in part.items() if g in whole) / total if total else 0.0


def best_window(run: ContentIdRun, piece: Piece, train_row: int, passage_notes: np.ndarray) -> int | None:
    """The training window of corpus row ``train_row`` that best matches ``passage_notes`` (:data:`MATCH_RULE`)."""
    _, owner, _ = run.windows()
    rows = np.flatnonzero(owner == train_row)
    if not len(rows):
        return None
    grams = interval_ngrams(passage_notes, n=2)
    hist = pitch_class_histogram(passage_notes)
    best, best_key = None, None
    for r in rows:
        notes = run.window_notes(int(r))
        other = pitch_class_histogram(notes)
        norm = np.linalg.norm(hist) * np.linalg.norm(other)
        key = (_containment(grams, interval_ngrams(notes, n=2)), float(hist @ other / norm) if norm else 0.0)
        if best_key is None or key > best_key:  # strictly better: ties keep the earliest window
            best, best_key = int(r), key
    return best


def influences(run: ContentIdRun, piece: Piece, top: int = 8) -> list[Influence]:
    """The ``top`` training pieces with the highest positive TRAK score for ``piece``, with similarity and snippets."""
    table = piece.table
    trak = table.pivot(TRAK).iloc[0].fillna(0.0)
    positive_mass = float(trak.clip(lower=0).sum())
    sims = {m: table.pivot(m).iloc[0].fillna(0.0) for m in table.methods if is_similarity_method(m)}
    pct = {m: pd.Series(_midrank_percentile(s.to_numpy()), index=s.index) for m, s in sims.items()}
    corpus = table.corpus.set_index("train_id")
    row_of = {t: i for i, t in enumerate(table.corpus["train_id"])}
    order = trak[trak > 0].sort_values(ascending=False, kind="stable").index[:top]
    by_piece = piece.passages.pivot_table(index="passage", columns="train_id", values="score", aggfunc="sum") \
        if not piece.passages.empty else None
    bounds = [] if by_piece is None else \
        list(piece.passages.groupby("passage")[["first_event", "end_event"]].first().itertuples(index=False, name=None))
    where = note_passages(piece.tokens, piece.notes, run.tokenizer, bounds) if bounds else np.zeros(0, int)
    out = []
    for tid in order:
        inf = Influence(
            train_id=str(tid), title=str(corpus.loc[tid, "title"]), creator=str(corpus.loc[tid, "creator"]),
            trak=float(trak[tid]), share=float(trak[tid] / positive_mass) if positive_mass > 0 else 0.0,
            similarity={m: (float(sims[m][tid]), float(pct[m][tid])) for m in sims},
        )
        inf.hidden = bool(sims) and all(p < 0.5 for _, p in inf.similarity.values())
        if by_piece is not None and tid in by_piece.columns:
            inf.passage = int(by_piece[tid].idxmax())
            passage_notes = piece.notes[where == inf.passage]
            inf.window = best_window(run, piece, row_of[tid], passage_notes if len(passage_notes) else piece.notes)
        out.append(inf)
    return out
