// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IArbitrator
/// @notice An arbitrator in the shape of ERC-792, adapted to ERC-20 fees: the arbitrable contract
///         transfers the arbitration fee to the arbitrator in the payment token *before* calling
///         {createDispute}, and describes the case in `extraData`.
/// @dev For TaskEscrow, `extraData` is `abi.encode(taskId, clientId, providerId, token, fee)`:
///      the court needs the parties (to keep them off the jury) and the fee it was paid.
///      Rulings follow ERC-792: 0 means "refused to arbitrate", 1..choices are the options.
interface IArbitrator {
    /// @notice A dispute was created (ERC-792).
    event DisputeCreation(uint256 indexed disputeId, address indexed arbitrable);

    /// @notice Opens a dispute with `choices` options; the fee was transferred beforehand.
    /// @return disputeId The arbitrator's id for the dispute, passed back in `rule`.
    function createDispute(uint256 choices, bytes calldata extraData) external returns (uint256 disputeId);

    /// @notice The fee the arbitrator expects for a dispute described by `extraData`.
    function arbitrationCost(bytes calldata extraData) external view returns (uint256 cost);
}

/// @title IArbitrable
/// @notice A contract whose disputes an {IArbitrator} rules on (ERC-792).
interface IArbitrable {
    /// @notice The arbitrator ruled (ERC-792).
    event Ruling(address indexed arbitrator, uint256 indexed disputeId, uint256 ruling);

    /// @notice Gives the final ruling of `disputeId`. Only the arbitrator the dispute went to.
    function rule(uint256 disputeId, uint256 ruling) external;
}
