// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ITaskEscrow} from "./ITaskEscrow.sol";

/// @title TaskEscrow
/// @notice Holds a requester's payment for one task until the task settles, exactly once:
///         - `release` by the requester pays the agent at any time before settlement;
///         - `claim` by the agent pays the agent once `deadline + gracePeriod` has passed, if the agent
///           committed a result hash by the deadline and the requester stayed silent;
///         - `dispute` by the requester of an escrow with an arbiter, while the result is committed and
///           `deadline + gracePeriod` has not passed, blocks `claim` until the arbiter decides;
///         - `resolve` by the optional arbiter (fixed at open) settles either way before anyone else does;
///         - `refund` returns the funds to the requester once the deadline has passed without a commit,
///           or once a dispute has waited `arbitrationPeriod` without the arbiter's decision.
///         Who decides a dispute: the arbiter named at open, which both sides accepted (the requester
///         named it, the agent took the task). A silent arbiter lets the funds go back to the
///         requester: nothing moves to a party unless someone entitled to decide says so.
/// @dev Amounts are in units of the single ERC-20 `token` fixed at deployment; the token must transfer
///      exact amounts (no fee-on-transfer or rebasing tokens). State is written before any token call
///      (checks-effects-interactions) and every function that moves funds is `nonReentrant`.
contract TaskEscrow is ITaskEscrow, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Lifecycle of an escrow. `Released` .. `ResolvedForRequester` are final; `Disputed` comes
    ///         last only so that the earlier values keep their numbers.
    enum Status {
        None, // no escrow under this task id
        Open, // funded, the agent has not committed a result yet
        Committed, // the agent committed a result hash before the deadline
        Released, // final: the requester paid the agent
        Claimed, // final: the agent collected after deadline + grace period
        Refunded, // final: funds returned to the requester (no commit in time, or a silent arbiter)
        ResolvedForAgent, // final: the arbiter paid the agent
        ResolvedForRequester, // final: the arbiter returned the funds to the requester
        Disputed // the requester contested the committed result; only the arbiter (or time) settles
    }

    /// @notice One escrow, as returned by `getEscrow`.
    struct Escrow {
        address requester; // funds the escrow; receives refunds
        uint64 deadline; // unix seconds: last moment the agent may commit a result
        Status status;
        address agent; // receives the payment
        uint64 committedAt; // block timestamp of the agent's commit (0 if none)
        address arbiter; // may resolve the escrow either way; address(0) = no arbiter
        uint64 disputedAt; // block timestamp of the requester's dispute (0 if none)
        uint256 amount; // token units held for this task
        bytes32 resultHash; // the agent's commitment to its result (0 if none)
    }

    /// @notice The ERC-20 token every escrow is denominated in.
    IERC20 public immutable token;

    /// @notice Seconds after the deadline during which the requester can still release or dispute (or
    ///         have the arbiter resolve) before a committed agent may claim on its own.
    uint64 public immutable gracePeriod;

    /// @notice Seconds the arbiter has to resolve a dispute; after that the requester's funds can be
    ///         refunded by anyone.
    uint64 public immutable arbitrationPeriod;

    mapping(bytes32 taskId => Escrow) private _escrows;

    /// @notice A requester funded an escrow for `taskId`.
    event EscrowOpened(
        bytes32 indexed taskId,
        address indexed requester,
        address indexed agent,
        address arbiter,
        uint256 amount,
        uint64 deadline
    );
    /// @notice The agent committed `resultHash` for `taskId` before the deadline.
    event ResultCommitted(bytes32 indexed taskId, address indexed agent, bytes32 resultHash);
    /// @notice The requester released the escrow to the agent.
    event EscrowReleased(bytes32 indexed taskId, address indexed agent, uint256 amount);
    /// @notice The agent claimed the escrow after the deadline and grace period.
    event EscrowClaimed(bytes32 indexed taskId, address indexed agent, uint256 amount);
    /// @notice The requester contested the agent's committed result: `deliveredHash` is the hash of what
    ///         it received (0 if nothing arrived), `reason` says why, for the arbiter.
    event EscrowDisputed(bytes32 indexed taskId, address indexed requester, bytes32 deliveredHash, string reason);
    /// @notice The escrow went back to the requester (no commit by the deadline, or a dispute the
    ///         arbiter left unanswered for `arbitrationPeriod`).
    event EscrowRefunded(bytes32 indexed taskId, address indexed requester, uint256 amount);
    /// @notice The arbiter settled the escrow; `recipient` received `amount`.
    event EscrowResolved(
        bytes32 indexed taskId, address indexed arbiter, bool payAgent, address indexed recipient, uint256 amount
    );

    /// @notice `taskId` is zero (reserved as "no task").
    error ZeroTaskId();
    /// @notice An escrow already exists (or existed) under `taskId`; task ids are never reused.
    error EscrowExists(bytes32 taskId);
    /// @notice No escrow exists under `taskId`.
    error EscrowNotFound(bytes32 taskId);
    /// @notice The agent address is zero or equal to the requester.
    error InvalidAgent(address agent);
    /// @notice The arbiter is the requester or the agent (an arbiter must be a third party).
    error InvalidArbiter(address arbiter);
    /// @notice The amount is zero.
    error ZeroAmount();
    /// @notice The deadline is not in the future.
    error DeadlineNotInFuture(uint64 deadline, uint256 nowTs);
    /// @notice The result hash is zero (reserved as "not committed").
    error ZeroResultHash();
    /// @notice The caller is not the account this action is reserved for.
    error Unauthorized(address caller);
    /// @notice The escrow is not in a state that allows this action.
    error InvalidStatus(bytes32 taskId, Status status);
    /// @notice The deadline has passed, so the agent can no longer commit.
    error DeadlinePassed(bytes32 taskId, uint64 deadline);
    /// @notice It is too early for this action; it becomes possible after `availableAfter`.
    error TooEarly(bytes32 taskId, uint256 availableAfter);
    /// @notice The escrow has no arbiter.
    error NoArbiter(bytes32 taskId);
    /// @notice The permit failed and there is not enough allowance to fund the escrow anyway.
    error PermitFailed();
    /// @notice The dispute window (until `deadline + gracePeriod`) closed at `closedAt`.
    error DisputeWindowClosed(bytes32 taskId, uint256 closedAt);
    /// @notice A dispute reason longer than `MAX_REASON_BYTES`.
    error ReasonTooLong(uint256 length);

    /// @notice Longest dispute reason accepted (bytes); longer evidence belongs off chain.
    uint256 public constant MAX_REASON_BYTES = 1024;

    /// @param token_ The ERC-20 (with EIP-2612 permit for `openWithPermit`) that escrows hold.
    /// @param gracePeriod_ Seconds after the deadline before a committed agent may claim.
    /// @param arbitrationPeriod_ Seconds an arbiter has to resolve a dispute before it can be refunded.
    constructor(IERC20 token_, uint64 gracePeriod_, uint64 arbitrationPeriod_) {
        token = token_;
        gracePeriod = gracePeriod_;
        arbitrationPeriod = arbitrationPeriod_;
    }

    // ---------------------------------------------------------------- opening

    /// @notice Opens and funds an escrow for `taskId`, pulling `amount` from the caller (needs allowance).
    /// @param taskId Unique, non-zero task identifier (never reusable, even after settlement).
    /// @param agent The account paid when the task settles in the agent's favour.
    /// @param amount Token units to hold.
    /// @param deadline Unix time (seconds) by which the agent must commit its result.
    /// @param arbiter A third party allowed to resolve the escrow either way; address(0) for none.
    function open(bytes32 taskId, address agent, uint256 amount, uint64 deadline, address arbiter)
        external
        nonReentrant
    {
        _open(taskId, agent, amount, deadline, arbiter);
    }

    /// @notice Like `open`, but first approves this contract with the caller's EIP-2612 permit signature,
    ///         so funding needs no separate `approve` transaction.
    /// @dev If the permit was already used (e.g. front-run by someone relaying it), funding still
    ///      proceeds as long as the allowance suffices.
    /// @param taskId Unique, non-zero task identifier.
    /// @param agent The account paid when the task settles in the agent's favour.
    /// @param amount Token units to hold (also the permit's value).
    /// @param deadline Unix time (seconds) by which the agent must commit its result.
    /// @param arbiter A third party allowed to resolve the escrow either way; address(0) for none.
    /// @param permitDeadline The permit signature's expiry.
    /// @param v Permit signature recovery id.
    /// @param r Permit signature r.
    /// @param s Permit signature s.
    function openWithPermit(
        bytes32 taskId,
        address agent,
        uint256 amount,
        uint64 deadline,
        address arbiter,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant {
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, permitDeadline, v, r, s) {}
        catch {
            if (token.allowance(msg.sender, address(this)) < amount) revert PermitFailed();
        }
        _open(taskId, agent, amount, deadline, arbiter);
    }

    function _open(bytes32 taskId, address agent, uint256 amount, uint64 deadline, address arbiter) private {
        if (taskId == bytes32(0)) revert ZeroTaskId();
        if (_escrows[taskId].status != Status.None) revert EscrowExists(taskId);
        if (agent == address(0) || agent == msg.sender) revert InvalidAgent(agent);
        if (arbiter != address(0) && (arbiter == msg.sender || arbiter == agent)) revert InvalidArbiter(arbiter);
        if (amount == 0) revert ZeroAmount();
        if (deadline <= block.timestamp) revert DeadlineNotInFuture(deadline, block.timestamp);

        _escrows[taskId] = Escrow({
            requester: msg.sender,
            deadline: deadline,
            status: Status.Open,
            agent: agent,
            committedAt: 0,
            arbiter: arbiter,
            disputedAt: 0,
            amount: amount,
            resultHash: bytes32(0)
        });
        emit EscrowOpened(taskId, msg.sender, agent, arbiter, amount, deadline);

        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    // ------------------------------------------------------------ transitions

    /// @notice The agent commits to its result (e.g. a hash of the sealed result payload) before the
    ///         deadline, which protects its right to `claim` if the requester stays silent.
    /// @param taskId The escrow's task identifier.
    /// @param resultHash Non-zero commitment to the delivered result.
    function commitResult(bytes32 taskId, bytes32 resultHash) external {
        Escrow storage e = _existing(taskId);
        if (msg.sender != e.agent) revert Unauthorized(msg.sender);
        if (e.status != Status.Open) revert InvalidStatus(taskId, e.status);
        if (block.timestamp > e.deadline) revert DeadlinePassed(taskId, e.deadline);
        if (resultHash == bytes32(0)) revert ZeroResultHash();

        e.status = Status.Committed;
        e.resultHash = resultHash;
        e.committedAt = uint64(block.timestamp);
        emit ResultCommitted(taskId, msg.sender, resultHash);
    }

    /// @notice The requester accepts the work and pays the agent (possible any time before settlement).
    /// @param taskId The escrow's task identifier.
    function release(bytes32 taskId) external nonReentrant {
        Escrow storage e = _existing(taskId);
        if (msg.sender != e.requester) revert Unauthorized(msg.sender);
        _requireUnsettled(taskId, e.status);

        e.status = Status.Released;
        (address agent, uint256 amount) = (e.agent, e.amount);
        emit EscrowReleased(taskId, agent, amount);

        token.safeTransfer(agent, amount);
    }

    /// @notice The agent collects the payment after `deadline + gracePeriod` if it committed a result in
    ///         time and neither the requester nor the arbiter settled (or the requester disputed) the
    ///         escrow meanwhile.
    /// @param taskId The escrow's task identifier.
    function claim(bytes32 taskId) external nonReentrant {
        Escrow storage e = _existing(taskId);
        if (msg.sender != e.agent) revert Unauthorized(msg.sender);
        if (e.status != Status.Committed) revert InvalidStatus(taskId, e.status);
        uint256 claimableAfter = uint256(e.deadline) + gracePeriod;
        if (block.timestamp <= claimableAfter) revert TooEarly(taskId, claimableAfter);

        e.status = Status.Claimed;
        uint256 amount = e.amount;
        emit EscrowClaimed(taskId, msg.sender, amount);

        token.safeTransfer(msg.sender, amount);
    }

    /// @notice The requester contests the agent's committed result (junk, or not what was delivered):
    ///         `claim` is blocked until the arbiter resolves, or the funds are refunded after
    ///         `arbitrationPeriod` of arbiter silence. Only escrows with an arbiter can be disputed, only
    ///         while Committed and no later than `deadline + gracePeriod` (the moment `claim` opens).
    /// @param taskId The escrow's task identifier.
    /// @param deliveredHash The hash of the result the requester received (0 if none arrived).
    /// @param reason Why, for the arbiter (at most `MAX_REASON_BYTES`; evidence itself stays off chain).
    function dispute(bytes32 taskId, bytes32 deliveredHash, string calldata reason) external nonReentrant {
        Escrow storage e = _existing(taskId);
        if (msg.sender != e.requester) revert Unauthorized(msg.sender);
        if (e.arbiter == address(0)) revert NoArbiter(taskId);
        if (e.status != Status.Committed) revert InvalidStatus(taskId, e.status);
        uint256 closedAt = uint256(e.deadline) + gracePeriod;
        if (block.timestamp > closedAt) revert DisputeWindowClosed(taskId, closedAt);
        if (bytes(reason).length > MAX_REASON_BYTES) revert ReasonTooLong(bytes(reason).length);

        e.status = Status.Disputed;
        e.disputedAt = uint64(block.timestamp);
        emit EscrowDisputed(taskId, msg.sender, deliveredHash, reason);
    }

    /// @notice Returns the funds to the requester when the deadline passed without a result commit, or
    ///         when a dispute waited more than `arbitrationPeriod` without the arbiter's decision.
    /// @dev Anyone may trigger it (the funds can only go to the requester).
    /// @param taskId The escrow's task identifier.
    function refund(bytes32 taskId) external nonReentrant {
        Escrow storage e = _existing(taskId);
        uint256 availableAfter;
        if (e.status == Status.Open) {
            availableAfter = e.deadline;
        } else if (e.status == Status.Disputed) {
            availableAfter = uint256(e.disputedAt) + arbitrationPeriod;
        } else {
            revert InvalidStatus(taskId, e.status);
        }
        if (block.timestamp <= availableAfter) revert TooEarly(taskId, availableAfter);

        e.status = Status.Refunded;
        (address requester, uint256 amount) = (e.requester, e.amount);
        emit EscrowRefunded(taskId, requester, amount);

        token.safeTransfer(requester, amount);
    }

    /// @notice The arbiter settles an escrow (normally a disputed one): pays the agent or returns the
    ///         funds to the requester. Possible any time before another settlement.
    /// @param taskId The escrow's task identifier.
    /// @param payAgent True to pay the agent, false to refund the requester.
    function resolve(bytes32 taskId, bool payAgent) external nonReentrant {
        Escrow storage e = _existing(taskId);
        if (e.arbiter == address(0)) revert NoArbiter(taskId);
        if (msg.sender != e.arbiter) revert Unauthorized(msg.sender);
        _requireUnsettled(taskId, e.status);

        e.status = payAgent ? Status.ResolvedForAgent : Status.ResolvedForRequester;
        address recipient = payAgent ? e.agent : e.requester;
        uint256 amount = e.amount;
        emit EscrowResolved(taskId, msg.sender, payAgent, recipient, amount);

        token.safeTransfer(recipient, amount);
    }

    // ------------------------------------------------------------------ views

    /// @notice The full record of the escrow under `taskId` (all zero if none exists).
    /// @param taskId The escrow's task identifier.
    /// @return The escrow record.
    function getEscrow(bytes32 taskId) external view returns (Escrow memory) {
        return _escrows[taskId];
    }

    /// @inheritdoc ITaskEscrow
    function requesterOf(bytes32 taskId) external view returns (address) {
        return _escrows[taskId].requester;
    }

    /// @inheritdoc ITaskEscrow
    function agentOf(bytes32 taskId) external view returns (address) {
        return _escrows[taskId].agent;
    }

    /// @inheritdoc ITaskEscrow
    function resultHashOf(bytes32 taskId) external view returns (bytes32) {
        return _escrows[taskId].resultHash;
    }

    /// @inheritdoc ITaskEscrow
    function isSettled(bytes32 taskId) external view returns (bool) {
        return _isFinal(_escrows[taskId].status);
    }

    /// @inheritdoc ITaskEscrow
    function isPaidToAgent(bytes32 taskId) external view returns (bool) {
        Status s = _escrows[taskId].status;
        return s == Status.Released || s == Status.Claimed || s == Status.ResolvedForAgent;
    }

    // -------------------------------------------------------------- internals

    function _existing(bytes32 taskId) private view returns (Escrow storage e) {
        e = _escrows[taskId];
        if (e.status == Status.None) revert EscrowNotFound(taskId);
    }

    function _requireUnsettled(bytes32 taskId, Status status) private pure {
        if (status == Status.None || _isFinal(status)) revert InvalidStatus(taskId, status);
    }

    function _isFinal(Status status) private pure returns (bool) {
        return status >= Status.Released && status != Status.Disputed;
    }
}
