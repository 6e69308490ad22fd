"""The shape of the package: its parts stand in layers and import only downwards (no cycles, no
back-edges, not even inside a function), the library never imports the CLI, and the habits the
test run enforces are in force. The layers are also drawn in docs/architecture.md."""

from __future__ import annotations

import ast
import warnings
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "noosphere"

#: bottom to top; a part may import parts of lower layers only (siblings in one layer: neither)
LAYERS: list[set[str]] = [
    {"errors"},  # the exception tree
    {"securefile"},  # 0600 key files
    {"protocol"},  # wire formats: pure data
    {"models"},  # the embedding model and the LLM client
    {"abe"},  # CP-ABE
    {"mars", "agents"},  # recruiting; agents and their tools
    {"ledger"},  # contracts and the web3 client
    {"node"},  # the daemon
    {"orchestration"},  # worker pools on nodes
    {"cli"},  # the command line, on top of everything
]
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports anywhere (top level, in functions, under TYPE_CHECKING)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                found.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                found.add(node.module)
    return found


def part_of(module: str) -> str | None:
    """The top-level part (``node``, ``errors``...) of a noosphere module; None for others."""
    pieces = module.split(".")
    return pieces[1] if pieces[0] == "noosphere" and len(pieces) > 1 else None


def part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        source = part_of(module_name(path))
        if source is None:
            continue  # noosphere/__init__.py: the version only
        for target in map(part_of, imported_modules(path)):
            if target is not None and target != source:
                graph[source].add(target)
    return graph


def test_every_part_has_a_layer() -> None:
    parts = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert parts - {"__init__"} == set(LAYER_OF)


def test_imports_only_go_down() -> None:
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in part_graph().items()
        for target in targets
        if LAYER_OF[target] >= LAYER_OF[source]
    )
    assert upward == []


def test_no_import_cycles_between_parts() -> None:
    graph = part_graph()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in graph.get(start, ())
        )

    assert [part for part in graph if reaches(part, part, set())] == []


def test_the_library_never_imports_the_cli() -> None:
    importers = sorted(
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if part_of(module_name(path)) != "cli"
        and any(
            m == "noosphere.cli" or m.startswith("noosphere.cli.") for m in imported_modules(path)
        )
    )
    assert importers == []


def test_the_root_package_imports_nothing_of_its_own() -> None:
    assert not any(m.startswith("noosphere.") for m in imported_modules(PACKAGE / "__init__.py"))


def test_our_deprecation_warnings_fail_the_run() -> None:
    """pyproject's filterwarnings: a DeprecationWarning from a noosphere module is an error,
    another package's is not."""
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old", DeprecationWarning, "x.py", 1, module="noosphere.node.x")
    warnings.warn_explicit("theirs", DeprecationWarning, "y.py", 1, module="somelib.y")
