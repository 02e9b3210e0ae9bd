// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";

/**
 * @title CourtReentrantReceiver
 * @notice A contract that owns an agent (it accepts the registry's safe mint) and acts for it through
 *         {execute}. Its `receive` accepts the native coin, refuses it, or re-enters a target once.
 * @dev Test-only. Never deployed by the system module. Used to check that a juror whose wallet
 *      refuses payouts cannot block a court, and that payouts cannot be re-entered. A re-entry's
 *      result is recorded, never bubbled up, so the outer call can still succeed.
 */
contract CourtReentrantReceiver is IERC721Receiver {
    /// @notice What `receive` does with incoming coin.
    enum Mode {
        Accept,
        Revert,
        Reenter
    }

    /// @notice The deployer, the only account that may drive the contract.
    address public immutable owner;
    /// @notice Current behaviour of `receive`.
    Mode public mode;
    /// @notice Contract called back by `receive` in `Reenter` mode.
    address public reentryTarget;
    /// @notice Calldata of the call back.
    bytes public reentryData;
    /// @notice Whether the last call back succeeded.
    bool public lastReentrySuccess;
    /// @notice Return (or revert) data of the last call back.
    bytes public lastReentryReturnData;
    /// @notice Number of call backs made.
    uint256 public reentries;

    /// @notice Coin from `sender` was refused.
    error CourtReentrantReceiverRejected(address sender, uint256 value);
    /// @notice Only the deployer may drive the contract.
    error CourtReentrantReceiverNotOwner(address caller);

    /// @notice The contract called `target` back; `success` is the outcome.
    event ReentryAttempted(address target, bool success, bytes returnData);

    constructor() {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert CourtReentrantReceiverNotOwner(msg.sender);
        _;
    }

    /// @notice Sets the behaviour of `receive` (`Reenter`: call `target` with `data` once, then accept).
    function setMode(Mode mode_, address target, bytes calldata data) external onlyOwner {
        (mode, reentryTarget, reentryData) = (mode_, target, data);
    }

    /// @notice Calls `to` with `value` and `data` as this contract, bubbling up a revert.
    function execute(address to, uint256 value, bytes calldata data) external payable onlyOwner returns (bytes memory) {
        (bool ok, bytes memory ret) = to.call{value: value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    /// @inheritdoc IERC721Receiver
    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return IERC721Receiver.onERC721Received.selector;
    }

    // solhint-disable-next-line no-complex-fallback
    receive() external payable {
        Mode m = mode;
        if (m == Mode.Revert) revert CourtReentrantReceiverRejected(msg.sender, msg.value);
        if (m == Mode.Reenter) {
            mode = Mode.Accept;
            address target = reentryTarget;
            (bool success, bytes memory ret) = target.call(reentryData);
            (lastReentrySuccess, lastReentryReturnData) = (success, ret);
            ++reentries;
            emit ReentryAttempted(target, success, ret);
        }
    }
}
