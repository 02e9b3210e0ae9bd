// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EvaluatorStaking} from "../court/EvaluatorStaking.sol";

/// @title EvaluatorStakingV2Mock
/// @notice Test-only second version of {EvaluatorStaking} for the upgrade-safety suite: the whole V1
///         plus one new ERC-7201 namespace with one field, its setter and a version marker.
/// @dev Test-only. Never deployed by the system module.
/// @custom:oz-upgrades-unsafe-allow missing-initializer
contract EvaluatorStakingV2Mock is EvaluatorStaking {
    /// @custom:storage-location erc7201:agentmarket.storage.EvaluatorStakingV2Mock
    struct EvaluatorStakingV2MockStorage {
        uint256 v2Value;
    }

    // keccak256(abi.encode(uint256(keccak256("agentmarket.storage.EvaluatorStakingV2Mock")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant V2_STORAGE_LOCATION = 0xd2df6527f6141cd05a447a7aa6f7f548d3ee070596e8ed82241e735a84a85a00;

    /// @notice The new V2 field was set.
    event V2ValueSet(uint256 value);

    /// @notice Sets the new V2 field. Parameter role only.
    function setV2Value(uint256 value) external onlyRole(PARAMETER_ROLE) {
        _getV2MockStorage().v2Value = value;
        emit V2ValueSet(value);
    }

    /// @notice The new V2 field.
    function v2Value() external view returns (uint256) {
        return _getV2MockStorage().v2Value;
    }

    /// @notice Marks the V2 implementation.
    function versionV2() external pure returns (string memory) {
        return "2.0.0-mock";
    }

    function _getV2MockStorage() private pure returns (EvaluatorStakingV2MockStorage storage $) {
        assembly {
            $.slot := V2_STORAGE_LOCATION
        }
    }
}
