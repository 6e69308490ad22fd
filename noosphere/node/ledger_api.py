"""Settle (node API): the operator's ``noosphere.ledger.status``, ``.release`` and ``.dispute``
JSON-RPC methods over the node's ledger account (``settlement.Settlement``)."""

from __future__ import annotations

from noosphere.ledger import LedgerError
from noosphere.protocol import ErrorCode, RpcError
from noosphere.protocol.api import EmptyParams, LedgerStatus
from noosphere.protocol.payment import EscrowDisputeParams, EscrowReleaseParams, EscrowSettled
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL

from .rpc import CallContext, JsonRpcDispatcher
from .settlement import Settlement
from .store import StoredPayment


def register_ledger_api(dispatcher: JsonRpcDispatcher, settlement: Settlement | None) -> None:
    async def status(_: EmptyParams, ctx: CallContext) -> LedgerStatus:
        if ctx.principal != LOCAL_PRINCIPAL:
            raise RpcError(ErrorCode.UNAUTHORIZED, "Unauthorized: only the node's operator")
        if settlement is None:
            raise RpcError(
                ErrorCode.UNSUPPORTED_OPERATION, "this node has no ledger (set chain_home)"
            )
        try:
            balance = await settlement.balance()
        except (LedgerError, OSError) as exc:
            raise RpcError(ErrorCode.INTERNAL_ERROR, f"cannot read the ledger: {exc}") from exc
        deployment = settlement.client.deployment
        return LedgerStatus(
            address=settlement.address,
            chain_id=settlement.chain_id,
            balance=str(balance),
            token=deployment.token,
            escrow=deployment.escrow,
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

    def operator_settlement(ctx: CallContext) -> Settlement:
        if ctx.principal != LOCAL_PRINCIPAL:
            raise RpcError(ErrorCode.UNAUTHORIZED, "Unauthorized: only the node's operator")
        if settlement is None:
            raise RpcError(
                ErrorCode.UNSUPPORTED_OPERATION, "this node has no ledger (set chain_home)"
            )
        return settlement

    def requester_row(ledger: Settlement, escrow_id: str) -> StoredPayment:
        row = ledger.payments_row(escrow_id)
        if row is None or row.role != "requester":
            raise RpcError(
                ErrorCode.INVALID_PARAMS,
                f"Invalid params: escrow {escrow_id} was not opened by this node",
            )
        return row

    async def release(params: EscrowReleaseParams, ctx: CallContext) -> EscrowSettled:
        ledger = operator_settlement(ctx)
        requester_row(ledger, params.escrow_id)
        try:
            tx = await ledger.release(params.escrow_id, None)
        except (LedgerError, OSError) as exc:
            raise RpcError(ErrorCode.INVALID_PARAMS, f"cannot release: {exc}") from exc
        return EscrowSettled(escrow_id=params.escrow_id, state="released", tx=tx)

    async def dispute(params: EscrowDisputeParams, ctx: CallContext) -> EscrowSettled:
        ledger = operator_settlement(ctx)
        requester_row(ledger, params.escrow_id)
        delivered = params.delivered_hash or ledger.delivered_hash(params.escrow_id)
        try:
            tx = await ledger.dispute(params.escrow_id, delivered, params.reason)
        except (LedgerError, OSError) as exc:
            raise RpcError(ErrorCode.INVALID_PARAMS, f"cannot dispute: {exc}") from exc
        return EscrowSettled(escrow_id=params.escrow_id, state="disputed", tx=tx)

    dispatcher.register("noosphere.ledger.status", EmptyParams, status, authenticated=True)
    dispatcher.register(
        "noosphere.ledger.release", EscrowReleaseParams, release, authenticated=True
    )
    dispatcher.register(
        "noosphere.ledger.dispute", EscrowDisputeParams, dispute, authenticated=True
    )
