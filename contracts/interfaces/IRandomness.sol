// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IRandomnessSource
/// @notice A source of verifiable randomness, asynchronous: the consumer asks, the source answers
///         later by calling {IRandomnessConsumer.receiveRandomness} with the same request id.
interface IRandomnessSource {
    /// @notice Asks for one random word. Only the source's consumer.
    /// @return requestId The id the answer will carry.
    function requestRandomness() external returns (uint256 requestId);
}

/// @title IRandomnessConsumer
/// @notice A contract that receives randomness from an {IRandomnessSource}.
interface IRandomnessConsumer {
    /// @notice Delivers the random word of `requestId`. Only the consumer's randomness source; must
    ///         not revert for a well-formed delivery (an unknown or stale id is ignored).
    function receiveRandomness(uint256 requestId, uint256 randomWord) external;
}
