// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SortitionTree} from "../libraries/SortitionTree.sol";

/**
 * @title SortitionTreeHarness
 * @notice Test-only. Exposes the {SortitionTree} library on one tree in storage.
 * @dev Never deployed by the system modules.
 */
contract SortitionTreeHarness {
    using SortitionTree for SortitionTree.Tree;

    SortitionTree.Tree private tree;

    /// @notice Sets the weight of `leaf`.
    function set(uint256 leaf, uint256 weight) external {
        tree.set(leaf, weight);
    }

    /// @notice Sum of all weights.
    function total() external view returns (uint256) {
        return tree.total();
    }

    /// @notice The weight of `leaf`.
    function weightOf(uint256 leaf) external view returns (uint256) {
        return tree.weightOf(leaf);
    }

    /// @notice The leaf whose cumulative range contains `point`.
    function draw(uint256 point) external view returns (uint256) {
        return tree.draw(point);
    }
}
