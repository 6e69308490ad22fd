"""Settle (setting up): where the four noosphere contracts live on one chain, how they are
deployed from the compiled artifacts, and the checks before a client attaches to them (right
chain, code at every address, built from these sources)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from web3 import Web3
from web3.contract import Contract

from ._transactions import CONTRACT_NAMES, LedgerError, Transactor, checksum, load_artifact

DEPLOYMENTS_DIRNAME = "deployments"
DEFAULT_GRACE_PERIOD_S = 3600
#: How long an arbiter has to resolve a dispute before the requester's funds can be refunded.
DEFAULT_ARBITRATION_PERIOD_S = 3 * 86_400
#: ``deploy_all(arbiter=OWNER_ARBITER)``: the deployment's default arbiter is the token owner.
OWNER_ARBITER = "owner"


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

    def addresses(self) -> dict[str, str]:
        """Contract name -> address."""
        return {
            "NoosToken": self.token,
            "TaskEscrow": self.escrow,
            "AgentRegistry": self.registry,
            "PaymentChannel": self.channel,
        }


def attach(tx: Transactor, deployment: Deployment) -> dict[str, Contract]:
    """The deployment's contracts (name -> contract) after checking they belong to the
    transactor's chain, have code, and were built from this noosphere's sources."""
    if deployment.chain_id != tx.chain_id:
        raise LedgerError(
            f"deployment is for chain {deployment.chain_id}, endpoint is chain {tx.chain_id}"
        )
    addresses = deployment.addresses()
    for name, address in addresses.items():
        if not tx.w3.eth.get_code(Web3.to_checksum_address(address)):
            raise LedgerError(f"{name} has no code at {address} on chain {tx.chain_id}")
    stale = sorted(
        name
        for name in CONTRACT_NAMES
        if deployment.source_hashes.get(name) != load_artifact(name)["sourceHash"]
    )
    if stale:
        raise LedgerError(
            f"the deployment on chain {tx.chain_id} runs other versions of {', '.join(stale)}"
            " than this noosphere: deploy again (noosphere ledger deploy)"
        )
    return {
        name: tx.w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=load_artifact(name)["abi"]
        )
        for name, address in addresses.items()
    }


def deploy_contracts(
    tx: Transactor,
    owner: str,
    *,
    grace_period_s: int,
    arbitration_period_s: int,
    arbiter: str | None,
) -> Deployment:
    """Deploys token, escrow, registry and channel from the transactor's account (the token's
    ownership stays with it: the caller hands it to ``owner``); ``arbiter`` is the recorded
    default arbiter (an address or None)."""
    start_block = tx.w3.eth.block_number
    token = _deploy(tx, "NoosToken")
    escrow = _deploy(tx, "TaskEscrow", token, grace_period_s, arbitration_period_s)
    registry = _deploy(tx, "AgentRegistry", escrow)
    channel = _deploy(tx, "PaymentChannel", token)
    return Deployment(
        chain_id=tx.chain_id,
        token=token,
        escrow=escrow,
        registry=registry,
        channel=channel,
        deployer=tx.address,
        owner=owner,
        grace_period_s=grace_period_s,
        arbitration_period_s=arbitration_period_s,
        arbiter=checksum(arbiter) if arbiter else None,
        block_number=start_block + 1,
        source_hashes={n: load_artifact(n)["sourceHash"] for n in CONTRACT_NAMES},
    )


def _deploy(tx: Transactor, name: str, *args: Any) -> str:
    artifact = load_artifact(name)
    factory = tx.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = tx.transact(factory.constructor(*args), label=f"deploy {name}")
    address = receipt["contractAddress"]
    if address is None:
        raise LedgerError(f"deploy {name}: no contract address in receipt")
    return str(address)
