"""``examples/compare_schemes.ipynb`` runs from top to bottom on this environment's Python, and is kept without outputs.

The notebook is executed in a copy of its folder layout under ``tmp_path`` (``examples/`` beside
``scenarios/``), so its ``../out/`` exports land there; the attribution run it reads resolves to the
repository's ``runs/default`` as it does for a user.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbclient
import nbformat
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "compare_schemes.ipynb"
KERNEL = "royaltysim-test"


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the notebook has no code"
    assert all(c.outputs == [] and c.execution_count is None for c in code), "clear the outputs before committing"


@pytest.fixture()
def this_python_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec that starts this interpreter (the venv's), found first on JUPYTER_PATH."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "royaltysim tests", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def test_compare_schemes_notebook_runs(tmp_path: Path, this_python_kernel: str) -> None:
    (tmp_path / "examples").mkdir()
    (tmp_path / "scenarios").mkdir()
    shutil.copy(ROOT / "scenarios" / "baseline.yaml", tmp_path / "scenarios" / "baseline.yaml")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    n_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell("import sys, royaltysim\nprint(sys.prefix)\nprint(royaltysim.__file__)"))
    client = nbclient.NotebookClient(nb, kernel_name=this_python_kernel, timeout=300,
                                     resources={"metadata": {"path": str(tmp_path / "examples")}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails

    prefix, package = nb.cells[n_cells].outputs[0]["text"].split()
    assert prefix == sys.prefix, "the notebook ran on another Python than this environment's"
    assert Path(package).resolve().is_relative_to(ROOT)
    outputs = [o for c in nb.cells[:n_cells] if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the seaborn figure was not drawn"
    csv = tmp_path / "out" / "compare_schemes" / "csv"
    measures = pd.read_csv(csv / "measures.csv")
    assert sorted(measures["seed"].unique()) == [0, 1, 2]
    assert set(measures["scheme"]) == {"pro-rata", "similarity", "causal"}
    assert (csv / "scenario.yaml").is_file() and (csv / "comparisons.csv").is_file()
