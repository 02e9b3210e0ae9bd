// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAgentRegistry} from "../interfaces/IAgentRegistry.sol";

/// @title ServiceCatalog
/// @notice The Agent Market's service listings, for {AgentRegistry}. An external library run by
///         `DELEGATECALL` in the registry's storage (it keeps the registry small); events are the
///         registry's own. The caller has already checked that `msg.sender` controls the agent.
library ServiceCatalog {
    /// @dev Lives inside the registry's ERC-7201 namespace.
    struct Catalog {
        uint256 lastId;
        mapping(uint256 serviceId => IAgentRegistry.Service) services;
        mapping(uint256 agentId => uint256[] serviceIds) byAgent;
    }

    uint256 private constant MAX_ENDPOINT_BYTES = 512;
    uint256 private constant MAX_SERVICES_PER_AGENT = 64;

    /// @notice Lists a new, active service (see {IAgentRegistry-listService}).
    function list(
        Catalog storage c,
        uint256 agentId,
        bytes32 capability,
        IAgentRegistry.PaymentMode mode,
        address token,
        uint80 unitPrice,
        string calldata endpoint
    ) external returns (uint256 serviceId) {
        if (capability == bytes32(0)) revert IAgentRegistry.AgentRegistryEmptyInput();
        _check(mode, token, unitPrice, endpoint);
        uint256[] storage ids = c.byAgent[agentId];
        if (ids.length >= MAX_SERVICES_PER_AGENT) {
            revert IAgentRegistry.AgentRegistryTooManyServices(agentId, MAX_SERVICES_PER_AGENT);
        }
        serviceId = ++c.lastId;
        c.services[serviceId] = IAgentRegistry.Service(
            token,
            unitPrice,
            mode,
            true,
            uint64(agentId),
            capability,
            endpoint
        );
        ids.push(serviceId);
        emit IAgentRegistry.ServiceListed(serviceId, agentId, capability, mode, token, unitPrice, endpoint);
    }

    /// @notice Changes a service (see {IAgentRegistry-updateService}); its mode and capability stay.
    function update(
        Catalog storage c,
        uint256 serviceId,
        address token,
        uint80 unitPrice,
        bool active,
        string calldata endpoint
    ) external {
        IAgentRegistry.Service storage s = c.services[serviceId];
        _check(s.mode, token, unitPrice, endpoint);
        s.token = token;
        s.unitPrice = unitPrice;
        s.active = active;
        s.endpoint = endpoint;
        emit IAgentRegistry.ServiceUpdated(serviceId, s.agentId, token, unitPrice, active, endpoint);
    }

    /// @notice The agent that lists `serviceId`; reverts when there is none.
    function agentOf(Catalog storage c, uint256 serviceId) internal view returns (uint256 agentId) {
        agentId = c.services[serviceId].agentId;
        if (agentId == 0) revert IAgentRegistry.AgentRegistryUnknownService(serviceId);
    }

    function _check(
        IAgentRegistry.PaymentMode mode,
        address token,
        uint80 unitPrice,
        string calldata endpoint
    ) private pure {
        uint256 length = bytes(endpoint).length;
        if (length == 0) revert IAgentRegistry.AgentRegistryEmptyInput();
        if (length > MAX_ENDPOINT_BYTES) revert IAgentRegistry.AgentRegistryInputTooLong(length, MAX_ENDPOINT_BYTES);
        if (mode == IAgentRegistry.PaymentMode.PayPerUse && (token == address(0) || unitPrice == 0)) {
            revert IAgentRegistry.AgentRegistryBadService();
        }
    }
}
