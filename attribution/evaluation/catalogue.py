"""Catalogue-level attribution that sees the second-order term: group influence, cross-validated across creators.

Royalties are paid per catalogue, and removing a catalogue from training changes the model by a step that is
not small. For the model's own samples the expected first-order change of their log-likelihood is zero
(E over x ~ p of grad log p(x) = 0), so a sum of first-order scores over the catalogue (summed TRAK) sees
*which* outputs a catalogue matters for but not *how much* it matters overall. The drop that remains is
second order: about the KL divergence between the full model and the one without the catalogue, quadratic in
the parameter step, and so growing with the catalogue's size and coherence (Basu et al. 2020, "On second-order
group influence functions for black-box predictions", arXiv 1911.00418; Koh et al. 2019 on first-order group
sums that rank groups well but underestimate their effect).

The estimator, per output o and catalogue G, from TRAK's stored projected gradients (per checkpoint k: the
training windows' ``Phi_k`` (n_windows, p), the outputs' ``phi_k`` (n_outputs, p)):

* first order  ``s1[o, G] = sum_{i in G} tau[o, i]`` -- TRAK (with a relative ridge) summed over the catalogue;
* second order ``s2[G] = Delta_G^T (Phi^T Phi) Delta_G`` with ``Delta_G = (Phi^T Phi + lambda I)^{-1} Phi_G^T 1``:
  the Newton step of removing the catalogue, measured in the Fisher metric that the training gradients
  estimate (twice the expected log-likelihood drop of the model's own samples). At ``lambda = 0`` it is
  ``sum_{i, j in G} K[i, j]`` for the train-train kernel ``K = Phi (Phi^T Phi)^{-1} Phi^T``: the group's
  self-influence, which the first-order sum leaves out. Averaged over checkpoints, like TRAK;
* the estimate ``a * s1[o, G] + b * s2[G]`` with ``a, b >= 0`` (both terms' signs are known: a positive
  influence and a KL are drops) and the ridge picked from a small grid: three parameters, fitted by least
  squares on each output's deviations across creators (what the per-output creator-level SNR scores).

The parameters are fitted with cross-validation across creators (:func:`cross_validated_scores`): the estimate
for a creator uses parameters fitted on the other creators' leave-out drops only (leave-one-creator-out by
default, or k folds), so no creator is scored by parameters that saw its own truth. :func:`fit_group_influence`
fits on every creator for use (the economy pays on that fit). :func:`partial_r` measures what a method adds
beyond catalogue size (the partial correlation across creators, controlling for size).

Hand-written rather than from a library: no attribution package (traker, dattri, kronfluence) computes group
self-influence from stored projected features, and the formula is a few lines of linear algebra on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from ..snr import bootstrap_mean_ci, pearson_r

__all__ = [
    "METHOD",
    "SELF_METHOD",
    "RIDGES",
    "CatalogueTerms",
    "GroupFit",
    "self_influence",
    "catalogue_terms",
    "fit_group_influence",
    "cross_validated_scores",
    "creator_folds",
    "partial_r",
    "partial_r_ci",
]

METHOD = "group_influence"  # the cross-validated estimator a * first order + b * second order
SELF_METHOD = "group_self_influence"  # the second-order term alone (no parameter fitted), a diagnostic
RIDGES = (0.01, 0.1, 1.0)  # relative ridge grid (as trak_from_features: times the mean eigenvalue of Phi^T Phi)


def _inverse(X: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """(Phi^T Phi, its ridge-regularised inverse rescaled by its mean absolute entry, as traker does)."""
    xtx = X.T @ X
    lam = ridge * np.trace(xtx) / xtx.shape[0]
    inv = np.linalg.inv(xtx + lam * np.eye(xtx.shape[0]))
    return xtx, inv / np.abs(inv).mean()


def self_influence(train_grads: Sequence[np.ndarray], groups: np.ndarray, n_groups: int, ridge: float) -> np.ndarray:
    """Each group's second-order self-influence ``Delta_G^T (Phi^T Phi) Delta_G``, averaged over checkpoints.

    Args:
        train_grads: per checkpoint, the training windows' projected gradients (n_windows, p).
        groups: (n_windows,) group index of each window (0..n_groups-1; -1 for a window in no group).
        ridge: relative ridge (times the mean eigenvalue of ``Phi^T Phi``).

    Returns:
        (n_groups,) non-negative self-influences (0 for an empty group).
    """
    groups = np.asarray(groups)
    member = np.zeros((len(groups), n_groups))
    inside = groups >= 0
    member[np.flatnonzero(inside), groups[inside]] = 1.0
    total = np.zeros(n_groups)
    for X in train_grads:
        X = np.asarray(X, np.float64)
        xtx, inv = _inverse(X, ridge)
        delta = inv @ (X.T @ member)  # (p, n_groups): each group's Newton step
        total += np.einsum("pg,pq,qg->g", delta, xtx, delta)
    return total / len(train_grads)


@dataclass(frozen=True)
class CatalogueTerms:
    """The two terms of the group-influence estimate for every creator of a run, per ridge of the grid.

    Attributes:
        names: the creators (columns), sorted.
        first: ridge -> (n_outputs, n_creators) first-order TRAK sums over each catalogue.
        second: ridge -> (n_creators,) second-order self-influence of each catalogue.
        windows: (n_creators,) training windows of each catalogue.
    """

    names: list[str]
    first: dict[float, np.ndarray]
    second: dict[float, np.ndarray]
    windows: np.ndarray

    def columns(self, names: Sequence[str]) -> CatalogueTerms:
        """The same terms for ``names`` only, in that order (``KeyError`` for a creator the run lacks)."""
        index = {c: i for i, c in enumerate(self.names)}
        cols = [index[c] for c in names]
        return CatalogueTerms(list(names), {r: f[:, cols] for r, f in self.first.items()},
                              {r: s[cols] for r, s in self.second.items()}, self.windows[cols])


def catalogue_terms(train_grads: Sequence[np.ndarray], target_grads: Sequence[np.ndarray], window_creator: np.ndarray,
                    ridges: Sequence[float] = RIDGES) -> CatalogueTerms:
    """Both terms for every creator, from TRAK's stored features (see the module docstring).

    Args:
        train_grads, target_grads: per checkpoint, (n_windows, p) and (n_outputs, p) projected gradients.
        window_creator: (n_windows,) the creator of each training window.
    """
    from .methods import trak_from_features

    window_creator = np.asarray(window_creator).astype(str)
    names = sorted(set(window_creator))
    groups = np.searchsorted(names, window_creator)
    member = np.zeros((len(window_creator), len(names)))
    member[np.arange(len(window_creator)), groups] = 1.0
    first, second = {}, {}
    for r in ridges:
        first[float(r)] = trak_from_features(train_grads, target_grads, ridge=r) @ member
        second[float(r)] = self_influence(train_grads, groups, len(names), r)
    return CatalogueTerms(names, first, second, member.sum(0))


@dataclass(frozen=True)
class GroupFit:
    """Fitted parameters: ``a * first + b * second`` at ``ridge``; ``sse`` the training fit's squared error."""

    ridge: float
    a: float
    b: float
    sse: float

    def scores(self, terms: CatalogueTerms) -> np.ndarray:
        """(n_outputs, n_creators) estimates for the creators of ``terms``."""
        return self.a * terms.first[self.ridge] + self.b * terms.second[self.ridge][None, :]


def _centred(x: np.ndarray) -> np.ndarray:
    return x - np.nanmean(x, axis=1, keepdims=True)


def fit_group_influence(terms: CatalogueTerms, truth: np.ndarray) -> GroupFit:
    """Least-squares fit of ``a, b >= 0`` and the ridge to ``truth`` (n_outputs, n_creators of ``terms``).

    Per output, both sides are centred across creators (only deviations across creators matter to the per-output
    creator-level SNR); the two columns are scaled to unit norm before the non-negative least squares, so the
    fit does not depend on the features' units. The ridge with the smallest squared error wins. Outputs with a
    missing truth are left out.
    """
    if truth.shape[1] < 2:
        raise ValueError(f"fitting group influence needs at least 2 creators, got {truth.shape[1]}")
    keep = np.isfinite(truth).all(axis=1)
    y = _centred(truth[keep]).ravel()
    best = None
    for r in terms.first:
        f1 = _centred(terms.first[r][keep]).ravel()
        f2 = _centred(np.tile(terms.second[r], (int(keep.sum()), 1))).ravel()
        norms = np.array([np.linalg.norm(f1), np.linalg.norm(f2)])
        norms[norms == 0] = 1.0
        coef, resid = nnls(np.column_stack([f1, f2]) / norms, y)
        fit = GroupFit(float(r), float(coef[0] / norms[0]), float(coef[1] / norms[1]), float(resid**2))
        if best is None or fit.sse < best.sse - 1e-12 * max(abs(best.sse), 1.0):
            best = fit
    return best


def creator_folds(n_creators: int, folds: int | None = None) -> list[np.ndarray]:
    """Held-out creator indices per fold: one creator per fold (None), or ``folds`` contiguous blocks."""
    if folds is None or folds >= n_creators:
        return [np.array([i]) for i in range(n_creators)]
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    return [np.asarray(f) for f in np.array_split(np.arange(n_creators), folds)]


def cross_validated_scores(terms: CatalogueTerms, truth: np.ndarray, folds: int | None = None
                           ) -> tuple[np.ndarray, list[GroupFit]]:
    """Out-of-fold estimates: each creator's column comes from parameters fitted on the other folds' creators.

    Args:
        terms: the terms of exactly the creators of ``truth``'s columns, in order.
        truth: (n_outputs, n_creators) leave-out drops.
        folds: None for leave-one-creator-out, else the number of folds over creators.

    Returns:
        the (n_outputs, n_creators) estimates and the fit of each fold.
    """
    if len(terms.names) != truth.shape[1]:
        raise ValueError(f"terms cover {len(terms.names)} creators, the truth {truth.shape[1]}")
    out = np.full(truth.shape, np.nan)
    fits = []
    for held in creator_folds(truth.shape[1], folds):
        train = np.setdiff1d(np.arange(truth.shape[1]), held)
        fit = fit_group_influence(terms.columns([terms.names[i] for i in train]), truth[:, train])
        out[:, held] = fit.scores(terms.columns([terms.names[i] for i in held]))
        fits.append(fit)
    return out, fits


def partial_r(scores: np.ndarray, truth: np.ndarray, covariate: np.ndarray) -> np.ndarray:
    """Per output, the partial Pearson correlation across creators of ``scores`` and ``truth`` given ``covariate``.

    Both sides are residualised on the covariate (with an intercept) across creators, per output; the result is
    the correlation of the residuals: what a method knows about the truth beyond the covariate (catalogue size).
    Range -1..1; NaN for an output where either residual is constant. Shapes (n_outputs, n_creators) and
    (n_creators,) or (n_outputs, n_creators) for the covariate.
    """
    scores, truth = np.asarray(scores, float), np.asarray(truth, float)
    cov = np.broadcast_to(np.asarray(covariate, float), scores.shape)
    out = np.full(len(scores), np.nan)
    for o in range(len(scores)):
        z = np.column_stack([np.ones(scores.shape[1]), cov[o]])
        ok = np.isfinite(scores[o]) & np.isfinite(truth[o])
        if ok.sum() < 4:
            continue
        res = [v[ok] - z[ok] @ np.linalg.lstsq(z[ok], v[ok], rcond=None)[0] for v in (scores[o], truth[o])]
        if any(np.abs(r).max() <= 1e-9 * np.abs(v[ok]).max() for r, v in zip(res, (scores[o], truth[o]))):
            continue  # the covariate explains a side entirely (e.g. catalogue size itself): no partial correlation
        out[o] = pearson_r(res[0][None], res[1][None])[0]
    return out


def partial_r_ci(scores: np.ndarray, truth: np.ndarray, covariate: np.ndarray, n_boot: int = 2000) -> tuple[float, float, float]:
    """Mean over outputs of :func:`partial_r` and its 95% bootstrap CI over outputs."""
    return bootstrap_mean_ci(partial_r(scores, truth, covariate), n_boot=n_boot)
