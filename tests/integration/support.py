"""Helpers for multi-process tests: real node daemons on 127.0.0.1, stopped after each test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from noosphere.node.launcher import LocalNode, spawn_node

EXAMPLES = Path(__file__).parents[2] / "examples" / "agents"


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # the node may be restarting
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s (last value: {last!r})")


class Cluster:
    """Starts nodes in per-test homes and always stops them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[LocalNode] = []

    def start(self, name: str, **kwargs: Any) -> LocalNode:
        node = spawn_node(self.root / name, **kwargs)
        self.nodes.append(node)
        return node

    def stop_all(self) -> None:
        for node in self.nodes:
            node.kill()


def card_ids(node: LocalNode) -> set[str]:
    with node.client() as client:
        return {c.card_id for c in client.cards(limit=10_000)}


def metric(node: LocalNode, name: str, **labels: str) -> float:
    """Read one sample from the node's /metrics with prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    with node.client() as client:
        text = client.metrics_text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def free_port() -> int:
    """A TCP port that was free a moment ago (for a node that must come back on the same one)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_many(
    cluster: Cluster, specs: list[tuple[str, dict[str, Any]]], timeout: float = 90.0
) -> list[LocalNode]:
    """Start several nodes at once (``(name, spawn_node kwargs)`` each) and wait for all of them:
    on a small machine, waiting for each in turn costs one interpreter start-up per node."""
    from noosphere.node.launcher import wait_ready

    nodes = [cluster.start(name, wait=False, **kwargs) for name, kwargs in specs]
    for node in nodes:
        wait_ready(node, timeout)
    return nodes


def own_card_ids(node: LocalNode) -> set[str]:
    """The cards of the node's own agents (in its index from the start)."""
    return {c for c in card_ids(node) if c.startswith(node.peer_id + "/")}


@dataclass
class ClusterUp:
    """A running ``noosphere cluster up``; ``output`` is filled once it has stopped."""

    process: subprocess.Popen[str]
    output: str = ""


@contextmanager
def cluster_up(workdir: Path, orchestrator: Path) -> Iterator[ClusterUp]:
    """``noosphere cluster up`` in a child process, stopped with SIGTERM on the way out (its exit
    code and whole output are then in the ``ClusterUp``)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "noosphere.cli",
            "cluster",
            "up",
            "--workdir",
            str(workdir),
            "--orchestrator",
            str(orchestrator),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    run = ClusterUp(process)
    try:
        yield run
    finally:
        process.send_signal(signal.SIGTERM)
        run.output, _ = process.communicate(timeout=90)
