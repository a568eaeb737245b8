"""Similarity "legal proxies": how much a generated piece resembles each training piece.

Courts and licences reason about perceived similarity, not counterfactual influence. These symbolic
measures stand in for that reasoning (and for the audio-embedding similarity the paper uses):

* ``sim_pitch_hist``     – cosine of duration-weighted pitch-class histograms (tonal material).
* ``sim_interval_ngram`` – share of the output's melodic-interval n-grams (on the skyline melody)
  that also occur in the training piece (multiset containment: "how much of the tune was taken").
* ``sim_embedding``      – cosine of the model's own mean-pooled final hidden states.

All scores lie in [0, 1] (cosines of non-negative vectors, containment) except ``sim_embedding``, a
cosine in [-1, 1] that is clipped at 0 so every similarity reads as "no resemblance" at 0.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

__all__ = [
    "pitch_class_histogram",
    "skyline_intervals",
    "interval_ngrams",
    "pitch_hist_similarity",
    "interval_ngram_similarity",
    "cosine_matrix",
]


def pitch_class_histogram(notes: np.ndarray) -> np.ndarray:
    """12-bin pitch-class histogram weighted by note duration, summing to 1 (zeros if no notes)."""
    hist = np.zeros(12)
    if len(notes):
        durations = np.maximum(notes[:, 2] - notes[:, 1], 1e-3)
        np.add.at(hist, notes[:, 0].astype(int) % 12, durations)
    total = hist.sum()
    return hist / total if total > 0 else hist


def skyline_intervals(notes: np.ndarray, onset_tolerance: float = 0.02) -> np.ndarray:
    """Semitone steps between successive highest notes of each onset (the skyline melody)."""
    if len(notes) < 2:
        return np.zeros(0, dtype=int)
    order = np.lexsort((-notes[:, 0], notes[:, 1]))
    starts, pitches = notes[order, 1], notes[order, 0]
    onset = np.concatenate([[True], np.diff(starts) > onset_tolerance])
    melody = pitches[onset].astype(int)  # highest pitch comes first within each onset
    return np.diff(melody)


def interval_ngrams(notes: np.ndarray, n: int = 3) -> Counter:
    steps = skyline_intervals(notes)
    return Counter(tuple(steps[i : i + n]) for i in range(len(steps) - n + 1))


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity, (n, d) x (m, d) -> (n, m); zero rows give 0."""
    an = np.linalg.norm(a, axis=1, keepdims=True)
    bn = np.linalg.norm(b, axis=1, keepdims=True)
    return (a / np.where(an > 0, an, 1)) @ (b / np.where(bn > 0, bn, 1)).T


def pitch_hist_similarity(outputs: list[np.ndarray], pieces: list[np.ndarray]) -> np.ndarray:
    a = np.stack([pitch_class_histogram(n) for n in outputs])
    b = np.stack([pitch_class_histogram(n) for n in pieces])
    return cosine_matrix(a, b)


def interval_ngram_similarity(outputs: list[np.ndarray], pieces: list[np.ndarray], n: int = 3) -> np.ndarray:
    """(n_outputs, n_pieces) share of each output's interval n-grams found in each piece."""
    out_grams = [interval_ngrams(x, n) for x in outputs]
    piece_grams = [interval_ngrams(x, n) for x in pieces]
    sim = np.zeros((len(outputs), len(pieces)))
    for i, og in enumerate(out_grams):
        total = sum(og.values())
        if total == 0:
            continue
        for j, pg in enumerate(piece_grams):
            sim[i, j] = sum(min(c, pg[g]) for g, c in og.items() if g in pg) / total
    return sim
