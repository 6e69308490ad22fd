"""`noosphere cluster up`: a bootstrap and an orchestrator start, the orchestrator starts its
minimum worker pool, and SIGTERM stops every process (workers included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .support import wait_until

pytestmark = pytest.mark.integration

POOL = Path(__file__).parent / "agents" / "pool.yaml"


def running(root: Path) -> list[Path]:
    return sorted(root.glob("**/runtime.json"))


def test_cluster_up_starts_and_stops_everything(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "noosphere.cli",
            "cluster",
            "up",
            "--workdir",
            str(tmp_path),
            "--orchestrator",
            str(POOL),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        wait_until(lambda: len(running(tmp_path)) == 3, timeout=90)  # bootstrap, pool, 1 worker
        assert (tmp_path / "orchestrator" / "workers" / "worker-1" / "runtime.json").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=90)
    assert process.returncode == 0, output
    assert "cluster stopped" in output
    assert running(tmp_path) == []
