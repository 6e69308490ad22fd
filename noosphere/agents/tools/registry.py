"""Execute: finding tools by reference. An agent file names its tools as built-ins
("arithmetic", "builtin:arithmetic"), importable classes ("package.module:Class") or classes in
a Python file next to the agent file ("tools/mine.py:Class")."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from noosphere.agents.tools.base import Tool, Toolbox, ToolError, check_tool
from noosphere.agents.tools.builtin import (
    ArithmeticTool,
    BusinessDaysTool,
    CsvJsonTool,
    KeywordsTool,
    ReadabilityTool,
    SummarizeTool,
    TimezoneTool,
    UnitConvertTool,
)

BUILTIN_TOOLS: dict[str, type[Tool[Any]]] = {
    cls.name: cls
    for cls in (
        ArithmeticTool,
        UnitConvertTool,
        SummarizeTool,
        KeywordsTool,
        CsvJsonTool,
        TimezoneTool,
        BusinessDaysTool,
        ReadabilityTool,
    )
}
_BUILTIN_PREFIX = "builtin:"


def _builtin(name: str, ref: str) -> Tool[Any]:
    cls = BUILTIN_TOOLS.get(name)
    if cls is None:
        known = ", ".join(sorted(BUILTIN_TOOLS))
        raise ToolError(f"tool {ref!r}: no built-in tool {name!r} (built-ins: {known})")
    return cls()


def _module_from_file(path: Path, ref: str) -> ModuleType:
    if not path.is_file():
        raise ToolError(f"{ref!r}: file {path} not found")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    name = f"noosphere_agent_tool_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ToolError(f"{ref!r}: cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ToolError(
            f"{ref!r}: {path.name} failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _module(name: str, ref: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ToolError(f"{ref!r}: cannot import {name!r}: {exc}") from exc
    except Exception as exc:
        raise ToolError(f"{ref!r}: importing {name!r} failed: {type(exc).__name__}: {exc}") from exc


def _instantiate(obj: object, attr: str, ref: str) -> Tool[Any]:
    if isinstance(obj, type) and issubclass(obj, Tool):
        try:
            obj = obj()
        except Exception as exc:
            raise ToolError(
                f"tool {ref!r}: cannot create {attr}(): {type(exc).__name__}: {exc}"
            ) from exc
    if not isinstance(obj, Tool):
        raise ToolError(f"tool {ref!r}: {attr} is not a Tool subclass or instance")
    return check_tool(obj, f"tool {ref!r}")


def load_tool(ref: str, *, base_dir: Path | None = None) -> Tool[Any]:
    """The tool ``ref`` names: a built-in, "package.module:Class" or "path/file.py:Class" (a
    relative path is relative to ``base_dir``, the agent file's folder). Any problem is a
    one-line ToolError naming ``ref``."""
    ref = ref.strip()
    if ref.startswith(_BUILTIN_PREFIX):
        return _builtin(ref.removeprefix(_BUILTIN_PREFIX).strip(), ref)
    if ":" not in ref:
        return _builtin(ref, ref)
    obj, attr = resolve_object(ref, base_dir=base_dir, kind="tool")
    return _instantiate(obj, attr, ref)


def resolve_object(ref: str, *, base_dir: Path | None, kind: str) -> tuple[object, str]:
    """The object ``ref`` names ("package.module:Attr" or "path/file.py:Attr", a relative path
    being relative to ``base_dir``) and its attribute path; ToolError names ``kind`` and ``ref``.
    Shared by tools and by custom agent runtimes."""
    location, _, attr = ref.strip().rpartition(":")
    if not location or not attr:
        raise ToolError(f"{kind} {ref!r}: expected 'module:Class' or 'file.py:Class'")
    try:
        if location.endswith(".py") or "/" in location or "\\" in location:
            path = Path(location).expanduser()
            if not path.is_absolute():
                path = (base_dir or Path.cwd()) / path
            module = _module_from_file(path.resolve(), ref)
        else:
            module = _module(location, ref)
    except ToolError as exc:
        raise ToolError(f"{kind} {exc}") from exc
    obj: object = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ToolError(f"{kind} {ref!r}: {location} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj, attr


def load_toolbox(refs: Iterable[str], *, base_dir: Path | None = None) -> Toolbox:
    """A toolbox of the tools ``refs`` name; ToolError for a bad ref or a duplicate name."""
    toolbox = Toolbox()
    for ref in refs:
        tool = load_tool(ref, base_dir=base_dir)
        try:
            toolbox.register(tool)
        except ValueError as exc:
            raise ToolError(f"tool {ref!r}: {exc}") from exc
    return toolbox
