"""Training windows: fixed-length slices of tokenised pieces that remember their piece and creator.

A piece's event sequence (BOS ... EOS) is cut into non-overlapping windows of ``block_size + 1``
tokens (input and shifted target); the last window of a piece is padded. TRAK and the baselines
attribute to windows, and a piece's score is the sum over its windows, which is the first-order
estimate of removing the whole piece (all of its windows) from training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Windows", "make_windows", "piece_sum"]


@dataclass
class Windows:
    """Token windows of shape (n, block_size + 1) with, for each window, its piece index."""

    tokens: np.ndarray  # (n, block_size + 1) int64
    piece: np.ndarray  # (n,) index into the list of pieces the windows were cut from
    pad_id: int

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, piece_mask: np.ndarray) -> Windows:
        """The windows of the pieces where ``piece_mask`` is True (retraining on subsets)."""
        keep = np.asarray(piece_mask, dtype=bool)[self.piece]
        return Windows(self.tokens[keep], self.piece[keep], self.pad_id)

    @property
    def n_events(self) -> int:
        """Number of real (non-PAD) target events."""
        return int((self.tokens[:, 1:] != self.pad_id).sum())


def make_windows(sequences: list[np.ndarray], block_size: int, pad_id: int) -> Windows:
    """Cut each token sequence into windows of ``block_size + 1`` tokens with stride ``block_size``.

    Consecutive windows overlap by one token so every event is a target exactly once.
    """
    rows: list[np.ndarray] = []
    owner: list[int] = []
    width = block_size + 1
    for i, seq in enumerate(sequences):
        seq = np.asarray(seq, dtype=np.int64)
        if len(seq) < 2:
            continue
        for start in range(0, len(seq) - 1, block_size):
            chunk = seq[start : start + width]
            if len(chunk) < width:
                chunk = np.concatenate([chunk, np.full(width - len(chunk), pad_id, dtype=np.int64)])
            rows.append(chunk)
            owner.append(i)
    tokens = np.stack(rows) if rows else np.zeros((0, width), dtype=np.int64)
    return Windows(tokens=tokens, piece=np.asarray(owner, dtype=np.int64), pad_id=pad_id)


def piece_sum(window_scores: np.ndarray, window_piece: np.ndarray, n_pieces: int) -> np.ndarray:
    """Sum window columns into piece columns, (..., n_windows) -> (..., n_pieces).

    A piece's attribution is the sum over its windows: the first-order estimate of removing all of them.
    """
    out = np.zeros(np.shape(window_scores)[:-1] + (n_pieces,))
    np.add.at(out, (..., window_piece), window_scores)
    return out
