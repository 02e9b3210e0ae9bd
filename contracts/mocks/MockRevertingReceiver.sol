// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/**
 * @title MockRevertingReceiver
 * @notice Recipient that refuses everything: ETH (receive and fallback) and ERC-721 safe transfers.
 * @dev Test-only. Never deployed by the system module. Used to test payouts to recipients that cannot receive.
 */
contract MockRevertingReceiver {
    /// @notice ETH (or an unknown call) from `sender` carrying `value` was refused.
    error MockRevertingReceiverRejected(address sender, uint256 value);
    /// @notice A safe ERC-721 transfer of `tokenId` from `token` was refused.
    error MockRevertingReceiverERC721Rejected(address token, uint256 tokenId);

    receive() external payable {
        revert MockRevertingReceiverRejected(msg.sender, msg.value);
    }

    fallback() external payable {
        revert MockRevertingReceiverRejected(msg.sender, msg.value);
    }

    /// @notice Always reverts, so `safeTransferFrom` / `_safeMint` to this contract fail.
    function onERC721Received(address, address, uint256 tokenId, bytes calldata) external view returns (bytes4) {
        revert MockRevertingReceiverERC721Rejected(msg.sender, tokenId);
    }
}
