// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title NaiveEscrow (TEST ONLY, DELIBERATELY VULNERABLE)
/// @notice The positive control for the reentrancy tests: `release` pays before it records the
///         settlement and has no reentrancy guard, so a colluding agent re-entering it through a token
///         hook is paid twice. The same attack against `TaskEscrow` must fail.
contract NaiveEscrow {
    struct Entry {
        address requester;
        address agent;
        uint256 amount;
        bool settled;
    }

    IERC20 public immutable token;
    mapping(bytes32 taskId => Entry) public entries;

    constructor(IERC20 token_) {
        token = token_;
    }

    function open(bytes32 taskId, address agent, uint256 amount) external {
        require(entries[taskId].requester == address(0), "exists");
        entries[taskId] = Entry(msg.sender, agent, amount, false);
        require(token.transferFrom(msg.sender, address(this), amount), "transferFrom");
    }

    function release(bytes32 taskId) external {
        Entry storage e = entries[taskId];
        require(msg.sender == e.requester && !e.settled, "not releasable");
        require(token.transfer(e.agent, e.amount), "transfer"); // interaction first ...
        e.settled = true; // ... effect last: the bug
    }
}
