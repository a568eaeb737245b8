"""The per-agent reference of the listening rules: one Mesa agent per listener, stepping in a Python loop.

The abstraction is the *listener population* that :class:`~royaltysim.model.RoyaltyModel` keeps as
``self.consumers``: it tells the platform what each listener pays (``fee``), listens for a month
(``listen`` -> :class:`~royaltysim.agents.Listening`, the settlement inputs: the (users x creators)
stream matrix, AI plays, each user's AI streams) and scores what was played (``welfare``). Two
implementations follow the same rules:

* :class:`royaltysim.agents.Consumers` -- the one the economy runs on: every listener at once, as
  numpy arrays and a scipy.sparse stream matrix.
* :class:`ListenerAgents` (here) -- the straightforward Mesa way: one :class:`Listener` agent per
  listener, each playing its own sessions in a Python loop (``agents_by_type[Listener].do``),
  copying picks from its neighbours on the networkx graph; :class:`AgentRoyaltyModel` is the
  economy with it plugged in. Creators, the platform and the schemes are the same objects.

Why the economy runs on the vectorised population: a month costs O(listeners x sessions) choices.
One Python object per listener pays interpreter overhead on every one of them (method calls, list
and dict updates per session), and then the platform needs the results as arrays anyway; the
vectorised path does the same work in a fixed number of numpy calls a month, so its cost per
session is a fraction of the loop's and it needs no Python object per listener (measured ratios:
``## Economy: vectorised vs per-agent`` in ``benchmarks/RESULTS.md``).

What the reference is for:

1. **A readable statement of the rules**, session by session (AI or human; taste and popularity;
   word of mouth; nothing to play from a withdrawn catalogue), that can be checked against the
   model's description without decoding array code.
2. **An oracle.** Both implementations take the month's randomness from one
   :class:`~royaltysim.agents.ListeningDraws` drawn from the model's generator, so on the same seed
   they must produce the same streams, payouts and creator decisions, month after month
   (``tests/royaltysim/test_reference.py``). Any change to the vectorised hot path is checked
   against it.
3. **The baseline of the speed-up figure** (``benchmarks/economy_vs_agents.py``).

Agreement is exact for every integer quantity (picks, streams, AI plays) and hence for everything
downstream of them (settlement, creators' decisions, the model's random stream). Only consumer welfare
differs, in floating-point rounding (per-listener sums in a different order; ~1e-15 relative): the
vectorised sampler's picks are exactly this module's ``bisect_right`` (see :mod:`royaltysim.agents`).

Not for production runs: it is O(listeners x sessions) Python work a month.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import mesa
import networkx as nx
import numpy as np
import scipy.sparse as sp
from mesa.agent import AgentSet

from attribution.table import AttributionTable
from royaltysim.agents import Consumers, Listening, ListeningDraws
from royaltysim.config import Arm, Scenario
from royaltysim.model import RoyaltyModel, World

__all__ = ["Month", "Listener", "ListenerAgents", "AgentRoyaltyModel"]


@dataclass(frozen=True)
class Month:
    """What every listener faces this month (shared, read-only).

    Attributes:
        creator_cum: per (segment, heavy) group, cumulative probabilities of choosing each creator.
        output_cum: per segment, cumulative probabilities of choosing each AI output.
        active: per creator, whether its catalogue is on the platform.
        ai_quality: AI quality in [0, 1].
        social_share: share of sessions that copy a neighbour's pick of last month.
        draws: the month's random numbers (row ``i`` belongs to listener ``i``).
    """

    creator_cum: list[list[float]]
    output_cum: list[list[float]]
    active: list[bool]
    ai_quality: float
    social_share: float
    draws: ListeningDraws

    @property
    def n_creators(self) -> int:
        return len(self.active)

    @property
    def n_outputs(self) -> int:
        return len(self.output_cum[0]) if self.output_cum else 0


class Listener(mesa.Agent):
    """One listener: pays a fee, plays ``volume`` streams a month over ``sessions`` choices.

    Args:
        model: the model.
        index: row of this listener in the stream matrix and in the month's draws.
        fee: money the listener brings a month (subscription or ad revenue).
        volume: streams a month.
        heavy: heavy listener (flatter response to popularity).
        segment: taste segment.
        taste: (style_dim,) unit taste vector.
        ai_affinity: share of listening that goes to AI when the AI is at full quality.
        sessions: listening choices a month.
    """

    def __init__(
        self,
        model: mesa.Model,
        index: int,
        fee: float,
        volume: int,
        heavy: bool,
        segment: int,
        taste: np.ndarray,
        ai_affinity: float,
        sessions: int,
    ) -> None:
        super().__init__(model)
        self.index = index
        self.fee = fee
        self.volume = volume
        self.heavy = heavy
        self.segment = segment
        self.taste = taste
        self.ai_affinity = ai_affinity
        self.sessions = sessions
        self.neighbours: list[Listener] = []
        self.last_picks: list[int] | None = None  # what each session played last month
        # this month
        self.picks: list[int] = []  # a creator index, or n_creators + o for AI output o
        self.played: list[int] = []  # streams of each session (0: the creator's catalogue was withdrawn)
        self.heard: list[int] = []  # what a neighbour copying this session next month finds
        self.streams: dict[int, int] = {}  # creator -> human streams
        self.ai_plays: dict[int, int] = {}  # AI output -> streams
        self.ai_streams = 0

    @property
    def group(self) -> int:
        """The (segment, heavy) group whose choice probabilities this listener draws from."""
        return self.segment * 2 + int(self.heavy)

    def listen(self, month: Month) -> None:
        """Play this month's sessions: AI or human, taste and popularity, word of mouth."""
        k, n_creators, n_outputs = self.sessions, month.n_creators, month.n_outputs
        nothing = n_creators + n_outputs  # what a session that played nothing leaves to be copied
        draws = month.draws
        u_ai, u_pick = draws.ai[self.index].tolist(), draws.pick[self.index].tolist()
        u_social = draws.social[self.index].tolist() if draws.social is not None else None
        u_copy = draws.copy[self.index].tolist() if draws.copy is not None else None
        ai_share = self.ai_affinity * month.ai_quality
        creator_cum = month.creator_cum[self.group]
        base, extra = divmod(self.volume, k)  # the volume split over sessions as evenly as integers allow

        self.picks, self.played, self.heard = [], [], []
        self.streams, self.ai_plays, self.ai_streams = {}, {}, 0
        for s in range(k):
            count = base + (1 if s < extra else 0)
            wants_ai = u_ai[s] < ai_share
            if wants_ai and n_outputs:
                # inverse CDF: the first output whose cumulative probability exceeds the draw (the last is 1)
                output = bisect_right(month.output_cum[self.segment], u_pick[s])
                self.ai_plays[output] = self.ai_plays.get(output, 0) + count
                self.ai_streams += count
                self._session(n_creators + output, count, n_creators + output)
                continue
            pick = bisect_right(creator_cum, u_pick[s])
            # word of mouth: copy a random session of a random neighbour's last month, if that played an
            # active creator (AI picks are not copied into human sessions). A listener who wanted AI
            # where there is no AI service plays its own pick.
            if (
                u_social is not None and u_copy is not None and self.neighbours
                and not wants_ai and u_social[s] < month.social_share
            ):
                pair = int(u_copy[s] * (len(self.neighbours) * k))
                neighbour = self.neighbours[pair // k]
                assert neighbour.last_picks is not None, "copying is only drawn after everyone has listened once"
                copied = neighbour.last_picks[pair % k]
                if copied < n_creators and month.active[copied]:
                    pick = copied
            if month.active[pick]:
                self.streams[pick] = self.streams.get(pick, 0) + count
                self._session(pick, count, pick)
            else:  # nothing to play from a withdrawn catalogue
                self._session(pick, 0, nothing)

    def _session(self, pick: int, played: int, heard: int) -> None:
        self.picks.append(pick)
        self.played.append(played)
        self.heard.append(heard)

    def remember(self) -> None:
        """End of the month: this month's picks become what neighbours copy next month."""
        self.last_picks = self.heard

    def utility(self, style: np.ndarray, log_quality: np.ndarray) -> float | None:
        """Stream-weighted utility of what this listener played (None if nothing was played).

        Args:
            style: (n_creators + n_outputs, style_dim) unit style of each creator and AI output.
            log_quality: (n_creators + n_outputs,) log relative quality of each.
        """
        played = [(p, c) for p, c in zip(self.picks, self.played) if c > 0]
        if not played:
            return None
        picks = [p for p, _ in played]
        counts = np.array([c for _, c in played], dtype=float)
        utility = style[picks] @ self.taste + log_quality[picks]  # (sessions played,)
        return float(utility @ counts) / float(counts.sum())


class ListenerAgents:
    """The listener population as one :class:`Listener` agent each (see the module docstring).

    Build it with :meth:`populate`; it offers what the model asks of :class:`~royaltysim.agents.Consumers`.

    Args:
        model: the model the agents belong to.
        n: number of listeners (agents with indices 0..n-1).
        sessions: listening choices per listener and month.
        social_share: share of sessions that copy a neighbour's last pick.
        graph: the listeners' social network (node = listener index).
    """

    def __init__(self, model: mesa.Model, n: int, sessions: int, social_share: float, graph: nx.Graph) -> None:
        self.model = model
        self.n = n
        self.sessions = sessions
        self.social_share = social_share
        self.graph = graph
        self._listened = False

    @classmethod
    def populate(cls, model: mesa.Model, consumers: Consumers) -> ListenerAgents:
        """One agent per listener of a (vectorised) population, with the same traits and network."""
        adjacency = consumers.adjacency
        # a listener's neighbours are listed in ascending index order, as the world's CSR rows hold them,
        # so that the same draw picks the same neighbour in both implementations
        assert adjacency.has_sorted_indices, "build_world's network must have sorted CSR rows"
        graph = nx.from_scipy_sparse_array(adjacency)
        population = cls(model, consumers.n, consumers.sessions, consumers.social_share, graph)
        listeners = [
            Listener(
                model,
                index=i,
                fee=float(consumers.fee[i]),
                volume=int(consumers.volume[i]),
                heavy=bool(consumers.heavy[i]),
                segment=int(consumers.segment[i]),
                taste=consumers.taste[i],
                ai_affinity=float(consumers.ai_affinity[i]),
                sessions=consumers.sessions,
            )
            for i in range(consumers.n)
        ]
        for listener in listeners:
            listener.neighbours = [listeners[j] for j in sorted(graph.neighbors(listener.index))]
        return population

    @property
    def agents(self) -> AgentSet:
        return self.model.agents_by_type[Listener]

    @property
    def fee(self) -> np.ndarray:
        """(n_users,) each listener's fee, collected from the agents."""
        fee = np.empty(self.n)
        for listener in self.agents:
            fee[listener.index] = listener.fee
        return fee

    @property
    def charged(self) -> np.ndarray:
        """(n_users,) what each listener pays this month: every listener here is subscribed."""
        return self.fee

    def listen(
        self,
        creator_cum: np.ndarray,
        output_cum: np.ndarray,
        active: np.ndarray,
        ai_quality: float,
        rng: np.random.Generator,
    ) -> Listening:
        """Every listener plays its month; returns the settlement inputs.

        Same arguments as :meth:`Consumers.listen <royaltysim.agents.Consumers.listen>`.
        """
        copying = self.social_share > 0 and self._listened and self.graph.number_of_edges() > 0
        month = Month(
            creator_cum=creator_cum.tolist(),
            output_cum=output_cum.tolist(),
            active=active.tolist(),
            ai_quality=ai_quality,
            social_share=self.social_share,
            draws=ListeningDraws.draw(rng, self.n, self.sessions, copying),
        )
        # `do`, not `shuffle_do`: a shuffle would draw from the model's generator and break common random
        # numbers with the vectorised path; order cannot matter, since listeners copy last month's picks
        # and only take this month's into memory once everyone has listened
        self.agents.do("listen", month)
        self.agents.do("remember")
        self._listened = True

        n, k, n_creators, n_outputs = self.n, self.sessions, month.n_creators, month.n_outputs
        rows: list[int] = []
        cols: list[int] = []
        data: list[float] = []
        ai_plays = [0.0] * n_outputs
        ai_streams = np.zeros(n)
        picks = np.empty((n, k), dtype=np.int64)
        played = np.empty((n, k), dtype=np.int64)
        for listener in self.agents:
            i = listener.index
            for creator, count in listener.streams.items():
                rows.append(i)
                cols.append(creator)
                data.append(float(count))
            for output, count in listener.ai_plays.items():
                ai_plays[output] += count
            ai_streams[i] = listener.ai_streams
            picks[i] = listener.picks
            played[i] = listener.played
        streams = sp.csr_matrix((data, (rows, cols)), shape=(n, n_creators), dtype=float)
        streams.sum_duplicates()
        return Listening(streams, np.array(ai_plays), ai_streams, picks, played)

    def welfare(
        self,
        listening: Listening,
        creator_style: np.ndarray,
        creator_quality: np.ndarray,
        output_style: np.ndarray,
        ai_quality: float,
    ) -> float:
        """Consumer welfare, as :meth:`Consumers.welfare <royaltysim.agents.Consumers.welfare>` defines it,
        averaged over the listeners' own utilities (``listening`` is what they just played)."""
        style = np.vstack([creator_style, output_style])
        log_quality = np.concatenate(
            [
                np.log(np.maximum(creator_quality, 1e-9)),
                np.full(output_style.shape[0], np.log(max(ai_quality, 1e-9))),
            ]
        )
        values = [u for listener in self.agents if (u := listener.utility(style, log_quality)) is not None]
        return float(np.mean(values)) if values else 0.0


class AgentRoyaltyModel(RoyaltyModel):
    """The royalty economy with one Mesa agent per listener; creators, platform and schemes unchanged.

    Same arguments as :class:`~royaltysim.model.RoyaltyModel`. On the same seed and world it follows
    the same path as the vectorised model (see the module docstring), at per-agent cost.
    """

    def __init__(
        self,
        scenario: Scenario,
        arm: Arm | str | None = None,
        *,
        seed: int | None = None,
        world: World | None = None,
        table: AttributionTable | None = None,
    ) -> None:
        if scenario.demand.enabled:
            raise ValueError(
                "the per-agent reference keeps every listener subscribed: run demand.enabled: true with the "
                "vectorised RoyaltyModel, or set demand.enabled: false"
            )
        super().__init__(scenario, arm, seed=seed, world=world, table=table)
        # the listener population is duck-typed: it offers what the model asks of `Consumers`
        self.consumers = ListenerAgents.populate(self, self.world.consumers)  # type: ignore[assignment]
