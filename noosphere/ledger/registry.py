"""Settle (identity and reputation on the ledger): the ``AgentRegistry`` contract as seen by one
account: agent identities minted to their owner (with the node key's proof, see
``registry_proof``), their on-chain feedback tied to a settled escrow, and the check that an entry
is the proven identity of the agent it names."""

from __future__ import annotations

from hexbytes import HexBytes
from pydantic import BaseModel
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from ._transactions import LedgerError, Transactor, hex0x, logs_in_ranges, to_bytes32
from .registry_proof import RegistryEntry, binding_problem

_FEEDBACK_GIVEN = "FeedbackGiven(uint256,bytes32,address,uint8,string)"


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


class RegistryClient:
    """``AgentRegistry`` calls signed by the transactor's account; events are read from
    ``since_block`` (the deployment's first block) on."""

    def __init__(self, tx: Transactor, contract: Contract, *, since_block: int = 0) -> None:
        self.tx = tx
        self.contract = contract
        self.since_block = since_block

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def register(
        self, card_uri: str, card_hash: bytes, peer_id: str, agent_name: str, peer_proof: bytes
    ) -> int:
        """Mints an agent identity to this account; returns its agent id. ``peer_proof`` is the
        node key's signature (``registry_proof.sign_registration``); the registry stores it
        unchecked, readers verify it."""
        fn = self.contract.functions.register(card_uri, card_hash, peer_id, agent_name, peer_proof)
        receipt = self.tx.transact(fn)
        events = self.contract.events.AgentRegistered().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise LedgerError("AgentRegistry.register: no AgentRegistered event in the receipt")
        return int(events[0]["args"]["agentId"])

    def update(
        self,
        agent_id: int,
        card_uri: str,
        card_hash: bytes,
        peer_id: str,
        agent_name: str,
        peer_proof: bytes,
    ) -> TxReceipt:
        fn = self.contract.functions.update(
            agent_id, card_uri, card_hash, peer_id, agent_name, peer_proof
        )
        return self.tx.transact(fn)

    def get(self, agent_id: int) -> RegistryEntry:
        """The registry entry ``agent_id`` with its current owner (``LedgerError`` if none)."""
        card_uri, card_hash, peer_id, agent_name, peer_proof = self.tx.call(
            self.contract.functions.getAgent(agent_id)
        )
        owner = self.tx.call(self.contract.functions.ownerOf(agent_id))
        return RegistryEntry(
            agent_id=agent_id,
            owner=str(owner),
            card_uri=card_uri,
            card_hash=hex0x(card_hash),
            peer_id=peer_id,
            agent_name=agent_name,
            peer_proof=bytes(peer_proof),
        )

    def total(self) -> int:
        return int(self.tx.call(self.contract.functions.totalAgents()))

    def registration_problem(
        self, agent_id: int, *, peer_id: str, agent_name: str, owner: str | None = None
    ) -> str | None:
        """Why registry entry ``agent_id`` is not the proven identity of ``agent_name`` on
        ``peer_id`` (owned by ``owner`` if given); None if it is."""
        try:
            entry = self.get(agent_id)
        except LedgerError as exc:
            return f"registry entry #{agent_id} cannot be read: {exc}"
        return binding_problem(
            entry,
            self.tx.chain_id,
            self.address,
            peer_id=peer_id,
            agent_name=agent_name,
            owner=owner,
        )

    def give_feedback(
        self, agent_id: int, task_id: str | bytes, score: int, uri: str = ""
    ) -> TxReceipt:
        fn = self.contract.functions.giveFeedback(agent_id, to_bytes32(task_id), score, uri)
        return self.tx.transact(fn)

    def feedback_count(self, agent_id: int) -> int:
        return int(self.tx.call(self.contract.functions.feedbackCount(agent_id)))

    def average_score_x100(self, agent_id: int) -> int:
        return int(self.tx.call(self.contract.functions.averageScoreX100(agent_id)))

    def feedback_given(
        self, from_block: int | None = None, to_block: int | None = None
    ) -> list[FeedbackEntry]:
        """Every ``FeedbackGiven`` event from ``from_block`` (default: the deployment block) to
        ``to_block`` (default: the latest), oldest first, with its block's time."""
        event = self.contract.events.FeedbackGiven()
        topic0 = HexBytes(Web3.keccak(text=_FEEDBACK_GIVEN))
        start = self.since_block if from_block is None else from_block
        times: dict[int, int] = {}
        found: list[FeedbackEntry] = []
        for logs in logs_in_ranges(self.tx.w3, self.address, [topic0], start, to_block):
            for log in logs:
                args = event.process_log(log)["args"]
                block = int(log["blockNumber"])
                if block not in times:
                    times[block] = int(self.tx.w3.eth.get_block(block)["timestamp"])
                found.append(
                    FeedbackEntry(
                        agent_id=int(args["agentId"]),
                        task_id=hex0x(bytes(args["taskId"])),
                        client=str(args["client"]),
                        score=int(args["score"]),
                        uri=str(args["uri"]),
                        block=block,
                        timestamp=times[block],
                    )
                )
        return found
