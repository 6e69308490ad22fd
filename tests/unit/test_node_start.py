"""A node start that fails part-way says why (NodeStartError), closes what it opened and frees
the home for the next start: no AttributeError from a part that was never built."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from noosphere.node.config import NodeConfig
from noosphere.node.daemon import Node, NodeStartError
from noosphere.node.home import HomeLock
from noosphere.node.runtime import RUNTIME_FILENAME


def test_every_attribute_exists_before_the_start(tmp_path: Path) -> None:
    node = Node(tmp_path / "home", NodeConfig(rpc_port=0, p2p_port=0))
    assert node.runtime is None and node.running is None and node.key_created is False


def test_a_failure_while_building_the_parts_is_reported_as_itself(tmp_path: Path) -> None:
    home = tmp_path / "home"
    missing = tmp_path / "no-such-authority.json"
    config = NodeConfig(rpc_port=0, p2p_port=0, abe_authorities=[missing])
    with pytest.raises(NodeStartError, match="abe_authorities"):
        asyncio.run(Node(home, config).run())
    assert not (home / RUNTIME_FILENAME).exists()
    HomeLock.acquire(home).release()  # the failed start let go of the home
