"""Publish (the node's address book entry for local tools): ``HOME/runtime.json``, the facts a
started node writes last (peer id, multiaddrs, RPC URL, pid) so that tools and tests know it is
up and where; the node deletes it when it stops."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

RUNTIME_FILENAME = "runtime.json"


@dataclass
class NodeRuntime:
    """Facts known once the node listens; written to ``HOME/runtime.json`` for tools and tests."""

    peer_id: str
    name: str
    multiaddrs: list[str]
    rpc_url: str
    pid: int = field(default_factory=os.getpid)


def write_runtime(home: Path, runtime: NodeRuntime) -> None:
    """Write ``HOME/runtime.json`` (0600) atomically."""
    path = home / RUNTIME_FILENAME
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(asdict(runtime), indent=2))
    tmp.replace(path)
