"""The attribution table: the contract between the attribution core and the economy.

An attribution run folder holds, besides models and MIDI files::

    config.yaml           resolved build config, package versions, timings
    corpus.parquet        train_id, creator, title, events, seconds   (one row per training piece)
    outputs.parquet       output_id, events, seconds, midi, temperature, top_k, seed
    attribution.parquet   output_id, train_id, creator, method, score  (long format)
    scored/               pieces scored after the build (``royaltysim attribution score``): the same
                          outputs.parquet (plus provenance), attribution.parquet and passages.parquet

:meth:`AttributionTable.load` reads the build's outputs, the scored pieces, or both (``outputs=``).

This module reads and writes that layout with pandas alone: it must never import torch, so the
economy (``royaltysim``) can read a run without paying for it.

Method names follow a convention that the economy relies on:

* causal estimates (training-data attribution): ``trak``, ``trak_1ckpt``, ``tracin``, ``grad_dot``,
  ``grad_cos``, ...; a score estimates how much the output's log-likelihood rises because the piece
  was in the training set, so it may be negative.
* similarity "legal proxies": names starting with ``sim_``; scores are non-negative similarities.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .errors import AttributionError, RunFolderError
from .runfolder import atomic_write, check_published, verify

__all__ = [
    "outputs_fingerprint",
    "tokens_fingerprint",
    "output_token_files",
    "AttributionTable",
    "AttributionTableError",
    "NegativePolicy",
    "SCORE_COLUMNS",
    "CORPUS_COLUMNS",
    "OUTPUT_COLUMNS",
    "is_similarity_method",
    "OutputSource",
    "OUTPUT_SOURCES",
    "SCORED_DIR",
]

SCORE_COLUMNS = ["output_id", "train_id", "creator", "method", "score"]
CORPUS_COLUMNS = ["train_id", "creator", "title", "events", "seconds"]
OUTPUT_COLUMNS = ["output_id", "events", "seconds"]

SCORES_FILE = "attribution.parquet"
PASSAGES_FILE = "passages.parquet"
CORPUS_FILE = "corpus.parquet"
OUTPUTS_FILE = "outputs.parquet"
#: pieces scored after the build (:mod:`attribution.piece_scores`) live in ``RUN/scored/`` with the same files
SCORED_DIR = "scored"

#: which generated pieces a table holds: the build's outputs, the pieces scored later, or both
OutputSource = Literal["build", "scored", "all"]
OUTPUT_SOURCES = ("build", "scored", "all")

NegativePolicy = Literal["clip", "keep", "shift", "abs"]
_NEGATIVE_POLICIES = ("clip", "keep", "shift", "abs")



def output_token_files(run_dir: str | Path, outputs: pd.DataFrame) -> list[Path]:
    """The token-id file of each generated output of a run, in ``outputs.parquet`` order."""
    names = outputs["tokens"] if "tokens" in outputs else [f"outputs/{o}.npy" for o in outputs["output_id"]]
    return [Path(run_dir) / f for f in names]


def outputs_fingerprint(run_dir: str | Path) -> str:
    """SHA-256 of a run's generated token sequences, in order: what a retraining ground truth was measured on.

    A rebuilt run whose outputs differ (another machine's floating point, another config) no longer matches
    its ground truth; comparing fingerprints tells.
    """
    run_dir = Path(run_dir)
    return tokens_fingerprint(np.load(p) for p in output_token_files(run_dir, pd.read_parquet(run_dir / "outputs.parquet")))


def tokens_fingerprint(sequences) -> str:
    """SHA-256 of token sequences in order (see :func:`outputs_fingerprint`)."""
    h = hashlib.sha256()
    for seq in sequences:
        h.update(np.ascontiguousarray(seq, dtype=np.int64).tobytes())
    return h.hexdigest()

class AttributionTableError(AttributionError):
    """An attribution run folder or table is missing, incomplete or malformed."""


def _published_digests(run_dir: Path) -> dict[str, str]:
    """The SHA-256 of each file a build published, from its ``config.yaml`` ({} for runs built before the list)."""
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    try:
        files = (yaml.safe_load(path.read_text()) or {}).get("files") or {}
    except (yaml.YAMLError, UnicodeDecodeError, AttributeError) as exc:
        raise AttributionTableError(f"{path} is not a readable run config ({exc}); rebuild the run") from None
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def is_similarity_method(method: str) -> bool:
    """True for similarity ("legal proxy") methods, which are named ``sim_*``."""
    return method.startswith("sim_")


def _require_columns(df: pd.DataFrame, columns: list[str], where: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise AttributionTableError(
            f"{where}: missing column(s) {missing}; expected at least {columns}. "
            "Rebuild the run with `royaltysim attribution build CONFIG.yaml`."
        )


def apply_negative_policy(values: np.ndarray, policy: NegativePolicy, axis: int = -1) -> np.ndarray:
    """Make attribution scores usable as payout weights.

    TDA scores estimate a counterfactual change of log-likelihood and can be negative (a piece that
    made the output *less* likely). What a royalty rule does with them is a policy choice:

    * ``clip``  – negative contributions are worth nothing (default; never charges a creator).
    * ``keep``  – scores are used as they are (weights may be negative; only for analysis).
    * ``shift`` – subtract the minimum along ``axis`` so the least helpful piece gets zero.
    * ``abs``   – magnitude of influence, helpful or harmful.
    """
    values = np.asarray(values, dtype=float)
    if policy == "clip":
        return np.clip(values, 0.0, None)
    if policy == "keep":
        return values
    if policy == "shift":
        return values - values.min(axis=axis, keepdims=True)
    if policy == "abs":
        return np.abs(values)
    raise AttributionTableError(
        f"unknown negative-score policy {policy!r}; choose one of {list(_NEGATIVE_POLICIES)}"
    )


@dataclass
class AttributionTable:
    """Scores of every (generated output, training piece, method), with the corpus and outputs.

    Attributes:
        scores: long table with :data:`SCORE_COLUMNS`.
        corpus: one row per training piece with :data:`CORPUS_COLUMNS`.
        outputs: one row per generated output with at least :data:`OUTPUT_COLUMNS`.
        path: the run folder it was read from, if any.
    """

    scores: pd.DataFrame
    corpus: pd.DataFrame
    outputs: pd.DataFrame
    path: Path | None = None

    def __post_init__(self) -> None:
        where = str(self.path) if self.path else "attribution table"
        _require_columns(self.scores, SCORE_COLUMNS, f"{where}/{SCORES_FILE}")
        _require_columns(self.corpus, CORPUS_COLUMNS, f"{where}/{CORPUS_FILE}")
        _require_columns(self.outputs, OUTPUT_COLUMNS, f"{where}/{OUTPUTS_FILE}")
        unknown = set(self.scores["train_id"]) - set(self.corpus["train_id"])
        if unknown:
            raise AttributionTableError(
                f"{where}: {len(unknown)} train_id(s) in the scores are not in the corpus, "
                f"e.g. {sorted(unknown)[:3]}"
            )

    # ------------------------------------------------------------------ I/O
    @classmethod
    def load(cls, run_dir: str | Path, outputs: OutputSource = "build") -> AttributionTable:
        """Read a run folder written by ``royaltysim attribution build``.

        ``outputs`` picks the generated pieces: the build's (``build``), those scored after it with
        ``royaltysim attribution score`` (``scored``, from ``RUN/scored/``), or both (``all``, the build's first).
        """
        if outputs not in OUTPUT_SOURCES:
            raise AttributionTableError(f"outputs={outputs!r}: choose one of {', '.join(OUTPUT_SOURCES)}")
        table = cls._load_build(Path(run_dir))
        if outputs == "build":
            return table
        scored = Path(run_dir) / SCORED_DIR
        if not (scored / OUTPUTS_FILE).is_file() or not (scored / SCORES_FILE).is_file():
            raise AttributionTableError(
                f"{scored} holds no scored pieces; score some with `royaltysim attribution score {run_dir} "
                "PIECE.mid ...`, or read the build's outputs"
            )
        s_outputs, s_scores = pd.read_parquet(scored / OUTPUTS_FILE), pd.read_parquet(scored / SCORES_FILE)
        if outputs == "all":
            s_outputs = pd.concat([table.outputs, s_outputs], ignore_index=True)
            s_scores = pd.concat([table.scores, s_scores], ignore_index=True)
        return cls(scores=s_scores, corpus=table.corpus, outputs=s_outputs, path=table.path)

    @classmethod
    def _load_build(cls, run_dir: Path) -> AttributionTable:
        if not run_dir.is_dir():
            raise AttributionTableError(
                f"attribution run folder {run_dir} does not exist; build one with "
                "`royaltysim attribution build CONFIG.yaml` or point to the shipped `runs/default`."
            )
        try:
            check_published(run_dir)  # a build killed while publishing: some files old, some new
        except RunFolderError as exc:
            raise AttributionTableError(str(exc)) from None
        frames = {}
        for name in (SCORES_FILE, CORPUS_FILE, OUTPUTS_FILE):
            path = run_dir / name
            if not path.is_file():
                raise AttributionTableError(
                    f"{path} is missing: {run_dir} is not a complete attribution run "
                    "(was its build interrupted? rerun `royaltysim attribution build`)."
                )
        damaged = verify(run_dir, _published_digests(run_dir), only=(SCORES_FILE, CORPUS_FILE, OUTPUTS_FILE))
        if damaged:
            raise AttributionTableError(
                f"{run_dir} does not hold what its build wrote ({'; '.join(damaged)}; config.yaml lists each file's "
                "SHA-256): rebuild it with `royaltysim attribution build CONFIG --out RUN --force`"
            )
        for name in (SCORES_FILE, CORPUS_FILE, OUTPUTS_FILE):
            frames[name] = pd.read_parquet(run_dir / name)
        return cls(
            scores=frames[SCORES_FILE],
            corpus=frames[CORPUS_FILE],
            outputs=frames[OUTPUTS_FILE],
            path=run_dir,
        )

    def save(self, run_dir: str | Path) -> None:
        """Write the three tables into ``run_dir`` (each file written atomically)."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        for name, df in (
            (SCORES_FILE, self.scores),
            (CORPUS_FILE, self.corpus),
            (OUTPUTS_FILE, self.outputs),
        ):
            atomic_write(run_dir / name, lambda tmp, df=df: df.to_parquet(tmp, index=False))

    def passages(self) -> pd.DataFrame:
        """Passage-level TRAK scores: ``output_id, passage, first_event, end_event, train_id, score``.

        Each output's events are cut into passages; a passage's scores over pieces sum, across the
        output's passages, to the output's ``trak`` score (attribution is additive over events). The rows of
        pieces scored after the build (``RUN/scored/``) follow the build's.
        """
        if self.path is None or not (self.path / PASSAGES_FILE).is_file():
            raise AttributionTableError(
                f"no {PASSAGES_FILE} in {self.path}: passage scores are written by "
                "`royaltysim attribution build`"
            )
        frames = [pd.read_parquet(self.path / PASSAGES_FILE)]
        if (self.path / SCORED_DIR / PASSAGES_FILE).is_file():  # pieces scored after the build, after the build's
            frames.append(pd.read_parquet(self.path / SCORED_DIR / PASSAGES_FILE))
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def passage_sources(self, output_id: str, top: int = 3) -> pd.DataFrame:
        """For each passage of one output, the ``top`` pieces it draws on most, with creator and share.

        ``share`` is the piece's positive TRAK score over the passage's total positive score.
        """
        rows = self.passages()
        rows = rows[rows["output_id"] == output_id]
        if rows.empty:
            raise AttributionTableError(
                f"output {output_id!r} has no passage scores; outputs: {self.output_ids[:5]}..."
            )
        positive = rows["score"].clip(lower=0)
        rows = rows.assign(share=positive / positive.groupby(rows["passage"]).transform("sum").replace(0, np.nan))
        best = rows.sort_values(["passage", "score"], ascending=[True, False]).groupby("passage").head(top)
        creator_of = self.corpus.set_index("train_id")["creator"]
        title_of = self.corpus.set_index("train_id")["title"]
        return best.assign(
            creator=best["train_id"].map(creator_of), title=best["train_id"].map(title_of)
        ).reset_index(drop=True)

    # -------------------------------------------------------------- queries
    @property
    def methods(self) -> list[str]:
        return sorted(self.scores["method"].unique())

    @property
    def creators(self) -> list[str]:
        return sorted(self.corpus["creator"].unique())

    @property
    def output_ids(self) -> list[str]:
        return list(self.outputs["output_id"])

    def _method_rows(self, method: str) -> pd.DataFrame:
        rows = self.scores[self.scores["method"] == method]
        if rows.empty:
            raise AttributionTableError(
                f"method {method!r} is not in this table; available methods: {self.methods}"
            )
        return rows

    def pivot(self, method: str) -> pd.DataFrame:
        """Scores of one method as an (output_id x train_id) frame, in corpus order."""
        rows = self._method_rows(method)
        wide = rows.pivot_table(index="output_id", columns="train_id", values="score", aggfunc="sum")
        return wide.reindex(index=self.output_ids, columns=list(self.corpus["train_id"]))

    def to_creators(
        self, method: str, negative: NegativePolicy = "clip", how: Literal["sum", "max"] = "sum"
    ) -> pd.DataFrame:
        """Catalogue-level attribution: an (output_id x creator) frame.

        Causal scores are additive, so a creator's attribution is the **sum** of their pieces' raw
        scores: the first-order estimate of leaving the whole catalogue out. ``negative`` is then
        applied to these catalogue totals (see :func:`apply_negative_policy`; ``shift`` works per
        output), never to single pieces: clipping piece by piece would pay a large catalogue for its
        helpful pieces while ignoring its harmful ones. Similarity is not additive; ``how="max"``
        gives the most similar piece per creator (the usual reading of a similarity claim), with
        ``negative`` applied to the piece scores.
        """
        wide = self.pivot(method).fillna(0.0)
        creator_of = self.corpus.set_index("train_id")["creator"].reindex(wide.columns).to_numpy()
        if how == "sum":
            totals = wide.T.groupby(creator_of).sum().T.reindex(columns=self.creators, fill_value=0.0)
            values = apply_negative_policy(totals.to_numpy(), negative, axis=1)
            return pd.DataFrame(values, index=totals.index, columns=totals.columns)
        if how == "max":
            values = apply_negative_policy(wide.to_numpy(), negative, axis=1)
            pieces = pd.DataFrame(values, index=wide.index, columns=wide.columns)
            return pieces.T.groupby(creator_of).max().T.reindex(columns=self.creators, fill_value=0.0)
        raise AttributionTableError(f"unknown aggregation {how!r}; choose 'sum' (causal) or 'max' (similarity)")

    def creator_shares(
        self, method: str, negative: NegativePolicy = "clip", how: Literal["sum", "max"] = "sum"
    ) -> pd.DataFrame:
        """Per-output shares across creators (rows sum to 1; an all-zero row stays zero)."""
        if negative == "keep":
            raise AttributionTableError(
                "shares need non-negative weights; use negative='clip', 'shift' or 'abs'"
            )
        by_creator = self.to_creators(method, negative=negative, how=how)
        totals = by_creator.sum(axis=1).replace(0.0, np.nan)
        return by_creator.div(totals, axis=0).fillna(0.0)
