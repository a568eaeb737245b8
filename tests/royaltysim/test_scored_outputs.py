"""``source.outputs``: a scenario's AI catalogue from the build's outputs, pieces scored later, or both (torch-free).

That scored pieces pay exactly as the build's own outputs re-scored is tested on a real tiny run in
``tests/attribution/test_piece_scores.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from attribution.table import AttributionTable
from royaltysim.config import ScenarioError, validate_scenario
from royaltysim.population import corpus_population

from .conftest import small_scenario


def _with_scored(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of the fixture run whose build outputs also appear, renamed, as scored pieces."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "scored").mkdir()
    outputs = pd.read_parquet(run / "outputs.parquet")
    scores = pd.read_parquet(run / "attribution.parquet")
    rename = {o: f"{o}-0123abcd" for o in outputs["output_id"]}
    outputs.assign(output_id=outputs["output_id"].map(rename), file_sha256="0123abcd" * 8).to_parquet(
        run / "scored" / "outputs.parquet", index=False)
    scores.assign(output_id=scores["output_id"].map(rename)).to_parquet(run / "scored" / "attribution.parquet", index=False)
    return run


def test_scored_outputs_need_scored_pieces(run_dir: Path) -> None:
    raw = small_scenario(run_dir, source={"kind": "corpus", "run": str(run_dir), "outputs": "scored"})
    with pytest.raises(ScenarioError) as info:
        validate_scenario(raw)
    assert "source.outputs" in str(info.value) and "royaltysim attribution score" in str(info.value)


def test_an_unknown_outputs_value_is_refused_with_the_choices(run_dir: Path) -> None:
    raw = small_scenario(run_dir, source={"kind": "corpus", "run": str(run_dir), "outputs": "fresh"})
    with pytest.raises(ScenarioError) as info:
        validate_scenario(raw)
    assert "source.outputs" in str(info.value) and "'scored'" in str(info.value)


def test_the_catalogue_is_the_scored_pieces_or_all(run_dir: Path, tmp_path: Path) -> None:
    run = _with_scored(run_dir, tmp_path)
    for outputs, n in (("build", 10), ("scored", 10), ("all", 20)):
        scenario = validate_scenario(small_scenario(run, source={"kind": "corpus", "run": str(run), "outputs": outputs}))
        assert scenario.source.outputs == outputs
        assert len(AttributionTable.load(run, outputs=outputs).output_ids) == n
    build, scored = AttributionTable.load(run), AttributionTable.load(run, outputs="scored")
    a = corpus_population(build, "trak", reference="causal")
    b = corpus_population(scored, "trak", reference="causal")
    assert (a.attribution == b.attribution).all() and (a.similarity == b.similarity).all()
