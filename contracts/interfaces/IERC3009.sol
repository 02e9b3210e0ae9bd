// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IERC3009
/// @notice The part of EIP-3009 (transfer with authorisation) PayPerUse uses: the payee pulls a
///         payment the payer signed, front-running safe because only `to` may call it.
interface IERC3009 {
    /// @notice Moves `value` from `from` to `to` (the caller) under `from`'s signed authorisation.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;
}
