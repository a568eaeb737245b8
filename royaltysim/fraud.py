"""Fraud and flooding: AI-generated uploads whose streams are faked, and the platform's detection of them.

* :class:`FraudConfig` -- the scenario's ``fraud:`` section (off by default: ``fake_stream_share: 0``).
* :class:`FraudFarm` -- one model's stream farm: bot accounts that pay a subscription (bought premium
  accounts) and play nothing but the farm's AI-generated uploads, round the clock. Each month it adds
  the bots as extra listeners and the uploads as extra payees to the settlement, so every royalty
  scheme meets the fraud exactly as it meets real listening: pro-rata pays the uploads their share of
  all streams, user-centric only the bots' own fees, artist-centric caps each bot at 1,000 streams,
  a minimum-stream rule drops uploads under its threshold, and an AI pool paid by similarity pays
  uploads that sound like the AI's outputs. Nothing in here branches on a scheme's name.

The published figures it is set from (``reference/streaming-facts.md``, Deezer 2025): AI tracks take
0.5-3% of all streams and 70-85% of their streams are detected as fraudulent, so faked streams are
~0.35-2.6% of all streams; Deezer reports ~8% of streams across the catalogue as fraudulent. Fully
AI-generated uploads went from 10k a day (January 2025) to 60k a day (January 2026, 39% of uploads):
``uploads_per_month`` floods the catalogue with new fraud uploads over which the bots spread their
streams (a minimum-stream rule then catches more of them).

Detection is deterministic: a share ``detection_rate`` of every bot's streams is found and
demonetised (removed before settlement), so fraud draws no random numbers and every arm of a seed
meets the same fraud. A detected bot still paid its fee: the platform keeps it as revenue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from royaltysim.schemes import Settlement

__all__ = ["FraudConfig", "FraudFarm", "FraudMonth"]


class FraudConfig(BaseModel):
    """The scenario's ``fraud:`` section: a stream farm of AI-generated uploads (off by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # Deezer 2025: AI tracks 0.5-3% of streams, 70-85% of those fraudulent (~0.35-2.6% of all streams);
    # ~8% of streams across the catalogue detected as fraudulent. 0: no fraud (today's calibrated economy)
    fake_stream_share: float = Field(
        0.0, ge=0.0, lt=0.5, description="faked streams as a share of all streams (genuine + faked), before detection"
    )
    # share of the faked streams the platform finds and demonetises (removes before settlement); no platform
    # publishes what it misses, so any value is an assumption
    detection_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of faked streams detected and demonetised")
    # assumption: a bot account streaming round the clock, 3-minute tracks (20 an hour x 24 x 30)
    streams_per_bot: int = Field(14_400, ge=1, le=10_000_000, description="streams one bot account plays a month")
    # None: consumers.premium_fee (the farm buys premium accounts, whose streams count for the most)
    bot_fee: float | None = Field(None, ge=0.0, description="what a bot account pays a month ($); default the premium fee")
    uploads: int = Field(100, ge=1, le=100_000, description="AI-generated uploads the bots stream in the first month")
    # flooding: Deezer's fully AI-generated uploads grew from 10k to 60k a day over 2025 (streaming-facts.md)
    uploads_per_month: int = Field(0, ge=0, le=100_000, description="new fraud uploads each month (flooding)")
    # assumption: an AI-generated upload is as similar to each AI output as a typical real catalogue is (its
    # similarity is this multiple of the output's mean similarity to the catalogues; 0: never similar)
    similarity_to_outputs: float = Field(
        1.0, ge=0.0, le=100.0, description="an upload's similarity to each AI output, times the output's mean similarity"
    )

    @property
    def on(self) -> bool:
        return self.fake_stream_share > 0


@dataclass(frozen=True)
class FraudMonth:
    """One month of the farm, before settlement.

    Attributes:
        streams: (n_bots, uploads) streams of the bots that survived detection (CSR).
        fees: (n_bots,) what each bot paid this month.
        faked: streams the bots played (before detection).
        demonetised: streams detected and removed.
        uploads: fraud uploads in the catalogue this month.
    """

    streams: sp.csr_matrix
    fees: np.ndarray
    faked: float
    demonetised: float
    uploads: int


class FraudFarm:
    """A stream farm sized from the genuine listening of a model's listeners.

    The farm plays ``F = s / (1 - s) * V`` streams a month, ``s`` the configured ``fake_stream_share`` and
    ``V`` the genuine listeners' monthly volume, so faked streams are ``s`` of all streams; it needs
    ``ceil(F / streams_per_bot)`` bot accounts. Each bot spreads its surviving streams over every fraud
    upload as evenly as integers allow.

    Args:
        config: the scenario's fraud section (``config.on``).
        genuine_volume: streams the listeners play a month (their potential volume: it does not move
            with churn, so the farm is the same in every arm).
        bot_fee: what a bot account pays a month.
    """

    def __init__(self, config: FraudConfig, genuine_volume: float, bot_fee: float) -> None:
        if not config.on:
            raise ValueError("FraudFarm needs fraud.fake_stream_share > 0; leave the farm out when it is 0")
        self.config = config
        s = config.fake_stream_share
        total = int(round(s / (1.0 - s) * genuine_volume))
        n_bots = max(1, -(-total // config.streams_per_bot))  # ceil
        self.volume = np.full(n_bots, total // n_bots, dtype=np.int64)
        self.volume[: total % n_bots] += 1  # (n_bots,) streams each bot plays; they add up to `total`
        self.bot_fee = float(bot_fee)

    @property
    def n_bots(self) -> int:
        return int(self.volume.size)

    def uploads_at(self, month: int) -> int:
        """Fraud uploads in the catalogue in ``month`` (1 = the first simulated)."""
        return self.config.uploads + self.config.uploads_per_month * max(month - 1, 0)

    def month(self, month: int) -> FraudMonth:
        """The farm's listening in ``month``: what survives detection, spread over the uploads."""
        uploads = self.uploads_at(month)
        kept = np.rint(self.volume * (1.0 - self.config.detection_rate)).astype(np.int64)
        # bot b gives kept[b] // U streams to every upload and one more to kept[b] % U of them, starting at
        # upload b (rotated, so the remainders do not all land on the first uploads)
        base = kept // uploads
        extra = kept % uploads
        offset = (np.arange(uploads)[None, :] - np.arange(self.n_bots)[:, None]) % uploads
        dense = base[:, None] + (offset < extra[:, None])
        return FraudMonth(
            streams=sp.csr_matrix(dense.astype(float)),
            fees=np.full(self.n_bots, self.bot_fee),
            faked=float(self.volume.sum()),
            demonetised=float((self.volume - kept).sum()),
            uploads=uploads,
        )

    def extend(
        self, base: Settlement, fm: FraudMonth, bot_pool: np.ndarray, ai_eligible: np.ndarray
    ) -> tuple[Settlement, np.ndarray]:
        """The human pool's settlement with the bots as listeners and the uploads as payees after the creators.

        Args:
            base: the human pool's settlement of the genuine listeners and creators.
            fm: this month of the farm.
            bot_pool: (n_bots,) what each bot's fee pays into the human pool.
            ai_eligible: (n_creators,) creators the AI pool may pay.
        Returns:
            the extended settlement, and the AI pool's eligibility over creators and uploads (an upload
            is eligible everywhere: a fraudster opts in to everything).
        """
        n_up, n_bots = fm.uploads, fm.fees.size
        n_out = base.n_outputs
        streams = sp.bmat([[base.streams, None], [None, fm.streams]], format="csr")
        # an upload's similarity to an output: the output's mean similarity to the real catalogues, scaled
        typical = base.similarity.mean(axis=1, keepdims=True) if base.n_creators else np.zeros((n_out, 1))
        similarity = np.hstack([base.similarity, np.repeat(typical * self.config.similarity_to_outputs, n_up, axis=1)])
        zeros = np.zeros(n_up)
        user_pool = np.concatenate([base.user_pool, bot_pool])
        extended = Settlement(
            pool=float(user_pool.sum()),
            streams=streams,
            user_pool=user_pool,
            works=np.concatenate([base.works, np.ones(n_up)]),
            training_works=np.concatenate([base.training_works, zeros]),
            training_seconds=np.concatenate([base.training_seconds, zeros]),
            ai_plays=base.ai_plays,
            attribution=np.hstack([base.attribution, np.zeros((n_out, n_up))]),
            similarity=similarity,
            eligible=np.concatenate([base.eligible, np.ones(n_up, dtype=bool)]),
            reference=None if base.reference is None else np.hstack([base.reference, np.zeros((n_out, n_up))]),
        )
        assert extended.n_users == base.n_users + n_bots
        return extended, np.concatenate([ai_eligible, np.ones(n_up, dtype=bool)])
