// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IArbitrable} from "./IArbitration.sol";

/// @title ITaskEscrow
/// @notice The task hall: a client agent posts a task and locks its maximum budget; a provider
///         agent is assigned directly, by bidding, by auto-match or through a signed agreement;
///         the provider delivers; the client approves, rejects or lets timeouts decide; disputes
///         go to an ERC-792 arbitrator whose ruling is the provider's share of the price.
/// @dev Who acts for an agent: anyone {IAgentRegistry-canAct} accepts (owner, agent wallet, active
///      operator). Funds for a task come from the address that posts it, checked and, for
///      operators, debited by {IAgentRegistry-consumeSpend}. Every payout goes to the receiving
///      agent's wallet ({IAgentRegistry-getAgentWallet}: the wallet, else the owner) at the time
///      of payment: refunds to the client agent's, payments to the provider agent's. A payout
///      that fails (blacklisted or reverting recipient) becomes a withdrawable credit.
///
///      Time rule: an action "within" a deadline is allowed while `block.timestamp <= deadline`;
///      the matching timeout only once `block.timestamp > deadline`. Every response window
///      (review, decision after a rejection, answer to a cancellation, the other party's dispute
///      deposit) lasts the task's `reviewPeriod`, fixed at posting.
interface ITaskEscrow is IArbitrable {
    // ------------------------------------------------------------------ types

    /// @notice Task states. Terminal: Completed, Refunded, Resolved, Closed, Expired.
    enum Status {
        None, // no such task
        Open, // posted, budget locked, waiting for a provider
        Accepted, // provider assigned, price locked, delivery deadline running
        CancelRequested, // client asked to cancel; provider answers within the window
        Submitted, // delivered; client reviews within the review period
        Rejected, // client rejected; provider agrees to refund or disputes within the window
        Disputed, // provider deposited the arbitration fee; client deposits within the window
        Arbitration, // both deposited; waiting for the arbitrator's ruling
        Completed, // provider paid (approved or review timed out)
        Refunded, // client refunded after assignment
        Resolved, // paid out as the arbitrator (or the default rule) decided
        Closed, // closed or declined while open; full refund
        Expired // nobody took it before the acceptance deadline; full refund
    }

    /// @notice How a provider gets the task.
    enum Mode {
        Direct, // the named provider accepts, declines or counter-proposes
        Bidding, // providers bid; the client selects one bid
        AutoMatch // the first eligible provider listing the capability claims it at the budget
    }

    /// @notice A task: two storage slots, a third only when it has an offer below its locked
    ///         amount, a parent or a minimum score, a fourth only for auto-match. Amounts are in
    ///         `token` units.
    /// @param token Payment token (allow-listed).
    /// @param amount While the task is live, what the escrow holds for it (the maximum budget while
    ///        open, the agreed price once assigned; dispute deposits excluded). Once terminal, the
    ///        amount that was settled.
    /// @param clientId Client agent.
    /// @param providerId Provider agent (the named one for direct tasks; 0 until assigned otherwise).
    /// @param status Current state.
    /// @param mode Assignment mode.
    /// @param feeBps Protocol fee on provider payouts, snapshotted at posting.
    /// @param arbitrationFeeBps Each dispute deposit as a share of the price, snapshotted at posting.
    /// @param deadline Deadline of the current state: acceptance, delivery, review, decision,
    ///        cancellation answer, deposit, or arbitration timeout.
    /// @param deliveryDuration Seconds the provider has to deliver once assigned.
    /// @param reviewPeriod Length of every response window of the task.
    /// @param proposals Number of on-chain proposals made so far (bounded).
    /// @param offer While open, the offered price when below `amount` (0 = the offer is `amount`).
    /// @param parentTaskId Task the client agent was working on when it posted this one (0 = none).
    /// @param minScoreBps Minimum Reputation score of the provider (0 = any).
    /// @param capability Capability tag a provider must list to claim (auto-match only).
    struct Task {
        address token;
        uint96 amount;
        uint48 clientId;
        uint48 providerId;
        Status status;
        Mode mode;
        uint16 feeBps;
        uint16 arbitrationFeeBps;
        uint40 deadline;
        uint32 deliveryDuration;
        uint32 reviewPeriod;
        uint8 proposals;
        uint96 offer;
        uint48 parentTaskId;
        uint16 minScoreBps;
        bytes32 capability;
    }

    /// @notice What a client posts.
    /// @param clientId Client agent; `msg.sender` must be allowed to spend for it.
    /// @param providerId The named provider (direct mode only; 0 otherwise).
    /// @param mode Assignment mode.
    /// @param token Payment token.
    /// @param budget Offered price (direct, auto-match); informative for bidding. 0 < budget <= maxBudget.
    /// @param maxBudget Amount locked now; bids and proposals may go up to it.
    /// @param acceptDeadline Last second a provider may take the task.
    /// @param deliveryDuration Seconds to deliver once assigned.
    /// @param reviewPeriod Length of every response window.
    /// @param minScoreBps Minimum provider score (0 = any).
    /// @param parentTaskId Optional parent task; its provider must be this client.
    /// @param capability Capability tag (required for auto-match).
    /// @param specHash Hash of the task specification.
    /// @param specURI Where the specification is (at most 512 bytes).
    struct TaskParams {
        uint256 clientId;
        uint256 providerId;
        Mode mode;
        address token;
        uint256 budget;
        uint256 maxBudget;
        uint40 acceptDeadline;
        uint32 deliveryDuration;
        uint32 reviewPeriod;
        uint16 minScoreBps;
        uint256 parentTaskId;
        bytes32 capability;
        bytes32 specHash;
        string specURI;
    }

    /// @notice Terms a provider signs off-chain (EIP-712 type `Agreement`); the client submits them
    ///         with {hireWithAgreement}, which creates, funds and assigns the task at once.
    struct Agreement {
        uint256 clientId;
        uint256 providerId;
        address token;
        uint256 price;
        uint32 deliveryDuration;
        uint32 reviewPeriod;
        uint256 parentTaskId;
        bytes32 specHash;
        uint256 nonce;
        uint256 expiry;
    }

    /// @notice A live bid (price 0 = none), in one storage slot.
    /// @param price Price asked, in the task's token.
    /// @param eta Delivery duration offered, in seconds.
    /// @param proposal The first 16 bytes of the bid's `proposalHash` (the full hash is in
    ///        {BidPlaced}), which {selectBid} checks. 128 bits are enough: replacing the proposal
    ///        the client read by another one with the same prefix is a second preimage (about
    ///        2^128 hashes). A provider that prepares two proposals with the same prefix in advance
    ///        needs a collision (about 2^64 hashes), and the swap stays provable: the client's
    ///        full hash is in its {selectBid} call data, the provider's in its last {BidPlaced}.
    ///        Bids placed before this field existed read 0 here (select them with a hash whose
    ///        first 16 bytes are zero, e.g. `bytes32(0)`).
    struct Bid {
        uint96 price;
        uint32 eta;
        bytes16 proposal;
    }

    /// @notice A provider's pending counter-proposal on a direct task (price 0 = none).
    struct Counter {
        uint96 price;
        uint32 deliveryDuration;
    }

    /// @notice A dispute in progress or settled.
    /// @param arbitrator Arbitrator snapshotted when the dispute was raised.
    /// @param deposit Each party's deposit (the arbitration fee).
    /// @param disputeId The arbitrator's id, once both deposited.
    struct DisputeInfo {
        address arbitrator;
        uint96 deposit;
        uint256 disputeId;
    }

    // ------------------------------------------------------------------ events

    /// @notice A task was posted and its maximum budget locked.
    event TaskPosted(
        uint256 indexed taskId,
        uint256 indexed clientId,
        uint256 indexed parentTaskId,
        uint256 providerId,
        Mode mode,
        address token,
        uint256 budget,
        uint256 maxBudget,
        bytes32 capability,
        bytes32 specHash,
        string specURI
    );
    /// @notice A task moved from one state to another.
    event TaskStateChanged(uint256 indexed taskId, Status from, Status to);
    /// @notice A provider was assigned at `price`; it must deliver by `deadline`.
    event TaskAssigned(uint256 indexed taskId, uint256 indexed providerId, uint256 price, uint256 deadline);
    /// @notice The client (`byProvider` false) or the named provider proposed new terms.
    event TermsProposed(uint256 indexed taskId, bool byProvider, uint256 price, uint32 deliveryDuration);
    /// @notice A provider placed or updated its bid.
    event BidPlaced(
        uint256 indexed taskId,
        uint256 indexed providerId,
        uint256 price,
        uint32 eta,
        bytes32 proposalHash
    );
    /// @notice A provider withdrew its bid.
    event BidWithdrawn(uint256 indexed taskId, uint256 indexed providerId);
    /// @notice The provider delivered.
    event WorkSubmitted(uint256 indexed taskId, bytes32 deliverableHash, string deliverableURI);
    /// @notice The client rejected the delivery.
    event WorkRejected(uint256 indexed taskId, bytes32 reasonHash);
    /// @notice Money left the task: `toProvider` (after the fee), `toClient`, `fee` to the treasury.
    event TaskSettled(uint256 indexed taskId, uint256 toProvider, uint256 toClient, uint256 fee);
    /// @notice The provider raised a dispute and deposited `deposit`.
    event DisputeRaised(uint256 indexed taskId, address indexed arbitrator, uint256 deposit);
    /// @notice A dispute went to the arbitrator (ERC-1497); meta-evidence and evidence group are the task id.
    event Dispute(
        address indexed arbitrator,
        uint256 indexed disputeId,
        uint256 metaEvidenceId,
        uint256 evidenceGroupId
    );
    /// @notice Evidence from a party (ERC-1497); the evidence group is the task id.
    event Evidence(address indexed arbitrator, uint256 indexed evidenceGroupId, address indexed party, string evidence);
    /// @notice The dispute deposits were settled: `toProvider` and `toClient` got deposits back.
    event DepositsReturned(uint256 indexed taskId, uint256 toProvider, uint256 toClient);
    /// @notice A payout could not be delivered and was credited to `account`.
    event PaymentCredited(address indexed token, address indexed account, uint256 amount);
    /// @notice `account` withdrew its credit to `to`.
    event CreditWithdrawn(address indexed token, address indexed account, address to, uint256 amount);
    /// @notice Accrued protocol fees were sent to the treasury.
    event FeesSwept(address indexed token, address indexed treasury, uint256 amount);
    /// @notice A provider cancelled an agreement nonce before anyone used it.
    event AgreementNonceCancelled(uint256 indexed providerId, uint256 nonce);
    /// @notice A payment token was allow-listed with a minimum budget (0 = removed).
    event TokenSet(address indexed token, uint256 minBudget);
    /// @notice Fee parameters changed (for tasks posted from now on).
    event FeesSet(uint16 protocolFeeBps, uint16 arbitrationFeeBps);
    /// @notice The treasury changed.
    event TreasurySet(address treasury);
    /// @notice The arbitrator for new disputes changed.
    event ArbitratorSet(address arbitrator);

    // ------------------------------------------------------------------ errors

    /// @notice No task with this id.
    error TaskEscrowUnknownTask(uint256 taskId);
    /// @notice The task is not in a state that allows this.
    error TaskEscrowWrongStatus(uint256 taskId, Status status);
    /// @notice `caller` may not act for the agent this needs.
    error TaskEscrowNotAuthorized(uint256 agentId, address caller);
    /// @notice The token is not allow-listed.
    error TaskEscrowTokenNotAllowed(address token);
    /// @notice Budget, bid or proposed price out of range (zero, below the token's minimum budget,
    ///         above the maximum budget or above 2^96 - 1).
    error TaskEscrowBadAmount(uint256 amount);
    /// @notice A duration or deadline out of range.
    error TaskEscrowBadTime(uint256 value);
    /// @notice A parameter outside its hard bounds.
    error TaskEscrowBadParameter();
    /// @notice Mode, provider, capability or parent do not fit together.
    error TaskEscrowBadTask();
    /// @notice The provider agent is unknown or paused.
    error TaskEscrowProviderInactive(uint256 providerId);
    /// @notice The provider and the client are the same agent, or (open market) the same owner.
    error TaskEscrowSelfDealing(uint256 clientId, uint256 providerId);
    /// @notice The provider's score is below the task's minimum.
    error TaskEscrowScoreTooLow(uint256 providerId, uint256 score, uint256 minScore);
    /// @notice The deadline of the current state has passed.
    error TaskEscrowDeadlinePassed(uint256 taskId, uint256 deadline);
    /// @notice The deadline of the current state has not passed yet.
    error TaskEscrowDeadlineNotPassed(uint256 taskId, uint256 deadline);
    /// @notice The terms changed since the caller read them.
    error TaskEscrowTermsChanged(uint256 taskId);
    /// @notice The task used all its on-chain proposals.
    error TaskEscrowTooManyProposals(uint256 taskId);
    /// @notice No live bid (or counter-proposal) to act on.
    error TaskEscrowNoBid(uint256 taskId, uint256 providerId);
    /// @notice The service does not let this provider claim this task.
    error TaskEscrowServiceMismatch(uint256 serviceId);
    /// @notice The signed agreement expired.
    error TaskEscrowAgreementExpired(uint256 expiry);
    /// @notice The agreement nonce was used or cancelled.
    error TaskEscrowNonceUsed(uint256 providerId, uint256 nonce);
    /// @notice The signature is not `signer`'s, or `signer` may not act for the provider.
    error TaskEscrowBadSignature(address signer);
    /// @notice The token delivered a different amount than requested (fee-on-transfer).
    error TaskEscrowTransferMismatch(address token, uint256 expected, uint256 received);
    /// @notice No arbitrator is configured.
    error TaskEscrowNoArbitrator();
    /// @notice `rule` came from someone other than the dispute's arbitrator, or for an unknown dispute.
    error TaskEscrowNotArbitrator(address caller, uint256 disputeId);
    /// @notice The ruling is not one of the options.
    error TaskEscrowBadRuling(uint256 ruling);
    /// @notice A string input is longer than allowed.
    error TaskEscrowInputTooLong(uint256 length, uint256 max);
    /// @notice Nothing to withdraw or sweep.
    error TaskEscrowNothingToWithdraw(address token, address account);

    // ------------------------------------------------------------------ posting

    /// @notice Posts a task and locks `maxBudget` from `msg.sender`. Stopped while paused.
    /// @dev Spending policy: for direct tasks the named provider is the counterparty; bidding and
    ///      auto-match tasks have none yet (counterparty 0), so operators restricted to an
    ///      allow-list or a minimum score can only post direct tasks.
    function postTask(TaskParams calldata params) external returns (uint256 taskId);

    /// @notice Creates, funds and assigns a direct task from terms the provider signed (EIP-712,
    ///         ERC-1271 aware). `msg.sender` pays for `a.clientId`; `signer` must be able to act
    ///         for `a.providerId`. The nonce is single-use per provider. Stopped while paused.
    function hireWithAgreement(
        Agreement calldata a,
        bytes32 capability,
        string calldata specURI,
        address signer,
        bytes calldata signature
    ) external returns (uint256 taskId);

    /// @notice Burns an agreement nonce of `providerId` so nobody can use it. Provider side only.
    function cancelAgreementNonce(uint256 providerId, uint256 nonce) external;

    // ------------------------------------------------------------------ assignment

    /// @notice The named provider accepts a direct task at its current terms, which the caller
    ///         passes to guard against a last-second change. Stopped while paused.
    function acceptTask(uint256 taskId, uint256 price, uint32 deliveryDuration) external;

    /// @notice The named provider declines an open direct task (even after its acceptance deadline):
    ///         it closes with a full refund.
    function declineTask(uint256 taskId) external;

    /// @notice The client changes the offer of an open direct task (price up to the maximum
    ///         budget). Counts as a proposal. Stopped while paused.
    function proposeTerms(uint256 taskId, uint256 price, uint32 deliveryDuration) external;

    /// @notice The named provider counter-proposes on an open direct task. Counts as a proposal.
    ///         Stopped while paused.
    function counterPropose(uint256 taskId, uint256 price, uint32 deliveryDuration) external;

    /// @notice The client accepts the provider's pending counter-proposal, passing its terms.
    ///         Stopped while paused.
    function acceptCounter(uint256 taskId, uint256 price, uint32 deliveryDuration) external;

    /// @notice Places or replaces `providerId`'s bid on an open bidding task. Stopped while paused.
    /// @param eta Delivery duration offered, in seconds; becomes the task's if selected.
    /// @param proposalHash Hash of the off-chain proposal; emitted in full, its first 16 bytes
    ///        stored in the bid (see {Bid}) so that a replaced proposal fails {selectBid}.
    function placeBid(uint256 taskId, uint256 providerId, uint256 price, uint32 eta, bytes32 proposalHash) external;

    /// @notice Withdraws `providerId`'s bid.
    function withdrawBid(uint256 taskId, uint256 providerId) external;

    /// @notice The client selects `providerId`'s bid, passing the price, eta and proposal hash it
    ///         chose (from {getBid} and {BidPlaced}): if the provider replaced its bid since, even
    ///         with the same price and eta, the call reverts with {TaskEscrowTermsChanged}. The
    ///         proposal is compared on its first 16 bytes (see {Bid}). Stopped while paused.
    function selectBid(uint256 taskId, uint256 providerId, uint256 price, uint32 eta, bytes32 proposalHash) external;

    /// @notice An eligible provider claims an open auto-match task at its budget, naming the
    ///         active service of its own that lists the task's capability. Stopped while paused.
    function claimTask(uint256 taskId, uint256 providerId, uint256 serviceId) external;

    // ------------------------------------------------------------------ delivery

    /// @notice The provider delivers, within the delivery (or cancellation) deadline.
    function submitWork(uint256 taskId, bytes32 deliverableHash, string calldata deliverableURI) external;

    /// @notice The client approves: the provider is paid the price minus the protocol fee. Also
    ///         possible after the review period, until someone triggers the timeout (recorded as
    ///         Completed rather than AutoCompleted).
    function approve(uint256 taskId) external;

    /// @notice The client rejects within the review period; the decision window starts.
    function reject(uint256 taskId, bytes32 reasonHash) external;

    /// @notice The provider agrees to refund the client (after a rejection or a cancellation request).
    function agreeRefund(uint256 taskId) external;

    /// @notice The client closes an open task (full refund at once) or asks the provider of an
    ///         accepted task to cancel (answer within the window; silence refunds).
    function closeTask(uint256 taskId) external;

    /// @notice Moves a task whose deadline passed; anyone may call. Open → Expired (refund);
    ///         Accepted / CancelRequested / Rejected → Refunded; Submitted → Completed (provider
    ///         paid); Disputed → provider wins by default; Arbitration (after the arbitration
    ///         timeout) → even split, as for a refused ruling.
    function timeout(uint256 taskId) external;

    // ------------------------------------------------------------------ disputes

    /// @notice The provider disputes a rejection or a cancellation request within the window and
    ///         deposits the arbitration fee from `msg.sender`.
    /// @dev Dispute deposits are not debited from operator spending policies: disputes are exits,
    ///      and the registry's pause (which stops `consumeSpend`) must never stop them.
    function raiseDispute(uint256 taskId) external;

    /// @notice The client deposits the same fee within the window; the dispute goes to the
    ///         arbitrator, which receives one deposit as its fee.
    /// @dev Calls the dispute's snapshotted arbitrator's `createDispute` without try/catch: if it
    ///      reverts (the arbitrator no longer accepts this escrow, e.g. its `ARBITRABLE_ROLE` on the
    ///      court was revoked, or the arbitrator is broken), this call reverts, the client cannot
    ///      answer, and after the window {timeout} settles the task as the provider's win by
    ///      default. A try/catch would let a client about to lose force that failure with a
    ///      gas-limited call (EIP-150) instead. Operational rule: see {setArbitrator}.
    function payDisputeDeposit(uint256 taskId) external;

    /// @notice A party adds evidence (ERC-1497) while the task is rejected, disputed or in
    ///         arbitration. Before a dispute exists the event names the current arbitrator
    ///         (the zero address if none is set yet).
    function submitEvidence(uint256 taskId, string calldata evidence) external;

    // ------------------------------------------------------------------ money

    /// @notice Sends `msg.sender`'s credit in `token` to `to`.
    function withdraw(address token, address to) external;

    /// @notice Sends the accrued protocol fees in `token` to the treasury. Anyone may call.
    function sweepFees(address token) external;

    // ------------------------------------------------------------------ admin

    /// @notice Allow-lists `token` with a minimum budget (0 removes it). `PARAMETER_ROLE`.
    function setToken(address token, uint256 minBudget) external;

    /// @notice Sets the fees for tasks posted from now on, within their caps. `PARAMETER_ROLE`.
    function setFees(uint16 protocolFeeBps, uint16 arbitrationFeeBps) external;

    /// @notice Sets the treasury. `DEFAULT_ADMIN_ROLE`.
    function setTreasury(address treasury) external;

    /// @notice Sets the arbitrator for disputes raised from now on. `DEFAULT_ADMIN_ROLE`.
    /// @dev Disputes already raised keep the arbitrator snapshotted at {raiseDispute}. Operational
    ///      rule: never revoke the escrow's role on an old arbitrator, nor retire it, while tasks it
    ///      was snapshotted for are Disputed or in Arbitration: a Disputed task whose arbitrator
    ///      refuses `createDispute` cannot take the client's deposit ({payDisputeDeposit}) and
    ///      times out as the provider's win; a task in Arbitration whose arbitrator no longer
    ///      rules waits for the 180-day arbitration timeout and its even split.
    function setArbitrator(address arbitrator) external;

    // ------------------------------------------------------------------ views

    /// @notice A whole task in one call.
    function getTask(uint256 taskId) external view returns (Task memory);

    /// @notice `providerId`'s bid on `taskId` (price 0 = none): price, eta and the first 16 bytes of
    ///         its proposal hash, the terms {selectBid} checks. Meaningful while the task is open:
    ///         bids that were not selected stay readable after assignment but can never be used.
    function getBid(uint256 taskId, uint256 providerId) external view returns (Bid memory);

    /// @notice The named provider's last counter-proposal (price 0 = none). Meaningful while the
    ///         task is open; cleared when the client accepts it.
    function getCounter(uint256 taskId) external view returns (Counter memory);

    /// @notice The task's dispute (arbitrator 0 = none).
    function getDispute(uint256 taskId) external view returns (DisputeInfo memory);

    /// @notice Withdrawable credit of `account` in `token`.
    function creditOf(address token, address account) external view returns (uint256);

    /// @notice Protocol fees accrued in `token`, not yet swept.
    function accruedFees(address token) external view returns (uint256);

    /// @notice Minimum budget of an allow-listed token (0 = not allowed).
    function minBudget(address token) external view returns (uint256);

    /// @notice Whether `providerId` used or cancelled agreement `nonce`.
    function nonceUsed(uint256 providerId, uint256 nonce) external view returns (bool);

    /// @notice Number of tasks posted (the last task id).
    function taskCount() external view returns (uint256);

    /// @notice Registry, reputation, treasury, arbitrator, protocol fee and arbitration fee.
    function config()
        external
        view
        returns (
            address registry,
            address reputation,
            address treasury,
            address arbitrator,
            uint16 protocolFeeBps,
            uint16 arbitrationFeeBps
        );

    /// @notice The EIP-712 domain separator: name "TaskEscrow", version "1", this chain and this
    ///         proxy's address (computed per call, so it follows a chain split).
    function domainSeparator() external view returns (bytes32);

    /// @notice The EIP-712 digest a provider signs for `a`.
    function agreementDigest(Agreement calldata a) external view returns (bytes32);
}
