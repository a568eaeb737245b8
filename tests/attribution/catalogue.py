"""A tiny MIDI catalogue and build config that build a real run in seconds, and tools to probe run folders.

Shared by the attribution tests and the fault tests (``tests/faults/test_attribution_*.py``).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

CREATORS = (("ada", 60), ("bo", 55), ("cy", 67))

TINY_CONFIG = {
    "name": "t",
    "corpus": {"source": "midi_folder", "manifest": "manifest.csv"},
    "split": {"validation_fraction": 0.34, "min_pieces_for_validation": 3},
    "model": {"block_size": 32, "n_layer": 1, "n_head": 2, "d_model": 16},
    "train": {"steps": 30, "batch_size": 8, "warmup_steps": 5, "checkpoints": [0.5, 1.0], "eval_every": 15},
    "generation": {"n_outputs": 3, "length": 33, "top_k": 10},
    "trak": {"proj_dim": 8, "batch_size": 8, "segment_events": 8},
    "threads": 1,
}


def write_catalogue(folder: Path, n_per_creator: int = 3) -> Path:
    """Nine short MIDI pieces by three creators and their ``manifest.csv``; returns the manifest."""
    from attribution.midi import write_midi

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for creator, base in CREATORS:
        for k in range(n_per_creator):
            motif = base + rng.choice([0, 2, 4, 5, 7, 9, 11, 12], size=6)
            pitches = np.tile(motif, 5)
            t = np.arange(len(pitches)) * 0.25
            notes = np.stack([pitches, t, t + 0.2, np.full(len(t), 80)], axis=1).astype(float)
            write_midi(notes, folder / f"{creator}_{k}.mid")
            rows.append({"path": f"{creator}_{k}.mid", "creator": creator, "title": f"{creator} {k}"})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def write_config(folder: Path, **sections) -> Path:
    """``folder/cfg.yaml``: :data:`TINY_CONFIG` with ``sections`` merged in (one level deep)."""
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY_CONFIG.items()}
    for key, value in sections.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    path = folder / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def transpose(path: Path, semitones: int = 2) -> None:
    """Rewrite a MIDI file with the same rhythm and other pitches."""
    from attribution.midi import read_midi, write_midi

    notes = read_midi(path, sustain=False)
    notes[:, 0] += semitones
    write_midi(notes, path)


def folder_digest(folder: Path) -> str:
    """SHA-256 over every path, file content and file mode under ``folder`` (byte-identical check)."""
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        h.update(str(p.relative_to(folder)).encode() + b"\0")
        if p.is_file():
            h.update(oct(p.stat().st_mode).encode() + p.read_bytes())
    return h.hexdigest()


def published_digest(run: Path) -> str:
    """:func:`folder_digest` of what a build publishes (not its staging or traker's keyed cache)."""
    h = hashlib.sha256()
    for p in sorted(Path(run).rglob("*")):
        rel = p.relative_to(run)
        if rel.parts[0] in (".staging", "cache") or not p.is_file():
            continue
        h.update(str(rel).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


class _Payload:
    """Unpickling this runs ``touch MARKER``: what a planted checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant_pickle(path: Path, marker: Path) -> None:
    """Replace ``path`` with a pickle that creates ``marker`` when it is unpickled."""
    path.write_bytes(pickle.dumps({"model": _Payload(marker), "model_config": {}, "step": 1}))


def cli(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``royaltysim ARGS`` in a fresh process (what a user runs), output captured."""
    code = "import sys; from royaltysim.cli import app; sys.exit(app())"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def build(cfg: Path, run: Path, *extra: str):
    """``royaltysim attribution build CFG --out RUN -q`` in this process; returns typer's result."""
    from typer.testing import CliRunner

    from royaltysim.cli import app

    return CliRunner().invoke(app, ["attribution", "build", str(cfg), "--out", str(run), "-q", *map(str, extra)])
