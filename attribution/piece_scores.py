"""Attribute any piece against a built run: the run's training corpus scored for a new MIDI or token file.

:func:`score_pieces` (``royaltysim attribution score RUN piece.mid ...``) tokenises each piece with the run's
tokenizer and scores it with the methods the build used: the TRAK family (``trak``, ``trak_1ckpt``,
``tracin``, ``grad_dot``, ``grad_cos``) against traker's stored training features in
``RUN/cache/trak/<cache_key>/`` (:func:`attribution.scoring.open_feature_store` without featurising: no
retraining, no re-featurising), and the ``sim_*`` similarity proxies (:mod:`attribution.similarity`). A store
that does not match the run's checkpoints, windows and TRAK settings, or is unfinished, is refused
(:class:`~attribution.errors.FeatureStoreError`) with the fix; the new targets are scored under a traker
experiment of their own, dropped afterwards, so the build's stored scores are never touched.

**Pieces longer than the context.** The model sees at most ``block_size`` tokens. A piece of ``n`` events
(event ``e`` is token ``e + 1``, predicted from tokens ``0..e``) is cut into context windows
(:func:`context_windows`) that each *own* a disjoint run of events, so that the owned runs partition the
piece: the first window owns events ``[0, min(n, block_size))`` from BOS, as the model generates; each later
one owns ``stride`` events (default ``block_size // 2``) and its input is the ``block_size`` tokens that end
at its last owned event, so every event sees at least ``block_size - stride + 1`` tokens of context. A
window's target is the log-likelihood of its owned events only
(:class:`~attribution.scoring.SequenceLogLikelihood` masks ``[start, end)``). The training windows are cut
with stride ``block_size`` and all but a piece's first start mid-piece without BOS
(:mod:`attribution.windows`), so the model was trained on contexts that start anywhere: later windows start
mid-piece too. The piece's attributed function is the sum of its windows' owned log-likelihoods, and as TRAK
and the gradient baselines are linear in the target's gradient, the piece's score is exactly the sum of its
windows' scores (``grad_cos`` is the cosine of the summed gradient), and each passage of
``trak.segment_events`` events is scored as the sum of its parts in the windows that own them, so passages
add up to the piece too. A piece within the context is one window: the same computation as the build's.

``sim_pitch_hist`` and ``sim_interval_ngram`` compare the piece's notes as tokenised with the training
pieces as tokenised (decoded from ``RUN/model/windows.npz``, the exact training data; the build compares
with the parsed notes before the 10 ms grid, so these two can differ from a build's by that rounding).
``sim_embedding`` is the build's: the final model's mean hidden state over the piece (in non-overlapping
chunks of ``block_size`` tokens, weighted by length) against each training piece's
(:func:`attribution.build.train_piece_embeddings`).

Results go to ``RUN/scored/`` (:data:`attribution.table.SCORED_DIR`), the build's layout for pieces scored
after the build: ``outputs.parquet`` (one row per piece with its provenance), ``outputs/<id>.mid`` and
``.npy``, ``attribution.parquet`` and ``passages.parquet``. A piece's id is its file name's slug and the
first 8 hex digits of the file's SHA-256; scoring a file whose content was scored before replaces its
rows. Every table is written atomically, ``outputs.parquet`` last; the build's own tables are never
modified. Every input is read and checked before anything is written.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .errors import AttributionError, FeatureStoreError
from .runfolder import atomic_write, check_published
from .table import PASSAGES_FILE, SCORED_DIR, SCORES_FILE, OUTPUTS_FILE

__all__ = ["ScoredPieces", "context_windows", "piece_id", "score_pieces"]

#: Files :func:`score_pieces` accepts: MIDI, or token ids of the run's tokenizer (BOS first) as a NumPy array.
SUFFIXES = (".mid", ".midi", ".npy")


@dataclass
class ScoredPieces:
    """What :func:`score_pieces` wrote: one row per piece, its scores, its passages, and phase timings."""

    run_dir: Path
    outputs: pd.DataFrame  # the new rows of scored/outputs.parquet
    scores: pd.DataFrame  # output_id, train_id, creator, method, score
    passages: pd.DataFrame  # output_id, passage, first_event, end_event, train_id, score
    seconds: dict[str, float] = field(default_factory=dict)  # wall seconds of each phase
    window_scores: np.ndarray | None = None  # (n_windows, n_pieces) TRAK of each context window, in piece order
    window_piece: np.ndarray | None = None  # (n_windows,) which scored piece each window belongs to
    passage_additivity_max_abs_error: float = float("nan")  # |sum of passages - piece| over pieces, TRAK


@dataclass
class _Piece:
    output_id: str
    tokens: np.ndarray  # BOS first
    source_file: str
    file_sha256: str


def context_windows(n_events: int, block_size: int, stride: int) -> list[tuple[int, int, int]]:
    """The context windows of a piece of ``n_events`` events, as ``(offset, start, end)``.

    The window's tokens are ``tokens[offset : offset + block_size + 1]``, and it owns the events
    ``[offset + start, offset + end)`` (positions ``[start, end)`` of its targets). The owned runs partition
    ``range(n_events)``; see the module docstring.
    """
    if not 1 <= stride <= block_size:
        raise AttributionError(f"stride {stride} must be between 1 and the model's block_size ({block_size})")
    first = min(n_events, block_size)
    windows = [(0, 0, first)] if n_events else []
    for a in range(first, n_events, stride):
        b = min(a + stride, n_events)
        offset = b - block_size
        windows.append((offset, a - offset, b - offset))
    return windows


def piece_id(path: Path, digest: str) -> str:
    """``<slug of the file name>-<first 8 hex of its SHA-256>``, e.g. ``minuet-3fa2b1c0``."""
    slug = re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower()).strip("-") or "piece"
    return f"{slug[:60]}-{digest[:8]}"


# ---------------------------------------------------------------------------------------- reading the run


@dataclass
class _Run:
    root: Path
    cfg: object  # BuildConfig
    resolved: dict
    tokenizer: object
    checkpoints: list[Path]
    trak_cfg: object
    checkpoint_lrs: list[float]
    windows: object  # attribution.windows.Windows
    corpus: pd.DataFrame


def _rebuild_fix(root: Path) -> str:
    return (f"rebuild it with `royaltysim attribution build CONFIG --out {root}` (CONFIG: the config it was built "
            "from; for runs/default, `make attribution`)")


def _read_run(root: Path) -> _Run:
    from .build import trak_inputs
    from .config import BuildConfig
    from .tokenize import EventTokenizer
    from .windows import Windows

    if not root.is_dir():
        raise AttributionError(f"attribution run folder {root} does not exist; build one with "
                               "`royaltysim attribution build CONFIG --out RUN`")
    check_published(root)
    path = root / "config.yaml"
    try:
        resolved = yaml.safe_load(path.read_text())
        cfg = BuildConfig.model_validate(resolved["config"])
        names = list(resolved["metrics"]["attribution"]["trak_checkpoints"])
        str(resolved["inputs"]["trak_cache"])  # a finished build records its TRAK store's key
    except (OSError, yaml.YAMLError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise AttributionError(f"{path} is not a finished build's config ({type(exc).__name__}: {exc}); "
                               f"{_rebuild_fix(root)}") from None
    corpus_path, windows_path = root / "corpus.parquet", root / "model" / "windows.npz"
    for needed in (corpus_path, windows_path):
        if not needed.is_file():
            raise AttributionError(f"{needed} is missing: {root} is not a complete run; {_rebuild_fix(root)}")
    with np.load(windows_path, allow_pickle=False) as w:
        windows = Windows(w["train_tokens"], w["train_piece"], int(w["pad_id"]))
    missing = [n for n in names if not (root / "model" / n).is_file()]
    if missing:
        raise FeatureStoreError(f"the run's checkpoint(s) {', '.join(missing)} are missing from {root / 'model'} "
                                f"(its weights are not on this machine); {_rebuild_fix(root)}")
    ckpts, trak_cfg, lrs = trak_inputs(cfg, [root / "model" / n for n in names])
    return _Run(root, cfg, resolved, EventTokenizer(**cfg.tokenizer.model_dump()), ckpts, trak_cfg, lrs, windows,
                pd.read_parquet(corpus_path))


def _open_store(run: _Run, model, progress: bool):
    """traker's stored features for the run, refused unless they are the build's, complete and finalised."""
    from .scoring import cache_key, open_feature_store

    key = cache_key(run.checkpoints, run.windows.tokens, run.trak_cfg)
    stored_key = str(run.resolved["inputs"]["trak_cache"])
    fix = _rebuild_fix(run.root)
    if key != stored_key:
        raise FeatureStoreError(
            f"{run.root}'s checkpoints, training windows or TRAK settings, or this machine's traker/torch versions, "
            f"are not those its build scored with (TRAK store key {key}, the build's {stored_key} in config.yaml), so "
            f"its stored features do not describe this model; {fix}. Nothing was written."
        )
    try:
        return open_feature_store(model, run.checkpoints, run.windows.tokens, run.trak_cfg, run.root / "cache" / "trak",
                                  progress=progress, featurize=False)
    except FeatureStoreError as exc:
        raise FeatureStoreError(f"{exc}; {fix} (it featurises the training windows once). Nothing was written.") from None


def _train_sequences(windows) -> dict[int, np.ndarray]:
    """Each training piece's token sequence, rebuilt from its windows (stride ``block_size``, one token shared)."""
    out: dict[int, list[np.ndarray]] = {}
    for row, piece in zip(windows.tokens, windows.piece):
        parts = out.setdefault(int(piece), [])
        parts.append(row if not parts else row[1:])
    return {p: (lambda s: s[s != windows.pad_id])(np.concatenate(parts)) for p, parts in out.items()}


# ------------------------------------------------------------------------------------- reading the pieces


def _read_piece(path: Path, tokenizer, sustain: bool) -> _Piece:
    from .midi import MidiReadError, read_midi

    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise AttributionError(f"{path}: cannot score a {path.suffix or 'suffix-less'} file; give a MIDI file (.mid, "
                               ".midi) or the run's token ids (.npy)")
    if not path.is_file():
        raise AttributionError(f"{path} does not exist; give a MIDI (.mid) or token (.npy) file")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() == ".npy":
        tokens = _read_tokens(path, tokenizer)
    else:
        try:
            notes = read_midi(path, sustain=sustain)
        except MidiReadError as exc:
            raise AttributionError(f"{exc}; give a valid MIDI file") from None
        if not len(notes):
            raise AttributionError(f"{path} has no notes (drum tracks are ignored), so there is nothing to attribute")
        tokens = tokenizer.encode(notes)
    if len(tokens) < 2:
        raise AttributionError(f"{path} gives no events to attribute (only {len(tokens)} token)")
    return _Piece(piece_id(path, digest), tokens.astype(np.int64), str(path), digest)


def _read_tokens(path: Path, tokenizer) -> np.ndarray:
    try:
        tokens = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise AttributionError(f"{path} is not a NumPy token file ({exc}); give a .npy of token ids") from None
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise AttributionError(f"{path} holds a {tokens.dtype} array of shape {tokens.shape}; expected one row of "
                               "integer token ids (BOS first)")
    if not len(tokens) or tokens[0] != tokenizer.bos_id:
        raise AttributionError(f"{path} does not start with BOS ({tokenizer.bos_id}); token files hold a piece's ids "
                               "BOS first, as the run's outputs/*.npy do")
    bad = tokens[(tokens < 0) | (tokens >= tokenizer.vocab_size) | (tokens == tokenizer.pad_id)]
    if len(bad):
        raise AttributionError(f"{path} holds ids outside the run's vocabulary or PAD (e.g. {int(bad[0])}; "
                               f"vocabulary 0..{tokenizer.vocab_size - 1}, PAD {tokenizer.pad_id})")
    return tokens


# ----------------------------------------------------------------------------------------- scoring


def _trak_scores(run: _Run, pieces: list[_Piece], stride: int, progress: bool, passages: bool = True):
    """TRAK family per piece (summed over windows), per passage, and per window; (n_pieces, n_train_windows).

    Without ``passages`` only the windows are scored (no passage rows): one target per window instead of one per
    window and passage part.
    """
    import torch

    from .model import ModelConfig, MusicTransformer
    from .scoring import drop_experiment, gradient_baselines, score_experiments, segment_bounds
    from .train import load_checkpoint

    state = load_checkpoint(run.checkpoints[-1])
    model_cfg = ModelConfig(**state["model_config"])
    B, pad = model_cfg.block_size, model_cfg.pad_id
    store = _open_store(run, MusicTransformer(model_cfg), progress)

    win_tokens, win_piece, win_start, win_end, win_offset = [], [], [], [], []
    part_window, part_passage, part_start, part_end = [], [], [], []  # a passage's run inside one window
    passage_rows: list[tuple[int, int, int, int]] = []  # (piece, passage, first_event, end_event)
    for i, piece in enumerate(pieces):
        n = len(piece.tokens) - 1
        first_window = len(win_tokens)
        for offset, start, end in context_windows(n, B, stride):
            chunk = piece.tokens[offset : offset + B + 1]
            win_tokens.append(np.concatenate([chunk, np.full(B + 1 - len(chunk), pad, dtype=np.int64)]))
            win_piece.append(i), win_start.append(start), win_end.append(end), win_offset.append(offset)
        for p, (a, b) in enumerate(segment_bounds(n, run.trak_cfg.segment_events) if passages else []):
            row = len(passage_rows)
            passage_rows.append((i, p, a, b))
            for w in range(first_window, len(win_tokens)):
                lo = max(a, win_offset[w] + win_start[w])
                hi = min(b, win_offset[w] + win_end[w])
                if lo < hi:
                    part_window.append(w), part_passage.append(row)
                    part_start.append(lo - win_offset[w]), part_end.append(hi - win_offset[w])
    toks = torch.as_tensor(np.stack(win_tokens), dtype=torch.long)
    exp = f"piece_scores_{os.getpid()}"
    experiments = {exp: (toks, torch.as_tensor(win_start), torch.as_tensor(win_end))}
    if part_window:
        experiments[exp + "_passages"] = (toks[torch.as_tensor(part_window)], torch.as_tensor(part_start),
                                          torch.as_tensor(part_end))

    with _locked(store.save_dir / ".piece_scores.lock"):
        try:
            scored = score_experiments(store, experiments, run.trak_cfg.batch_size, progress)
            win_trak, win_1ckpt = scored[exp]
            parts = scored[exp + "_passages"][0] if part_window else np.zeros((0, len(run.windows)))
            baselines = gradient_baselines(store, exp, len(win_tokens), run.checkpoint_lrs, rows=np.asarray(win_piece))
        finally:
            for name in experiments:
                drop_experiment(store, name)
    n_train = len(run.windows)
    by_piece = {name: np.zeros((len(pieces), n_train)) for name in ("trak", "trak_1ckpt")}
    np.add.at(by_piece["trak"], np.asarray(win_piece), win_trak)
    np.add.at(by_piece["trak_1ckpt"], np.asarray(win_piece), win_1ckpt)
    passage_scores = np.zeros((len(passage_rows), n_train))
    np.add.at(passage_scores, np.asarray(part_passage, dtype=np.int64), parts)
    return by_piece | baselines, passage_scores, passage_rows, win_trak, np.asarray(win_piece)


def _piece_embedding(model, tokens: np.ndarray, block_size: int) -> np.ndarray:
    """The build's output embedding, over non-overlapping chunks of ``block_size`` tokens weighted by length."""
    from .build import _embeddings

    starts = range(0, max(len(tokens) - 1, 1), block_size)
    chunks = [tokens[s : s + block_size] for s in starts]
    emb = np.concatenate([_embeddings(model, c[None, :], model.config.pad_id) for c in chunks])
    weights = np.array([len(c) for c in chunks], dtype=float)
    return (emb * weights[:, None]).sum(0) / weights.sum()


def _cached_train_embeddings(run: _Run, final, n_train_pieces: int, compute) -> np.ndarray:
    """The training pieces' ``sim_embedding`` vectors, computed once per final checkpoint and windows.

    They cost a forward pass over every training window (most of a query's time), so the first query stores them
    in ``RUN/cache/similarity/<key>.npy``, keyed to the final checkpoint's bytes and the windows' tokens; a
    changed model or corpus gets a new key, and a damaged file is recomputed.
    """
    h = hashlib.sha256(Path(run.checkpoints[-1]).read_bytes())
    tokens = np.ascontiguousarray(run.windows.tokens, dtype=np.int64)
    h.update(f"{tokens.shape}{n_train_pieces}".encode())
    h.update(tokens.tobytes())
    path = run.root / "cache" / "similarity" / f"{h.hexdigest()[:16]}.npy"
    if path.is_file():
        try:
            emb = np.load(path, allow_pickle=False)
            if emb.shape[0] == n_train_pieces:
                return emb
        except (OSError, ValueError):
            pass  # damaged: recompute below
    emb = compute(final, run.windows, n_train_pieces)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: np.save(tmp, emb, allow_pickle=False))
    return emb


def _similarity(run: _Run, pieces: list[_Piece], n_train_pieces: int) -> dict[str, np.ndarray]:
    from .build import train_piece_embeddings
    from .similarity import cosine_matrix, interval_ngram_similarity, pitch_hist_similarity
    from .train import load_model

    decode = run.tokenizer.decode
    out_notes = [decode(p.tokens) for p in pieces]
    sequences = _train_sequences(run.windows)
    train_notes = [decode(sequences[i]) for i in range(n_train_pieces)]
    final = load_model(run.checkpoints[-1])
    piece_emb = _cached_train_embeddings(run, final, n_train_pieces, train_piece_embeddings)
    out_emb = np.stack([_piece_embedding(final, p.tokens, final.config.block_size) for p in pieces])
    return {
        "sim_pitch_hist": pitch_hist_similarity(out_notes, train_notes),
        "sim_interval_ngram": interval_ngram_similarity(out_notes, train_notes, run.cfg.similarity.ngram),
        "sim_embedding": np.clip(cosine_matrix(out_emb, piece_emb), 0.0, None),
    }


@contextmanager
def _locked(path: Path):
    """An exclusive lock held by one process at a time (scorers of one run wait for each other)."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def score_pieces(
    run_dir: str | Path, files: list[str | Path], stride: int | None = None, progress: bool = False,
    passages: bool = True,
) -> ScoredPieces:
    """Score MIDI (or token) files against a built run and append the results to ``RUN/scored/``.

    Args:
        run_dir: a finished attribution run whose TRAK features are stored (``RUN/cache/trak/``).
        files: ``.mid``/``.midi`` files, or ``.npy`` token ids of the run's tokenizer (BOS first).
        stride: events owned by each context window after the first (default ``block_size // 2``).
        passages: also score each passage of ``trak.segment_events`` events (``passages.parquet``, what the
            Content ID page colours). Without them a piece costs one gradient per window and checkpoint instead
            of one per window, passage and checkpoint (on the default run about a sixteenth), and its
            ``outputs.parquet`` row says ``passages`` False.

    Raises:
        AttributionError: a missing or unfinished run, an unreadable or empty piece, a bad stride.
        FeatureStoreError: the run's stored features are missing, unfinished or not its build's.
        Nothing is written when any is raised.
    """
    import torch

    from .windows import piece_sum

    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    root = Path(run_dir)
    if not files:
        raise AttributionError("no pieces to score; give one or more .mid or .npy files")
    run = _read_run(root)
    if run.cfg.threads:
        torch.set_num_threads(run.cfg.threads)
    block_size = int(run.cfg.model.block_size)
    stride = (block_size // 2 or 1) if stride is None else int(stride)
    context_windows(block_size + 1, block_size, stride)  # checks the stride before any work
    sustain = bool(getattr(run.cfg.corpus, "sustain", True))
    pieces: dict[str, _Piece] = {}
    for f in files:
        piece = _read_piece(Path(f), run.tokenizer, sustain)
        pieces.setdefault(piece.file_sha256, piece)  # the same content twice is scored once
    pieces_list = list(pieces.values())
    seconds["read"] = time.perf_counter() - t0

    t = time.perf_counter()
    n_pieces = len(run.corpus)
    methods, part_scores, passage_rows, win_trak, win_piece = _trak_scores(run, pieces_list, stride, progress,
                                                                           passages)
    piece_scores = {m: piece_sum(v, run.windows.piece, n_pieces) for m, v in methods.items()}
    passage_scores = piece_sum(part_scores, run.windows.piece, n_pieces)
    window_scores = piece_sum(win_trak, run.windows.piece, n_pieces)
    seconds["trak"] = time.perf_counter() - t

    t = time.perf_counter()
    piece_scores |= _similarity(run, pieces_list, n_pieces)
    seconds["similarity"] = time.perf_counter() - t

    t = time.perf_counter()
    passage_piece = np.array([r[0] for r in passage_rows], dtype=np.int64)
    summed = np.zeros_like(piece_scores["trak"])
    np.add.at(summed, passage_piece, passage_scores)
    settings = {
        "trak": {**vars(run.trak_cfg), "checkpoints": [p.name for p in run.checkpoints]},
        "context": {"block_size": block_size, "stride": stride},
        "passages": bool(passages),
        "similarity": run.cfg.similarity.model_dump(),
        "tokenizer": run.cfg.tokenizer.model_dump(),
    }
    outputs, scores, passages_df = _tables(run, pieces_list, piece_scores, passage_scores, passage_rows, win_piece,
                                           settings)
    _write(root, pieces_list, outputs, scores, passages_df, run.tokenizer)
    seconds["write"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    additivity = float(np.abs(summed - piece_scores["trak"]).max()) if passages else float("nan")
    return ScoredPieces(root, outputs, scores, passages_df, seconds, window_scores, win_piece, additivity)


def _tables(run: _Run, pieces, piece_scores, passage_scores, passage_rows, win_piece, settings):
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ids = np.array([p.output_id for p in pieces])
    rows = []
    for i, p in enumerate(pieces):
        notes = run.tokenizer.decode(p.tokens)
        rows.append({
            "output_id": p.output_id, "events": int(len(p.tokens) - 1), "seconds": float(notes[:, 2].max()) if len(notes) else 0.0,
            "notes": int(len(notes)), "midi": f"{SCORED_DIR}/outputs/{p.output_id}.mid",
            "tokens": f"{SCORED_DIR}/outputs/{p.output_id}.npy", "source_file": p.source_file,
            "file_sha256": p.file_sha256, "scored_at": now, "trak_cache": str(run.resolved["inputs"]["trak_cache"]),
            "settings": json.dumps(settings, sort_keys=True), "windows": int((win_piece == i).sum()),
            "passages": bool(settings["passages"]),
        })
    train_ids, creators = run.corpus["train_id"].to_numpy(), run.corpus["creator"].to_numpy()
    n_train = len(train_ids)
    scores = pd.concat([
        pd.DataFrame({"output_id": np.repeat(ids, n_train), "train_id": np.tile(train_ids, len(ids)),
                      "creator": np.tile(creators, len(ids)), "method": method, "score": matrix.ravel()})
        for method, matrix in piece_scores.items()
    ], ignore_index=True)
    rows_of = np.array(passage_rows, dtype=np.int64).reshape(-1, 4)  # typed even when no passages were scored
    passages = pd.DataFrame({
        "output_id": np.repeat(ids[rows_of[:, 0]], n_train),
        "passage": np.repeat(rows_of[:, 1], n_train),
        "first_event": np.repeat(rows_of[:, 2], n_train),
        "end_event": np.repeat(rows_of[:, 3], n_train),
        "train_id": np.tile(train_ids, len(passage_rows)),
        "score": passage_scores.ravel().astype(np.float32),
    })
    return pd.DataFrame(rows), scores, passages


def _write(root: Path, pieces: list[_Piece], outputs: pd.DataFrame, scores: pd.DataFrame, passages: pd.DataFrame,
           tokenizer) -> None:
    """Append to ``RUN/scored/``: pieces' files, then scores and passages, then ``outputs.parquet`` (the index)."""
    from .midi import write_midi

    folder = root / SCORED_DIR
    (folder / "outputs").mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        old = pd.read_parquet(folder / OUTPUTS_FILE) if (folder / OUTPUTS_FILE).is_file() else None
        replaced = set()
        if old is not None:
            same = old["file_sha256"].isin(outputs["file_sha256"]) | old["output_id"].isin(outputs["output_id"])
            replaced = set(old.loc[same, "output_id"])
        for p in pieces:
            atomic_write(folder / "outputs" / f"{p.output_id}.npy", lambda f, p=p: np.save(f, p.tokens))
            atomic_write(folder / "outputs" / f"{p.output_id}.mid", lambda f, p=p: write_midi(tokenizer.decode(p.tokens), f))
        for name, new in ((SCORES_FILE, scores), (PASSAGES_FILE, passages), (OUTPUTS_FILE, outputs)):
            path = folder / name
            table = new
            if path.is_file():
                kept = pd.read_parquet(path)
                table = pd.concat([kept[~kept["output_id"].isin(replaced)], new], ignore_index=True)
            atomic_write(path, lambda f, t=table: t.to_parquet(f, index=False))
        for stale in replaced - set(outputs["output_id"]):  # the same content scored before under another name
            for suffix in (".mid", ".npy"):
                (folder / "outputs" / f"{stale}{suffix}").unlink(missing_ok=True)
