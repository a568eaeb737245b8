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
    force: bool = typer.Option(
        False, "--force", help="Train anew even if the folder holds a model of other inputs (replaced when the build finishes)."
    ),
) -> None:
    """Run corpus -> train -> generate -> score end to end and write an attribution run folder.

    A rerun into the same folder reuses what is done, only where every input is the same: the parsed
    corpus (cached by content), training (resumes or reuses a model of the same windows, recipe and
    versions) and TRAK features (keyed to the checkpoints). A folder whose model was trained on anything
    else is refused before anything is written: use a new --out, or --force. Results are published
    together at the end, so an interrupted build leaves the old run in place.
    """
    from .build import build as run_build
    from .config import load_build_config
    from .errors import AttributionError

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cfg = load_build_config(config)
        run_dir = out or Path("runs") / cfg.name
        result = run_build(cfg, run_dir, progress=not quiet, force=force)
    except AttributionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
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

    from .errors import AttributionError
    from .table import AttributionTable

    try:
        table = AttributionTable.load(run)
        shares = table.creator_shares(method).mean()
    except AttributionError as exc:
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


@app.command()
def generate(
    run: Path = typer.Argument(..., help="A built attribution run folder with its model, e.g. runs/default."),
    prompt: Path | None = typer.Option(None, "--prompt", "-p", help="A MIDI file to continue (default: start from nothing)."),
    events: int = typer.Option(128, "--events", "-e", help="Events to add after the prompt (prompt + events must fit the context)."),
    n: int = typer.Option(4, "--n", "-n", help="How many continuations."),
    seed: int = typer.Option(0, "--seed", "-s", help="Sampling seed: the same seed and settings give the same pieces."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder to write (default: RUN/generated/<prompt stem or bos>-s<seed>/)."),
    prompt_seconds: float | None = typer.Option(None, "--prompt-seconds", help="Keep only the prompt's first seconds."),
    temperature: float | None = typer.Option(None, help="Sampling temperature (default: the run's)."),
    top_k: int | None = typer.Option(None, "--top-k", help="Top-k (default: the run's)."),
    max_note_seconds: float = typer.Option(4.0, "--max-note-seconds", help="Longest note the decoder lets sound (0: no limit)."),
    close_notes: bool = typer.Option(True, "--close-notes/--no-close-notes", help="End with NOTE_OFFs for notes still sounding."),
    plain: bool = typer.Option(False, "--plain", help="Sample exactly as the build does: no note limit, nothing closed."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier generation in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Continue a MIDI prompt with a run's model; write MIDI, tokens (.npy) and what was run.

    The tokens are exactly what the MIDI decodes from and what attribution scores, decoder-forced events
    included. See attribution/prompted.py for the folder's layout.
    """
    from .errors import AttributionError
    from .prompted import generate_from_run

    try:
        result = generate_from_run(
            run, prompt=prompt, events=events, n=n, seed=seed, out=out, prompt_seconds=prompt_seconds,
            temperature=temperature, top_k="run" if top_k is None else top_k,
            max_note_seconds=None if plain or max_note_seconds == 0 else max_note_seconds,
            close_notes_at_end=close_notes and not plain, force=force, progress=not quiet,
        )
    except AttributionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    p = result.pieces
    typer.echo(
        f"{len(p)} piece(s) written to {result.folder}: {p['prompt_events'].iloc[0]} prompt events + {events} new; "
        f"{p['notes'].mean():.0f} notes and {p['seconds'].mean():.1f} s per piece; "
        f"{p['forced_events'].sum()} event(s) forced by the decoder"
    )


@app.command()
def quality(
    run: Path = typer.Argument(..., help="A built attribution run folder, e.g. runs/default."),
    pieces: Path | None = typer.Option(None, "--pieces", help="A folder of pieces' tokens (*.npy), e.g. a generate folder (default: RUN/outputs)."),
    reference: Path | None = typer.Option(
        None, "--reference", help="The second model for the log-likelihood: a checkpoint or a folder holding one "
        "(default: RUN/quality/reference_seed1 if trained there)."
    ),
    train_reference: bool = typer.Option(
        False, "--train-reference", help="Train the second model (the run's recipe, seed 1) into the reference folder "
        "(--reference or the default) unless it is there: as long as the build's train stage."
    ),
    own: bool = typer.Option(False, "--own", help="Also the log-likelihood under the run's own model."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the table as CSV."),
) -> None:
    """Generation quality against the training corpus: note durations, pitch classes, hanging notes, likelihood."""
    from rich.console import Console
    from rich.table import Table

    from .errors import AttributionError
    from .prompted import load_run_model
    from .quality import corpus_sequences, load_pieces_folder, load_reference, quality_table
    from .quality import train_reference as train_ref

    try:
        model, tokenizer, _ = load_run_model(run) if own else (None, None, None)
        if tokenizer is None:
            import yaml

            from .tokenize import EventTokenizer

            tokenizer = EventTokenizer.from_dict(yaml.safe_load((run / "config.yaml").read_text())["config"]["tokenizer"])
        _, seqs = load_pieces_folder(pieces or run / "outputs")
        windows = run / "model" / "windows.npz"
        ref_path = reference or run / "quality" / "reference_seed1"
        ref = None
        if train_reference:
            ref = train_ref(run, ref_path, seed=1, progress=True)
        elif reference is not None or ref_path.is_dir():
            ref = load_reference(ref_path)
        else:
            typer.echo(f"(no reference model at {ref_path}: log-likelihood left out; --train-reference trains it)", err=True)
        table = quality_table(seqs, corpus_sequences(windows), tokenizer, reference=ref,
                              heldout=corpus_sequences(windows, "val"), own_model=model)
    except (AttributionError, FileNotFoundError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    shown = Table(title=f"{pieces or run / 'outputs'} vs the training corpus of {run} (log-likelihood: held-out music)")
    for col in ("metric", "pieces", "corpus"):
        shown.add_column(col, justify="left" if col == "metric" else "right")
    for r in table.itertuples():
        shown.add_row(r.metric, *("" if v != v else f"{v:.4g}" for v in (r.pieces, r.corpus)))
    Console().print(shown)
    if out:
        table.to_csv(out, index=False)


@app.command()
def groundtruth(
    run: Path = typer.Argument(..., help="A finished attribution run folder, e.g. runs/default."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Ground-truth config YAML, e.g. configs/groundtruth-default.yaml (default: the built-in "
        "GroundTruthConfig: 32 LDS subsets with one seed, every creator left out once).",
    ),
    workers: int = typer.Option(
        1, "--workers", "-w", min=1, help="Models trained at once, on a local Dask cluster of that many processes (1: in this process)."
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Address of an existing Dask scheduler (tcp://host:8786) whose workers see RUN at the same path."
    ),
    device: str = typer.Option("cpu", "--device", help="Torch device to train on: cpu, cuda, cuda:1."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Torch threads per model (default: the machine's cores divided among the workers). "
        "On 2 cores one worker with 2 threads is ~25% faster than two 1-thread workers.",
    ),
    limit: int | None = typer.Option(None, help="Train at most this many new models now; rerun to continue."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Retrain models without parts of the data (LDS subsets, each creator, sampled pieces): the ground truth.

    Writes RUN/ground_truth/ (one folder per model; models, utilities, loco, loo and creator_value
    tables). Resumable: a rerun skips finished models and continues an interrupted one.
    """
    from .errors import AttributionError
    from .retrain import GroundTruthConfig, load_groundtruth_config, run_groundtruth

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cfg = load_groundtruth_config(config) if config else GroundTruthConfig()
        result = run_groundtruth(
            run, cfg, workers=workers, progress=not quiet, limit=limit, threads=threads, scheduler=scheduler, device=device
        )
    except (AttributionError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"ground truth in {result.root}: {result.already_done + result.trained}/{result.planned} models finished "
        f"({result.trained} trained now in {result.seconds:.0f} s, {len(result.failed)} failed)"
    )
    for folder, err in result.failed:
        typer.echo(f"  failed: {folder}: {err}", err=True)
    if result.failed:
        raise typer.Exit(1)


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="An attribution run folder with a ground truth, e.g. runs/default."),
    dattri: bool | None = typer.Option(
        None, "--dattri/--no-dattri", help="Score dattri's TRAK as an external peer (default: if dattri is installed)."
    ),
    dattri_checkpoints: str = typer.Option(
        "all", help="Checkpoints for dattri: 'all' (peer of trak), 'last' (peer of trak_1ckpt; 1/K the cost) or 'all,last'."
    ),
    k: int = typer.Option(10, "-k", min=1, help="Top-k for similarity overlap and hidden-influencer mass."),
    random_seeds: int = typer.Option(5, min=1, help="Seeds of the random baseline."),
    projection_seeds: int = typer.Option(
        5, min=0, help="Final-checkpoint TRAK under this many random projections (projection noise; 0 skips it)."
    ),
    dattri_projection_seeds: int = typer.Option(
        1, min=1, help="dattri's final-checkpoint TRAK under this many projections (needs 'last'; each costs a dattri pass)."
    ),
    methods: str = typer.Option(
        "", help="Opt-in influence estimators, comma-separated: 'ekfac' (EK-FAC via kronfluence), 'logra' (LoGra via dattri), "
        "'metagradient' (replayed metagradients through the training run; a few trainings per output)."
    ),
    metagradient_outputs: int | None = typer.Option(
        None, min=1, help="metagradient on a seeded sample of this many outputs (default: all); the others are not scored."
    ),
) -> None:
    """Score every attribution method against the retraining ground truth; write RUN/evaluation/report.html."""
    from .evaluate import evaluate as run_evaluate
    from .evaluate import lds_table

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        ev = run_evaluate(
            run, dattri=dattri, k=k, random_seeds=random_seeds, projection_seeds=projection_seeds,
            dattri_projection_seeds=dattri_projection_seeds, dattri_checkpoints=tuple(x.strip() for x in dattri_checkpoints.split(",") if x.strip()),
            methods=tuple(x.strip() for x in methods.split(",") if x.strip()),
            method_settings={"metagradient": {"outputs": metagradient_outputs}},
        )
    except (FileNotFoundError, ImportError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    table = lds_table(ev)
    if len(table):
        typer.echo(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    for line in ev.findings:
        typer.echo(f"- {line}")
    typer.echo(f"report: {ev.folder / 'report.html'}")


@app.command()
def passages(
    run: Path = typer.Argument(..., help="An attribution run folder, e.g. runs/default."),
    output_id: str = typer.Argument(..., help="A generated piece, e.g. out000 (see outputs.parquet)."),
    top: int = typer.Option(2, help="Pieces listed per passage."),
) -> None:
    """Which passage of a generated piece drew on which training pieces (passage-level TRAK)."""
    from rich.console import Console
    from rich.table import Table

    from .errors import AttributionError
    from .table import AttributionTable

    try:
        rows = AttributionTable.load(run).passage_sources(output_id, top=top)
    except AttributionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    out = Table(title=f"{output_id}: the pieces each passage draws on most (TRAK, share of positive score)")
    for col in ("events", "piece", "creator", "score", "share"):
        out.add_column(col, justify="right" if col in ("score", "share") else "left")
    for r in rows.itertuples():
        share = "" if r.share != r.share else f"{r.share:.1%}"  # NaN when the passage has no positive score
        out.add_row(f"{r.first_event}-{r.end_event - 1}", str(r.title), r.creator, f"{r.score:.4g}", share)
    Console().print(out)


@app.command()
def pages(
    run: Path = typer.Argument(..., help="An attribution run folder, e.g. runs/default."),
    piece_ids: list[str] | None = typer.Argument(
        None, help="Pieces to write pages for: generated outputs (out000) or scored pieces (default: every piece)."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for the pages (default: out/content_id/<run name>)."),
    top: int = typer.Option(8, min=1, help="Influencing training pieces shown per page."),
    audio: bool = typer.Option(True, "--audio/--no-audio", help="Render audio with FluidSynth (about 1 s per file)."),
) -> None:
    """Content ID pages: per piece, its passages coloured by the creator they draw on, its top influences
    (piano-roll snippets and audio), similarity beside causal attribution; and an index of all pieces.

    Audio needs FluidSynth and a General MIDI soundfont (`apt-get install fluidsynth fluid-soundfont-gm`);
    without them the pages are written without audio and say so.
    """
    from .content_id_page import write_pages
    from .errors import AttributionError

    folder = out or Path("out") / "content_id" / run.resolve().name
    try:
        index, written, note = write_pages(run, folder, piece_ids=piece_ids or None, top=top, audio=audio)
    except AttributionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{len(written)} Content ID page(s) and the index written to {folder}; open {index}")
    if note and audio:
        typer.echo(f"note: {note}", err=True)


@app.command()
def score(
    run: Path = typer.Argument(..., help="A built attribution run with its TRAK features, e.g. runs/default."),
    pieces: list[Path] = typer.Argument(..., help="MIDI files (.mid/.midi), or the run's token ids (.npy, BOS first)."),
    stride: int | None = typer.Option(
        None, min=1, help="Events owned by each context window after the first, for pieces longer than the model's "
        "context (default: block_size // 2)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    page: bool = typer.Option(True, "--page/--no-page", help="Write each scored piece's Content ID page and the index."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for the pages (default: out/content_id/<run name>)."),
    audio: bool = typer.Option(True, "--audio/--no-audio", help="Render the pages' audio with FluidSynth."),
    passages: bool = typer.Option(
        True, "--passages/--no-passages", help="Also score each passage (what the page colours by creator); "
        "--no-passages scores whole pieces only, at about a sixteenth of the gradients."
    ),
) -> None:
    """Attribute any piece to the run's training pieces (TRAK family and similarity), without retraining.

    Reuses the build's stored TRAK features (RUN/cache/trak/); a missing or mismatched store is refused with
    the fix. Writes RUN/scored/ (outputs.parquet with provenance, attribution.parquet, passages.parquet,
    outputs/<id>.mid and .npy); scoring a file again replaces its rows.
    """
    from .errors import AttributionError
    from .piece_scores import score_pieces

    try:
        result = score_pieces(run, pieces, stride=stride, progress=not quiet, passages=passages)
    except AttributionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    scores = result.scores
    for row in result.outputs.itertuples():
        mine = scores[scores["output_id"] == row.output_id]
        line = f"{row.output_id}: {row.events} events in {row.windows} context window(s)"
        for method in ("trak", "sim_embedding"):
            by_creator = mine[mine["method"] == method].groupby("creator")["score"]
            by_creator = by_creator.sum() if method == "trak" else by_creator.max()
            line += f"; {method} top creator {by_creator.idxmax()} ({by_creator.max():.3g})"
        typer.echo(line)
    typer.echo(f"scores written to {result.run_dir / 'scored'}")
    n = len(result.outputs)
    typer.echo("  " + ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items()) + f"; {result.seconds['total'] / n:.2f} s per piece")
    if page:
        from .content_id_page import write_pages

        folder = out or Path("out") / "content_id" / run.resolve().name
        index, pages, audio_note = write_pages(run, folder, list(result.outputs["output_id"]), audio=audio)
        for path in pages:
            typer.echo(f"Content ID page: {path}")
        typer.echo(f"index: {index}" + (f" ({audio_note})" if audio_note else ""))
