"""The committed contract artifacts are exactly what the pinned solc-js builds from the sources
(`make contracts` rebuilds them); a stale artifact fails here."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "noosphere" / "ledger" / "artifacts"


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_artifacts_match_the_sources() -> None:
    result = subprocess.run(
        ["node", "scripts/compile_contracts.mjs", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["NoosToken", "TaskEscrow", "AgentRegistry", "PaymentChannel"])
def test_every_contract_has_abi_and_bytecode(name: str) -> None:
    artifact = json.loads((ARTIFACTS / f"{name}.json").read_text())
    assert artifact["contractName"] == name
    assert artifact["abi"] and artifact["bytecode"].startswith("0x")
