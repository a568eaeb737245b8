"""The attribution build config: one YAML file, validated once into typed objects.

``royaltysim attribution build CONFIG.yaml`` reads it; every error is reported together with its key
path. Sections mirror the constructor arguments of the pipeline's parts (corpus loader, tokenizer,
model, training, generation, TRAK, similarity).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["BuildConfig", "BuildConfigError", "load_build_config", "load_yaml_config"]

M = TypeVar("M", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Music21Corpus(_Section):
    source: Literal["music21"] = "music21"
    creators: list[str] | None = None  # None = the default subset (see attribution.corpus.DEFAULT_CREATORS)
    max_seconds: float | None = Field(180.0, gt=0)
    max_pieces_per_creator: int | dict[str, int] | None = None


class MidiFolderCorpus(_Section):
    source: Literal["midi_folder"]
    manifest: Path  # CSV with columns path, creator[, title]
    sustain: bool = True
    max_seconds: float | None = Field(None, gt=0)


class MaestroCorpus(_Section):
    source: Literal["maestro"]
    root: Path
    csv: Path | None = None
    splits: list[str] | None = None
    sustain: bool = True
    max_seconds: float | None = Field(180.0, gt=0)


CorpusSection = Annotated[Music21Corpus | MidiFolderCorpus | MaestroCorpus, Field(discriminator="source")]


class TokenizerSection(_Section):
    time_step: float = Field(0.01, gt=0)
    max_shift_steps: int = Field(100, ge=1)
    velocity_bins: int = Field(32, ge=1, le=128)


class SplitSection(_Section):
    validation_fraction: float = Field(0.05, ge=0, lt=0.5)
    # only creators with at least this many pieces give pieces to validation, so none is left out of training
    min_pieces_for_validation: int = Field(5, ge=2)
    seed: int = 0


class ModelSection(_Section):
    block_size: int = Field(256, ge=8)
    n_layer: int = Field(4, ge=1)
    n_head: int = Field(4, ge=1)
    d_model: int = Field(128, ge=8)


class TrainSection(_Section):
    seed: int = 0
    steps: int = Field(1500, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(3e-3, gt=0)
    min_lr: float = Field(3e-4, ge=0)
    warmup_steps: int = Field(100, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    checkpoints: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])
    eval_every: int = Field(250, ge=1)
    # fused: torch's scaled_dot_product_attention while training, ~2x faster on CPU; explicit: the older,
    # slower form (runs built before 2026-11-24 were trained with it, and their retraining keeps to it)
    attention: Literal["fused", "explicit"] = "fused"


class GenerationSection(_Section):
    n_outputs: int = Field(32, ge=1)
    length: int = Field(256, ge=2)
    temperature: float = Field(1.0, gt=0)
    top_k: int | None = Field(40, ge=1)
    seed: int = 1234


class TrakSection(_Section):
    checkpoints: int | Literal["all"] = "all"  # use the last N checkpoints for the ensemble
    proj_dim: int = Field(512, ge=1)
    lambda_reg: float = Field(0.0, ge=0)
    batch_size: int = Field(16, ge=1)
    projector_seed: int = 0
    segment_events: int = Field(16, ge=1)


class SimilaritySection(_Section):
    ngram: int = Field(3, ge=1)


class BuildConfig(_Section):
    name: str = "default"
    corpus: CorpusSection = Field(default_factory=Music21Corpus)
    tokenizer: TokenizerSection = Field(default_factory=TokenizerSection)
    split: SplitSection = Field(default_factory=SplitSection)
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainSection = Field(default_factory=TrainSection)
    generation: GenerationSection = Field(default_factory=GenerationSection)
    trak: TrakSection = Field(default_factory=TrakSection)
    similarity: SimilaritySection = Field(default_factory=SimilaritySection)
    threads: int | None = Field(None, ge=1)  # torch threads; None = all cores


class BuildConfigError(ValueError):
    """A build config file is missing or invalid; the message lists every error with its key path."""


def load_yaml_config(path: str | Path, model: type[M], error: type[ValueError], what: str) -> M:
    """Read a YAML config into ``model``; raise ``error`` listing every problem with its key path."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist (see configs/ for examples)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise error(f"{path}: expected a mapping of sections at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {exc.error_count()} error(s)"]
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
        raise error("\n".join(lines)) from None


def load_build_config(path: str | Path) -> BuildConfig:
    path = Path(path)
    cfg = load_yaml_config(path, BuildConfig, BuildConfigError, "build config")
    # Relative corpus paths are relative to the config file.
    base = path.parent
    corpus = cfg.corpus
    if isinstance(corpus, MidiFolderCorpus) and not corpus.manifest.is_absolute():
        corpus.manifest = base / corpus.manifest
    if isinstance(corpus, MaestroCorpus):
        if not corpus.root.is_absolute():
            corpus.root = base / corpus.root
        if corpus.csv is not None and not corpus.csv.is_absolute():
            corpus.csv = base / corpus.csv
    return cfg
