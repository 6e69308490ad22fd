"""Settle (the client): the noosphere contracts over any EVM JSON-RPC endpoint, as seen by one
signing account.

``LedgerClient`` is the facade: it connects (``_transactions.Transactor``: local signing, nonces,
receipts, revert decoding), deploys or attaches to a ``Deployment``, and then offers one client
per contract: ``tokens`` (``NoosToken``), ``escrows`` (``TaskEscrow``), ``registry``
(``AgentRegistry``) and ``channels`` (``PaymentChannel``). The API is synchronous (web3's HTTP
provider is); asyncio code calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from ._transactions import LedgerError, Transactor
from .channels import ChannelClient
from .deployment import (
    DEFAULT_ARBITRATION_PERIOD_S,
    DEFAULT_GRACE_PERIOD_S,
    OWNER_ARBITER,
    Deployment,
    attach,
    deploy_contracts,
)
from .escrow import EscrowClient
from .registry import RegistryClient
from .token import TokenClient


@dataclass(frozen=True)
class _Attached:
    """The per-contract clients of one attached deployment."""

    deployment: Deployment
    tokens: TokenClient
    escrows: EscrowClient
    registry: RegistryClient
    channels: ChannelClient


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
        self.transactor = Transactor(rpc_url, account, timeout_s=timeout_s, poll_s=poll_s)
        self._attached: _Attached | None = None
        if deployment is not None:
            self.use(deployment)

    # ------------------------------------------------------------------ the account and chain

    @property
    def rpc_url(self) -> str:
        return self.transactor.rpc_url

    @property
    def account(self) -> LocalAccount:
        return self.transactor.account

    @property
    def address(self) -> str:
        return self.transactor.address

    @property
    def chain_id(self) -> int:
        return self.transactor.chain_id

    @property
    def w3(self) -> Web3:
        return self.transactor.w3

    def timestamp(self) -> int:
        """The latest block's timestamp (the contracts' notion of now)."""
        return self.transactor.timestamp()

    # ------------------------------------------------------------------ deployment

    def for_account(self, account: LocalAccount) -> LedgerClient:
        """A client for another signer on the same endpoint and deployment."""
        tx = self.transactor
        deployment = self._attached.deployment if self._attached is not None else None
        return LedgerClient(
            tx.rpc_url, account, deployment, timeout_s=tx.timeout_s, poll_s=tx.poll_s
        )

    @property
    def deployment(self) -> Deployment:
        return self._contracts().deployment

    def use(self, deployment: Deployment) -> None:
        """Attach to deployed contracts after checking they belong to this chain and have code."""
        contracts = attach(self.transactor, deployment)
        tokens = TokenClient(self.transactor, contracts["NoosToken"])
        self.transactor.contracts = contracts
        self._attached = _Attached(
            deployment=deployment,
            tokens=tokens,
            escrows=EscrowClient(
                self.transactor,
                contracts["TaskEscrow"],
                tokens,
                since_block=deployment.block_number,
            ),
            registry=RegistryClient(
                self.transactor, contracts["AgentRegistry"], since_block=deployment.block_number
            ),
            channels=ChannelClient(self.transactor, contracts["PaymentChannel"], tokens),
        )

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
        owner = Web3.to_checksum_address(owner) if owner else self.address
        deployment = deploy_contracts(
            self.transactor,
            owner,
            grace_period_s=grace_period_s,
            arbitration_period_s=arbitration_period_s,
            arbiter=owner if arbiter == OWNER_ARBITER else arbiter,
        )
        self.use(deployment)
        if owner != self.address:
            self.tokens.transfer_ownership(owner)
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

    # ------------------------------------------------------------------ one client per contract

    @property
    def tokens(self) -> TokenClient:
        """``NoosToken``: balances, allowances, mints, transfers, permits."""
        return self._contracts().tokens

    @property
    def escrows(self) -> EscrowClient:
        """``TaskEscrow``: one escrow per task, from open to release, claim, refund or dispute."""
        return self._contracts().escrows

    @property
    def registry(self) -> RegistryClient:
        """``AgentRegistry``: agent identities and their on-chain feedback."""
        return self._contracts().registry

    @property
    def channels(self) -> ChannelClient:
        """``PaymentChannel``: a deposit paid out by off-chain vouchers."""
        return self._contracts().channels

    def _contracts(self) -> _Attached:
        if self._attached is None:
            raise LedgerError("no deployment: call deploy_all() or use(Deployment.load(...))")
        return self._attached
