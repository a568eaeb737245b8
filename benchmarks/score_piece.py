"""Seconds per piece of `royaltysim attribution score` against a built run, next to the build's TRAK stage.

    python benchmarks/score_piece.py --run runs/default [--pieces a.mid b.mid ...] [--n 8] [--record]

Scores into a private copy of the run (its results, model and TRAK store; never the run itself): first each
piece alone (what one query costs, start-up of the store included), then all together in one call. The
pieces default to the run's own generated outputs (``outputs/*.mid``: re-tokenised, within the context)
plus each of them played twice in a row (longer than the context: several context windows), each scored with
and without passage scores (``--no-passages``); a first, untimed query caches the training side's embeddings. With
``--record`` the table goes to benchmarks/RESULTS.md ("Scoring new pieces").
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from results import record  # noqa: E402

from attribution.midi import read_midi, write_midi  # noqa: E402
from attribution.piece_scores import score_pieces  # noqa: E402


def _copy_run(run: Path, dest: Path) -> Path:
    """The files scoring reads, copied (the ground truth and evaluation are left behind)."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("ground_truth", "evaluation", "scored", ".staging"))
    return dest


def _default_pieces(run: Path, n: int, folder: Path) -> list[Path]:
    pieces = sorted((run / "outputs").glob("*.mid"))[:n]
    doubled = []
    for p in pieces[: max(1, n // 2)]:
        notes = read_midi(p, sustain=False)
        if len(notes):
            later = notes.copy()
            later[:, 1:3] += notes[:, 2].max()
            write_midi(np.concatenate([notes, later]), folder / f"{p.stem}_twice.mid")
            doubled.append(folder / f"{p.stem}_twice.mid")
    return pieces + doubled


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, type=Path, help="a built run with its TRAK store, e.g. runs/default")
    ap.add_argument("--pieces", nargs="*", type=Path, help="MIDI or token files (default: the run's outputs)")
    ap.add_argument("--n", type=int, default=8, help="how many of the run's outputs when --pieces is not given")
    ap.add_argument("--record", action="store_true", help="write the table into benchmarks/RESULTS.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = _copy_run(args.run, tmp / "run")
        pieces = args.pieces or _default_pieces(args.run, args.n, tmp)
        score_pieces(run, pieces[:1])  # the first query caches the training side's embeddings: not timed
        single = []
        for passages in (True, False):
            for p in pieces:
                t0 = time.perf_counter()
                res = score_pieces(run, [p], passages=passages)
                single.append((p.name, passages, int(res.outputs["events"].iloc[0]),
                               int(res.outputs["windows"].iloc[0]), time.perf_counter() - t0, res.seconds))
        batches = {}
        for passages in (True, False):
            shutil.rmtree(run / "scored")
            t0 = time.perf_counter()
            batches[passages] = (score_pieces(run, pieces, passages=passages), time.perf_counter() - t0)
    resolved = yaml.safe_load((args.run / "config.yaml").read_text())
    trak_stage = resolved["stages"]["trak"]["seconds"]
    n_outputs = resolved["metrics"]["attribution"]["outputs"]
    lines = [
        f"Run `{args.run}`: the build's TRAK stage took {trak_stage:.1f} s for {n_outputs} outputs "
        f"(featurising {resolved['metrics']['model']['train_windows']} training windows included).",
        "",
        "| piece | passages | events | windows | seconds alone | of which TRAK | similarity |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, passages, events, windows, total, phases in single:
        lines.append(f"| {name} | {'yes' if passages else 'no'} | {events} | {windows} | {total:.2f} | "
                     f"{phases['trak']:.2f} | {phases['similarity']:.2f} |")
    lines.append("")
    for passages, (together, batch_s) in batches.items():
        lines.append(f"All {len(pieces)} in one call, {'with' if passages else 'without'} passages: {batch_s:.2f} s "
                     f"({batch_s / len(pieces):.2f} s per piece; phases "
                     + ", ".join(f"{k} {v:.2f} s" for k, v in together.seconds.items()) + ").")
    body = "\n".join(lines)
    print(body)
    if args.record:
        record("Scoring new pieces", body + "\n\nCommand: `python benchmarks/score_piece.py --run "
               f"{args.run} --record`.")


if __name__ == "__main__":
    main()
