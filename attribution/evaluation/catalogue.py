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
training windows' ``Phi_k`` (n windows, p), the outputs' ``phi_k`` (n_outputs, p)), in the Newton step
``Delta_G = (Phi^T Phi + lambda I)^{-1} Phi_G^T 1`` of removing the catalogue (``Phi^T Phi`` stands for the
training loss's Hessian, its Gauss-Newton form):

* first order  ``s1[o, G] = phi_o . Delta_G`` -- TRAK summed over the catalogue, without traker's rescaling of
  the inverse, so in the model's units (log-likelihood);
* second order ``s2[G] = (L_out / L_win) * Delta_G^T (Phi^T Phi / n) Delta_G / 2`` -- half the Newton step's
  length in the Fisher metric the training gradients estimate (per window; ``L_out / L_win`` scales it to an
  output's length): the KL divergence between the model with and without the catalogue, which is the expected
  log-likelihood drop of the model's own samples. At ``lambda = 0`` it is ``sum_{i, j in G} K[i, j] / 2n`` for
  the train-train kernel ``K = Phi (Phi^T Phi)^{-1} Phi^T``: the group's self-influence, which the first-order
  sum leaves out. Both terms are invariant to the scale of the random projection; both are averaged over
  checkpoints, like TRAK;
* the output's own second order ``s2_local[o, G] = Delta_G^T F_o Delta_G / 2`` with ``F_o = sum_p phi_{o,p}
  phi_{o,p}^T`` the output's Fisher estimated from its passages' stored projected gradients (``segments``):
  the log-likelihood of a sample is a sum over its events, and the scores of successive events of the model's
  own samples are uncorrelated (a martingale difference sequence), so the outer products of the passages'
  gradients are an unbiased estimate of the output's Fisher. ``s2[G]`` is its expectation over samples;
  ``s2_local`` is this output's value, so it also sees which outputs a catalogue's removal moves most;
* the estimate ``s1[o, G] + kappa * s2[G]`` (``group_influence``), or ``s1[o, G] + kappa * s2_local[o, G]``
  (``group_influence_local``). Were the Newton step exact, ``kappa`` would be 1; the actual step of
  a retraining is ``t`` times it, which scales the first-order term by ``t`` and the second by ``t^2``, so
  ``kappa`` ~ ``t`` measures by how much the Newton step underestimates the retraining's. ``kappa >= 0`` and the
  ridge (from a small grid) are the two parameters, chosen to maximise the per-output Pearson correlation across
  creators (what the creator-level SNR scores).
* **One scale for every fold.** The creator-level SNR compares creators within an output, and under
  cross-validation each held-out creator is scored by its own fold's fit, so every fit must put its scores on
  the same scale. ``s1 + kappa * s2`` does not: a fold with ``kappa`` 500 and one with ``kappa`` 1e5 both say
  "mostly second order", yet the second's scores are 200 times larger, and the held-out creators' columns no
  longer compare (on the default run that took the per-output second order's cross-validated SNR from 1.0 to
  0.14). So the fit is parametrised as a mixture ``(1 - w) s1 / sigma1 + w s2 / sigma2`` of the two terms
  normalised by their root mean square over every output and creator of the run (``sigma``: from the features
  alone, never from a truth, and the same in every fold), ``w`` in [0, 1] from a grid; that is
  ``(1 - w) / sigma1`` times ``s1 + kappa s2`` with ``kappa = w sigma1 / ((1 - w) sigma2)``, which is reported.

The parameters are chosen with cross-validation across creators (:func:`cross_validated_scores`): the estimate
for a creator uses parameters chosen on the other creators' leave-out drops only (leave-one-creator-out by
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

from ..snr import bootstrap_mean_ci, pearson_r

__all__ = [
    "METHOD",
    "LOCAL_METHOD",
    "LOCAL_1CKPT_METHOD",
    "SELF_METHOD",
    "RIDGES",
    "CatalogueTerms",
    "GroupFit",
    "self_influence",
    "catalogue_terms",
    "WEIGHTS",
    "fit_group_influence",
    "cross_validated_scores",
    "creator_folds",
    "partial_r",
    "partial_r_ci",
]

METHOD = "group_influence"  # the cross-validated estimator: first order + kappa * second order
LOCAL_METHOD = "group_influence_local"  # the same with each output's own Fisher (from its passages' gradients)
# group_influence_local from the final checkpoint's features alone: 1/K of the traker pass (the cheap variant)
LOCAL_1CKPT_METHOD = "group_influence_local_1ckpt"
SELF_METHOD = "group_self_influence"  # the second-order term alone (no parameter fitted), a diagnostic
RIDGES = (0.01, 0.1, 1.0, 10.0)  # relative ridge grid (as trak_from_features: times the mean eigenvalue of Phi^T Phi)
# the second-order term's weight in the normalised mixture (0: first order only, 1: second order only)
WEIGHTS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0)


def _newton_steps(X: np.ndarray, member: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """(Phi^T Phi, each group's Newton step (p, n_groups)) for one checkpoint."""
    xtx = X.T @ X
    lam = ridge * np.trace(xtx) / xtx.shape[0]
    return xtx, np.linalg.solve(xtx + lam * np.eye(xtx.shape[0]), X.T @ member)


def _members(groups: np.ndarray, n_groups: int) -> np.ndarray:
    groups = np.asarray(groups)
    member = np.zeros((len(groups), n_groups))
    inside = groups >= 0
    member[np.flatnonzero(inside), groups[inside]] = 1.0
    return member


def self_influence(train_grads: Sequence[np.ndarray], groups: np.ndarray, n_groups: int, ridge: float,
                   length_ratio: float = 1.0) -> np.ndarray:
    """Each group's second-order term ``length_ratio * Delta_G^T (Phi^T Phi / n) Delta_G / 2``, averaged over
    checkpoints: the KL divergence that removing the group causes, per output of ``length_ratio`` windows.

    Args:
        train_grads: per checkpoint, the training windows' projected gradients (n_windows, p).
        groups: (n_windows,) group index of each window (0..n_groups-1; -1 for a window in no group).
        ridge: relative ridge (times the mean eigenvalue of ``Phi^T Phi``).
        length_ratio: an output's events over a training window's.

    Returns:
        (n_groups,) non-negative values (0 for an empty group).
    """
    member = _members(groups, n_groups)
    total = np.zeros(n_groups)
    for X in train_grads:
        X = np.asarray(X, np.float64)
        xtx, delta = _newton_steps(X, member, ridge)
        total += np.einsum("pg,pq,qg->g", delta, xtx, delta) / (2.0 * len(X))
    return length_ratio * total / len(train_grads)


@dataclass(frozen=True)
class CatalogueTerms:
    """The two terms of the group-influence estimate for every creator of a run, per ridge of the grid.

    Attributes:
        names: the creators (columns), sorted.
        first: ridge -> (n_outputs, n_creators) first-order term (TRAK summed over each catalogue, model units).
        second: ridge -> (n_creators,) second-order term (KL of removing each catalogue, per output), or
            (n_outputs, n_creators) for the terms of :meth:`localised`.
        windows: (n_creators,) training windows of each catalogue.
        local: ridge -> (n_outputs, n_creators) each output's own second-order term (None without the outputs'
            passage gradients).
    """

    names: list[str]
    first: dict[float, np.ndarray]
    second: dict[float, np.ndarray]
    windows: np.ndarray
    local: dict[float, np.ndarray] | None = None
    # ridge -> (sigma1, sigma2) of (first, second) and of (first, local): made from the terms of the run's every
    # creator when they are built; columns() and localised() carry them, so every fold shares them
    scales: dict[float, tuple[float, float]] | None = None
    local_scales: dict[float, tuple[float, float]] | None = None
    # the same terms from the final checkpoint's features alone (group_influence_local_1ckpt); None when the run
    # has one checkpoint or the outputs' passage gradients are not stored
    final: CatalogueTerms | None = None

    def __post_init__(self) -> None:
        if self.scales is None:
            object.__setattr__(self, "scales", {r: (_rms(self.first[r]), _rms(self.second[r])) for r in self.first})
        if self.local_scales is None and self.local is not None:
            object.__setattr__(self, "local_scales",
                               {r: (self.scales[r][0], _rms(self.local[r])) for r in self.first})

    def columns(self, names: Sequence[str]) -> CatalogueTerms:
        """The same terms for ``names`` only, in that order (``KeyError`` for a creator the run lacks)."""
        index = {c: i for i, c in enumerate(self.names)}
        cols = [index[c] for c in names]
        local = None if self.local is None else {r: v[:, cols] for r, v in self.local.items()}
        return CatalogueTerms(list(names), {r: f[:, cols] for r, f in self.first.items()},
                              {r: s[..., cols] for r, s in self.second.items()}, self.windows[cols], local,
                              self.scales, self.local_scales, None if self.final is None else self.final.columns(names))

    def localised(self) -> CatalogueTerms:
        """The terms of ``group_influence_local``: each output's own second-order term in place of the average."""
        if self.local is None:
            raise ValueError("no per-output second-order terms: the outputs' passage gradients were not stored")
        return CatalogueTerms(self.names, self.first, self.local, self.windows, None, self.local_scales)


def catalogue_terms(train_grads: Sequence[np.ndarray], target_grads: Sequence[np.ndarray], window_creator: np.ndarray,
                    ridges: Sequence[float] = RIDGES, length_ratio: float = 1.0,
                    passage_grads: Sequence[np.ndarray] | None = None) -> CatalogueTerms:
    """The terms for every creator, from TRAK's stored features (see the module docstring).

    Args:
        train_grads, target_grads: per checkpoint, (n_windows, p) and (n_outputs, p) projected gradients.
        window_creator: (n_windows,) the creator of each training window.
        length_ratio: an output's events over a training window's (scales the second-order term).
        passage_grads: per checkpoint, (n_outputs, n_passages, p) projected gradients of each output's passages
            (the build's ``segments``), for the per-output second-order term; None leaves it out.
    """
    window_creator = np.asarray(window_creator).astype(str)
    names = sorted(set(window_creator))
    member = _members(np.searchsorted(names, window_creator), len(names))
    first, second, local = {}, {}, {}
    for r in ridges:
        f1, f2, f2o = 0.0, 0.0, 0.0
        for k, (X, x) in enumerate(zip(train_grads, target_grads)):
            X = np.asarray(X, np.float64)
            xtx, delta = _newton_steps(X, member, r)
            f1 = f1 + np.asarray(x, np.float64) @ delta
            f2 = f2 + np.einsum("pg,pq,qg->g", delta, xtx, delta) / (2.0 * len(X))
            if passage_grads is not None:
                along = np.einsum("opd,dg->opg", np.asarray(passage_grads[k], np.float64), delta)
                f2o = f2o + 0.5 * (along**2).sum(axis=1)
        first[float(r)] = f1 / len(train_grads)
        second[float(r)] = length_ratio * f2 / len(train_grads)
        local[float(r)] = f2o / len(train_grads)
    return CatalogueTerms(names, first, second, member.sum(0), local if passage_grads is not None else None)


def _rms(x: np.ndarray) -> float:
    """Root mean square of a term over outputs and creators (1 for an all-zero term, which then stays zero)."""
    value = float(np.sqrt(np.nanmean(np.square(x)))) if np.size(x) else 0.0
    return value if value > 0 else 1.0


@dataclass(frozen=True)
class GroupFit:
    """Fitted parameters: the mixture ``(1 - weight) first / sigma1 + weight second / sigma2`` at ``ridge`` (that is
    ``first + kappa * second`` up to a positive factor); ``r`` the training creators' mean correlation."""

    ridge: float
    weight: float
    r: float

    def scores(self, terms: CatalogueTerms) -> np.ndarray:
        """(n_outputs, n_creators) estimates for the creators of ``terms``, on the run's one scale."""
        second = terms.second[self.ridge]
        sigma1, sigma2 = terms.scales[self.ridge]
        return ((1.0 - self.weight) / sigma1) * terms.first[self.ridge] + (self.weight / sigma2) * (
            second if second.ndim == 2 else second[None, :])

    def kappa(self, terms: CatalogueTerms) -> float:
        """The second-order weight in ``first + kappa * second`` (inf for the second order alone)."""
        sigma1, sigma2 = terms.scales[self.ridge]
        return float("inf") if self.weight >= 1 else self.weight * sigma1 / ((1.0 - self.weight) * sigma2)


def fit_group_influence(terms: CatalogueTerms, truth: np.ndarray, weights: Sequence[float] = WEIGHTS) -> GroupFit:
    """The ridge and second-order weight (from their grids) whose estimate agrees best with ``truth`` (n_outputs,
    n_creators of ``terms``): the mean over outputs of the Pearson correlation across creators, as the
    creator-level SNR measures it. Ties go to the smaller weight, then the first ridge."""
    if truth.shape[1] < 3:
        raise ValueError(f"fitting group influence needs at least 3 creators, got {truth.shape[1]}")
    best = None
    for ridge in terms.first:
        for weight in weights:
            fit = GroupFit(float(ridge), float(weight), float("nan"))
            r = float(np.nanmean(pearson_r(fit.scores(terms), truth)))
            if best is None or r > best.r + 1e-12:
                best = GroupFit(fit.ridge, fit.weight, r)
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
