// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title SpendWindow
/// @notice Per-period spending caps in one storage slot, over fixed or rolling windows.
/// @dev Time is cut into aligned buckets of `period` seconds (bucket `i` is
///      `[i * period, (i + 1) * period)`); the slot keeps the current bucket and the one before.
///      - Fixed mode: spends within one bucket stay at or below the cap.
///      - Rolling mode: a spend is allowed only if the previous and the current bucket together
///        stay at or below the cap. Any window of `period` seconds ending at a spend lies inside
///        those two buckets, so every such window holds at most the cap: the guarantee is exact,
///        at the price of being conservative (after spending the whole cap, the operator may wait
///        up to two periods for the full cap again).
library SpendWindow {
    struct Window {
        uint64 index; // the bucket `curSpent` belongs to
        uint96 prevSpent; // spent in bucket `index - 1`
        uint96 curSpent; // spent in bucket `index`
    }

    /// @notice What can still be spent now under `cap`.
    function available(Window storage w, uint32 period, bool rolling, uint96 cap) internal view returns (uint256) {
        (, uint256 prev, uint256 cur) = _roll(w, period);
        uint256 used = rolling ? prev + cur : cur;
        return used >= cap ? 0 : cap - used;
    }

    /// @notice Debits `amount`.
    /// @dev The caller has checked `amount <= available(...)`, so the sums below fit in 96 bits.
    function debit(Window storage w, uint32 period, uint256 amount) internal {
        (uint64 index, uint256 prev, uint256 cur) = _roll(w, period);
        w.index = index;
        w.prevSpent = uint96(prev);
        w.curSpent = uint96(cur + amount);
    }

    /// @dev The current bucket and what was spent in it and in the one before.
    function _roll(Window storage w, uint32 period) private view returns (uint64 index, uint256 prev, uint256 cur) {
        index = uint64(block.timestamp / period);
        uint64 last = w.index;
        if (last == index) return (index, w.prevSpent, w.curSpent);
        if (last + 1 == index) return (index, w.curSpent, 0);
        return (index, 0, 0);
    }
}
