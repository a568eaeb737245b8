"""The package's public surface: names visible to ``dir()`` and editors without heavy imports, and the version."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import royaltysim
from royaltysim.cli import app

INIT = Path(royaltysim.__file__)


def test_dir_lists_every_public_name_without_importing_torch_pandas_or_mesa() -> None:
    code = (
        "import sys, royaltysim\n"
        "names = dir(royaltysim)\n"
        "missing = [n for n in royaltysim.__all__ if n not in names]\n"
        "assert not missing, missing\n"
        "assert names == sorted(names)\n"
        "loaded = [m for m in ('torch', 'pandas', 'mesa') if m in sys.modules]\n"
        "assert not loaded, f'import royaltysim + dir() loaded {loaded}'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=INIT.parents[1])
    assert done.returncode == 0, done.stderr


def test_every_public_name_resolves_to_its_module_object() -> None:
    for name in royaltysim.__all__:
        if name == "__version__":
            continue
        module = importlib.import_module(royaltysim._LAZY[name])
        if name in royaltysim._CALLABLE_SUBMODULES:
            # `royaltysim.sweep` is the submodule, callable as the function (tests/royaltysim/test_api.py calls it)
            assert getattr(royaltysim, name) is sys.modules[f"royaltysim.{name}"], name
            assert callable(getattr(royaltysim, name)) and callable(getattr(module, name)), name
            continue
        assert getattr(royaltysim, name) is getattr(module, name), name
    assert set(royaltysim._LAZY) == set(royaltysim.__all__) - {"__version__"}


def test_type_checking_imports_match_the_lazy_table() -> None:
    """Editors and type checkers read the ``if TYPE_CHECKING:`` imports; they must name the same objects."""
    tree = ast.parse(INIT.read_text())
    block = next(
        node for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    )
    imported = {
        alias.asname or alias.name: node.module
        for node in block.body if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == royaltysim._LAZY


def test_unknown_attributes_raise_attribute_error() -> None:
    try:
        royaltysim.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("royaltysim.no_such_name should raise AttributeError")


def test_version_is_the_installed_distribution_version() -> None:
    assert royaltysim.__version__ == importlib.metadata.version("royaltysim")


def test_cli_version_prints_the_version_and_exits() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"royaltysim {importlib.metadata.version('royaltysim')}\n"
