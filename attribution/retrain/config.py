"""What a ground truth retrains: :class:`GroundTruthConfig` and its sections, read from YAML.

Sizes are chosen from the measured time of one model (see ``configs/groundtruth-*.yaml``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import load_yaml_config
from ..errors import AttributionError

__all__ = ["GroundTruthConfig", "GroundTruthConfigError", "load_groundtruth_config", "Kind", "Order"]

Kind = Literal["lds", "full", "loco", "loo", "ctrl", "replay"]
Order = Literal["fixed", "reshuffled"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LdsSection(_Section):
    subsets: int = Field(32, ge=0)  # number of random subsets (0 = no LDS ground truth)
    fraction: float = Field(0.5, gt=0, lt=1)  # share of training pieces in each subset
    seeds: list[int] = Field(default_factory=lambda: [0])  # training seeds per subset (>= 2 gives a noise floor)
    # train seeds[1:] only on the first `noise_subsets` subsets (None = all): a cheaper seed-vs-seed noise floor
    noise_subsets: int | None = Field(None, ge=0)
    mask_seed: int = 0


class FixedLdsSection(_Section):
    """LDS subsets retrained in trajectory-exact mode: each replays its seed's full-data reference run.

    The subsets are those of ``lds`` (same ``fraction`` and ``mask_seed``, so subset j is the same pieces in
    both modes and the two modes can be compared subset by subset); seed s replays ``full/all_seed<s>``.
    """

    subsets: int = Field(0, ge=0)
    seeds: list[int] = Field(default_factory=lambda: [0])
    noise_subsets: int | None = Field(None, ge=0)  # replay seeds[1:] only on the first noise_subsets subsets


class LocoSection(_Section):
    enabled: bool = True
    seeds: list[int] = Field(default_factory=lambda: [0])
    creators: list[str] | None = None  # None = every creator in corpus.parquet
    # with a `creators` list: also leave every other creator out *together* (one model per seed); their joint
    # value is split among them in proportion to training events (see collect_groundtruth)
    rest: bool = False
    # fixed: each left-out model replays the full-data reference run of its seed (same initialisation, same
    # batches) with the creator's windows removed from every batch, so the difference is the data alone;
    # reshuffled: a fresh run of the recipe on the remaining windows, whose new batch order moves the outputs'
    # log-likelihood about as much as a new seed does (measured on runs/default: see benchmarks/RESULTS.md)
    order: Order = "fixed"
    # matched random controls: per left-out catalogue (and the rest group), this many models that leave out
    # random pieces of *other* creators with the same total events instead, in the same order and seeds; the
    # creator's own effect is then "what this creator's music did" (loco) minus "what removing that much music
    # does" (ctrl), see ctrl.parquet
    controls: int = Field(0, ge=0)
    control_seed: int = 0


class FullSection(_Section):
    # extra seeds of the all-pieces reference model (loco/loo seeds always get one); two or more seeds give
    # the seed-vs-seed noise floor of the leave-out differences without retraining every leave-out twice
    seeds: list[int] = Field(default_factory=list)
    # keep these models' final checkpoints: `attribution evaluate` then also scores TRAK over independently
    # trained models (method trak_models), the ensemble TRAK was designed for
    keep_weights: bool = False
    # replay the first fixed-order seed's reference with nothing removed (folder replay/all_seed<s>): its
    # utilities must equal the reference's, which proves the fixed-order mode is trajectory-exact
    replay_check: bool = False


class LooSection(_Section):
    pieces: int = Field(0, ge=0)  # size of the seeded sample of pieces (0 = no leave-one-piece-out)
    seeds: list[int] = Field(default_factory=lambda: [0, 1])
    sample_seed: int = 0
    order: Order = "fixed"  # as loco.order


class GroundTruthConfig(_Section):
    """What to retrain. Sizes are chosen from the measured time of one model (see configs/groundtruth-*.yaml)."""

    lds: LdsSection = Field(default_factory=LdsSection)
    lds_fixed: FixedLdsSection = Field(default_factory=FixedLdsSection)
    full: FullSection = Field(default_factory=FullSection)
    loco: LocoSection = Field(default_factory=LocoSection)
    loo: LooSection = Field(default_factory=LooSection)
    keep_weights: bool = False  # keep each retrained model's final checkpoint (about 4 MB per 1M parameters)

    @model_validator(mode="after")
    def _distinct_seeds(self) -> GroundTruthConfig:
        named = (("lds.seeds", self.lds.seeds), ("lds_fixed.seeds", self.lds_fixed.seeds), ("full.seeds", self.full.seeds), ("loco.seeds", self.loco.seeds), ("loo.seeds", self.loo.seeds))
        for name, seeds in named:
            if len(set(seeds)) != len(seeds):
                raise ValueError(f"{name} lists a seed twice: {seeds}")
        return self


class GroundTruthConfigError(AttributionError):
    """A ground-truth config file is missing or invalid; the message lists every error with its key path."""


def load_groundtruth_config(path: str | Path) -> GroundTruthConfig:
    return load_yaml_config(path, GroundTruthConfig, GroundTruthConfigError, "ground-truth config")
