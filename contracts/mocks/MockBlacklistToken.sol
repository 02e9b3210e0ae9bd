// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/**
 * @title MockBlacklistToken
 * @notice 6-decimal ERC20 whose transfers revert when the sender or the recipient is blacklisted (like USDT/USDC).
 * @dev Test-only. Never deployed by the system module. Anyone may blacklist anyone.
 */
contract MockBlacklistToken is ERC20 {
    /// @notice Whether an account is blacklisted.
    mapping(address account => bool) public isBlacklisted;

    /// @notice Emitted when an account's blacklist status changes.
    event BlacklistUpdated(address indexed account, bool blacklisted);

    /// @notice `account` is blacklisted and cannot send or receive.
    error MockBlacklistTokenBlacklisted(address account);

    constructor() ERC20("Mock Blacklist Token", "mBLK") {}

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
        emit BlacklistUpdated(account, blacklisted);
    }

    /// @dev Reverts when `from` or `to` is blacklisted (mints and burns included).
    function _update(address from, address to, uint256 value) internal override {
        if (isBlacklisted[from]) revert MockBlacklistTokenBlacklisted(from);
        if (isBlacklisted[to]) revert MockBlacklistTokenBlacklisted(to);
        super._update(from, to, value);
    }
}
