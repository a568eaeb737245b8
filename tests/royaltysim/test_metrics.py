"""Distribution metrics against hand-computed values, their documented ends, and input validation."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr

from royaltysim.metrics import (
    _average_ranks,
    atkinson,
    gini,
    hhi,
    lorenz,
    misallocation,
    rank_agreement,
    share_below,
    theil,
    top_share,
)

# --------------------------------------------------------------------------- gini


def test_gini_hand_computed() -> None:
    # sum over ordered pairs |x_i - x_j| = 2 * (1+2+3+1+2+1) = 20; G = 20 / (2 * 4^2 * 2.5)
    assert gini([1, 2, 3, 4]) == pytest.approx(0.25)
    assert gini([4, 1, 3, 2]) == pytest.approx(0.25)  # order does not matter
    assert gini([1, 3]) == pytest.approx(0.25)  # |1-3| * 2 / (2 * 4 * 2)


def test_gini_ends() -> None:
    assert gini([5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)  # one takes all: 1 - 1/n
    assert gini([7]) == 0.0
    assert gini([0, 0, 0]) == 0.0  # documented: all-zero is equality
    assert gini([2, 4, 6]) == pytest.approx(gini([1, 2, 3]))  # scale-free


# --------------------------------------------------------------------------- lorenz


def test_lorenz_hand_computed() -> None:
    population, income = lorenz([3, 1, 0, 4])
    np.testing.assert_allclose(population, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(income, [0, 0, 1 / 8, 4 / 8, 1.0])


def test_lorenz_ends() -> None:
    population, income = lorenz([0.0, 0.0])
    np.testing.assert_allclose(income, population)
    population, income = lorenz([0.1] * 10)
    assert income[0] == 0.0 and income[-1] == 1.0
    np.testing.assert_allclose(income, population)


# --------------------------------------------------------------------------- top_share


@pytest.mark.parametrize(
    "q, expected",
    [
        (0.25, 4 / 10),  # exactly the richest one
        (0.5, 7 / 10),
        (0.1, 0.4 * 4 / 10),  # 0.4 of a person: 0.4 of the richest income
        (0.3, (4 + 0.2 * 3) / 10),  # the richest plus 0.2 of the next
        (1.0, 1.0),
    ],
)
def test_top_share_hand_computed(q: float, expected: float) -> None:
    assert top_share([1, 2, 3, 4], q) == pytest.approx(expected)


def test_top_share_matches_lorenz_and_ends() -> None:
    x = np.array([5.0, 0.0, 1.0, 9.0, 3.0])
    population, income = lorenz(x)
    for q in (0.2, 0.37, 0.6):
        assert top_share(x, q) == pytest.approx(1 - np.interp(1 - q, population, income))
    assert top_share([1.0] * 100, 0.01) == pytest.approx(0.01)  # equality: q
    assert top_share([0.0] * 10, 0.1) == pytest.approx(0.1)  # documented: all-zero is equality
    assert top_share([0] * 99 + [1], 0.01) == pytest.approx(1.0)
    assert top_share(np.arange(100.0), 0.29) == pytest.approx(np.arange(71.0, 100).sum() / 4950)


@pytest.mark.parametrize("q", [0, -0.1, 1.5, float("nan"), "0.1"])
def test_top_share_rejects_bad_fraction(q: object) -> None:
    with pytest.raises(ValueError, match="q must be"):
        top_share([1, 2], q)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- theil


def test_theil_hand_computed() -> None:
    # mu = 2, r = [0.5, 1.5]: (0.5 ln 0.5 + 1.5 ln 1.5) / 2
    assert theil([1, 3]) == pytest.approx((0.5 * math.log(0.5) + 1.5 * math.log(1.5)) / 2)


def test_theil_ends() -> None:
    assert theil([2, 2, 2, 2]) == pytest.approx(0.0)
    assert theil([0, 0, 0, 4]) == pytest.approx(math.log(4))  # one takes all: ln n
    assert theil([0, 0]) == 0.0


# --------------------------------------------------------------------------- atkinson


@pytest.mark.parametrize(
    "epsilon, expected",
    [
        (0.5, 1 - 2.25 / 2.5),  # mean(sqrt) = 1.5, squared 2.25; mu = 2.5
        (1.0, 1 - 2.0 / 2.5),  # geometric mean 2
        (2.0, 1 - 1.6 / 2.5),  # harmonic mean 2 / (1 + 1/4) = 1.6
        (0.0, 0.0),
    ],
)
def test_atkinson_hand_computed(epsilon: float, expected: float) -> None:
    assert atkinson([1, 4], epsilon) == pytest.approx(expected)


def test_atkinson_ends() -> None:
    assert atkinson([3, 3, 3]) == pytest.approx(0.0)
    assert atkinson([0, 0, 0]) == 0.0
    assert atkinson([0, 5], 1.0) == 1.0  # a zero income collapses the geometric mean
    assert atkinson([0, 5], 3.0) == 1.0
    assert atkinson([0, 0, 0, 4], 0.5) == pytest.approx(1 - 0.25)  # mean(sqrt(r))^2 = (2/4)^2


@pytest.mark.parametrize("epsilon", [-0.5, float("inf"), True])
def test_atkinson_rejects_bad_epsilon(epsilon: float) -> None:
    with pytest.raises(ValueError, match="epsilon"):
        atkinson([1, 2], epsilon)


# --------------------------------------------------------------------------- share_below


def test_share_below_hand_computed() -> None:
    assert share_below([1, 2, 3, 4], 3) == 0.5  # strictly below
    assert share_below([1, 2, 3, 4], 0) == 0.0
    assert share_below([1, 2, 3, 4], 10) == 1.0
    assert share_below([-1, 2], 0) == 0.5  # net losses are allowed
    assert share_below([0, 0], 1) == 1.0
    with pytest.raises(ValueError, match="line"):
        share_below([1], float("nan"))


# --------------------------------------------------------------------------- hhi


def test_hhi_hand_computed() -> None:
    assert hhi([1, 1, 2]) == pytest.approx(0.25**2 * 2 + 0.5**2)
    assert hhi([0, 5]) == pytest.approx(1.0)
    assert hhi([3, 3, 3, 3]) == pytest.approx(0.25)
    assert hhi([0, 0, 0, 0]) == pytest.approx(0.25)  # documented: all-zero is an equal split


# --------------------------------------------------------------------------- misallocation


def test_misallocation_hand_computed() -> None:
    assert misallocation([1, 1, 0], [0, 1, 1]) == pytest.approx(0.5)
    assert misallocation([2, 4], [1, 2]) == pytest.approx(0.0)  # shares, not amounts
    assert misallocation([1, 0], [0, 1]) == pytest.approx(1.0)
    assert misallocation([3, 1, 0, 0], [1, 1, 1, 1]) == pytest.approx(0.5 * (0.5 + 0 + 0.25 + 0.25))


def test_misallocation_all_zero_conventions() -> None:
    assert misallocation([0, 0], [0, 0]) == 0.0
    assert misallocation([0, 0], [1, 1]) == 1.0
    assert misallocation([1, 1], [0, 0]) == 1.0


def test_misallocation_needs_matching_non_negative_vectors() -> None:
    with pytest.raises(ValueError, match="shape"):
        misallocation([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match=r"true must be non-negative.*-0\.5"):
        misallocation([1, 2], [1, -0.5])


# --------------------------------------------------------------------------- rank_agreement


def test_rank_agreement_hand_computed() -> None:
    assert rank_agreement([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert rank_agreement([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    # d = [0, 1, 1, 0]: rho = 1 - 6 * 2 / (4 * 15)
    assert rank_agreement([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert rank_agreement([1, 2, 3], [-5.0, 0.1, 7.0]) == pytest.approx(1.0)  # raw scores may be negative


def test_rank_agreement_with_ties_matches_scipy() -> None:
    paid, true = [0, 0, 1, 5, 5, 2], [0.1, 0.3, 0.3, 0.9, 0.2, 0.0]
    assert rank_agreement(paid, true) == pytest.approx(spearmanr(paid, true).statistic)


@pytest.mark.parametrize("seed", range(10))
def test_average_ranks_are_scipys_number_for_number(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n in (1, 2, 7, 100):
        tied = rng.integers(0, max(n // 3, 1), n).astype(float)  # many ties, as among unpaid creators
        distinct = rng.standard_normal(n)
        for x in (tied, distinct, np.zeros(n)):
            ranks = _average_ranks(x)
            np.testing.assert_array_equal(ranks, rankdata(x))
            assert ranks.dtype == np.float64


def test_rank_agreement_constant_conventions() -> None:
    assert rank_agreement([4], [9]) == 1.0
    assert rank_agreement([0, 0, 0], [0, 0, 0]) == 1.0
    assert rank_agreement([0, 0, 0], [1, 2, 3]) == 0.0


# --------------------------------------------------------------------------- validation, every metric

ONE_VECTOR: dict[str, Callable[[np.ndarray], object]] = {
    "gini": gini,
    "lorenz": lorenz,
    "top_share": lambda x: top_share(x, 0.1),
    "theil": theil,
    "atkinson": atkinson,
    "atkinson_1": lambda x: atkinson(x, 1.0),
    "share_below": lambda x: share_below(x, 1.0),
    "hhi": hhi,
    "misallocation": lambda x: misallocation(x, x),
    "rank_agreement": lambda x: rank_agreement(x, x),
}
NEEDS_NON_NEGATIVE = set(ONE_VECTOR) - {"share_below", "rank_agreement"}


@pytest.mark.parametrize("name", sorted(ONE_VECTOR))
def test_empty_input_is_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        ONE_VECTOR[name](np.array([]))


@pytest.mark.parametrize("name", sorted(ONE_VECTOR))
def test_non_finite_and_non_vector_input_is_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="nan"):
        ONE_VECTOR[name](np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="1-D"):
        ONE_VECTOR[name](np.ones((2, 2)))


@pytest.mark.parametrize("name", sorted(NEEDS_NON_NEGATIVE))
def test_negative_income_is_rejected_with_the_value(name: str) -> None:
    with pytest.raises(ValueError, match=r"non-negative.*-2\.5 at index 1"):
        ONE_VECTOR[name](np.array([1.0, -2.5, 3.0]))


@pytest.mark.parametrize("name", ["gini", "theil", "atkinson", "atkinson_1", "hhi", "top_share"])
def test_inequality_measures_stay_in_range(name: str) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = rng.pareto(1.2, size=int(rng.integers(1, 40))) * (rng.random() < 0.9)
        value = float(ONE_VECTOR[name](x))  # type: ignore[arg-type]
        upper = math.log(len(x)) if name == "theil" else 1.0
        assert -1e-12 <= value <= upper + 1e-12
