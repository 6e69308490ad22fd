"""Operations: start node daemons as child processes on this machine and wait until they serve.
Used by ``noosphere demo``, ``noosphere cluster up``, the benchmarks and the multi-process tests,
so all of them run the same real ``noosphere node start`` command that users run. Homes are
created 0700 and ``node.log`` 0600, like everything the node writes itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from noosphere.errors import ServiceError

from .auth import TOKEN_FILENAME, read_token
from .client import NodeClient
from .runtime import RUNTIME_FILENAME

LOG_FILENAME = "node.log"


class LaunchError(ServiceError, RuntimeError):
    """A node process exited or did not become ready; the message carries its last log lines."""


@dataclass
class LocalNode:
    """A node daemon running as a child process."""

    home: Path
    process: subprocess.Popen[bytes]
    peer_id: str = ""
    multiaddrs: list[str] = field(default_factory=list)
    rpc_url: str = ""

    @property
    def multiaddr(self) -> str:
        return self.multiaddrs[0]

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def client(self, timeout: float = 10.0) -> NodeClient:
        return NodeClient(self.rpc_url, timeout=timeout)

    @property
    def token(self) -> str:
        """The operator token (HOME/rpc.token) for the A2A task methods."""
        return read_token(self.home / TOKEN_FILENAME)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash."""
        if self.alive:
            self.process.kill()
        self.process.wait(10)

    def stop(self, timeout: float = 25.0) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code (kills after ``timeout``,
        which leaves room for the node's default 10 s shutdown grace)."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.home / LOG_FILENAME).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def spawn_node(
    home: Path,
    *,
    agents: Sequence[Path] = (),
    bootstrap: Sequence[str] = (),
    p2p_port: int = 0,
    rpc_port: int = 0,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    wait: bool = True,
    timeout: float = 30.0,
) -> LocalNode:
    """Start ``noosphere node start`` for ``home`` in the background; logs go to HOME/node.log.
    A runtime file left in the home is not removed: it may be a running node's (this start then
    fails on the home lock), and readiness is judged by the pid it names."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "noosphere.cli",
        "node",
        "start",
        "--home",
        str(home),
        "--p2p-port",
        str(p2p_port),
        "--rpc-port",
        str(rpc_port),
        "--log-format",
        "json",
    ]
    for agent in agents:
        cmd += ["--agent", str(agent)]
    for addr in bootstrap:
        cmd += ["--bootstrap", addr]
    cmd += list(extra_args)
    log = os.fdopen(
        os.open(home / LOG_FILENAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab"
    )
    process = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # Ctrl-C in the parent's terminal is not sent to the node
    )
    log.close()
    node = LocalNode(home=home, process=process)
    if wait:
        wait_ready(node, timeout)
    return node


def wait_ready(node: LocalNode, timeout: float = 30.0) -> LocalNode:
    """Block until the node has written its runtime file, or raise LaunchError."""
    path = node.home / RUNTIME_FILENAME
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.alive:
            raise LaunchError(
                f"node in {node.home} exited with code {node.process.returncode}:\n"
                f"{node.log_tail()}"
            )
        try:
            runtime = json.loads(path.read_text())
        except (OSError, ValueError):
            runtime = None
        if runtime and runtime.get("pid") == node.process.pid:
            node.peer_id = runtime["peer_id"]
            node.multiaddrs = runtime["multiaddrs"]
            node.rpc_url = runtime["rpc_url"]
            return node
        time.sleep(0.05)
    node.kill()
    raise LaunchError(f"node in {node.home} was not ready after {timeout:.0f}s:\n{node.log_tail()}")
