// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {HookToken, ITokenHooks} from "./HookToken.sol";

/// @title ReentrantAccount (TEST ONLY)
/// @notice A malicious contract account (requester, agent, arbiter, channel sender or recipient).
///         Its owner drives it with `exec`; when armed, the next token hook re-enters `target` with
///         `payload` once (e.g. `release`/`claim`/`refund`/`close` again, or `exec` on a colluding
///         ReentrantAccount) while the victim is still paying, and records what happened:
///         - `probeResult`: a view call on the victim made at that moment (which state it exposes);
///         - `reentrySucceeded` / `reentryResult`: the re-entry's outcome and return or revert data.
///         With `bubble` the re-entry's revert is propagated (the whole payment reverts); without it
///         the failure is swallowed and the outer payment completes.
contract ReentrantAccount is ITokenHooks {
    address public immutable owner;
    HookToken public immutable token;
    /// @notice A colluding contract that may also call `exec`.
    address public accomplice;

    address public target;
    bytes public payload;
    bool public bubble;
    bool public onSend;
    address public probeTarget;
    bytes public probePayload;

    uint256 public hookCount;
    uint256 public received;
    bool public attempted;
    bool public reentrySucceeded;
    bytes public reentryResult;
    bytes public probeResult;

    error NotAllowed(address caller);

    constructor(HookToken token_) {
        owner = msg.sender;
        token = token_;
        token_.registerHooks();
    }

    function setAccomplice(address accomplice_) external {
        if (msg.sender != owner) revert NotAllowed(msg.sender);
        accomplice = accomplice_;
    }

    /// @notice Arms a one-shot re-entry for the next hook (`onSend`: the sender hook, else the receiver's).
    function arm(
        address target_,
        bytes calldata payload_,
        bool bubble_,
        bool onSend_,
        address probeTarget_,
        bytes calldata probePayload_
    ) external {
        if (msg.sender != owner) revert NotAllowed(msg.sender);
        (target, payload, bubble, onSend) = (target_, payload_, bubble_, onSend_);
        (probeTarget, probePayload) = (probeTarget_, probePayload_);
        (attempted, reentrySucceeded) = (false, false);
        delete reentryResult;
        delete probeResult;
    }

    /// @notice Calls `to` with `data` as this account; a revert is propagated with its data.
    function exec(address to, bytes calldata data) external returns (bytes memory ret) {
        if (msg.sender != owner && msg.sender != accomplice) revert NotAllowed(msg.sender);
        bool ok;
        (ok, ret) = to.call(data);
        if (!ok) _revertWith(ret);
    }

    function tokensToSend(address, address, uint256) external {
        if (msg.sender != address(token)) revert NotAllowed(msg.sender);
        if (onSend) _attack();
    }

    function tokensReceived(address, address, uint256 amount) external {
        if (msg.sender != address(token)) revert NotAllowed(msg.sender);
        hookCount += 1;
        received += amount;
        if (!onSend) _attack();
    }

    function _attack() private {
        address to = target;
        if (to == address(0)) return;
        target = address(0); // one shot
        if (probeTarget != address(0)) {
            (bool seen, bytes memory state) = probeTarget.staticcall(probePayload);
            if (!seen) _revertWith(state);
            probeResult = state;
        }
        attempted = true;
        (bool ok, bytes memory ret) = to.call(payload);
        reentrySucceeded = ok;
        reentryResult = ret;
        if (!ok && bubble) _revertWith(ret);
    }

    function _revertWith(bytes memory data) private pure {
        assembly {
            revert(add(data, 32), mload(data))
        }
    }
}
