"""Fixtures for the multi-process tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from noosphere.node.launcher import LocalNode, spawn_node

from .support import EXAMPLES, Cluster


@pytest.fixture(scope="session", autouse=True)
def _lazy_models() -> Iterator[None]:
    """Nodes started by tests load the embedding model on their first task, not at start:
    most tests never run a task, and ten nodes importing torch at once would only add load."""
    previous = os.environ.get("NOOSPHERE_PRELOAD_MODELS")
    os.environ["NOOSPHERE_PRELOAD_MODELS"] = "false"
    yield
    if previous is None:
        os.environ.pop("NOOSPHERE_PRELOAD_MODELS", None)
    else:
        os.environ["NOOSPHERE_PRELOAD_MODELS"] = previous


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
