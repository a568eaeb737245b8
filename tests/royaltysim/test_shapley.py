"""The licences as written: Shapley values (sampler against the definition, the streaming game's closed form,
Shapley Royalty Share and what it reduces to), STIM's attribution with a usage fallback, and money conservation
through any nesting of them (hypothesis)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from royaltysim.combinators import spec_issues
from royaltysim.fallback import attribution_quality
from royaltysim.schemes import SchemeParameterError, Settlement, pay
from royaltysim.shapley import (
    LinearDatamodelGame,
    StreamingGame,
    exact_shapley,
    permutation_shapley,
    royalty_share_values,
    streaming_shapley,
)

from .test_combinators import LEAVES, _combinator, settlements, spec

# --------------------------------------------------------------------------- the sampler


def glove_game(members: np.ndarray) -> float:
    """Players 0 and 1 hold left gloves, 2 a right glove: a pair is worth 1 (not additive)."""
    return float(min(members[:2].sum(), members[2]))


def glove_prefix(order: np.ndarray) -> np.ndarray:
    mask = np.zeros(3, dtype=bool)
    out = [glove_game(mask)]
    for i in order:
        mask[i] = True
        out.append(glove_game(mask))
    return np.array(out)


def test_exact_shapley_of_the_glove_game() -> None:
    np.testing.assert_allclose(exact_shapley(glove_game, 3), [1 / 6, 1 / 6, 2 / 3])


def test_permutation_sampling_converges_to_the_exact_value_within_its_standard_error() -> None:
    est = permutation_shapley(glove_prefix, 3, 2000, np.random.default_rng(0))
    exact = np.array([1 / 6, 1 / 6, 2 / 3])
    assert (est.se > 0).all() and est.permutations == 2000
    assert (np.abs(est.values - exact) < 4 * est.se).all()
    # the error shrinks as 1 / sqrt(orders)
    small = permutation_shapley(glove_prefix, 3, 200, np.random.default_rng(0))
    np.testing.assert_allclose(small.se / est.se, np.sqrt(10), rtol=0.25)
    assert np.isclose(est.values.sum(), 1.0)  # efficiency holds in every sampled order


def test_permutation_shapley_refuses_no_orders_and_a_wrong_prefix_shape() -> None:
    with pytest.raises(ValueError, match="permutations must be >= 1"):
        permutation_shapley(glove_prefix, 3, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="expected \\(4,\\)"):
        permutation_shapley(lambda order: np.zeros(3), 3, 1, np.random.default_rng(0))


# --------------------------------------------------------------------------- the streaming game

LISTENED = np.array([[1, 1, 0, 0], [0, 1, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 1]], dtype=bool)
MONEY = np.array([6.0, 9.0, 2.0, 5.0, 4.0])


def test_streaming_game_closed_form_equals_the_definition_and_permutation_sampling() -> None:
    game = StreamingGame(sp.csr_matrix(LISTENED), MONEY)
    closed = streaming_shapley(LISTENED, MONEY)
    # by hand: user 0 splits 6 over {0,1}, user 1 9 over {1,2,3}, user 2 gives 2 to 3, user 4 4 over {0,3}
    np.testing.assert_allclose(closed, [3 + 2, 3 + 3, 3, 3 + 2 + 2])
    np.testing.assert_allclose(exact_shapley(game.value, 4), closed)
    est = permutation_shapley(game.prefix_values, 4, 4000, np.random.default_rng(1))
    assert (np.abs(est.values - closed) <= 4 * est.se + 1e-12).all()
    # prefix values agree with the coalition values they stand for
    order = np.array([2, 0, 3, 1])
    mask = np.zeros(4, dtype=bool)
    expected = [game.value(mask)]
    for i in order:
        mask[i] = True
        expected.append(game.value(mask))
    np.testing.assert_allclose(game.prefix_values(order), expected)


def test_shapley_streaming_scheme_splits_each_users_money_among_whom_they_streamed() -> None:
    streams = np.array([[30, 1, 0], [0, 0, 4], [0, 0, 0]])
    s = Settlement.build(90.0, streams=streams, user_pool=[30.0, 30.0, 30.0])
    # user 0: 15 each to 0 and 1 (not 30:1); user 1: 30 to 2; user 2 is silent: 30 pro rata over 35 streams
    silent = 30.0 * np.array([30, 1, 4]) / 35
    np.testing.assert_allclose(pay("shapley_streaming", s), np.array([15.0, 15.0, 30.0]) + silent)
    only_two = s.derive(eligible=np.array([True, False, True]))  # user 0's money all goes to creator 0
    np.testing.assert_allclose(pay("shapley_streaming", only_two), np.array([30, 0, 30]) + 30 * np.array([30, 0, 4]) / 34)
    assert pay("shapley_streaming", Settlement.build(10.0, n_users=2, n_creators=3)).sum() == 0  # no streams


# --------------------------------------------------------------------------- Shapley Royalty Share

ATTR = np.array([[2.0, -1.0, 1.0, 0.0], [0.0, 3.0, 1.0, 0.5]])
REF = np.array([[0.5, 0.0, 0.5, 0.0], [0.0, 0.6, 0.2, 0.2]])


def ai_month(**kw: Any) -> Settlement:
    return Settlement.build(100.0, ai_plays=[1.0, 3.0], attribution=ATTR, reference=REF, **kw)


def test_royalty_share_of_a_linear_datamodel_is_each_creators_own_value_with_zero_error() -> None:
    s = ai_month()
    w = np.array([0.25, 0.75])
    values, est = royalty_share_values(s, "attribution", permutations=7, seed=3)
    np.testing.assert_allclose(values, w @ ATTR)  # Shapley of an additive game = the per-player values
    np.testing.assert_allclose(exact_shapley(LinearDatamodelGame(ATTR, w).value, 4), w @ ATTR)
    assert est is not None and (est.se == 0).all() and est.permutations == 7
    # paid: the positive values' shares of the pool (creator 1's 2.0, 2's 1.0, 3's 0.375, 0's 0.5)
    positive = np.clip(w @ ATTR, 0, None)
    np.testing.assert_allclose(pay("shapley_royalty_share", s, utility="attribution"), 100 * positive / positive.sum())


def test_royalty_share_on_the_reference_pays_exactly_the_plays_weighted_true_contribution() -> None:
    s = ai_month()
    np.testing.assert_allclose(pay("shapley_royalty_share", s), 100 * np.array([0.25, 0.75]) @ REF)
    # ineligible creators are not players: the others share the pool by their own values
    some = s.derive(eligible=np.array([True, True, False, True]))
    got = pay("shapley_royalty_share", some)
    assert got[2] == 0
    np.testing.assert_allclose(got[[0, 1, 3]] / 100, np.array([0.125, 0.45, 0.15]) / 0.725)
    # the same orders for the same seed: payouts reproduce exactly
    np.testing.assert_array_equal(pay("shapley_royalty_share", s, seed=5), pay("shapley_royalty_share", s, seed=5))


def test_royalty_share_has_no_basis_without_plays_or_values() -> None:
    assert pay("shapley_royalty_share", ai_month(eligible=np.zeros(4, dtype=bool))).sum() == 0
    assert pay("shapley_royalty_share", Settlement.build(5.0, ai_plays=[0.0], attribution=ATTR[:1])).sum() == 0
    assert pay("shapley_royalty_share", Settlement.build(5.0, ai_plays=[1.0], attribution=ATTR[:1])).sum() == 0


@pytest.mark.parametrize(
    "name, params, fragment",
    [
        ("shapley_royalty_share", {"utility": "truth"}, "choose one of"),
        ("shapley_royalty_share", {"permutations": 0}, "out of range"),
        ("shapley_royalty_share", {"seed": 1.5}, "must be an integer"),
        ("causal_fallback", {"min_quality": 1.5}, "out of range"),
        ("causal_fallback", {"fallback": "plays"}, "choose one of"),
    ],
)
def test_bad_parameters_are_refused(name: str, params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SchemeParameterError, match=fragment):
        pay(name, ai_month(), **params)


# --------------------------------------------------------------------------- STIM: attribution with a fallback


def test_attribution_quality_is_the_positive_share_of_the_attribution_mass() -> None:
    q = attribution_quality(np.array([[2.0, -1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -1.0, 0.0], [1.0, 1.0, 0.0]]))
    np.testing.assert_allclose(q, [0.75, 0.0, 0.0, 1.0])


def test_causal_fallback_pays_weak_or_missing_attribution_by_usage() -> None:
    streams = np.array([[3, 0, 6, 0]])
    s = ai_month(streams=streams)
    causal_rows = np.array([[2 / 3, 0, 1 / 3, 0], [0, 3 / 4.5, 1 / 4.5, 0.5 / 4.5]])
    usage = np.array([3, 0, 6, 0]) / 9
    # bar 0: every attributed output paid by attribution: exactly `causal`
    np.testing.assert_allclose(pay("causal_fallback", s), pay("causal", s))
    # bar 0.8: output 0 (quality 0.75) falls back to usage, output 1 (quality 1) keeps its attribution
    np.testing.assert_allclose(pay("causal_fallback", s, min_quality=0.8),
                               100 * (0.25 * usage + 0.75 * causal_rows[1]))
    # fallback by works in the training set
    works = ai_month(streams=streams, training_works=[1, 1, 0, 2])
    np.testing.assert_allclose(pay("causal_fallback", works, min_quality=0.8, fallback="works"),
                               100 * (0.25 * np.array([1, 1, 0, 2]) / 4 + 0.75 * causal_rows[1]))
    # no usage to fall back on (no streams): the attributed output takes the whole pool
    np.testing.assert_allclose(pay("causal_fallback", ai_month(), min_quality=0.8), 100 * causal_rows[1])
    # every output below the bar: usage alone
    strict = Settlement.build(100.0, streams=streams, ai_plays=[1.0], attribution=ATTR[:1])
    np.testing.assert_allclose(pay("causal_fallback", strict, min_quality=0.9), 100 * usage)


# --------------------------------------------------------------------------- conservation through nestings

NEW_LEAVES = st.sampled_from([
    spec("shapley_streaming"), spec("shapley_royalty_share"), spec("shapley_royalty_share", utility="attribution"),
    spec("causal_fallback"), spec("causal_fallback", min_quality=0.7), spec("causal_fallback", fallback="works"),
])  # fmt: skip
LICENCE_NESTINGS = _combinator(_combinator(NEW_LEAVES | LEAVES) | NEW_LEAVES)


@st.composite
def settlements_with_reference(draw: st.DrawFn) -> Settlement:
    s = draw(settlements())
    shares = np.random.default_rng(draw(st.integers(0, 2**16))).dirichlet(np.ones(s.n_creators), s.n_outputs)
    zero_rows = draw(st.lists(st.booleans(), min_size=s.n_outputs, max_size=s.n_outputs))
    zero = np.array(zero_rows, dtype=bool).reshape(s.n_outputs, 1)
    return s.derive(reference=np.where(zero, 0.0, shares.reshape(s.n_outputs, s.n_creators)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=settlements_with_reference(), nesting=LICENCE_NESTINGS | NEW_LEAVES)
def test_licences_nested_anywhere_conserve_money_and_pay_no_one_negative(s: Settlement, nesting: dict) -> None:
    assert spec_issues(nesting, "ai", "ai") == []
    payouts = pay(nesting["name"], s, **nesting.get("params", {}))  # pay checks the contract at every level
    assert (payouts >= 0).all() and (payouts[~s.eligible] == 0).all()
    total = float(payouts.sum())
    assert total == 0.0 or abs(s.pool - total) <= 1e-9 * max(1.0, s.pool), (total, s.pool)


def test_the_shapley_royalty_share_is_an_ai_rule_and_the_streaming_game_a_human_one() -> None:
    assert spec_issues(spec("shapley_royalty_share"), "schemes[0].human", "human")[0][0] == "schemes[0].human.name"
    assert spec_issues(spec("causal_fallback"), "schemes[0].human", "human")[0][0] == "schemes[0].human.name"
    assert spec_issues(spec("shapley_streaming"), "schemes[0].human", "human") == []
