"""Settle (the money): the ``NoosToken`` ERC-20 as seen by one account: balances, allowances,
mints (owner only), transfers and EIP-2612 permits."""

from __future__ import annotations

from pydantic import BaseModel
from web3.contract import Contract
from web3.types import TxReceipt

from ._transactions import Transactor, checksum, typed_data

_PERMIT_TYPE = [
    {"name": "owner", "type": "address"},
    {"name": "spender", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


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


class TokenClient:
    """``NoosToken`` calls signed by the transactor's account."""

    def __init__(self, tx: Transactor, contract: Contract) -> None:
        self.tx = tx
        self.contract = contract

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def balance_of(self, address: str | None = None) -> int:
        fn = self.contract.functions.balanceOf(checksum(address or self.tx.address))
        return int(self.tx.call(fn))

    def total_supply(self) -> int:
        return int(self.tx.call(self.contract.functions.totalSupply()))

    def allowance(self, spender: str, owner: str | None = None) -> int:
        fn = self.contract.functions.allowance(
            checksum(owner or self.tx.address), checksum(spender)
        )
        return int(self.tx.call(fn))

    def mint(self, to: str, amount: int) -> TxReceipt:
        return self.tx.transact(self.contract.functions.mint(checksum(to), amount))

    def approve(self, spender: str, amount: int) -> TxReceipt:
        return self.tx.transact(self.contract.functions.approve(checksum(spender), amount))

    def ensure_allowance(self, spender: str, amount: int) -> None:
        """Approves ``spender`` for ``amount`` unless the allowance already covers it."""
        if self.allowance(spender) < amount:
            self.approve(spender, amount)

    def transfer(self, to: str, amount: int) -> TxReceipt:
        return self.tx.transact(self.contract.functions.transfer(checksum(to), amount))

    def transfer_ownership(self, owner: str) -> TxReceipt:
        """Hands the minting right to ``owner`` (the current owner only)."""
        return self.tx.transact(self.contract.functions.transferOwnership(checksum(owner)))

    def sign_permit(self, spender: str, value: int, deadline: int) -> Permit:
        """EIP-2612 permit for ``spender``, signed with this account against the token's domain."""
        nonce = int(self.tx.call(self.contract.functions.nonces(self.tx.address)))
        message = {
            "owner": self.tx.address,
            "spender": checksum(spender),
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        }
        typed = typed_data(self.tx.domain(self.contract), "Permit", _PERMIT_TYPE, message)
        signed = self.tx.sign_typed(typed)
        return Permit(
            owner=self.tx.address,
            spender=checksum(spender),
            value=value,
            nonce=nonce,
            deadline=deadline,
            v=signed.v,
            r=signed.r.to_bytes(32, "big"),
            s=signed.s.to_bytes(32, "big"),
        )
