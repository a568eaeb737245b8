"""The platform: :class:`Platform`, a Mesa agent that collects fees, keeps its cut and settles the month.

It settles a human-streams pool and an AI royalty pool with the scheme of each pool (looked up by name
in :mod:`royaltysim.schemes`; the platform never branches on a scheme's name), reading the creators'
side of the market as a :class:`Catalogue` and reporting the month as a :class:`Statement`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mesa
import numpy as np

from royaltysim.agents.consumers import Consumers, Listening
from royaltysim.schemes import Settlement
from royaltysim.schemes import pay as registry_pay
from royaltysim.shapley import sampling_errors

if TYPE_CHECKING:
    from royaltysim.config import Arm, PlatformConfig
    from royaltysim.fraud import FraudFarm

__all__ = ["Catalogue", "Statement", "Platform"]


@dataclass
class Catalogue:
    """The creators' side of the market at settlement time, as arrays indexed by creator."""

    works: np.ndarray
    training_works: np.ndarray
    training_seconds: np.ndarray
    active: np.ndarray
    opted_in: np.ndarray
    similarity: np.ndarray


@dataclass
class Statement:
    """What the platform reports after settling a month (money in the fee currency)."""

    revenue: float
    human_pool: float
    ai_pool: float
    human_pay: np.ndarray
    ai_pay: np.ndarray
    ai_counterfactual: np.ndarray
    unallocated_human: float
    unallocated_ai: float
    ai_cost: float
    ai_stream_share: float
    ai_eligible: np.ndarray  # (n_creators,) who could be paid from the AI pool (active and opted in)
    # the stream farm (royaltysim.fraud), zero without one: what its uploads were paid from each pool, the
    # streams it faked and how many of them were detected and demonetised, what its bots paid, its uploads
    fraud_human_paid: float = 0.0
    fraud_ai_paid: float = 0.0
    fraud_streams: float = 0.0
    demonetised_streams: float = 0.0
    bot_fees: float = 0.0
    fraud_uploads: int = 0
    # a sampled Shapley rule's error this month (royaltysim.shapley.sampling_errors): the largest standard error of a
    # creator's share of the pool it split, and the orders sampled; NaN and 0 when no rule sampled
    ai_shapley_se: float = float("nan")
    ai_shapley_permutations: int = 0

    @property
    def paid(self) -> float:
        """Royalties paid to creators (fraud uploads not included)."""
        return float(self.human_pay.sum() + self.ai_pay.sum())

    @property
    def fraud_paid(self) -> float:
        """Royalties paid to fraud uploads, from both pools."""
        return self.fraud_human_paid + self.fraud_ai_paid

    @property
    def profit(self) -> float:
        """Platform profit: revenue (bots' fees included) less all royalties and the AI's serving cost."""
        return self.revenue - self.paid - self.fraud_paid - self.ai_cost

    @property
    def margin(self) -> float:
        """Platform margin: what it keeps after royalties and AI serving costs, over revenue."""
        return self.profit / self.revenue if self.revenue > 0 else 0.0


class Platform(mesa.Agent):
    """Collects fees, keeps its cut, and settles the human and AI pools under the arm's schemes.

    Args:
        model: the model.
        config: platform settings.
        arm: the rules of the two pools.
        attribution: (n_outputs, n_creators) causal scores of the AI's outputs.
        pay: the settlement function (defaults to the scheme registry's ``pay``); tests may swap it.
        reference: (n_outputs, n_creators) true contribution shares (Shapley Royalty Share values on them);
            zeros when left out.
        fraud: a stream farm (:class:`~royaltysim.fraud.FraudFarm`) whose bots and uploads join each month's
            settlement; None: no fraud.
    """

    def __init__(
        self,
        model: mesa.Model,
        config: PlatformConfig,
        arm: Arm,
        attribution: np.ndarray,
        pay: Callable[..., np.ndarray] = registry_pay,
        reference: np.ndarray | None = None,
        fraud: FraudFarm | None = None,
    ) -> None:
        super().__init__(model)
        self.config = config
        self.arm = arm
        self.attribution = attribution
        self.reference = reference
        self.fraud = fraud
        self._pay = pay

    def ai_user_pool(self, revenue_ai: np.ndarray, ai_streams: np.ndarray) -> np.ndarray:
        """(n_users,) what each listener's month pays into the AI pool, under the arm's ``ai_pool`` terms.

        Without terms: ``platform.ai_pool_rate`` of the AI's share of the listener's fee. With terms
        (GEMA-style): ``max(rate * income, minimum_per_play * AI streams)``, ``income`` gross or net of
        the AI's serving cost of those streams.
        """
        terms = self.arm.ai_pool
        if terms is None:
            return self.config.ai_pool_rate * revenue_ai
        income = revenue_ai
        if terms.income == "net":
            income = np.maximum(revenue_ai - self.config.ai_cost_per_stream * ai_streams, 0.0)
        return np.maximum(terms.rate * income, terms.minimum_per_play * ai_streams)

    def settle(self, listening: Listening, consumers: Consumers, catalogue: Catalogue) -> Statement:
        """Split the month's revenue: platform cut, human pool, AI pool; pay each under its scheme.

        With a stream farm, its bots join the human pool as listeners and its uploads as payees after
        the creators (:meth:`FraudFarm.extend <royaltysim.fraud.FraudFarm.extend>`); every scheme pays
        them by its own rule, and what they get is split off and reported as fraud.
        """
        cfg = self.config
        human = listening.human_streams
        total = human + listening.ai_streams
        ai_frac = np.divide(listening.ai_streams, total, out=np.zeros_like(total), where=total > 0)
        fee = consumers.charged  # (n_users,) what each listener paid this month (nothing when not subscribed)
        revenue_h = fee * (1.0 - ai_frac)  # (n_users,) revenue attributed to human listening
        revenue_ai = fee * ai_frac
        user_pool_h = (1.0 - cfg.platform_cut) * revenue_h
        user_pool_ai = self.ai_user_pool(revenue_ai, listening.ai_streams)
        human_rule, ai_rule = self.arm.rules_at(self.model.steps)  # (a schedule may change them in this month)
        base = Settlement(
            pool=float(user_pool_h.sum()),
            streams=listening.streams,
            user_pool=user_pool_h,
            works=catalogue.works,
            training_works=np.where(catalogue.opted_in, catalogue.training_works, 0.0),
            training_seconds=np.where(catalogue.opted_in, catalogue.training_seconds, 0.0),
            ai_plays=listening.ai_plays,
            attribution=self.attribution,
            similarity=catalogue.similarity,
            eligible=catalogue.active,
            reference=self.reference,
        )
        n = catalogue.active.size
        ai_eligible = catalogue.active & catalogue.opted_in
        training_works, training_seconds = catalogue.training_works, catalogue.training_seconds
        farm = self.fraud.month(self.model.steps) if self.fraud is not None else None
        if farm is not None:
            base, ai_eligible = self.fraud.extend(base, farm, (1.0 - cfg.platform_cut) * farm.fees, ai_eligible)
            user_pool_ai = np.concatenate([user_pool_ai, np.zeros(farm.fees.size)])  # bots play no AI
            pad = np.zeros(farm.uploads)
            training_works, training_seconds = np.append(training_works, pad), np.append(training_seconds, pad)
        human_all = self._pay(human_rule.name, base, **human_rule.params)
        ai_settlement = base.derive(pool=float(user_pool_ai.sum()), user_pool=user_pool_ai, eligible=ai_eligible)
        with sampling_errors() as sampled:  # only the month's settlement, not the rate card below
            ai_all = self._pay(ai_rule.name, ai_settlement, **ai_rule.params)
        # what each creator would earn from the AI pool if everyone took part: the "rate card" that
        # creators who are out (of the market or of training) weigh when deciding to come back in
        everyone = np.ones_like(ai_eligible)
        counterfactual = self._pay(
            ai_rule.name,
            ai_settlement.derive(eligible=everyone, training_works=training_works, training_seconds=training_seconds),
            **ai_rule.params,
        )
        human_pay, ai_pay = human_all[:n], ai_all[:n]
        fraud = {}
        if farm is not None:
            fraud = {
                "fraud_human_paid": float(human_all[n:].sum()),
                "fraud_ai_paid": float(ai_all[n:].sum()),
                "fraud_streams": farm.faked,
                "demonetised_streams": farm.demonetised,
                "bot_fees": float(farm.fees.sum()),
                "fraud_uploads": farm.uploads,
            }
        ai_streams = float(listening.ai_plays.sum())
        return Statement(
            revenue=float(fee.sum()) + fraud.get("bot_fees", 0.0),
            human_pool=base.pool,
            ai_pool=ai_settlement.pool,
            human_pay=human_pay,
            ai_pay=ai_pay,
            unallocated_human=base.pool - float(human_all.sum()),
            unallocated_ai=ai_settlement.pool - float(ai_all.sum()),
            ai_cost=cfg.ai_cost_per_stream * ai_streams,
            ai_stream_share=ai_streams / float(total.sum()) if total.sum() > 0 else 0.0,
            ai_eligible=ai_settlement.eligible[:n],
            ai_counterfactual=counterfactual[:n],
            ai_shapley_se=max((e.share_se for e in sampled), default=float("nan")),
            ai_shapley_permutations=max((e.permutations for e in sampled), default=0),
            **fraud,
        )
