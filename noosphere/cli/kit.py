"""The command line's shared pieces (all phases): consoles, the options every command group uses
(``--rpc``, ``--json``, ``--home``, ``--token``), the operator's credentials, the one place where
a node's failure (unreachable, a JSON-RPC error) becomes a one-line exit, and JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console

if TYPE_CHECKING:
    import httpx

    from noosphere.node.client import NodeClient

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
HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="NOOSPHERE_HOME",
        help="Your node's home: its rpc.token (for your node) and node.key (to sign for others).",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="NOOSPHERE_TOKEN", help="Operator token (instead of HOME/rpc.token)."
    ),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit non-zero."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def operator_auth(home: Path | None, token: str | None) -> httpx.Auth:
    """The operator's bearer token: ``--token``/``NOOSPHERE_TOKEN``, or ``HOME/rpc.token``."""
    from noosphere.node.auth import BearerAuth, read_token
    from noosphere.node.keystore import KeyFileError

    if token is None:
        if home is None:
            fail(
                "this command needs your node's token: pass --home DIR (reads DIR/rpc.token),"
                " --token or NOOSPHERE_TOKEN"
            )
        try:
            token = read_token(home.expanduser() / "rpc.token")
        except KeyFileError as exc:
            fail(str(exc))
    return BearerAuth(token)


@contextmanager
def node_errors() -> Iterator[None]:
    """The one handler for a node's failures: unreachable, or a JSON-RPC error, each becomes one
    line on stderr and exit 1."""
    from noosphere.node.client import NodeUnreachable
    from noosphere.protocol import RpcError

    try:
        yield
    except NodeUnreachable as exc:
        fail(str(exc))
    except RpcError as exc:
        fail(f"{exc.message} (JSON-RPC error {exc.code})")


@contextmanager
def node_client(
    rpc: str, *, auth: httpx.Auth | None = None, timeout: float = 10.0
) -> Iterator[NodeClient]:
    """A JSON-RPC client for ``rpc`` inside ``node_errors``."""
    from noosphere.node.client import NodeClient

    with node_errors(), NodeClient(rpc, auth=auth, timeout=timeout) as client:
        yield client


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
