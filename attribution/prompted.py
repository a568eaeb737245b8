"""Prompted generation: continue a MIDI prompt (or start from nothing) with a built run's model.

:func:`generate_from_run` loads the run's final checkpoint and tokenizer, turns the prompt into the run's
events (BOS, then the prompt's events; no EOS, so the piece goes on), samples continuations with
:func:`attribution.generate.sample` and writes a folder::

    generation.yaml     what was run: the run, its checkpoint (SHA-256), the prompt file (path, SHA-256,
                        events), every setting, the seed, versions, time
    pieces.parquet      one row per piece: piece_id, midi, tokens, prompt_events, events, forced_events,
                        constrained_events, notes, seconds
    gen000.mid, .npy    each piece as MIDI, and its tokens: BOS first, prompt then continuation, exactly the
                        sequence whose decode is the MIDI and whose log-likelihood attribution scores

The default folder is ``RUN/generated/<prompt stem or "bos">-s<seed>/``: inside the run, beside (not among)
the files a build publishes, so a rebuild neither lists nor removes it. The prompt is kept verbatim: every
piece's first ``prompt_events + 1`` tokens are the prompt's.

The whole sequence must fit the model's context (``block_size`` events after BOS): the model was trained on
windows of that length, and a sliding context would condition the continuation on a prompt the model no
longer sees. A longer prompt is refused with the fix (``prompt_seconds`` keeps its first seconds).

By default this uses the note-closing decoder (:class:`attribution.generate.NoteCloser`: notes at most
:data:`DEFAULT_MAX_NOTE_SECONDS` long, every note closed by a NOTE_OFF before the end); forced events are
ordinary events of the saved sequence. The same seed and settings give the same pieces.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .errors import AttributionError
from .midi import END, START, MidiReadError, read_midi, write_midi
from .runfolder import atomic_write, atomic_write_text, check_published, sha256_file, verify
from .tokenize import EventTokenizer

__all__ = [
    "DEFAULT_MAX_NOTE_SECONDS",
    "GenerationError",
    "Generated",
    "generate_from_run",
    "load_run_model",
    "prompt_tokens",
]

#: The note-closing decoder's longest note for ``royaltysim attribution generate``: 99.75% of the default
#: corpus's notes are no longer (its 99th percentile is 3 s).
DEFAULT_MAX_NOTE_SECONDS = 4.0
GENERATED = "generated"
_OWN_FILES = ("generation.yaml", "pieces.parquet")


class GenerationError(AttributionError):
    """A generation request cannot be run as asked: the run, the prompt or the settings."""


@dataclass
class Generated:
    """What :func:`generate_from_run` wrote."""

    folder: Path
    pieces: pd.DataFrame  # pieces.parquet
    settings: dict  # generation.yaml
    tokens: np.ndarray  # (n, length) int64, the saved sequences


def load_run_model(run_dir: str | Path):
    """The run's final checkpoint as a model, its tokenizer and the checkpoint path.

    Raises:
        GenerationError: the folder is not a finished run, holds no checkpoint (a fresh clone ships none), or
            its model folder is not the one the build recorded.
    """
    from .train import list_checkpoints, load_model

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise GenerationError(
            f"{run_dir} is not a finished attribution run (no config.yaml); build one with "
            "`royaltysim attribution build CONFIG --out RUN`"
        )
    check_published(run_dir)
    try:
        resolved = yaml.safe_load(config_path.read_text()) or {}
        tokenizer = EventTokenizer.from_dict(resolved["config"]["tokenizer"])
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise GenerationError(f"{config_path} is not a readable run config ({exc}); rebuild the run") from None
    ckpts = sorted(list_checkpoints(run_dir / "model"), key=lambda p: int(p.stem.split("_")[1]))
    if not ckpts:
        raise GenerationError(
            f"{run_dir}/model holds no checkpoint (ckpt_*.pt); the shipped runs do not include weights. Rebuild them "
            f"with `royaltysim attribution build CONFIG --out {run_dir}` (for runs/default: `make attribution`)"
        )
    files = resolved.get("files") or {}
    damaged = verify(run_dir, files, only=["model/train_config.yaml"])
    if damaged:
        raise GenerationError(
            f"{run_dir}/model is not the model its build recorded ({'; '.join(damaged)}); rebuild the run with "
            f"`royaltysim attribution build CONFIG --out {run_dir}`"
        )
    model = load_model(ckpts[-1])
    if model.config.vocab_size != tokenizer.vocab_size:
        raise GenerationError(
            f"{ckpts[-1]} has {model.config.vocab_size} tokens but the run's tokenizer {tokenizer.vocab_size}; "
            "the folder mixes two builds: rebuild it"
        )
    return model, tokenizer, ckpts[-1]


def prompt_tokens(path: str | Path, tokenizer: EventTokenizer, seconds: float | None = None) -> np.ndarray:
    """A MIDI file as a prompt: ``[BOS, events...]`` (no EOS), optionally only its first ``seconds``.

    With ``seconds``, notes that start at or after it are dropped and notes sounding at it end there.

    Raises:
        GenerationError: the file cannot be read as MIDI, or it (or its first ``seconds``) holds no notes.
    """
    try:
        notes = read_midi(path)
    except MidiReadError as exc:
        raise GenerationError(f"--prompt: {exc}; pass a readable .mid file") from None
    if seconds is not None:
        if not seconds > 0:
            raise GenerationError(f"--prompt-seconds must be > 0, got {seconds}")
        notes = notes[notes[:, START] < seconds].copy()
        notes[:, END] = np.minimum(notes[:, END], seconds)
    if len(notes) == 0:
        where = f"in its first {seconds} s" if seconds is not None else "at all"
        raise GenerationError(f"--prompt {path} has no notes {where}; use a MIDI file with notes (or no --prompt)")
    return tokenizer.encode(notes)[:-1]  # without EOS: the piece continues


def _seconds_at(tokens: np.ndarray, position: int, tokenizer: EventTokenizer) -> float:
    """The time reached after ``tokens[:position]``."""
    shift0, shift1 = tokenizer.shift_id(1), tokenizer.shift_id(tokenizer.max_shift_steps)
    head = tokens[:position]
    steps = head[(head >= shift0) & (head <= shift1)] - shift0 + 1
    return float(steps.sum() * tokenizer.time_step)


def _prepare_folder(folder: Path, force: bool) -> None:
    """Refuse a folder holding other files unless ``force``, which removes only what a generation wrote."""
    if folder.exists() and not folder.is_dir():
        raise GenerationError(f"--out {folder} is a file; choose a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not force:
            raise GenerationError(
                f"{folder} is not empty; choose another --out, or pass --force to replace the generation in it"
            )
        for p in [*folder.glob("gen[0-9]*.mid"), *folder.glob("gen[0-9]*.npy"), *(folder / n for n in _OWN_FILES)]:
            p.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def generate_from_run(
    run_dir: str | Path,
    prompt: str | Path | None = None,
    events: int = 128,
    n: int = 4,
    seed: int = 0,
    out: str | Path | None = None,
    prompt_seconds: float | None = None,
    temperature: float | None = None,
    top_k: int | None | str = "run",
    max_note_seconds: float | None = DEFAULT_MAX_NOTE_SECONDS,
    close_notes_at_end: bool = True,
    force: bool = False,
    progress: bool = False,
) -> Generated:
    """Continue ``prompt`` (a MIDI file; None: from BOS) by ``events`` events, ``n`` times, and write the folder.

    ``temperature`` and ``top_k`` default to the run's own generation settings (``top_k="run"``; None: no
    top-k). ``max_note_seconds=None`` and ``close_notes_at_end=False`` sample exactly as the build does.

    Raises:
        GenerationError: a bad run, prompt or setting; the prompt plus ``events`` exceeding the context.
    """
    from .generate import NoteCloser, sample

    run_dir = Path(run_dir)
    if events < 1:
        raise GenerationError(f"--events must be >= 1, got {events}")
    if n < 1:
        raise GenerationError(f"--n must be >= 1, got {n}")
    model, tokenizer, ckpt = load_run_model(run_dir)
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    run_gen = resolved["config"].get("generation", {})
    temperature = float(run_gen.get("temperature", 1.0) if temperature is None else temperature)
    if not temperature > 0:
        raise GenerationError(f"--temperature must be > 0, got {temperature}")
    top_k = run_gen.get("top_k") if top_k == "run" else top_k
    if top_k is not None and top_k < 1:
        raise GenerationError(f"--top-k must be >= 1, got {top_k}")

    context = model.config.block_size + 1  # BOS and block_size events
    if prompt is None:
        head = np.array([tokenizer.bos_id], dtype=np.int64)
        prompt_info = None
    else:
        head = prompt_tokens(prompt, tokenizer, prompt_seconds)
        prompt_info = {
            "path": str(prompt),
            "sha256": sha256_file(prompt),
            "seconds_kept": prompt_seconds,
            "events": int(len(head) - 1),
            "seconds": round(_seconds_at(head, len(head), tokenizer), 6),
        }
    if len(head) + events > context:
        room = context - events - 1  # prompt events that would fit beside these new ones
        fixes = [f"lower --events to {context - len(head)} or less"] if context - len(head) >= 1 else []
        if room > 0 and prompt is not None:
            keep = np.floor(_seconds_at(head, room + 1, tokenizer) * 10) / 10
            fixes.append(f"keep about the first {keep:g} s of the prompt (--prompt-seconds {keep:g})" if keep > 0 else
                         "use a shorter prompt")
        elif prompt is not None:
            fixes.append(f"ask for fewer than {context - 1} --events")
        what = f"the prompt is {len(head) - 1} events and --events asks for {events} more" if prompt else f"--events asks for {events}"
        raise GenerationError(
            f"{what}, but the model's context is "
            f"{context - 1} events; {', or '.join(fixes)}"
        )
    try:
        rule = None
        if max_note_seconds is not None or close_notes_at_end:
            rule = NoteCloser(tokenizer, max_note_seconds=max_note_seconds, close_at_end=close_notes_at_end)
    except ValueError as exc:
        raise GenerationError(f"--max-note-seconds: {exc}") from None

    folder = Path(out) if out is not None else run_dir / GENERATED / f"{Path(prompt).stem if prompt else 'bos'}-s{seed}"
    _prepare_folder(folder, force)
    tokens = sample(
        model, n, len(head) + events, tokenizer.bos_id, temperature=temperature, top_k=top_k, seed=seed,
        banned=[tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id], progress=progress, prompt=head, rule=rule,
    )
    rows = []
    for i, seq in enumerate(tokens):
        piece_id = f"gen{i:03d}"
        notes = tokenizer.decode(seq)
        atomic_write(folder / f"{piece_id}.npy", lambda p, seq=seq: np.save(p, seq))
        atomic_write(folder / f"{piece_id}.mid", lambda p, notes=notes: write_midi(notes, p))
        rows.append({
            "piece_id": piece_id,
            "midi": f"{piece_id}.mid",
            "tokens": f"{piece_id}.npy",
            "prompt_events": int(len(head) - 1),
            "events": int(events),
            "forced_events": int(rule.forced[i].sum()) if rule else 0,
            "constrained_events": int(rule.constrained[i].sum()) if rule else 0,
            "notes": int(len(notes)),
            "seconds": float(notes[:, END].max()) if len(notes) else 0.0,
            "seed": int(seed),
        })
    pieces = pd.DataFrame(rows)
    settings = {
        "run": str(run_dir),
        "run_config_sha256": sha256_file(run_dir / "config.yaml"),
        "checkpoint": {"file": ckpt.name, "sha256": sha256_file(ckpt)},
        "prompt": prompt_info,
        "events": int(events),
        "n": int(n),
        "seed": int(seed),
        "temperature": temperature,
        "top_k": top_k,
        "max_note_seconds": max_note_seconds,
        "close_notes_at_end": bool(close_notes_at_end),
        "forced_events": "events the decoder forced are ordinary events of the saved tokens: scored with the "
        "model's own log-probability, and decoded into the MIDI like any other",
        "versions": {pkg: _version(pkg) for pkg in ("royaltysim", "torch", "numpy")},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write(folder / "pieces.parquet", lambda p: pieces.to_parquet(p, index=False))
    atomic_write_text(folder / "generation.yaml", yaml.safe_dump(settings, sort_keys=False))
    return Generated(folder=folder, pieces=pieces, settings=settings, tokens=tokens)
