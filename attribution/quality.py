"""Generation quality: how much generated pieces sound like the corpus, measured on their tokens.

Metrics are pure functions on arrays (each docstring gives its range and the meaning of its ends):

* :func:`duration_histogram`, :func:`pitch_class_counts` -- note-duration and pitch-class distributions;
* :func:`js_divergence` -- Jensen-Shannon divergence of two distributions (base 2, in [0, 1]);
* :func:`hanging_fraction` -- notes the sequence left sounding at its end, which the MIDI writer cuts
  (read from the tokens: :meth:`attribution.tokenize.EventTokenizer.decode` ``with_endings``);
* :func:`long_fraction` -- notes longer than a limit (4 s by default);
* :func:`log_likelihood_per_event` -- mean log-likelihood per event under a model, over the non-overlapping
  context windows a build trains on (so a piece longer than the context is scored window by window).

:func:`quality_table` puts them side by side for a set of pieces and the run's training corpus (its
training windows reassembled into pieces: exactly the music the model saw, on the tokenizer's grid).
The log-likelihood is taken under a *second* model, trained with the run's recipe on the same windows but
another seed (:func:`train_reference`), so it does not reward a model for liking its own samples; held-out
real music under the same model is the yardstick.

Jensen-Shannon comes from scipy (``scipy.spatial.distance.jensenshannon``, squared: the divergence).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import AttributionError
from .midi import END, PITCH, START

__all__ = [
    "DURATION_EDGES",
    "QualityError",
    "corpus_sequences",
    "duration_histogram",
    "hanging_fraction",
    "js_divergence",
    "load_pieces_folder",
    "load_reference",
    "log_likelihood_per_event",
    "long_fraction",
    "pitch_class_counts",
    "piece_metrics",
    "quality_table",
    "train_reference",
]

#: Bin edges (seconds) of the note-duration histogram: fine where most notes are, the last bin open.
DURATION_EDGES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, np.inf)
LONG_SECONDS = 4.0
QUANTILES = (0.1, 0.5, 0.9, 0.99)


class QualityError(AttributionError):
    """A quality measurement cannot be made as asked (no pieces, no reference model, ...)."""


# ------------------------------------------------------------------------------------------ pure metrics
def duration_histogram(durations: np.ndarray, edges=DURATION_EDGES) -> np.ndarray:
    """Counts of note durations (seconds) in the bins ``[edges[i], edges[i+1])``; (len(edges) - 1,)."""
    return np.histogram(np.asarray(durations, dtype=np.float64), bins=np.asarray(edges, dtype=np.float64))[0].astype(np.float64)


def pitch_class_counts(pitches: np.ndarray) -> np.ndarray:
    """Number of notes of each pitch class C..B (each note counts once, whatever its length); (12,)."""
    return np.bincount(np.asarray(pitches, dtype=np.int64) % 12, minlength=12).astype(np.float64)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2) of two histograms, each normalised to sum to 1.

    Range [0, 1]: 0 for the same distribution, 1 for distributions with no bin in common.

    Raises:
        ValueError: the shapes differ, a count is negative, or a histogram is empty.
    """
    from scipy.spatial.distance import jensenshannon

    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"histograms of different shapes {p.shape} and {q.shape}")
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("histograms must be non-negative with a positive total")
    return float(jensenshannon(p, q, base=2) ** 2)


def hanging_fraction(endings: np.ndarray) -> float:
    """Share of notes left sounding when the sequence ends (ending ``"end"``); in [0, 1], NaN with no notes.

    0: every note was closed by the sequence itself (a NOTE_OFF or a new strike); 1: none was.
    """
    endings = np.asarray(endings)
    return float(np.mean(endings == "end")) if len(endings) else float("nan")


def long_fraction(durations: np.ndarray, seconds: float = LONG_SECONDS) -> float:
    """Share of notes strictly longer than ``seconds``; in [0, 1] (0: none), NaN with no notes."""
    durations = np.asarray(durations, dtype=np.float64)
    return float(np.mean(durations > seconds + 1e-9)) if len(durations) else float("nan")


# ------------------------------------------------------------------------------------------ pieces
def piece_metrics(sequences: list[np.ndarray], tokenizer) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-piece numbers and all notes of token ``sequences``.

    Returns:
        (pieces, notes): ``pieces`` has one row per sequence (piece, events, notes, seconds, hanging,
        long); ``notes`` one row per note (piece, pitch, start, end, duration, ending).
    """
    piece_rows, note_frames = [], []
    for i, seq in enumerate(sequences):
        notes, endings = tokenizer.decode(np.asarray(seq), with_endings=True)
        dur = notes[:, END] - notes[:, START]
        piece_rows.append({
            "piece": i,
            "events": int(np.isin(seq, [tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id], invert=True).sum()),
            "notes": len(notes),
            "seconds": float(notes[:, END].max()) if len(notes) else 0.0,
            "hanging": int((endings == "end").sum()),
            "long": int((dur > LONG_SECONDS + 1e-9).sum()),
        })
        note_frames.append(pd.DataFrame({
            "piece": i, "pitch": notes[:, PITCH].astype(int), "start": notes[:, START], "end": notes[:, END],
            "duration": dur, "ending": endings.astype(str),
        }))
    notes_df = pd.concat(note_frames, ignore_index=True) if note_frames else pd.DataFrame(
        columns=["piece", "pitch", "start", "end", "duration", "ending"]
    )
    return pd.DataFrame(piece_rows), notes_df


def corpus_sequences(windows_npz: str | Path, split: str = "train") -> list[np.ndarray]:
    """The pieces of a run's ``model/windows.npz`` reassembled from their windows (BOS ... EOS, no PAD).

    Consecutive windows of a piece overlap by one token (:func:`attribution.windows.make_windows`).
    """
    with np.load(windows_npz, allow_pickle=False) as w:
        tokens, piece, pad = w[f"{split}_tokens"], w[f"{split}_piece"], int(w["pad_id"])
    out = []
    for p in np.unique(piece):
        rows = tokens[piece == p]
        seq = np.concatenate([rows[0], *(r[1:] for r in rows[1:])])
        out.append(seq[seq != pad])
    return out


def load_pieces_folder(folder: str | Path) -> tuple[list[str], list[np.ndarray]]:
    """The token files (``*.npy``, BOS first) of a folder of pieces, by name; (names, sequences).

    Raises:
        QualityError: the folder is missing or holds no ``.npy`` token files.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.npy")) if folder.is_dir() else []
    if not files:
        raise QualityError(
            f"{folder} holds no token files (*.npy); pass --pieces a folder written by `royaltysim attribution "
            "generate` or a run's outputs/ (quality is measured on the tokens, which say which notes were left sounding)"
        )
    return [f.stem for f in files], [np.load(f, allow_pickle=False).astype(np.int64) for f in files]


# ------------------------------------------------------------------------------------------ likelihood
def log_likelihood_per_event(model, sequences: list[np.ndarray], pad_id: int, batch_size: int = 32) -> float:
    """Mean ``log p(event | context)`` over every event after the first token of each sequence (nats, <= 0).

    Sequences are cut like training data (windows of ``block_size + 1`` tokens, stride ``block_size``), so
    each event is scored once, in the context of its own window. 0 would mean every event certain; the
    unigram baseline of a build (``config.yaml``) says what "knowing nothing of context" scores.
    """
    import torch

    from .model import event_log_probs
    from .windows import make_windows

    windows = make_windows(list(sequences), model.config.block_size, pad_id)
    if len(windows) == 0:
        raise QualityError("no sequence has an event to score")
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            batch = torch.as_tensor(windows.tokens[start : start + batch_size], dtype=torch.long)
            logits, _ = model(batch[:, :-1])
            total += float(event_log_probs(logits, batch[:, 1:], pad_id).double().sum())
            count += int((batch[:, 1:] != pad_id).sum())
    return total / count


def train_reference(run_dir: str | Path, folder: str | Path, seed: int = 1, progress: bool = False):
    """Train (or reuse, or resume) the second model: the run's recipe on its windows, with ``seed``.

    Costs what the build's ``train`` stage cost (``config.yaml`` ``stages``). Returns the model.
    """
    from .model import ModelConfig
    from .retrain.plan import load_run_inputs
    from .train import TrainConfig, load_model, train_model
    from .windows import Windows

    inputs = load_run_inputs(run_dir)
    base = TrainConfig(**inputs.train_config)
    if seed == base.seed:
        raise QualityError(f"the reference model needs another seed than the run's own ({base.seed}); pick another")
    tcfg = replace(base, seed=seed, checkpoints=[1.0], eval_every=base.steps)
    windows = Windows(inputs.train_tokens, inputs.train_piece, inputs.pad_id)
    result = train_model(windows, ModelConfig(**inputs.model_config), tcfg, Path(folder), progress=progress, desc=f"reference seed {seed}")
    return load_model(result.checkpoints[-1])


def load_reference(path: str | Path):
    """A model from a checkpoint file, or the last ``ckpt_*.pt`` of a folder.

    Raises:
        QualityError: no checkpoint there.
    """
    from .train import list_checkpoints, load_model

    path = Path(path)
    if path.is_file():
        return load_model(path)
    ckpts = sorted(list_checkpoints(path), key=lambda p: int(p.stem.split("_")[1])) if path.is_dir() else []
    if not ckpts:
        raise QualityError(
            f"no reference model at {path} (a ckpt_*.pt file or a folder holding one); train one with "
            "`royaltysim attribution quality RUN --train-reference` or pass --reference"
        )
    return load_model(ckpts[-1])


# ------------------------------------------------------------------------------------------ the table
def quality_table(
    pieces: list[np.ndarray],
    corpus: list[np.ndarray],
    tokenizer,
    reference=None,
    heldout: list[np.ndarray] | None = None,
    own_model=None,
) -> pd.DataFrame:
    """Quality metrics of ``pieces`` beside the ``corpus``: columns metric, pieces, corpus (tidy enough to print).

    ``reference``: the second model for the log-likelihood (rows omitted when None); its corpus value is
    that of the ``heldout`` real music. ``own_model``: the model that generated the pieces, whose
    log-likelihood is added likewise.
    """
    if not pieces:
        raise QualityError("no pieces to measure")
    sets = {"pieces": piece_metrics(pieces, tokenizer), "corpus": piece_metrics(corpus, tokenizer)}
    rows: dict[str, dict[str, float]] = {}

    def put(metric: str, name: str, value: float) -> None:
        rows.setdefault(metric, {})[name] = value

    for name, (per_piece, notes) in sets.items():
        put("pieces", name, len(per_piece))
        put("notes per piece (mean)", name, float(per_piece["notes"].mean()))
        put("seconds per piece (mean)", name, float(per_piece["seconds"].mean()))
        put("notes per second", name, float(per_piece["notes"].sum() / max(per_piece["seconds"].sum(), 1e-9)))
        for q in QUANTILES:
            put(f"note seconds q{int(q * 100)}", name, float(np.quantile(notes["duration"], q)) if len(notes) else np.nan)
        put("hanging notes (share)", name, hanging_fraction(notes["ending"].to_numpy()))
        put(f"notes > {LONG_SECONDS:g} s (share)", name, long_fraction(notes["duration"].to_numpy()))
    p_notes, c_notes = sets["pieces"][1], sets["corpus"][1]
    if len(p_notes):
        put("duration JS divergence vs corpus", "pieces", js_divergence(
            duration_histogram(p_notes["duration"]), duration_histogram(c_notes["duration"])))
        put("pitch-class JS divergence vs corpus", "pieces", js_divergence(
            pitch_class_counts(p_notes["pitch"]), pitch_class_counts(c_notes["pitch"])))
    for label, model in (("reference", reference), ("own model", own_model)):
        if model is None:
            continue
        metric = f"log-likelihood per event, {label}"
        put(metric, "pieces", log_likelihood_per_event(model, pieces, tokenizer.pad_id))
        if heldout:
            put(metric, "corpus", log_likelihood_per_event(model, heldout, tokenizer.pad_id))
    table = pd.DataFrame([{"metric": m, "pieces": v.get("pieces", np.nan), "corpus": v.get("corpus", np.nan)} for m, v in rows.items()])
    return table
