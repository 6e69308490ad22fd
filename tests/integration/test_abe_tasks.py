"""Execute with sealed task data between real node processes: a requester seals a task under an
attribute policy; the agent's node opens it only if the keys it imported satisfy the policy, and
otherwise rejects the task with the reason, never storing or logging the plaintext."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from noosphere.abe.authority import Authority

from .support import EXAMPLES, Cluster, card_ids, wait_until

pytestmark = pytest.mark.integration

SECRET = "987654321"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "noosphere.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_sealed_task_opens_only_for_satisfying_keys(cluster: Cluster, tmp_path: Path) -> None:
    authority = Authority.init(tmp_path / "authority")
    b = cluster.start("b", agents=[EXAMPLES / "calculator.yaml"])
    bundle = authority.issue(b.peer_id, ["org:acme", "role:analyst"])
    bundle_path = tmp_path / "b.abekey.json"
    bundle_path.write_text(bundle.model_dump_json(by_alias=True))
    b.stop()
    imported = cli("abe", "import", str(bundle_path), "--home", str(b.home))
    assert imported.returncode == 0, imported.stderr
    b = cluster.start("b", agents=[EXAMPLES / "calculator.yaml"])
    a = cluster.start("a", bootstrap=[b.multiaddr])
    card = f"{b.peer_id}/exact-calculator"
    wait_until(lambda: card in card_ids(a))

    shown = cli("cards", "show", card, "--rpc", a.rpc_url)
    attestation = json.loads(shown.stdout)["capabilities"]["extensions"][0]["params"]["attestation"]
    assert attestation["attributes"] == ["org:acme", "role:analyst"]
    assert attestation["subject"] == b.peer_id

    common = [
        "--rpc",
        a.rpc_url,
        "--home",
        str(a.home),
        "--to",
        card,
        "--authority",
        str(authority.home),
    ]
    ok = cli("task", "send", *common, "--policy", "org:acme and role:analyst", "what is 6*7?")
    assert ok.returncode == 0, ok.stderr
    assert "6*7 = 42" in ok.stdout

    refused = cli(
        "task",
        "send",
        *common,
        "--policy",
        "clearance:secret or org:globex",
        f"what is {SECRET}*3?",
    )
    assert refused.returncode == 2
    assert "rejected" in refused.stdout
    assert "do not satisfy the policy" in refused.stdout

    b.stop()  # flush the WAL into the files we inspect
    for name in ("node.db", "node.db-wal", "memory.db", "memory.db-wal", "node.log"):
        path = b.home / name
        if path.exists():
            assert SECRET.encode() not in path.read_bytes(), f"plaintext found in {name}"
