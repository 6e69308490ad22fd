// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ITaskEscrow} from "./ITaskEscrow.sol";

/// @title AgentRegistry
/// @notice On-chain identity and reputation for agents, in the spirit of ERC-8004: each agent is an
///         ERC-721 token pointing at its signed Agent Card (URI + hash) and its libp2p peer id, and
///         requesters rate agents after a task settled through the `TaskEscrow`.
/// @dev Feedback is only accepted from the requester of a settled escrow whose payee is the agent's
///      current owner and in which the agent committed a result on-chain (so the agent took part in the
///      task; a requester cannot rate an agent it merely named in an escrow). One feedback per task id.
///
///      Identity: every entry carries `peerProof`, the hosting node's Ed25519 signature over (chain id,
///      this registry, the owner's address, the peer id, the agent name) (format: noosphere's
///      `ledger/registry_proof.py`). The EVM has no Ed25519 precompile, so the contract only stores the
///      proof; readers verify it and ignore entries whose proof fails. Peer ids are deliberately not
///      unique here: a stranger's entry naming someone else's peer id cannot block the real one, and
///      readers tell them apart by the proof. A proof covers the owner, so an entry transferred to
///      another account reads as unproven until its new owner `update`s it with a fresh proof.
contract AgentRegistry is ERC721 {
    /// @notice What the registry stores per agent.
    struct Agent {
        string cardURI; // where the agent's signed Agent Card can be fetched
        bytes32 cardHash; // hash of the card document at `cardURI`
        string peerId; // libp2p peer id of the node hosting the agent (12D3KooW...)
        string agentName; // the agent's id on its node (the card's agentId)
        bytes peerProof; // the node key's signature binding owner, peer id and agent name (unverified here)
    }

    /// @notice One piece of feedback, keyed by the task it rates.
    struct Feedback {
        uint256 agentId; // 0 = no feedback for this task
        address client; // the requester who gave it
        uint8 score; // 0..100
        uint64 timestamp; // block time it was recorded
    }

    /// @notice The escrow whose settled tasks authorize feedback.
    ITaskEscrow public immutable escrow;

    /// @notice Highest score a feedback may carry.
    uint8 public constant MAX_SCORE = 100;
    /// @notice Longest peer id, agent name or proof accepted (bytes).
    uint256 public constant MAX_FIELD_BYTES = 128;

    uint256 private _lastAgentId;
    mapping(uint256 agentId => Agent) private _agents;
    mapping(bytes32 taskId => Feedback) private _feedback;
    mapping(uint256 agentId => uint256) private _feedbackCount;
    mapping(uint256 agentId => uint256) private _scoreSum;

    /// @notice A new agent identity was minted to `owner`.
    event AgentRegistered(
        uint256 indexed agentId,
        address indexed owner,
        string cardURI,
        bytes32 cardHash,
        string peerId,
        string agentName,
        bytes peerProof
    );
    /// @notice The owner changed the agent's card, peer id, name or proof.
    event AgentUpdated(
        uint256 indexed agentId, string cardURI, bytes32 cardHash, string peerId, string agentName, bytes peerProof
    );
    /// @notice `client` rated `agentId` for `taskId`; `uri` points at the off-chain feedback document.
    event FeedbackGiven(uint256 indexed agentId, bytes32 indexed taskId, address indexed client, uint8 score, string uri);

    /// @notice A card URI, peer id, agent name or proof is empty, or the card hash is zero.
    error EmptyField();
    /// @notice A peer id, agent name or proof is longer than `MAX_FIELD_BYTES`.
    error FieldTooLong();
    /// @notice The caller does not own `agentId`.
    error NotAgentOwner(uint256 agentId, address caller);
    /// @notice The score is above `MAX_SCORE`.
    error ScoreOutOfRange(uint8 score);
    /// @notice Feedback for `taskId` was already recorded.
    error FeedbackExists(bytes32 taskId);
    /// @notice The caller is not the requester of the escrow under `taskId`.
    error NotTaskRequester(bytes32 taskId, address caller);
    /// @notice The escrow under `taskId` did not pay to `agentId`'s owner.
    error AgentMismatch(bytes32 taskId, uint256 agentId);
    /// @notice The escrow under `taskId` has not settled yet.
    error TaskNotSettled(bytes32 taskId);
    /// @notice The agent never committed a result for `taskId`.
    error NoCommittedResult(bytes32 taskId);

    /// @param escrow_ The `TaskEscrow` consulted before accepting feedback.
    constructor(ITaskEscrow escrow_) ERC721("Noosphere Agent", "NOOSAGENT") {
        escrow = escrow_;
    }

    /// @notice Mints a new agent identity to the caller.
    /// @param cardURI Where the agent's signed Agent Card can be fetched (non-empty).
    /// @param cardHash Hash of that card document (non-zero).
    /// @param peerId libp2p peer id of the hosting node (non-empty).
    /// @param agentName The agent's id on its node (non-empty).
    /// @param peerProof The node key's signature over (chain id, this registry, caller, peer id, agent
    ///        name); stored as given, verified by readers (non-empty).
    /// @return agentId The new agent's token id (ids start at 1).
    function register(
        string calldata cardURI,
        bytes32 cardHash,
        string calldata peerId,
        string calldata agentName,
        bytes calldata peerProof
    ) external returns (uint256 agentId) {
        _requireFields(cardURI, cardHash, peerId, agentName, peerProof);
        agentId = ++_lastAgentId;
        _agents[agentId] =
            Agent({cardURI: cardURI, cardHash: cardHash, peerId: peerId, agentName: agentName, peerProof: peerProof});
        emit AgentRegistered(agentId, msg.sender, cardURI, cardHash, peerId, agentName, peerProof);
        // _mint, not _safeMint: no callback into the caller, which chose to register itself.
        _mint(msg.sender, agentId);
    }

    /// @notice Replaces the agent's card pointer, peer id, name and proof; only the agent's owner may
    ///         call it (also how a new owner re-proves a transferred identity).
    /// @param agentId The agent to update.
    /// @param cardURI New card location (non-empty).
    /// @param cardHash New card hash (non-zero).
    /// @param peerId New peer id (non-empty).
    /// @param agentName New agent name (non-empty).
    /// @param peerProof New proof over (chain id, this registry, owner, peer id, agent name).
    function update(
        uint256 agentId,
        string calldata cardURI,
        bytes32 cardHash,
        string calldata peerId,
        string calldata agentName,
        bytes calldata peerProof
    ) external {
        if (_requireOwned(agentId) != msg.sender) revert NotAgentOwner(agentId, msg.sender);
        _requireFields(cardURI, cardHash, peerId, agentName, peerProof);
        _agents[agentId] =
            Agent({cardURI: cardURI, cardHash: cardHash, peerId: peerId, agentName: agentName, peerProof: peerProof});
        emit AgentUpdated(agentId, cardURI, cardHash, peerId, agentName, peerProof);
    }

    /// @notice Rates `agentId` for the settled task `taskId`; only that task's requester may do so, once.
    /// @param agentId The agent being rated; its owner must be the escrow's agent (payee).
    /// @param taskId The escrow task the rating is about.
    /// @param score 0 (worst) .. 100 (best).
    /// @param uri Optional pointer to an off-chain feedback document (may be empty).
    function giveFeedback(uint256 agentId, bytes32 taskId, uint8 score, string calldata uri) external {
        if (score > MAX_SCORE) revert ScoreOutOfRange(score);
        if (_feedback[taskId].agentId != 0) revert FeedbackExists(taskId);
        address agentOwner = _requireOwned(agentId);
        if (escrow.requesterOf(taskId) != msg.sender) revert NotTaskRequester(taskId, msg.sender);
        if (escrow.agentOf(taskId) != agentOwner) revert AgentMismatch(taskId, agentId);
        if (!escrow.isSettled(taskId)) revert TaskNotSettled(taskId);
        if (escrow.resultHashOf(taskId) == bytes32(0)) revert NoCommittedResult(taskId);

        _feedback[taskId] =
            Feedback({agentId: agentId, client: msg.sender, score: score, timestamp: uint64(block.timestamp)});
        _feedbackCount[agentId] += 1;
        _scoreSum[agentId] += score;
        emit FeedbackGiven(agentId, taskId, msg.sender, score, uri);
    }

    /// @notice The agent's card pointer, peer id, name and (unverified) proof.
    /// @param agentId The agent to read (reverts if it does not exist).
    /// @return The stored record.
    function getAgent(uint256 agentId) external view returns (Agent memory) {
        _requireOwned(agentId);
        return _agents[agentId];
    }

    /// @notice The feedback recorded for `taskId` (agentId 0 if none).
    /// @param taskId The rated task.
    /// @return The stored feedback.
    function getFeedback(bytes32 taskId) external view returns (Feedback memory) {
        return _feedback[taskId];
    }

    /// @notice How many feedbacks `agentId` has received.
    /// @param agentId The agent.
    /// @return The number of ratings.
    function feedbackCount(uint256 agentId) external view returns (uint256) {
        return _feedbackCount[agentId];
    }

    /// @notice The sum of all scores `agentId` has received (for exact off-chain averages).
    /// @param agentId The agent.
    /// @return The score total.
    function scoreSum(uint256 agentId) external view returns (uint256) {
        return _scoreSum[agentId];
    }

    /// @notice The agent's average score times 100 (8750 means 87.50), rounded down; 0 with no feedback.
    /// @param agentId The agent.
    /// @return The scaled average.
    function averageScoreX100(uint256 agentId) external view returns (uint256) {
        uint256 count = _feedbackCount[agentId];
        return count == 0 ? 0 : (_scoreSum[agentId] * 100) / count;
    }

    /// @notice The number of agents registered so far (also the highest agent id).
    /// @return The count.
    function totalAgents() external view returns (uint256) {
        return _lastAgentId;
    }

    /// @notice ERC-721 metadata URI of the agent: its Agent Card location.
    /// @param agentId The agent.
    /// @return The card URI.
    function tokenURI(uint256 agentId) public view override returns (string memory) {
        _requireOwned(agentId);
        return _agents[agentId].cardURI;
    }

    function _requireFields(
        string calldata cardURI,
        bytes32 cardHash,
        string calldata peerId,
        string calldata agentName,
        bytes calldata peerProof
    ) private pure {
        if (
            bytes(cardURI).length == 0 || cardHash == bytes32(0) || bytes(peerId).length == 0
                || bytes(agentName).length == 0 || peerProof.length == 0
        ) revert EmptyField();
        if (
            bytes(peerId).length > MAX_FIELD_BYTES || bytes(agentName).length > MAX_FIELD_BYTES
                || peerProof.length > MAX_FIELD_BYTES
        ) revert FieldTooLong();
    }
}
