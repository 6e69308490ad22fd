"""Settle (many small payments): the ``PaymentChannel`` contract as seen by one account. The
sender deposits once, then pays off-chain with EIP-712 vouchers over a cumulative amount; the
recipient withdraws or closes with the latest voucher, the sender takes an expired deposit back."""

from __future__ import annotations

from enum import IntEnum

from eth_account import Account
from eth_account.messages import encode_typed_data
from pydantic import BaseModel, ConfigDict
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from ._transactions import LedgerError, Transactor, checksum, hex0x, to_bytes32, typed_data
from .token import TokenClient

# Must match PaymentChannel.VOUCHER_TYPEHASH: Voucher(bytes32 channelId,uint256 cumulativeAmount)
_VOUCHER_TYPE = [
    {"name": "channelId", "type": "bytes32"},
    {"name": "cumulativeAmount", "type": "uint256"},
]


class ChannelStatus(IntEnum):
    """Mirrors ``PaymentChannel.Status``."""

    NONE = 0
    OPEN = 1
    CLOSED = 2


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


class ChannelClient:
    """``PaymentChannel`` calls signed by the transactor's account."""

    def __init__(self, tx: Transactor, contract: Contract, tokens: TokenClient) -> None:
        self.tx = tx
        self.contract = contract
        self.tokens = tokens

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def open(self, recipient: str, deposit: int, expiry: int) -> str:
        """Approves (if needed) and opens a channel to ``recipient``; returns the channel id."""
        self.tokens.ensure_allowance(self.address, deposit)
        fn = self.contract.functions.open(checksum(recipient), deposit, expiry)
        receipt = self.tx.transact(fn)
        events = self.contract.events.ChannelOpened().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise LedgerError("PaymentChannel.open: no ChannelOpened event in the receipt")
        return hex0x(events[0]["args"]["channelId"])

    def sign_voucher(self, channel_id: str | bytes, cumulative_amount: int) -> Voucher:
        """An EIP-712 voucher over the channel contract's domain, signed with this account."""
        cid = to_bytes32(channel_id)
        message = {"channelId": cid, "cumulativeAmount": cumulative_amount}
        typed = typed_data(self.tx.domain(self.contract), "Voucher", _VOUCHER_TYPE, message)
        signed = self.tx.sign_typed(typed)
        return Voucher(
            channel_id=hex0x(cid),
            cumulative_amount=cumulative_amount,
            signature=hex0x(signed.signature),
        )

    def voucher_signer(self, voucher: Voucher) -> str:
        """Who signed ``voucher`` (checked off-chain, e.g. before accepting a payment)."""
        message = {
            "channelId": to_bytes32(voucher.channel_id),
            "cumulativeAmount": voucher.cumulative_amount,
        }
        typed = typed_data(self.tx.domain(self.contract), "Voucher", _VOUCHER_TYPE, message)
        signer: str = Account.recover_message(
            encode_typed_data(full_message=typed), signature=bytes.fromhex(voucher.signature[2:])
        )
        return signer

    def top_up(self, channel_id: str | bytes, amount: int) -> TxReceipt:
        self.tokens.ensure_allowance(self.address, amount)
        return self.tx.transact(self.contract.functions.topUp(to_bytes32(channel_id), amount))

    def withdraw(self, voucher: Voucher) -> TxReceipt:
        """The recipient cashes ``voucher`` and keeps the channel open."""
        fn = self.contract.functions.withdraw(
            to_bytes32(voucher.channel_id),
            voucher.cumulative_amount,
            bytes.fromhex(voucher.signature[2:]),
        )
        return self.tx.transact(fn)

    def close(self, voucher: Voucher) -> TxReceipt:
        """The recipient closes with ``voucher``; the unpaid rest goes back to the sender."""
        fn = self.contract.functions.close(
            to_bytes32(voucher.channel_id),
            voucher.cumulative_amount,
            bytes.fromhex(voucher.signature[2:]),
        )
        return self.tx.transact(fn)

    def refund_expired(self, channel_id: str | bytes) -> TxReceipt:
        return self.tx.transact(self.contract.functions.refundExpired(to_bytes32(channel_id)))

    def get(self, channel_id: str | bytes) -> ChannelView:
        cid = to_bytes32(channel_id)
        sender, expiry, status, recipient, deposit, paid = self.tx.call(
            self.contract.functions.getChannel(cid)
        )
        return ChannelView(
            channel_id=hex0x(cid),
            sender=sender,
            expiry=expiry,
            status=ChannelStatus(status),
            recipient=recipient,
            deposit=deposit,
            paid=paid,
        )
