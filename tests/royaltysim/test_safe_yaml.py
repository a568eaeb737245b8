"""Reading user YAML within bounds: alias bombs, recursion, depth, size and encoding are refused with a message."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from royaltysim.safe_yaml import MAX_NODES, YamlError, load_yaml_file, load_yaml_text


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs": each level is a list of `width` aliases of the level below (width**levels leaves)."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_once() -> None:
    text = alias_bomb()
    assert len(text.encode()) < 700  # the 657-byte bomb: 9**9 = 387 million leaves
    t0 = time.perf_counter()
    with pytest.raises(YamlError, match="aliases"):
        load_yaml_text(text, "bomb.yaml")
    assert time.perf_counter() - t0 < 1.0


def test_aliases_within_the_limit_still_work() -> None:
    data = load_yaml_text("base: &b {x: 1, y: [1, 2]}\nother: *b\nmerged: {<<: *b, z: 3}\n")
    assert data["other"] == {"x": 1, "y": [1, 2]} and data["merged"] == {"x": 1, "y": [1, 2], "z": 3}
    # a shared node counts once per use: just under the limit reads, just over is refused
    n = int(MAX_NODES ** 0.5) - 2
    ok = f"row: &r [{', '.join(['1'] * n)}]\ntable: [" + ", ".join(["*r"] * (n - 2)) + "]\n"
    assert len(load_yaml_text(ok)["table"]) == n - 2
    over = f"row: &r [{', '.join(['1'] * n)}]\ntable: [" + ", ".join(["*r"] * (n + 10)) + "]\n"
    with pytest.raises(YamlError):
        load_yaml_text(over)


def test_recursive_alias_and_deep_nesting_are_refused() -> None:
    with pytest.raises(YamlError, match="recursive"):
        load_yaml_text("a: &a [1, *a]\n")
    with pytest.raises(YamlError, match="nested"):
        load_yaml_text("x: " + "[" * 100 + "]" * 100 + "\n")
    with pytest.raises(YamlError, match="nested"):
        load_yaml_text("x: " + "[" * 5000 + "]" * 5000 + "\n")  # deeper than the parser's own recursion


def test_files_not_utf8_folders_and_huge_files(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("question: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(YamlError, match=r"latin1\.yaml:1: is not UTF-8"):
        load_yaml_file(latin, what="scenario")
    with pytest.raises(YamlError, match="is a folder"):
        load_yaml_file(tmp_path, what="scenario")
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(6_000_000)
    with pytest.raises(YamlError, match="too large"):
        load_yaml_file(big)
    with pytest.raises(YamlError, match=r"broken\.yaml:3:\d+: YAML syntax error"):
        load_yaml_text("a: 1\nb: [1, 2\nc: 3\n", "broken.yaml")
