// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IRandomnessSource, IRandomnessConsumer} from "../interfaces/IRandomness.sol";

/**
 * @title RejectingRandomnessConsumer
 * @notice Test-only. A randomness consumer that can be told to reject deliveries.
 * @dev Never deployed by the system modules.
 */
contract RejectingRandomnessConsumer is IRandomnessConsumer {
    /// @notice The source asked for randomness.
    IRandomnessSource public source;
    /// @notice Whether deliveries are rejected.
    bool public rejecting;
    /// @notice The last delivered request id.
    uint256 public lastRequestId;
    /// @notice The last delivered word.
    uint256 public lastWord;

    /// @notice A delivery was refused.
    error RejectingRandomnessConsumerRejected(uint256 requestId);

    /// @notice Sets the source to ask.
    function setSource(IRandomnessSource source_) external {
        source = source_;
    }

    /// @notice Sets whether deliveries are rejected.
    function setRejecting(bool rejecting_) external {
        rejecting = rejecting_;
    }

    /// @notice Asks the source for a word.
    function request() external returns (uint256) {
        return source.requestRandomness();
    }

    /// @inheritdoc IRandomnessConsumer
    function receiveRandomness(uint256 requestId, uint256 randomWord) external {
        if (rejecting) revert RejectingRandomnessConsumerRejected(requestId);
        (lastRequestId, lastWord) = (requestId, randomWord);
    }
}
