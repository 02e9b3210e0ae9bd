// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title SortitionTree
/// @notice A fixed-depth 8-ary sum tree for stake-weighted random selection: O(depth) to set a
///         weight and O(depth) to draw, never a scan of the holders.
/// @dev The tree has `DEPTH` = 5 levels of internal nodes and 8^5 = 32,768 leaves. Internal node
///      `i` (root 0, children `8i+1 .. 8i+8`) is one storage slot holding the sums of its eight
///      children as eight 32-bit lanes, so a draw reads exactly five slots and a weight update
///      writes exactly five, whatever the number of holders: gas does not grow with the pool.
///      Leaves have no slot of their own; leaf `k` is node `FIRST_LEAF + k` and its weight is a
///      lane of its parent. No lane may exceed 2^32 - 1 (an update that would overflow one
///      reverts): the weight unit must make the whole stake of the pool fit in 32 bits.
library SortitionTree {
    /// @notice Levels of internal nodes.
    uint256 internal constant DEPTH = 5;
    /// @notice Number of leaves (8^DEPTH).
    uint256 internal constant LEAVES = 32_768;
    /// @notice Largest weight of a lane (a leaf or a subtree).
    uint256 internal constant LANE = type(uint32).max;
    /// @dev Node index of leaf 0: the number of internal nodes, (8^DEPTH - 1) / 7.
    uint256 private constant FIRST_LEAF = 4_681;

    /// @notice The tree: one slot per internal node.
    struct Tree {
        mapping(uint256 node => uint256 lanes) nodes;
    }

    /// @notice A weight update would take a lane (a leaf or the sum of a subtree) above 2^32 - 1.
    error SortitionTreeOverflow();
    /// @notice The leaf is outside the tree.
    error SortitionTreeBadLeaf(uint256 leaf);

    /// @notice Sum of all weights.
    function total(Tree storage tree) internal view returns (uint256 sum) {
        uint256 root = tree.nodes[0];
        for (uint256 lane; lane < 8; ++lane) sum += (root >> (lane << 5)) & LANE;
    }

    /// @notice The weight of `leaf`.
    function weightOf(Tree storage tree, uint256 leaf) internal view returns (uint256) {
        uint256 node = FIRST_LEAF + leaf;
        unchecked {
            return (tree.nodes[(node - 1) >> 3] >> (((node - 1) & 7) << 5)) & LANE;
        }
    }

    /// @notice Sets the weight of `leaf` (< LEAVES) to `weight`, updating the sums up to the root.
    function set(Tree storage tree, uint256 leaf, uint256 weight) internal {
        if (leaf >= LEAVES) revert SortitionTreeBadLeaf(leaf);
        uint256 node = FIRST_LEAF + leaf;
        uint256 parent;
        uint256 shift;
        uint256 lanes;
        unchecked {
            parent = (node - 1) >> 3;
            shift = ((node - 1) & 7) << 5;
            lanes = tree.nodes[parent];
        }
        uint256 old = (lanes >> shift) & LANE;
        if (old == weight) return;
        bool up = weight > old;
        uint256 delta = up ? weight - old : old - weight;
        for (uint256 level; level < DEPTH; ++level) {
            uint256 value = (lanes >> shift) & LANE;
            // Decreases cannot underflow: a lane is the sum of the weights below it.
            value = up ? value + delta : value - delta;
            if (value > LANE) revert SortitionTreeOverflow();
            tree.nodes[parent] = (lanes & ~(LANE << shift)) | (value << shift);
            if (parent == 0) break;
            unchecked {
                node = parent;
                parent = (node - 1) >> 3;
                shift = ((node - 1) & 7) << 5;
            }
            lanes = tree.nodes[parent];
        }
    }

    /// @notice The leaf whose cumulative weight range contains `point`. Callers must pass
    ///         `point < total(tree)` (a larger point returns a wrong leaf, it does not revert).
    /// @dev Leaves are ordered left to right; leaf k covers [sum of weights before k, + weight k).
    function draw(Tree storage tree, uint256 point) internal view returns (uint256 leaf) {
        uint256 node;
        for (uint256 level; level < DEPTH; ++level) {
            uint256 lanes = tree.nodes[node];
            uint256 lane;
            for (; lane < 7; ++lane) {
                uint256 value = (lanes >> (lane << 5)) & LANE;
                if (point < value) break;
                point -= value;
            }
            unchecked {
                node = (node << 3) + 1 + lane;
            }
        }
        unchecked {
            leaf = node - FIRST_LEAF;
        }
    }
}
