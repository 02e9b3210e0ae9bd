// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC721URIStorageUpgradeable} from "@openzeppelin/contracts-upgradeable/token/ERC721/extensions/ERC721URIStorageUpgradeable.sol";
import {EIP712Upgradeable} from "@openzeppelin/contracts-upgradeable/utils/cryptography/EIP712Upgradeable.sol";
import {AccessControlUpgradeable} from "@openzeppelin/contracts-upgradeable/access/AccessControlUpgradeable.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ProtocolBase} from "../utils/ProtocolBase.sol";
import {IAgentRegistry} from "../interfaces/IAgentRegistry.sol";
import {OperatorPolicy} from "../libraries/OperatorPolicy.sol";
import {ServiceCatalog} from "../libraries/ServiceCatalog.sol";

/// @title AgentRegistry
/// @notice ERC-721 agent identities (ERC-8004 IdentityRegistry compatible), agent wallets,
///         operator spending policies and the service catalog. See {IAgentRegistry}.
/// @dev Operator policies live in the external library {OperatorPolicy} (same storage, by
///      `DELEGATECALL`); the agent `epoch` kept here moves on every transfer, so a new owner never
///      inherits the old owner's operators. Pausing the registry stops new business: registration, new
///      services and `consumeSpend`. Everything an owner does to manage or restrict an agent
///      (URI, metadata, wallet, operators, limits, allow-lists, service updates) keeps working.
contract AgentRegistry is IAgentRegistry, ProtocolBase, ERC721URIStorageUpgradeable, EIP712Upgradeable {
    // ------------------------------------------------------------------ types

    struct AgentData {
        address wallet; // zero: money flows to and from the owner
        bool paused;
        uint32 epoch; // moves on every transfer
    }

    /// @custom:storage-location erc7201:agentmarket.storage.AgentRegistry
    struct AgentRegistryStorage {
        uint256 lastAgentId;
        address reputation;
        mapping(uint256 agentId => AgentData) agents;
        mapping(uint256 agentId => mapping(string key => bytes value)) metadata;
        OperatorPolicy.Policies policies;
        ServiceCatalog.Catalog catalog;
        mapping(bytes32 digest => bool used) usedWalletDigests;
    }

    // keccak256(abi.encode(uint256(keccak256("agentmarket.storage.AgentRegistry")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant STORAGE_LOCATION = 0x38504b687322c6c29e406ff61be92cd7508e529bb7c002cac4d54e3ebef84000;

    /// @notice Implementation version.
    string public constant VERSION = "1.0.0";
    /// @notice Role of the payment contracts that call {consumeSpend}.
    bytes32 public constant SPENDER_ROLE = keccak256("SPENDER_ROLE");

    bytes32 private constant AGENT_WALLET_SET_TYPEHASH = keccak256(
        "AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 deadline)"
    );
    bytes32 private constant AGENT_WALLET_KEY_HASH = keccak256("agentWallet");
    uint256 private constant MAX_DEADLINE_DELAY = 5 minutes;
    uint256 private constant MAX_URI_BYTES = 2048;
    uint256 private constant MAX_KEY_BYTES = 64;
    uint256 private constant MAX_VALUE_BYTES = 1024;
    uint256 private constant MAX_METADATA_ENTRIES = 16;

    // ------------------------------------------------------------------ initializer

    /// @notice Initialises the proxy; `admin` receives every administrative role.
    function initialize(address admin) external initializer {
        __ProtocolBase_init(admin);
        __ERC721_init("AgentIdentity", "AGENT");
        __ERC721URIStorage_init();
        // The ERC-8004 reference domain, so that ERC-8004 tooling signs wallet proofs we accept.
        __EIP712_init("ERC8004IdentityRegistry", "1");
    }

    // ------------------------------------------------------------------ admin

    /// @inheritdoc IAgentRegistry
    function setReputation(address reputation_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireNonZero(reputation_);
        _getStorage().reputation = reputation_;
        emit ReputationSet(reputation_);
    }

    // ------------------------------------------------------------------ ERC-8004 identity

    /// @inheritdoc IAgentRegistry
    function register() external returns (uint256 agentId) {
        agentId = _mintAgent("");
    }

    /// @inheritdoc IAgentRegistry
    function register(string calldata agentURI) external returns (uint256 agentId) {
        _checkString(bytes(agentURI), MAX_URI_BYTES);
        agentId = _mintAgent(agentURI);
    }

    /// @inheritdoc IAgentRegistry
    function register(string calldata agentURI, MetadataEntry[] calldata metadata) external returns (uint256 agentId) {
        _checkString(bytes(agentURI), MAX_URI_BYTES);
        if (metadata.length > MAX_METADATA_ENTRIES) {
            revert AgentRegistryBatchTooLarge(metadata.length, MAX_METADATA_ENTRIES);
        }
        agentId = ++_getStorage().lastAgentId;
        for (uint256 i; i < metadata.length; ++i) {
            _setMetadata(agentId, metadata[i].metadataKey, metadata[i].metadataValue);
        }
        _finishMint(agentId, agentURI);
    }

    /// @inheritdoc IAgentRegistry
    function setAgentURI(uint256 agentId, string calldata newURI) external {
        _requireController(agentId);
        _checkString(bytes(newURI), MAX_URI_BYTES);
        _setTokenURI(agentId, newURI);
        emit URIUpdated(agentId, newURI, msg.sender);
    }

    /// @inheritdoc IAgentRegistry
    function setMetadata(uint256 agentId, string calldata metadataKey, bytes calldata metadataValue) external {
        _requireController(agentId);
        _setMetadata(agentId, metadataKey, metadataValue);
    }

    /// @inheritdoc IAgentRegistry
    function setAgentWallet(uint256 agentId, address newWallet, uint256 deadline, bytes calldata signature) external {
        address owner = _requireController(agentId);
        _requireNonZero(newWallet);
        if (deadline < block.timestamp || deadline > block.timestamp + MAX_DEADLINE_DELAY) {
            revert AgentRegistryBadDeadline(deadline, block.timestamp);
        }
        AgentRegistryStorage storage $ = _getStorage();
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(AGENT_WALLET_SET_TYPEHASH, agentId, newWallet, owner, deadline))
        );
        if ($.usedWalletDigests[digest]) revert AgentRegistrySignatureReplayed(digest);
        if (!SignatureChecker.isValidSignatureNow(newWallet, digest, signature)) {
            revert AgentRegistryInvalidWalletSignature(newWallet);
        }
        $.usedWalletDigests[digest] = true;
        $.agents[agentId].wallet = newWallet;
        emit MetadataSet(agentId, "agentWallet", "agentWallet", abi.encodePacked(newWallet));
    }

    /// @inheritdoc IAgentRegistry
    function unsetAgentWallet(uint256 agentId) external {
        _requireController(agentId);
        _clearWallet(agentId);
    }

    /// @inheritdoc IAgentRegistry
    function getAgentWallet(uint256 agentId) external view returns (address) {
        address owner = _requireOwned(agentId);
        address wallet = _getStorage().agents[agentId].wallet;
        return wallet == address(0) ? owner : wallet;
    }

    /// @inheritdoc IAgentRegistry
    function getMetadata(uint256 agentId, string calldata metadataKey) external view returns (bytes memory) {
        AgentRegistryStorage storage $ = _getStorage();
        if (keccak256(bytes(metadataKey)) == AGENT_WALLET_KEY_HASH) {
            address wallet = $.agents[agentId].wallet;
            return wallet == address(0) ? bytes("") : abi.encodePacked(wallet);
        }
        return $.metadata[agentId][metadataKey];
    }

    /// @inheritdoc IAgentRegistry
    function getVersion() external pure returns (string memory) {
        return VERSION;
    }

    // ------------------------------------------------------------------ agents

    /// @inheritdoc IAgentRegistry
    function setAgentPaused(uint256 agentId, bool paused_) external {
        _requireController(agentId);
        _getStorage().agents[agentId].paused = paused_;
        emit AgentPauseSet(agentId, paused_);
    }

    /// @inheritdoc IAgentRegistry
    function isAgentActive(uint256 agentId) external view returns (bool) {
        return _ownerOf(agentId) != address(0) && !_getStorage().agents[agentId].paused;
    }

    /// @inheritdoc IAgentRegistry
    function ownerOfAgent(uint256 agentId) external view returns (address) {
        return _ownerOf(agentId);
    }

    /// @inheritdoc IAgentRegistry
    function agentCount() external view returns (uint256) {
        return _getStorage().lastAgentId;
    }

    // ------------------------------------------------------------------ operators

    /// @inheritdoc IAgentRegistry
    function setOperator(uint256 agentId, address operator, OperatorTerms calldata terms) external {
        address owner = _requireController(agentId);
        if (operator == address(0) || operator == owner) revert AgentRegistryBadOperator(operator);
        AgentRegistryStorage storage $ = _getStorage();
        OperatorPolicy.setOperator($.policies, agentId, $.agents[agentId].epoch, operator, terms);
    }

    /// @inheritdoc IAgentRegistry
    function setTokenLimit(uint256 agentId, address operator, address token, TokenLimit calldata limit) external {
        _requireController(agentId);
        _requireNonZero(token);
        AgentRegistryStorage storage $ = _getStorage();
        OperatorPolicy.setTokenLimit($.policies, agentId, $.agents[agentId].epoch, operator, token, limit);
    }

    /// @inheritdoc IAgentRegistry
    function setCounterparties(
        uint256 agentId,
        address operator,
        uint256[] calldata counterpartyIds,
        bool allowed
    ) external {
        _requireController(agentId);
        AgentRegistryStorage storage $ = _getStorage();
        OperatorPolicy.setCounterparties(
            $.policies,
            agentId,
            $.agents[agentId].epoch,
            operator,
            counterpartyIds,
            allowed
        );
    }

    /// @inheritdoc IAgentRegistry
    function revokeOperator(uint256 agentId, address operator) external {
        _requireController(agentId);
        OperatorPolicy.revoke(_getStorage().policies, agentId, operator);
    }

    /// @inheritdoc IAgentRegistry
    function consumeSpend(
        uint256 agentId,
        address spender,
        address token,
        uint256 amount,
        uint256 counterpartyId
    ) external whenNotPaused onlyRole(SPENDER_ROLE) returns (bool byOperator) {
        if (amount == 0) revert AgentRegistryZeroAmount();
        address owner = _ownerOf(agentId);
        if (owner == address(0)) revert AgentRegistryUnknownAgent(agentId);
        AgentRegistryStorage storage $ = _getStorage();
        AgentData storage a = $.agents[agentId];
        if (spender == owner || (spender == a.wallet && spender != address(0))) return false;
        address rep = _ownerOf(counterpartyId) == address(0) ? address(0) : $.reputation;
        OperatorPolicy.consume($.policies, agentId, a.epoch, spender, token, amount, counterpartyId, rep);
        return true;
    }

    /// @inheritdoc IAgentRegistry
    function canAct(uint256 agentId, address account) external view returns (bool) {
        address owner = _ownerOf(agentId);
        if (owner == address(0) || account == address(0)) return false;
        AgentData storage a = _getStorage().agents[agentId];
        return account == owner || account == a.wallet || _operatorActive(agentId, account);
    }

    /// @inheritdoc IAgentRegistry
    function getOperator(uint256 agentId, address operator) external view returns (OperatorView memory) {
        OperatorPolicy.Operator storage op = _getStorage().policies.operators[agentId][operator];
        return OperatorView(_operatorActive(agentId, operator), op.expiry, op.minScoreBps, op.allowListOnly);
    }

    /// @inheritdoc IAgentRegistry
    function getTokenLimit(uint256 agentId, address operator, address token) external view returns (TokenLimit memory) {
        AgentRegistryStorage storage $ = _getStorage();
        return OperatorPolicy.limitOf($.policies, agentId, $.agents[agentId].epoch, operator, token);
    }

    /// @inheritdoc IAgentRegistry
    function availableToSpend(uint256 agentId, address operator, address token) external view returns (uint256) {
        if (_ownerOf(agentId) == address(0)) return 0;
        AgentRegistryStorage storage $ = _getStorage();
        return OperatorPolicy.available($.policies, agentId, $.agents[agentId].epoch, operator, token);
    }

    /// @inheritdoc IAgentRegistry
    function isCounterpartyAllowed(
        uint256 agentId,
        address operator,
        uint256 counterpartyId
    ) external view returns (bool) {
        AgentRegistryStorage storage $ = _getStorage();
        return OperatorPolicy.isAllowed($.policies, agentId, $.agents[agentId].epoch, operator, counterpartyId);
    }

    // ------------------------------------------------------------------ service catalog

    /// @inheritdoc IAgentRegistry
    function listService(
        uint256 agentId,
        bytes32 capability,
        PaymentMode mode,
        address token,
        uint80 unitPrice,
        string calldata endpoint
    ) external whenNotPaused returns (uint256 serviceId) {
        _requireController(agentId);
        serviceId = ServiceCatalog.list(_getStorage().catalog, agentId, capability, mode, token, unitPrice, endpoint);
    }

    /// @inheritdoc IAgentRegistry
    function updateService(
        uint256 serviceId,
        address token,
        uint80 unitPrice,
        bool active,
        string calldata endpoint
    ) external {
        ServiceCatalog.Catalog storage c = _getStorage().catalog;
        _requireController(ServiceCatalog.agentOf(c, serviceId));
        ServiceCatalog.update(c, serviceId, token, unitPrice, active, endpoint);
    }

    /// @inheritdoc IAgentRegistry
    function getService(uint256 serviceId) external view returns (Service memory) {
        ServiceCatalog.Catalog storage c = _getStorage().catalog;
        ServiceCatalog.agentOf(c, serviceId);
        return c.services[serviceId];
    }

    /// @inheritdoc IAgentRegistry
    function getServiceTerms(
        uint256 serviceId
    ) external view returns (uint256 agentId, address token, uint256 unitPrice, address payTo, bool available) {
        AgentRegistryStorage storage $ = _getStorage();
        Service storage s = $.catalog.services[serviceId];
        agentId = s.agentId;
        if (agentId == 0) revert AgentRegistryUnknownService(serviceId);
        AgentData storage a = $.agents[agentId];
        address owner = _ownerOf(agentId);
        payTo = a.wallet == address(0) ? owner : a.wallet;
        (token, unitPrice) = (s.token, s.unitPrice);
        available = s.active && s.mode == PaymentMode.PayPerUse && !a.paused && owner != address(0);
    }

    /// @inheritdoc IAgentRegistry
    function getAgentServices(uint256 agentId) external view returns (uint256[] memory) {
        return _getStorage().catalog.byAgent[agentId];
    }

    /// @inheritdoc IAgentRegistry
    function serviceCount() external view returns (uint256) {
        return _getStorage().catalog.lastId;
    }

    /// @inheritdoc IAgentRegistry
    function reputation() external view returns (address) {
        return _getStorage().reputation;
    }

    /// @inheritdoc ERC721URIStorageUpgradeable
    function supportsInterface(
        bytes4 interfaceId
    ) public view override(ERC721URIStorageUpgradeable, AccessControlUpgradeable) returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    // ------------------------------------------------------------------ internal

    function _getStorage() private pure returns (AgentRegistryStorage storage $) {
        assembly {
            $.slot := STORAGE_LOCATION
        }
    }

    function _mintAgent(string memory agentURI) private returns (uint256 agentId) {
        agentId = ++_getStorage().lastAgentId;
        _finishMint(agentId, agentURI);
    }

    /// @dev State first, then the event, then the mint (whose receiver check calls out last).
    function _finishMint(uint256 agentId, string memory agentURI) private whenNotPaused {
        if (bytes(agentURI).length != 0) _setTokenURI(agentId, agentURI);
        emit Registered(agentId, agentURI, msg.sender);
        _safeMint(msg.sender, agentId);
    }

    function _setMetadata(uint256 agentId, string calldata key, bytes calldata value) private {
        _checkString(bytes(key), MAX_KEY_BYTES);
        if (value.length > MAX_VALUE_BYTES) revert AgentRegistryInputTooLong(value.length, MAX_VALUE_BYTES);
        if (keccak256(bytes(key)) == AGENT_WALLET_KEY_HASH) revert AgentRegistryReservedKey();
        _getStorage().metadata[agentId][key] = value;
        emit MetadataSet(agentId, key, key, value);
    }

    function _clearWallet(uint256 agentId) private {
        AgentData storage a = _getStorage().agents[agentId];
        if (a.wallet == address(0)) return;
        a.wallet = address(0);
        emit MetadataSet(agentId, "agentWallet", "agentWallet", "");
    }

    /// @dev The owner, or an address the owner approved through ERC-721; returns the owner.
    function _requireController(uint256 agentId) private view returns (address owner) {
        owner = _ownerOf(agentId);
        if (owner == address(0)) revert AgentRegistryUnknownAgent(agentId);
        if (!_isAuthorized(owner, msg.sender, agentId)) revert AgentRegistryNotController(agentId, msg.sender);
    }

    function _operatorActive(uint256 agentId, address operator) private view returns (bool) {
        AgentRegistryStorage storage $ = _getStorage();
        return OperatorPolicy.isActive($.policies.operators[agentId][operator], $.agents[agentId].epoch);
    }

    function _checkString(bytes calldata value, uint256 max) private pure {
        if (value.length == 0) revert AgentRegistryEmptyInput();
        if (value.length > max) revert AgentRegistryInputTooLong(value.length, max);
    }

    /// @dev On every transfer (not mint): clear the wallet and move the epoch, which voids every
    ///      operator the previous owner authorised.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        from = super._update(to, tokenId, auth);
        if (from != address(0) && from != to) {
            unchecked {
                // Wrapping after 2^32 transfers of one agent is harmless: operators would need
                // to have been set exactly 2^32 transfers ago.
                ++_getStorage().agents[tokenId].epoch;
            }
            _clearWallet(tokenId);
        }
    }
}
