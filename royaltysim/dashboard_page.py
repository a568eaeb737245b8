"""The dashboard's page and server: a Mesa SolaraViz page of :class:`~royaltysim.dashboard.DashboardModel`.

:func:`page` returns the SolaraViz element for a scenario: Mesa's controls (Reset, Step, play) and the
scenario's sliders and scheme menus in the sidebar (:func:`royaltysim.dashboard.model_params`; as in every
Mesa page, a changed control takes effect at the next Reset), and the components -- the numbers per arm,
Lorenz curves, Gini over the months, payouts by creator and the AI pool's split -- redrawn after each step.

:func:`serve` runs Solara's own server (its Starlette app under uvicorn, as Solara documents for
self-hosting) with this module as the app; the scenario to show travels in the environment variable
:data:`SCENARIO_ENV`, read by :data:`Page` on each new browser session. ``royaltysim dashboard`` calls it.

The numbers table marks each value with ``data-arm`` and ``data-key`` attributes, so a browser test (and
anyone scraping the page) can read them without parsing text.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import solara
from mesa.visualization import SolaraViz

from royaltysim.config import Scenario, load_scenario
from royaltysim.dashboard import (
    DashboardModel,
    ai_split_figure,
    gini_figure,
    lorenz_figure,
    model_params,
    payouts_figure,
    summary_rows,
)

__all__ = ["page", "serve", "Page", "SCENARIO_ENV"]

#: the environment variable that names the scenario file the served page shows
SCENARIO_ENV = "ROYALTYSIM_DASHBOARD_SCENARIO"

_COLUMNS = (("schemes", "human / AI scheme", "{}"), ("month", "month", "{}"), ("gini", "Gini of income", "{:.4f}"),
            ("top10_share", "top 10% share", "{:.1%}"), ("ai_pool", "AI pool paid ($)", "{:,.2f}"),
            ("ai_top", "largest AI-pool recipient", "{}"), ("ai_top_share", "their share", "{:.1%}"),
            ("ai_unpaid_share", "AI pool paid to no one", "{:.1%}"))


def _figure(make):
    def component(model: DashboardModel):
        if model.month == 0:  # nothing to draw yet; an empty figure would cost a second to render
            return solara.Text(f"{make.__doc__.splitlines()[0]} (after the first month: press Step or \u25b6)")
        return solara.FigureMatplotlib(make(model), format="png", dpi=90)

    component.__name__ = make.__name__
    return component


def numbers(model: DashboardModel):
    """The numbers per arm as an HTML table (``data-arm``/``data-key`` on every value)."""
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in _COLUMNS)
    body = []
    for row in summary_rows(model):
        arm = html.escape(row["arm"], quote=True)
        cells = "".join(f'<td data-arm="{arm}" data-key="{key}" data-value="{row[key]}">'
                        f"{html.escape(fmt.format(row[key]))}</td>" for key, _, fmt in _COLUMNS)
        body.append(f"<tr><th>{html.escape(row['arm'])}</th>{cells}</tr>")
    note = ""
    if model.problem:
        note = (f'<p class="problem" style="color:#b00020">These scheme choices were refused, so every arm runs the '
                f"scenario's own schemes:<br><pre>{html.escape(model.problem)}</pre></p>")
    table = (f'<table id="arm-numbers" style="border-collapse:collapse;font-size:13px" cellpadding="4">'
             f"<tr><th>arm</th>{head}</tr>{''.join(body)}</table>")
    return solara.HTML(tag="div", unsafe_innerHTML=note + table)


def first_model(scenario: Scenario) -> DashboardModel:
    """The model the page opens with: the scenario as it is (every control at its value)."""
    params = model_params(scenario)
    return DashboardModel(**{k: (v["value"] if isinstance(v, dict) and "type" in v else v) for k, v in params.items()})


def page(scenario: Scenario, model: DashboardModel | None = None):
    """The SolaraViz element of ``scenario``, on ``model`` (default: :func:`first_model`)."""
    params = model_params(scenario)
    model = model if model is not None else first_model(scenario)
    components = [numbers, _figure(lorenz_figure), _figure(gini_figure), _figure(payouts_figure),
                  _figure(ai_split_figure)]
    return SolaraViz(model, components=components, model_params=params, name=f"royaltysim: {scenario.question}"[:120])


@solara.component
def Page():  # noqa: N802 -- the name Solara's server looks for
    path = os.environ.get(SCENARIO_ENV)
    if not path:
        return solara.Error(f"no scenario: set {SCENARIO_ENV} to a scenario file, or run `royaltysim dashboard FILE`")
    scenario = solara.use_memo(lambda: load_scenario(path), [path])
    model = solara.use_memo(lambda: first_model(scenario), [scenario])  # not rebuilt when the page re-renders
    return page(scenario, model)


def serve(scenario_file: str | Path, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the dashboard of ``scenario_file`` at ``http://host:port/`` until interrupted."""
    import uvicorn

    # a bad file is refused here, with the scenario's messages, not in the page; building the first model now
    # also reads the run's tables and names once, so the first browser session opens without that wait
    first_model(load_scenario(scenario_file))
    os.environ[SCENARIO_ENV] = str(Path(scenario_file).resolve())
    os.environ["SOLARA_APP"] = __name__
    uvicorn.run("solara.server.starlette:app", host=host, port=port, log_level="warning")
