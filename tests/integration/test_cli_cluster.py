"""`noosphere cluster up`: a bootstrap and an orchestrator start, the orchestrator starts its
minimum worker pool, and SIGTERM stops every process (workers included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support import cluster_up, wait_until

pytestmark = pytest.mark.integration

POOL = Path(__file__).parent / "agents" / "pool.yaml"


def running(root: Path) -> list[Path]:
    return sorted(root.glob("**/runtime.json"))


def test_cluster_up_starts_and_stops_everything(tmp_path: Path) -> None:
    with cluster_up(tmp_path, POOL) as run:
        wait_until(lambda: len(running(tmp_path)) == 3, timeout=90)  # bootstrap, pool, 1 worker
        assert (tmp_path / "orchestrator" / "workers" / "worker-1" / "runtime.json").exists()
    assert run.process.returncode == 0, run.output
    assert "cluster stopped" in run.output
    assert running(tmp_path) == []
