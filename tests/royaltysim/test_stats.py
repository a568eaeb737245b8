"""Intervals over seeds and paired differences, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from royaltysim.stats import Interval, mean_interval, paired_difference, verdict

# Student t quantile t(0.975, 2 degrees of freedom) = 4.302653 (tables); three seeds give 2 degrees of freedom
T2 = 4.302653


def test_mean_interval_unbounded_by_hand() -> None:
    iv = mean_interval([1.0, 2.0, 3.0])
    # mean 2, sample sd 1, half width t * 1 / sqrt(3) = 2.484138
    assert iv.estimate == pytest.approx(2.0)
    assert iv.low == pytest.approx(2.0 - T2 / math.sqrt(3), rel=1e-6)
    assert iv.high == pytest.approx(2.0 + T2 / math.sqrt(3), rel=1e-6)
    assert iv.n == 3 and "Student t" in iv.method


def test_bounded_interval_is_made_on_the_logit_scale_and_stays_inside() -> None:
    iv = mean_interval([0.2, 0.5, 0.8], bounds=(0.0, 1.0))
    # logits -ln 4, 0, ln 4: mean 0, sd ln 4 = 1.386294; half width 4.302653 * 1.386294 / 1.732051 = 3.443746;
    # back through the logistic: 1 / (1 + e^3.443746) = 0.030956 and 0.969044
    assert iv.estimate == pytest.approx(0.5)
    assert iv.low == pytest.approx(0.030956, abs=2e-6)
    assert iv.high == pytest.approx(0.969044, abs=2e-6)
    # a plain t interval of Gini values near 1 runs past 1; this one never does
    near_one = [0.90, 0.99, 0.999]
    plain = mean_interval(near_one)
    assert plain.high > 1.0
    inside = mean_interval(near_one, bounds=(0.0, 1.0))
    assert 0.0 < inside.low <= inside.estimate <= inside.high < 1.0


def test_floor_only_uses_the_log_scale_and_a_value_on_a_bound_is_clipped() -> None:
    iv = mean_interval([1.0, 10.0, 100.0], bounds=(0.0, None))
    # logs 0, 2.302585, 4.605170: mean 2.302585, sd 2.302585, half width 4.302653 * 2.302585 / 1.732051 = 5.719946
    assert iv.low == pytest.approx(math.exp(2.302585 - 5.719946), rel=1e-5)
    assert iv.high == pytest.approx(math.exp(2.302585 + 5.719946), rel=1e-5)
    on_bound = mean_interval([0.0, 0.5, 1.0], bounds=(0.0, 1.0))
    # t half width 4.302653 * 0.5 / sqrt(3) = 1.242 would reach -0.74 and 1.74: clipped to the bounds
    assert (on_bound.low, on_bound.high) == (0.0, 1.0) and "clipped" in on_bound.method


def test_one_seed_and_equal_values() -> None:
    one = mean_interval([0.4])
    assert one.n == 1 and math.isnan(one.low) and math.isnan(one.high)
    same = mean_interval([0.3, 0.3, 0.3], bounds=(0.0, 1.0))
    assert (same.low, same.estimate, same.high) == (0.3, 0.3, 0.3)


def test_paired_difference_by_hand() -> None:
    iv = paired_difference([3.0, 5.0, 7.0], [1.0, 2.0, 3.0])
    # differences 2, 3, 4: mean 3, sd 1, half width 2.484138; t statistic 3 / (1 / sqrt 3) = 5.196152 and, with
    # 2 degrees of freedom (CDF 1/2 + t / (2 sqrt(2 + t^2))), p = 1 - t / sqrt(2 + t^2) = 1 - 5.196152 / 5.385165
    assert iv.estimate == pytest.approx(3.0)
    assert (iv.low, iv.high) == (pytest.approx(3 - T2 / math.sqrt(3), rel=1e-6), pytest.approx(3 + T2 / math.sqrt(3), rel=1e-6))
    assert iv.p_value == pytest.approx(1 - 5.196152 / 5.385165, rel=1e-5)
    assert verdict(iv) == "higher"
    assert verdict(paired_difference([1.0, 2.0, 3.0], [3.0, 5.0, 7.0])) == "lower"


def test_pairing_removes_the_luck_both_arms_share() -> None:
    luck = np.array([0.10, 0.50, 0.90, 0.30, 0.70])
    arm, reference = luck + 0.01, luck  # the same 0.01 better in every seed
    assert verdict(paired_difference(arm + [0, 1e-4, -1e-4, 2e-4, 0], reference)) == "higher"
    # the levels alone overlap completely
    a, r = mean_interval(arm), mean_interval(reference)
    assert a.low < r.high and r.low < a.high


def test_a_tie_is_no_detectable_difference() -> None:
    iv = paired_difference([0.951, 0.949, 0.950], [0.950, 0.950, 0.950])
    assert iv.low < 0 < iv.high and not iv.excludes_zero
    assert verdict(iv) == "no detectable difference"
    assert verdict(paired_difference([0.5, 0.6], [0.5, 0.6])) == "identical"
    assert verdict(paired_difference([0.5], [0.4])) == "one seed"


def test_difference_of_a_bounded_measure_is_clipped_to_its_range() -> None:
    iv = paired_difference([1.0, 0.0, 1.0], [0.0, 1.0, 0.0], bounds=(0.0, 1.0))
    # differences 1, -1, 1: mean 1/3, sd 1.1547, half width 2.868: clipped to [-1, 1]
    assert (iv.low, iv.high) == (-1.0, 1.0)


def test_bootstrap_over_seeds() -> None:
    d = np.array([0.5, 1.5, 1.0, 2.0, 0.8])
    iv = paired_difference(d, np.zeros(5), method="bootstrap", seed=1)
    assert d.min() <= iv.low < d.mean() < iv.high <= d.max()
    assert iv.method == "paired bootstrap over seeds"
    again = paired_difference(d, np.zeros(5), method="bootstrap", seed=1)
    assert (again.low, again.high) == (iv.low, iv.high)


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        mean_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="method"):
        paired_difference([1.0, 2.0], [0.0, 0.0], method="z")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        mean_interval([1.0, 2.0], level=95)
    assert isinstance(mean_interval([1.0, 2.0]), Interval)
