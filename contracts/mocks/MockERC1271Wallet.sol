// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/**
 * @title MockERC1271Wallet
 * @notice Minimal smart-contract wallet: ERC-1271 signatures are valid when the owner's EOA signed
 *         the raw hash; the owner can execute arbitrary calls; it can hold ETH and ERC-721 tokens.
 * @dev Test-only. Never deployed by the system module.
 */
contract MockERC1271Wallet is IERC1271, IERC721Receiver {
    /// @notice ERC-1271 magic value for a valid signature.
    bytes4 internal constant MAGIC_VALUE = 0x1626ba7e;
    /// @notice Returned for an invalid signature.
    bytes4 internal constant INVALID_VALUE = 0xffffffff;

    /// @notice EOA whose signatures the wallet accepts and who may call `execute`.
    address public immutable owner;
    /// @notice When true, every signature is reported invalid.
    bool public rejectAll;

    /// @notice Emitted after a successful `execute`.
    event Executed(address indexed target, uint256 value, bytes data);
    /// @notice Emitted when `rejectAll` changes.
    event RejectAllSet(bool rejectAll);

    /// @notice The caller is not the owner.
    error MockERC1271WalletNotOwner(address caller);

    modifier onlyOwner() {
        if (msg.sender != owner) revert MockERC1271WalletNotOwner(msg.sender);
        _;
    }

    constructor(address owner_) {
        owner = owner_;
    }

    receive() external payable {}

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes memory signature) external view returns (bytes4) {
        if (rejectAll) return INVALID_VALUE;
        (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecover(hash, signature);
        return err == ECDSA.RecoverError.NoError && recovered == owner ? MAGIC_VALUE : INVALID_VALUE;
    }

    /// @notice Makes `isValidSignature` reject everything (true) or behave normally (false).
    function setRejectAll(bool rejectAll_) external onlyOwner {
        rejectAll = rejectAll_;
        emit RejectAllSet(rejectAll_);
    }

    /// @notice Calls `target` with `value` and `data`; bubbles up the original revert data on failure.
    function execute(
        address target,
        uint256 value,
        bytes calldata data
    ) external payable onlyOwner returns (bytes memory result) {
        bool success;
        (success, result) = target.call{value: value}(data);
        if (!success) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        emit Executed(target, value, data);
    }

    /// @inheritdoc IERC721Receiver
    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return IERC721Receiver.onERC721Received.selector;
    }
}
