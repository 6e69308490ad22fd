"""Fixtures shared by the unit tests: a fresh node store and metrics registry per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from noosphere.node.metrics import NodeMetrics
from noosphere.node.store import NodeStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[NodeStore]:
    opened = NodeStore(tmp_path / "node.db")
    yield opened
    opened.close()


@pytest.fixture
def metrics() -> NodeMetrics:
    return NodeMetrics()
