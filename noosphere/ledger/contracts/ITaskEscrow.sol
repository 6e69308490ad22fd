// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ITaskEscrow
/// @notice The read-only view of a task escrow that other contracts (the agent registry) rely on.
interface ITaskEscrow {
    /// @notice The account that opened (and funded) the escrow for `taskId`; address(0) if none exists.
    /// @param taskId The task identifier the escrow was opened under.
    /// @return The requester's address.
    function requesterOf(bytes32 taskId) external view returns (address);

    /// @notice The account that is paid if the escrow settles in the agent's favour; address(0) if none.
    /// @param taskId The task identifier the escrow was opened under.
    /// @return The agent's payout address.
    function agentOf(bytes32 taskId) external view returns (address);

    /// @notice The result hash the agent committed on-chain (bytes32(0) if it never committed).
    /// @param taskId The task identifier the escrow was opened under.
    /// @return The committed result hash.
    function resultHashOf(bytes32 taskId) external view returns (bytes32);

    /// @notice Whether the escrow reached a final state (released, claimed, refunded or resolved).
    /// @param taskId The task identifier the escrow was opened under.
    /// @return True once the escrowed funds have left the contract.
    function isSettled(bytes32 taskId) external view returns (bool);

    /// @notice Whether the escrow settled with the funds going to the agent.
    /// @param taskId The task identifier the escrow was opened under.
    /// @return True for released, claimed, and arbiter-resolved-for-the-agent escrows.
    function isPaidToAgent(bytes32 taskId) external view returns (bool);
}
