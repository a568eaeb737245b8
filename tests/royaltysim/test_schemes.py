"""Royalty schemes: a hand-computed month per scheme, the registry, and the payout contract as properties."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from royaltysim import schemes
from royaltysim.schemes import (
    SCHEMES,
    SchemeParameterError,
    Settlement,
    SettlementError,
    UnknownSchemeError,
    check_parameters,
    get_scheme,
    pay,
    register_scheme,
    scheme_names,
    scheme_parameters,
)

ALL = [True, True, True]


def streams(rows: list[list[float]]) -> sp.csr_matrix:
    return sp.csr_matrix(np.array(rows, dtype=float))


# --------------------------------------------------------------------------- hand-computed months


def test_pro_rata_splits_by_total_streams() -> None:
    s = Settlement.build(100.0, streams=streams([[3, 1, 0], [0, 2, 4]]))
    np.testing.assert_allclose(pay("pro_rata", s), [30.0, 30.0, 40.0])


def test_pro_rata_counts_only_eligible_streams() -> None:
    s = Settlement.build(100.0, streams=streams([[3, 1, 0], [0, 2, 4]]), eligible=[True, True, False])
    np.testing.assert_allclose(pay("pro_rata", s), [50.0, 50.0, 0.0])


def test_user_centric_follows_each_users_money() -> None:
    # user 0 pays 60 over 3:1 streams, user 1 pays 40 all to creator 2; pro rata would give 37.5/12.5/50
    s = Settlement.build(100.0, streams=streams([[3, 1, 0], [0, 0, 4]]), user_pool=[60.0, 40.0])
    np.testing.assert_allclose(pay("user_centric", s), [45.0, 15.0, 40.0])


def test_user_centric_respreads_silent_users_pro_rata() -> None:
    # user 2 streamed nothing: their 20 goes pro rata over all streams 3:1:4
    s = Settlement.build(
        100.0, streams=streams([[3, 1, 0], [0, 0, 4], [0, 0, 0]]), user_pool=[50.0, 30.0, 20.0]
    )
    np.testing.assert_allclose(pay("user_centric", s), [37.5 + 7.5, 12.5 + 2.5, 30.0 + 10.0])


def test_user_centric_respreads_users_who_only_played_ineligible_creators() -> None:
    s = Settlement.build(
        10.0, streams=streams([[3, 1, 0], [0, 0, 2]]), user_pool=[5.0, 5.0], eligible=[True, True, False]
    )
    np.testing.assert_allclose(pay("user_centric", s), [7.5, 2.5, 0.0])


def test_artist_centric_caps_users_and_boosts_established_creators() -> None:
    # user 0 streams 20 > cap 10: row scaled by 1/2. Raw streams [23, 4, 4] from [3, 2, 1] listeners:
    # only creator 0 passes (>= 5 streams, >= 2 listeners) and counts double.
    # capped [10+2+1, 3+1, 4] = [13, 4, 4] -> weighted [26, 4, 4], total 34.
    s = Settlement.build(34.0, streams=streams([[20, 0, 0], [2, 3, 0], [1, 0, 4], [0, 1, 0]]))
    params = dict(user_cap=10, boost=2.0, boost_min_streams=5, boost_min_listeners=2)
    np.testing.assert_allclose(pay("artist_centric", s, **params), [26.0, 4.0, 4.0])


def test_artist_centric_without_cap_or_boost_is_pro_rata() -> None:
    s = Settlement.build(100.0, streams=streams([[3000, 1, 0], [0, 2, 4]]))
    np.testing.assert_allclose(
        pay("artist_centric", s, user_cap=None, boost=1.0), pay("pro_rata", s), rtol=1e-12
    )


def test_training_share_by_works_and_seconds() -> None:
    s = Settlement.build(80.0, training_works=[0, 2, 6], training_seconds=[0, 300, 100])
    np.testing.assert_allclose(pay("training_share", s), [0.0, 20.0, 60.0])
    np.testing.assert_allclose(pay("training_share", s, basis="seconds"), [0.0, 60.0, 20.0])
    opted_out = Settlement.build(80.0, training_works=[0, 2, 6], eligible=[True, True, False])
    np.testing.assert_allclose(pay("training_share", opted_out), [0.0, 80.0, 0.0])


SIM = np.array([[0.9, 0.6, 0.1], [0.2, 0.2, 0.8]])


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, [30.0, 0.0, 10.0]),  # output 0 (3 plays of 4) -> creator 0, output 1 -> creator 2
        # top 2 of output 0: 0.9 : 0.6; output 1 ties at 0.2 so all three share 0.2 : 0.2 : 0.8
        ({"top_k": 2}, [18.0 + 10 / 6, 12.0 + 10 / 6, 10 * 0.8 / 1.2]),
        ({"top_k": 2, "split": "equal"}, [15.0 + 10 / 3, 15.0 + 10 / 3, 10 / 3]),
        ({"threshold": 0.5}, [30.0, 0.0, 10.0]),
        ({"threshold": 0.85}, [40.0, 0.0, 0.0]),  # output 1 matches nobody: its 10 follow output 0
    ],
)
def test_similarity_pays_top_matches(params: dict[str, Any], expected: list[float]) -> None:
    s = Settlement.build(40.0, ai_plays=[3.0, 1.0], similarity=SIM)
    np.testing.assert_allclose(pay("similarity", s, **params), expected)


def test_similarity_does_not_pass_an_opted_out_match_to_the_runner_up() -> None:
    s = Settlement.build(40.0, ai_plays=[3.0, 1.0], similarity=SIM, eligible=[False, True, True])
    np.testing.assert_allclose(pay("similarity", s), [0.0, 0.0, 40.0])


ATTR = np.array([[2.0, -1.0, 1.0], [0.0, 3.0, 1.0]])


@pytest.mark.parametrize(
    "negative, eligible, expected",
    [
        # per-output shares [2,0,1]/3 and [0,3,1]/4, averaged over equal plays
        ("clip", ALL, [100 / 3, 37.5, 100 / 6 + 12.5]),
        ("shift", ALL, [30.0, 37.5, 32.5]),  # [3,0,2]/5 and [0,3,1]/4
        ("abs", ALL, [25.0, 50.0, 25.0]),  # [2,1,1]/4 and [0,3,1]/4
        ("clip", [False, True, True], [0.0, 37.5, 62.5]),  # creator 0 dropped before normalising
        ("shift", [False, True, True], [0.0, 50.0, 50.0]),  # shifted over eligible: [0,2] and [2,0]
    ],
)
def test_causal_pays_attribution_shares(negative: str, eligible: list[bool], expected: list[float]) -> None:
    s = Settlement.build(100.0, ai_plays=[1.0, 1.0], attribution=ATTR, eligible=eligible)
    np.testing.assert_allclose(pay("causal", s, negative=negative), expected)


def test_causal_weights_outputs_by_plays_and_respreads_uncredited_ones() -> None:
    attribution = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # output 2 credits nobody after clip
    s = Settlement.build(10.0, ai_plays=[3.0, 1.0, 6.0], attribution=attribution)
    np.testing.assert_allclose(pay("causal", s), [7.5, 2.5])


def test_fixed_fee_is_equal_among_eligible() -> None:
    s = Settlement.build(90.0, eligible=[True, False, True, True])
    np.testing.assert_allclose(pay("fixed_fee", s), [30.0, 0.0, 30.0, 30.0])


def test_hybrid_adds_a_floor_to_causal() -> None:
    s = Settlement.build(100.0, ai_plays=[1.0, 1.0], attribution=ATTR, training_works=[1, 1, 2])
    causal = np.array([100 / 3, 37.5, 100 / 6 + 12.5])
    np.testing.assert_allclose(pay("hybrid", s), 20.0 / 3 + 0.8 * causal)
    np.testing.assert_allclose(pay("hybrid", s, floor_basis="works"), [5.0, 5.0, 10.0] + 0.8 * causal)
    np.testing.assert_allclose(pay("hybrid", s, floor=0.0), causal)
    np.testing.assert_allclose(pay("hybrid", s, floor=1.0), [100 / 3] * 3)


def test_hybrid_pays_everything_on_the_floor_when_nothing_is_attributed() -> None:
    s = Settlement.build(60.0, ai_plays=[1.0], attribution=np.zeros((1, 3)))
    np.testing.assert_allclose(pay("hybrid", s), [20.0, 20.0, 20.0])


@pytest.mark.parametrize(
    "name, settlement",
    [
        ("pro_rata", Settlement.build(10.0, n_users=3, n_creators=2)),
        ("user_centric", Settlement.build(10.0, n_users=3, n_creators=2)),
        ("artist_centric", Settlement.build(10.0, n_users=3, n_creators=2)),
        ("training_share", Settlement.build(10.0, n_creators=2)),
        ("similarity", Settlement.build(10.0, similarity=np.ones((2, 2)), ai_plays=[0.0, 0.0])),
        ("causal", Settlement.build(10.0, attribution=-np.ones((2, 2)))),
        ("fixed_fee", Settlement.build(10.0, n_creators=2, eligible=[False, False])),
        ("hybrid", Settlement.build(10.0, n_creators=2, eligible=[False, False])),
    ],
)
def test_no_basis_pays_nothing(name: str, settlement: Settlement) -> None:
    np.testing.assert_array_equal(pay(name, settlement), np.zeros(settlement.n_creators))


# --------------------------------------------------------------------------- registry


def test_every_scheme_in_the_brief_is_registered() -> None:
    expected = {
        "pro_rata", "user_centric", "artist_centric", "training_share",
        "similarity", "causal", "fixed_fee", "hybrid",
    }  # fmt: skip
    assert expected <= set(scheme_names())
    assert scheme_names() == sorted(SCHEMES)


def test_unknown_scheme_lists_valid_names() -> None:
    with pytest.raises(UnknownSchemeError) as err:
        get_scheme("pro-rata")
    assert isinstance(err.value, ValueError)
    for name in scheme_names():
        assert name in str(err.value)
    with pytest.raises(UnknownSchemeError):
        pay("nope", Settlement.build(1.0, n_creators=1))


def test_unknown_parameter_lists_allowed_ones() -> None:
    s = Settlement.build(1.0, similarity=np.ones((1, 2)))
    with pytest.raises(SchemeParameterError) as err:
        pay("similarity", s, topk=2)
    message = str(err.value)
    assert "topk" in message
    for param in ("top_k", "threshold", "split"):
        assert param in message
    with pytest.raises(SchemeParameterError, match="allowed parameters: none"):
        pay("pro_rata", s, boost=2.0)


def test_scheme_parameters_come_from_signatures() -> None:
    assert scheme_parameters("pro_rata") == {}
    assert scheme_parameters("similarity") == {"top_k": 1, "threshold": 0.0, "split": "proportional"}
    assert scheme_parameters("artist_centric")["user_cap"] == 1000.0
    assert scheme_parameters("hybrid")["floor"] == 0.2


@pytest.mark.parametrize(
    "name, params, fragment",
    [
        ("training_share", {"basis": "minutes"}, "'works', 'seconds'"),
        ("similarity", {"top_k": 0}, "top_k"),
        ("similarity", {"top_k": 1.5}, "integer"),
        ("similarity", {"split": "random"}, "proportional"),
        ("causal", {"negative": "keep"}, "'clip', 'shift', 'abs'"),
        ("hybrid", {"floor": 1.2}, "floor"),
        ("artist_centric", {"boost": -1}, "boost"),
        ("hybrid", {"flor": 0.1}, "allowed parameters"),
    ],
)
def test_check_parameters_rejects_bad_values(name: str, params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SchemeParameterError, match=fragment.replace("(", r"\(")):
        check_parameters(name, params)


def test_check_parameters_accepts_good_values() -> None:
    for name in scheme_names():
        check_parameters(name, scheme_parameters(name))
    check_parameters("artist_centric", {"user_cap": None, "boost_min_listeners": 5})
    check_parameters("similarity", {"top_k": 2.0})  # integral floats, as YAML may give them


def test_registry_rejects_duplicates_and_parameters_without_defaults() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_scheme("pro_rata")(lambda s: np.zeros(s.n_creators))
    with pytest.raises(TypeError, match="default"):
        register_scheme("needs_rate")(lambda s, rate: np.zeros(s.n_creators))
    assert "needs_rate" not in SCHEMES
    with pytest.raises(TypeError):
        SCHEMES["mine"] = schemes.pro_rata  # type: ignore[index]


def test_schemes_never_import_torch() -> None:
    code = "import sys, royaltysim.schemes, royaltysim.metrics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- settlement


def test_build_infers_sizes_and_fills_defaults() -> None:
    s = Settlement.build(12.0, streams=np.array([[1, 0, 2], [0, 0, 0]]), ai_plays=[1.0, 2.0])
    assert (s.n_users, s.n_creators, s.n_outputs) == (2, 3, 2)
    assert isinstance(s.streams, sp.csr_matrix) and s.streams.dtype == np.float64
    np.testing.assert_allclose(s.user_pool, [6.0, 6.0])
    assert s.eligible.dtype == bool and s.eligible.all()
    assert s.attribution.shape == s.similarity.shape == (2, 3)
    np.testing.assert_array_equal(s.listeners, [1, 0, 1])


def test_build_sums_duplicate_stream_entries() -> None:
    coo = sp.coo_matrix(([1.0, 2.0, 5.0], ([0, 0, 1], [1, 1, 1])), shape=(2, 2))
    s = Settlement.build(1.0, streams=coo.tocsr())
    np.testing.assert_array_equal(s.creator_streams, [0.0, 8.0])
    np.testing.assert_array_equal(s.listeners, [0, 2])


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"works": [1, 2], "eligible": [True] * 3}, r"eligible has shape \(3,\); expected \(2,\)"),
        ({"streams": np.ones((2, 3)), "works": [1, 2]}, r"works has shape \(2,\); expected \(3,\)"),
        (
            {"ai_plays": [1.0], "attribution": np.ones((2, 2))},
            r"attribution has shape \(2, 2\); expected \(1, 2\)",
        ),
        ({"streams": -np.ones((1, 1))}, "streams must be >= 0"),
        ({"similarity": -np.ones((1, 1))}, "similarity must be >= 0"),
        ({"streams": np.ones((2, 1)), "user_pool": [1.0, 1.0]}, "user_pool sums to 2.0"),
        ({"n_creators": 1, "eligible": [2]}, "bool mask"),
    ],
)
def test_settlement_errors_name_the_field_and_shape(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SettlementError, match=fragment):
        Settlement.build(1.0, **kwargs)


def test_settlement_rejects_a_negative_pool_and_needs_a_size() -> None:
    with pytest.raises(SettlementError, match="pool"):
        Settlement.build(-1.0, n_creators=2)
    with pytest.raises(SettlementError, match="n_creators"):
        Settlement.build(1.0)


def _fields_equal(a: Settlement, b: Settlement) -> bool:
    return a.pool == b.pool and (a.streams != b.streams).nnz == 0 and all(
        np.array_equal(getattr(a, name), getattr(b, name)) and getattr(a, name).dtype == getattr(b, name).dtype
        for name in ("user_pool", "works", "training_works", "training_seconds", "ai_plays", "attribution",
                     "similarity", "eligible")
    )


def test_derive_is_replace_checking_only_what_changes() -> None:
    s = Settlement.build(6.0, streams=np.array([[1, 0, 2], [0, 3, 0]]), ai_plays=[1.0, 2.0], works=[1, 2, 3])
    changes = {"pool": 2, "user_pool": [0.5, 1.5], "eligible": [1, 0, 1], "training_works": [0, 4, 1]}
    derived = s.derive(**changes)
    assert _fields_equal(derived, replace(s, **changes))
    assert derived.pool == 2.0 and derived.eligible.dtype == bool  # normalised like a new settlement
    assert derived.streams is s.streams and derived.attribution is s.attribution  # the rest is shared, as checked
    assert s.pool == 6.0 and s.eligible.all()  # and the original is left alone


def test_derive_checks_the_changed_fields_against_the_rest() -> None:
    s = Settlement.build(6.0, streams=np.array([[1, 0, 2], [0, 3, 0]]), ai_plays=[1.0, 2.0])
    with pytest.raises(SettlementError, match="user_pool sums to 6.0 but pool is 3.0"):
        s.derive(pool=3.0)
    with pytest.raises(SettlementError, match=r"eligible has shape \(2,\); expected \(3,\)"):
        s.derive(eligible=[True, True])
    with pytest.raises(SettlementError, match="training_seconds must be >= 0"):
        s.derive(training_seconds=[0.0, -1.0, 0.0])
    # new streams may change the sizes, so everything is checked again
    with pytest.raises(SettlementError, match=r"user_pool has shape \(2,\); expected \(3,\)"):
        s.derive(streams=np.ones((3, 3)))
    with pytest.raises(TypeError, match="no field"):
        s.derive(pools=1.0)


def test_derive_with_new_streams_recounts_listeners() -> None:
    s = Settlement.build(1.0, streams=np.array([[1, 0], [2, 0]]))
    np.testing.assert_array_equal(s.listeners, [2, 0])
    np.testing.assert_array_equal(s.derive(eligible=[True, False]).listeners, [2, 0])
    np.testing.assert_array_equal(s.derive(streams=np.array([[0, 1], [0, 1]])).listeners, [0, 2])


# --------------------------------------------------------------------------- properties, every scheme

# Non-default parameters worth exercising; every registered scheme also runs with its defaults.
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "artist_centric": [dict(user_cap=5, boost=3.0, boost_min_streams=3, boost_min_listeners=2)],
    "training_share": [dict(basis="seconds")],
    "similarity": [dict(top_k=2, split="equal"), dict(top_k=3, threshold=0.5)],
    "causal": [dict(negative="shift"), dict(negative="abs")],
    "hybrid": [dict(floor=0.5, floor_basis="works", negative="shift"), dict(floor=0.0)],
}
CASES = [(name, {}) for name in scheme_names()] + [
    (name, params) for name, variants in VARIANTS.items() for params in variants
]
CASE_IDS = [
    f"{name}-{'-'.join(f'{k}={v}' for k, v in params.items()) or 'defaults'}" for name, params in CASES
]


def _eligible_streams(s: Settlement) -> bool:
    return bool(s.creator_streams[s.eligible].sum() > 0)


def _causal_basis(s: Settlement, negative: str) -> bool:
    phi = s.attribution[:, s.eligible]
    if phi.shape[1] == 0:
        return False
    if negative == "clip":
        credits = (phi > 0).any(axis=1)
    elif negative == "shift":
        credits = phi.max(axis=1) > phi.min(axis=1)
    else:
        credits = (phi != 0).any(axis=1)
    return bool(np.any(credits & (s.ai_plays > 0)))


# When a scheme must have a basis to pay on (an independent statement of each docstring's "no basis").
BASIS: dict[str, Callable[[Settlement, dict[str, Any]], bool]] = {
    "pro_rata": lambda s, p: _eligible_streams(s),
    "user_centric": lambda s, p: _eligible_streams(s),
    "artist_centric": lambda s, p: _eligible_streams(s),
    "training_share": lambda s, p: bool(
        (s.training_seconds if p.get("basis") == "seconds" else s.training_works)[s.eligible].sum() > 0
    ),
    "fixed_fee": lambda s, p: bool(s.eligible.any()),
    "causal": lambda s, p: _causal_basis(s, p.get("negative", "clip")),
}

small = st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0])  # many zeros and ties


@st.composite
def settlements(draw: st.DrawFn) -> Settlement:
    n_users = draw(st.integers(0, 6))
    n_creators = draw(st.integers(1, 6))
    n_outputs = draw(st.integers(0, 4))
    pool = draw(st.sampled_from([0.0, 1.0, 100.0]) | st.floats(0.0, 1e6, allow_subnormal=False))
    counts = draw(arrays(np.int64, (n_users, n_creators), elements=st.sampled_from([0, 0, 0, 1, 2, 7])))
    weights = draw(arrays(float, n_users, elements=st.sampled_from([0.0, 1.0, 2.5])))
    user_pool = pool * weights / weights.sum() if weights.sum() > 0 else None
    ints = st.integers(0, 5)
    floats = small | st.floats(0.0, 1.0, allow_subnormal=False)
    signed = small | st.floats(-1.0, 1.0, allow_subnormal=False)
    return Settlement.build(
        pool,
        streams=sp.csr_matrix(counts),
        user_pool=user_pool,
        works=draw(arrays(np.int64, n_creators, elements=ints)),
        training_works=draw(arrays(np.int64, n_creators, elements=ints)),
        training_seconds=draw(arrays(float, n_creators, elements=floats.map(lambda v: 300 * v))),
        ai_plays=draw(arrays(np.int64, n_outputs, elements=ints)),
        attribution=draw(arrays(float, (n_outputs, n_creators), elements=small | signed)),
        similarity=draw(arrays(float, (n_outputs, n_creators), elements=floats)),
        eligible=draw(arrays(bool, n_creators)),
        n_creators=n_creators,
        n_users=n_users,
        n_outputs=n_outputs,
    )


def permuted(s: Settlement, perm: np.ndarray) -> Settlement:
    return Settlement.build(
        s.pool,
        streams=s.streams[:, perm],
        user_pool=s.user_pool,
        works=s.works[perm],
        training_works=s.training_works[perm],
        training_seconds=s.training_seconds[perm],
        ai_plays=s.ai_plays,
        attribution=s.attribution[:, perm],
        similarity=s.similarity[:, perm],
        eligible=s.eligible[perm],
    )


PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name, params", CASES, ids=CASE_IDS)
@PROPERTY_SETTINGS
@given(s=settlements())
def test_payout_contract(name: str, params: dict[str, Any], s: Settlement) -> None:
    out = get_scheme(name)(s, **params)  # the raw scheme, not pay(): pay() would mask a violation
    assert out.shape == (s.n_creators,)
    assert np.all(np.isfinite(out))
    assert np.all(out >= 0), out
    assert np.all(out[~s.eligible] == 0), out
    paid_all = np.isclose(out.sum(), s.pool, rtol=1e-9, atol=1e-9)
    assert paid_all or np.all(out == 0), (out.sum(), s.pool)
    if name in BASIS and s.pool > 0:
        assert BASIS[name](s, params) == bool(out.sum() > 0)


@pytest.mark.parametrize("name, params", CASES, ids=CASE_IDS)
@PROPERTY_SETTINGS
@given(data=st.data(), s=settlements())
def test_relabelling_creators_relabels_payouts(
    name: str, params: dict[str, Any], data: st.DataObject, s: Settlement
) -> None:
    perm = np.array(data.draw(st.permutations(range(s.n_creators))), dtype=int)
    before = pay(name, s, **params)
    after = pay(name, permuted(s, perm), **params)
    np.testing.assert_allclose(after, before[perm], rtol=1e-9, atol=1e-9 * max(1.0, s.pool))
