"""Time and peak memory of each stage of the default attribution build.

    python benchmarks/attribution_build.py [--config configs/attribution-default.yaml] [--out DIR] [--cold]

Runs the same `build()` as `royaltysim attribution build`, prints a table and records it in
benchmarks/RESULTS.md. `--cold` empties the parsed-corpus cache first, so the corpus stage includes
parsing the music21 scores (otherwise it reads the cache).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results import record  # noqa: E402

from attribution.build import build  # noqa: E402
from attribution.config import load_build_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/attribution-default.yaml")
    ap.add_argument("--out", default=None, help="run folder (default: a temporary folder)")
    ap.add_argument("--cold", action="store_true", help="empty the corpus cache first")
    ap.add_argument("--note", action="append", default=[], help="a line recorded under the table (repeatable)")
    args = ap.parse_args()
    load_before = os.getloadavg()
    cfg = load_build_config(args.config)
    if args.cold:
        from attribution.corpus import default_cache_dir

        shutil.rmtree(default_cache_dir(), ignore_errors=True)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-attr-"))
    result = build(cfg, out, progress=True)
    m = result.metrics
    rows = ["| stage | wall time (s) | peak RSS (MB) |", "|---|---:|---:|"]
    for stage, s in result.stages.items():
        rows.append(f"| {stage} | {s['seconds']:.1f} | {s['peak_rss_mb']:.0f} |")
    total = sum(s["seconds"] for s in result.stages.values())
    rows.append(f"| **total** | **{total:.1f}** | |")
    mm = m["model"]
    facts = [
        f"- config: `{args.config}`{' (cold corpus cache)' if args.cold else ' (corpus read from cache)'}",
        f"- corpus: {m['corpus']['train_pieces']} training pieces ({m['corpus']['validation_pieces']} held out) by "
        f"{m['corpus']['creators']} creators, {m['corpus']['train_events']:,} training events, "
        f"{len(m['corpus']['skipped_files'])} files skipped",
        f"- model: {mm['params']:,} parameters, {mm['train_windows']} training windows, "
        f"{mm['tokens_per_second']:,.0f} training tokens/s",
    ]
    if "validation_loss" in mm:
        facts.append(
            f"- validation loss {mm['validation_loss']:.3f} nats/event vs unigram baseline "
            f"{mm['unigram_validation_loss']:.3f}"
        )
    a = m["attribution"]
    facts.append(
        f"- attribution: {a['outputs']} outputs x {m['corpus']['train_pieces']} pieces x {len(a['methods'])} methods; "
        f"TRAK over {len(a['trak_checkpoints'])} checkpoints, proj_dim {a['proj_dim']}; passage scores sum to the "
        f"sequence score within {a['passage_additivity_max_abs_error']:.1e}"
    )
    before, after = load_before, os.getloadavg()
    facts.append(f"- 1-minute load average {before[0]:.2f} before, {after[0]:.2f} after "
                 f"(5-minute {before[1]:.2f} / {after[1]:.2f}) on {os.cpu_count()} cores")
    facts += [f"- {n}" for n in args.note]
    body = "\n".join(rows) + "\n\n" + "\n".join(facts)
    print(body)
    record("Attribution build (default config)", body)


if __name__ == "__main__":
    main()
