// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/**
 * @title PayPerUseReentrantTokenMock
 * @notice 6-decimal ERC20 combining MockReentrantToken's one-shot reentry hook with
 *         MockBlacklistToken's blacklist, plus an open `execute` so that the token contract itself
 *         can act as an account (hold a credit and withdraw it). Lets a test give a re-entering
 *         token a PayPerUse credit and check that withdrawing it cannot pay twice.
 * @dev Test-only. Never deployed by the system module. The hook fires after a balance update,
 *      disarms itself first, and records the outcome of the callback without bubbling it up.
 */
contract PayPerUseReentrantTokenMock is ERC20 {
    /// @notice Contract called by the hook while armed (zero address = disarmed).
    address public reentryTarget;
    /// @notice Calldata sent to `reentryTarget`.
    bytes public reentryData;
    /// @notice Whether the last reentry call succeeded.
    bool public lastReentrySuccess;
    /// @notice Return (or revert) data of the last reentry call.
    bytes public lastReentryReturnData;
    /// @notice Whether an account is blacklisted.
    mapping(address account => bool) public isBlacklisted;

    /// @notice Emitted after the hook has called `target`.
    event ReentryAttempted(address target, bool success, bytes returnData);

    /// @notice `account` is blacklisted and cannot send or receive.
    error PayPerUseReentrantTokenMockBlacklisted(address account);
    /// @notice The reentry target cannot be the zero address.
    error PayPerUseReentrantTokenMockZeroTarget();

    constructor() ERC20("PayPerUse Reentrant Token", "mPRT") {}

    /// @inheritdoc ERC20
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Test faucet: anyone may mint.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Sets the blacklist status of `account` (open to anyone: test-only).
    function setBlacklisted(address account, bool blacklisted) external {
        isBlacklisted[account] = blacklisted;
    }

    /// @notice Arms the hook: the next balance update calls `target` with `data`.
    function setReentry(address target, bytes calldata data) external {
        if (target == address(0)) revert PayPerUseReentrantTokenMockZeroTarget();
        reentryTarget = target;
        reentryData = data;
    }

    /// @notice Calls `target` with `data` from this contract; bubbles up a revert.
    function execute(address target, bytes calldata data) external returns (bytes memory result) {
        bool success;
        (success, result) = target.call(data);
        if (!success) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
    }

    /// @dev Blacklist checks, balance update, then (if armed) disarm and call the target.
    function _update(address from, address to, uint256 value) internal override {
        if (isBlacklisted[from]) revert PayPerUseReentrantTokenMockBlacklisted(from);
        if (isBlacklisted[to]) revert PayPerUseReentrantTokenMockBlacklisted(to);
        super._update(from, to, value);

        address target = reentryTarget;
        if (target == address(0)) return;
        bytes memory data = reentryData;
        delete reentryTarget;
        delete reentryData;

        (bool success, bytes memory returnData) = target.call(data);
        lastReentrySuccess = success;
        lastReentryReturnData = returnData;
        emit ReentryAttempted(target, success, returnData);
    }
}
