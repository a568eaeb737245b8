"""The ``royaltysim`` console command.

Subcommands per area: ``royaltysim attribution ...`` (the attribution core; imports torch only when a
command runs) and the economy commands (``run``, ``validate``, ``sweep``, ``calibrate``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, NoReturn

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


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=code)


@contextlib.contextmanager
def _user_errors(interrupted: Callable[[], str] | None = None) -> Iterator[None]:
    """Bad input of any layer (:class:`royaltysim.errors.InputError`) becomes its message and exit status 2.

    A broken attribution run found only while the world is built (a table that validation could read,
    but not use) is the user's input too. Anything else is a bug, and keeps its traceback. Ctrl-C ends
    with ``interrupted()`` (what was kept) and status 130.
    """
    from attribution.table import AttributionTableError
    from royaltysim.errors import InputError

    try:
        yield
    except (InputError, AttributionTableError) as err:
        _fail(str(err))
    except KeyboardInterrupt:
        _fail(f"interrupted: {interrupted() if interrupted else 'nothing was written'}", code=130)


def _load(file: Path, overlay: Path | None = None):  # -> Scenario; imports here keep `royaltysim --help` fast
    from royaltysim.config import load_scenario

    with _user_errors():
        if overlay is not None:
            from royaltysim.fit import load_with_overlay

            return load_with_overlay(file, overlay)
        return load_scenario(file)


def _budgets(max_memory: str | None, max_time: str | None) -> tuple[int | None, float | None]:
    from royaltysim.resources import ResourceError, parse_bytes, parse_seconds

    try:
        return (parse_bytes(max_memory) if max_memory else None, parse_seconds(max_time) if max_time else None)
    except ValueError as err:
        raise ResourceError(f"--max-memory / --max-time: {err}") from None


def _kept_runs(out: Path) -> str:
    """What an interrupted sweep or sensitivity analysis leaves: its finished run files, for a resume."""
    n = len(list((out / "runs").glob("*.parquet")))
    return f"the {n} finished run file(s) in {out / 'runs'} are kept; rerun the same command to resume"


MaxMemory = Annotated[
    str | None,
    typer.Option("--max-memory", help="Memory the run may use, e.g. 16G (default: this machine's memory). The "
                 "scenario's needs are estimated from its sizes and a larger one is refused before it starts."),
]
Scheduler = Annotated[
    str | None, typer.Option("--scheduler", help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
]
Workers = Annotated[
    int | None, typer.Option("--workers", "-w", min=1, help="Local cluster size (default: the machine's cores).")
]
MaxTime = Annotated[
    str | None,
    typer.Option("--max-time", help="Refuse a scenario estimated to take longer, e.g. 30m or 2h (default: no limit)."),
]
Force = Annotated[
    bool, typer.Option("--force", help="Replace the results already in --out (refused without it).")
]


@app.command(
    help="Check a scenario file without running it. Lists every problem at once, each with its key path "
    "(e.g. schemes[2].ai.params.top_k) and the allowed values, reads the attribution run it names, and "
    "estimates the memory and time a run needs (refusing what exceeds this machine); exits with status 2 "
    "if there is any problem."
)
def validate(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file, e.g. scenarios/baseline.yaml.")],
    max_memory: MaxMemory = None,
    max_time: MaxTime = None,
) -> None:
    """Check a scenario file without running it."""
    scenario = _load(file)
    with _user_errors():
        from royaltysim.resources import check_resources, format_seconds

        memory, seconds = _budgets(max_memory, max_time)
        est = check_resources(scenario, max_memory=memory, max_seconds=seconds, what=f"{file}")
        arms = ", ".join(f"{a.label} (human: {a.human.name}, AI: {a.ai.name})" for a in scenario.schemes)
        typer.echo(f"{file}: OK - {scenario.steps} months, {scenario.source.kind} source {scenario.source.run}, "
                   f"schemes: {arms}")
        typer.echo(f"a run needs {est.describe()}")
        if scenario.sweep is not None:
            from royaltysim.resources import estimate
            from royaltysim.sweep import largest_run

            largest = estimate(largest_run(scenario))
            typer.echo(f"the sweep: {scenario.sweep.n_runs:,} runs, the largest needing {largest.describe()}; "
                       f"at most {format_seconds(largest.seconds * scenario.sweep.n_runs)} of one core in all")
        if scenario.sensitivity is not None:
            from royaltysim.resources import estimate
            from royaltysim.sensitivity import largest_run as largest_sensitivity_run

            spec = scenario.sensitivity
            largest = estimate(largest_sensitivity_run(scenario))
            typer.echo(f"the sensitivity analysis ({spec.method}): {spec.n_points:,} points x {spec.seeds} seeds = "
                       f"{spec.n_runs:,} runs, the largest needing {largest.describe()}; at most "
                       f"{format_seconds(largest.seconds * spec.n_runs)} of one core in all")
        if scenario.fit is not None:
            fit_spec = scenario.fit
            sims = (1 + fit_spec.bootstrap) * fit_spec.evaluations * fit_spec.seeds
            typer.echo(f"the fit (royaltysim calibrate --fit): {len(fit_spec.params)} parameter(s), at most {sims:,} "
                       f"simulations, about {format_seconds(est.seconds * sims)} of one core")


@app.command(
    help="Simulate a scenario: every royalty scheme in it, on the same random numbers.\n\n"
    "Writes a run folder: scenario.yaml (the resolved scenario, to reproduce the run), model.parquet "
    "(one row per scheme and month), creators.parquet (one row per scheme, month and creator), "
    "report.html with its PNG figures. The folder is written whole or not at all: an interrupted run leaves "
    "the previous results in place. An existing non-empty --out is refused unless --force is given. "
    "A scenario with a `sweep:` section is run once, at its base settings (royaltysim sweep runs the sweep). "
    "Example: royaltysim run scenarios/baseline.yaml --out out/baseline"
)
def run(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file, e.g. scenarios/baseline.yaml.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run folder to write (default: out/<scenario name>)."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", min=0, help="First replicate seed (default: the scenario's `seed`); every scheme "
                     "runs on the same seeds."),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option("--seeds", min=1, max=1000, help="Replicate seeds to run, counting up from the first (default: "
                     "the scenario's `seeds`, 5 unless it says otherwise). Comparisons are paired over them."),
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, max=10_000, help="Override the number of months simulated.")
    ] = None,
    overlay: Annotated[
        Path | None,
        typer.Option("--overlay", help="YAML of dotted scenario paths and values set before the scenario is "
                     "validated, e.g. the overlay.yaml that `royaltysim calibrate --fit` writes."),
    ] = None,
    force: Force = False,
    max_memory: MaxMemory = None,
    max_time: MaxTime = None,
) -> None:
    """Simulate a scenario and write its run folder and report."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    scenario = _load(file, overlay)
    out = out if out is not None else Path("out") / file.stem
    with _user_errors(lambda: f"{out} is as it was before this run (its partial results were removed)"):
        from royaltysim.atomic import name_final_folder, staged_folder
        from royaltysim.report import findings, write_report
        from royaltysim.resources import check_resources
        from royaltysim.runner import run as run_scenario

        memory, seconds = _budgets(max_memory, max_time)
        check_resources(scenario, steps=steps, seeds=seeds, max_memory=memory, max_seconds=seconds, what=str(file))
        if scenario.sweep is not None:
            typer.echo(f"note: {file} has a `sweep:` section; `run` runs the base scenario without it ("
                       f"{seeds or len(scenario.seed_list)} seed(s), {steps or scenario.steps} months). "
                       f"Run the sweep with: royaltysim sweep {file}")
        total = len(scenario.schemes) * (steps or scenario.steps)
        # --out is checked (and its staging folder made) before anything is simulated
        with staged_folder(out, force=force) as stage:
            with Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                transient=True,
            ) as bar:
                task = bar.add_task("building the world", total=total)

                def progress(done: int, n_months: int, what: str) -> None:
                    bar.update(task, completed=done, total=n_months, description=what)

                # --seed alone moves the scenario's seeds to start there; neither keeps the scenario's own
                n_seeds = seeds if seeds is not None else (None if seed is None else len(scenario.seed_list))
                results = run_scenario(scenario, seed=seed, seeds=n_seeds, steps=steps, progress=progress)
            results.write_tables(stage)
            name_final_folder(stage, out)
            write_report(results, stage)
    for line in findings(results):
        typer.echo(f"- {line}")
    typer.echo(f"{results.runtime_s:.1f} s; report: {out / 'report.html'}")


@app.command(
    short_help="Run a scenario's parameter sweep (grid / samples x seeds) on Dask, with 95% CIs; resumable.",
    help="Run a scenario's sweep: every parameter point of its `sweep:` section x replicate seeds, each run "
    "comparing all its schemes on common random numbers, on Dask (a local cluster sized to the machine, or "
    "--scheduler tcp://HOST:8786). Finished runs are kept, so an interrupted sweep resumes where it stopped; "
    "a run is reused only if its whole scenario, seed and source data are the same. "
    "Writes sweep.parquet (one row per run x scheme x month, swept parameters and seed as columns), "
    "summary.parquet (mean and 95% CI per scheme and point) and sweep_report.html, each file replaced whole. "
    "An existing non-empty --out that is not a sweep folder is refused unless --force is given. "
    "Example: royaltysim sweep scenarios/sweep_royalty_rate.yaml --out out/sweep"
)
def sweep(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file with a `sweep:` section.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Sweep folder (default: out/<scenario name>).")
    ] = None,
    scheduler: Scheduler = None,
    workers: Workers = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="First replicate seed (default: the scenario's seed).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into an existing non-empty folder that is not a sweep folder.")
    ] = False,
    max_memory: MaxMemory = None,
    max_time: MaxTime = None,
) -> None:
    """Run a scenario's parameter sweep with replicates and write tidy tables and a report."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    scenario = _load(file)
    if scenario.sweep is None:
        _fail(f"{file} has no `sweep:` section; add one (see scenarios/sweep_royalty_rate.yaml), "
              "or use `royaltysim run` for a single run.")
    out = out if out is not None else Path("out") / file.stem

    with _user_errors(lambda: _kept_runs(out)):
        from royaltysim.atomic import check_out_folder, publish_files
        from royaltysim.resources import check_resources
        from royaltysim.sweep import SWEEP_MARK, check_workers, default_workers, largest_run, run_sweep
        from royaltysim.sweep_report import write_sweep_report

        check_workers(workers)
        check_out_folder(out, force=force, reuse_if=SWEEP_MARK)
        memory, seconds = _budgets(max_memory, max_time)
        n_workers = workers or default_workers()
        # a local cluster holds one run per worker in this machine's memory; remote workers hold their own
        check_resources(largest_run(scenario), max_memory=memory, max_seconds=seconds,
                        concurrent=1 if scheduler else n_workers, runs=scenario.sweep.n_runs,
                        workers=n_workers, what=f"the largest run of {file}'s sweep")
        base = scenario.model_dump(mode="json")
        base.pop("sweep")
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("runs", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=f"runs done ({total} in all)")

            result = run_sweep(base, scenario.sweep, out, base_seed=seed, scheduler=scheduler, workers=workers,
                               source=str(file), progress=progress, force=force)
        # the report and its figures are drawn aside, then each file replaces its old version whole
        with publish_files(out, last="sweep_report.html") as staging:
            write_sweep_report(result, staging, title=scenario.question, run=scenario.source.run,
                               measures=list(scenario.compare.measures) or None)
    report = out / "sweep_report.html"
    typer.echo(f"{result.total} runs ({result.ran} run now, {result.total - result.ran} already done), "
               f"{len(result.failures)} failed; tables in {out}; report: {report}")
    for failure in result.failures:
        typer.secho(f"  failed: seed {failure['seed']} {failure['params']}: {failure['error']}",
                    fg=typer.colors.RED, err=True)
    if result.failures:
        raise typer.Exit(code=1)


@app.command(
    short_help="Which parameters drive an outcome? Sobol indices or Morris screening (SALib) on Dask; resumable.",
    help="Run a scenario's global sensitivity analysis: its `sensitivity:` section's parameter ranges, sampled by "
    "Saltelli's design (Sobol first-order and total indices) or Morris trajectories (mu*, sigma), each point run "
    "over replicate seeds on Dask like a sweep (a local cluster, or --scheduler tcp://HOST:8786). Outputs are "
    "run-level measures of an arm, or paired differences between arms within each seed. Finished runs are kept, "
    "so an interrupted analysis resumes; the indices do not depend on the number of workers. Writes design.parquet, "
    "outputs.parquet, sobol.parquet or morris.parquet (indices with bootstrap intervals) and sensitivity_report.html. "
    "Example: royaltysim sensitivity scenarios/sensitivity_causal_vs_share.yaml --out out/sensitivity"
)
def sensitivity(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file with a `sensitivity:` section.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Analysis folder (default: out/<scenario name>).")
    ] = None,
    scheduler: Scheduler = None,
    workers: Workers = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into an existing non-empty folder that is not an analysis folder.")
    ] = False,
    max_memory: MaxMemory = None,
    max_time: MaxTime = None,
) -> None:
    """Run a scenario's global sensitivity analysis and write tidy index tables and a report."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    scenario = _load(file)
    if scenario.sensitivity is None:
        _fail(f"{file} has no `sensitivity:` section; add one (see scenarios/sensitivity_causal_vs_share.yaml and "
              "docs/scenarios.md).")
    out = out if out is not None else Path("out") / file.stem

    with _user_errors(lambda: _kept_runs(out)):
        from royaltysim.atomic import check_out_folder, publish_files
        from royaltysim.resources import check_resources
        from royaltysim.sensitivity import largest_run, run_sensitivity
        from royaltysim.sensitivity_report import write_sensitivity_report
        from royaltysim.sweep import SWEEP_MARK, check_workers, default_workers

        spec = scenario.sensitivity
        check_workers(workers)
        check_out_folder(out, force=force, reuse_if=SWEEP_MARK)
        memory, seconds = _budgets(max_memory, max_time)
        n_workers = workers or default_workers()
        check_resources(largest_run(scenario), max_memory=memory, max_seconds=seconds,
                        concurrent=1 if scheduler else n_workers, runs=spec.n_runs, workers=n_workers,
                        what=f"the largest run of {file}'s sensitivity analysis")
        base = scenario.model_dump(mode="json")
        t0 = time.perf_counter()
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("runs", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=f"runs done ({total} in all)")

            result = run_sensitivity(base, spec, out, scheduler=scheduler, workers=workers, source=str(file),
                                     progress=progress, force=force)
        with publish_files(out, last="sensitivity_report.html") as staging:
            report = write_sensitivity_report(result, staging, question=scenario.question,
                                              command=f"royaltysim sensitivity {file} --out {out}",
                                              seconds=time.perf_counter() - t0)
    from royaltysim.sensitivity_report import ranking

    key = "ST" if spec.method == "sobol" else "mu_star"
    for o in spec.outputs:
        top = ranking(result.indices, o.name, spec.method).head(3)
        ranked = "; ".join(f"{r['label']} {r[f'{key}_value']:.3g} [{r[f'{key}_ci_low']:.3g}, {r[f'{key}_ci_high']:.3g}]"
                           for _, r in top.iterrows())
        typer.echo(f"- {o.name}: by {key}: {ranked}")
    typer.echo(f"{result.total} runs ({result.ran} run now, {result.total - result.ran} already done) in "
               f"{time.perf_counter() - t0:.0f} s; tables in {out}; report: {out / report.name}")


@app.command(
    short_help="Compare the baseline economy with published streaming facts (simulated vs published).",
    help="Does the baseline economy look like the real streaming economy? Runs the human-streaming baseline "
    "(12 simulated months) and prints each published stylised fact (shared/reference/streaming-facts.md) "
    "beside its simulated counterpart, with the distance and whether it is within the stated tolerance. "
    "Writes calibration.parquet (one row per fact, seed and scale in columns), tiers.parquet (Luminate "
    "tiers vs simulated works), calibration.png (the simulated distributions against the published points "
    "and tiers) and scenario.yaml (the resolved scenario). Exits with status 1 if a pinned fact is outside "
    "its tolerance. Example: royaltysim calibrate --out out/calibration\n\n"
    "With --fit, estimates the parameters of the scenario's `fit:` section (or --param PATH=LOW:HIGH) by the "
    "method of simulated moments on common random numbers, with a bootstrap over seed sets, and writes "
    "fit.parquet (estimates and bootstrap spread), facts.parquet (simulated vs published vs tolerance), "
    "trace.parquet (every evaluation), fit.png (each fact at the start and at the fit, and the distance at each "
    "evaluation) and overlay.yaml (for royaltysim run SCENARIO --overlay). See royaltysim/fit.py. "
    "Example: royaltysim calibrate --fit --out out/calibration_fit"
)
def calibrate(
    file: Annotated[
        Path, typer.Argument(help="Scenario YAML file (default: scenarios/calibration.yaml).")
    ] = Path("scenarios/calibration.yaml"),
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder to write (default: out/<scenario name>).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Override the scenario's seed.")] = None,
    fit: Annotated[bool, typer.Option("--fit", help="Estimate parameters instead of comparing (see above).")] = False,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="With --fit: PATH=LOW:HIGH to fit, repeatable; replaces the `fit:` section's "
                     "parameters, e.g. --param consumers.heavy_popularity_exponent=0.7:1.0"),
    ] = None,
    evaluations: Annotated[
        int | None, typer.Option("--evaluations", min=3, max=2000, help="With --fit: evaluations per fit.")
    ] = None,
    bootstrap: Annotated[
        int | None, typer.Option("--bootstrap", min=0, max=50, help="With --fit: refits on fresh seed sets.")
    ] = None,
    force: Force = False,
    max_memory: MaxMemory = None,
) -> None:
    """Compare the simulated human-streaming economy with the published facts."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from royaltysim.calibration import compare, plot_calibration, simulate, tier_table
    from royaltysim.config import scenario_to_yaml

    scenario = _load(file)
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    out = out if out is not None else Path("out") / file.stem
    console = Console()
    if fit or param or evaluations is not None or bootstrap is not None:
        with _user_errors(lambda: f"{out} is as it was before this fit"):
            from royaltysim.atomic import staged_folder
            from royaltysim.fit import fit_from_cli, write_fit
            from royaltysim.resources import check_resources

            check_resources(scenario, seeds=1, max_memory=_budgets(max_memory, None)[0], what=str(file))
            result, spec = fit_from_cli(scenario, param, evaluations, bootstrap,
                                        progress=lambda line: console.log(line, highlight=False))
            with staged_folder(out, force=force) as stage:
                write_fit(result, spec, scenario, stage, source=str(file))
        view = Table(title=f"Fit: distance {result.distance:.4g} (start {result.start_distance:.4g}), "
                     f"seeds {result.seeds}, {result.simulations} simulations, {result.runtime_s:.0f} s")
        for col in ("parameter", "estimate", "start", "range", "bootstrap over seed sets"):
            view.add_column(col)
        for r in result.params.itertuples():
            view.add_row(r.param, f"{r.estimate:.4g}", f"{r.start:.4g}", f"{r.low:g}-{r.high:g}", result.spread(r.param))
        console.print(view)
        facts = Table(title="Facts at the estimate (distance term = ((simulated - published) / tolerance)^2)")
        for col in ("fact", "published", "tolerance", "simulated", "term", "at start"):
            facts.add_column(col)
        for r in result.facts.itertuples():
            facts.add_row(r.fact, f"{r.published:.4g}", f"±{r.tolerance:.3g}", f"{r.simulated:.4g}",
                          f"{r.contribution:.3g}", f"{r.contribution_start:.3g}")
        console.print(facts)
        console.print(f"overlay: {out / 'overlay.yaml'} (royaltysim run SCENARIO --overlay {out / 'overlay.yaml'})")
        return
    with _user_errors(lambda: f"{out} is as it was before this run"):
        from royaltysim.atomic import staged_folder
        from royaltysim.resources import check_resources

        check_resources(scenario, seeds=1, max_memory=_budgets(max_memory, None)[0], what=str(file))
        with staged_folder(out, force=force) as stage:  # --out is checked before the simulation
            with console.status(f"simulating {scenario.steps} months of {file}"):
                run = simulate(scenario, seed=seed)
            table = compare(run)
            (stage / "scenario.yaml").write_text(
                f"# resolved scenario; rerun with: royaltysim calibrate {out / 'scenario.yaml'}\n"
                + scenario_to_yaml(run.scenario)
            )
            table.to_parquet(stage / "calibration.parquet", index=False)
            tier_table(run).to_parquet(stage / "tiers.parquet", index=False)
            figure = plot_calibration(run, stage / "calibration.png")

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
    short_help="The platform's profit-maximising AI royalty rate against the welfare-maximising one, by simulation.",
    help="Search a scenario's `platform_choice:` section: for each arm (a scheme the platform takes as given), the "
    "value of the parameter it sets (e.g. platform.ai_pool_rate) that maximises its profit, with creators and "
    "listeners responding in the simulation, and the value that maximises the comparison measure (total welfare by "
    "default). Every value runs every arm on the same seeds; a grid then golden-section steps. Writes "
    "evaluations.parquet, choice.parquet (the choices with bootstrap intervals over seeds and paired differences), "
    "choice.png, choice.html and scenario.yaml. Example: royaltysim choose scenarios/platform_choice.yaml --out "
    "out/platform_choice"
)
def choose(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file with a `platform_choice:` section.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder to write (default: out/<scenario name>).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", min=1, help="Processes for each value's seeds (default: cores).")
    ] = None,
    force: Force = False,
) -> None:
    """Search the platform's choice of a rate and compare it with the welfare-maximising one."""
    scenario = _load(file)
    if scenario.platform_choice is None:
        _fail(f"{file} has no `platform_choice:` section; add one (see scenarios/platform_choice.yaml and "
              "docs/scenarios.md).")
    out = out if out is not None else Path("out") / file.stem
    with _user_errors(lambda: f"{out} is as it was before (its partial results were removed)"):
        from royaltysim.atomic import staged_folder
        from royaltysim.platform_choice import choose as search_choice
        from royaltysim.platform_choice import write_choice

        spec = scenario.platform_choice
        with staged_folder(out, force=force) as stage:
            def progress(i: int, x: float) -> None:
                typer.echo(f"value {i}/{spec.evaluations}: {spec.parameter} = {x:.4g}", err=True)

            result = search_choice(scenario, workers=workers, progress=progress)
            page = write_choice(result, stage, command=f"royaltysim choose {file} --out {out}")
    for line in result.findings():
        typer.echo(f"- {line}")
    typer.echo(f"{result.runtime_s:.0f} s; report: {out / page.name}")


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


@app.command(
    short_help="Serve an interactive page of a scenario's arms side by side (Mesa SolaraViz).",
    help="Serve a Mesa SolaraViz page for a scenario: sliders for the seed, months, listeners, platform cut, AI "
    "share of listening and AI pool rate, a menu per arm for its human and AI scheme, and, arm beside arm, the "
    "numbers, Lorenz curves, Gini over the months, payouts by creator and the AI pool's split, redrawn as the "
    "months run (Step or play; a changed control takes effect at Reset). Needs the dashboard extra: "
    'pip install -e ".[dashboard]". Example: royaltysim dashboard scenarios/baseline.yaml, then open '
    "http://127.0.0.1:8765/",
)
def dashboard(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="Port to listen on.")] = 8765,
) -> None:
    """Serve the interactive dashboard of a scenario."""
    _load(file)
    try:
        from royaltysim.dashboard_page import serve
    except ImportError as err:
        _fail(f"the dashboard needs {err.name or 'solara'}: pip install -e \".[dashboard]\" (make setup installs it)")
    typer.echo(f"royaltysim dashboard: http://{host}:{port}/ (Ctrl-C stops it)")
    with _user_errors():
        serve(file, host=host, port=port)


@app.command(
    short_help="Export a run, sweep or sensitivity folder's tables as CSV or Stata files.",
    help="Export the tables of a results folder -- a run (royaltysim run), sweep (royaltysim sweep) or "
    "sensitivity analysis (royaltysim sensitivity) -- as CSV or Stata files, one per table, with the folder's "
    "scenario.yaml beside them. Stata files (format 118) have valid Stata names (at most 32 characters; "
    "platform.ai_pool_rate -> platform_ai_pool_rate) labelled with the original column names. Every column is "
    "described in docs/columns.md. Example: royaltysim export out/baseline --to stata",
)
def export(
    folder: Annotated[Path, typer.Argument(help="A run, sweep or sensitivity folder.")],
    to: Annotated[str, typer.Option("--to", help="csv or stata.")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where the files go (default: FOLDER/<to>).")]
    = None,
    table: Annotated[
        list[str] | None, typer.Option("--table", "-t", help="Export only this table (repeatable; default: all).")
    ] = None,
) -> None:
    """Export a results folder's tables as CSV or Stata files."""
    from royaltysim.export import export_folder

    with _user_errors():
        written = export_folder(folder, to=to, out=out, tables=table or None)
    typer.echo(f"wrote {len(written)} files to {written[0].parent}: {', '.join(p.name for p in written)}")


@app.command(
    short_help="Where in the parameter space does one arm beat another? PRIM boxes (EMA Workbench).",
    help="Scenario discovery on a sweep or sensitivity folder: for each case, the region of the swept parameters "
    "where --arm beats --versus (paired over seeds, mean per point), found with PRIM (the EMA Workbench) and "
    "printed as readable boxes with coverage, density and each restriction's quasi-p-value. A case is "
    "NAME=MEASURE:lower|higher (which is better), several measures joined by commas must all hold. Default "
    "cases: creators=ai_misallocation_month_mean:lower (paid by contribution) and "
    "platform=platform_margin_month_mean:higher. Needs the discovery "
    'extra: pip install -e ".[discovery]". Example: royaltysim discover out/sensitivity_causal_vs_share '
    '--arm causal --versus "training share"',
)
def discover(
    folder: Annotated[Path, typer.Argument(help="A sweep or sensitivity folder.")],
    arm: Annotated[str, typer.Option("--arm", help="The arm that should win.")] = "causal",
    versus: Annotated[str, typer.Option("--versus", help="The arm it is compared with.")] = "training share",
    case: Annotated[
        list[str] | None, typer.Option("--case", "-c", help="NAME=MEASURE:lower|higher[,MEASURE:...] (repeatable).")
    ] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Density the box must reach.")] = 0.8,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the boxes to this Markdown file.")]
    = None,
) -> None:
    """Find the regions where one arm beats another (PRIM)."""
    from royaltysim.discovery import DiscoveryError, boxes_markdown, parse_case
    from royaltysim.discovery import discover as find

    texts = case or ["creators=ai_misallocation_month_mean:lower", "platform=platform_margin_month_mean:higher"]
    with _user_errors():
        cases = {}
        for text in texts:
            name, sep, rest = text.partition("=")
            if not sep or not name.strip():
                raise DiscoveryError(f"--case is NAME=MEASURE:lower|higher, e.g. creators=gini_income_run:lower; "
                                     f"got {text!r}")
            cases[name.strip()] = [parse_case(part) for part in rest.split(",")]
        try:
            boxes = find(folder, arm, versus, cases, threshold=threshold)
        except ImportError as err:
            _fail(f"scenario discovery needs {err.name or 'ema_workbench'}: pip install -e \".[discovery]\"")
    text = boxes_markdown(boxes, folder)
    typer.echo(text)
    if out is not None:
        out.write_text(text)


def main() -> None:  # pragma: no cover - console entry point
    app()
