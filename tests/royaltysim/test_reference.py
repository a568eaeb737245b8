"""The per-agent reference (one Mesa agent per listener) against the vectorised listeners.

Both implementations consume the same :class:`~royaltysim.agents.ListeningDraws`, so on the same seed
and world every integer quantity must agree exactly, month after month: picks, streams per session,
the stream matrix, AI plays -- and therefore settlement, creators' decisions and the model's random
stream. Consumer welfare is a float mean taken in a different order and is compared to 1e-12 relative.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mesa
import numpy as np
import pandas as pd
import pytest

from royaltysim.agents import Listening, ListeningDraws
from royaltysim.config import validate_scenario
from royaltysim.model import RoyaltyModel, build_world
from royaltysim.reference import AgentRoyaltyModel, Listener, Month

from .conftest import small_scenario

MONTHS = 4


def _fitted(run: Path, **overrides: object) -> dict:
    """200 listeners x 20 fitted creators (a fifth out of the market at the start), 12 AI outputs."""
    raw = small_scenario(
        run,
        steps=MONTHS,
        source={"kind": "fitted", "run": str(run), "n_creators": 20, "n_outputs": 12, "initially_inactive": 0.2},
        consumers={"n": 200, "sessions": 10},
        schemes=[{"label": "user-centric", "human": {"name": "user_centric"}, "ai": {"name": "causal"}}],
    )
    for key, value in overrides.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw


CASES: dict[str, Callable[[Path], dict]] = {
    "fitted": lambda run: _fitted(run),
    "word-of-mouth-everywhere": lambda run: _fitted(run, consumers={"social_share": 1.0}),
    "no-ai-listening": lambda run: _fitted(run, platform={"ai_listening_share": 0.0}),
    "corpus-three-arms": lambda run: small_scenario(run, steps=MONTHS),
}


def _run(model: RoyaltyModel, months: int) -> list[Listening]:
    """Step the model, keeping what its listeners produced each month."""
    seen: list[Listening] = []
    listen = model.consumers.listen

    def keep(*args: object) -> Listening:
        seen.append(listen(*args))
        return seen[-1]

    model.consumers.listen = keep  # type: ignore[method-assign]
    for _ in range(months):
        model.step()
    return seen


@pytest.mark.parametrize("case", list(CASES))
def test_same_seed_same_economy(run_dir: Path, case: str) -> None:
    scenario = validate_scenario(CASES[case](run_dir), source=case)
    world = build_world(scenario, scenario.seed)
    for arm in scenario.schemes:
        fast = RoyaltyModel(scenario, arm, seed=scenario.seed, world=world)
        slow = AgentRoyaltyModel(scenario, arm, seed=scenario.seed, world=world)
        for month, (a, b) in enumerate(zip(_run(fast, MONTHS), _run(slow, MONTHS), strict=True), start=1):
            assert (a.streams != b.streams).nnz == 0, f"{arm.label}, month {month}: stream matrices differ"
            for name in ("picks", "counts", "ai_plays", "ai_streams"):
                np.testing.assert_array_equal(
                    getattr(a, name), getattr(b, name), err_msg=f"{arm.label}, month {month}: {name}"
                )
        if case == "no-ai-listening":
            assert a.ai_plays.sum() == 0
        else:  # the AI branch is exercised
            assert a.ai_plays.sum() > 0

        records, reference = pd.DataFrame(fast.records), pd.DataFrame(slow.records)
        np.testing.assert_allclose(records.pop("consumer_welfare"), reference.pop("consumer_welfare"), rtol=1e-12)
        pd.testing.assert_frame_equal(records, reference, check_exact=True)
        pd.testing.assert_frame_equal(
            pd.DataFrame(fast.creator_records), pd.DataFrame(slow.creator_records), check_exact=True
        )
        # the same random stream was consumed: the generators end in the same state
        assert fast.rng.random() == slow.rng.random()


def test_one_listener_agent_per_listener_on_the_same_network(run_dir: Path) -> None:
    scenario = validate_scenario(_fitted(run_dir), source="test")
    world = build_world(scenario, scenario.seed)
    model = AgentRoyaltyModel(scenario, seed=scenario.seed, world=world)
    listeners = sorted(model.agents_by_type[Listener], key=lambda listener: listener.index)
    adjacency = world.consumers.adjacency
    assert [listener.index for listener in listeners] == list(range(scenario.consumers.n))
    for listener in listeners:
        row = adjacency.indices[adjacency.indptr[listener.index] : adjacency.indptr[listener.index + 1]]
        assert [n.index for n in listener.neighbours] == row.tolist()
    np.testing.assert_array_equal(model.consumers.fee, world.consumers.fee)


def _two_listeners() -> tuple[Listener, Listener]:
    model = mesa.Model(rng=0)
    taste = np.array([1.0, 0.0])
    a, b = (
        Listener(model, i, fee=1.0, volume=5, heavy=False, segment=0, taste=taste, ai_affinity=0.0, sessions=2)
        for i in range(2)
    )
    a.neighbours, b.neighbours = [b], [a]
    return a, b


def _month(active: list[bool], social: list[float]) -> Month:
    """Two creators, all choice mass on creator 0; listener 0's sessions copy when ``social`` < 0.5."""
    draws = ListeningDraws(
        ai=np.full((2, 2), 0.9),
        pick=np.full((2, 2), 0.3),
        social=np.array([social, [0.9, 0.9]]),
        copy=np.array([[0.6, 0.6], [0.0, 0.0]]),  # 0.6 * (1 neighbour * 2 sessions) -> its session 1
    )
    return Month(
        creator_cum=[[1.0, 1.0], [1.0, 1.0]], output_cum=[[], []], active=active,
        ai_quality=1.0, social_share=0.5, draws=draws,
    )


def test_listener_copies_a_neighbours_last_pick_by_hand() -> None:
    a, b = _two_listeners()
    b.last_picks = [0, 1]
    a.listen(_month([True, True], social=[0.1, 0.9]))
    assert a.picks == [1, 0]  # session 0 copies b's session 1; session 1 follows taste
    assert a.played == [3, 2]  # 5 streams over 2 sessions
    assert a.streams == {1: 3, 0: 2} and a.ai_streams == 0 and a.ai_plays == {}


def test_listener_plays_nothing_from_a_withdrawn_catalogue() -> None:
    a, b = _two_listeners()
    b.last_picks = [0, 0]
    # creator 0 (taste's choice, and what b played) has left: not copied, nothing played
    a.listen(_month([False, True], social=[0.1, 0.1]))
    assert a.picks == [0, 0] and a.played == [0, 0] and a.streams == {}
    a.remember()
    assert a.last_picks == [2, 2]  # "nothing" (n_creators + n_outputs): never copied by a neighbour
