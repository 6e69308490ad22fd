"""The command line's shared pieces (all phases): consoles, common options, one-line failures
and JSON output, used by every ``noosphere`` sub-command module."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console

out = Console()
err = Console(stderr=True)

DEFAULT_RPC = "http://127.0.0.1:7070"

RpcOption = Annotated[
    str,
    typer.Option(
        "--rpc", envvar="NOOSPHERE_RPC", help="JSON-RPC URL of the node.", show_default=True
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit non-zero."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def plain(value: Any) -> Any:
    """Models (and lists of them) as JSON-ready values with wire names."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def print_json(value: Any, *, indent: int | None = 2) -> None:
    sys.stdout.write(json.dumps(plain(value), indent=indent) + "\n")
    sys.stdout.flush()
