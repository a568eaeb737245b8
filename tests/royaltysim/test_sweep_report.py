"""The sweep report: run-level measures, never pooled over another swept parameter, and no order flip inside
the noise."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from royaltysim.sweep_report import _crossings, _effects, _line_plots, could_not_matter, sweep_summary

A, B = "platform.ai_pool_rate", "schemes[1].ai.params.top_k"


def _measures(effect_of_b_on_similarity: float = 0.0, noise: float = 0.002) -> pd.DataFrame:
    """Synthetic sweep measures: 2 x 2 grid x 4 seeds x 2 schemes; B changes only similarity."""
    rng = np.random.default_rng(0)
    rows = []
    for (a, b), seed, scheme in itertools.product(itertools.product([0.2, 0.8], [1, 10]), range(4), ["pro-rata", "similarity"]):
        luck = 0.01 * seed  # shared by every arm and point of a seed
        base = 0.9 - 0.05 * a + luck
        if scheme == "similarity":
            base += effect_of_b_on_similarity * (b == 10) + rng.normal(0, noise)
        rows.append({"run_id": f"{a}-{b}-{seed}", "scheme": scheme, A: a, B: b, "seed": seed,
                     "gini_income_run": base, "ai_misallocation_month_mean": 0.3, "creators_active_end": 20.0})
    return pd.DataFrame(rows)


def test_a_parameter_that_cannot_matter_is_named() -> None:
    m = _measures(effect_of_b_on_similarity=-0.05)
    idle = could_not_matter(m, [A, B], ["gini_income_run"])
    assert idle == {B: ["pro-rata"]}


def test_effects_are_paired_and_conditioned_on_the_other_parameter() -> None:
    m = _measures(effect_of_b_on_similarity=-0.05)
    lines = _effects(m, [A, B], ["gini_income_run"], could_not_matter(m, [A, B]))
    raising_b = [line for line in lines if line.startswith(f"Raising <code>{B}</code>")]
    # one sentence per setting of the other parameter, never an average over it
    assert len(raising_b) == 2 and f"at {A} = 0.2" in raising_b[0] and f"at {A} = 0.8" in raising_b[1]
    assert all("<b>similarity</b> falls" in line and "pro-rata" not in line for line in raising_b)
    # the seeds' shared luck (0.01 a seed) cancels in the paired difference: a 0.05 drop is detected
    raising_a = [line for line in lines if line.startswith(f"Raising <code>{A}</code>")]
    assert raising_a and all("<b>pro-rata</b> falls" in line for line in raising_a)


def test_no_order_flip_is_reported_inside_the_noise() -> None:
    tie = _measures(effect_of_b_on_similarity=0.0, noise=0.002)  # similarity and pro-rata tie up to noise
    assert _crossings(tie, [A, B], "gini_income_run") == []
    flip = tie.copy()
    sim = flip["scheme"] == "similarity"
    flip.loc[sim, "gini_income_run"] += np.where(flip.loc[sim, B] == 10, 0.05, -0.05)
    lines = _crossings(flip, [A, B], "gini_income_run")
    assert lines and all("the order flips" in line for line in lines)


def test_plots_have_one_column_per_setting_of_the_other_parameter(tmp_path) -> None:
    import matplotlib.pyplot as plt

    m = _measures(effect_of_b_on_similarity=-0.05)
    names = ["gini_income_run", "creators_active_end"]
    before = set(plt.get_fignums())
    name = _line_plots(m, A, [A, B], names, tmp_path, n_creators=40)
    assert (tmp_path / name).is_file() and set(plt.get_fignums()) == before
    from PIL import Image

    width, height = Image.open(tmp_path / name).size
    assert width == round(100 * (3.9 * 2 + 0.6))  # two columns of panels: B = 1 and B = 10
    assert height == round(100 * (2.9 * 2 + 0.4))  # a row per measure
    summary = sweep_summary(m, [A, B], names)
    assert len(summary) == 2 * 2 * 2 * 2  # schemes x A x B x measures: B is kept, not averaged over
    gini = summary[summary["measure"] == "gini_income_run"]
    assert (gini["low"] > 0).all() and (gini["high"] < 1).all()
