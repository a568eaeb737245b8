"""The ``royaltysim`` console command.

Subcommands per area: ``royaltysim attribution ...`` (the attribution core; imports torch only when a
command runs) and the economy commands (``run``, ``validate``, ``sweep``, ``calibrate``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attribution.cli import app as attribution_app

app = typer.Typer(
    name="royaltysim",
    help=(
        "Who should be paid when an AI music model makes money? "
        "Build attribution runs on real music, then simulate royalty schemes in an agent-based economy."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(attribution_app, name="attribution")


def _print_version(value: bool) -> None:
    if value:
        from royaltysim import __version__

        typer.echo(f"royaltysim {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the installed version and exit."
        ),
    ] = False,
) -> None:
    # (no docstring: the Typer's help above stays the command's help)
    pass


def _load(file: Path):  # -> Scenario; config is imported here so `royaltysim --help` stays fast
    from royaltysim.config import ScenarioError, load_scenario

    try:
        return load_scenario(file)
    except ScenarioError as err:
        typer.secho(str(err), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None


@app.command(
    help="Check a scenario file without running it. Lists every problem at once, each with its key path "
    "(e.g. schemes[2].ai.params.top_k) and the allowed values; exits with status 2 if there is any."
)
def validate(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file, e.g. scenarios/baseline.yaml.")],
) -> None:
    """Check a scenario file without running it."""
    scenario = _load(file)
    arms = ", ".join(f"{a.label} (human: {a.human.name}, AI: {a.ai.name})" for a in scenario.schemes)
    typer.echo(f"{file}: OK - {scenario.steps} months, {scenario.source.kind} source {scenario.source.run}, "
               f"schemes: {arms}")


@app.command(
    help="Simulate a scenario: every royalty scheme in it, on the same random numbers.\n\n"
    "Writes a run folder: scenario.yaml (the resolved scenario, to reproduce the run), model.parquet "
    "(one row per scheme and month), creators.parquet (one row per scheme, month and creator), "
    "report.html with its PNG figures. Example: royaltysim run scenarios/baseline.yaml --out out/baseline"
)
def run(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file, e.g. scenarios/baseline.yaml.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run folder to write (default: out/<scenario name>)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Override the scenario's seed (every scheme uses the same one).")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Override the number of months simulated.")] = None,
) -> None:
    """Simulate a scenario and write its run folder and report."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from royaltysim.report import findings, write_report
    from royaltysim.runner import run as run_scenario

    scenario = _load(file)
    out = out if out is not None else Path("out") / file.stem
    total = len(scenario.schemes) * (steps or scenario.steps)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("building the world", total=total)

        def progress(label: str, step: int, n_steps: int) -> None:
            bar.update(task, advance=1, description=f"{label}: month {step}/{n_steps}")

        results = run_scenario(scenario, seed=seed, steps=steps, progress=progress)
    results.save(out)
    report = write_report(results, out)
    for line in findings(results):
        typer.echo(f"- {line}")
    typer.echo(f"{results.runtime_s:.1f} s; report: {report}")


@app.command(
    short_help="Run a scenario's parameter sweep (grid / samples x seeds) on Dask, with 95% CIs; resumable.",
    help="Run a scenario's sweep: every parameter point of its `sweep:` section x replicate seeds, each run "
    "comparing all its schemes on common random numbers, on Dask (a local cluster sized to the machine, or "
    "--scheduler tcp://HOST:8786). Finished runs are kept, so an interrupted sweep resumes where it stopped. "
    "Writes sweep.parquet (one row per run x scheme x month, swept parameters and seed as columns), "
    "summary.parquet (mean and 95% CI per scheme and point) and sweep_report.html. "
    "Example: royaltysim sweep scenarios/sweep_royalty_rate.yaml --out out/sweep"
)
def sweep(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file with a `sweep:` section.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Sweep folder (default: out/<scenario name>).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", help="Local cluster size (default: the machine's cores).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="First replicate seed (default: the scenario's seed).")
    ] = None,
) -> None:
    """Run a scenario's parameter sweep with replicates and write tidy tables and a report."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from royaltysim.sweep import run_sweep
    from royaltysim.sweep_report import write_sweep_report

    scenario = _load(file)
    if scenario.sweep is None:
        typer.secho(
            f"{file} has no `sweep:` section; add one (see scenarios/sweep_royalty_rate.yaml), "
            "or use `royaltysim run` for a single run.",
            fg=typer.colors.RED, err=True,
        )
        raise typer.Exit(code=2)
    base = scenario.model_dump(mode="json")
    base.pop("sweep")
    out = out if out is not None else Path("out") / file.stem
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("runs", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"runs done ({total} in all)")

        result = run_sweep(base, scenario.sweep, out, base_seed=seed, scheduler=scheduler, workers=workers,
                           source=str(file), progress=progress)
    report = write_sweep_report(result, title=scenario.question, run=scenario.source.run)
    typer.echo(f"{result.total} runs ({result.ran} run now, {result.total - result.ran} already done), "
               f"{len(result.failures)} failed; tables in {out}; report: {report}")
    for failure in result.failures:
        typer.secho(f"  failed: seed {failure['seed']} {failure['params']}: {failure['error']}",
                    fg=typer.colors.RED, err=True)
    if result.failures:
        raise typer.Exit(code=1)


@app.command(
    short_help="Compare the baseline economy with published streaming facts (simulated vs published).",
    help="Does the baseline economy look like the real streaming economy? Runs the human-streaming baseline "
    "(12 simulated months) and prints each published stylised fact (shared/reference/streaming-facts.md) "
    "beside its simulated counterpart, with the distance and whether it is within the stated tolerance. "
    "Writes calibration.parquet (one row per fact, seed and scale in columns), tiers.parquet (Luminate "
    "tiers vs simulated works), calibration.png (the simulated distributions against the published points "
    "and tiers) and scenario.yaml (the resolved scenario). Exits with status 1 if a pinned fact is outside "
    "its tolerance. Example: royaltysim calibrate --out out/calibration"
)
def calibrate(
    file: Annotated[
        Path, typer.Argument(help="Scenario YAML file (default: scenarios/calibration.yaml).")
    ] = Path("scenarios/calibration.yaml"),
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder to write (default: out/<scenario name>).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override the scenario's seed.")] = None,
) -> None:
    """Compare the simulated human-streaming economy with the published facts."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from royaltysim.calibration import compare, plot_calibration, simulate, tier_table
    from royaltysim.config import scenario_to_yaml

    scenario = _load(file)
    out = out if out is not None else Path("out") / file.stem
    console = Console()
    with console.status(f"simulating {scenario.steps} months of {file}"):
        run = simulate(scenario, seed=seed)
    table = compare(run)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scenario.yaml").write_text(
        f"# resolved scenario; rerun with: royaltysim calibrate {out / 'scenario.yaml'}\n"
        + scenario_to_yaml(run.scenario)
    )
    table.to_parquet(out / "calibration.parquet", index=False)
    tier_table(run).to_parquet(out / "tiers.parquet", index=False)
    figure = plot_calibration(run, out / "calibration.png")

    row = table.iloc[0]
    view = Table(
        title=f"Simulated vs published: {row['creators']:,} creators, {row['listeners']:,} listeners, "
        f"{row['months']} months, seed {row['seed']}"
    )
    for col, justify in (("fact", "left"), ("published", "right"), ("band", "right"), ("simulated", "right"),
                         ("distance", "right"), ("within", "center"), ("source", "left")):
        view.add_column(col, justify=justify)  # type: ignore[arg-type]

    def fmt(x: float, unit: str) -> str:
        if unit.startswith("share"):
            return f"{x:.2%}" if abs(x) >= 0.001 else f"{x:.3%}"
        return f"{x:.4f}" if abs(x) < 0.1 else f"{x:.3g}"

    def distance(x: float, unit: str) -> str:
        if unit.startswith("share"):
            return f"{x * 100:+.2f} pp"
        return f"{'+' if x >= 0 else '-'}{fmt(abs(x), unit)}"

    for r in table.itertuples():
        mark = "[green]yes[/]" if r.within else ("[red]no[/]" if r.pinned else "[yellow]no (not pinned)[/]")
        view.add_row(r.label, fmt(r.published, r.unit), f"{fmt(r.low, r.unit)}-{fmt(r.high, r.unit)}",
                     fmt(r.simulated, r.unit), distance(r.distance, r.unit), mark,
                     f"{r.source}, {int(r.year)}" if pd.notna(r.year) else r.source)
    console.print(view)
    pinned = table[table["pinned"]]
    console.print(f"{int(pinned['within'].sum())}/{len(pinned)} pinned facts within tolerance; "
                  f"1 published stream = {row['streams_rescale']:.3g} simulated streams; "
                  f"{run.runtime_s:.1f} s; written to {out} (figure: {figure.name})")
    if not pinned["within"].all():
        raise typer.Exit(code=1)


@app.command(
    short_help="Describe every royalty scheme: the rule in words, its parameters, defaults and meaning.",
    help="Describe the registered royalty schemes: what each pays on, its rule in words (with the formula), "
    "which pool it is designed for, and each parameter with its default, allowed values and meaning. "
    "Name schemes to describe only those. --markdown prints docs/schemes.md, generated from the same "
    "registry: royaltysim schemes --markdown > docs/schemes.md",
)
def schemes(
    names: Annotated[
        list[str] | None, typer.Argument(help="Schemes to describe, e.g. hybrid causal (default: all).")
    ] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the Markdown reference (docs/schemes.md).")]
    = False,
) -> None:
    """Describe the registered royalty schemes."""
    from royaltysim.scheme_docs import scheme_reference
    from royaltysim.schemes import UnknownSchemeError

    try:
        text = scheme_reference(names or None, markdown=markdown)
    except UnknownSchemeError as err:
        typer.secho(str(err), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    typer.echo(text, nl=False)


def main() -> None:  # pragma: no cover - console entry point
    app()
