"""The dashboard: its model against the runner, its controls, and the served page in Debian's headless Chromium.

The page test starts ``royaltysim dashboard`` on the shipped default (scenarios/baseline.yaml on runs/default,
read only), loads it in Chromium over the DevTools protocol (:mod:`tests.royaltysim.cdp`), steps a month,
moves the AI pool rate slider with a real mouse click, resets, steps again and reads the AI pool back. Solara,
Mesa's visualisation and Chromium are test dependencies: a missing one fails the test, never skips it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import royaltysim
from royaltysim import metrics
from royaltysim.config import load_scenario
from royaltysim.dashboard import (
    DashboardModel,
    ai_split_figure,
    gini_figure,
    lorenz_figure,
    model_params,
    payouts_figure,
    summary_rows,
)

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "scenarios" / "baseline.yaml"


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(BASELINE)


def _start(scenario, **controls) -> DashboardModel:
    params = model_params(scenario)
    values = {k: (v["value"] if isinstance(v, dict) and "type" in v else v) for k, v in params.items()}
    return DashboardModel(**{**values, **controls})


def test_every_control_is_a_parameter_mesa_accepts(scenario):
    from mesa.visualization.solara_viz import _check_model_params

    params = model_params(scenario)
    _check_model_params(DashboardModel.__init__, params)  # what SolaraViz checks before it builds the page
    assert params["ai_pool_rate"]["value"] == scenario.platform.ai_pool_rate == 0.5
    assert params["listeners"]["value"] == scenario.consumers.n
    assert params["arm3_ai"]["value"] == "causal" and "training_share" in params["arm3_ai"]["values"]
    assert params["months"]["value"] == scenario.steps


def test_the_arms_match_the_runner_month_by_month(scenario):
    model = _start(scenario, months=2, listeners=2000)
    while model.running:
        model.step()
    assert model.month == model.steps == 2 and model.config.consumers.n == 2000
    results = royaltysim.run(model.config, seed=scenario.seed, seeds=1, steps=2, workers=1)
    for arm, state in zip(model.arms, model.states):
        mine = pd.DataFrame(arm.records)
        theirs = results.model[results.model["scheme"] == arm.arm.label]
        np.testing.assert_allclose(mine["gini"], theirs["gini_income_month"])
        np.testing.assert_allclose(mine["ai_pool"], theirs["ai_pool"])
        income = results.creators[results.creators["scheme"] == arm.arm.label].groupby("creator", sort=False)["income"]
        np.testing.assert_allclose(state.income, income.sum().reindex(model.creators))
        assert state.ai_pool == pytest.approx(theirs["ai_pool"].sum())
    rows = {r["arm"]: r for r in summary_rows(model)}
    causal = model.states[2]
    assert rows["causal"]["gini"] == pytest.approx(metrics.gini(np.maximum(causal.income, 0)))
    assert rows["causal"]["ai_top_share"] == pytest.approx(causal.ai_pay.max() / causal.ai_pool)
    assert rows["causal"]["ai_top"] == model.names[int(np.argmax(causal.ai_pay))]


def test_sliders_and_scheme_menus_overlay_the_scenario(scenario):
    low = _start(scenario, ai_pool_rate=0.5)
    high = _start(scenario, ai_pool_rate=0.9, arm3_ai="training_share")
    low.step(), high.step()
    # month 1 is listened to before anyone responds: the AI pool scales with the rate alone
    assert high.states[0].ai_pool / low.states[0].ai_pool == pytest.approx(0.9 / 0.5)
    assert high.config.schemes[2].ai.name == "training_share" and high.arms[2].records[0]["ai_scheme"] == "training_share"
    assert not high.problem
    # a scheme the scenario refuses for a pool: the page says why and the arm keeps its scheme
    refused = _start(scenario, arm1_ai="threshold", ai_pool_rate=0.8, arm2_human="shapley_royalty_share")
    assert "schemes[1].human.name" in refused.problem and "shapley_royalty_share" in refused.problem
    assert [a.ai.name for a in refused.config.schemes] == ["pro_rata", "similarity", "causal"]
    assert refused.config.platform.ai_pool_rate == 0.8
    with pytest.raises(TypeError, match="arm4_ai"):
        _start(scenario, arm4_ai="causal")


def test_figures_have_a_panel_per_arm_and_draw_the_state(scenario):
    model = _start(scenario)
    model.step()
    lorenz = lorenz_figure(model)
    assert [ax.get_title() for ax in lorenz.axes] == ["pro-rata", "similarity", "causal"]
    x, y = metrics.lorenz(np.maximum(model.states[2].income, 0))
    curve = lorenz.axes[2].lines[1]
    np.testing.assert_allclose(curve.get_ydata(), y)
    assert len(gini_figure(model).axes[0].lines) == 3
    assert len(payouts_figure(model).axes) == len(ai_split_figure(model).axes) == 3


# ------------------------------------------------------------------ the served page in Chromium
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    exe = Path(sys.executable).with_name("royaltysim")
    proc = subprocess.Popen([str(exe), "dashboard", str(BASELINE), "--port", str(port)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=5):
                break
        except OSError:
            assert time.monotonic() < deadline, "the dashboard did not answer in 60 s"
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(20)
    log.close()


def _value(browser, arm: str, key: str) -> str:
    return browser.eval(f"document.querySelector('[data-arm=\"{arm}\"][data-key=\"{key}\"]').dataset.value")


def _click_button(browser, label: str) -> None:
    x, y = browser.eval(f"""(() => {{
        const b = Array.from(document.querySelectorAll('button')).find(e => e.innerText.trim() === '{label}');
        const r = b.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
    browser.click(x, y)


def test_the_page_steps_and_a_moved_slider_changes_the_ai_pool(server, tmp_path):
    from tests.royaltysim.cdp import Browser

    scenario = load_scenario(BASELINE)
    default, moved = _start(scenario), _start(scenario, ai_pool_rate=0.9)
    default.step(), moved.step()
    with Browser(tmp_path / "profile") as browser:
        browser.goto(server)
        browser.wait("document.querySelector('#arm-numbers') !== null", 60)
        assert _value(browser, "causal", "month") == "0" and browser.eval("document.querySelectorAll('img').length") == 0

        slider = """Array.from(document.querySelectorAll('.v-input__slider')).find(e => e.innerText.includes('AI pool rate'))"""
        assert browser.eval(f"{slider}.querySelector('[role=slider]').getAttribute('aria-valuenow')") == "0.5"
        x, y, w = browser.eval(f"""(() => {{ const r = {slider}.querySelector('.v-slider__track-container')
            .getBoundingClientRect(); return [r.x, r.y + r.height / 2, r.width]; }})()""")
        browser.click(x + 0.9 * w, y)  # a real click on the track, 90% along: 0.9 (step 0.05)
        browser.wait(f"{slider}.querySelector('[role=slider]').getAttribute('aria-valuenow') === '0.9'", 10)

        _click_button(browser, "RESET")  # as on every Mesa page, a control takes effect at Reset
        _click_button(browser, "STEP")
        month = "document.querySelector('[data-arm=\"{}\"][data-key=\"month\"]').dataset.value === '1'"
        browser.wait(" && ".join(month.format(a) for a in ("pro-rata", "similarity", "causal")), 60)
        for k, arm in enumerate(("pro-rata", "similarity", "causal")):
            shown = float(_value(browser, arm, "ai_pool"))
            assert shown == pytest.approx(moved.states[k].ai_pool, rel=1e-12)
            assert shown / default.states[k].ai_pool == pytest.approx(0.9 / 0.5, rel=1e-9)  # the slider's effect
            assert _value(browser, arm, "gini") == repr(summary_rows(moved)[k]["gini"])
        browser.wait("document.querySelectorAll('img').length === 4", 30)  # the four figures, drawn
        shot = browser.screenshot(tmp_path / "dashboard.png")
    assert shot.stat().st_size > 50_000
