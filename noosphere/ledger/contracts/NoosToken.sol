// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title NoosToken
/// @notice The network's payment token: an 18-decimal ERC-20 with EIP-2612 `permit`, so a requester can
///         approve and fund an escrow or channel in one transaction.
/// @dev Built for development deployments: the deployer owns the token and is the only account that can
///      mint. Every balance change emits the standard ERC-20 `Transfer` event (mint is a transfer from 0).
contract NoosToken is ERC20Permit, Ownable {
    /// @notice Deploys the token; the deployer becomes the owner (the only minter).
    constructor() ERC20("Noosphere Token", "NOOS") ERC20Permit("Noosphere Token") Ownable(msg.sender) {}

    /// @notice Creates `amount` new tokens (18 decimals) for `to`.
    /// @dev Only the owner may mint. Emits `Transfer(address(0), to, amount)`.
    /// @param to The account that receives the new tokens.
    /// @param amount The number of token units (wei) to create.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
