// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/**
 * @title MockOKB
 * @notice 18-decimal "Mock OKB" (OKB) ERC20 with an open faucet: an OKB-like stake token for chains without OKB.
 * @dev Test-only. Never deployed by the system module.
 */
contract MockOKB is ERC20 {
    constructor() ERC20("Mock OKB", "OKB") {}

    /// @notice Test faucet: anyone may mint.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
