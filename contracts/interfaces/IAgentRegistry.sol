// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IAgentRegistry
/// @notice Agent identity for the marketplace: one ERC-721 token per agent (agentId starts at 1,
///         0 means "none"), ABI-compatible with the ERC-8004 IdentityRegistry, plus what the
///         marketplace needs on top of it: an agent wallet, operator keys bounded by a per-token
///         spending policy, a service catalog and a per-agent pause switch.
/// @dev Who may manage an agent ("the controller"): its owner, or an address the owner approved
///      through ERC-721 (`approve` / `setApprovalForAll`), exactly as in ERC-8004. Operators never
///      manage an agent: they only act and spend for it, within their policy.
interface IAgentRegistry {
    // ------------------------------------------------------------------ types

    /// @notice One key/value pair of on-chain agent metadata (ERC-8004).
    struct MetadataEntry {
        string metadataKey;
        bytes metadataValue;
    }

    /// @notice How a listed service is paid for.
    enum PaymentMode {
        PayPerUse, // charged per call through PayPerUse at `unitPrice` of `token`
        QuotedTask // hired through TaskEscrow at a price agreed per task
    }

    /// @notice A service in the catalog (the Agent Market).
    /// @param token Payment token for pay-per-use; for a quoted task an optional indicative token.
    /// @param unitPrice Price of one unit in `token`'s smallest unit (pay-per-use); for a quoted
    ///        task an optional indicative price.
    /// @param mode Payment mode.
    /// @param active Whether the service currently takes business.
    /// @param agentId The agent that sells it.
    /// @param capability Capability tag (for example keccak256("translate:en-fr")).
    /// @param endpoint Where the service is called (URL, MCP or A2A endpoint).
    struct Service {
        address token;
        uint80 unitPrice;
        PaymentMode mode;
        bool active;
        uint64 agentId;
        bytes32 capability;
        string endpoint;
    }

    /// @notice The operator-wide part of a spending policy.
    /// @param expiry Unix time after which the operator can no longer act or spend.
    /// @param minScoreBps Minimum Reputation score (0-10,000) a counterparty must have; 0 = any.
    /// @param allowListOnly Whether only allow-listed counterparty agents may be paid.
    struct OperatorTerms {
        uint64 expiry;
        uint16 minScoreBps;
        bool allowListOnly;
    }

    /// @notice The per-token part of a spending policy.
    /// @param perTxCap Largest single spend.
    /// @param periodCap Largest total spend per period.
    /// @param period Length of the period in seconds.
    /// @param rolling If true the cap holds over every window of `period` seconds (sliding);
    ///        if false over fixed windows aligned to multiples of `period` since the Unix epoch.
    struct TokenLimit {
        uint96 perTxCap;
        uint96 periodCap;
        uint32 period;
        bool rolling;
    }

    /// @notice Everything a caller needs to know about an operator in one read.
    struct OperatorView {
        bool active;
        uint64 expiry;
        uint16 minScoreBps;
        bool allowListOnly;
    }

    // ------------------------------------------------------------------ events (ERC-8004)

    /// @notice An agent was registered (ERC-8004).
    event Registered(uint256 indexed agentId, string agentURI, address indexed owner);
    /// @notice An agent's URI changed (ERC-8004).
    event URIUpdated(uint256 indexed agentId, string newURI, address indexed updatedBy);
    /// @notice A metadata entry was set; the reserved key "agentWallet" reports the agent wallet
    ///         (20 bytes, or empty when cleared) (ERC-8004).
    event MetadataSet(
        uint256 indexed agentId,
        string indexed indexedMetadataKey,
        string metadataKey,
        bytes metadataValue
    );

    // ------------------------------------------------------------------ events (marketplace)

    /// @notice The owner paused or resumed an agent (a paused agent takes no new work).
    event AgentPauseSet(uint256 indexed agentId, bool paused);
    /// @notice An operator was authorised or its terms changed.
    event OperatorSet(
        uint256 indexed agentId,
        address indexed operator,
        uint64 expiry,
        uint16 minScoreBps,
        bool allowListOnly
    );
    /// @notice An operator was revoked, with every limit and allow-list entry it had.
    event OperatorRevoked(uint256 indexed agentId, address indexed operator);
    /// @notice An operator's limit for one token was set, as stored (a zero `periodCap` forbids
    ///         the token; `period` is then the period kept).
    event TokenLimitSet(
        uint256 indexed agentId,
        address indexed operator,
        address indexed token,
        uint96 perTxCap,
        uint96 periodCap,
        uint32 period,
        bool rolling
    );
    /// @notice A counterparty agent was added to or removed from an operator's allow-list.
    event CounterpartyAllowed(
        uint256 indexed agentId,
        address indexed operator,
        uint256 indexed counterpartyId,
        bool allowed
    );
    /// @notice An operator's spend was checked and debited from its policy.
    event SpendConsumed(
        uint256 indexed agentId,
        address indexed operator,
        address indexed token,
        uint256 amount,
        uint256 counterpartyId
    );
    /// @notice A service was listed.
    event ServiceListed(
        uint256 indexed serviceId,
        uint256 indexed agentId,
        bytes32 indexed capability,
        PaymentMode mode,
        address token,
        uint80 unitPrice,
        string endpoint
    );
    /// @notice A service's price, endpoint or active flag changed.
    event ServiceUpdated(
        uint256 indexed serviceId,
        uint256 indexed agentId,
        address token,
        uint80 unitPrice,
        bool active,
        string endpoint
    );
    /// @notice The Reputation contract used for minimum-score policies changed.
    event ReputationSet(address indexed reputation);

    // ------------------------------------------------------------------ errors

    /// @notice `agentId` does not exist.
    error AgentRegistryUnknownAgent(uint256 agentId);
    /// @notice `caller` may not manage `agentId` (not its owner nor approved).
    error AgentRegistryNotController(uint256 agentId, address caller);
    /// @notice `spender` is neither the owner, the wallet nor an active operator of `agentId`.
    error AgentRegistryNotAuthorized(uint256 agentId, address spender);
    /// @notice A string or bytes input is empty where a value is required.
    error AgentRegistryEmptyInput();
    /// @notice A string or bytes input of `length` bytes exceeds `max`.
    error AgentRegistryInputTooLong(uint256 length, uint256 max);
    /// @notice The metadata key "agentWallet" is reserved for `setAgentWallet`.
    error AgentRegistryReservedKey();
    /// @notice A wallet signature's `deadline` has passed or lies more than 5 minutes ahead.
    error AgentRegistryBadDeadline(uint256 deadline, uint256 nowTimestamp);
    /// @notice The wallet signature is not from `wallet` (EOA) or not accepted by it (ERC-1271).
    error AgentRegistryInvalidWalletSignature(address wallet);
    /// @notice This exact wallet authorisation was used before.
    error AgentRegistrySignatureReplayed(bytes32 digest);
    /// @notice An operator's expiry is not in the future.
    error AgentRegistryBadExpiry(uint64 expiry);
    /// @notice A score threshold above 10,000 basis points.
    error AgentRegistryBadScore(uint16 minScoreBps);
    /// @notice The operator is the owner itself, or the zero address.
    error AgentRegistryBadOperator(address operator);
    /// @notice A token limit is inconsistent (zero period with a cap, or per-tx cap above period cap).
    error AgentRegistryBadLimit(uint96 perTxCap, uint96 periodCap, uint32 period);
    /// @notice `operator` has no active authorisation for `agentId` (never set, revoked,
    ///         expired, or the agent changed hands).
    error AgentRegistryOperatorInactive(uint256 agentId, address operator);
    /// @notice `operator` has no limit for `token`.
    error AgentRegistryTokenNotAllowed(uint256 agentId, address operator, address token);
    /// @notice A spend of `amount` of `token` exceeds the per-transaction cap `cap`.
    error AgentRegistryPerTxCapExceeded(address token, uint256 amount, uint256 cap);
    /// @notice A spend of `amount` of `token` exceeds what is left for the period, `available`.
    error AgentRegistryPeriodCapExceeded(address token, uint256 amount, uint256 available);
    /// @notice The counterparty is not on the operator's allow-list.
    error AgentRegistryCounterpartyNotAllowed(uint256 counterpartyId);
    /// @notice The counterparty's reputation `score` is below the policy's `minScore`.
    error AgentRegistryCounterpartyScoreTooLow(uint256 counterpartyId, uint256 score, uint256 minScore);
    /// @notice A spend of zero.
    error AgentRegistryZeroAmount();
    /// @notice `serviceId` does not exist.
    error AgentRegistryUnknownService(uint256 serviceId);
    /// @notice A pay-per-use service needs a token and a non-zero price (a quoted one may give both as an indication).
    error AgentRegistryBadService();
    /// @notice The agent already lists the maximum number of services.
    error AgentRegistryTooManyServices(uint256 agentId, uint256 max);
    /// @notice An operator's allow-list change names a batch larger than allowed.
    error AgentRegistryBatchTooLarge(uint256 length, uint256 max);

    // ------------------------------------------------------------------ ERC-8004 identity

    /// @notice Registers a new agent without URI; the caller owns it.
    /// @return agentId The new agent's id (the first is 1).
    function register() external returns (uint256 agentId);

    /// @notice Registers a new agent with its registration-file URI; the caller owns it.
    /// @param agentURI Non-empty URI of the agent's registration file (at most 2,048 bytes).
    function register(string calldata agentURI) external returns (uint256 agentId);

    /// @notice Registers a new agent with a URI and on-chain metadata.
    /// @param agentURI Non-empty URI of the agent's registration file.
    /// @param metadata Up to 16 entries; keys 1-64 bytes, values at most 1,024 bytes; the key
    ///        "agentWallet" is reserved.
    function register(string calldata agentURI, MetadataEntry[] calldata metadata) external returns (uint256 agentId);

    /// @notice Changes an agent's URI. Controller only.
    function setAgentURI(uint256 agentId, string calldata newURI) external;

    /// @notice Sets (or, with an empty value, clears) one metadata entry. Controller only.
    function setMetadata(uint256 agentId, string calldata metadataKey, bytes calldata metadataValue) external;

    /// @notice Reads one metadata entry; "agentWallet" returns the explicitly set wallet
    ///         (20 bytes) or nothing.
    function getMetadata(uint256 agentId, string calldata metadataKey) external view returns (bytes memory);

    /// @notice Sets the agent wallet, proven by the wallet's EIP-712 signature over
    ///         `AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 deadline)`
    ///         (ERC-1271 for contract wallets). Controller only. Each signature works once, and
    ///         its deadline may lie at most 5 minutes ahead. The wallet is cleared when the agent
    ///         changes hands.
    function setAgentWallet(uint256 agentId, address newWallet, uint256 deadline, bytes calldata signature) external;

    /// @notice Clears the agent wallet (money then flows to and from the owner). Controller only.
    function unsetAgentWallet(uint256 agentId) external;

    /// @notice The address an agent's money comes from and goes to: its wallet, or its owner
    ///         when no wallet is set. Reverts for an unknown agent.
    function getAgentWallet(uint256 agentId) external view returns (address);

    /// @notice The ERC-8004 interface version this registry implements.
    function getVersion() external pure returns (string memory);

    // ------------------------------------------------------------------ agents

    /// @notice Pauses or resumes an agent: a paused agent takes no new work; work in progress
    ///         is untouched. Controller only.
    function setAgentPaused(uint256 agentId, bool paused) external;

    /// @notice Whether the agent exists and is not paused.
    function isAgentActive(uint256 agentId) external view returns (bool);

    /// @notice The owner of `agentId`, or the zero address when it does not exist.
    function ownerOfAgent(uint256 agentId) external view returns (address);

    /// @notice The number of agents ever registered (the last agentId).
    function agentCount() external view returns (uint256);

    // ------------------------------------------------------------------ operators

    /// @notice Authorises `operator` to act and spend for `agentId` until `terms.expiry`, or
    ///         changes its terms. Re-authorising a revoked operator, or one authorised under a
    ///         previous owner, starts from a clean policy (no limits, no allow-list, no spend
    ///         history); renewing an expired one keeps its policy. Controller only.
    function setOperator(uint256 agentId, address operator, OperatorTerms calldata terms) external;

    /// @notice Sets `operator`'s limit for `token`. A zero `periodCap` forbids the token.
    ///         Changing caps keeps what was already spent in the current window; a new period
    ///         length starts an empty one. The zero limit keeps the current period length (whatever
    ///         `period` it is given) and so the window: forbidding a token and allowing it again
    ///         with the same period gives no fresh cap. Controller only.
    function setTokenLimit(uint256 agentId, address operator, address token, TokenLimit calldata limit) external;

    /// @notice Adds or removes counterparty agents on `operator`'s allow-list (at most 32 per
    ///         call). Adding counterparty 0 (no agent yet: bidding and auto-match tasks) reverts
    ///         with {AgentRegistryUnknownAgent}. Ids are not checked otherwise: an id allow-listed
    ///         before it is registered goes to whoever registers it. Controller only.
    function setCounterparties(
        uint256 agentId,
        address operator,
        uint256[] calldata counterpartyIds,
        bool allowed
    ) external;

    /// @notice Revokes `operator` at once, with all its limits and allow-list entries.
    ///         Controller only; works while the registry is paused.
    function revokeOperator(uint256 agentId, address operator) external;

    /// @notice Checks that `spender` may spend `amount` of `token` for `agentId` towards
    ///         `counterpartyId` (0 when no agent is on the other side) and, for an operator,
    ///         debits its policy. The owner and the agent wallet always may. A counterparty that
    ///         does not exist has score 0 for minimum-score policies. The agent's own pause flag is
    ///         not checked here: callers hiring a provider check {isAgentActive}. Only contracts
    ///         holding `SPENDER_ROLE` (the payment contracts) call this; stopped while paused.
    /// @return byOperator True when `spender` is an operator whose policy was debited.
    function consumeSpend(
        uint256 agentId,
        address spender,
        address token,
        uint256 amount,
        uint256 counterpartyId
    ) external returns (bool byOperator);

    /// @notice Whether `account` may act for `agentId`: its owner, its wallet or an active operator.
    function canAct(uint256 agentId, address account) external view returns (bool);

    /// @notice An operator's terms and whether it is active now.
    function getOperator(uint256 agentId, address operator) external view returns (OperatorView memory);

    /// @notice A current (not revoked, same owner) operator's limit for `token`; all zero otherwise.
    function getTokenLimit(uint256 agentId, address operator, address token) external view returns (TokenLimit memory);

    /// @notice What `operator` may still spend of `token` right now, within both caps.
    function availableToSpend(uint256 agentId, address operator, address token) external view returns (uint256);

    /// @notice Whether `counterpartyId` is on a current (not revoked, same owner) operator's allow-list.
    function isCounterpartyAllowed(
        uint256 agentId,
        address operator,
        uint256 counterpartyId
    ) external view returns (bool);

    // ------------------------------------------------------------------ service catalog

    /// @notice Lists a new service for `agentId` (at most 64 per agent). Controller only.
    /// @param capability Non-zero capability tag.
    /// @param mode Payment mode; pay-per-use needs `token` and a non-zero `unitPrice`.
    /// @param endpoint Non-empty endpoint, at most 512 bytes.
    /// @return serviceId The new service's id (the first is 1).
    function listService(
        uint256 agentId,
        bytes32 capability,
        PaymentMode mode,
        address token,
        uint80 unitPrice,
        string calldata endpoint
    ) external returns (uint256 serviceId);

    /// @notice Changes a service's token, price, endpoint and active flag. Controller of its agent only.
    function updateService(
        uint256 serviceId,
        address token,
        uint80 unitPrice,
        bool active,
        string calldata endpoint
    ) external;

    /// @notice One service.
    function getService(uint256 serviceId) external view returns (Service memory);

    /// @notice The payment terms of a service in one cheap read (no endpoint copy), for PayPerUse.
    /// @return agentId The selling agent.
    /// @return token The payment token.
    /// @return unitPrice The price of one unit.
    /// @return payTo Where the agent is paid: its agent wallet, or its owner when unset.
    /// @return available Whether it can be charged now: active, pay-per-use, its agent not paused.
    function getServiceTerms(
        uint256 serviceId
    ) external view returns (uint256 agentId, address token, uint256 unitPrice, address payTo, bool available);

    /// @notice The ids of an agent's services, in listing order.
    function getAgentServices(uint256 agentId) external view returns (uint256[] memory);

    /// @notice The number of services ever listed (the last serviceId).
    function serviceCount() external view returns (uint256);

    // ------------------------------------------------------------------ admin

    /// @notice Sets the Reputation contract read by minimum-score policies. Admin only.
    function setReputation(address reputation) external;

    /// @notice The Reputation contract read by minimum-score policies.
    function reputation() external view returns (address);
}
