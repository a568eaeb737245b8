"""Reading YAML a user hands us, within bounds: :func:`load_yaml_file` and :func:`load_yaml_text`.

``yaml.safe_load`` constructs no objects, but it still lets a few hundred bytes ask for gigabytes: an
alias (``*a``) refers to an anchored node without copying it, so nine aliases of nine aliases of ...
(the "billion laughs") parse in microseconds into a tree whose expanded size is 9**9 nodes, and every
consumer that walks it (pydantic, ``json.dumps``, ``copy.deepcopy``) expands it. A scenario is a few
hundred nodes, so this loader composes the document, measures its size *with every alias expanded*
(each shared node counted once per use, in time proportional to the distinct nodes), and refuses a
document over :data:`MAX_NODES`, one nested deeper than :data:`MAX_DEPTH`, a recursive alias
(``&a [*a]``), a file over :data:`MAX_BYTES`, or text that is not UTF-8. Every refusal is a
:class:`YamlError` naming the file (and line, for syntax errors) and what to change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from royaltysim.errors import InputError

__all__ = ["YamlError", "load_yaml_file", "load_yaml_text", "MAX_BYTES", "MAX_NODES", "MAX_DEPTH"]

#: largest file read (a scenario is a few kB; a long sweep grid a few hundred kB)
MAX_BYTES = 5_000_000
#: most nodes (scalars, lists and mappings) with aliases expanded; the shipped scenarios have < 400
MAX_NODES = 200_000
#: deepest nesting of lists and mappings (a scenario nests 5 deep)
MAX_DEPTH = 64


class YamlError(InputError, ValueError):
    """A YAML file cannot be read safely: too large, not UTF-8, bad syntax, or an alias bomb."""

    def __init__(self, where: str, problem: str):
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


def _expanded_size(root: yaml.Node, where: str) -> int:
    """Nodes in the document with every alias expanded; raises on recursion, depth or size over the limits."""
    size: dict[int, int] = {}  # id(node) -> expanded size of its subtree (memo: shared nodes counted per use)
    open_: set[int] = set()  # nodes on the current path (a node reached again from inside itself is a cycle)
    # iterative post-order walk: (node, depth, children done?)
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            total = 1 + sum(size[id(c)] for c in _children(node))
            if total > MAX_NODES:
                raise YamlError(where, f"the document expands to more than {MAX_NODES:,} values once its aliases "
                                "(*name) are expanded; a scenario is a few hundred. Write the values out, or use "
                                "fewer aliases")
            size[key] = total
            continue
        if key in size:
            continue
        if key in open_:
            line = node.start_mark.line + 1 if node.start_mark else "?"
            raise YamlError(f"{where}:{line}", "a recursive alias (an anchor used inside itself) cannot be read; "
                            "remove the alias")
        if depth > MAX_DEPTH:
            line = node.start_mark.line + 1 if node.start_mark else "?"
            raise YamlError(f"{where}:{line}", f"nested more than {MAX_DEPTH} levels deep; a scenario nests about 5")
        open_.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in _children(node) if id(c) not in size)
    return size[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml_text(text: str, where: str = "<string>") -> Any:
    """Parse YAML text with ``yaml.SafeLoader`` after checking its expanded size (see the module docstring)."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
            problem = getattr(exc, "problem", None) or str(exc)
            raise YamlError(at, f"YAML syntax error: {problem}") from None
        except RecursionError:
            raise YamlError(where, "nested too deeply to read; a scenario nests about 5 levels") from None
        if node is None:
            return None
        _expanded_size(node, where)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
            raise YamlError(at, f"YAML error: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()


def load_yaml_file(path: str | Path, what: str = "YAML file") -> Any:
    """Read and parse a YAML file within the limits; ``what`` names it in messages (e.g. "scenario")."""
    path = Path(path)
    if path.is_dir():
        raise YamlError(str(path), f"is a folder, not a {what}; give the path of a .yaml file inside it")
    if not path.is_file():
        raise YamlError(str(path), "file not found")
    try:
        n_bytes = path.stat().st_size
        if n_bytes > MAX_BYTES:
            raise YamlError(str(path), f"{n_bytes:,} bytes is too large for a {what} (at most {MAX_BYTES:,})")
        data = path.read_bytes()
    except OSError as exc:
        raise YamlError(str(path), f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlError(f"{path}:{line}", f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                        f"save the {what} as UTF-8") from None
    return load_yaml_text(text, str(path))
