"""LDS: the linear datamodeling score of every method against the LDS subsets of each retraining mode.

The ground truth retrains the run's recipe on random subsets of the pieces, in one or two modes (an
:class:`~attribution.retrain.LdsTruth` each): ``reshuffled`` (a fresh run per subset, its own batch order) and
``fixed`` (the full-data reference of the same seed replayed with the subset's missing windows removed from
every batch: trajectory-exact). The subsets are the same pieces in both modes. Per mode:

* :func:`lds_per_output` -- per output, Spearman between the summed attribution of each subset and the
  retrained model's log-likelihood of that output (mean over the seeds finished), with a bootstrap CI;
* the seed spread, and the LDS against each training seed's utilities alone: ``lds_same_seed`` against the
  seed the run's own model was trained with and ``lds_cross_seed`` against the others, on the subsets trained
  with both (how trajectory-specific a method is; in fixed mode seed 0 replays the run's own trajectory);
* the ceiling: how alike two training seeds rank the same subsets (``lds_noise_ceiling``);
* :func:`mode_agreement` -- how alike the two modes rank the same subsets (the same seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata

from ..snr import bootstrap_mean_ci
from .metrics import MetricRows, family

__all__ = ["spearman", "lds_per_output", "LdsModeResult", "lds_mode_metrics", "mode_agreement"]

CEILING = "retraining (seed vs seed)"


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation in [-1, 1] (1: same order, -1: reversed); NaN if either side is constant."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    ra, rb = rankdata(a), rankdata(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def lds_per_output(scores: np.ndarray, masks: np.ndarray, utilities: np.ndarray) -> np.ndarray:
    """Linear datamodeling score of each output.

    Args:
        scores: (n_outputs, n_pieces) attribution of each piece to each output.
        masks: (M, n_pieces) bool, the pieces each retrained model saw.
        utilities: (M, n_outputs) the retrained models' log-likelihood of each output.

    Returns:
        (n_outputs,) Spearman in [-1, 1] between the summed attribution of each subset and the utility;
        1 means the attribution orders the subsets exactly as retraining does, 0 no better than chance.
    """
    predicted = np.asarray(masks, float) @ np.asarray(scores, float).T  # (M, n_outputs)
    return np.array([spearman(predicted[:, o], utilities[:, o]) for o in range(predicted.shape[1])])


@dataclass
class LdsModeResult:
    """What :func:`lds_mode_metrics` adds besides metric rows: the tidy per-output and per-seed LDS, and facts."""

    per_output: list[dict] = field(default_factory=list)  # mode, method, output_id, lds
    by_seed: list[dict] = field(default_factory=list)  # mode, method, family, seed, same_seed, subsets, value, ci
    facts: dict = field(default_factory=dict)


def lds_mode_metrics(
    truth,
    scores: dict[str, np.ndarray],
    methods: list[str],
    random_names: list[str],
    rows: MetricRows,
    output_ids: list[str],
    own_seed: int | None = None,
    projections: dict[str, list[np.ndarray]] | None = None,
) -> LdsModeResult | None:
    """Every LDS metric of one retraining mode; None when fewer than 3 of its subsets are finished.

    Args:
        truth: the mode's :class:`~attribution.retrain.LdsTruth` (masks, utilities (M, S, n_outputs), seeds).
        scores: (n_outputs, n_pieces) per method; ``methods`` are scored one by one, ``random_names`` pooled
            into the ``random`` baseline.
        own_seed: the training seed of the run's own model (its ``train.seed``): the utilities of that seed
            give ``lds_same_seed``, the others ``lds_cross_seed``.
        projections: final-checkpoint scores under several projector seeds, per estimator
            (``trak_1ckpt``, ``dattri_trak_1ckpt``): their LDS spread, ``lds_over_projections``.
    """
    mode, masks, utilities = truth.mode, truth.masks, truth.utilities
    seeds = list(truth.seeds)
    n_out = len(output_ids)
    if len(masks) < 3:
        return None
    out = LdsModeResult()
    done = np.isfinite(utilities).all(axis=2)  # (M, S): subset j finished with seed i
    target = np.nanmean(utilities, axis=1)  # (M, n_out) utility averaged over the seeds finished
    # the seed spread compares seeds on the subsets every seed finished, so it is not a subset-count effect
    seed_cols = [i for i in range(len(seeds)) if done[:, i].sum() >= 3]
    common = done[:, seed_cols].all(1) if seed_cols else np.zeros(len(masks), bool)
    if common.sum() < 3:
        seed_cols = []
    half = np.arange(len(masks)) < len(masks) // 2
    out.facts.update(subsets=int(len(masks)), models=int(done.sum()), fraction=float(masks.mean()),
                     seeds=[seeds[i] for i in range(len(seeds)) if done[:, i].any()])
    own = seeds.index(own_seed) if own_seed in seeds and seeds.index(own_seed) in seed_cols else None
    if own is not None and len(seed_cols) >= 2:
        out.facts.update(own_seed=int(own_seed), cross_seeds=[seeds[i] for i in seed_cols if i != own],
                         seed_subsets=int(common.sum()))

    def by_seed(sc: np.ndarray) -> dict[int, np.ndarray]:
        return {i: lds_per_output(sc, masks[common], utilities[common, i]) for i in seed_cols}

    def same_and_cross(per_seed: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        if own is None or len(per_seed) < 2:
            return None
        cross = np.nanmean(np.stack([v for i, v in per_seed.items() if i != own]), axis=0)
        return per_seed[own], cross

    for m in methods:
        per = lds_per_output(scores[m], masks, target)
        per_seed = by_seed(scores[m])
        means = [np.nanmean(v) for v in per_seed.values()]
        rows.add(m, "lds", per, float(np.std(means, ddof=1)) if len(means) > 1 else float("nan"), mode=mode)
        out.per_output += [{"mode": mode, "method": m, "output_id": o, "lds": v} for o, v in zip(output_ids, per)]
        if len(masks) >= 6:  # a Spearman over fewer than 3 subsets per half means nothing
            rows.add(m, "lds_half_a", lds_per_output(scores[m], masks[half], target[half]), mode=mode)
            rows.add(m, "lds_half_b", lds_per_output(scores[m], masks[~half], target[~half]), mode=mode)
        pair = same_and_cross(per_seed)
        if pair is not None:
            rows.add(m, "lds_same_seed", pair[0], mode=mode)
            rows.add(m, "lds_cross_seed", pair[1], mode=mode)
        for i, v in per_seed.items():
            mean, lo, hi = bootstrap_mean_ci(v, n_boot=rows.n_boot)
            out.by_seed.append({"mode": mode, "method": m, "family": family(m), "seed": int(seeds[i]),
                                "same_seed": own is not None and i == own, "subsets": int(common.sum()),
                                "value": mean, "ci_low": lo, "ci_high": hi})
    if random_names:
        draws = []
        for r in random_names:
            per = lds_per_output(scores[r], masks, target)
            draws.append(per)
            out.per_output += [{"mode": mode, "method": r, "output_id": o, "lds": v} for o, v in zip(output_ids, per)]
        rows.add_pooled("random", "lds", draws, mode=mode)
        pairs = [same_and_cross(by_seed(scores[r])) for r in random_names]
        if all(p is not None for p in pairs):
            rows.add_pooled("random", "lds_same_seed", [p[0] for p in pairs], mode=mode)
            rows.add_pooled("random", "lds_cross_seed", [p[1] for p in pairs], mode=mode)
    # each estimator's LDS under every projector seed: the spread projection noise alone makes
    for method, draws in (projections or {}).items():
        if len(draws) > 1:
            per_proj = [float(np.nanmean(lds_per_output(p, masks, target))) for p in draws]
            out.facts[f"{method}_projection_lds"] = per_proj
            rows.add(f"{method} (projector seeds)", "lds_over_projections", float(np.mean(per_proj)),
                     spread=float(np.std(per_proj, ddof=1)), n=len(per_proj), mode=mode)
    # Noise ceiling: how alike two training seeds rank the same subsets (subsets finished with both).
    agree = []
    for a in range(len(seeds)):
        for b in range(a + 1, len(seeds)):
            both = done[:, a] & done[:, b]
            if both.sum() >= 3:
                ua, ub = utilities[both, a], utilities[both, b]
                agree.append([spearman(ua[:, o], ub[:, o]) for o in range(n_out)])
                out.facts["noise_subsets"] = int(both.sum())
    if agree:
        rows.add(CEILING, "lds_noise_ceiling", np.nanmean(np.array(agree), axis=0), mode=mode)
    return out


def mode_agreement(a, b, rows: MetricRows) -> dict | None:
    """How alike two retraining modes rank the same subsets: per output, Spearman across the subsets both modes
    finished with the same seed, averaged over those seeds (row ``lds_mode_agreement``, mode ``"a vs b"``).

    Returns facts (subsets, seeds compared) or None when fewer than 3 subsets are shared.
    """
    shared = sorted(set(a.subsets) & set(b.subsets))
    ra, rb = [a.subsets.index(j) for j in shared], [b.subsets.index(j) for j in shared]
    per_seed, used = [], []
    for seed in sorted(set(a.seeds) & set(b.seeds)):
        ua, ub = a.utilities[ra, a.seeds.index(seed)], b.utilities[rb, b.seeds.index(seed)]  # (shared, n_out)
        ok = np.isfinite(ua).all(1) & np.isfinite(ub).all(1)
        if ok.sum() >= 3:
            per_seed.append([spearman(ua[ok, o], ub[ok, o]) for o in range(ua.shape[1])])
            used.append((int(seed), int(ok.sum())))
    if not per_seed:
        return None
    rows.add(f"retraining ({a.mode} vs {b.mode})", "lds_mode_agreement", np.nanmean(np.array(per_seed), axis=0),
             mode=f"{a.mode} vs {b.mode}")
    return {"seeds": [s for s, _ in used], "subsets": max(n for _, n in used)}
