"""`noosphere chain` and `noosphere ledger` as a user runs them: start a chain, deploy, fund an
account, read balances, list escrows, pay through a channel, and get one-line errors for bad
input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from noosphere.ledger import Deployment, LedgerClient
from noosphere.ledger.chain import DEV_CHAIN_ID, DEV_MNEMONIC, LocalChain

pytestmark = pytest.mark.integration

ACCOUNT_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # anvil's second development account
ACCOUNT_2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
ACCOUNT_3 = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "noosphere.cli", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=env, input=stdin
    )


def one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert needle in result.stderr, result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr


def dev_client(url: str, index: int, deployment: Deployment) -> LedgerClient:
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return LedgerClient(url, account, deployment)


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
        fresh = Account.create().address  # a new node's account: no ether for gas yet
        funded = cli("ledger", "faucet", *home, fresh, "--amount", "7")
        assert funded.returncode == 0 and "10 ETH for gas" in funded.stdout, funded.stderr
        assert Web3(Web3.HTTPProvider(chain.runtime.rpc_url)).eth.get_balance(fresh) == 10**19
        bad = cli("ledger", "balance", *home, "nonsense")
        assert bad.returncode == 1 and "not an account address" in bad.stderr
        missing = cli("ledger", "escrow", *home, "task-1")
        assert missing.returncode == 1 and "no escrow for task" in missing.stderr
    finally:
        chain.stop()
    down = cli("ledger", "balance", *home)
    assert down.returncode == 1 and "no chain runs" in down.stderr


def test_escrows_lists_both_sides_with_current_status(tmp_path: Path) -> None:
    chain = LocalChain.start(tmp_path)
    home = ["--chain-home", str(tmp_path)]
    try:
        assert cli("ledger", "deploy", *home).returncode == 0
        deployment = Deployment.load(tmp_path, DEV_CHAIN_ID)
        assert deployment is not None
        owner = dev_client(chain.runtime.rpc_url, 0, deployment)
        one, two = (
            owner.for_account(dev_client(chain.runtime.rpc_url, i, deployment).account)
            for i in (1, 2)
        )
        for client in (one, two):
            owner.tokens.mint(client.address, 10**21)
        deadline = owner.timestamp() + 3600
        one.escrows.open("cli-a", ACCOUNT_2, 100, deadline)
        one.escrows.open("cli-b", ACCOUNT_3, 200, deadline, arbiter=ACCOUNT_2)
        two.escrows.open("cli-c", ACCOUNT_1, 300, deadline)
        one.escrows.release("cli-a")

        listed = cli("ledger", "escrows", *home, ACCOUNT_1, "--json")
        assert listed.returncode == 0, listed.stderr
        entries = json.loads(listed.stdout)
        task_ids = [Web3.keccak(text=t).to_0x_hex() for t in ("cli-a", "cli-b", "cli-c")]
        assert [e["task_id"] for e in entries] == task_ids  # oldest first
        assert [e["role"] for e in entries] == ["requester", "requester", "agent"]
        assert [e["amount"] for e in entries] == [100, 200, 300]
        assert [e["status"] for e in entries] == [3, 1, 1]  # released, open, open
        assert entries[1]["arbiter"] == ACCOUNT_2
        as_signer = cli("ledger", "escrows", *home, "--key-index", "1", "--json")
        assert json.loads(as_signer.stdout) == entries  # default: the signing account
        agent_side = cli("ledger", "escrows", *home, ACCOUNT_1, "--role", "agent", "--json")
        assert [e["task_id"] for e in json.loads(agent_side.stdout)] == task_ids[2:]
        table = cli("ledger", "escrows", *home, ACCOUNT_1, "--role", "requester")
        assert table.returncode == 0 and "released" in table.stdout and "open" in table.stdout
        assert ACCOUNT_2 in table.stdout and ACCOUNT_3 in table.stdout  # the counterparties
        nothing = cli("ledger", "escrows", *home, owner.address)
        assert nothing.returncode == 0 and "no escrows" in nothing.stdout

        one_line_error(cli("ledger", "escrows", *home, "--role", "arbiter"), "--role must be")
        one_line_error(cli("ledger", "escrows", *home, "0x1234"), "not an account address")
    finally:
        chain.stop()


def test_channel_open_voucher_close_show(tmp_path: Path) -> None:
    chain = LocalChain.start(tmp_path)
    home = ["--chain-home", str(tmp_path)]
    sender, recipient = ["--key-index", "1"], ["--key-index", "2"]
    try:
        assert cli("ledger", "deploy", *home).returncode == 0
        assert cli("ledger", "faucet", *home, ACCOUNT_1, "--amount", "5000").returncode == 0
        opened = cli(
            "ledger",
            "channel",
            "open",
            ACCOUNT_2,
            "--deposit",
            "1000",
            "--expiry-s",
            "600",
            *home,
            *sender,
            "--json",
        )
        assert opened.returncode == 0, opened.stderr
        channel = json.loads(opened.stdout)
        cid = channel["channel_id"]
        assert (channel["sender"], channel["recipient"]) == (ACCOUNT_1, ACCOUNT_2)
        assert (channel["deposit"], channel["paid"], channel["status"]) == (1000, 0, 1)
        deployment = Deployment.load(tmp_path, DEV_CHAIN_ID)
        assert deployment is not None
        reader = dev_client(chain.runtime.rpc_url, 3, deployment)
        assert reader.tokens.balance_of(ACCOUNT_1) == 4000

        signed = cli("ledger", "channel", "voucher", cid, "--amount", "300", *home, *sender)
        assert signed.returncode == 0, signed.stderr
        voucher = json.loads(signed.stdout)
        assert voucher["channel_id"] == cid and voucher["cumulative_amount"] == 300
        voucher_file = tmp_path / "voucher.json"
        voucher_file.write_text(signed.stdout)

        # bad input, each a one-line error
        voucher_cmd = ["ledger", "channel", "voucher"]
        one_line_error(
            cli(*voucher_cmd, cid, "--amount", "300", *home, *recipient),
            "only the channel's sender",
        )
        one_line_error(
            cli(*voucher_cmd, cid, "--amount", "1001", *home, *sender),
            "exceeds the channel's deposit",
        )
        one_line_error(
            cli(*voucher_cmd, "0x1234", "--amount", "1", *home, *sender), "is not a channel id"
        )
        unknown = "0x" + "ab" * 32
        one_line_error(cli("ledger", "channel", "show", unknown, *home), "no channel")
        one_line_error(
            cli("ledger", "channel", "open", ACCOUNT_2, "--deposit", "10000", *home, *sender),
            "ERC20InsufficientBalance",
        )
        close = ["ledger", "channel", "close"]
        inflated = json.dumps({**voucher, "cumulative_amount": 900})
        one_line_error(
            cli(*close, "-", *home, *recipient, stdin=inflated), "bad voucher signature: signed by"
        )
        garbage = json.dumps({**voucher, "signature": "0x" + "ff" * 65})
        one_line_error(cli(*close, "-", *home, *recipient, stdin=garbage), "bad voucher signature")
        one_line_error(cli(*close, "-", *home, *recipient, stdin='{"x": 1}'), "is not a voucher")
        one_line_error(
            cli(*close, str(tmp_path / "missing.json"), *home, *recipient),
            "cannot read the voucher",
        )
        # a valid voucher, but only the recipient may close: the revert is decoded
        one_line_error(
            cli(*close, str(voucher_file), *home, *sender),
            "PaymentChannel.close reverted: Unauthorized(caller=",
        )

        closed = cli(*close, "-", *home, *recipient, "--json", stdin=voucher_file.read_text())
        assert closed.returncode == 0, closed.stderr
        settled = json.loads(closed.stdout)
        assert (settled["to_recipient"], settled["to_sender"]) == (300, 700)
        shown = cli("ledger", "channel", "show", cid, *home, "--json")
        assert (json.loads(shown.stdout)["status"], json.loads(shown.stdout)["paid"]) == (2, 300)
        text = cli("ledger", "channel", "show", cid, *home)
        assert "closed" in text.stdout and ACCOUNT_2 in text.stdout
        assert (reader.tokens.balance_of(ACCOUNT_2), reader.tokens.balance_of(ACCOUNT_1)) == (
            300,
            4700,
        )
        assert reader.tokens.balance_of(deployment.channel) == 0
        one_line_error(cli(*close, str(voucher_file), *home, *recipient), "already closed")
        one_line_error(cli(*voucher_cmd, cid, "--amount", "400", *home, *sender), "is closed")
    finally:
        chain.stop()
