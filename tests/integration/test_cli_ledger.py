"""`noosphere chain` and `noosphere ledger` as a user runs them: start a chain, deploy, fund an
account, read balances, and get one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from noosphere.ledger.chain import LocalChain

pytestmark = pytest.mark.integration

ACCOUNT_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # anvil's second development account


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "noosphere.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_deploy_fund_and_read(tmp_path: Path) -> None:
    chain = LocalChain.start(tmp_path)
    home = ["--chain-home", str(tmp_path)]
    try:
        assert cli("ledger", "balance", *home).returncode == 1  # nothing deployed yet
        deployed = cli("ledger", "deploy", *home, "--json")
        assert deployed.returncode == 0, deployed.stderr
        again = cli("ledger", "deploy", *home, "--json")
        assert again.stdout == deployed.stdout  # the recorded deployment is reused
        funded = cli("ledger", "faucet", *home, ACCOUNT_1, "--amount", "500")
        assert funded.returncode == 0, funded.stderr
        shown = cli("ledger", "balance", *home, ACCOUNT_1)
        assert "500 NOOS" in shown.stdout
        bad = cli("ledger", "balance", *home, "nonsense")
        assert bad.returncode == 1 and "not an account address" in bad.stderr
        missing = cli("ledger", "escrow", *home, "task-1")
        assert missing.returncode == 1 and "no escrow for task" in missing.stderr
    finally:
        chain.stop()
    down = cli("ledger", "balance", *home)
    assert down.returncode == 1 and "no chain runs" in down.stderr
