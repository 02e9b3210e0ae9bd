// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/**
 * @title MockReentrantToken
 * @notice 6-decimal ERC20 that, once armed, calls back into `reentryTarget` with `reentryData`
 *         during its next balance update (transfer, mint or burn).
 * @dev Test-only. Never deployed by the system module. The hook disarms itself before calling, so it
 *      fires once. The callback result is recorded, never bubbled up: a refused reentry (e.g. by
 *      ReentrancyGuard) leaves the outer call intact and can be asserted via `lastReentrySuccess`
 *      and `lastReentryReturnData`.
 */
contract MockReentrantToken is ERC20 {
    /// @notice Contract called by the hook while armed (zero address = disarmed).
    address public reentryTarget;
    /// @notice Calldata sent to `reentryTarget`.
    bytes public reentryData;
    /// @notice Whether the last reentry call succeeded.
    bool public lastReentrySuccess;
    /// @notice Return (or revert) data of the last reentry call.
    bytes public lastReentryReturnData;

    /// @notice Emitted when the hook is armed.
    event ReentryArmed(address indexed target, bytes data);
    /// @notice Emitted when the hook is disarmed by `clearReentry`.
    event ReentryCleared();
    /// @notice Emitted after the hook has called `target`.
    event ReentryAttempted(address target, bool success, bytes returnData);

    /// @notice The reentry target cannot be the zero address.
    error MockReentrantTokenZeroTarget();

    constructor() ERC20("Mock Reentrant Token", "mREE") {}

    /// @inheritdoc ERC20
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Test faucet: anyone may mint.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Arms the hook: the next balance update calls `target` with `data`.
    function setReentry(address target, bytes calldata data) external {
        if (target == address(0)) revert MockReentrantTokenZeroTarget();
        reentryTarget = target;
        reentryData = data;
        emit ReentryArmed(target, data);
    }

    /// @notice Disarms the hook.
    function clearReentry() external {
        delete reentryTarget;
        delete reentryData;
        emit ReentryCleared();
    }

    /// @dev Updates balances, then (if armed) disarms and calls the target, recording the outcome.
    function _update(address from, address to, uint256 value) internal override {
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
