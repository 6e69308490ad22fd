"""Settle (per task): the ``TaskEscrow`` contract as seen by one account: a requester opens and
funds an escrow per task (approve + open, or one transaction with a permit), the agent commits its
result's hash, then the requester releases, the agent claims after the grace, the requester is
refunded, disputes, or the arbiter resolves; records are read back from calls and events."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import IntEnum
from typing import Any

from hexbytes import HexBytes
from pydantic import BaseModel
from web3 import Web3
from web3.contract import Contract
from web3.types import LogReceipt, TxReceipt

from ._transactions import (
    ZERO_ADDRESS,
    Transactor,
    checksum,
    hex0x,
    logs_in_ranges,
    to_bytes32,
)
from .token import TokenClient

#: Gas limit for time-gated calls (refund, claim) sent without estimation: estimates run against
#: the latest block, and on a quiet chain (anvil mines only on demand) its timestamp lags the
#: clock, so a call that is due now would be estimated as "too early". Both use under 60,000.
TIME_GATED_GAS = 120_000
ESCROW_ROLES = ("requester", "agent")

_ESCROW_OPENED = "EscrowOpened(bytes32,address,address,address,uint256,uint64)"
_ESCROW_DISPUTED = "EscrowDisputed(bytes32,address,bytes32,string)"


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


class EscrowClient:
    """``TaskEscrow`` calls signed by the transactor's account; events are searched from
    ``since_block`` (the deployment's first block) on."""

    def __init__(
        self, tx: Transactor, contract: Contract, tokens: TokenClient, *, since_block: int
    ) -> None:
        self.tx = tx
        self.contract = contract
        self.tokens = tokens
        self.since_block = since_block

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def open(
        self,
        task_id: str | bytes,
        agent: str,
        amount: int,
        deadline: int,
        arbiter: str | None = None,
    ) -> TxReceipt:
        """Approves the escrow (if the allowance is short) and opens it, funded with ``amount``."""
        self.tokens.ensure_allowance(self.address, amount)
        fn = self.contract.functions.open(
            to_bytes32(task_id),
            checksum(agent),
            amount,
            deadline,
            checksum(arbiter or ZERO_ADDRESS),
        )
        return self.tx.transact(fn)

    def open_with_permit(
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
        permit = self.tokens.sign_permit(self.address, amount, permit_deadline or deadline)
        fn = self.contract.functions.openWithPermit(
            to_bytes32(task_id),
            checksum(agent),
            amount,
            deadline,
            checksum(arbiter or ZERO_ADDRESS),
            permit.deadline,
            permit.v,
            permit.r,
            permit.s,
        )
        return self.tx.transact(fn)

    def commit_result(self, task_id: str | bytes, result_hash: bytes) -> TxReceipt:
        fn = self.contract.functions.commitResult(to_bytes32(task_id), result_hash)
        return self.tx.transact(fn)

    def release(self, task_id: str | bytes) -> TxReceipt:
        return self.tx.transact(self.contract.functions.release(to_bytes32(task_id)))

    def claim(self, task_id: str | bytes, *, unestimated: bool = False) -> TxReceipt:
        fn = self.contract.functions.claim(to_bytes32(task_id))
        return self.tx.transact(fn, gas=TIME_GATED_GAS if unestimated else None)

    def refund(self, task_id: str | bytes, *, unestimated: bool = False) -> TxReceipt:
        fn = self.contract.functions.refund(to_bytes32(task_id))
        return self.tx.transact(fn, gas=TIME_GATED_GAS if unestimated else None)

    def resolve(self, task_id: str | bytes, pay_agent: bool) -> TxReceipt:
        return self.tx.transact(self.contract.functions.resolve(to_bytes32(task_id), pay_agent))

    def dispute(
        self, task_id: str | bytes, delivered_hash: str | bytes | None, reason: str
    ) -> TxReceipt:
        """The requester contests the agent's committed result (``delivered_hash``: the hash of
        what it received, None if nothing arrived); ``claim`` waits for the arbiter."""
        delivered = bytes(32) if delivered_hash is None else to_bytes32(delivered_hash)
        fn = self.contract.functions.dispute(to_bytes32(task_id), delivered, reason)
        return self.tx.transact(fn)

    def get(self, task_id: str | bytes) -> EscrowView:
        tid = to_bytes32(task_id)
        record = self.tx.call(self.contract.functions.getEscrow(tid))
        (
            requester,
            deadline,
            status,
            agent,
            committed_at,
            arbiter,
            disputed_at,
            amount,
            result_hash,
        ) = record
        return EscrowView(
            task_id=hex0x(tid),
            requester=requester,
            deadline=deadline,
            status=EscrowStatus(status),
            agent=agent,
            committed_at=committed_at,
            arbiter=None if int(arbiter, 16) == 0 else arbiter,
            amount=amount,
            result_hash=None if not any(result_hash) else hex0x(result_hash),
            disputed_at=disputed_at,
        )

    def get_dispute(
        self, task_id: str | bytes, *, chunk_blocks: int = 10_000
    ) -> DisputeView | None:
        """The requester's dispute of the escrow under ``task_id`` (from its ``EscrowDisputed``
        event), or None if it was never disputed."""
        tid = to_bytes32(task_id)
        topics = [HexBytes(Web3.keccak(text=_ESCROW_DISPUTED)), HexBytes(tid)]
        event = self.contract.events.EscrowDisputed()
        for logs in self._logs(topics, chunk_blocks):
            if logs:
                decoded = event.process_log(logs[0])
                args = decoded["args"]
                delivered = bytes(args["deliveredHash"])
                return DisputeView(
                    task_id=hex0x(tid),
                    requester=args["requester"],
                    delivered_hash=hex0x(delivered) if any(delivered) else None,
                    reason=args["reason"],
                    block=decoded["blockNumber"],
                    tx=hex0x(decoded["transactionHash"]),
                )
        return None

    def find(
        self, address: str | None = None, role: str | None = None, *, chunk_blocks: int = 10_000
    ) -> list[EscrowEntry]:
        """Every escrow in which ``address`` (default: this account) is the requester or the agent
        (``role`` ``"requester"`` / ``"agent"`` for one side only), oldest first, with its current
        status. Read from the indexed ``EscrowOpened`` events since the deployment block, in
        ``chunk_blocks`` ranges (public endpoints cap ``eth_getLogs`` ranges)."""
        if role not in (None, *ESCROW_ROLES):
            raise ValueError(f"role must be one of {', '.join(ESCROW_ROLES)}, not {role!r}")
        who = HexBytes(bytes(12) + bytes.fromhex(checksum(address or self.tx.address)[2:]))
        event = self.contract.events.EscrowOpened()
        topic0 = HexBytes(Web3.keccak(text=_ESCROW_OPENED))
        found: list[tuple[int, int, str, Any]] = []
        for side in (role,) if role else ESCROW_ROLES:
            # topics: [signature, taskId, requester, agent]
            topics = [topic0, None, who, None] if side == "requester" else [topic0, None, None, who]
            for logs in self._logs(topics, chunk_blocks):
                for log in logs:
                    found.append(
                        (log["blockNumber"], log["logIndex"], side, event.process_log(log))
                    )
        entries = []
        for block, _index, side, decoded in sorted(found, key=lambda f: (f[0], f[1])):
            view = self.get(bytes(decoded["args"]["taskId"]))
            entries.append(
                EscrowEntry(
                    **view.model_dump(),
                    role=side,
                    opened_block=block,
                    opened_tx=hex0x(decoded["transactionHash"]),
                )
            )
        return entries

    def opened(
        self, from_block: int | None = None, to_block: int | None = None
    ) -> list[EscrowOpenedEntry]:
        """Every ``EscrowOpened`` event from ``from_block`` (default: the deployment block) to
        ``to_block`` (default: the latest), oldest first: the escrows as opened (``get`` tells
        what became of one)."""
        event = self.contract.events.EscrowOpened()
        topic0 = HexBytes(Web3.keccak(text=_ESCROW_OPENED))
        start = self.since_block if from_block is None else from_block
        found: list[EscrowOpenedEntry] = []
        for logs in logs_in_ranges(self.tx.w3, self.address, [topic0], start, to_block):
            for log in logs:
                args = event.process_log(log)["args"]
                found.append(
                    EscrowOpenedEntry(
                        task_id=hex0x(bytes(args["taskId"])),
                        requester=str(args["requester"]),
                        agent=str(args["agent"]),
                        amount=int(args["amount"]),
                        deadline=int(args["deadline"]),
                        block=int(log["blockNumber"]),
                    )
                )
        return found

    def _logs(
        self, topics: Sequence[HexBytes | None], chunk_blocks: int
    ) -> Iterator[list[LogReceipt]]:
        """The escrow's logs matching ``topics`` since the deployment block, chunk by chunk."""
        return logs_in_ranges(
            self.tx.w3, self.address, topics, self.since_block, chunk_blocks=chunk_blocks
        )
