"""The local chain (anvil from the pinned npm package): starts, answers JSON-RPC, and keeps its
state across a clean stop and a crash (state dumped every second)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from noosphere.ledger.chain import DEV_CHAIN_ID, ChainError, LocalChain, anvil_binary

pytestmark = pytest.mark.integration


def rpc(url: str, method: str, *params: object) -> object:
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    return reply.json()["result"]


def transfer(url: str, wei: int) -> str:
    accounts = rpc(url, "eth_accounts")
    assert isinstance(accounts, list)
    rpc(url, "eth_sendTransaction", {"from": accounts[0], "to": accounts[1], "value": hex(wei)})
    return accounts[1]


def balance(url: str, account: str) -> int:
    value = rpc(url, "eth_getBalance", account, "latest")
    assert isinstance(value, str)
    return int(value, 16)


def test_state_survives_a_clean_stop_and_a_crash(tmp_path: Path) -> None:
    anvil_binary()  # installed by make (npm ci)
    chain = LocalChain.start(tmp_path)
    try:
        assert chain.runtime.chain_id == DEV_CHAIN_ID
        receiver = transfer(chain.runtime.rpc_url, 10**18)
        before = balance(chain.runtime.rpc_url, receiver)
    finally:
        chain.stop()
    chain = LocalChain.start(tmp_path)
    try:
        assert balance(chain.runtime.rpc_url, receiver) == before
        transfer(chain.runtime.rpc_url, 10**18)
        time.sleep(2.5)  # past the 1 s state interval
        chain.kill()
    finally:
        chain.kill()
    chain = LocalChain.start(tmp_path)
    try:
        assert balance(chain.runtime.rpc_url, receiver) == before + 10**18
        with pytest.raises(ChainError, match="already runs"):
            LocalChain.start(tmp_path)
    finally:
        chain.stop()
