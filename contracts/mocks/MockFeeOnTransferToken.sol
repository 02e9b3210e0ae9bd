// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/**
 * @title MockFeeOnTransferToken
 * @notice 6-decimal ERC20 that burns `feeBps` of every transfer, so the recipient gets less than `value`.
 * @dev Test-only. Never deployed by the system module. Mints and burns are not taxed.
 */
contract MockFeeOnTransferToken is ERC20 {
    /// @notice Basis-point denominator (10_000 = 100%).
    uint256 public constant BPS = 10_000;

    /// @notice Fee burned on each transfer, in basis points (100 = 1%).
    uint256 public immutable feeBps;

    /// @notice The fee exceeds 100%.
    error MockFeeOnTransferTokenInvalidFee(uint256 feeBps);

    constructor(uint256 feeBps_) ERC20("Mock Fee Token", "mFEE") {
        if (feeBps_ > BPS) revert MockFeeOnTransferTokenInvalidFee(feeBps_);
        feeBps = feeBps_;
    }

    /// @inheritdoc ERC20
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Test faucet: anyone may mint.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @dev On a transfer between two non-zero addresses, delivers `value - fee` and burns `fee`.
    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = (value * feeBps) / BPS;
        super._update(from, to, value - fee);
        if (fee != 0) super._update(from, address(0), fee);
    }
}
