"""Fixtures for the multi-process tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from noosphere.node.launcher import LocalNode, spawn_node

from .support import EXAMPLES, Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop_all()


@pytest.fixture(scope="module")
def running_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    """One node shared by a module's read-only tests."""
    node = spawn_node(
        tmp_path_factory.mktemp("shared") / "node", agents=[EXAMPLES / "calculator.yaml"]
    )
    try:
        yield node
    finally:
        node.kill()
