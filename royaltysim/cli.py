"""The ``royaltysim`` console command.

Subcommands per area: ``royaltysim attribution ...`` (the attribution core; imports torch only when a
command runs) and the economy commands (``run``, ``validate``, ...).
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
    report = write_sweep_report(result, title=scenario.question)
    typer.echo(f"{result.total} runs ({result.ran} run now, {result.total - result.ran} already done), "
               f"{len(result.failures)} failed; tables in {out}; report: {report}")
    for failure in result.failures:
        typer.secho(f"  failed: seed {failure['seed']} {failure['params']}: {failure['error']}",
                    fg=typer.colors.RED, err=True)
    if result.failures:
        raise typer.Exit(code=1)


def main() -> None:  # pragma: no cover - console entry point
    app()
