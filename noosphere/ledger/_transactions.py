"""Settle (the wire to the chain): one signing account's transactions and calls.

``Transactor`` signs every transaction locally with one ``LocalAccount`` (no node-held keys), hands
out nonces itself (one lock per account, so concurrent threads or ``asyncio.to_thread`` calls never
collide; resynced from the chain on "nonce too low"), waits for each receipt and turns reverts into
``LedgerError`` carrying the contract's custom error decoded from the ABIs of all the noosphere
contracts. The API is synchronous (web3's HTTP provider is); asyncio code calls it through
``asyncio.to_thread``. The per-contract clients (token, escrow, registry, channels) build on it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import abi_to_signature, function_signature_to_4byte_selector
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.types import LogReceipt, TxReceipt

from noosphere.errors import LedgerError

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
CONTRACT_NAMES = ("NoosToken", "TaskEscrow", "AgentRegistry", "PaymentChannel")
ZERO_ADDRESS = "0x" + "00" * 20

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)
_RETRYABLE_NONCE = ("nonce too low", "already known", "replacement transaction underpriced")
_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


# ------------------------------------------------------------------ artifacts and error decoding


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """The compiled artifact ``{contractName, abi, bytecode, deployedBytecode, sourceHash}``."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.is_file():
        raise LedgerError(f"no artifact {name!r} in {ARTIFACTS_DIR}")
    artifact: dict[str, Any] = json.loads(path.read_text())
    return artifact


def _abi_type(item: dict[str, Any]) -> str:
    kind: str = item["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


@cache
def error_registry() -> dict[bytes, tuple[str, list[str], list[str]]]:
    """4-byte selector -> (error name, argument names, argument types), over all artifacts.

    All contracts are merged because reverts bubble up (a token error surfaces through the escrow).
    """
    registry: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for name in CONTRACT_NAMES:
        for item in load_artifact(name)["abi"]:
            if item.get("type") != "error":
                continue
            selector = function_signature_to_4byte_selector(abi_to_signature(item))
            names = [i.get("name") or f"arg{n}" for n, i in enumerate(item["inputs"])]
            types = [_abi_type(i) for i in item["inputs"]]
            registry[selector] = (item["name"], names, types)
    return registry


def _fmt(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


def decode_revert(data: bytes) -> tuple[str | None, dict[str, Any], str]:
    """(error name, args, one-line description) of revert data; name None if unknown or empty."""
    if len(data) < 4:
        return None, {}, "reverted without data"
    selector, body = data[:4], data[4:]
    try:
        if selector == _ERROR_STRING:
            (reason,) = abi_decode(["string"], body)
            return "Error", {"reason": reason}, f"Error({reason!r})"
        if selector == _PANIC:
            (code,) = abi_decode(["uint256"], body)
            return "Panic", {"code": code}, f"Panic(0x{code:02x})"
        known = error_registry().get(selector)
        if known is None:
            return None, {}, f"unknown error 0x{data.hex()}"
        name, names, types = known
        values = abi_decode(types, body)
    except Exception:  # malformed revert data: report it raw rather than hide the failure
        return None, {}, f"undecodable revert data 0x{data.hex()}"
    args = dict(zip(names, values, strict=True))
    rendered = ", ".join(f"{k}={_fmt(v)}" for k, v in args.items())
    return name, args, f"{name}({rendered})"


def _revert_data(exc: BaseException) -> bytes | None:
    """Revert bytes carried by a web3 exception (custom error, logic error or raw RPC error)."""
    data: Any = getattr(exc, "data", None)
    if data is None and isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
        error = exc.rpc_response.get("error")
        if isinstance(error, dict):
            data = error.get("data")
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, bytes):
        return data
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def _nonce_clash(exc: BaseException) -> bool:
    """The endpoint refused a transaction because its nonce is used or pending already."""
    return any(s in str(exc).lower() for s in _RETRYABLE_NONCE)


# ------------------------------------------------------------------------- values on the wire


def to_bytes32(value: str | bytes) -> bytes:
    """A task or channel id as bytes32: 32 raw bytes, a 0x-prefixed 32-byte hex string, or (any
    other string, e.g. an A2A task id) its keccak-256 hash."""
    if isinstance(value, bytes):
        if len(value) != 32:
            raise ValueError(f"expected 32 bytes, got {len(value)}")
        return value
    if value.startswith("0x") and len(value) == 66:
        return bytes.fromhex(value[2:])
    return bytes(Web3.keccak(text=value))


def logs_in_ranges(
    w3: Web3,
    address: str,
    topics: Sequence[HexBytes | None],
    start: int,
    end: int | None = None,
    *,
    chunk_blocks: int = 10_000,
) -> Iterator[list[LogReceipt]]:
    """A contract's logs matching ``topics`` from block ``start`` to ``end`` (default: the
    latest), one ``chunk_blocks`` range at a time (public endpoints cap ``eth_getLogs`` ranges; a
    generator, so a caller that found what it wants stops the search)."""
    latest = w3.eth.block_number if end is None else end
    while start <= latest:
        stop = min(start + chunk_blocks - 1, latest)
        query = {"address": address, "fromBlock": start, "toBlock": stop}
        # web3's FilterParams cannot type a dict built from parts (checked by the node)
        yield w3.eth.get_logs({**query, "topics": list(topics)})  # type: ignore[typeddict-item]
        start = stop + 1


def hex0x(value: bytes) -> str:
    """``0x``-prefixed lower-case hex."""
    return "0x" + bytes(value).hex()


def checksum(address: str) -> str:
    """``address`` in EIP-55 checksum form (what web3 wants for address arguments)."""
    return str(Web3.to_checksum_address(address))


def typed_data(
    domain: dict[str, Any], primary: str, fields: list[dict[str, str]], message: dict[str, Any]
) -> dict[str, Any]:
    """An EIP-712 ``full_message`` for ``encode_typed_data``."""
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, primary: fields},
        "primaryType": primary,
        "domain": domain,
        "message": message,
    }


# ------------------------------------------------------------------------------- nonce manager


class NonceManager:
    """Hands out consecutive nonces for one account; safe across threads.

    Callers hold ``lock`` while they take a nonce, sign and send, then ``advance``; after a failed
    send ``resync`` re-reads the pending nonce from the chain.
    """

    def __init__(self, w3: Web3, address: str) -> None:
        self._w3 = w3
        self.address = address
        self.lock = threading.Lock()
        self._next: int | None = None

    def peek(self) -> int:
        if self._next is None:
            self.resync()
        assert self._next is not None
        return self._next

    def advance(self) -> None:
        self._next = self.peek() + 1

    def resync(self) -> None:
        # web3 wants a ChecksumAddress type for what is a checksummed str (from the account)
        self._next = self._w3.eth.get_transaction_count(self.address, "pending")  # type: ignore[arg-type]


_NONCE_MANAGERS: dict[tuple[str, str], NonceManager] = {}
_NONCE_MANAGERS_LOCK = threading.Lock()


def _nonce_manager(rpc_url: str, w3: Web3, address: str) -> NonceManager:
    """One manager per (endpoint, account), shared by every client that signs for that account."""
    with _NONCE_MANAGERS_LOCK:
        key = (rpc_url, address.lower())
        if key not in _NONCE_MANAGERS:
            _NONCE_MANAGERS[key] = NonceManager(w3, address)
        return _NONCE_MANAGERS[key]


# --------------------------------------------------------------------------------- transactor


class Transactor:
    """Transactions and calls signed by one account on one endpoint."""

    def __init__(
        self, rpc_url: str, account: LocalAccount, *, timeout_s: float = 60.0, poll_s: float = 0.05
    ) -> None:
        self.rpc_url = rpc_url
        self.account = account
        self.address: str = account.address
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
        self.chain_id: int = self.w3.eth.chain_id
        self.nonces = _nonce_manager(rpc_url, self.w3, self.address)
        #: contract name -> attached contract, to name the function in error messages
        self.contracts: dict[str, Contract] = {}

    def transact(
        self, fn: Any, *, label: str | None = None, value: int = 0, gas: int | None = None
    ) -> TxReceipt:
        """Signs ``fn`` (a bound contract function or constructor) with this account, sends it,
        waits for the receipt; a revert (at estimation or on chain) raises ``LedgerError``.
        With ``gas`` set the call is not estimated first (see ``escrow.TIME_GATED_GAS``)."""
        label = label or self._label(fn)
        for attempt in range(4):
            with self.nonces.lock:
                params: dict[str, Any] = {
                    "from": self.address,
                    "nonce": self.nonces.peek(),
                    "chainId": self.chain_id,
                    "value": value,
                }
                if gas is not None:
                    params["gas"] = gas
                try:
                    tx = fn.build_transaction(params)  # estimates gas: reverts surface here
                    signed = self.account.sign_transaction(tx)
                    tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                except (ContractLogicError, Web3RPCError) as exc:
                    if not isinstance(exc, ContractLogicError):
                        self.nonces.resync()  # the send may or may not have consumed it
                        if attempt < 3 and _nonce_clash(exc):
                            continue
                    raise self._error(label, exc) from None
                self.nonces.advance()
            receipt = self._wait(tx_hash)
            if receipt["status"] != 1:
                raise self._failed_receipt(label, tx, receipt)
            return receipt
        raise AssertionError("unreachable: the last attempt returns or raises")

    def call(self, fn: ContractFunction, *, label: str | None = None) -> Any:
        """A read-only call from this account; reverts raise ``LedgerError``."""
        try:
            return fn.call({"from": self.address})
        except (ContractLogicError, Web3RPCError) as exc:
            raise self._error(label or self._label(fn), exc) from None

    def timestamp(self) -> int:
        """The latest block's timestamp (the contracts' notion of now)."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def sign_typed(self, typed: dict[str, Any]) -> Any:
        """This account's signature over an EIP-712 message (``typed_data``)."""
        return self.account.sign_message(encode_typed_data(full_message=typed))

    def domain(self, contract: Contract) -> dict[str, Any]:
        """The contract's EIP-712 domain as it reports it (ERC-5267 ``eip712Domain``)."""
        _fields, name, version, chain_id, verifying, _salt, _ext = self.call(
            contract.functions.eip712Domain()
        )
        return {
            "name": name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": verifying,
        }

    def _label(self, fn: Any) -> str:
        """``Contract.function`` for error messages."""
        name = getattr(fn, "fn_name", None) or type(fn).__name__
        address = str(getattr(fn, "address", "") or "").lower()
        for contract_name, contract in self.contracts.items():
            if contract.address.lower() == address:
                return f"{contract_name}.{name}"
        return str(name)

    def _wait(self, tx_hash: HexBytes) -> TxReceipt:
        return self.w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=self.timeout_s, poll_latency=self.poll_s
        )

    def _error(self, label: str, exc: BaseException, tx_hash: str | None = None) -> LedgerError:
        data = _revert_data(exc)
        if data is None:
            detail = " ".join(str(getattr(exc, "message", None) or exc).split())
            return LedgerError(f"{label} failed: {detail}", function=label, tx_hash=tx_hash)
        name, args, rendered = decode_revert(data)
        return LedgerError(
            f"{label} reverted: {rendered}", error=name, args=args, function=label, tx_hash=tx_hash
        )

    def _failed_receipt(self, label: str, tx: dict[str, Any], receipt: TxReceipt) -> LedgerError:
        """Mined but reverted: replay it as a call on the parent block to recover the reason."""
        tx_hash = hex0x(receipt["transactionHash"])
        replay = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            # replay is the signed transaction's own fields: TxParams in all but its static type
            self.w3.eth.call(replay, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except (ContractLogicError, Web3RPCError) as exc:
            return self._error(label, exc, tx_hash)
        return LedgerError(
            f"{label} reverted on chain (tx {tx_hash})", function=label, tx_hash=tx_hash
        )
