"""Result tables for other tools: CSV, and Stata files whose variable names and types Stata accepts.

:func:`write_tables` writes named tables into a folder, one file each (``<name>.csv`` or ``<name>.dta``);
``Results.to_csv``/``to_stata`` and ``SweepResults.to_csv``/``to_stata`` call it. Stata needs more than a
file format:

* :func:`stata_names` -- variable names of at most 32 letters, digits and underscores, not starting with
  a digit and not a reserved word (``schemes[1].ai.params.top_k`` -> ``schemes_1_ai_params_top_k``),
  distinct after shortening;
* :func:`stata_frame` -- column types Stata stores: booleans as 0/1 bytes, strings as strings (missing as
  ""), categoricals of strings as labelled integers, nullable numbers as floats with missing values,
  anything else (a swept list, mixed values) as its text;
* :func:`write_stata` -- a Stata 14+ file (format 118: Unicode, strings of any length) whose variable
  labels are the original column names.

:func:`export_folder` does the same for results already on disk (``royaltysim export FOLDER --to csv|stata``):
a run folder (``royaltysim run``; its tables as :meth:`Results.tables` gives them, the summary and comparisons
recomputed from its measures), a sweep folder (``royaltysim sweep``) or a sensitivity folder (``royaltysim
sensitivity``), whose table files are exported as they are. Every column is described in docs/columns.md
(:mod:`royaltysim.columns`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from royaltysim.errors import InputError

__all__ = ["stata_names", "stata_frame", "write_stata", "write_tables", "STATA_NAME_LENGTH", "ExportError",
           "folder_tables", "export_folder", "FORMATS"]

#: the export formats: name on the command line -> file suffix
FORMATS = {"csv": "csv", "stata": "dta"}
# the table files of sweep and sensitivity folders, in the order they are exported
_SWEEP_TABLES = ("sweep", "summary", "creator_income", "measures")
_SENSITIVITY_TABLES = ("design", "outputs", "sobol", "morris", *_SWEEP_TABLES)


class ExportError(InputError, ValueError):
    """A folder that holds no results to export, or an export asked for in a way that cannot be done."""

#: the longest variable name Stata accepts
STATA_NAME_LENGTH = 32
# longest label Stata stores (variable and data labels)
_LABEL_LENGTH = 80
# a longer string needs Stata's strL type
_STR_LENGTH = 2045


def _reserved() -> set[str]:
    from pandas.io.stata import StataParser

    return set(StataParser().RESERVED_WORDS)  # the list pandas checks against; Stata's own, from its manual


def stata_names(columns: Sequence[object]) -> dict[str, str]:
    """A valid, distinct Stata variable name for each column (a name that is already valid is kept).

    Characters other than letters, digits and ``_`` become ``_`` (runs of them one); a name that starts
    with a digit gets ``v_`` in front, a reserved word (``float``, ``in``...) a trailing ``_``; names are cut
    to :data:`STATA_NAME_LENGTH` and, where two would clash, numbered (``name_2``).
    """
    reserved = _reserved()
    out: dict[str, str] = {}
    used: set[str] = set()
    for column in columns:
        original = str(column)
        name = re.sub(r"[^A-Za-z0-9_]+", "_", original).strip("_") or "var"
        if name[0].isdigit():
            name = "v_" + name
        if name in reserved:
            name += "_"
        name = name[:STATA_NAME_LENGTH]
        candidate, i = name, 2
        while candidate in used:
            suffix = f"_{i}"
            candidate = name[: STATA_NAME_LENGTH - len(suffix)] + suffix
            i += 1
        used.add(candidate)
        out[original] = candidate
    return out


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _as_text(column: pd.Series) -> pd.Series:
    return column.map(lambda v: "" if _missing(v) else str(v)).astype(object)


def stata_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every column in a type Stata stores (names unchanged; see the module's docstring)."""
    out = {}
    for name, column in frame.items():
        dtype = column.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            if all(isinstance(c, str) for c in dtype.categories):
                out[name] = column  # written as integers with value labels
                continue
            column = column.astype(object)
            dtype = column.dtype
        if pd.api.types.is_bool_dtype(dtype):
            out[name] = (column.astype("float64") if column.isna().any() else column.astype("int8"))
        elif pd.api.types.is_numeric_dtype(dtype):
            # nullable integers and floats (Int64, Float64) have no Stata counterpart with missing values
            out[name] = column.astype("float64") if pd.api.types.is_extension_array_dtype(dtype) else column
        elif pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
            out[name] = _as_text(column)
        else:
            values = [v for v in column if not _missing(v)]
            if values and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                              for v in values):
                out[name] = pd.to_numeric(column, errors="coerce").astype("float64")
            else:
                out[name] = _as_text(column)
    return pd.DataFrame(out, index=frame.index)


def write_stata(frame: pd.DataFrame, path: str | Path, data_label: str | None = None) -> Path:
    """Write ``frame`` as a Stata file (format 118) with Stata's names; each variable's label is its column name.

    ``pd.read_stata(path)`` reads it back with the names of :func:`stata_names`.
    """
    names = stata_names(list(frame.columns))
    data = stata_frame(frame).rename(columns=names)
    labels = {new: old[:_LABEL_LENGTH] for old, new in names.items()}
    long_text = [c for c in data.columns if data[c].dtype == object and data[c].str.len().max() > _STR_LENGTH]
    data.to_stata(
        path, write_index=False, version=118, variable_labels=labels,
        data_label=data_label[:_LABEL_LENGTH] if data_label else None, convert_strl=long_text or None,
    )
    return Path(path)


def write_tables(tables: Mapping[str, pd.DataFrame], folder: str | Path, fmt: Literal["csv", "dta"],
                 names: Sequence[str] | None = None, data_label: str | None = None) -> list[Path]:
    """Write each table in ``names`` (default: all) as ``folder/<name>.csv`` or ``folder/<name>.dta``.

    Raises:
        ValueError: a name that is not one of ``tables`` (the message lists them).
    """
    chosen = list(tables) if names is None else list(names)
    unknown = [n for n in chosen if n not in tables]
    if unknown:
        raise ValueError(f"no table {', '.join(map(repr, unknown))}; tables: {', '.join(tables)}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in chosen:
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            tables[name].to_csv(path, index=False)
        elif fmt == "dta":
            write_stata(tables[name], path, data_label=data_label)
        else:
            raise ValueError(f"fmt must be 'csv' or 'dta'; got {fmt!r}")
        written.append(path)
    return written


def folder_tables(folder: str | Path) -> tuple[str, dict[str, pd.DataFrame], str | None]:
    """The kind of results ``folder`` holds (``run``, ``sweep`` or ``sensitivity``), its tables by name, and its
    resolved scenario's text (``None`` for a folder that keeps none).

    Raises:
        ExportError: ``folder`` is not a folder, or holds none of these results (the message says what each
            kind of folder holds and which command writes it).
    """
    root = Path(folder)
    if not root.is_dir():
        raise ExportError(f"{root} is not a folder; give a run folder (royaltysim run --out), a sweep folder "
                          "(royaltysim sweep --out) or a sensitivity folder (royaltysim sensitivity --out)")
    has = {p.stem for p in root.glob("*.parquet")}
    scenario_file = root / "scenario.yaml"
    text = scenario_file.read_text() if scenario_file.is_file() else None
    if {"model", "creators"} <= has:
        if text is None:
            raise ExportError(f"{root} has model.parquet and creators.parquet but no scenario.yaml, which a run "
                              "folder keeps beside its tables (its arms and reference): rerun the scenario with "
                              "`royaltysim run FILE --out FOLDER`")
        return "run", _run_tables(root, has), text
    if "design" in has:
        return "sensitivity", {n: pd.read_parquet(root / f"{n}.parquet") for n in _SENSITIVITY_TABLES if n in has}, text
    if "sweep" in has:
        return "sweep", {n: pd.read_parquet(root / f"{n}.parquet") for n in _SWEEP_TABLES if n in has}, text
    found = sorted(p.name for p in root.iterdir())[:12]
    raise ExportError(
        f"{root} holds no results to export: a run folder has model.parquet and creators.parquet (royaltysim run), "
        f"a sweep folder sweep.parquet (royaltysim sweep), a sensitivity folder design.parquet (royaltysim "
        f"sensitivity); found {', '.join(found) if found else 'nothing'}"
    )


def _run_tables(root: Path, has: set[str]) -> dict[str, pd.DataFrame]:
    from royaltysim.config import load_scenario
    from royaltysim.runner import Results

    # the run's attribution run need not be on this machine: its tables are all an export reads
    scenario = load_scenario(root / "scenario.yaml", check_files=False)
    results = Results(scenario, pd.read_parquet(root / "model.parquet"), pd.read_parquet(root / "creators.parquet"),
                      runtime_s=0.0)
    for name in ("creator_income", "measures"):  # as written, readable names included
        if name in has:
            results._cache[name] = pd.read_parquet(root / f"{name}.parquet")
    return results.tables()


def export_folder(folder: str | Path, to: str = "csv", out: str | Path | None = None,
                  tables: Sequence[str] | None = None) -> list[Path]:
    """Export the tables of a run, sweep or sensitivity folder as CSV or Stata files (``royaltysim export``).

    Args:
        folder: the results folder (see :func:`folder_tables`); it is only read.
        to: ``"csv"`` or ``"stata"``.
        out: where the files go (default: ``<folder>/<to>``); each table is ``<name>.csv`` or ``<name>.dta``,
            and the folder's ``scenario.yaml``, when it has one, is copied beside them.
        tables: the tables to write (default: all the folder holds).

    Returns:
        The files written.
    """
    if to not in FORMATS:
        raise ExportError(f"cannot export to {to!r}; formats: {', '.join(FORMATS)}")
    kind, found, text = folder_tables(folder)
    dest = Path(out) if out is not None else Path(folder) / to
    label = None
    if text is not None:
        from royaltysim.safe_yaml import load_yaml_text

        raw = load_yaml_text(text, str(Path(folder) / "scenario.yaml"))
        label = raw.get("question") if isinstance(raw, dict) else None
    try:
        written = write_tables(found, dest, FORMATS[to], tables, data_label=f"{kind}: {label}" if label else kind)
    except ValueError as err:
        raise ExportError(f"{folder}: {err}") from None
    if text is not None:
        (dest / "scenario.yaml").write_text(text)
        written.append(dest / "scenario.yaml")
    return written
