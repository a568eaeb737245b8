"""Generation quality of a run's shipped outputs against the note-closing decoder, on the same seeds.

    python benchmarks/generation_quality.py --run runs/default --reference REF [--checkpoint CKPT]
        [--train-reference] [--record] [--show 3]

Samples the run's own generation settings (count, length, temperature, top-k, seed) again with the run's
model: plainly (which must give the shipped ``outputs/*.npy`` bit for bit: checked and reported) and with the
decoder of :class:`attribution.generate.NoteCloser` under a few settings, then measures each set with
:func:`attribution.quality.quality_table` against the training corpus, the log-likelihood taken under a
second model (``--reference``: a checkpoint or folder; ``--train-reference`` trains one there with the run's
recipe and seed 1) and under the run's own. ``--checkpoint`` names the run's final checkpoint when the run
folder ships none (runs/default: a rebuild's ``model/ckpt_000300.pt``). Writes nothing into the run. With
``--record`` the table goes to benchmarks/RESULTS.md ("Generation quality (issue 18)").
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from results import record  # noqa: E402

from attribution.generate import NoteCloser, sample  # noqa: E402
from attribution.quality import corpus_sequences, load_pieces_folder, load_reference, quality_table, train_reference  # noqa: E402
from attribution.tokenize import EventTokenizer  # noqa: E402
from attribution.train import list_checkpoints, load_model  # noqa: E402

VARIANTS = {  # name -> NoteCloser settings (None: plain sampling, the build's)
    "plain (regenerated)": None,
    "close at end": {"max_note_seconds": None, "close_at_end": True},
    "max 4 s + close": {"max_note_seconds": 4.0, "close_at_end": True},
    "max 3 s + close": {"max_note_seconds": 3.0, "close_at_end": True},
    "max 2 s + close": {"max_note_seconds": 2.0, "close_at_end": True},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path, help="the run's final checkpoint (default: the last in RUN/model)")
    ap.add_argument("--reference", type=Path, required=True, help="second model: checkpoint or folder")
    ap.add_argument("--train-reference", action="store_true", help="train the second model into --reference first")
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--show", type=int, default=2, help="print the last notes of this many pieces per variant")
    args = ap.parse_args()

    resolved = yaml.safe_load((args.run / "config.yaml").read_text())
    tok = EventTokenizer.from_dict(resolved["config"]["tokenizer"])
    gen = resolved["config"]["generation"]
    ckpt = args.checkpoint or list_checkpoints(args.run / "model")[-1]
    model = load_model(ckpt)
    t0 = time.perf_counter()
    ref = train_reference(args.run, args.reference, seed=1) if args.train_reference else load_reference(args.reference)
    ref_seconds = time.perf_counter() - t0
    windows = args.run / "model" / "windows.npz"
    corpus, heldout = corpus_sequences(windows), corpus_sequences(windows, "val")
    _, shipped = load_pieces_folder(args.run / "outputs")

    sets: dict[str, list[np.ndarray]] = {"shipped": shipped}
    timing, forced = {}, {}
    for name, rule_args in VARIANTS.items():
        rule = NoteCloser(tok, **rule_args) if rule_args else None
        t0 = time.perf_counter()
        tokens = sample(model, gen["n_outputs"], gen["length"], tok.bos_id, temperature=gen["temperature"],
                        top_k=gen["top_k"], seed=gen["seed"], banned=[tok.pad_id, tok.bos_id, tok.eos_id], rule=rule)
        timing[name] = time.perf_counter() - t0
        forced[name] = float(rule.forced.sum() / rule.forced[:, 1:].size) if rule else 0.0
        sets[name] = list(tokens)
    identical = len(shipped) == len(sets["plain (regenerated)"]) and all(
        np.array_equal(a, b) for a, b in zip(shipped, sets["plain (regenerated)"])
    )
    print(f"plain sampling with {ckpt} reproduces the shipped outputs bit for bit: {identical}")

    columns = {}
    for name, seqs in sets.items():
        t = quality_table(seqs, corpus, tok, reference=ref, heldout=heldout, own_model=model).set_index("metric")
        columns[name] = t["pieces"]
        columns["corpus"] = t["corpus"]
    table = pd.DataFrame(columns)[["shipped", *VARIANTS, "corpus"]]
    table.loc["forced events (share)"] = pd.Series({"shipped": 0.0, **forced})
    table.loc[f"sampling seconds ({gen['n_outputs']} pieces)"] = pd.Series(timing)
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))

    for name, seqs in sets.items():
        for seq in seqs[: args.show]:
            notes, endings = tok.decode(seq, with_endings=True)
            tail = ", ".join(f"{int(p)}@{s:.2f}-{e:.2f}{'*' if x == 'end' else ''}" for (p, s, e, _), x in zip(notes[-6:], endings[-6:]))
            print(f"{name:>20}: {len(notes)} notes; last: {tail}  (* left sounding)")

    if args.record:
        fmt = lambda v: "" if v != v else (f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}")  # noqa: E731
        head = "| metric | " + " | ".join(table.columns) + " |\n|---|" + "---:|" * len(table.columns) + "\n"
        rows = "".join(f"| {m} | " + " | ".join(fmt(v) for v in r) + " |\n" for m, r in table.iterrows())
        body = (
            f"Measured on 2 cores shared with the default ground truth (two training processes at nice 5) and a "
            f"rebuild of runs/default; this at nice 10: the seconds are upper bounds.\n\n"
            f"`python benchmarks/generation_quality.py --run {args.run} --checkpoint {ckpt} --reference "
            f"{args.reference}` ({gen['n_outputs']} pieces of {gen['length'] - 1} events, temperature "
            f"{gen['temperature']}, top-k {gen['top_k']}, seed {gen['seed']}: the build's settings, every variant on the "
            f"same seed). Plain sampling reproduces the shipped outputs bit for bit: **{identical}**. Corpus column: the "
            f"run's training pieces (log-likelihood rows: its held-out pieces). Reference: the run's recipe retrained "
            f"with seed 1 ({ref_seconds:.0f} s to load or train here).\n\n" + head + rows
        )
        record("Generation quality (issue 18)", body)


if __name__ == "__main__":
    main()
