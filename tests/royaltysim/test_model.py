"""The economy: determinism, common random numbers, tidy results, money accounting, behaviour, no torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import royaltysim
from royaltysim.agents import Consumers, Creator, Statement, _sample_grouped
from royaltysim.config import validate_scenario
from royaltysim.model import CREATOR_COLUMNS, Roster, RoyaltyModel, build_world

from .conftest import small_scenario

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results(run_dir: Path) -> royaltysim.Results:
    return royaltysim.run(small_scenario(run_dir))


def test_results_are_tidy(results: royaltysim.Results) -> None:
    sc = results.scenario
    n_creators = results.creators["creator"].nunique()
    assert len(results.model) == len(sc.schemes) * sc.steps
    assert len(results.creators) == len(sc.schemes) * sc.steps * n_creators
    assert not results.model.duplicated(["scheme", "step"]).any()
    assert not results.creators.duplicated(["scheme", "step", "creator"]).any()
    for frame in (results.model, results.creators):
        assert {"scheme", "seed", "step"} <= set(frame.columns)
        assert (frame["seed"] == sc.seed).all()
    assert results.labels == sc.labels
    for col in ("gini_income_month", "top1_share_income_month", "top10_share_income_month", "theil_income_month",
                "atkinson_income_month", "share_below_line_month", "active_creators", "entries", "exits", "opt_outs",
                "new_works", "imitation_drift", "revenue", "platform_margin", "consumer_welfare",
                "ai_misallocation_month"):
        assert col in results.model.columns and results.model[col].notna().all(), col


def test_money_is_accounted_for(results: royaltysim.Results) -> None:
    m = results.model
    np.testing.assert_allclose(m["paid"] + m["unallocated"], m["human_pool"] + m["ai_pool"], rtol=1e-9)
    cut = results.scenario.platform.platform_cut
    assert (m["human_pool"] <= (1 - cut) * m["revenue"] + 1e-6).all()
    per_step = results.creators.groupby(["scheme", "step"])[["human_pay", "ai_pay"]].sum().sum(axis=1)
    np.testing.assert_allclose(per_step.to_numpy(), m.set_index(["scheme", "step"])["paid"].loc[per_step.index])


def test_same_seed_gives_identical_tables(run_dir: Path, results: royaltysim.Results) -> None:
    again = royaltysim.run(small_scenario(run_dir))
    pd.testing.assert_frame_equal(results.model, again.model)
    pd.testing.assert_frame_equal(results.creators, again.creators)
    other = royaltysim.run(small_scenario(run_dir), seed=4)
    assert (other.model["seed"] == 4).all()
    assert not np.allclose(other.model["consumer_welfare"], results.model["consumer_welfare"])


def test_arms_share_common_random_numbers(results: royaltysim.Results) -> None:
    first = results.model[results.model["step"] == 1].set_index("scheme")
    # month 1 is listened before anyone has responded to a scheme: identical in every arm
    assert first["human_pool"].nunique() == 1 and first["ai_pool"].nunique() == 1
    streams = results.creators[results.creators["step"] == 1].pivot(index="creator", columns="scheme", values="streams")
    assert (streams.nunique(axis=1) == 1).all()
    # ... while the AI pool is split differently by each rule
    ai = results.creators[results.creators["step"] == 1].pivot(index="creator", columns="scheme", values="ai_pay")
    assert not np.allclose(ai["pro-rata"], ai["causal"])


def test_causal_tracks_true_contribution_best(results: royaltysim.Results) -> None:
    mis = results.model.groupby("scheme")["ai_misallocation_month"].mean()
    assert mis["causal"] < mis["pro-rata"]


def test_creators_respond_to_pay(run_dir: Path) -> None:
    """Creators whose outside option dwarfs their income leave; creators who love the work stay."""
    def active_at_end(**behaviour: float) -> int:
        raw = small_scenario(run_dir, steps=8, behaviour={"exit_rate": 1.0, **behaviour})
        return int(royaltysim.run(raw).model.groupby("scheme")["active_creators"].last().min())

    n = royaltysim.run(small_scenario(run_dir, steps=1)).creators["creator"].nunique()
    assert active_at_end(outside_option_median=1000.0, enjoyment_median=1e-6) < n // 2
    assert active_at_end(outside_option_median=1e-6, enjoyment_median=1.0) == n


def test_model_uses_the_mesa_api(run_dir: Path) -> None:
    sc = validate_scenario(small_scenario(run_dir))
    model = RoyaltyModel(sc, "causal")
    model.step()
    assert model.steps == 1
    assert len(model.agents_by_type[Creator]) == model.world.n_creators
    assert model.records[-1]["scheme"] == "causal"
    with pytest.raises(ValueError, match="labels"):
        RoyaltyModel(sc, "nope", world=model.world)


def _busy_model(run_dir: Path, months: int) -> RoyaltyModel:
    """A model whose creators exit, flood, imitate and opt out, stepped ``months`` months."""
    behaviour = {"flooding": True, "imitation": True, "opt_out": True, "exploration": 0.3}
    model = RoyaltyModel(validate_scenario(small_scenario(run_dir, behaviour=behaviour)), "causal")
    for _ in range(months):
        model.step()
    return model


def test_roster_reads_each_creators_state(run_dir: Path) -> None:
    model = _busy_model(run_dir, 3)
    roster = model.roster()
    creators = model.creators
    for name in ("active", "opted_in", "entered", "exited", "opted_out", "opted_back", "works", "new_works",
                 "flood_works", "appeal", "imitation", "training_works", "training_seconds", "costs", "net"):
        np.testing.assert_array_equal(getattr(roster, name), [getattr(c, name) for c in creators], err_msg=name)
    np.testing.assert_array_equal(roster.expected, [np.nan if c.expected is None else c.expected for c in creators])
    assert roster.strategy.tolist() == [c.strategy for c in creators]
    np.testing.assert_array_equal(roster.mean_quality, [c.mean_quality for c in creators])
    np.testing.assert_array_equal(roster.playing("flood"), [c.active and "flood" in c.strategy for c in creators])
    # a roster keeps what it read: the creators as they were
    was = roster.active.copy()
    creators[0].active = not creators[0].active
    np.testing.assert_array_equal(roster.active, was)
    assert Roster(creators).active[0] == creators[0].active


def test_strategy_returns_are_mean_relative_returns_per_strategy(run_dir: Path) -> None:
    """What creators learn from the market, against its definition computed creator by creator."""
    model = _busy_model(run_dir, 1)
    read_market = model._read_market
    checked = []

    def check(statement: Statement, market: Roster) -> None:
        floor = model.config.metrics.subsistence_line
        by_strategy: dict[str, list[float]] = {}
        for c in model.creators:
            if c.active and c.expected is not None:
                net = (statement.human_pay[c.index] + statement.ai_pay[c.index]) / model.income_unit - c.costs
                r = min(max(float(net / max(c.expected, floor) - 1.0), -1.0), 2.0)
                by_strategy.setdefault(c.strategy, []).append(r)
        active = [c for c in model.creators if c.active]
        appeal = sum(c.appeal for c in active)
        read_market(statement, market)
        assert list(model.strategy_returns.items()) == [(s, float(np.mean(v))) for s, v in by_strategy.items()]
        assert model.human_rate == sum(statement.human_pay[c.index] for c in active) / appeal
        checked.append(len(by_strategy))

    model._read_market = check  # type: ignore[method-assign]
    for _ in range(4):
        model.step()
    assert max(checked) > 1  # several strategies were compared


def test_creator_records_are_made_into_rows_when_asked_for(run_dir: Path) -> None:
    model = _busy_model(run_dir, 2)
    n = len(model.creators)
    rows = model.creator_records
    assert len(rows) == 2 * n and all(tuple(row) == CREATOR_COLUMNS for row in rows)
    model.step()
    assert model.creator_records is rows and len(rows) == 3 * n  # the same list, grown by the new month
    last = rows[-n:]
    for row, c in zip(last, model.creators, strict=True):
        assert (row["scheme"], row["seed"], row["step"], row["creator"]) == ("causal", model.seed, 3, c.name)
        assert (row["active"], row["opted_in"], row["strategy"], row["works"], row["new_works"]) == (
            c.active, c.opted_in, c.strategy, c.works, c.new_works
        )
        assert (row["net_income"], row["imitation"]) == (c.net, c.imitation)
        assert row["income"] == pytest.approx(c.income, rel=1e-12)
        assert row["expected_income"] == c.expected or (c.expected is None and np.isnan(row["expected_income"]))
        assert [type(row[k]) for k in ("active", "works", "streams", "net_income", "strategy")] == [
            bool, int, float, float, str
        ]
    month = pd.DataFrame(last)
    assert month["human_pay"].sum() + month["ai_pay"].sum() == pytest.approx(model.records[-1]["paid"], rel=1e-12)


def test_listening_is_vectorised_and_adds_up(run_dir: Path) -> None:
    sc = validate_scenario(small_scenario(run_dir))
    world = build_world(sc)
    consumers: Consumers = world.consumers.copy()
    model = RoyaltyModel(sc, world=world)
    listening = consumers.listen(*model._choices(model.roster()), np.ones(world.n_creators, bool), 1.0, model.rng)
    total = listening.human_streams + listening.ai_streams
    np.testing.assert_array_equal(total, consumers.volume)
    assert listening.ai_plays.sum() == listening.ai_streams.sum()
    heavy = consumers.heavy
    assert total[heavy].mean() > 2 * total[~heavy].mean()


def test_grouped_sampling_follows_each_groups_distribution() -> None:
    cum = np.cumsum(np.array([[0.5, 0.5, 0.0], [0.0, 0.1, 0.9]]), axis=1)
    group = np.repeat([0, 1], 20000)
    draws = _sample_grouped(cum, group, np.random.default_rng(0).random(group.size))
    assert set(draws[group == 0]) == {0, 1}
    assert np.mean(draws[group == 1] == 2) == pytest.approx(0.9, abs=0.01)


def test_running_a_scenario_never_imports_torch(run_dir: Path) -> None:
    code = (
        "import sys, royaltysim, royaltysim.cli, royaltysim.report\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from tests.royaltysim.conftest import small_scenario\n"
        "from pathlib import Path\n"
        f"royaltysim.run(small_scenario(Path({str(run_dir)!r}), steps=2))\n"
        "assert 'torch' not in sys.modules, 'royaltysim imported torch'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


def test_import_is_light() -> None:
    code = "import sys, royaltysim; print(','.join(m for m in ('torch', 'pandas', 'mesa') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
