"""The README's Python example runs as written and writes what its comments say.

It runs in a fresh interpreter whose working folder is ``tmp_path`` holding the repository's ``scenarios/``
(linked), so its ``out/`` folders land under ``tmp_path``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def _python_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("From Python (e.g. a notebook"):]
    return re.search(r"^```python\n(.*?)^```", section, re.S | re.M).group(1)


def test_readme_python_example_runs(tmp_path: Path) -> None:
    code = _python_example()
    assert "royaltysim.run(" in code and "royaltysim.sweep(" in code
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios", target_is_directory=True)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    run = tmp_path / "out" / "baseline"
    assert (run / "report.html").is_file() and (run / "scenario.yaml").is_file()
    assert sorted(pd.read_parquet(run / "measures.parquet")["seed"].unique()) == [0, 1, 2]
    assert (run / "csv" / "comparisons.csv").is_file()
    assert "gini_income_run" in pd.read_stata(run / "stata" / "measures.dta").columns
    sweep = tmp_path / "out" / "sweep"
    assert (sweep / "sweep_report.html").is_file()
    assert pd.read_parquet(sweep / "measures.parquet")["seed"].nunique() == 2
