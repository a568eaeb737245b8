"""The dashboard's model and figures: every arm of a scenario stepped side by side, month by month.

:class:`DashboardModel` is the ``mesa.Model`` that ``royaltysim dashboard`` (:mod:`royaltysim.dashboard_page`)
puts on a Mesa SolaraViz page. It builds one world for the chosen seed and runs one
:class:`~royaltysim.model.RoyaltyModel` per arm on it with that seed -- the common random numbers of
``royaltysim run`` -- so whatever differs between the arms on the page comes from their rules. Its
keyword arguments are the page's controls (:func:`model_params`): the seed, months, listeners, the
platform's cut, the AI's share of listening, the AI pool rate, and each arm's human and AI scheme;
they overlay the scenario and are validated as a scenario is, so a scheme that cannot pay a pool is
refused with the scenario's own message (shown on the page; the arm keeps its scheme).

The figures are pure functions of a model's state to a matplotlib :class:`~matplotlib.figure.Figure`
(no pyplot, so no global state between sessions), one panel per arm where arms are compared side by
side: :func:`lorenz_figure` (whole-run income so far), :func:`gini_figure` (the month's Gini, arms on
one axis), :func:`payouts_figure` (money paid per creator so far, human and AI pool) and
:func:`ai_split_figure` (who got the AI pool, and what no one could be paid). :func:`summary_rows`
gives the numbers the page prints under them.

This module imports neither solara nor torch; the page does (``pip install -e ".[dashboard]"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache, wraps
from pathlib import Path
from typing import Any

import mesa
import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure

from royaltysim import metrics
from royaltysim.config import Scenario, ScenarioError, validate_scenario

__all__ = ["DashboardModel", "ArmState", "model_params", "lorenz_figure", "gini_figure", "payouts_figure",
           "ai_split_figure", "summary_rows", "SLIDERS"]

#: the scenario values the page's sliders set: keyword -> (dotted scenario path, label, min, max, step)
SLIDERS: dict[str, tuple[str, str, float, float, float]] = {
    "listeners": ("consumers.n", "Listeners", 1_000, 50_000, 1_000),
    "platform_cut": ("platform.platform_cut", "Platform cut", 0.0, 0.6, 0.01),
    "ai_listening_share": ("platform.ai_listening_share", "AI share of listening", 0.0, 0.5, 0.01),
    "ai_pool_rate": ("platform.ai_pool_rate", "AI pool rate", 0.0, 1.0, 0.05),
}
_MONTHS = (1, 120)
_SEEDS = (0, 99)
_TOP_CREATORS = 12  # creators named in the payouts figure
_TOP_AI = 8  # creators named in the AI pool's split


@lru_cache(maxsize=4)
def _table(run: str, outputs: str):
    """The attribution table of a run, read once per server process (a reset must not re-read it)."""
    from attribution.table import AttributionTable

    return AttributionTable.load(run, outputs=outputs)


@lru_cache(maxsize=4)
def _names(run: str, outputs: str, creators: tuple[str, ...]) -> dict[str, str]:
    from royaltysim.names import readable_names

    return readable_names(list(creators), _table(run, outputs).corpus)


def _arm_key(index: int, pool: str) -> str:
    return f"arm{index + 1}_{pool}"


def _set(raw: dict, path: str, value: Any) -> None:
    from royaltysim.sweep import set_path

    set_path(raw, path, value)


def model_params(scenario: Scenario) -> dict[str, Any]:
    """SolaraViz ``model_params`` for ``scenario``: its sliders and scheme menus at the scenario's values.

    The scenario itself is a fixed parameter (Mesa passes it back to :class:`DashboardModel` on every
    reset). A slider's range is widened to hold the scenario's value when that lies outside it.
    """
    from royaltysim.schemes import scheme_names
    from royaltysim.sweep import get_path

    raw = scenario.model_dump(mode="json")
    params: dict[str, Any] = {
        "scenario": scenario,
        "seed": {"type": "SliderInt", "value": scenario.seed, "label": "Seed", "min": _SEEDS[0], "max": _SEEDS[1],
                 "step": 1},
        "months": {"type": "SliderInt", "value": min(max(scenario.steps, _MONTHS[0]), _MONTHS[1]), "label": "Months",
                   "min": _MONTHS[0], "max": _MONTHS[1], "step": 1},
    }
    for key, (path, label, lo, hi, step) in SLIDERS.items():
        value = get_path(raw, path)
        integer = isinstance(step, int) and isinstance(lo, int)
        params[key] = {"type": "SliderInt" if integer else "SliderFloat", "value": value, "label": label,
                       "min": min(lo, value), "max": max(hi, value), "step": step}
    names = scheme_names()
    for i, arm in enumerate(scenario.schemes):
        for pool, spec in (("human", arm.human), ("ai", arm.ai)):
            params[_arm_key(i, pool)] = {"type": "Select", "value": spec.name, "values": names,
                                         "label": f"{arm.label}: {pool} pool"}
    return params


@dataclass
class ArmState:
    """One arm's money so far, per creator (arrays in the population's creator order)."""

    label: str
    human_pay: np.ndarray  # $ paid from the human pool
    ai_pay: np.ndarray  # $ paid from the AI pool
    income: np.ndarray  # income units (month-0 pool per creator), both pools
    ai_pool: float = 0.0  # $ paid into the AI pool
    unallocated_ai: float = 0.0  # $ of the AI pool no creator could be paid


class DashboardModel(mesa.Model):
    """Every arm of a scenario on one world and seed, stepped together (one step = one month of each arm).

    Args:
        scenario: the validated scenario (its ``source.run`` is read, never written).
        seed: the world's and every arm's seed (default: the scenario's).
        months: months to run before the model stops (default: the scenario's ``steps``).
        listeners, platform_cut, ai_listening_share, ai_pool_rate: overlay the scenario (:data:`SLIDERS`).
        **kwargs: ``arm<i>_human`` / ``arm<i>_ai`` (``i`` from 1): a registered scheme name for that arm's pool;
            the arm's own parameters are kept when the name is its own, the scheme's defaults used otherwise.

    Attributes:
        config: the scenario the arms run (the overlay applied).
        problem: why an overlay was refused ("" when none was); the arms then run the scenario's own schemes.
        arms: one :class:`~royaltysim.model.RoyaltyModel` per arm; ``states`` their money so far.
        names: readable name of each creator, in the population's order.
    """

    def __init__(self, scenario: Scenario, *, seed: int | None = None, months: int | None = None,
                 listeners: int | None = None, platform_cut: float | None = None,
                 ai_listening_share: float | None = None, ai_pool_rate: float | None = None, **kwargs: str) -> None:
        schemes = kwargs  # named kwargs: Mesa's parameter check only lets a catch-all of that name through
        seed = scenario.seed if seed is None else int(seed)
        super().__init__(rng=seed)
        from royaltysim.model import RoyaltyModel, build_world

        known = {_arm_key(i, pool) for i in range(len(scenario.schemes)) for pool in ("human", "ai")}
        unknown = sorted(set(schemes) - known)
        if unknown:
            raise TypeError(f"DashboardModel got unknown keyword(s) {unknown}; scheme keywords are {sorted(known)}")
        values = {"listeners": listeners, "platform_cut": platform_cut, "ai_listening_share": ai_listening_share,
                  "ai_pool_rate": ai_pool_rate}
        raw = scenario.model_dump(mode="json")
        for key, value in values.items():
            if value is not None:
                _set(raw, SLIDERS[key][0], int(value) if key == "listeners" else float(value))
        numbers_only = {**raw, "schemes": [dict(a) for a in raw["schemes"]]}
        for i, arm in enumerate(scenario.schemes):
            for pool, spec in (("human", arm.human), ("ai", arm.ai)):
                name = schemes.get(_arm_key(i, pool))
                if name and name != spec.name:
                    raw["schemes"][i][pool] = {"name": name, "params": {}}
        self.problem = ""
        try:
            config = validate_scenario(raw, source="the dashboard's settings", check_files=False)
        except ScenarioError as err:
            self.problem = str(err)
            config = validate_scenario(numbers_only, source="the dashboard's settings", check_files=False)
        self.config = config
        self.seed = seed
        self.months = int(months) if months is not None else config.steps
        src = config.source
        table = _table(str(Path(src.run)), src.outputs)
        world = build_world(config, seed, table)
        self.arms = [RoyaltyModel(config, arm, seed=seed, world=world) for arm in config.schemes]
        n = world.n_creators
        self.creators = list(world.population.names)
        readable = _names(str(Path(src.run)), src.outputs, tuple(self.creators))
        self.names = [readable.get(c, c) for c in self.creators]
        self.states = [ArmState(a.label, np.zeros(n), np.zeros(n), np.zeros(n)) for a in config.schemes]
        self._seen = [0] * len(self.arms)
        self.running = self.months > 0

    def step(self) -> None:
        """One month of every arm, then each arm's money so far is brought up to date."""
        for k, (arm, state) in enumerate(zip(self.arms, self.states)):
            arm.step()
            rows = arm.creator_records
            new, self._seen[k] = rows[self._seen[k]:], len(rows)
            for pay, column in ((state.human_pay, "human_pay"), (state.ai_pay, "ai_pay"), (state.income, "income")):
                pay += np.array([r[column] for r in new])  # one row per creator, in the population's order
            state.ai_pool += float(arm.records[-1]["ai_pool"])
            state.unallocated_ai += float(arm.records[-1]["unallocated_ai"])
        self.running = self.steps < self.months

    @property
    def month(self) -> int:
        """Months simulated so far."""
        return len(self.arms[0].records) if self.arms else 0


# ------------------------------------------------------------------ figures (one panel per arm)
# A Mesa page shows each component at half the page's width: figures are drawn small, with small type, so
# their text stays readable at that width
_STYLE = {"font.size": 7, "axes.titlesize": 8, "xtick.labelsize": 6, "ytick.labelsize": 6, "legend.fontsize": 6}


def _styled(make):
    @wraps(make)
    def draw(model: DashboardModel) -> Figure:
        with rc_context(_STYLE):
            return make(model)

    return draw


def _panels(model: DashboardModel, title: str, height: float = 2.6) -> tuple[Figure, list]:
    n = max(len(model.states), 1)
    fig = Figure(figsize=(2.3 * n, height), layout="tight")
    axes = fig.subplots(1, n, squeeze=False)[0]
    fig.suptitle(title, fontsize=9)
    return fig, list(axes)


def _waiting(ax, model: DashboardModel) -> bool:
    if model.month == 0:
        ax.text(0.5, 0.5, "press Step or \u25b6", ha="center", va="center", transform=ax.transAxes, color="0.4")
        return True
    return False


@_styled
def lorenz_figure(model: DashboardModel) -> Figure:
    """Lorenz curve of each arm's whole-run income so far (every creator, those who left included)."""
    fig, axes = _panels(model, f"Lorenz curves of income, months 1-{model.month}")
    for ax, state in zip(axes, model.states):
        ax.plot([0, 1], [0, 1], color="0.75", lw=1, label="equality")
        if not _waiting(ax, model):
            x, y = metrics.lorenz(np.maximum(state.income, 0.0))
            ax.fill_between(x, y, x, color="C0", alpha=0.15)
            ax.plot(x, y, color="C0", lw=2, drawstyle="steps-post")
            ax.text(0.04, 0.9, f"Gini {metrics.gini(np.maximum(state.income, 0.0)):.3f}", transform=ax.transAxes)
        ax.set(title=state.label, xlim=(0, 1), ylim=(0, 1), xlabel="share of creators (poorest first)")
    axes[0].set_ylabel("share of income")
    return fig


@_styled
def gini_figure(model: DashboardModel) -> Figure:
    """The month's Gini of income among the creators in the market, per arm over the months (one axis)."""
    fig = Figure(figsize=(6.0, 2.6), layout="tight")
    ax = fig.subplots()
    for k, arm in enumerate(model.arms):
        steps = [r["step"] for r in arm.records]
        ax.plot(steps, [r["gini"] for r in arm.records], marker="o", ms=3, color=f"C{k}", label=arm.arm.label)
    if not _waiting(ax, model):
        ax.legend(loc="best")
    ax.set(title="Gini of the month's income (creators in the market)", xlabel="month", ylabel="Gini",
           xlim=(0.5, max(model.months, 1) + 0.5), ylim=(0, 1))
    return fig


def _short(name: str, width: int = 20) -> str:
    """``name`` in at most ``width`` characters, keeping its end (collections differ in their volume numbers)."""
    return name if len(name) <= width else name[: width - 9].rstrip() + "\u2026" + name[-8:]


def _order(values: Sequence[np.ndarray], top: int) -> np.ndarray:
    """The ``top`` creators with most money summed over the arms, most first (one order for every panel)."""
    total = np.sum(values, axis=0)
    return np.argsort(-total, kind="stable")[:top]


@_styled
def payouts_figure(model: DashboardModel) -> Figure:
    """Money paid to each creator so far (top creators over all arms), human and AI pool stacked, per arm."""
    fig, axes = _panels(model, f"Payouts by creator, months 1-{model.month} ($)", height=3.2)
    order = _order([s.human_pay + s.ai_pay for s in model.states], _TOP_CREATORS)
    labels = [_short(model.names[i]) for i in order]
    y = np.arange(len(order))[::-1]
    for k, (ax, state) in enumerate(zip(axes, model.states)):
        if not _waiting(ax, model):
            ax.barh(y, state.human_pay[order], color="C7", label="human pool")
            ax.barh(y, state.ai_pay[order], left=state.human_pay[order], color="C1", label="AI pool")
        ax.set_yticks(y, labels if k == 0 else [""] * len(y), fontsize=6)
        ax.set_title(state.label)
    axes[-1].legend(loc="lower right")
    return fig


@_styled
def ai_split_figure(model: DashboardModel) -> Figure:
    """Each arm's AI pool so far split among creators (top creators, the rest together) and left unpaid."""
    fig, axes = _panels(model, f"Who got the AI pool, months 1-{model.month} (share of the pool)", height=3.0)
    order = _order([s.ai_pay for s in model.states], _TOP_AI)
    labels = [_short(model.names[i]) for i in order] + ["all others", "paid to no one"]
    y = np.arange(len(labels))[::-1]
    for k, (ax, state) in enumerate(zip(axes, model.states)):
        if not _waiting(ax, model) and state.ai_pool > 0:
            named = state.ai_pay[order]
            shares = np.concatenate([named, [state.ai_pay.sum() - named.sum(), state.unallocated_ai]]) / state.ai_pool
            ax.barh(y, shares, color=["C1"] * len(order) + ["C7", "C3"])
            for yy, s in zip(y, shares):
                ax.text(s + 0.01, yy, f"{s:.0%}", va="center", fontsize=6)
        ax.set_yticks(y, labels if k == 0 else [""] * len(y), fontsize=6)
        ax.set(title=state.label, xlim=(0, 1.15))
    return fig


def summary_rows(model: DashboardModel) -> list[dict[str, Any]]:
    """Per arm: its schemes, and (so far) the Gini and top-10% share of income, the AI pool paid in ($),
    its largest recipient with their share, and the share no one could be paid."""
    rows = []
    for arm, state in zip(model.arms, model.states):
        human, ai = arm.arm.rules_at(max(model.month, 1))
        income = np.maximum(state.income, 0.0)
        top = int(np.argmax(state.ai_pay)) if state.ai_pool > 0 else None
        rows.append({
            "arm": state.label, "schemes": f"{human.name} / {ai.name}", "month": model.month,
            "gini": metrics.gini(income), "top10_share": metrics.top_share(income, 0.10),
            "ai_pool": state.ai_pool,
            "ai_top": model.names[top] if top is not None else "",
            "ai_top_share": state.ai_pay[top] / state.ai_pool if top is not None else 0.0,
            # (a scheme that pays everything leaves a rounding residue of either sign)
            "ai_unpaid_share": max(state.unallocated_ai / state.ai_pool, 0.0) if state.ai_pool > 0 else 0.0,
        })
    return rows
