"""Settle (the chain): a local EVM for development and tests, anvil from the pinned npm package
``@foundry-rs/anvil-linux-amd64``. The chain's state lives in ``HOME/anvil-state.json``: loaded
at start, written every ``state_interval_s`` and on a clean stop, so balances and open escrows
survive restarts. Any other EVM JSON-RPC URL can be used instead (``--chain-rpc``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from noosphere.errors import ServiceError

if TYPE_CHECKING:
    from noosphere.ledger.client import LedgerClient

REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL_RELATIVE = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
STATE_FILENAME = "anvil-state.json"
RUNTIME_FILENAME = "chain.json"
LOG_FILENAME = "anvil.log"
DEV_CHAIN_ID = 31337
#: anvil's well-known development mnemonic: its accounts are public test keys, never real funds.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
#: A node on the dev chain tops its account up to 10 ETH for gas when it holds less than 1 ETH.
DEV_GAS_WEI = 10 * 10**18
DEV_GAS_MIN_WEI = 10**18


class ChainError(ServiceError, RuntimeError):
    """The chain cannot be started or reached; the message says why and what to do."""


@dataclass(frozen=True)
class ChainRuntime:
    rpc_url: str
    chain_id: int
    pid: int
    state_file: str


def anvil_binary() -> Path:
    """The pinned anvil (``make install`` puts it in node_modules), or one on PATH."""
    candidates = [REPO_ROOT / ANVIL_RELATIVE, Path.cwd() / ANVIL_RELATIVE]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise ChainError(
        "anvil not found: run `make install` (it installs the pinned npm package "
        "@foundry-rs/anvil-linux-amd64) or put anvil on PATH"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def rpc_ready(url: str, timeout: float = 1.0) -> int | None:
    """The chain id if an EVM JSON-RPC answers at ``url``, else None."""
    try:
        reply = httpx.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            timeout=timeout,
        )
        return int(reply.json()["result"], 16)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


@dataclass
class LocalChain:
    """An anvil process for a chain home."""

    home: Path
    process: subprocess.Popen[bytes]
    runtime: ChainRuntime

    @classmethod
    def start(
        cls,
        home: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_interval_s: int = 1,
        block_time_s: float | None = None,
        timeout: float = 20.0,
    ) -> LocalChain:
        home.mkdir(parents=True, exist_ok=True)
        existing = read_runtime(home)
        if existing is not None and _alive(existing.pid) and rpc_ready(existing.rpc_url):
            raise ChainError(f"a chain already runs for {home} at {existing.rpc_url}")
        port = port or free_port(host)
        state = home / STATE_FILENAME
        cmd = [
            str(anvil_binary()),
            "--host",
            host,
            "--port",
            str(port),
            "--chain-id",
            str(DEV_CHAIN_ID),
            "--mnemonic",
            DEV_MNEMONIC,
            "--accounts",
            "10",
            "--balance",
            "10000",
            "--state",
            str(state),
            "--state-interval",
            str(state_interval_s),
        ]
        if block_time_s:
            cmd += ["--block-time", str(block_time_s)]
        log = (home / LOG_FILENAME).open("ab")
        process = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
        deadline = time.monotonic() + timeout
        while (chain_id := rpc_ready(url, 0.5)) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                tail = (home / LOG_FILENAME).read_text(errors="replace").splitlines()[-5:]
                raise ChainError(f"anvil did not start: {' | '.join(tail) or 'no output'}")
            time.sleep(0.05)
        runtime = ChainRuntime(url, chain_id, process.pid, str(state))
        (home / RUNTIME_FILENAME).write_text(json.dumps(asdict(runtime), indent=2))
        return cls(home, process, runtime)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: anvil writes its state file before exiting."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        (self.home / RUNTIME_FILENAME).unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL, as in a crash (state is as of the last interval dump)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def read_runtime(home: Path) -> ChainRuntime | None:
    try:
        return ChainRuntime(**json.loads((home / RUNTIME_FILENAME).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def top_up_dev_gas(client: LedgerClient) -> bool:
    """On the local development chain (chain id 31337), give the client's account
    ``DEV_GAS_WEI`` of ether when it holds less than ``DEV_GAS_MIN_WEI``; True if it did.
    Any other chain is left alone (its accounts are funded from a wallet)."""
    if client.chain_id != DEV_CHAIN_ID:
        return False
    if client.w3.eth.get_balance(client.account.address) >= DEV_GAS_MIN_WEI:
        return False
    set_gas_balance(client.rpc_url, client.address, DEV_GAS_WEI)
    return True


def set_gas_balance(rpc_url: str, address: str, wei: int) -> None:
    """Give ``address`` ether for gas on a local development chain (anvil's ``anvil_setBalance``;
    real chains have no such call: fund the account from a wallet instead)."""
    try:
        reply = httpx.post(
            rpc_url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "anvil_setBalance",
                "params": [address, hex(wei)],
            },
            timeout=10,
        )
        body = reply.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ChainError(f"cannot reach the chain at {rpc_url}: {exc}") from exc
    if "error" in body:
        raise ChainError(f"{rpc_url} refused anvil_setBalance: {body['error'].get('message')}")
