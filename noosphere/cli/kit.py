"""The command line's shared pieces (all phases): consoles, the options every command group uses
(``--rpc``, ``--json``, ``--home``, ``--token``), the operator's credentials, the one place where
a node's failure (unreachable, a JSON-RPC error) becomes a one-line exit, and JSON output.

Import cost matters here: every command (and ``--help``) loads this module, so it imports only
typer and rich's console; httpx, pydantic, structlog and the protocol load inside the commands
that use them (``tests/unit/test_cli_imports.py`` keeps it so)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
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


def rpc_query(rpc: str, method: str, *, timeout: float = 10.0) -> Any:
    """One unauthenticated JSON-RPC call over the standard library, for the read-only commands a
    probe or a person runs often (``node status``): no httpx, no wire models, so the command
    starts in a fraction of the time. Failures end the command like ``node_client`` does."""
    import urllib.error
    import urllib.request

    url = rpc.rstrip("/")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}).encode()
    request = urllib.request.Request(
        url + "/", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:  # a JSON-RPC error may come with 4xx (401)
        status, raw = exc.code, exc.read()
    except urllib.error.URLError as exc:
        fail(f"no noosphere node answered at {url} ({exc.reason})")
    except (OSError, ValueError) as exc:  # timeouts, resets, a malformed URL
        fail(f"no noosphere node answered at {url} ({exc})")
    try:
        answer = json.loads(raw)
    except ValueError:
        fail(f"{url} answered HTTP {status} without JSON-RPC")
    if not isinstance(answer, dict):
        fail(f"{url} answered HTTP {status} without JSON-RPC")
    if "error" in answer:
        error = answer["error"] if isinstance(answer["error"], dict) else {}
        fail(f"{error.get('message', 'error')} (JSON-RPC error {error.get('code', 0)})")
    return answer.get("result")


def plain(value: Any) -> Any:
    """Models (and lists of them) as JSON-ready values with wire names."""
    if callable(getattr(value, "model_dump", None)):  # a pydantic model (pydantic loads lazily)
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def print_json(value: Any, *, indent: int | None = 2) -> None:
    sys.stdout.write(json.dumps(plain(value), indent=indent) + "\n")
    sys.stdout.flush()


class _AfterImport:
    """A meta-path finder that lets the ordinary finders load one module, then calls ``then``:
    Python's missing post-import hook, for the one module the CLI must configure when loaded."""

    def __init__(self, name: str, then: Callable[[], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once; the ordinary finders do the finding
        import importlib.util

        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module
        then = self.then

        def exec_then(module: Any) -> None:
            exec_module(module)
            then()

        spec.loader.exec_module = exec_then  # type: ignore[method-assign]
        return spec


def plain_tracebacks_when_logging() -> None:
    """structlog's default pipeline without frame locals in tracebacks (see
    ``noosphere.node.logging``) for every command, applied when a command first imports
    structlog: a command that never logs (``--help``, ``node status``) never loads it."""

    def configure() -> None:
        from noosphere.node.logging import configure_default_logging

        configure_default_logging()

    if "structlog" in sys.modules:
        configure()
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport("structlog", configure))
