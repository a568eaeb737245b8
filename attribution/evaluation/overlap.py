"""Overlap: how far two methods' scores agree, with no retraining involved (mode ``"none"``).

* Similarity against TDA (the paper's "hidden influencers", Deng et al. 2312.06646): :func:`topk_overlap`
  (do the k most similar pieces include TDA's top k?), :func:`mass_outside_topk` (the share of TDA's positive
  mass outside the similarity top-k) and :func:`rank_profile` (mean similarity at each TDA rank, their
  Figure 4); :func:`similarity_metrics` adds them for every similarity method against ``trak``.
* The peer against ours: :func:`peer_metrics`, per output the Spearman between dattri's and our TRAK scores.
"""

from __future__ import annotations

import numpy as np

from ..table import is_similarity_method
from .lds import spearman
from .metrics import MetricRows

__all__ = ["topk_overlap", "mass_outside_topk", "rank_profile", "similarity_metrics", "peer_metrics"]


def _topk(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest entries of each row, (n, k); ties broken by index (stable)."""
    return np.argsort(-x, axis=1, kind="stable")[:, :k]


def topk_overlap(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Per row, |top-k(a) ∩ top-k(b)| / k in [0, 1] (1: same k pieces; chance level k / n_pieces)."""
    ta, tb = _topk(a, k), _topk(b, k)
    return np.array([len(set(x) & set(y)) / k for x, y in zip(ta, tb)])


def mass_outside_topk(tda: np.ndarray, similarity: np.ndarray, k: int) -> np.ndarray:
    """Per row, share in [0, 1] of TDA's positive mass on pieces outside the similarity top-k.

    0: all the influence sits on the k most similar pieces; 1: none does ("hidden influencers"). A row
    without positive TDA mass gives NaN.
    """
    pos = np.clip(np.asarray(tda, float), 0.0, None)
    total = pos.sum(1)
    inside = np.take_along_axis(pos, _topk(similarity, k), axis=1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 1.0 - inside / total, np.nan)


def rank_profile(tda: np.ndarray, similarity: np.ndarray, normalise: bool = True) -> np.ndarray:
    """Mean similarity of the piece at each TDA rank (rank 0 = most influential), averaged over rows.

    With ``normalise`` each row's similarity is divided by its mean over pieces, so 1 is "as similar as
    the average training piece" and the curve compares across outputs and measures.
    """
    sim = np.asarray(similarity, float)
    if normalise:
        mean = sim.mean(1, keepdims=True)
        sim = sim / np.where(mean > 0, mean, 1.0)
    order = np.argsort(-np.asarray(tda, float), axis=1, kind="stable")
    return np.take_along_axis(sim, order, axis=1).mean(0)


def similarity_metrics(scores: dict[str, np.ndarray], random_names: list[str], k: int, n_pieces: int,
                       rows: MetricRows) -> list[dict]:
    """Top-k overlap and TDA mass outside the top-k for every similarity method against ``trak`` (and the random
    baseline's chance levels); returns the rank-profile rows (similarity, tda, rank, relative_similarity)."""
    profile: list[dict] = []
    if "trak" not in scores:
        return profile
    for sm in [m for m in scores if is_similarity_method(m)]:
        rows.add(sm, f"top{k}_overlap_with_trak", topk_overlap(scores[sm], scores["trak"], k))
        rows.add(sm, f"trak_mass_outside_top{k}", mass_outside_topk(scores["trak"], scores[sm], k))
        prof = rank_profile(scores["trak"], scores[sm])
        profile += [{"similarity": sm, "tda": "trak", "rank": r + 1, "relative_similarity": v} for r, v in enumerate(prof)]
    rows.add("random", f"top{k}_overlap_with_trak", float(k / n_pieces), n=n_pieces)
    rows.add("random", f"trak_mass_outside_top{k}", np.nanmean(
        [mass_outside_topk(scores["trak"], scores[r], k) for r in random_names], axis=0) if random_names else float("nan"))
    return profile


def peer_metrics(scores: dict[str, np.ndarray], rows: MetricRows) -> None:
    """The peer against ours, score by score: per output Spearman between dattri's TRAK and ours."""
    for ours, peer in (("trak", "dattri_trak"), ("trak_1ckpt", "dattri_trak_1ckpt")):
        if ours in scores and peer in scores:
            rows.add(peer, f"spearman_with_{ours}", np.array([spearman(a, b) for a, b in zip(scores[ours], scores[peer])]))
