// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {AccessControlUpgradeable} from "@openzeppelin/contracts-upgradeable/access/AccessControlUpgradeable.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title ProtocolBase
/// @notice The shared skeleton of the protocol's five contracts: a UUPS proxy implementation with
///         role-based access control, a pause switch for new business, and a transient-storage
///         reentrancy guard.
/// @dev Roles: `DEFAULT_ADMIN_ROLE` (a timelock or multisig in production) grants every role;
///      `UPGRADER_ROLE` upgrades; `PAUSER_ROLE` pauses and unpauses; `PARAMETER_ROLE` tunes
///      parameters within hard bounds. Every inherited OpenZeppelin module keeps its state in its
///      own ERC-7201 namespace, and each concrete contract keeps its own in one more, so the
///      layout is append-only by construction. The reentrancy guard uses transient storage
///      (EIP-1153, Cancun) and therefore holds no storage slot at all.
abstract contract ProtocolBase is
    Initializable,
    UUPSUpgradeable,
    AccessControlUpgradeable,
    PausableUpgradeable,
    ReentrancyGuardTransient
{
    /// @notice Role allowed to upgrade the implementation behind the proxy.
    bytes32 public constant UPGRADER_ROLE = keccak256("UPGRADER_ROLE");
    /// @notice Role allowed to pause and unpause new business.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice Role allowed to change parameters within their hard bounds.
    bytes32 public constant PARAMETER_ROLE = keccak256("PARAMETER_ROLE");

    /// @notice A required address was the zero address.
    error ProtocolZeroAddress();

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    // ------------------------------------------------------------------ initializer

    /// @dev Grants every administrative role to `admin`; the admin can hand them on later.
    function __ProtocolBase_init(address admin) internal onlyInitializing {
        _requireNonZero(admin);
        __AccessControl_init();
        __Pausable_init();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(UPGRADER_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(PARAMETER_ROLE, admin);
    }

    // ------------------------------------------------------------------ admin

    /// @notice Stops new business (see each contract for what that covers). Exits never stop.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resumes new business.
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    // ------------------------------------------------------------------ internal

    /// @dev Only `UPGRADER_ROLE` may upgrade.
    function _authorizeUpgrade(address) internal override onlyRole(UPGRADER_ROLE) {}

    function _requireNonZero(address account) internal pure {
        if (account == address(0)) revert ProtocolZeroAddress();
    }
}
