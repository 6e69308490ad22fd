// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice ERC-777-style hooks a holder opts into with `HookToken.registerHooks`.
interface ITokenHooks {
    /// @notice Called on the sender before its balance moves.
    function tokensToSend(address from, address to, uint256 amount) external;
    /// @notice Called on the recipient after its balance moved.
    function tokensReceived(address from, address to, uint256 amount) external;
}

/// @title HookToken (TEST ONLY)
/// @notice An ERC-20 that, like ERC-777 (and ERC-1363's receiver callback), hands control to the
///         sender before and to the recipient after every transfer, if that account registered for
///         hooks. This gives a malicious receiver the chance to re-enter whatever contract is paying
///         it in the middle of the payment. Anyone may mint.
contract HookToken is ERC20 {
    /// @notice Accounts whose hooks are called (the ERC-1820 registry, reduced to one mapping).
    mapping(address account => bool) public hooked;

    constructor() ERC20("Hook Token", "HOOK") {}

    /// @notice Creates `amount` tokens for `to` (same signature as NoosToken.mint).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice The caller's `ITokenHooks` functions are called on its transfers from now on.
    function registerHooks() external {
        hooked[msg.sender] = true;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && hooked[from]) ITokenHooks(from).tokensToSend(from, to, value);
        super._update(from, to, value);
        if (to != address(0) && hooked[to]) ITokenHooks(to).tokensReceived(from, to, value);
    }
}
