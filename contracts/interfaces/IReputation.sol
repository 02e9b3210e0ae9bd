// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IReputation
/// @notice One credit record per agent, built only from settled interactions, with the ERC-8004
///         ReputationRegistry ABI for feedback and a stricter rule on who may give it.
/// @dev Feedback rights. Each settled interaction grants **one** right to rate it:
///      - a settled task: the client agent's owner may rate the provider agent, and the
///        provider agent's owner may rate the client agent;
///      - settled calls (a charge or a session): the payer agent's owner may rate the provider.
///      The right goes to the rating agent's owner *address* at settlement (ERC-8004 keys feedback
///      by `clientAddress`) and carries a weight equal to the value settled (capped at 2^96 - 1).
///      Self-dealing (both agents with the same owner) grants no right and counts nothing.
///      `giveFeedback` without an unused right reverts; each feedback uses exactly one, and its
///      weight is the average weight of the rater's unused rights on that agent. A right earned
///      in a settled interaction stays valid if either agent changes hands later: the rating is
///      about that interaction. (ERC-8004's "no feedback from the agent's owner or approved
///      operators" rule is thereby replaced by the stricter "no feedback without a settled,
///      non-self-dealing interaction".)
///
///      Score (basis points, 0-10,000), readable with {score}:
///        R = weighted mean of the ratings, each rating read as a percentage
///            (value / 10^valueDecimals, clamped to 0-100, i.e. 0-10,000 bps) and weighted by the
///            value paid; R = 5,000 (neutral) while an agent has no rating.
///        P = 2 x (tasks completed + auto-completed + disputes won) + disputes split
///        N = 2 x tasks refunded + 4 x disputes lost + disputes split
///        score = R x (P + 2) / (P + N + 2)
///      Integer arithmetic, rounding down at each step: every rating to whole basis points, then
///      the weighted mean R, then the score.
///      So the score never exceeds the rating mean, successes pull it up towards R, refunds pull
///      it down and lost disputes twice as hard. Evaluator votes and calls served are recorded
///      but do not enter the score.
interface IReputation {
    // ------------------------------------------------------------------ types

    /// @notice The terminal outcome of a task, as reported by TaskEscrow.
    enum TaskOutcome {
        Completed, // client approved the delivery
        AutoCompleted, // client silent past the review period; provider paid
        Refunded, // provider refunded the client (timeout, agreement or cancellation)
        DisputeProviderWon, // ruling paid the provider everything
        DisputeClientWon, // ruling refunded the client everything
        DisputeSplit // ruling split the escrow
    }

    /// @notice An agent's aggregates, readable in one call.
    /// @dev Task outcome counters are kept on the provider's record; dispute outcomes on both
    ///      sides' records; `tasksAsClient` counts every task the agent settled as client.
    ///      Three storage slots: task counters, ratings, calls and votes.
    struct AgentRecord {
        uint32 tasksCompleted;
        uint32 tasksAutoCompleted;
        uint32 tasksRefunded;
        uint32 disputesWon;
        uint32 disputesLost;
        uint32 disputesSplit;
        uint32 tasksAsClient;
        uint32 lastActivity; // timestamp of the last recorded interaction
        uint32 ratingCount; // feedback given and not revoked
        uint104 ratingWeight; // sum of the weights of those ratings
        uint120 ratingWeightedBps; // sum of weight x rating (bps)
        uint64 callsServed;
        uint32 settlementsServed; // pay-per-use settlements as provider
        uint32 votesCoherent;
        uint32 votesIncoherent;
    }

    // ------------------------------------------------------------------ events (ERC-8004)

    /// @notice Feedback was given (ERC-8004).
    event NewFeedback(
        uint256 indexed agentId,
        address indexed clientAddress,
        uint64 feedbackIndex,
        int128 value,
        uint8 valueDecimals,
        string indexed indexedTag1,
        string tag1,
        string tag2,
        string endpoint,
        string feedbackURI,
        bytes32 feedbackHash
    );
    /// @notice Feedback was revoked by the client that gave it (ERC-8004).
    event FeedbackRevoked(uint256 indexed agentId, address indexed clientAddress, uint64 indexed feedbackIndex);
    /// @notice A response was appended to feedback (ERC-8004).
    event ResponseAppended(
        uint256 indexed agentId,
        address indexed clientAddress,
        uint64 feedbackIndex,
        address indexed responder,
        string responseURI,
        bytes32 responseHash
    );

    // ------------------------------------------------------------------ events (records)

    /// @notice A task outcome was recorded. `selfDealing` outcomes change no record.
    event TaskRecorded(
        uint256 indexed clientId,
        uint256 indexed providerId,
        TaskOutcome outcome,
        address token,
        uint256 amount,
        bool selfDealing
    );
    /// @notice Settled pay-per-use calls were recorded: `calls` calls worth `amount` over
    ///         `settlements` settlements (charges or sessions). `selfDealing` ones change no record.
    event CallsRecorded(
        uint256 indexed payerId,
        uint256 indexed providerId,
        address token,
        uint256 calls,
        uint256 amount,
        uint256 settlements,
        bool selfDealing
    );
    /// @notice An evaluator's vote was recorded as coherent with the ruling or not.
    event VoteRecorded(uint256 indexed evaluatorId, bool coherent);
    /// @notice `rater` received `count` rights to rate `agentId`, of `weight` in total.
    event FeedbackRightGranted(uint256 indexed agentId, address indexed rater, uint256 count, uint256 weight);

    // ------------------------------------------------------------------ errors

    /// @notice `agentId` does not exist in the identity registry.
    error ReputationUnknownAgent(uint256 agentId);
    /// @notice `rater` holds no unused right to rate `agentId`.
    error ReputationNoFeedbackRight(uint256 agentId, address rater);
    /// @notice `valueDecimals` above 18 or `|value|` above 1e38.
    error ReputationBadValue(int128 value, uint8 valueDecimals);
    /// @notice A string of `length` bytes exceeds `max`.
    error ReputationInputTooLong(uint256 length, uint256 max);
    /// @notice A required string is empty.
    error ReputationEmptyInput();
    /// @notice No feedback with `feedbackIndex` from `client` on `agentId`.
    error ReputationUnknownFeedback(uint256 agentId, address client, uint64 feedbackIndex);
    /// @notice The feedback was already revoked.
    error ReputationAlreadyRevoked(uint256 agentId, address client, uint64 feedbackIndex);
    /// @notice `getSummary` needs a non-empty list of client addresses (ERC-8004 v2).
    error ReputationClientsRequired();
    /// @notice An interaction between an agent and itself.
    error ReputationSameAgent(uint256 agentId);
    /// @notice A recorded amount, or a number of calls, of zero.
    error ReputationZeroAmount();

    // ------------------------------------------------------------------ reporters

    /// @notice Records a task's terminal outcome for both agents and grants each owner one right
    ///         to rate the other. `REPORTER_ROLE` only (TaskEscrow).
    /// @param amount The value the client paid the provider, in `token` units, gross of the
    ///        protocol fee: the price, the ruling's share of it, or 0 for a refund. The volume of
    ///        both agents and the weight of both rights (a refund moves no money, so its ratings
    ///        weigh nothing: review finding RP-1).
    function recordTask(
        uint256 clientId,
        uint256 providerId,
        TaskOutcome outcome,
        address token,
        uint256 amount
    ) external;

    /// @notice Records `calls` settled calls worth `amount`, over `settlements` settlements
    ///         (charge receipts or sessions, at least one), and grants the payer's owner one right
    ///         per settlement to rate the provider; the rights share `amount` as their weight.
    ///         `REPORTER_ROLE` only (PayPerUse).
    function recordCalls(
        uint256 payerId,
        uint256 providerId,
        address token,
        uint256 calls,
        uint256 amount,
        uint256 settlements
    ) external;

    /// @notice Records whether an evaluator voted with the ruling. `REPORTER_ROLE` only
    ///         (EvaluatorStaking).
    function recordVote(uint256 evaluatorId, bool coherent) external;

    // ------------------------------------------------------------------ ERC-8004 feedback

    /// @notice Rates `agentId`, using one of the caller's feedback rights (see above).
    /// @param value Signed fixed-point rating; for the score it is read as a percentage.
    /// @param valueDecimals Decimals of `value`, 0-18.
    /// @param tag1 Optional tag, at most 64 bytes (filterable in {getSummary}).
    /// @param tag2 Optional tag, at most 64 bytes.
    /// @param endpoint Optional endpoint rated, at most 512 bytes (emitted only).
    /// @param feedbackURI Optional off-chain feedback file, at most 2,048 bytes (emitted only).
    /// @param feedbackHash Optional hash of that file (emitted only).
    function giveFeedback(
        uint256 agentId,
        int128 value,
        uint8 valueDecimals,
        string calldata tag1,
        string calldata tag2,
        string calldata endpoint,
        string calldata feedbackURI,
        bytes32 feedbackHash
    ) external;

    /// @notice Revokes the caller's own feedback; its weight leaves the score. The right it used
    ///         is not given back.
    function revokeFeedback(uint256 agentId, uint64 feedbackIndex) external;

    /// @notice Appends a response (for example the agent's reply, or a spam tag by an indexer)
    ///         to a feedback. Anyone may respond. `responseURI` is required, at most 2,048 bytes.
    function appendResponse(
        uint256 agentId,
        address clientAddress,
        uint64 feedbackIndex,
        string calldata responseURI,
        bytes32 responseHash
    ) external;

    /// @notice Average of the non-revoked feedback from `clientAddresses` (required, non-empty)
    ///         matching the tags (an empty tag matches all), computed in 18 decimals and returned
    ///         in the most frequent `valueDecimals` of the matches (ERC-8004 v2), or in as many
    ///         fewer decimals as needed to keep `|summaryValue|` within 1e38, the bound of a value
    ///         (a mean of values in few decimals may not fit many: 1e38 in 0 decimals is 1e56 in
    ///         18). Every division truncates towards zero.
    function getSummary(
        uint256 agentId,
        address[] calldata clientAddresses,
        string calldata tag1,
        string calldata tag2
    ) external view returns (uint64 count, int128 summaryValue, uint8 summaryValueDecimals);

    /// @notice One feedback entry (indices start at 1).
    function readFeedback(
        uint256 agentId,
        address clientAddress,
        uint64 feedbackIndex
    ) external view returns (int128 value, uint8 valueDecimals, string memory tag1, string memory tag2, bool isRevoked);

    /// @notice All feedback from `clientAddresses` (every client when empty) matching the tags.
    /// @dev A view for off-chain callers: it walks the lists it reads.
    function readAllFeedback(
        uint256 agentId,
        address[] calldata clientAddresses,
        string calldata tag1,
        string calldata tag2,
        bool includeRevoked
    )
        external
        view
        returns (
            address[] memory clients,
            uint64[] memory feedbackIndexes,
            int128[] memory values,
            uint8[] memory valueDecimals,
            string[] memory tag1s,
            string[] memory tag2s,
            bool[] memory revokedStatuses
        );

    /// @notice Every address that gave `agentId` feedback, in order of first feedback.
    function getClients(uint256 agentId) external view returns (address[] memory);

    /// @notice The index of `clientAddress`'s last feedback on `agentId` (0 when none).
    function getLastIndex(uint256 agentId, address clientAddress) external view returns (uint64);

    /// @notice Number of responses: to one feedback, to all of a client's (`feedbackIndex` 0),
    ///         or to all of an agent's (`clientAddress` zero); from `responders`, or from anyone
    ///         when empty.
    function getResponseCount(
        uint256 agentId,
        address clientAddress,
        uint64 feedbackIndex,
        address[] calldata responders
    ) external view returns (uint64 count);

    /// @notice The identity registry the agents live in.
    function getIdentityRegistry() external view returns (address);

    /// @notice The implementation version.
    function getVersion() external pure returns (string memory);

    // ------------------------------------------------------------------ aggregates

    /// @notice The agent's score in basis points (formula above).
    function score(uint256 agentId) external view returns (uint256);

    /// @notice The agent's aggregates.
    function getRecord(uint256 agentId) external view returns (AgentRecord memory);

    /// @notice Value the agent settled in `token`, as either party.
    function getVolume(uint256 agentId, address token) external view returns (uint256);

    /// @notice `rater`'s unused rights to rate `agentId` and their total weight.
    function feedbackRights(uint256 agentId, address rater) external view returns (uint64 count, uint256 weight);
}
