"""``royaltysim attribution ...``: build and inspect attribution runs.

Commands import torch inside their bodies, so ``royaltysim --help`` and the economy commands stay
light.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

app = typer.Typer(
    help="Train a music transformer on real music, generate pieces, and score which training pieces "
    "(and creators) each generated piece draws on.",
    no_args_is_help=True,
)


@app.command()
def build(
    config: Path = typer.Argument(..., help="Build config YAML, e.g. configs/attribution-default.yaml."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run folder to write (default: runs/<name>)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run corpus -> train -> generate -> score end to end and write an attribution run folder.

    A rerun into the same folder reuses what is done: the parsed corpus (cached), training (resumes
    from its last checkpoint) and TRAK features (keyed to the model).
    """
    from .build import build as run_build
    from .config import BuildConfigError, load_build_config

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cfg = load_build_config(config)
    except BuildConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    run_dir = out or Path("runs") / cfg.name
    result = run_build(cfg, run_dir, progress=not quiet)
    m = result.metrics
    typer.echo(f"\nattribution run written to {run_dir}")
    typer.echo(
        f"  corpus: {m['corpus']['train_pieces']} training pieces by {m['corpus']['creators']} creators, "
        f"{m['corpus']['train_events']} events; {len(m['corpus']['skipped_files'])} files skipped"
    )
    if "validation_loss" in m["model"]:
        typer.echo(
            f"  model: {m['model']['params']} parameters, validation loss {m['model']['validation_loss']:.3f} "
            f"nats/event (unigram baseline {m['model']['unigram_validation_loss']:.3f})"
        )
    typer.echo(f"  outputs: {m['attribution']['outputs']}; methods: {', '.join(m['attribution']['methods'])}")
    for stage, s in result.stages.items():
        typer.echo(f"  {stage:<11} {s['seconds']:>8.1f} s   peak {s['peak_rss_mb']:>7.0f} MB")


@app.command()
def show(
    run: Path = typer.Argument(..., help="An attribution run folder, e.g. runs/default."),
    method: str = typer.Option("trak", help="Attribution method to summarise."),
    top: int = typer.Option(10, help="How many creators to list."),
) -> None:
    """Summarise a run: creators' share of attribution under a method, next to similarity."""
    from rich.console import Console
    from rich.table import Table

    from .table import AttributionTable, AttributionTableError

    try:
        table = AttributionTable.load(run)
        shares = table.creator_shares(method).mean()
    except AttributionTableError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    sims = {m: table.creator_shares(m, how="max").mean() for m in table.methods if m.startswith("sim_")}
    out = Table(title=f"{run}: mean share of each output's attribution ({method}, negatives clipped)")
    out.add_column("creator")
    out.add_column("pieces", justify="right")
    out.add_column(method, justify="right")
    for m in sims:
        out.add_column(m, justify="right")
    pieces = table.corpus["creator"].value_counts()
    for creator in shares.sort_values(ascending=False).index[:top]:
        out.add_row(
            creator, str(pieces[creator]), f"{shares[creator]:.3f}", *(f"{s[creator]:.3f}" for s in sims.values())
        )
    Console().print(out)
    Console().print(f"methods: {', '.join(table.methods)}; outputs: {len(table.outputs)}")
