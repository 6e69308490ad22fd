"""The command line starts fast (all phases): ``import noosphere.cli`` and the ``node status`` path
load no heavy stack (torch, web3, faiss, httpx, the wire models), structlog is still configured
without frame locals once a command loads it, and ``node status`` works over the light path.
Structural checks in fresh interpreters, never timings (bench/rpc.py measures those)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from threaded_server import serve_app
from typer.testing import CliRunner

from noosphere.cli import app

HEAVY = ("torch", "web3", "faiss", "sentence_transformers", "transformers", "numpy", "eth_account")
# What ``node status`` does not need either: the full HTTP client, trio, the wire models and the
# log pipeline (pydantic itself loads: typer coerces options through pydantic TypeAdapters).
NOT_FOR_STATUS = (*HEAVY, "httpx", "structlog", "trio", "noosphere.protocol", "cryptography")


def loaded_after(script: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``script``."""
    probe = textwrap.dedent(script) + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))\n"
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(run.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_loads_no_heavy_stack() -> None:
    loaded = loaded_after("import noosphere.cli")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_help_loads_no_heavy_stack() -> None:
    loaded = loaded_after(
        """
        from noosphere.cli import app
        try:
            app(["--help"], standalone_mode=False)
        except SystemExit:
            pass
        """
    )
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_node_status_loads_only_what_it_needs() -> None:
    loaded = loaded_after(
        """
        from noosphere.cli import app
        try:
            app(["node", "status", "--rpc", "http://127.0.0.1:9"])  # nothing listens there
        except SystemExit:
            pass
        """
    )
    assert not loaded & set(NOT_FOR_STATUS), sorted(loaded & set(NOT_FOR_STATUS))


def test_a_command_that_logs_still_gets_tracebacks_without_locals() -> None:
    script = textwrap.dedent(
        """
        import noosphere.cli  # the CLI's process: structlog not loaded yet
        import structlog
        assert structlog.is_configured()
        log = structlog.get_logger("test")

        def handle(request_body):
            bearer = "token-" + "SECRETVALUE"
            raise RuntimeError("boom")

        try:
            handle({"text": "sealed " + "PLAINTEXT"})
        except RuntimeError:
            log.exception("request failed")
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"},
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "request failed" in output and "RuntimeError: boom" in output
    for leak in ("SECRETVALUE", "PLAINTEXT", "locals", "request_body =", "│"):
        assert leak not in output, f"{leak!r} in output"


# ---- node status over the light path ----------------------------------------------------------

STATUS = {
    "peerId": "12D3KooWStatusPeer",
    "name": "alpha",
    "version": "0.1.0",
    "multiaddrs": ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWStatusPeer"],
    "rpcUrl": "http://127.0.0.1:7070",
    "uptimeS": 12.4,
    "peersConnected": 3,
    "cardsKnown": 7,
    "agents": [{"cardId": "12D3KooWStatusPeer/echo", "agentId": "echo", "name": "Echo"}],
    "modelsLoaded": True,
    "tasksRunning": 0,
    "tasksQueued": 0,
}


def rpc_app(answer: Any, status: int = 200) -> Starlette:
    async def endpoint(request: Request) -> Response:
        body = await request.json()
        if answer is None:
            return PlainTextResponse("not json-rpc", status_code=502)
        return JSONResponse({"jsonrpc": "2.0", "id": body["id"], **answer}, status_code=status)

    return Starlette(routes=[Route("/", endpoint, methods=["POST"])])


@pytest.fixture
def status_node() -> Iterator[str]:
    with serve_app(rpc_app({"result": STATUS}), "fake node") as url:
        yield url


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_node_status_prints_the_table(status_node: str) -> None:
    code, output = run_cli("node", "status", "--rpc", status_node)
    assert code == 0, output
    for text in ("alpha", "12D3KooWStatusPeer", "12 s", "Echo", "no chain_home configured"):
        assert text in output


def test_node_status_json_is_the_wire_status(status_node: str) -> None:
    code, output = run_cli("node", "status", "--rpc", status_node + "/", "--json")
    assert code == 0, output
    assert json.loads(output) == STATUS


@pytest.mark.parametrize(
    ("answer", "http_status", "expected"),
    [
        ({"error": {"code": -32001, "message": "Unauthorized: no token"}}, 401, "-32001"),
        (None, 502, "without JSON-RPC"),
        ({"result": {"name": "alpha"}}, 200, "without a node status"),
        ({"result": ["not", "a", "status"]}, 200, "without a node status"),
    ],
)
def test_node_status_failures_are_one_line(answer: Any, http_status: int, expected: str) -> None:
    with serve_app(rpc_app(answer, http_status), "fake node") as url:
        code, output = run_cli("node", "status", "--rpc", url)
    assert code == 1
    assert expected in output
    assert len(output.strip().splitlines()) <= 2  # rich may wrap one long line


def test_node_status_of_nobody_says_so() -> None:
    code, output = run_cli("node", "status", "--rpc", "http://127.0.0.1:9")
    assert code == 1
    assert "no noosphere node answered at http://127.0.0.1:9" in output
