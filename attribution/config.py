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

from .errors import AttributionError

__all__ = ["BuildConfig", "BuildConfigError", "config_problems", "load_build_config", "load_yaml_config"]

#: A config file is a few hundred bytes; anything this large is a mistake (or an attack) and is refused unread.
MAX_CONFIG_BYTES = 1 << 20
#: YAML anchors may be reused, but a document whose aliases expand to more nodes than this is refused
#: (a "billion laughs" alias bomb of a few hundred bytes expands to billions of nodes).
MAX_YAML_NODES = 100_000

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
    # the manifest's paths must lie inside its folder unless this is true (a received manifest could
    # otherwise read ../../any/file or /absolute/paths into the corpus)
    allow_outside: bool = False


class MaestroCorpus(_Section):
    source: Literal["maestro"]
    root: Path
    csv: Path | None = None
    splits: list[str] | None = None
    sustain: bool = True
    max_seconds: float | None = Field(180.0, gt=0)
    allow_outside: bool = False  # as for midi_folder: the CSV's files must lie inside root unless true


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
    # fractions of `steps` at which weights are saved for the TRAK ensemble; the last is the final model
    checkpoints: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: [0.25, 0.5, 0.75, 1.0], min_length=1
    )
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
    checkpoints: Annotated[int, Field(ge=1)] | Literal["all"] = "all"  # use the last N checkpoints for the ensemble
    proj_dim: int = Field(512, ge=1)
    lambda_reg: float = Field(0.0, ge=0)
    batch_size: int = Field(16, ge=1)
    projector_seed: int = 0
    segment_events: int = Field(16, ge=1)
    # the attributed function: "loglik" (sum of log p(e_t | e_<t), the causal value's own quantity; the catalogue
    # estimator and the ridge variants need its gradients) or "margin" (per-event margins, TRAK's classifier recipe;
    # more faithful for TRAK alone on runs/default in fixed order, see benchmarks/RESULTS.md)
    output: Literal["loglik", "margin"] = "loglik"


class SimilaritySection(_Section):
    ngram: int = Field(3, ge=1)


class BuildConfig(_Section):
    # the default run folder is runs/<name>, so a name is one plain folder name (no "/", no leading ".")
    name: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    corpus: CorpusSection = Field(default_factory=Music21Corpus)
    tokenizer: TokenizerSection = Field(default_factory=TokenizerSection)
    split: SplitSection = Field(default_factory=SplitSection)
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainSection = Field(default_factory=TrainSection)
    generation: GenerationSection = Field(default_factory=GenerationSection)
    trak: TrakSection = Field(default_factory=TrakSection)
    similarity: SimilaritySection = Field(default_factory=SimilaritySection)
    threads: int | None = Field(None, ge=1)  # torch threads; None = all cores


class BuildConfigError(AttributionError):
    """A build config file is missing or invalid; the message lists every error with its key path."""


def config_problems(cfg: BuildConfig) -> list[str]:
    """Errors between keys that each pass on their own, as ``key: problem; fix`` lines ([] = none).

    Checked before a build writes anything, so a config that would crash mid-build is refused up front.
    """
    problems = []
    m = cfg.model
    if m.d_model % m.n_head:
        divisors = [k for k in range(1, m.d_model + 1) if m.d_model % k == 0 and k <= 64]
        problems.append(
            f"model.n_head: {m.n_head} heads do not divide model.d_model ({m.d_model}) into equal heads; "
            f"use a divisor of d_model as n_head (e.g. {', '.join(map(str, divisors))}) or change d_model"
        )
    if cfg.generation.length > m.block_size + 1:
        problems.append(
            f"generation.length: {cfg.generation.length} events exceed the model's context "
            f"(model.block_size + 1 = {m.block_size + 1}); lower generation.length or raise model.block_size"
        )
    return problems


class _RecursiveAlias(Exception):
    pass


def _expanded_nodes(node: yaml.Node, memo: dict[int, int | None]) -> int:
    """Number of nodes ``node`` becomes once every alias is expanded (shared nodes counted per use)."""
    key = id(node)
    if key in memo:
        if memo[key] is None:  # reached again while its own children are counted
            raise _RecursiveAlias
        return memo[key]
    memo[key] = None
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_nodes(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
    memo[key] = size
    return size


def _safe_yaml(text: str, path: Path, error: type[ValueError]):
    """``yaml.safe_load`` that refuses documents whose aliases expand beyond :data:`MAX_YAML_NODES`."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise error(f"{path}: nested too deeply to be a config") from None
        if node is None:
            return None
        try:
            size = _expanded_nodes(node, {})
        except _RecursiveAlias:
            raise error(f"{path}: a YAML alias (*name) refers to a value that contains it; write the values out") from None
        except RecursionError:
            raise error(f"{path}: nested too deeply to be a config") from None
        if size > MAX_YAML_NODES:
            raise error(
                f"{path}: its YAML aliases (*name) expand to {size:,} values, more than the {MAX_YAML_NODES:,} "
                "a config may hold; write the values out instead of nesting aliases"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml_config(path: str | Path, model: type[M], error: type[ValueError], what: str) -> M:
    """Read a YAML config into ``model``; raise ``error`` listing every problem with its key path."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{what} {path} is a folder; pass a YAML file (see configs/ for examples)")
    if not path.is_file():
        raise error(f"{what} {path} does not exist (see configs/ for examples)")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise error(
            f"{what} {path} is {path.stat().st_size:,} bytes; a config is a short YAML file "
            f"(at most {MAX_CONFIG_BYTES:,} bytes); check that you passed the right file"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None
    try:
        raw = _safe_yaml(text, path, error) or {}
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
    """Read and check a build config; raise :class:`BuildConfigError` listing every problem."""
    path = Path(path)
    cfg = load_yaml_config(path, BuildConfig, BuildConfigError, "build config")
    problems = config_problems(cfg)
    if problems:
        raise BuildConfigError("\n".join([f"{path}: {len(problems)} error(s)", *(f"  {p}" for p in problems)]))
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
