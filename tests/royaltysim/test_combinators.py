"""Scheme combinators: hand-computed months, hybrid as a mix, nested validation, and money conservation
through random nestings (hypothesis)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from royaltysim.combinators import describe_params, hybrid_parts, nested_parameters, spec_issues
from royaltysim.config import ScenarioError, validate_scenario
from royaltysim.schemes import (
    NestedScheme,
    SchemeParameterError,
    SchemeParts,
    Settlement,
    UnknownSchemeError,
    pay,
)

from .conftest import small_scenario

ATTR = np.array([[2.0, -1.0, 1.0], [0.0, 3.0, 1.0]])
CAUSAL = np.array([100 / 3, 37.5, 100 / 6 + 12.5])  # causal on ATTR, equal plays, pool 100


def spec(name: str, **params: Any) -> dict[str, Any]:
    return {"name": name, "params": params} if params else {"name": name}


def ai_month(**kw: Any) -> Settlement:
    return Settlement.build(100.0, ai_plays=[1.0, 1.0], attribution=ATTR, **kw)


# --------------------------------------------------------------------------- hand-computed months


def test_mix_weights_each_scheme_and_respreads_a_part_with_no_basis() -> None:
    s = ai_month(training_works=[1, 1, 2])
    parts = [{"weight": 0.3, "scheme": spec("fixed_fee")}, {"weight": 0.7, "scheme": spec("causal")}]
    np.testing.assert_allclose(pay("mix", s, parts=parts), 10.0 + 0.7 * CAUSAL)
    three = parts[:1] + [{"weight": 0.5, "scheme": spec("causal")}, {"weight": 0.2, "scheme": spec("training_share")}]
    np.testing.assert_allclose(pay("mix", s, parts=three), 10.0 + 0.5 * CAUSAL + 20.0 * np.array([1, 1, 2]) / 4)
    # pro_rata has no basis here (no streams): its 0.7 goes to the other part, fixed_fee pays everything
    no_streams = [parts[0], {"weight": 0.7, "scheme": spec("pro_rata")}]
    np.testing.assert_allclose(pay("mix", s, parts=no_streams), [100 / 3] * 3)


def test_floor_tops_up_creators_below_it_from_the_others() -> None:
    s = ai_month()  # causal pays [33.3, 37.5, 29.2]
    np.testing.assert_allclose(pay("floor", s, amount=0.0), CAUSAL)
    s2 = Settlement.build(100.0, ai_plays=[1.0], attribution=[[8.0, 1.0, 1.0]])  # causal 80, 10, 10
    # floor 20: creators 1 and 2 topped up to 20, creator 0 keeps the rest, 60
    np.testing.assert_allclose(pay("floor", s2, amount=20.0), [60.0, 20.0, 20.0])
    # per work, with no works: no floor at all
    np.testing.assert_allclose(pay("floor", s2, amount=10.0, per="work"), [80.0, 10.0, 10.0])
    # creator 1 has 3 works (floor 30), creator 2 none (floor 0): the other 70 split 8:1
    s3 = Settlement.build(100.0, ai_plays=[1.0], attribution=[[8.0, 1.0, 1.0]], works=[1, 3, 0])
    np.testing.assert_allclose(pay("floor", s3, amount=10.0, per="work"), [70 * 8 / 9, 30.0, 70 / 9])
    # floors worth more than the pool: the pool is split in proportion to them
    np.testing.assert_allclose(pay("floor", s3, amount=40.0, per="work"), [25.0, 75.0, 0.0])


def test_cap_respreads_the_excess_by_the_inner_shares_until_no_one_is_above() -> None:
    s = Settlement.build(100.0, ai_plays=[1.0], attribution=[[70.0, 20.0, 8.0, 2.0]])
    # 70 capped at 40; the 30 over follows 20:8:2, which brings creator 1 to the cap (20 + 20) and the
    # last two to 16 and 4
    np.testing.assert_allclose(pay("cap", s, max_share=0.4), [40.0, 40.0, 16.0, 4.0])
    np.testing.assert_allclose(pay("cap", s, max_share=1.0), [70.0, 20.0, 8.0, 2.0])
    # only two creators have a basis: a 0.3 cap cannot hold, they split the pool equally
    s2 = Settlement.build(100.0, ai_plays=[1.0], attribution=[[9.0, 1.0, 0.0]])
    np.testing.assert_allclose(pay("cap", s2, max_share=0.3), [50.0, 50.0, 0.0])


def test_threshold_drops_creators_under_the_streams_and_redistributes() -> None:
    streams = sp.csr_matrix(np.array([[100.0, 50.0, 5.0], [0.0, 30.0, 3.0]]))
    s = Settlement.build(90.0, streams=streams)
    np.testing.assert_allclose(pay("threshold", s, min_streams=120.0), [100 / 180 * 90, 80 / 180 * 90, 0.0])
    np.testing.assert_allclose(pay("threshold", s, min_streams=50.0, per="month"), [50.0, 40.0, 0.0])
    np.testing.assert_allclose(pay("threshold", s, min_streams=90.0, per="month"), [90.0, 0.0, 0.0])
    np.testing.assert_allclose(pay("threshold", s, min_streams=0.0), pay("pro_rata", s))
    nothing = pay("threshold", s, min_streams=1000.0, per="month")
    np.testing.assert_array_equal(nothing, np.zeros(3))  # no basis: the whole pool stays unallocated


def test_eligibility_pays_only_creators_in_the_training_set_or_with_works() -> None:
    streams = sp.csr_matrix(np.array([[1.0, 1.0, 2.0]]))
    s = Settlement.build(40.0, streams=streams, training_works=[0, 3, 1], works=[2, 0, 1])
    np.testing.assert_allclose(pay("eligibility", s), [0.0, 40 / 3, 80 / 3])
    np.testing.assert_allclose(pay("eligibility", s, require="works"), [40 / 3, 0.0, 80 / 3])


def test_combinators_nest() -> None:
    s = Settlement.build(100.0, ai_plays=[1.0], attribution=[[70.0, 20.0, 8.0, 2.0]])
    inner = spec("mix", parts=[{"weight": 0.5, "scheme": spec("fixed_fee")}, {"weight": 0.5, "scheme": spec("causal")}])
    # the mix pays [47.5, 22.5, 16.5, 13.5]; capped at 30 the 17.5 over follows 22.5:16.5:13.5
    k = 70.0 / 52.5
    np.testing.assert_allclose(pay("cap", s, scheme=inner, max_share=0.3), [30.0, 22.5 * k, 16.5 * k, 13.5 * k])


@pytest.mark.parametrize("floor", [0.0, 0.2, 0.37, 1.0])
@pytest.mark.parametrize("floor_basis", ["equal", "works", "seconds"])
@pytest.mark.parametrize("negative", ["clip", "shift"])
def test_hybrid_is_exactly_the_equivalent_mix(floor: float, floor_basis: str, negative: str) -> None:
    s = ai_month(training_works=[1, 0, 2], training_seconds=[30.0, 0.0, 200.0], eligible=[True, True, False])
    got = pay("hybrid", s, floor=floor, floor_basis=floor_basis, negative=negative)
    np.testing.assert_array_equal(got, pay("mix", s, parts=hybrid_parts(floor, floor_basis, negative)))
    f = pay("fixed_fee" if floor_basis == "equal" else "training_share", s,
            **({} if floor_basis == "equal" else {"basis": floor_basis})) / 100.0  # fmt: skip
    c = pay("causal", s, negative=negative) / 100.0
    np.testing.assert_allclose(got, 100.0 * (floor * f + (1 - floor) * c))  # the rule as hybrid states it


@pytest.mark.parametrize(
    "name, params, fragment",
    [
        ("mix", {"parts": [{"weight": 0.5, "scheme": spec("causal")}]}, "sum to 0.5"),
        ("mix", {"parts": []}, "non-empty list"),
        ("mix", {"parts": [{"weight": 1.0, "scheme": spec("causel")}]}, "unknown"),
        ("mix", {"parts": [{"weight": 1.0, "schema": spec("causal")}]}, "exactly the keys"),
        ("cap", {"max_share": 0.0}, "max_share"),
        ("cap", {"scheme": "causal"}, "must be a scheme"),
        ("floor", {"amount": -1.0}, "amount"),
        ("threshold", {"per": "week"}, "'year', 'month'"),
        ("eligibility", {"require": "opted_out"}, "'training_set', 'works'"),
    ],
)
def test_bad_combinator_parameters_are_refused(name: str, params: dict[str, Any], fragment: str) -> None:
    with pytest.raises((SchemeParameterError, UnknownSchemeError), match=fragment):
        pay(name, Settlement.build(1.0, n_creators=2), **params)


# --------------------------------------------------------------------------- validation at the boundary


def test_spec_issues_name_the_path_of_each_nested_problem() -> None:
    bad = spec("mix", parts=[
        {"weight": 0.3, "scheme": spec("fixed_fee")},
        {"weight": 0.6, "scheme": spec("cap", max_share=2, scheme=spec("causal", negative="keep"))},
    ])  # fmt: skip
    issues = dict(spec_issues(bad, "schemes[0].ai", "ai"))
    assert set(issues) == {
        "schemes[0].ai.params.parts",
        "schemes[0].ai.params.parts[1].scheme.params.max_share",
        "schemes[0].ai.params.parts[1].scheme.params.scheme.params.negative",
    }
    assert "sum to 0.9" in issues["schemes[0].ai.params.parts"]
    assert "'clip', 'shift', 'abs'" in issues["schemes[0].ai.params.parts[1].scheme.params.scheme.params.negative"]
    # an AI rule nested anywhere under human: is refused; a combinator itself is fine there
    human = dict(spec_issues(spec("cap", scheme=spec("causal")), "schemes[1].human", "human"))
    assert list(human) == ["schemes[1].human.params.scheme.name"] and "under `ai:`" in human[list(human)[0]]
    assert spec_issues(spec("cap", scheme=spec("user_centric")), "schemes[1].human", "human") == []
    extra = dict(spec_issues(spec("cap", scheme={"name": "causal", "parms": {}}), "x", "ai"))
    assert list(extra) == ["x.params.scheme.parms"]


def test_scenario_validation_reports_nested_errors_together(run_dir: Path) -> None:
    arms = [
        {"label": "ok", "ai": {"name": "mix", "params": {"parts": [
            {"weight": 0.3, "scheme": {"name": "fixed_fee"}}, {"weight": 0.7, "scheme": {"name": "causal"}}]}}},
        {"label": "capped", "ai": {"name": "cap", "params": {"max_share": 0.1, "scheme": {"name": "pro_rata"}}}},
        {"label": "bad", "human": {"name": "threshold", "params": {"scheme": {"name": "similarity"}}},
         "ai": {"name": "cap", "params": {"max_share": 1.5}}},
    ]  # fmt: skip
    with pytest.raises(ScenarioError) as err:
        validate_scenario(small_scenario(run_dir, schemes=arms))
    message = str(err.value)
    assert "schemes[2].human.params.scheme.name" in message and "schemes[2].ai.params.max_share" in message
    assert "schemes[0]" not in message and "schemes[1]" not in message
    validate_scenario(small_scenario(run_dir, schemes=arms[:2]))


def test_schemes_md_nesting_example_validates(run_dir: Path) -> None:
    text = (Path(__file__).parents[2] / "docs" / "schemes.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    nested = [b for b in blocks if "parts:" in b]
    assert nested, "docs/schemes.md should show a nested scheme"
    validate_scenario(small_scenario(run_dir, schemes=yaml.safe_load(nested[0])["schemes"]))


# --------------------------------------------------------------------------- conservation under nesting

LEAVES = st.sampled_from([
    spec("pro_rata"), spec("user_centric"), spec("artist_centric", user_cap=3, boost_min_streams=2,
                                                  boost_min_listeners=1),
    spec("training_share"), spec("training_share", basis="seconds"), spec("similarity", top_k=2),
    spec("causal"), spec("causal", negative="shift"), spec("fixed_fee"), spec("hybrid", floor=0.4),
])  # fmt: skip


def _parts(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[list[dict[str, Any]]]:
    def build(draw_weights: list[int], kids: list[dict[str, Any]]) -> list[dict[str, Any]]:
        total = sum(draw_weights)
        weights = [w / total for w in draw_weights] if total else [1.0] + [0.0] * (len(kids) - 1)
        return [{"weight": w, "scheme": k} for w, k in zip(weights, kids, strict=True)]

    return st.integers(1, 3).flatmap(
        lambda n: st.builds(build, st.lists(st.integers(0, 5), min_size=n, max_size=n),
                            st.lists(children, min_size=n, max_size=n))
    )  # fmt: skip


def _combinator(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        _parts(children).map(lambda p: spec("mix", parts=p)),
        st.builds(lambda c, a, per: spec("floor", scheme=c, amount=a, per=per), children,
                  st.sampled_from([0.0, 1.0, 10.0, 50.0, 1e9]), st.sampled_from(["creator", "work"])),
        st.builds(lambda c, m: spec("cap", scheme=c, max_share=m), children, st.sampled_from([0.05, 0.3, 0.5, 1.0])),
        st.builds(lambda c, m, per: spec("threshold", scheme=c, min_streams=m, per=per), children,
                  st.sampled_from([0.0, 2.0, 24.0]), st.sampled_from(["year", "month"])),
        st.builds(lambda c, r: spec("eligibility", scheme=c, require=r), children,
                  st.sampled_from(["training_set", "works"])),
    )  # fmt: skip


def _depth(spec_: dict[str, Any]) -> int:
    params = spec_.get("params", {})
    kids = [params["scheme"]] if "scheme" in params else [p["scheme"] for p in params.get("parts", [])]
    return 1 + max((_depth(k) for k in kids), default=0) if kids else 0


NESTINGS = _combinator(_combinator(_combinator(LEAVES) | LEAVES) | LEAVES)  # combinators <= 3 deep


@st.composite
def settlements(draw: st.DrawFn) -> Settlement:
    n_users, n_creators, n_outputs = draw(st.integers(0, 5)), draw(st.integers(1, 6)), draw(st.integers(0, 3))
    pool = draw(st.sampled_from([0.0, 1.0, 100.0]) | st.floats(0.0, 1e6, allow_subnormal=False))
    small = st.sampled_from([0.0, 0.0, 0.5, 1.0]) | st.floats(0.0, 1.0, allow_subnormal=False)
    ints = st.integers(0, 4)
    return Settlement.build(
        pool,
        streams=sp.csr_matrix(draw(arrays(np.int64, (n_users, n_creators), elements=st.sampled_from([0, 0, 1, 3, 9])))),
        works=draw(arrays(np.int64, n_creators, elements=ints)),
        training_works=draw(arrays(np.int64, n_creators, elements=ints)),
        training_seconds=draw(arrays(float, n_creators, elements=small.map(lambda v: 200 * v))),
        ai_plays=draw(arrays(np.int64, n_outputs, elements=ints)),
        attribution=draw(arrays(float, (n_outputs, n_creators), elements=small.map(lambda v: 2 * v - 0.5))),
        similarity=draw(arrays(float, (n_outputs, n_creators), elements=small)),
        eligible=draw(arrays(bool, n_creators)),
    )  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=settlements(), nesting=NESTINGS)
def test_any_nesting_conserves_money_and_pays_no_one_negative(s: Settlement, nesting: dict[str, Any]) -> None:
    assert 1 <= _depth(nesting) <= 3
    assert spec_issues(nesting, "ai", "ai") == []  # what the strategy builds is a valid scenario entry
    payouts = pay(nesting["name"], s, **nesting.get("params", {}))  # pay checks the contract at every level
    assert payouts.shape == (s.n_creators,)
    assert (payouts >= 0).all()
    assert (payouts[~s.eligible] == 0).all()
    total = float(payouts.sum())
    unallocated = s.pool - total  # as Platform.settle records it
    # either the whole pool is paid (to float rounding) or, with no basis, none of it
    assert total == 0.0 or abs(unallocated) <= 1e-9 * max(1.0, s.pool), (total, s.pool)


@settings(max_examples=100, deadline=None)
@given(s=settlements(), inner=LEAVES)
def test_a_combinator_has_a_basis_exactly_when_its_inner_scheme_does(s: Settlement, inner: dict[str, Any]) -> None:
    base = pay(inner["name"], s, **inner.get("params", {}))
    for outer in (spec("cap", scheme=inner, max_share=0.2), spec("floor", scheme=inner, amount=0.0),
                  spec("mix", parts=[{"weight": 1.0, "scheme": inner}])):  # fmt: skip
        got = pay(outer["name"], s, **outer["params"])
        assert (got.sum() > 0) == (base.sum() > 0)
    np.testing.assert_array_equal(pay("mix", s, parts=[{"weight": 1.0, "scheme": inner}]), base)


def test_every_combinator_declares_its_nested_schemes() -> None:
    assert nested_parameters("mix") == {"parts": SchemeParts}
    for name in ("floor", "cap", "threshold", "eligibility"):
        assert nested_parameters(name) == {"scheme": NestedScheme}
    assert nested_parameters("causal") == {} and nested_parameters("hybrid") == {}


def test_describe_params_writes_nested_schemes_in_words() -> None:
    assert describe_params("cap", {"max_share": 0.1, "scheme": spec("pro_rata")}) == "max_share 0.1, scheme pro_rata"
    capped = spec("cap", max_share=0.2, scheme=spec("causal", negative="shift"))
    parts = [{"weight": 0.3, "scheme": spec("fixed_fee")}, {"weight": 0.7, "scheme": capped}]
    assert describe_params("mix", {"parts": parts}) == (
        "parts 0.3 fixed_fee + 0.7 cap (max_share 0.2, scheme causal (negative shift))"
    )
    assert describe_params("similarity", {"top_k": 3, "split": "equal"}) == "top_k 3, split equal"
