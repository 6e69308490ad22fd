// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title PaymentChannel
/// @notice Unidirectional payment channels for many small payments from one sender to one recipient.
///         The sender locks a deposit, then pays off-chain by signing EIP-712 vouchers
///         `Voucher(bytes32 channelId, uint256 cumulativeAmount)` with ever-growing cumulative amounts.
///         The recipient submits the latest voucher to `withdraw` (channel stays open) or `close`
///         (the remainder goes back to the sender). After `expiry` the sender may take back what was not
///         paid out with `refundExpired`.
/// @dev Vouchers cannot be replayed on another channel (the id is in the signed struct; ids are unique)
///      nor on another contract or chain (EIP-712 domain with chainId and verifyingContract).
///      Signatures are checked with OpenZeppelin ECDSA (rejects malleable signatures), so senders are EOAs.
contract PaymentChannel is EIP712, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Lifecycle of a channel.
    enum Status {
        None,
        Open,
        Closed
    }

    /// @notice One channel, as returned by `getChannel`.
    struct Channel {
        address sender; // funds the channel and signs vouchers
        uint64 expiry; // unix seconds after which the sender may reclaim the unpaid deposit
        Status status;
        address recipient; // receives voucher payments
        uint256 deposit; // total ever deposited
        uint256 paid; // total already paid out to the recipient
    }

    /// @notice EIP-712 type hash of the off-chain voucher.
    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 channelId,uint256 cumulativeAmount)");

    /// @notice The ERC-20 token every channel is denominated in.
    IERC20 public immutable token;

    uint256 private _channelNonce;
    mapping(bytes32 channelId => Channel) private _channels;

    /// @notice `sender` opened a channel to `recipient`.
    event ChannelOpened(
        bytes32 indexed channelId, address indexed sender, address indexed recipient, uint256 deposit, uint64 expiry
    );
    /// @notice The sender added `amount`; the channel now holds `deposit` in total.
    event ChannelToppedUp(bytes32 indexed channelId, uint256 amount, uint256 deposit);
    /// @notice The sender pushed the expiry to `expiry`.
    event ChannelExtended(bytes32 indexed channelId, uint64 expiry);
    /// @notice The recipient withdrew `amount`; `paid` is the cumulative total paid out.
    event ChannelWithdrawn(bytes32 indexed channelId, uint256 amount, uint256 paid);
    /// @notice The recipient closed the channel: it received `toRecipient`, the sender got `toSender`.
    event ChannelClosed(bytes32 indexed channelId, uint256 toRecipient, uint256 toSender);
    /// @notice The sender reclaimed `toSender` after expiry and the channel closed.
    event ChannelExpired(bytes32 indexed channelId, uint256 toSender);

    /// @notice No open channel under `channelId`.
    error ChannelNotOpen(bytes32 channelId);
    /// @notice The caller is not the account this action is reserved for.
    error Unauthorized(address caller);
    /// @notice The recipient is zero or the sender itself.
    error InvalidRecipient(address recipient);
    /// @notice The amount is zero.
    error ZeroAmount();
    /// @notice The expiry is not in the future (or does not extend the current one).
    error InvalidExpiry(uint64 expiry);
    /// @notice The voucher's cumulative amount exceeds the channel's deposit.
    error AmountExceedsDeposit(uint256 cumulativeAmount, uint256 deposit);
    /// @notice The voucher is older than what was already paid (or adds nothing to withdraw).
    error StaleVoucher(uint256 cumulativeAmount, uint256 paid);
    /// @notice The voucher was not signed by the channel's sender.
    error InvalidSignature();
    /// @notice The channel has not expired yet; reclaiming is possible after `expiry`.
    error NotExpired(uint64 expiry);

    /// @param token_ The ERC-20 that channels hold.
    constructor(IERC20 token_) EIP712("Noosphere PaymentChannel", "1") {
        token = token_;
    }

    /// @notice Opens a channel to `recipient`, pulling `deposit` from the caller (needs allowance).
    /// @param recipient The account the caller will pay through vouchers.
    /// @param deposit Token units to lock (non-zero).
    /// @param expiry Unix time (seconds) after which the caller may reclaim what was not paid out.
    /// @return channelId The new channel's id (unique per contract and chain; never reused).
    function open(address recipient, uint256 deposit, uint64 expiry)
        external
        nonReentrant
        returns (bytes32 channelId)
    {
        if (recipient == address(0) || recipient == msg.sender) revert InvalidRecipient(recipient);
        if (deposit == 0) revert ZeroAmount();
        if (expiry <= block.timestamp) revert InvalidExpiry(expiry);

        channelId = keccak256(
            abi.encode(block.chainid, address(this), msg.sender, recipient, block.timestamp, ++_channelNonce)
        );
        _channels[channelId] = Channel({
            sender: msg.sender,
            expiry: expiry,
            status: Status.Open,
            recipient: recipient,
            deposit: deposit,
            paid: 0
        });
        emit ChannelOpened(channelId, msg.sender, recipient, deposit, expiry);

        token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @notice Adds `amount` to an open channel's deposit; only the sender may call it.
    /// @param channelId The channel to fund.
    /// @param amount Token units to add (non-zero).
    function topUp(bytes32 channelId, uint256 amount) external nonReentrant {
        Channel storage c = _open(channelId);
        if (msg.sender != c.sender) revert Unauthorized(msg.sender);
        if (amount == 0) revert ZeroAmount();

        uint256 deposit = c.deposit + amount;
        c.deposit = deposit;
        emit ChannelToppedUp(channelId, amount, deposit);

        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Moves an open channel's expiry later; only the sender may call it.
    /// @param channelId The channel to extend.
    /// @param newExpiry The new expiry (must be later than the current one).
    function extend(bytes32 channelId, uint64 newExpiry) external {
        Channel storage c = _open(channelId);
        if (msg.sender != c.sender) revert Unauthorized(msg.sender);
        if (newExpiry <= c.expiry) revert InvalidExpiry(newExpiry);

        c.expiry = newExpiry;
        emit ChannelExtended(channelId, newExpiry);
    }

    /// @notice The recipient cashes in a voucher without closing the channel; it receives
    ///         `cumulativeAmount` minus what was already paid.
    /// @param channelId The channel.
    /// @param cumulativeAmount The voucher's cumulative amount (greater than what was already paid).
    /// @param signature The sender's 65-byte EIP-712 signature over the voucher.
    function withdraw(bytes32 channelId, uint256 cumulativeAmount, bytes calldata signature) external nonReentrant {
        Channel storage c = _open(channelId);
        if (msg.sender != c.recipient) revert Unauthorized(msg.sender);
        if (cumulativeAmount <= c.paid) revert StaleVoucher(cumulativeAmount, c.paid);
        _verifyVoucher(c, channelId, cumulativeAmount, signature);

        uint256 amount = cumulativeAmount - c.paid;
        c.paid = cumulativeAmount;
        emit ChannelWithdrawn(channelId, amount, cumulativeAmount);

        token.safeTransfer(msg.sender, amount);
    }

    /// @notice The recipient closes the channel with the latest voucher: it receives `cumulativeAmount`
    ///         minus what was already paid, and the rest of the deposit goes back to the sender.
    /// @dev A `cumulativeAmount` equal to what was already paid closes without a signature check.
    /// @param channelId The channel.
    /// @param cumulativeAmount The voucher's cumulative amount (at least what was already paid).
    /// @param signature The sender's 65-byte EIP-712 signature over the voucher.
    function close(bytes32 channelId, uint256 cumulativeAmount, bytes calldata signature) external nonReentrant {
        Channel storage c = _open(channelId);
        if (msg.sender != c.recipient) revert Unauthorized(msg.sender);
        uint256 paid = c.paid;
        if (cumulativeAmount < paid) revert StaleVoucher(cumulativeAmount, paid);
        if (cumulativeAmount > paid) _verifyVoucher(c, channelId, cumulativeAmount, signature);

        uint256 toRecipient = cumulativeAmount - paid;
        uint256 toSender = c.deposit - cumulativeAmount;
        c.paid = cumulativeAmount;
        c.status = Status.Closed;
        address sender = c.sender;
        emit ChannelClosed(channelId, toRecipient, toSender);

        if (toRecipient > 0) token.safeTransfer(msg.sender, toRecipient);
        if (toSender > 0) token.safeTransfer(sender, toSender);
    }

    /// @notice After expiry, the sender takes back whatever was not paid out and the channel closes.
    /// @param channelId The channel.
    function refundExpired(bytes32 channelId) external nonReentrant {
        Channel storage c = _open(channelId);
        if (msg.sender != c.sender) revert Unauthorized(msg.sender);
        if (block.timestamp <= c.expiry) revert NotExpired(c.expiry);

        uint256 toSender = c.deposit - c.paid;
        c.status = Status.Closed;
        emit ChannelExpired(channelId, toSender);

        if (toSender > 0) token.safeTransfer(msg.sender, toSender);
    }

    /// @notice The channel record (all zero if none exists).
    /// @param channelId The channel.
    /// @return The stored record.
    function getChannel(bytes32 channelId) external view returns (Channel memory) {
        return _channels[channelId];
    }

    /// @notice The EIP-712 digest the sender signs for a voucher (for off-chain signers to cross-check).
    /// @param channelId The channel.
    /// @param cumulativeAmount The cumulative amount.
    /// @return The typed-data hash.
    function voucherDigest(bytes32 channelId, uint256 cumulativeAmount) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, cumulativeAmount)));
    }

    function _open(bytes32 channelId) private view returns (Channel storage c) {
        c = _channels[channelId];
        if (c.status != Status.Open) revert ChannelNotOpen(channelId);
    }

    function _verifyVoucher(Channel storage c, bytes32 channelId, uint256 cumulativeAmount, bytes calldata signature)
        private
        view
    {
        if (cumulativeAmount > c.deposit) revert AmountExceedsDeposit(cumulativeAmount, c.deposit);
        (address signer, ECDSA.RecoverError err,) =
            ECDSA.tryRecoverCalldata(voucherDigest(channelId, cumulativeAmount), signature);
        if (err != ECDSA.RecoverError.NoError || signer != c.sender) revert InvalidSignature();
    }
}
