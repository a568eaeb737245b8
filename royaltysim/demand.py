"""The demand side: what listening is worth to listeners in money, and who subscribes.

* :class:`DemandConfig` -- the scenario's ``demand:`` section. ``demand.enabled: false`` (the default)
  keeps every listener subscribed, as the calibrated economy has them; the money values below are
  reported either way.
* :class:`Demand` -- one model's listeners' willingness to pay, the month's value of the service to
  each, and (when enabled) their monthly choice to stay, leave or join.
* :func:`listener_utility` -- each listener's stream-weighted utility of what they played (the
  per-listener terms whose mean is the model's ``consumer_welfare``).

The rule (every symbol a documented parameter; docs/ODD.md 7.8):

* a listener's base willingness to pay ``w_i`` ($ a month) is lognormal around ``wtp_premium`` for
  premium listeners and ``wtp_ad`` for ad-supported ones (money-equivalent of the ad tier), spread
  ``wtp_sigma``;
* the month's value ``v_i = w_i * 2 * sigmoid(quality_weight * (U_i - U_i1) - ai_weight * (A_i - A_i1))``,
  with ``U_i`` the listener's stream-weighted utility this month (taste match + log relative quality,
  as in ``consumer_welfare``) and ``A_i`` their AI share of streams, each against the listener's own
  first month (``U_i1``, ``A_i1``): music that got better or better matched is worth more, and with
  ``ai_weight > 0`` more AI in one's listening is worth less. The value is ``w_i`` at the first
  month's experience and stays between 0 and ``2 w_i``: utility's log-quality term is heavy-tailed
  (talent is lognormal with spread 3.7), and an exponential would let a few months of better
  matches multiply what a subscription is worth several times over. A listener who is not
  subscribed values what the catalogue would give them: their taste segment's mean utility this
  month, and their expected AI share (AI affinity times AI quality);
* the price ``p_i`` is the listener's fee (``consumers.premium_fee``, or for ad-supported listeners
  ``consumers.ad_revenue``: the attention their ads cost them, valued at what advertisers pay);
* consumer surplus is ``sum over subscribers of (v_i - p_i)``;
* with ``enabled``, at the end of each month a subscriber leaves with probability
  ``sigmoid(alpha - x_i)`` and a non-subscriber joins with probability ``sigmoid(beta + x_i)``, where
  ``x_i = log(v_i / p_i) / markup_scale``: a higher price, worse music or (with ``ai_weight``) more AI
  raise churn and lower joining. ``alpha`` and ``beta`` are calibrated once, at the reference price
  of each tier (its median willingness to pay over ``1 + reference_markup``: the calibrated
  $4.85 and $0.40 by default) and the first month's experience: there the expected churn of the
  starting subscribers is ``churn_rate`` and expected joins equal expected churns, so the market
  stays the size it starts at. A scenario that raises the price above the reference price loses
  subscribers; one whose rules improve what listeners hear gains them.

Randomness: a stream of its own (seeded by the model's seed), so every arm of a seed draws the same
willingness to pay, the same starting subscribers and the same uniforms for each month's decisions;
arms then differ only by what their rules did to listening. Without ``enabled`` it draws nothing
from the model's generator, so runs are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DemandConfig", "Demand", "DemandMonth", "listener_utility"]

# the demand side's generator is seeded with (seed, _DEMAND_STREAM): it never shifts the world's or the model's
_DEMAND_STREAM = 0xDE3A


class DemandConfig(BaseModel):
    """The scenario's ``demand:`` section: listeners join and churn (off by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = Field(False, description="listeners join and churn; off: everyone stays subscribed")
    # assumption: the simulated listeners are the potential market, of which this share subscribes at the start
    subscribed_share: float = Field(0.8, gt=0.0, le=1.0, description="share of the listeners subscribed at the start")
    # assumption: streaming-facts.md publishes no churn; low single-digit monthly churn is what subscription
    # services commonly report
    churn_rate: float = Field(0.03, gt=0.0, lt=1.0, description="subscribers' mean monthly churn at the reference price")
    # assumption: the median listener values the service at 1.5x the calibrated price; each tier's reference price
    # (where churn is calibrated) is its median willingness to pay / (1 + reference_markup): $4.85 and $0.40
    reference_markup: float = Field(0.5, gt=-1.0, description="median value over reference price, less 1")
    wtp_premium: float = Field(7.275, gt=0.0, description="median willingness to pay of a premium listener ($ a month)")
    wtp_ad: float = Field(0.60, gt=0.0, description="median money value of the ad tier to an ad-supported listener ($)")
    wtp_sigma: float = Field(0.5, ge=0.0, le=3.0, description="lognormal spread of willingness to pay")
    markup_scale: float = Field(0.5, gt=0.0, description="change in log(value/price) that moves churn's log-odds by 1")
    # assumption: one unit of utility (e.g. a catalogue e times better, or a perfect instead of an orthogonal taste
    # match) above month 1's raises value by ~20% (2 * sigmoid(0.4) = 1.20)
    quality_weight: float = Field(0.4, ge=0.0, description="value's response to listening utility above month 1's")
    # assumption (no published figure): listeners' value falls with the AI share of their listening
    ai_weight: float = Field(1.0, ge=0.0, description="value's response to the AI share of listening above month 1's")

    @model_validator(mode="after")
    def _room_to_join(self) -> DemandConfig:
        s = self.subscribed_share
        if self.enabled and s < 1.0 and self.churn_rate * s >= 1.0 - s:
            raise ValueError(
                f"each month churn_rate x subscribed_share = {self.churn_rate * s:.3g} of the listeners leave, which the "
                f"{1 - s:.3g} outside cannot replace; lower demand.subscribed_share or demand.churn_rate"
            )
        return self


def listener_utility(
    picks: np.ndarray, counts: np.ndarray, taste: np.ndarray, style: np.ndarray, log_quality: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each listener's stream-weighted utility of what they played, and their streams.

    Args:
        picks: (n_users, sessions) what each session played (creator, then ``n_creators + output``).
        counts: (n_users, sessions) streams of each session (0: nothing played).
        taste: (n_users, style_dim) unit taste vectors.
        style: (n_playables, style_dim) style of each creator, then of each AI output.
        log_quality: (n_playables,) log relative quality of each.
    Returns:
        ``(utility, streams)``: (n_users,) utility a stream (NaN for a listener who played nothing) and
        streams played.
    """
    n, k = picks.shape
    played = sp.csr_matrix(
        (counts.reshape(-1).astype(float), picks.reshape(-1).astype(np.int64), np.arange(0, n * k + 1, k)),
        shape=(n, style.shape[0]),
    )
    streams = np.asarray(played.sum(axis=1)).ravel()
    summed_style = played @ style
    total = np.einsum("ud,ud->u", summed_style, taste) + played @ log_quality
    utility = np.divide(total, streams, out=np.full(n, np.nan), where=streams > 0)
    return utility, streams


@dataclass(frozen=True)
class DemandMonth:
    """The demand side's month, in $ (what the model records)."""

    subscribers: int
    value: float  # sum of subscribers' values v_i
    price: float  # sum of subscribers' prices p_i
    joins: int
    churns: int

    @property
    def consumer_surplus(self) -> float:
        return self.value - self.price


class Demand:
    """One model's listeners as buyers of the service.

    Args:
        config: the scenario's demand section.
        fee: (n_users,) each listener's fee (their price).
        premium: (n_users,) bool, premium listeners (the others are ad-supported).
        segment: (n_users,) each listener's taste segment.
        seed: the model's seed (the demand side's own stream is derived from it).
    """

    def __init__(
        self, config: DemandConfig, fee: np.ndarray, premium: np.ndarray, segment: np.ndarray, seed: int
    ) -> None:
        self.config = config
        self.rng = np.random.default_rng([seed, _DEMAND_STREAM])
        n = fee.size
        median = np.where(premium, config.wtp_premium, config.wtp_ad)
        self.wtp = median * self.rng.lognormal(0.0, config.wtp_sigma, n)
        start = self.rng.random(n)
        self.price = np.asarray(fee, dtype=float)
        self.segment = segment
        self.subscribed: np.ndarray | None = None
        self.alpha = self.beta = 0.0
        if config.enabled:
            self.subscribed = start < config.subscribed_share
            if not self.subscribed.any():
                self.subscribed[int(np.argmin(start))] = True
            # x at each tier's reference price, median / (1 + reference_markup), and the first month's experience
            x_ref = np.log(self.wtp * (1.0 + config.reference_markup) / median) / config.markup_scale
            self.alpha, self.beta = _calibrate(x_ref, self.subscribed, config.churn_rate)
        self.reference: tuple[np.ndarray, np.ndarray] | None = None  # each listener's (U_i1, A_i1)
        self.value = np.zeros(n)

    def observe(self, utility: np.ndarray, ai_share: np.ndarray, expected_ai_share: np.ndarray) -> DemandMonth:
        """The month's value of the service to each listener; the money totals (decisions come in :meth:`decide`).

        Args:
            utility: (n_users,) stream-weighted utility of what each listener played (NaN: played nothing).
            ai_share: (n_users,) AI share of each listener's streams.
            expected_ai_share: (n_users,) the AI share a listener expects (AI affinity times AI quality).
        """
        played = np.isfinite(utility)
        # who played nothing (not subscribed) values what their taste segment found this month
        n_seg = int(self.segment.max()) + 1 if self.segment.size else 0
        seg_sum = np.bincount(self.segment[played], weights=utility[played], minlength=n_seg)
        seg_n = np.bincount(self.segment[played], minlength=n_seg)
        overall = float(utility[played].mean()) if played.any() else 0.0
        seg_mean = np.divide(seg_sum, seg_n, out=np.full(n_seg, overall), where=seg_n > 0)
        u = np.where(played, utility, seg_mean[self.segment])
        a = np.where(played, ai_share, expected_ai_share)
        if self.reference is None:
            self.reference = (u, a)
        c = self.config
        z = c.quality_weight * (u - self.reference[0]) - c.ai_weight * (a - self.reference[1])
        self.value = self.wtp * 2.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))
        sub = self.subscribed if self.subscribed is not None else np.ones(self.value.size, dtype=bool)
        return DemandMonth(
            subscribers=int(sub.sum()),
            value=float(self.value[sub].sum()),
            price=float(self.price[sub].sum()),
            joins=0,
            churns=0,
        )

    def decide(self, month: DemandMonth) -> DemandMonth:
        """Subscribers leave and others join for next month (``enabled`` only); the month with its flows."""
        if self.subscribed is None:
            return month
        with np.errstate(divide="ignore"):
            markup = np.log(self.value / np.where(self.price > 0, self.price, np.nan))
        # a free listener (price 0) never leaves and always joins
        x = np.where(self.price > 0, markup / self.config.markup_scale, np.inf)
        leave = _sigmoid(self.alpha - x)
        join = _sigmoid(self.beta + x)
        u = self.rng.random(x.size)
        sub = self.subscribed
        churns = sub & (u < leave)
        joins = ~sub & (u < join)
        self.subscribed = (sub & ~churns) | joins
        return DemandMonth(month.subscribers, month.value, month.price, int(joins.sum()), int(churns.sum()))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -500.0, 500.0)))


def _calibrate(x_ref: np.ndarray, subscribed: np.ndarray, churn_rate: float) -> tuple[float, float]:
    """The intercepts ``(alpha, beta)``: mean churn of the subscribers ``churn_rate``, joins equal to churns.

    Both are monotone in their intercept, so each is one bracketed root (``scipy.optimize.brentq``).
    Without non-subscribers nobody can join: ``beta`` is then -inf.
    """
    from scipy.optimize import brentq

    subs, others = x_ref[subscribed], x_ref[~subscribed]
    alpha = brentq(lambda a: _sigmoid(a - subs).mean() - churn_rate, -60.0, 60.0)
    if others.size == 0:
        return float(alpha), float("-inf")
    expected_churns = float(_sigmoid(alpha - subs).sum())
    if expected_churns >= others.size:
        raise ValueError(
            f"demand: {expected_churns:.0f} expected churns a month exceed the {others.size} listeners who could "
            "join; lower demand.subscribed_share or demand.churn_rate"
        )
    beta = brentq(lambda b: _sigmoid(b + others).sum() - expected_churns, -60.0, 60.0)
    return float(alpha), float(beta)
