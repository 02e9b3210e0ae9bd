// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AgentRegistry} from "../registry/AgentRegistry.sol";

/// @title AgentRegistryV2Mock
/// @notice Test-only second version of {AgentRegistry} for the upgrade-safety suite: the whole V1
///         plus one new ERC-7201 namespace with one field, its setter and a version marker.
/// @dev Test-only. Never deployed by the system module. It runs on a proxy that V1's `initialize`
///      already initialised, so it needs no initializer of its own.
/// @custom:oz-upgrades-unsafe-allow missing-initializer
contract AgentRegistryV2Mock is AgentRegistry {
    /// @custom:storage-location erc7201:agentmarket.storage.AgentRegistryV2Mock
    struct AgentRegistryV2MockStorage {
        uint256 v2Value;
    }

    // keccak256(abi.encode(uint256(keccak256("agentmarket.storage.AgentRegistryV2Mock")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant V2_STORAGE_LOCATION = 0x83255e949a4c065cdb6ad281042eabf6342fc71db41adffa909d061751951b00;

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

    function _getV2MockStorage() private pure returns (AgentRegistryV2MockStorage storage $) {
        assembly {
            $.slot := V2_STORAGE_LOCATION
        }
    }
}
