"""The creators: :class:`Creator`, one Mesa agent per catalogue, which responds to what it is paid.

Each month a creator reads its royalty statement, updates an adaptive expectation of income and
decides: stay or exit (or re-enter), how many works to release, which strategy to play (one of
:data:`STRATEGIES`, learnt from what each strategy earned the creators who played it), and whether to
opt in to AI training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from royaltysim.agents.platform import Statement

if TYPE_CHECKING:
    from royaltysim.config import BehaviourConfig
    from royaltysim.model import RoyaltyModel

__all__ = ["Creator", "STRATEGIES"]

#: strategies a creator may play; which are available depends on the scenario's behaviour flags
STRATEGIES: tuple[str, ...] = ("plain", "flood", "imitate", "flood+imitate")


class Creator(mesa.Agent):
    """A creator: a catalogue, a style, costs and an outside option; responds to what it is paid.

    Money is in income units (the model's ``income_unit``: month-0 pool per creator).

    Args:
        model: the :class:`~royaltysim.model.RoyaltyModel`.
        index: position in the model's creator arrays.
        name: creator name.
        qualities: quality of each work in the starting catalogue.
        seconds_per_work: length of a new work.
        talent: quality scale of new works.
        outside_option: income a month the creator's time would earn elsewhere.
        enjoyment: money-equivalent a month of making music.
        ai_aversion: AI income a month below which the creator prefers to opt out of training.
        active: starts in the market.
        opted_in: starts opted in to AI training.
    """

    model: RoyaltyModel

    def __init__(
        self,
        model: RoyaltyModel,
        index: int,
        name: str,
        qualities: np.ndarray,
        seconds_per_work: float,
        talent: float,
        outside_option: float,
        enjoyment: float,
        ai_aversion: float,
        active: bool = True,
        opted_in: bool = True,
    ) -> None:
        super().__init__(model)
        self.index = index
        self.name = name
        self.qualities = qualities
        self.seconds_per_work = seconds_per_work
        self.training_works = float(self.qualities.size) if opted_in else 0.0
        self.training_seconds = self.training_works * seconds_per_work
        self.talent = talent
        self.outside_option = outside_option
        self.enjoyment = enjoyment
        self.ai_aversion = ai_aversion
        self.active = active
        self.opted_in = opted_in
        self.imitation = 0.0  # 0 = own style, 1 = the AI's
        self.strategy = "plain"
        self.expected: float | None = None  # adaptive expectation of income
        self.expected_ai: float | None = None
        self.costs = 0.0  # spent last month, charged against this month's income
        self.income = 0.0
        self.net = 0.0
        # events of the current month, read by data collection
        self.new_works = 0
        self.flood_works = 0
        self.entered = self.exited = self.opted_out = self.opted_back = False

    # --------------------------------------------------------------- state
    @property
    def qualities(self) -> np.ndarray:
        """Quality of each work in the catalogue; assign a whole new array to change it."""
        return self._qualities

    @qualities.setter
    def qualities(self, value: np.ndarray) -> None:
        self._qualities = np.asarray(value, dtype=float)
        # read several times a month by the model for every creator; worked out once per change
        self._appeal = float(self._qualities.sum())
        self._works = int(self._qualities.size)

    @property
    def works(self) -> int:
        return self._works

    @property
    def appeal(self) -> float:
        """Catalogue appeal: summed quality of works (more works -> more shelf space)."""
        return self._appeal

    @property
    def mean_quality(self) -> float:
        # the same number as qualities.mean(), which divides the same sum by the count
        return self._appeal / self._qualities.size if self._qualities.size else 0.0

    # --------------------------------------------------------------- month
    def respond(self, statement: Statement) -> None:
        """Read the month's statement and decide: exit/enter, strategy, releases, AI opt-in."""
        b: BehaviourConfig = self.model.config.behaviour
        unit = self.model.income_unit
        rng = self.model.rng
        self.new_works = self.flood_works = 0
        self.entered = self.exited = self.opted_out = self.opted_back = False
        ai_income = statement.ai_pay[self.index] / unit
        self.income = statement.human_pay[self.index] / unit + ai_income
        w = b.expectation_weight
        if self.active:
            self.net = self.income - self.costs
            self.expected = self.income if self.expected is None else (1 - w) * self.expected + w * self.income
            self.costs = 0.0
            if self.expected + self.enjoyment < self.outside_option and rng.random() < b.exit_rate:
                self.active, self.exited, self.strategy = False, True, "plain"
            else:
                self._choose_strategy(b, rng)
                self._release(b, rng)
        else:
            self.net = 0.0
            estimate = self.model.reentry_estimate(self.index, statement)
            if estimate + self.enjoyment >= self.outside_option and rng.random() < b.reentry_rate:
                self.active, self.entered = True, True
                self.expected = estimate
        if b.opt_out:
            self._decide_opt_in(statement, b, rng)

    def _choose_strategy(self, b: BehaviourConfig, rng: np.random.Generator) -> None:
        """Keep the strategy, try one at random, or revise by logit over what each strategy earned peers."""
        options = self.model.strategies
        if len(options) == 1:
            self.strategy = options[0]
        elif rng.random() < b.exploration:
            self.strategy = options[int(rng.integers(len(options)))]
        elif rng.random() < b.strategy_revision_rate:
            known = {s: r for s, r in self.model.strategy_returns.items() if s in options}
            if known:
                names = list(known)
                z = np.array([known[s] for s in names]) / b.strategy_temperature
                p = np.exp(z - z.max())
                self.strategy = names[int(rng.choice(len(names), p=p / p.sum()))]

    def _release(self, b: BehaviourConfig, rng: np.random.Generator) -> None:
        """Release new works (more when the expected marginal return beats the cost) and play the strategy."""
        appeal = max(self.appeal, 1e-9)
        marginal = max(self.expected or 0.0, 0.0) * self.talent / appeal  # income a typical new work adds
        multiplier = b.max_release_multiplier
        if b.cost_per_work > 0:
            multiplier = min(marginal / b.cost_per_work, b.max_release_multiplier)
        n_new = int(rng.poisson(b.release_rate * multiplier))
        # (drawing no works would consume no random numbers: skipping that draw leaves the stream as it is)
        new = [self.talent * rng.lognormal(0.0, b.work_sigma, n_new)] if n_new else []
        self.costs += n_new * b.cost_per_work
        if "flood" in self.strategy:
            new.append(np.full(b.flood_batch, b.flood_quality * self.talent))
            self.costs += b.flood_batch * b.cost_per_work * b.flood_cost_factor
            self.flood_works = b.flood_batch
        if "imitate" in self.strategy:
            self.imitation += b.imitation_speed * (1.0 - self.imitation)
            self.costs += b.imitation_cost
        else:
            self.imitation -= 0.5 * b.imitation_speed * self.imitation
        self.new_works = sum(int(works.size) for works in new)
        if new:
            self.qualities = np.concatenate([self.qualities, *new])
        if self.opted_in:  # opted-in releases join the AI's training set
            self.training_works += self.new_works
            self.training_seconds += self.new_works * self.seconds_per_work

    def _decide_opt_in(self, statement: Statement, b: BehaviourConfig, rng: np.random.Generator) -> None:
        """Opt in to AI training while the AI income one expects covers one's aversion to it."""
        unit = self.model.income_unit
        paid = statement.ai_pay if self.opted_in and self.active else statement.ai_counterfactual
        seen = paid[self.index] / unit
        w = b.expectation_weight
        self.expected_ai = seen if self.expected_ai is None else (1 - w) * self.expected_ai + w * seen
        if rng.random() >= b.opt_revision_rate:
            return
        want = self.expected_ai >= self.ai_aversion
        if want and not self.opted_in:
            self.opted_in, self.opted_back = True, True
            self.training_works, self.training_seconds = float(self.works), self.works * self.seconds_per_work
        elif not want and self.opted_in:
            self.opted_in, self.opted_out = False, True
