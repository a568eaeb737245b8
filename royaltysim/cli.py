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


def main() -> None:  # pragma: no cover - console entry point
    app()
