"""Injected attribution noise: its level, that it leaves the world alone, and what it costs."""

import numpy as np
import pytest

from royaltysim.config import validate_scenario
from royaltysim.model import build_world
from royaltysim.population import measured_snr, with_attribution_noise
from royaltysim.runner import run

from .conftest import small_scenario


def test_noise_has_the_requested_signal_to_noise_ratio(run_dir):
    world = build_world(validate_scenario(small_scenario(run_dir), source="t"))
    pop = world.population
    rng = np.random.default_rng(0)
    big = pop.__class__(**{**pop.__dict__, "reference": np.tile(pop.reference, (200, 1)),
                           "attribution": np.tile(pop.attribution, (200, 1))})
    noisy = with_attribution_noise(big, 4.0, rng)
    noise = noisy.attribution - big.reference  # paid on the truth plus noise
    ratio = big.reference.var(axis=1).mean() / noise.var(axis=1).mean()
    n = big.reference.shape[1]  # a row's sample variance (ddof=0) of n draws averages (n-1)/n of the true one
    assert ratio == pytest.approx(4.0 * n / (n - 1), rel=0.05)
    assert np.array_equal(noisy.reference, big.reference)
    # the SNR the evaluation measures for a real method is the SNR injected here
    assert measured_snr(noisy.attribution, big.reference) == pytest.approx(4.0 * n / (n - 1), rel=0.2)
    with pytest.raises(ValueError, match="> 0"):
        with_attribution_noise(pop, 0.0, rng)


def test_noise_changes_only_the_scores_paid_on(run_dir):
    clean = build_world(validate_scenario(small_scenario(run_dir), source="t"))
    noisy = build_world(validate_scenario(small_scenario(run_dir, source={"kind": "corpus", "run": str(run_dir),
                                                                         "attribution_snr": 1.0}), source="t"))
    assert not np.allclose(clean.population.attribution, noisy.population.attribution)
    np.testing.assert_array_equal(clean.population.reference, noisy.population.reference)
    np.testing.assert_array_equal(clean.talent, noisy.talent)
    np.testing.assert_array_equal(clean.consumers.fee, noisy.consumers.fee)


def test_noisier_attribution_misallocates_more(run_dir):
    def misallocation(snr):
        source = {"kind": "corpus", "run": str(run_dir)}
        if snr is not None:
            source["attribution_snr"] = snr
        raw = small_scenario(run_dir, steps=3, source=source,
                             schemes=[{"label": "causal", "ai": {"name": "causal"}}])
        return run(raw).model["ai_misallocation_month"].mean()

    clean, mild, heavy = misallocation(None), misallocation(10.0), misallocation(0.1)
    assert clean < mild < heavy


def test_measured_snr():
    rng = np.random.default_rng(1)
    truth = rng.lognormal(size=(300, 10))
    assert measured_snr(2 * truth, truth) == float("inf")  # scale does not matter
    sd = truth.std(axis=1, keepdims=True)
    assert measured_snr(truth + sd * rng.standard_normal(truth.shape), truth) == pytest.approx(10 / 9, rel=0.2)  # ddof=0 sd
    assert measured_snr(rng.standard_normal(truth.shape), truth) < 0.1  # unrelated scores: about 0, not 1
    with pytest.raises(ValueError, match="at least 3"):
        measured_snr(np.ones(2), np.ones(2))
