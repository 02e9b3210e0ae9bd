// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IArbitrator, IArbitrable} from "../interfaces/IArbitration.sol";

/// @notice Test arbitrator: records disputes and rules when told to. Stands in for the court
///         (EvaluatorStaking) behind the same ERC-792-shaped interface.
contract MockArbitrator is IArbitrator {
    struct Case {
        address arbitrable;
        uint256 choices;
        bytes extraData;
    }

    mapping(uint256 disputeId => Case) public cases;
    uint256 public nextId = 1;
    /// @notice When set, the next dispute gets this id (to test duplicate ids).
    uint256 public forcedId;

    function createDispute(uint256 choices, bytes calldata extraData) external returns (uint256 disputeId) {
        disputeId = forcedId != 0 ? forcedId : nextId++;
        cases[disputeId] = Case(msg.sender, choices, extraData);
        emit DisputeCreation(disputeId, msg.sender);
    }

    function arbitrationCost(bytes calldata extraData) external pure returns (uint256) {
        (, , , , uint256 fee) = abi.decode(extraData, (uint256, uint256, uint256, address, uint256));
        return fee;
    }

    function setForcedId(uint256 id) external {
        forcedId = id;
    }

    /// @notice Calls back `rule` on the arbitrable contract of `disputeId`.
    function giveRuling(uint256 disputeId, uint256 ruling) external {
        IArbitrable(cases[disputeId].arbitrable).rule(disputeId, ruling);
    }

    /// @notice Calls `rule` on any contract, as a rogue arbitrator would.
    function ruleOn(address arbitrable, uint256 disputeId, uint256 ruling) external {
        IArbitrable(arbitrable).rule(disputeId, ruling);
    }
}
