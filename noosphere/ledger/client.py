"""Settle (the client): deploys and drives the noosphere contracts over any EVM JSON-RPC endpoint.

``LedgerClient`` signs every transaction locally with one ``LocalAccount`` (no node-held keys),
hands out nonces itself (one lock per account, so concurrent threads or ``asyncio.to_thread`` calls
never collide; resynced from the chain on "nonce too low"), waits for each receipt and turns
reverts into ``LedgerError`` carrying the contract's custom error decoded from the ABI. The API is
synchronous (web3's HTTP provider is); asyncio code calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import threading
from enum import IntEnum
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import abi_to_signature, function_signature_to_4byte_selector
from hexbytes import HexBytes
from pydantic import BaseModel, ConfigDict
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.logs import DISCARD
from web3.types import TxReceipt

from .registry_proof import RegistryEntry, binding_problem

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
CONTRACT_NAMES = ("NoosToken", "TaskEscrow", "AgentRegistry", "PaymentChannel")
DEPLOYMENTS_DIRNAME = "deployments"
ZERO_ADDRESS = "0x" + "00" * 20
DEFAULT_GRACE_PERIOD_S = 3600
#: How long an arbiter has to resolve a dispute before the requester's funds can be refunded.
DEFAULT_ARBITRATION_PERIOD_S = 3 * 86_400
#: ``deploy_all(arbiter=OWNER_ARBITER)``: the deployment's default arbiter is the token owner.
OWNER_ARBITER = "owner"
#: Gas limit for time-gated calls (refund, claim) sent without estimation: estimates run against
#: the latest block, and on a quiet chain (anvil mines only on demand) its timestamp lags the
#: clock, so a call that is due now would be estimated as "too early". Both use under 60,000.
TIME_GATED_GAS = 120_000
ESCROW_ROLES = ("requester", "agent")

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)
_RETRYABLE_NONCE = ("nonce too low", "already known", "replacement transaction underpriced")


class LedgerError(RuntimeError):
    """A ledger call failed; ``error`` is the contract's custom error name if it reverted with one.

    The message is one line: ``<Contract.function> reverted: <Error>(arg=value, ...)``.
    """

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        args: dict[str, Any] | None = None,
        function: str | None = None,
        tx_hash: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.error_args = args or {}
        self.function = function
        self.tx_hash = tx_hash


class EscrowStatus(IntEnum):
    """Mirrors ``TaskEscrow.Status`` (``DISPUTED`` is last so the others keep their numbers)."""

    NONE = 0
    OPEN = 1
    COMMITTED = 2
    RELEASED = 3
    CLAIMED = 4
    REFUNDED = 5
    RESOLVED_FOR_AGENT = 6
    RESOLVED_FOR_REQUESTER = 7
    DISPUTED = 8

    @property
    def final(self) -> bool:
        """Settled: the funds have left the escrow (released, claimed, refunded, resolved)."""
        return EscrowStatus.RELEASED <= self <= EscrowStatus.RESOLVED_FOR_REQUESTER


class ChannelStatus(IntEnum):
    """Mirrors ``PaymentChannel.Status``."""

    NONE = 0
    OPEN = 1
    CLOSED = 2


class Deployment(BaseModel):
    """Where the four contracts live on one chain; saved as ``HOME/deployments/<chainId>.json``.

    ``arbiter`` is the deployment's default arbiter (None: none): requesters' nodes name it in the
    escrows they open and agents' nodes accept it, unless their config says otherwise."""

    model_config = ConfigDict(frozen=True)

    chain_id: int
    token: str
    escrow: str
    registry: str
    channel: str
    deployer: str
    owner: str
    grace_period_s: int
    arbitration_period_s: int = DEFAULT_ARBITRATION_PERIOD_S
    arbiter: str | None = None
    block_number: int
    source_hashes: dict[str, str]

    @staticmethod
    def path(home: Path, chain_id: int) -> Path:
        return home / DEPLOYMENTS_DIRNAME / f"{chain_id}.json"

    def save(self, home: Path) -> Path:
        path = self.path(home, self.chain_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, home: Path, chain_id: int) -> Deployment | None:
        """The saved deployment for ``chain_id``, or None if there is none."""
        path = cls.path(home, chain_id)
        if not path.is_file():
            return None
        return cls.model_validate_json(path.read_text())


class EscrowView(BaseModel):
    """One ``TaskEscrow`` record (``status`` NONE if no escrow exists under ``task_id``)."""

    task_id: str
    requester: str
    deadline: int
    status: EscrowStatus
    agent: str
    committed_at: int
    arbiter: str | None
    amount: int
    result_hash: str | None
    disputed_at: int = 0


class DisputeView(BaseModel):
    """The requester's ``EscrowDisputed`` record: what it received and why it contests."""

    task_id: str
    requester: str
    delivered_hash: str | None
    reason: str
    block: int
    tx: str


class EscrowEntry(EscrowView):
    """An escrow found in the ``EscrowOpened`` events, with its current record and ``role`` of
    the account it was listed for (``requester`` or ``agent``)."""

    role: str
    opened_block: int
    opened_tx: str


class EscrowOpenedEntry(BaseModel):
    """One ``TaskEscrow.EscrowOpened`` event."""

    task_id: str
    requester: str
    agent: str  # the payee
    amount: int
    deadline: int  # unix seconds
    block: int


class FeedbackEntry(BaseModel):
    """One ``AgentRegistry.FeedbackGiven`` event (the registry accepted it: the rater is the
    requester of a settled escrow in which the agent committed a result)."""

    agent_id: int
    task_id: str  # the escrow id
    client: str  # the rater (the escrow's requester)
    score: int  # 0..100
    uri: str
    block: int
    timestamp: int  # block time, unix seconds


class ChannelView(BaseModel):
    """One ``PaymentChannel`` record."""

    channel_id: str
    sender: str
    expiry: int
    status: ChannelStatus
    recipient: str
    deposit: int
    paid: int


class Voucher(BaseModel):
    """An off-chain payment: the sender's EIP-712 signature over (channel id, cumulative amount)."""

    model_config = ConfigDict(frozen=True)

    channel_id: str
    cumulative_amount: int
    signature: str


class Permit(BaseModel):
    """An EIP-2612 permit (v, r, s): ``value`` tokens for ``spender`` until ``deadline``."""

    owner: str
    spender: str
    value: int
    nonce: int
    deadline: int
    v: int
    r: bytes
    s: bytes


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


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


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


# ----------------------------------------------------------------------------------- the client


class LedgerClient:
    """The ledger as seen by one signing account."""

    def __init__(
        self,
        rpc_url: str,
        account: LocalAccount,
        deployment: Deployment | None = None,
        *,
        timeout_s: float = 60.0,
        poll_s: float = 0.05,
    ) -> None:
        self.rpc_url = rpc_url
        self.account = account
        self.address: str = account.address
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
        self.chain_id: int = self.w3.eth.chain_id
        self.nonces = _nonce_manager(rpc_url, self.w3, self.address)
        self._deployment: Deployment | None = None
        self._contracts: dict[str, Contract] = {}
        if deployment is not None:
            self.use(deployment)

    # ------------------------------------------------------------------ deployment

    def for_account(self, account: LocalAccount) -> LedgerClient:
        """A client for another signer on the same endpoint and deployment."""
        return LedgerClient(
            self.rpc_url, account, self._deployment, timeout_s=self.timeout_s, poll_s=self.poll_s
        )

    @property
    def deployment(self) -> Deployment:
        if self._deployment is None:
            raise LedgerError("no deployment: call deploy_all() or use(Deployment.load(...))")
        return self._deployment

    def use(self, deployment: Deployment) -> None:
        """Attach to deployed contracts after checking they belong to this chain and have code."""
        if deployment.chain_id != self.chain_id:
            raise LedgerError(
                f"deployment is for chain {deployment.chain_id}, endpoint is chain {self.chain_id}"
            )
        addresses = {
            "NoosToken": deployment.token,
            "TaskEscrow": deployment.escrow,
            "AgentRegistry": deployment.registry,
            "PaymentChannel": deployment.channel,
        }
        for name, address in addresses.items():
            if not self.w3.eth.get_code(Web3.to_checksum_address(address)):
                raise LedgerError(f"{name} has no code at {address} on chain {self.chain_id}")
        stale = sorted(
            name
            for name in CONTRACT_NAMES
            if deployment.source_hashes.get(name) != load_artifact(name)["sourceHash"]
        )
        if stale:
            raise LedgerError(
                f"the deployment on chain {self.chain_id} runs other versions of {', '.join(stale)}"
                " than this noosphere: deploy again (noosphere ledger deploy)"
            )
        self._contracts = {
            name: self.w3.eth.contract(
                address=Web3.to_checksum_address(address), abi=load_artifact(name)["abi"]
            )
            for name, address in addresses.items()
        }
        self._deployment = deployment

    def deploy_all(
        self,
        owner: str | None = None,
        *,
        grace_period_s: int = DEFAULT_GRACE_PERIOD_S,
        arbitration_period_s: int = DEFAULT_ARBITRATION_PERIOD_S,
        arbiter: str | None = OWNER_ARBITER,
    ) -> Deployment:
        """Deploys token, escrow (with ``grace_period_s`` and ``arbitration_period_s``), registry
        and channel from this account; the token's ownership (minting right) moves to ``owner`` if
        that is another account. ``arbiter`` is recorded as the deployment's default arbiter: an
        address, ``OWNER_ARBITER`` (the token owner, already the most trusted account of a
        deployment) or None for no default arbiter."""
        start_block = self.w3.eth.block_number
        owner = Web3.to_checksum_address(owner) if owner else self.address
        default_arbiter = owner if arbiter == OWNER_ARBITER else arbiter
        token = self._deploy("NoosToken")
        escrow = self._deploy("TaskEscrow", token, grace_period_s, arbitration_period_s)
        registry = self._deploy("AgentRegistry", escrow)
        channel = self._deploy("PaymentChannel", token)
        deployment = Deployment(
            chain_id=self.chain_id,
            token=token,
            escrow=escrow,
            registry=registry,
            channel=channel,
            deployer=self.address,
            owner=owner,
            grace_period_s=grace_period_s,
            arbitration_period_s=arbitration_period_s,
            arbiter=_addr(default_arbiter) if default_arbiter else None,
            block_number=start_block + 1,
            source_hashes={n: load_artifact(n)["sourceHash"] for n in CONTRACT_NAMES},
        )
        self.use(deployment)
        if owner != self.address:
            self.transact(self.token.functions.transferOwnership(owner))
        return deployment

    def load_or_deploy(
        self,
        home: Path,
        *,
        grace_period_s: int = DEFAULT_GRACE_PERIOD_S,
        arbitration_period_s: int = DEFAULT_ARBITRATION_PERIOD_S,
        arbiter: str | None = OWNER_ARBITER,
    ) -> Deployment:
        """The deployment saved under ``home`` if its code is still there (and built from these
        sources), else a new saved one."""
        saved = Deployment.load(home, self.chain_id)
        if saved is not None:
            try:
                self.use(saved)
                return saved
            except LedgerError:
                pass  # the chain was reset (or the contracts changed): deploy again
        deployment = self.deploy_all(
            grace_period_s=grace_period_s,
            arbitration_period_s=arbitration_period_s,
            arbiter=arbiter,
        )
        deployment.save(home)
        return deployment

    def _deploy(self, name: str, *args: Any) -> str:
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = self.transact(factory.constructor(*args), label=f"deploy {name}")
        address = receipt["contractAddress"]
        if address is None:
            raise LedgerError(f"deploy {name}: no contract address in receipt")
        return str(address)

    def contract(self, name: str) -> Contract:
        self.deployment  # noqa: B018 - raises a clear error when nothing is attached
        return self._contracts[name]

    @property
    def token(self) -> Contract:
        return self.contract("NoosToken")

    @property
    def escrow(self) -> Contract:
        return self.contract("TaskEscrow")

    @property
    def registry(self) -> Contract:
        return self.contract("AgentRegistry")

    @property
    def channel(self) -> Contract:
        return self.contract("PaymentChannel")

    # ------------------------------------------------------------------ transactions

    def transact(
        self, fn: Any, *, label: str | None = None, value: int = 0, gas: int | None = None
    ) -> TxReceipt:
        """Signs ``fn`` (a bound contract function or constructor) with this account, sends it,
        waits for the receipt; a revert (at estimation or on chain) raises ``LedgerError``.
        With ``gas`` set the call is not estimated first (see ``TIME_GATED_GAS``)."""
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

    def _label(self, fn: Any) -> str:
        """``Contract.function`` for error messages."""
        name = getattr(fn, "fn_name", None) or type(fn).__name__
        address = str(getattr(fn, "address", "") or "").lower()
        for contract_name, contract in self._contracts.items():
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
        tx_hash = _hex(receipt["transactionHash"])
        replay = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            self.w3.eth.call(replay, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except (ContractLogicError, Web3RPCError) as exc:
            return self._error(label, exc, tx_hash)
        return LedgerError(
            f"{label} reverted on chain (tx {tx_hash})", function=label, tx_hash=tx_hash
        )

    # ------------------------------------------------------------------ chain

    def timestamp(self) -> int:
        """The latest block's timestamp (the contracts' notion of now)."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    # ------------------------------------------------------------------ token

    def balance_of(self, address: str | None = None) -> int:
        return int(self.call(self.token.functions.balanceOf(_addr(address or self.address))))

    def total_supply(self) -> int:
        return int(self.call(self.token.functions.totalSupply()))

    def allowance(self, spender: str, owner: str | None = None) -> int:
        fn = self.token.functions.allowance(_addr(owner or self.address), _addr(spender))
        return int(self.call(fn))

    def mint(self, to: str, amount: int) -> TxReceipt:
        return self.transact(self.token.functions.mint(_addr(to), amount))

    def approve(self, spender: str, amount: int) -> TxReceipt:
        return self.transact(self.token.functions.approve(_addr(spender), amount))

    def transfer(self, to: str, amount: int) -> TxReceipt:
        return self.transact(self.token.functions.transfer(_addr(to), amount))

    def sign_permit(self, spender: str, value: int, deadline: int) -> Permit:
        """EIP-2612 permit for ``spender``, signed with this account against the token's domain."""
        nonce = int(self.call(self.token.functions.nonces(self.address)))
        message = {
            "owner": self.address,
            "spender": _addr(spender),
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        }
        typed = _typed_data(self._domain(self.token), "Permit", _PERMIT_TYPE, message)
        signed = self.account.sign_message(encode_typed_data(full_message=typed))
        return Permit(
            owner=self.address,
            spender=_addr(spender),
            value=value,
            nonce=nonce,
            deadline=deadline,
            v=signed.v,
            r=signed.r.to_bytes(32, "big"),
            s=signed.s.to_bytes(32, "big"),
        )

    def _domain(self, contract: Contract) -> dict[str, Any]:
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

    # ------------------------------------------------------------------ escrow

    def open_escrow(
        self,
        task_id: str | bytes,
        agent: str,
        amount: int,
        deadline: int,
        arbiter: str | None = None,
    ) -> TxReceipt:
        """Approves the escrow (if the allowance is short) and opens it, funded with ``amount``."""
        escrow_address = self.escrow.address
        if self.allowance(escrow_address) < amount:
            self.approve(escrow_address, amount)
        fn = self.escrow.functions.open(
            to_bytes32(task_id), _addr(agent), amount, deadline, _addr(arbiter or ZERO_ADDRESS)
        )
        return self.transact(fn)

    def open_escrow_with_permit(
        self,
        task_id: str | bytes,
        agent: str,
        amount: int,
        deadline: int,
        arbiter: str | None = None,
        *,
        permit_deadline: int | None = None,
    ) -> TxReceipt:
        """Opens and funds the escrow in one transaction with an EIP-2612 permit (no approve)."""
        permit = self.sign_permit(self.escrow.address, amount, permit_deadline or deadline)
        fn = self.escrow.functions.openWithPermit(
            to_bytes32(task_id),
            _addr(agent),
            amount,
            deadline,
            _addr(arbiter or ZERO_ADDRESS),
            permit.deadline,
            permit.v,
            permit.r,
            permit.s,
        )
        return self.transact(fn)

    def commit_result(self, task_id: str | bytes, result_hash: bytes) -> TxReceipt:
        return self.transact(self.escrow.functions.commitResult(to_bytes32(task_id), result_hash))

    def release(self, task_id: str | bytes) -> TxReceipt:
        return self.transact(self.escrow.functions.release(to_bytes32(task_id)))

    def claim(self, task_id: str | bytes, *, unestimated: bool = False) -> TxReceipt:
        fn = self.escrow.functions.claim(to_bytes32(task_id))
        return self.transact(fn, gas=TIME_GATED_GAS if unestimated else None)

    def refund(self, task_id: str | bytes, *, unestimated: bool = False) -> TxReceipt:
        fn = self.escrow.functions.refund(to_bytes32(task_id))
        return self.transact(fn, gas=TIME_GATED_GAS if unestimated else None)

    def resolve(self, task_id: str | bytes, pay_agent: bool) -> TxReceipt:
        return self.transact(self.escrow.functions.resolve(to_bytes32(task_id), pay_agent))

    def dispute(
        self, task_id: str | bytes, delivered_hash: str | bytes | None, reason: str
    ) -> TxReceipt:
        """The requester contests the agent's committed result (``delivered_hash``: the hash of
        what it received, None if nothing arrived); ``claim`` waits for the arbiter."""
        delivered = bytes(32) if delivered_hash is None else to_bytes32(delivered_hash)
        fn = self.escrow.functions.dispute(to_bytes32(task_id), delivered, reason)
        return self.transact(fn)

    def get_escrow(self, task_id: str | bytes) -> EscrowView:
        tid = to_bytes32(task_id)
        (requester, deadline, status, agent, committed_at, arbiter, disputed_at, amount,
         result_hash) = self.call(self.escrow.functions.getEscrow(tid))  # fmt: skip
        return EscrowView(
            task_id=_hex(tid),
            requester=requester,
            deadline=deadline,
            status=EscrowStatus(status),
            agent=agent,
            committed_at=committed_at,
            arbiter=None if int(arbiter, 16) == 0 else arbiter,
            amount=amount,
            result_hash=None if not any(result_hash) else _hex(result_hash),
            disputed_at=disputed_at,
        )

    def get_dispute(
        self, task_id: str | bytes, *, chunk_blocks: int = 10_000
    ) -> DisputeView | None:
        """The requester's dispute of the escrow under ``task_id`` (from its ``EscrowDisputed``
        event), or None if it was never disputed."""
        tid = to_bytes32(task_id)
        topics = [HexBytes(Web3.keccak(text=_ESCROW_DISPUTED)), HexBytes(tid)]
        event = self.escrow.events.EscrowDisputed()
        latest = self.w3.eth.block_number
        start = self.deployment.block_number
        while start <= latest:
            end = min(start + chunk_blocks - 1, latest)
            query = {"address": self.escrow.address, "fromBlock": start, "toBlock": end}
            logs = self.w3.eth.get_logs({**query, "topics": topics})  # type: ignore[typeddict-item]
            if logs:
                decoded = event.process_log(logs[0])
                args = decoded["args"]
                delivered = bytes(args["deliveredHash"])
                return DisputeView(
                    task_id=_hex(tid),
                    requester=args["requester"],
                    delivered_hash=_hex(delivered) if any(delivered) else None,
                    reason=args["reason"],
                    block=decoded["blockNumber"],
                    tx=_hex(decoded["transactionHash"]),
                )
            start = end + 1
        return None

    def list_escrows(
        self, address: str | None = None, role: str | None = None, *, chunk_blocks: int = 10_000
    ) -> list[EscrowEntry]:
        """Every escrow in which ``address`` (default: this account) is the requester or the agent
        (``role`` ``"requester"`` / ``"agent"`` for one side only), oldest first, with its current
        status. Read from the indexed ``EscrowOpened`` events since the deployment block, in
        ``chunk_blocks`` ranges (public endpoints cap ``eth_getLogs`` ranges)."""
        if role not in (None, *ESCROW_ROLES):
            raise ValueError(f"role must be one of {', '.join(ESCROW_ROLES)}, not {role!r}")
        who = HexBytes(bytes(12) + bytes.fromhex(_addr(address or self.address)[2:]))
        event = self.escrow.events.EscrowOpened()
        topic0 = HexBytes(Web3.keccak(text=_ESCROW_OPENED))
        latest = self.w3.eth.block_number
        found: list[tuple[int, int, str, Any]] = []
        for side in (role,) if role else ESCROW_ROLES:
            # topics: [signature, taskId, requester, agent]
            topics = [topic0, None, who, None] if side == "requester" else [topic0, None, None, who]
            start = self.deployment.block_number
            while start <= latest:
                end = min(start + chunk_blocks - 1, latest)
                query = {"address": self.escrow.address, "fromBlock": start, "toBlock": end}
                logs = self.w3.eth.get_logs({**query, "topics": topics})  # type: ignore[typeddict-item]
                for log in logs:
                    found.append(
                        (log["blockNumber"], log["logIndex"], side, event.process_log(log))
                    )
                start = end + 1
        entries = []
        for block, _index, side, decoded in sorted(found, key=lambda f: (f[0], f[1])):
            view = self.get_escrow(bytes(decoded["args"]["taskId"]))
            entries.append(
                EscrowEntry(
                    **view.model_dump(),
                    role=side,
                    opened_block=block,
                    opened_tx=_hex(decoded["transactionHash"]),
                )
            )
        return entries

    # ------------------------------------------------------------------ payment channels

    def open_channel(self, recipient: str, deposit: int, expiry: int) -> str:
        """Approves (if needed) and opens a channel to ``recipient``; returns the channel id."""
        channel_address = self.channel.address
        if self.allowance(channel_address) < deposit:
            self.approve(channel_address, deposit)
        receipt = self.transact(self.channel.functions.open(_addr(recipient), deposit, expiry))
        events = self.channel.events.ChannelOpened().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise LedgerError("PaymentChannel.open: no ChannelOpened event in the receipt")
        return _hex(events[0]["args"]["channelId"])

    def sign_voucher(self, channel_id: str | bytes, cumulative_amount: int) -> Voucher:
        """An EIP-712 voucher over the channel contract's domain, signed with this account."""
        cid = to_bytes32(channel_id)
        message = {"channelId": cid, "cumulativeAmount": cumulative_amount}
        typed = _typed_data(self._domain(self.channel), "Voucher", _VOUCHER_TYPE, message)
        signed = self.account.sign_message(encode_typed_data(full_message=typed))
        return Voucher(
            channel_id=_hex(cid),
            cumulative_amount=cumulative_amount,
            signature=_hex(signed.signature),
        )

    def voucher_signer(self, voucher: Voucher) -> str:
        """Who signed ``voucher`` (checked off-chain, e.g. before accepting a payment)."""
        message = {
            "channelId": to_bytes32(voucher.channel_id),
            "cumulativeAmount": voucher.cumulative_amount,
        }
        typed = _typed_data(self._domain(self.channel), "Voucher", _VOUCHER_TYPE, message)
        signer: str = Account.recover_message(
            encode_typed_data(full_message=typed), signature=bytes.fromhex(voucher.signature[2:])
        )
        return signer

    def top_up_channel(self, channel_id: str | bytes, amount: int) -> TxReceipt:
        if self.allowance(self.channel.address) < amount:
            self.approve(self.channel.address, amount)
        return self.transact(self.channel.functions.topUp(to_bytes32(channel_id), amount))

    def withdraw_channel(self, voucher: Voucher) -> TxReceipt:
        """The recipient cashes ``voucher`` and keeps the channel open."""
        fn = self.channel.functions.withdraw(
            to_bytes32(voucher.channel_id),
            voucher.cumulative_amount,
            bytes.fromhex(voucher.signature[2:]),
        )
        return self.transact(fn)

    def close_channel(self, voucher: Voucher) -> TxReceipt:
        """The recipient closes with ``voucher``; the unpaid rest goes back to the sender."""
        fn = self.channel.functions.close(
            to_bytes32(voucher.channel_id),
            voucher.cumulative_amount,
            bytes.fromhex(voucher.signature[2:]),
        )
        return self.transact(fn)

    def refund_expired_channel(self, channel_id: str | bytes) -> TxReceipt:
        return self.transact(self.channel.functions.refundExpired(to_bytes32(channel_id)))

    def get_channel(self, channel_id: str | bytes) -> ChannelView:
        cid = to_bytes32(channel_id)
        sender, expiry, status, recipient, deposit, paid = self.call(
            self.channel.functions.getChannel(cid)
        )
        return ChannelView(
            channel_id=_hex(cid),
            sender=sender,
            expiry=expiry,
            status=ChannelStatus(status),
            recipient=recipient,
            deposit=deposit,
            paid=paid,
        )

    # ------------------------------------------------------------------ registry

    def register_agent(
        self, card_uri: str, card_hash: bytes, peer_id: str, agent_name: str, peer_proof: bytes
    ) -> int:
        """Mints an agent identity to this account; returns its agent id. ``peer_proof`` is the
        node key's signature (``registry_proof.sign_registration``); the registry stores it
        unchecked, readers verify it."""
        fn = self.registry.functions.register(card_uri, card_hash, peer_id, agent_name, peer_proof)
        receipt = self.transact(fn)
        events = self.registry.events.AgentRegistered().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise LedgerError("AgentRegistry.register: no AgentRegistered event in the receipt")
        return int(events[0]["args"]["agentId"])

    def update_agent(
        self,
        agent_id: int,
        card_uri: str,
        card_hash: bytes,
        peer_id: str,
        agent_name: str,
        peer_proof: bytes,
    ) -> TxReceipt:
        fn = self.registry.functions.update(
            agent_id, card_uri, card_hash, peer_id, agent_name, peer_proof
        )
        return self.transact(fn)

    def get_agent(self, agent_id: int) -> RegistryEntry:
        """The registry entry ``agent_id`` with its current owner (``LedgerError`` if none)."""
        card_uri, card_hash, peer_id, agent_name, peer_proof = self.call(
            self.registry.functions.getAgent(agent_id)
        )
        owner = self.call(self.registry.functions.ownerOf(agent_id))
        return RegistryEntry(
            agent_id=agent_id,
            owner=str(owner),
            card_uri=card_uri,
            card_hash=_hex(card_hash),
            peer_id=peer_id,
            agent_name=agent_name,
            peer_proof=bytes(peer_proof),
        )

    def total_agents(self) -> int:
        return int(self.call(self.registry.functions.totalAgents()))

    def registration_problem(
        self, agent_id: int, *, peer_id: str, agent_name: str, owner: str | None = None
    ) -> str | None:
        """Why registry entry ``agent_id`` is not the proven identity of ``agent_name`` on
        ``peer_id`` (owned by ``owner`` if given); None if it is."""
        try:
            entry = self.get_agent(agent_id)
        except LedgerError as exc:
            return f"registry entry #{agent_id} cannot be read: {exc}"
        return binding_problem(
            entry,
            self.chain_id,
            self.deployment.registry,
            peer_id=peer_id,
            agent_name=agent_name,
            owner=owner,
        )

    def give_feedback(
        self, agent_id: int, task_id: str | bytes, score: int, uri: str = ""
    ) -> TxReceipt:
        fn = self.registry.functions.giveFeedback(agent_id, to_bytes32(task_id), score, uri)
        return self.transact(fn)

    def list_opened(
        self,
        from_block: int | None = None,
        to_block: int | None = None,
        *,
        chunk_blocks: int = 10_000,
    ) -> list[EscrowOpenedEntry]:
        """Every ``EscrowOpened`` event from ``from_block`` (default: the deployment block) to
        ``to_block`` (default: the latest), oldest first (the events as opened; ``get_escrow``
        tells what became of one)."""
        event = self.escrow.events.EscrowOpened()
        latest = self.w3.eth.block_number if to_block is None else to_block
        start = self.deployment.block_number if from_block is None else from_block
        topic0 = HexBytes(Web3.keccak(text=_ESCROW_OPENED))
        found: list[EscrowOpenedEntry] = []
        while start <= latest:
            end = min(start + chunk_blocks - 1, latest)
            query = {"address": self.escrow.address, "fromBlock": start, "toBlock": end}
            for log in self.w3.eth.get_logs({**query, "topics": [topic0]}):  # type: ignore[typeddict-item]
                args = event.process_log(log)["args"]
                found.append(
                    EscrowOpenedEntry(
                        task_id=_hex(bytes(args["taskId"])),
                        requester=str(args["requester"]),
                        agent=str(args["agent"]),
                        amount=int(args["amount"]),
                        deadline=int(args["deadline"]),
                        block=int(log["blockNumber"]),
                    )
                )
            start = end + 1
        return found

    def list_feedback(
        self,
        from_block: int | None = None,
        to_block: int | None = None,
        *,
        chunk_blocks: int = 10_000,
    ) -> list[FeedbackEntry]:
        """Every ``FeedbackGiven`` event from ``from_block`` (default: the deployment block) to
        ``to_block`` (default: the latest), oldest first, read in ``chunk_blocks`` ranges."""
        event = self.registry.events.FeedbackGiven()
        latest = self.w3.eth.block_number if to_block is None else to_block
        start = self.deployment.block_number if from_block is None else from_block
        topic0 = HexBytes(Web3.keccak(text=_FEEDBACK_GIVEN))
        times: dict[int, int] = {}
        found: list[FeedbackEntry] = []
        while start <= latest:
            end = min(start + chunk_blocks - 1, latest)
            query = {"address": self.registry.address, "fromBlock": start, "toBlock": end}
            for log in self.w3.eth.get_logs({**query, "topics": [topic0]}):  # type: ignore[typeddict-item]
                args = event.process_log(log)["args"]
                block = int(log["blockNumber"])
                if block not in times:
                    times[block] = int(self.w3.eth.get_block(block)["timestamp"])
                found.append(
                    FeedbackEntry(
                        agent_id=int(args["agentId"]),
                        task_id=_hex(bytes(args["taskId"])),
                        client=str(args["client"]),
                        score=int(args["score"]),
                        uri=str(args["uri"]),
                        block=block,
                        timestamp=times[block],
                    )
                )
            start = end + 1
        return found

    def feedback_count(self, agent_id: int) -> int:
        return int(self.call(self.registry.functions.feedbackCount(agent_id)))

    def average_score_x100(self, agent_id: int) -> int:
        return int(self.call(self.registry.functions.averageScoreX100(agent_id)))


# ------------------------------------------------------------------------------------ helpers

_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_PERMIT_TYPE = [
    {"name": "owner", "type": "address"},
    {"name": "spender", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
_ESCROW_OPENED = "EscrowOpened(bytes32,address,address,address,uint256,uint64)"
_ESCROW_DISPUTED = "EscrowDisputed(bytes32,address,bytes32,string)"
_FEEDBACK_GIVEN = "FeedbackGiven(uint256,bytes32,address,uint8,string)"
# Must match PaymentChannel.VOUCHER_TYPEHASH: Voucher(bytes32 channelId,uint256 cumulativeAmount)
_VOUCHER_TYPE = [
    {"name": "channelId", "type": "bytes32"},
    {"name": "cumulativeAmount", "type": "uint256"},
]


def _typed_data(
    domain: dict[str, Any], primary: str, fields: list[dict[str, str]], message: dict[str, Any]
) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, primary: fields},
        "primaryType": primary,
        "domain": domain,
        "message": message,
    }


def _addr(address: str) -> str:
    return str(Web3.to_checksum_address(address))
