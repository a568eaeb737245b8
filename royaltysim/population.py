"""Creator populations: who the economy's creators are and how the AI's outputs credit them.

Two implementations of one abstraction, :class:`CreatorPopulation` (catalogue sizes, seconds of music,
and per-output causal attribution and similarity aggregated to creators):

* :func:`corpus_population` -- the creators of a real attribution run, with the run's real scores;
* :func:`fitted_population` -- a larger synthetic population whose attribution statistics
  (:class:`AttributionStats`: concentration across creators, similarity-vs-TDA agreement, catalogue
  sizes) are fitted to a real run, so a policy question can be asked at platform scale.

The fit is a Gaussian copula over three creator-level quantities -- catalogue size, total causal
attribution and mean similarity -- with lognormal margins (similarity: normal on the logit scale, as
it is bounded), plus per-output dispersion around each creator's level. :func:`attribution_stats` measures the same statistics on any
population, so a generated population can be checked against its source (see the tests);
:func:`fit_attribution_stats` also calibrates the within-output correlation of causal and similarity
scores by simulation so the per-output similarity-vs-TDA agreement matches the source.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm, spearmanr

from attribution import groundtruth_files as gtf
from attribution.best_method import BEST, read_best_method
from attribution.table import AttributionTable

__all__ = [
    "CreatorPopulation",
    "AttributionStats",
    "REFERENCES",
    "corpus_population",
    "causal_attribution",
    "attribution_stats",
    "fit_attribution_stats",
    "fitted_population",
    "with_attribution_noise",
    "measured_snr",
]

_TINY = 1e-12


@dataclass(frozen=True)
class CreatorPopulation:
    """Creators and what the AI's outputs owe them. Creator arrays are indexed 0..n_creators-1.

    Attributes:
        names: (n_creators,) creator names.
        works: (n_creators,) works in each catalogue (all in the AI's training set at the start).
        seconds: (n_creators,) seconds of music in each catalogue.
        attribution: (n_outputs, n_creators) causal scores summed over each creator's pieces (may be < 0).
        similarity: (n_outputs, n_creators) similarity of each output to each catalogue (>= 0).
        reference: (n_outputs, n_creators) "true contribution" shares per output (rows sum to 1 or 0);
            the plays-weighted sum of rows is the reference that payouts are compared with.
        reference_label: where ``reference`` comes from (ground truth or the causal method's shares).
        training_value: (n_creators,) each catalogue's value to the AI's quality (ground-truth
            leave-one-out value when present, else seconds of training music).
        causal_label: the method behind ``attribution`` in words (for ``best``: the method the run's evaluation
            found most faithful and its measured SNR, or the fallback and why).
    """

    names: np.ndarray
    works: np.ndarray
    seconds: np.ndarray
    attribution: np.ndarray
    similarity: np.ndarray
    reference: np.ndarray
    reference_label: str
    training_value: np.ndarray
    causal_label: str = ""

    @property
    def n_creators(self) -> int:
        return int(self.names.shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.attribution.shape[0])


def _row_shares(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, None)
    totals = x.sum(axis=1, keepdims=True)
    return np.divide(x, totals, out=np.zeros_like(x), where=totals > 0)


REFERENCES = ("auto", "loco_outputs", "loco_outputs_net", "loco_heldout", "causal")
# the ground-truth file each reference reads (loco_outputs_net: loco.parquet and ctrl.parquet, see corpus_population)
_NEEDS = {"loco_outputs": gtf.CREATOR_CONTRIBUTION, "loco_outputs_net": gtf.CONTROLS, "loco_heldout": gtf.CREATOR_VALUE}


def _covering(gt: pd.DataFrame | None, path: Path, what: str, names: np.ndarray, fix: str) -> pd.DataFrame | None:
    """``gt`` if it covers every creator of the run (None stays None); otherwise an error with the fix."""
    if gt is None:
        return None
    missing = sorted(set(names) - set(gt["creator"]))
    if missing:
        raise ValueError(
            f"{path}: the {what} leaves out {len(missing)} of the run's creators ({', '.join(missing[:5])}"
            f"{', ...' if len(missing) > 5 else ''}); {fix}, or set source.reference: causal"
        )
    return gt


def causal_attribution(table: AttributionTable, causal_method: str) -> tuple[np.ndarray, str]:
    """(n_outputs, n_creators) causal scores of ``causal_method`` summed over each catalogue, and their label.

    ``best`` pays on the method the run's evaluation found most faithful at creator level
    (``RUN/evaluation/best_method.yaml`` and its ``best_scores.parquet``, written by
    ``royaltysim attribution evaluate``): a catalogue-level estimator is read as written, not summed from pieces.
    A run that has not been evaluated falls back to ``trak`` (the first causal method without it), and the label
    says so; an evaluation measured on other outputs than the run holds raises
    :class:`~attribution.best_method.BestMethodError` with the fix.
    """
    if causal_method != BEST:
        return table.to_creators(causal_method, negative="keep").to_numpy(dtype=float), causal_method
    root = table.path
    best = read_best_method(root) if root is not None else None
    if best is None:
        causal = [m for m in table.methods if not m.startswith("sim_")]
        if not causal:
            raise ValueError(f"source.causal_method: best: {root} has no causal method to fall back on")
        fallback = "trak" if "trak" in causal else causal[0]
        where = f"{root}" if root is not None else "the in-memory table"
        return (table.to_creators(fallback, negative="keep").to_numpy(dtype=float),
                f"{fallback} (fallback for `best`: {where} has no evaluation; `royaltysim attribution evaluate RUN` "
                "measures which method is most faithful)")
    from attribution.best_method import BEST_SCORES_FILE

    matrix = best.matrix(list(table.output_ids), list(table.creators), root / BEST_SCORES_FILE)
    return matrix, f"best: {best.label()}"


def corpus_population(
    table: AttributionTable, causal_method: str = "trak", similarity_method: str = "sim_embedding",
    reference: str = "auto",
) -> CreatorPopulation:
    """The creators of an attribution run with its real scores.

    ``reference`` is what counts as each creator's "true contribution" (payouts are compared with it):

    * ``loco_outputs`` -- the leave-one-creator-out drop of each output's log-likelihood
      (``RUN/ground_truth/creator_contribution.parquet``): a creator's counterfactual value to each
      generated piece, the quantity causal attribution estimates;
    * ``loco_outputs_net`` -- the same drop minus that of its matched random control (the same training events
      of other creators left out, ``RUN/ground_truth/ctrl.parquet``, from ``loco.controls`` in the ground-truth
      config): what a creator's music did beyond removing that much music. A catalogue-size share explains much
      of the plain drop on the model's own samples; this reference pays only for the rest. A group left out
      together (``loco.rest``) has its net drop split by training events, as in ``loco_outputs``;
    * ``loco_heldout`` -- the leave-one-creator-out drop on held-out real music
      (``RUN/ground_truth/creator_value.parquet``), the same for every output: value to the model at large;
    * ``causal`` -- the creator shares of the run's ``trak`` scores (of ``causal_method`` without ``trak``);
    * ``auto`` -- the first of these the run has.

    Negative differences (a catalogue whose removal helped) count as zero contribution. The training
    value of a catalogue (what the training-data-share scheme is compared with) is its held-out value
    when the run has one, else its seconds of music.
    """
    if reference not in REFERENCES:
        raise ValueError(f"source.reference: {reference!r} is not one of {', '.join(REFERENCES)}")
    names = np.array(table.creators)
    by_creator = table.corpus.groupby("creator")
    works = by_creator.size().reindex(names, fill_value=0).to_numpy(dtype=float)
    seconds = by_creator["seconds"].sum().reindex(names, fill_value=0.0).to_numpy(dtype=float)
    attribution, causal_label = causal_attribution(table, causal_method)
    similarity = table.to_creators(similarity_method, negative="clip", how="max").to_numpy(dtype=float)

    root = table.path if table.path is not None else None
    stale = root is not None and gtf.is_stale(root)
    if stale and reference in _NEEDS:
        raise ValueError(
            f"source.reference: {reference}: {gtf.ground_truth_path(root, gtf.OUTPUTS_FINGERPRINT)} was measured on other "
            f"generated outputs than {root / 'outputs.parquet'} holds now (the run was rebuilt); retrain the ground truth "
            "or set source.reference: causal"
        )
    readable = root is not None and not stale
    rest_fix = ("retrain with every creator left out (configs/groundtruth-creators.yaml) or with `loco.rest: true` "
                "(the unlisted creators left out together)")
    contribution = None
    if readable and reference in ("auto", "loco_outputs"):
        contribution = _covering(gtf.read_contribution(root), gtf.ground_truth_path(root, gtf.CREATOR_CONTRIBUTION),
                                 "per-output contribution", names, rest_fix)
    elif readable and reference == "loco_outputs_net":
        contribution = _covering(gtf.net_contribution(root, table.corpus), gtf.ground_truth_path(root, gtf.CONTROLS),
                                 "matched controls (net per-output contribution)", names,
                                 "give every left-out catalogue a matched control (`loco.controls: 1`) and " + rest_fix)
    if contribution is not None and "file_sha256" in table.outputs and table.outputs["file_sha256"].notna().any():
        # pieces scored after the build (source.outputs: scored or all) were never retrained on
        if reference != "auto":
            raise ValueError(
                f"source.reference: {reference}: the ground truth was measured on the build's outputs, not on the "
                "pieces scored later with `royaltysim attribution score`; set source.reference: loco_heldout or "
                "causal, or source.outputs: build"
            )
        contribution = None
    values = None
    if readable and reference != "causal":
        values = _covering(gtf.read_creator_value(root), gtf.ground_truth_path(root, gtf.CREATOR_VALUE),
                           "held-out value", names, rest_fix)
    if reference in _NEEDS and (values if reference == "loco_heldout" else contribution) is None:
        wanted = gtf.ground_truth_path(root, _NEEDS[reference]) if root else _NEEDS[reference]
        extra = " with `loco.controls: 1` in its config" if reference == "loco_outputs_net" else ""
        raise ValueError(
            f"source.reference: {reference} needs {wanted}; run "
            f"`royaltysim attribution groundtruth RUN --config configs/groundtruth-default.yaml`{extra} first, or set "
            "source.reference: causal"
        )

    training_value = seconds.copy()
    if values is not None:
        training_value = np.clip(values.set_index("creator")["value"].reindex(names).to_numpy(dtype=float), 0.0, None)
    if contribution is not None:
        per_output = contribution[contribution["output_id"] != gtf.HELDOUT].pivot_table(
            index="output_id", columns="creator", values="delta"
        )
        missing = [o for o in table.output_ids if o not in per_output.index]
        if missing:
            raise ValueError(
                f"{gtf.ground_truth_path(root, _NEEDS.get(reference, gtf.CREATOR_CONTRIBUTION))}: no ground truth for "
                f"outputs {missing[:5]}; the run's outputs changed after the ground truth was trained, so retrain it"
            )
        ref = _row_shares(per_output.reindex(index=list(table.output_ids), columns=names).to_numpy(dtype=float))
        basis = contribution.drop_duplicates("creator").set_index("creator")["basis"] if "basis" in contribution else pd.Series(dtype=str)
        grouped = int((basis.reindex(names) == "group").sum())
        net = reference == "loco_outputs_net"
        label = "ground truth: leave-one-creator-out drop of each output's log-likelihood" + (
            " minus that of its matched random control (the same training events of other creators left out)" if net else ""
        ) + (f" ({grouped} small creators left out together, their drop split by training events)" if grouped else "")
    elif values is not None:
        share = training_value / training_value.sum() if training_value.sum() > 0 else np.full(len(names), 1.0 / len(names))
        ref = np.tile(share, (attribution.shape[0], 1))
        label = "ground truth: leave-one-creator-out drop on held-out music"
    else:
        why = "its ground truth scored other outputs than the run now has" if stale else "no ground truth in the run"
        if "trak" in table.methods or causal_method != BEST:
            ref_method = "trak" if "trak" in table.methods else causal_method
            ref = table.creator_shares(ref_method, negative="clip").to_numpy(dtype=float)
        else:  # `best` on a run without trak: the shares of what it pays on
            ref_method, ref = causal_label, _row_shares(attribution)
        label = f"{ref_method} creator shares, negative catalogue totals clipped ({why})"
    return CreatorPopulation(names, works, seconds, attribution, similarity, ref, label, training_value, causal_label)


# --------------------------------------------------------------------------- fitted population


@dataclass(frozen=True)
class AttributionStats:
    """Statistics of a population's attribution that a fitted population reproduces.

    Attributes:
        share_sigma: std of log causal shares across creators with positive total (concentration).
        zero_share: fraction of creators whose clipped causal total is zero.
        sim_mu, sim_sigma: normal fit of each creator's mean *logit* similarity over outputs
            (similarities are bounded, so they are modelled on the logit scale, after dividing by
            ``sim_scale``).
        works_mu, works_sigma: lognormal fit of catalogue sizes.
        rho: (3, 3) Spearman correlations across creators of (works, causal total, mean similarity).
        out_sigma_causal: std of the log per-output dispersion of causal scores around a creator's mean.
        out_sigma_sim: std of the per-output logit similarity around a creator's mean logit.
        cell_zero: fraction of (output, creator) causal cells that are <= 0 for creators with positive total.
        rho_cell: Spearman correlation of the per-output causal and similarity dispersions.
        agreement: mean over outputs of the Spearman correlation between causal and similarity scores
            across creators (the "similarity-vs-TDA agreement" of the paper).
        seconds_per_work: mean length of a work in seconds.
        sim_scale: similarities are divided by it before the logit (1, or the largest if above 1).
        n_outputs: outputs in the source.
    """

    share_sigma: float
    zero_share: float
    sim_mu: float
    sim_sigma: float
    works_mu: float
    works_sigma: float
    rho: np.ndarray
    out_sigma_causal: float
    out_sigma_sim: float
    cell_zero: float
    rho_cell: float
    agreement: float
    seconds_per_work: float
    sim_scale: float
    n_outputs: int


def _logit(p: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    p = np.clip(p, eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return 0.0
    return float(spearmanr(a, b).statistic)


def _log_std(x: np.ndarray, fallback: float = 0.0) -> float:
    x = x[x > 0]
    return float(np.std(np.log(x))) if x.size >= 2 else fallback


def attribution_stats(
    attribution: np.ndarray, similarity: np.ndarray, works: np.ndarray, seconds: np.ndarray | None = None
) -> AttributionStats:
    """Measure :class:`AttributionStats` of a population (a real run or a generated one)."""
    causal = np.clip(attribution, 0.0, None)  # (n_outputs, n_creators)
    total = causal.sum(axis=0)
    share = total / total.sum() if total.sum() > 0 else np.zeros_like(total)
    positive = share > _TINY
    sim_scale = max(1.0, float(similarity.max()) if similarity.size else 1.0)
    logit = _logit(similarity / sim_scale)  # (n_outputs, n_creators)
    sim_mean = logit.mean(axis=0)
    rho = np.eye(3)
    cols = (works, total, sim_mean)
    for i in range(3):
        for j in range(i + 1, 3):
            rho[i, j] = rho[j, i] = _spearman(cols[i], cols[j])

    mean_c = causal.mean(axis=0, keepdims=True)
    disp_c = np.divide(causal, mean_c, out=np.zeros_like(causal), where=mean_c > 0)[:, positive]
    disp_s = (logit - sim_mean[None, :])[:, positive]
    both = disp_c > 0
    rho_cell = _spearman(np.log(disp_c[both]), disp_s[both]) if both.sum() >= 3 else 0.0
    agreement = float(np.mean([_spearman(attribution[o], similarity[o]) for o in range(attribution.shape[0])]))
    works_pos = works[works > 0]
    return AttributionStats(
        share_sigma=_log_std(share, fallback=1.0),
        zero_share=float(np.mean(~positive)),
        sim_mu=float(np.mean(sim_mean)) if sim_mean.size else 0.0,
        sim_sigma=float(np.std(sim_mean)) if sim_mean.size >= 2 else 0.0,
        works_mu=float(np.mean(np.log(works_pos))) if works_pos.size else 0.0,
        works_sigma=_log_std(works),
        rho=rho,
        out_sigma_causal=_log_std(disp_c.ravel()),
        out_sigma_sim=float(np.std(logit - sim_mean[None, :])) if logit.size else 0.0,
        cell_zero=float(np.mean(disp_c <= 0)) if disp_c.size else 0.0,
        rho_cell=rho_cell,
        agreement=agreement,
        seconds_per_work=float(seconds.sum() / works.sum()) if seconds is not None and works.sum() > 0 else 120.0,
        sim_scale=sim_scale,
        n_outputs=int(attribution.shape[0]),
    )


def _spearman_to_pearson(rho: np.ndarray) -> np.ndarray:
    """Gaussian-copula correlation that yields the given Spearman correlation, made positive definite."""
    r = 2.0 * np.sin(np.pi * np.asarray(rho) / 6.0)
    np.fill_diagonal(r, 1.0)
    vals, vecs = np.linalg.eigh(r)
    vals = np.clip(vals, 1e-6, None)
    r = vecs @ np.diag(vals) @ vecs.T
    d = np.sqrt(np.diag(r))
    return r / np.outer(d, d)


def _dispersion(z: np.ndarray, sigma: float) -> np.ndarray:
    """Per-output multipliers with log-std ``sigma``, normalised so each column averages 1."""
    d = np.exp(sigma * z)
    return d / d.mean(axis=0, keepdims=True)


def fitted_population(
    stats: AttributionStats,
    n_creators: int,
    rng: np.random.Generator,
    n_outputs: int | None = None,
    reference_label: str = "fitted causal shares (synthetic population)",
) -> CreatorPopulation:
    """Draw a synthetic population with the attribution statistics ``stats``.

    Creator-level (works, causal total, mean similarity) come from a Gaussian copula with the
    source's Spearman correlations and lognormal margins; the lowest ``zero_share`` of causal totals
    are zero. Per-output scores spread each creator's total over outputs with the source's log
    dispersion, the causal and similarity dispersions correlated as in the source. The reference
    ("true contribution") is the generated causal attribution itself.
    """
    n_out = int(n_outputs or stats.n_outputs)
    if n_creators < 2 or n_out < 1:
        raise ValueError(f"a fitted population needs >= 2 creators and >= 1 output; got {n_creators}, {n_out}")
    corr = _spearman_to_pearson(stats.rho)
    z = rng.standard_normal((n_creators, 3)) @ np.linalg.cholesky(corr).T  # (n_creators, 3)

    works = np.maximum(1.0, np.round(np.exp(stats.works_mu + stats.works_sigma * z[:, 0])))
    total = np.exp(stats.share_sigma * z[:, 1])
    if stats.zero_share > 0:
        total[z[:, 1] < norm.ppf(stats.zero_share)] = 0.0
    total /= total.sum()
    sim_mean = stats.sim_mu + stats.sim_sigma * z[:, 2]  # mean logit similarity of each creator

    e_c = rng.standard_normal((n_out, n_creators))
    rc = 2.0 * np.sin(np.pi * stats.rho_cell / 6.0)
    e_s = rc * e_c + np.sqrt(max(1.0 - rc * rc, 0.0)) * rng.standard_normal((n_out, n_creators))
    disp_c = _dispersion(e_c, stats.out_sigma_causal)
    if stats.cell_zero > 0:
        disp_c[rng.random((n_out, n_creators)) < stats.cell_zero] = 0.0
        col = disp_c.mean(axis=0, keepdims=True)
        disp_c = np.divide(disp_c, col, out=np.zeros_like(disp_c), where=col > 0)
    attribution = disp_c * total[None, :]  # columns sum to n_out * total: creator totals keep the copula's ranks
    similarity = stats.sim_scale * _sigmoid(sim_mean[None, :] + stats.out_sigma_sim * e_s)

    names = np.array([f"creator_{i:05d}" for i in range(n_creators)])
    seconds = works * stats.seconds_per_work
    reference = _row_shares(attribution)
    return CreatorPopulation(
        names=names,
        works=works,
        seconds=seconds,
        attribution=attribution,
        similarity=similarity,
        reference=reference,
        reference_label=reference_label,
        training_value=n_out * total,
    )


def fit_attribution_stats(
    attribution: np.ndarray,
    similarity: np.ndarray,
    works: np.ndarray,
    seconds: np.ndarray | None = None,
    *,
    seed: int = 0,
    n_probe: int = 1000,
) -> AttributionStats:
    """Statistics to generate a population from, fitted to a source population.

    :func:`attribution_stats` of the source, with ``rho_cell`` (the within-output correlation of the
    causal and similarity dispersions) re-fitted by bisection so that generated populations reproduce
    the source's per-output similarity-vs-TDA ``agreement`` (a method of simulated moments: the
    agreement mixes creator-level and within-output correlation, so it has no closed form here).
    """
    source = attribution_stats(attribution, similarity, works, seconds)

    def agreement(rho_cell: float) -> float:
        probe = replace(source, rho_cell=rho_cell)
        pop = fitted_population(probe, n_probe, np.random.default_rng(seed))
        return float(np.mean([_spearman(pop.attribution[o], pop.similarity[o]) for o in range(pop.n_outputs)]))

    lo, hi = -0.99, 0.99
    if agreement(lo) >= source.agreement:
        return replace(source, rho_cell=lo)
    if agreement(hi) <= source.agreement:
        return replace(source, rho_cell=hi)
    for _ in range(14):  # agreement rises with rho_cell; 14 halvings resolve it to ~1e-4
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if agreement(mid) < source.agreement else (lo, mid)
    return replace(source, rho_cell=0.5 * (lo + hi))


# --------------------------------------------------------------------------- attribution noise


def with_attribution_noise(population: CreatorPopulation, snr: float, rng: np.random.Generator) -> CreatorPopulation:
    """The population paid on its true contribution plus Gaussian noise at signal-to-noise ratio ``snr``.

    The causal scores the platform pays on become ``reference + noise``: for each output, the noise
    variance is the variance of the reference across creators divided by ``snr`` (``snr = 1``: as much
    noise as signal; ``snr -> inf``: causal royalties paid on the truth itself). This is the SNR that
    :func:`measured_snr` (and ``royaltysim attribution evaluate``) measures for a real method against the
    retraining truth, so a method's measured SNR can be read off a sweep over ``snr``. The reference is
    untouched: misallocation then measures what noisy attribution costs. The draws are standard normals
    scaled by the noise level, so on the same ``rng`` every SNR level perturbs in the same directions and
    a sweep over SNR compares like with like.
    """
    if snr <= 0:
        raise ValueError(f"attribution_snr must be > 0, got {snr}")
    signal = population.reference
    sd = np.sqrt(signal.var(axis=1, keepdims=True) / snr)
    noisy = signal + sd * rng.standard_normal(signal.shape)
    return replace(population, attribution=noisy)


def measured_snr(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Signal-to-noise ratio of a creator-level estimate against the truth, on :func:`with_attribution_noise`'s scale.

    Arrays are (n_creators,) for one output or (n_outputs, n_creators). Per output, the squared correlation
    across creators (adjusted for the number of creators) is averaged over outputs and turned into
    snr = r2 / (1 - r2) (see :func:`attribution.snr.creator_snr`); the estimate's scale does not matter.
    ``inf`` for an exact (rescaled) estimate, about 0 for an unrelated one.
    """
    from attribution.snr import creator_snr

    estimate = np.atleast_2d(np.asarray(estimate, dtype=float))
    truth = np.atleast_2d(np.asarray(truth, dtype=float))
    if estimate.shape != truth.shape or estimate.shape[1] < 3:
        raise ValueError(f"need matching arrays of at least 3 creators, got {estimate.shape} and {truth.shape}")
    return creator_snr(estimate, truth, n_boot=1)["snr"]
