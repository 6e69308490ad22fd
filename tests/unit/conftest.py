"""Fixtures shared by the unit tests: a fresh node store and metrics registry per test, one
loaded embedding model, and one fake OpenAI-compatible server (``llm_server``) reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_server import FakeOpenAI, serve_fake_openai

from noosphere.models.embedding import Embedder
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


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The embedding model, loaded once for the run (read-only in tests)."""
    model = Embedder()
    model.load()
    return model


@pytest.fixture(scope="session")
def openai_server() -> Iterator[FakeOpenAI]:
    with serve_fake_openai() as state:
        yield state


@pytest.fixture
def server(openai_server: FakeOpenAI) -> FakeOpenAI:
    """The fake OpenAI server with no recorded requests and an empty script."""
    openai_server.reset()
    return openai_server
