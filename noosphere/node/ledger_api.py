"""Settle (node API): the operator's ``noosphere.ledger.status``, ``.release`` and ``.dispute``
JSON-RPC methods over the node's ledger account (``settlement.Settlement``, seen through
``LedgerAccount``: exactly what these methods use)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from noosphere.errors import (
    InvalidParams,
    LedgerError,
    ServerError,
    Unauthorized,
    UnsupportedOperation,
)
from noosphere.protocol.api import EmptyParams, LedgerStatus
from noosphere.protocol.payment import EscrowDisputeParams, EscrowReleaseParams, EscrowSettled
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL

from .rpc import CallContext, JsonRpcDispatcher
from .store import StoredPayment


class LedgerAccount(Protocol):
    """The node's ledger account, as far as the operator's ledger methods use it."""

    @property
    def address(self) -> str: ...

    @property
    def chain_id(self) -> int: ...

    @property
    def token_address(self) -> str: ...

    @property
    def escrow_address(self) -> str: ...

    @property
    def registry_ids(self) -> Mapping[str, int]: ...

    async def balance(self) -> int: ...

    def payments(self) -> list[StoredPayment]: ...

    def payments_row(self, escrow_id: str) -> StoredPayment | None: ...

    def delivered_hash(self, escrow_id: str) -> str | None: ...

    async def release(self, escrow_id: str, expected_hash: str | None) -> str: ...

    async def dispute(self, escrow_id: str, delivered_hash: str | None, reason: str) -> str: ...


def register_ledger_api(dispatcher: JsonRpcDispatcher, settlement: LedgerAccount | None) -> None:
    async def status(_: EmptyParams, ctx: CallContext) -> LedgerStatus:
        if ctx.principal != LOCAL_PRINCIPAL:
            raise Unauthorized("Unauthorized: only the node's operator")
        if settlement is None:
            raise UnsupportedOperation("this node has no ledger (set chain_home)")
        try:
            balance = await settlement.balance()
        except (LedgerError, OSError) as exc:
            raise ServerError(f"cannot read the ledger: {exc}") from exc
        return LedgerStatus(
            address=settlement.address,
            chain_id=settlement.chain_id,
            balance=str(balance),
            token=settlement.token_address,
            escrow=settlement.escrow_address,
            registry_ids=dict(settlement.registry_ids),
            payments=[
                {
                    "escrowId": p.escrow_id,
                    "role": p.role,
                    "taskId": p.task_id,
                    "state": p.state,
                    **p.payment,
                }
                for p in settlement.payments()
            ],
        )

    def operator_settlement(ctx: CallContext) -> LedgerAccount:
        if ctx.principal != LOCAL_PRINCIPAL:
            raise Unauthorized("Unauthorized: only the node's operator")
        if settlement is None:
            raise UnsupportedOperation("this node has no ledger (set chain_home)")
        return settlement

    def requester_row(ledger: LedgerAccount, escrow_id: str) -> StoredPayment:
        row = ledger.payments_row(escrow_id)
        if row is None or row.role != "requester":
            raise InvalidParams(
                f"Invalid params: escrow {escrow_id} was not opened by this node",
            )
        return row

    async def release(params: EscrowReleaseParams, ctx: CallContext) -> EscrowSettled:
        ledger = operator_settlement(ctx)
        requester_row(ledger, params.escrow_id)
        try:
            tx = await ledger.release(params.escrow_id, None)
        except (LedgerError, OSError) as exc:
            raise InvalidParams(f"cannot release: {exc}") from exc
        return EscrowSettled(escrow_id=params.escrow_id, state="released", tx=tx)

    async def dispute(params: EscrowDisputeParams, ctx: CallContext) -> EscrowSettled:
        ledger = operator_settlement(ctx)
        requester_row(ledger, params.escrow_id)
        delivered = params.delivered_hash or ledger.delivered_hash(params.escrow_id)
        try:
            tx = await ledger.dispute(params.escrow_id, delivered, params.reason)
        except (LedgerError, OSError) as exc:
            raise InvalidParams(f"cannot dispute: {exc}") from exc
        return EscrowSettled(escrow_id=params.escrow_id, state="disputed", tx=tx)

    dispatcher.register("noosphere.ledger.status", EmptyParams, status, authenticated=True)
    dispatcher.register(
        "noosphere.ledger.release", EscrowReleaseParams, release, authenticated=True
    )
    dispatcher.register(
        "noosphere.ledger.dispute", EscrowDisputeParams, dispute, authenticated=True
    )
