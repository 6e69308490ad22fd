"""The node's life cycle as a new user meets it, with real processes: one daemon per home (a
second one stops with the holder's pid), a busy P2P port is refused, a failed first start
leaves no config.toml behind, homes and databases are private (also those made by `cluster
up`, and wider ones are narrowed at start), and SIGTERM while a client streams keeps results
that finish within the grace, fails the rest as retryable, exits without waiting for a tool
thread and logs no frame locals."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from noosphere.node.a2a_client import A2AClient, text_message
from noosphere.node.auth import BearerAuth, PeerAuth
from noosphere.node.launcher import LOG_FILENAME, LocalNode, wait_ready
from noosphere.protocol import NodeKey
from noosphere.protocol.a2a import StreamResponse, Task, TaskState

from .support import EXAMPLES, Cluster, cluster_up, free_port, wait_until

pytestmark = pytest.mark.integration

AGENTS = Path(__file__).parent / "agents"


def node_cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``noosphere node start`` in the foreground (for starts that must fail)."""
    return subprocess.run(
        [sys.executable, "-m", "noosphere.cli", "node", "start", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one clear line, no traceback
    return lines[0]


# ---- one daemon per home -------------------------------------------------------------------


def test_a_second_daemon_on_the_same_home_stops_naming_the_first(cluster: Cluster) -> None:
    first = cluster.start("n")
    runtime_before = (first.home / "runtime.json").read_text()

    second = node_cli(first.home, "--p2p-port", "0", "--rpc-port", "0")
    assert second.returncode == 1
    line = error_line(second)
    assert "in use by another noosphere node" in line
    assert f"pid {first.process.pid}" in line
    # the first one did not notice: same runtime file, still serving
    assert first.alive
    assert (first.home / "runtime.json").read_text() == runtime_before
    with first.client() as client:
        assert client.status().peer_id == first.peer_id

    # the kernel drops the lock with its holder, even on kill -9: the home is usable again
    first.kill()
    again = cluster.start("n")
    assert again.peer_id == first.peer_id


# ---- ports and the first config --------------------------------------------------------------


def test_busy_p2p_port_is_refused_and_a_failed_start_writes_no_config(
    cluster: Cluster, tmp_path: Path
) -> None:
    port = free_port()
    first = cluster.start("first", p2p_port=port)
    assert first.multiaddr.split("/")[4] == str(port)
    home = tmp_path / "second"

    busy = node_cli(home, "--p2p-port", str(port), "--rpc-port", "0")
    assert busy.returncode == 1
    assert f"cannot listen for libp2p on 127.0.0.1:{port}" in error_line(busy)
    assert not (home / "config.toml").exists()
    assert not (home / "runtime.json").exists()

    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "name: Broken\ndescription: a tool that does not exist\n"
        "skills: [{name: s, description: d, tool: 'tools/missing.py:Nope'}]\n"
    )
    bad_agent = node_cli(home, "--p2p-port", "0", "--rpc-port", "0", "--agent", str(broken))
    assert bad_agent.returncode == 1
    assert "missing.py" in error_line(bad_agent)
    assert not (home / "config.toml").exists()

    # a start that works writes the config (0600) with the flags that worked...
    node = cluster.start("second", agents=[EXAMPLES / "calculator.yaml"])
    written = tomllib.loads((home / "config.toml").read_text())
    assert written["p2p_port"] == 0
    assert written["agents"] == [str((EXAMPLES / "calculator.yaml").resolve())]
    assert mode(home / "config.toml") == 0o600
    assert node.stop() == 0

    # ... so a restart with only --home comes back as it was
    process = subprocess.Popen(
        [sys.executable, "-m", "noosphere.cli", "node", "start", "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    restarted = wait_ready(LocalNode(home=home, process=process), timeout=60)
    cluster.nodes.append(restarted)
    assert restarted.peer_id == node.peer_id
    wait_until(lambda: f"{node.peer_id}/exact-calculator" in _own_cards(restarted))


def _own_cards(node: LocalNode) -> set[str]:
    with node.client() as client:
        return {c.card_id for c in client.cards()}


# ---- private homes ------------------------------------------------------------------------


def test_homes_and_databases_are_private_and_wider_ones_are_narrowed(cluster: Cluster) -> None:
    node = cluster.start("n", agents=[EXAMPLES / "calculator.yaml"])
    assert mode(node.home) == 0o700
    for name in ("node.db", "memory.db", "node.key", "rpc.token", "config.toml", LOG_FILENAME):
        assert mode(node.home / name) == 0o600, name
    assert node.stop() == 0

    os.chmod(node.home, 0o755)  # as an older release (or a careless hand) left it
    for name in ("node.db", "memory.db", "config.toml"):
        os.chmod(node.home / name, 0o644)
    node = cluster.start("n", agents=[EXAMPLES / "calculator.yaml"])
    assert mode(node.home) == 0o700
    for name in ("node.db", "memory.db", "config.toml"):
        assert mode(node.home / name) == 0o600, name
    log = (node.home / LOG_FILENAME).read_text()
    assert log.count("narrowed permissions in the node home") == 4


def test_cluster_up_homes_are_private(tmp_path: Path) -> None:
    with cluster_up(tmp_path, AGENTS / "pool.yaml") as run:
        wait_until(lambda: len(list(tmp_path.glob("**/runtime.json"))) == 3, timeout=120)
        homes = [p.parent for p in tmp_path.glob("**/runtime.json")]
        assert {h.name for h in homes} == {"bootstrap", "orchestrator", "worker-1"}
        for home in homes:
            assert mode(home) == 0o700, home
            for path in home.iterdir():
                if path.is_file():
                    assert not mode(path) & 0o077, path
    assert run.process.returncode == 0, run.output


# ---- SIGTERM while a client streams ---------------------------------------------------------


async def _stream_until_tool_runs(
    client: A2AClient, text: str, running: asyncio.Event
) -> list[StreamResponse]:
    events = []
    async for event in client.stream(text_message(text)):
        events.append(event)
        message = event.status_update.status.message if event.status_update else None
        if message is not None and "running tool wait" in (message.text or ""):
            running.set()
    return events


def _final(events: list[StreamResponse]) -> tuple[str, TaskState]:
    first = events[0].task
    last = events[-1].status_update
    assert first is not None and last is not None
    return first.id, last.status.state


def test_sigterm_while_streaming_keeps_finished_results_and_logs_no_locals(
    cluster: Cluster,
) -> None:
    node = cluster.start(
        "n",
        agents=[AGENTS / "patient.yaml"],
        # the console format is what a new user gets, and where rich printed frame locals
        extra_args=["--log-format", "console"],
        env={"NOOSPHERE_SHUTDOWN_GRACE_S": "15"},
    )
    token = node.token

    async def scenario() -> tuple[list[StreamResponse], list[StreamResponse]]:
        short_running, long_running = asyncio.Event(), asyncio.Event()
        async with A2AClient(node.rpc_url, auth=BearerAuth(token), timeout=120) as client:
            short = asyncio.create_task(
                _stream_until_tool_runs(client, "wait 2 seconds", short_running)
            )
            long = asyncio.create_task(
                _stream_until_tool_runs(client, "wait 60 seconds", long_running)
            )
            await asyncio.wait_for(asyncio.gather(short_running.wait(), long_running.wait()), 120)
            node.process.send_signal(signal.SIGTERM)
            return await asyncio.wait_for(asyncio.gather(short, long), 90)

    short_events, long_events = asyncio.run(scenario())
    short_id, short_state = _final(short_events)
    long_id, long_state = _final(long_events)
    # the short turn ended within the grace: its client got the result on the open stream
    assert short_state == TaskState.COMPLETED
    assert any(e.artifact_update is not None for e in short_events)
    # the long one was cut at the grace, failed as retryable, on the same stream
    assert long_state == TaskState.FAILED
    # it exits once the grace (15 s) is over, not when the 60 s tool thread ends; the deadline
    # leaves 15 s of slack for a loaded machine (an idle node exits in well under a second)
    node.process.wait(timeout=30)
    assert node.process.returncode == 0

    log = (node.home / LOG_FILENAME).read_text()
    assert "node stopping" in log
    assert "tasks still running after the grace" in log
    assert "exiting without waiting for threads still running a tool" in log
    for leak in ("locals", "│", "╭", "Traceback", token):
        assert leak not in log, f"{leak!r} in the log"

    node = cluster.start("n", agents=[AGENTS / "patient.yaml"])

    async def stored() -> tuple[Task, Task]:
        async with A2AClient(node.rpc_url, auth=BearerAuth(node.token)) as client:
            return await client.get_task(short_id), await client.get_task(long_id)

    short_task, long_task = asyncio.run(stored())
    assert short_task.status.state == TaskState.COMPLETED
    assert short_task.artifacts[0].parts[0].text == "waited 2 s"
    assert long_task.status.state == TaskState.FAILED
    assert long_task.metadata is not None and long_task.metadata["noosphere"]["retryable"]
    assert long_task.status.message is not None
    assert "shut down" in (long_task.status.message.text or "")


# ---- privacy between requesters, end to end -------------------------------------------------


def test_a_peer_never_sees_another_peers_task_through_memory(cluster: Cluster) -> None:
    node = cluster.start("n", agents=[EXAMPLES / "calculator.yaml"])
    peer_a, peer_b = NodeKey.generate(), NodeKey.generate()

    async def send(key: NodeKey, text: str, context_id: str) -> Task:
        async with A2AClient(node.rpc_url, auth=PeerAuth(key), timeout=120) as client:
            task = await client.send(text_message(text, context_id=context_id))
        assert isinstance(task, Task)
        return task

    async def scenario() -> tuple[Task, Task, Task]:
        a1 = await send(peer_a, "convert 5 miles to km", "ctx-a")
        b1 = await send(peer_b, "convert 5 miles to km", "ctx-a")  # even in A's context
        a2 = await send(peer_a, "convert 6 miles to km", "ctx-a")
        return a1, b1, a2

    a1, b1, a2 = asyncio.run(scenario())
    for task in (a1, b1, a2):
        assert task.status.state == TaskState.COMPLETED

    def recalled(task: Task) -> list[str]:
        assert task.artifacts[0].metadata is not None
        return [r["taskId"] for r in task.artifacts[0].metadata["noosphere"]["recalled"]]

    assert recalled(b1) == []
    assert a1.id not in b1.model_dump_json()
    assert recalled(a2)[0] == a1.id  # A's own conversation is still remembered
