// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IPayPerUse
/// @notice Instant payments for the services of the Agent Market (DESIGN §1.4): charges, signed
///         charges in the style of x402 "exact", up-to payments, and sessions (one-way payment
///         channels) paid with cumulative vouchers.
/// @dev Who pays. A payment is made for a *payer agent* (`payerId`) by an account that may spend
///      for it: the agent's owner, its agent wallet, or an operator within its spending policy
///      (checked and debited in the registry's `consumeSpend`, for every charge, up-to payment,
///      session deposit and top-up). The funds come from that account (`msg.sender` for direct
///      calls, the signer for signed authorisations). Providers are paid at their agent wallet
///      (the owner when unset), read at payment time; a provider that cannot receive (a
///      blacklisting token, a reverting contract) is credited a balance it withdraws later.
///      Refunds and the rest of a session go to the payer agent's wallet.
///
///      Money. Every payment goes through this contract: the total is pulled (fee-on-transfer
///      behaviour is rejected by a balance check), the protocol fee (`feeBps` of the total,
///      rounded down) accrues for the treasury, and the rest is pushed to the provider. A session's
///      fee is taken on its cumulative redeemed amount and booked when it is settled. So the
///      contract's balance of a token is always the sum, over unsettled sessions, of the deposit
///      less what the provider was paid, plus the credits and the unswept fees.
///
///      Prices come from the registry's service catalog: a service must be active, in pay-per-use
///      mode, priced in an allow-listed token, and its agent not paused. Sessions are priced off
///      chain (the voucher carries the cumulative amount) and paid in an allow-listed token.
///
///      Reputation. Charges and up-to payments are counted per (payer, provider, token) in one slot
///      here and recorded in Reputation by {syncReputation}, which anyone may call (the provider
///      to show its calls served, the payer to get its rights to rate): one right per receipt,
///      with the calls (units) and the amount. Only positive facts wait (calls, volume, rights),
///      so nobody gains by not syncing; it saves a Reputation call (about 45,000 gas) per charge.
///      A session records its calls and the total redeemed once, when it is settled: one right
///      per session. Charges between two agents of the same owner (owners as of the sync or the
///      settlement) are recorded as self-dealing (no right); an agent cannot pay itself.
///
///      Pausing stops new charges, signed charges, up-to payments, session openings and top-ups.
///      Redeeming, closing, settling sessions, refunds, withdrawals and fee sweeps never stop.
interface IPayPerUse {
    // ------------------------------------------------------------------ types

    /// @notice How a signed charge or up-to payment pulls the payer's funds.
    /// @dev `Allowance`: an ERC-20 allowance to this contract, `fundingData` empty.
    ///      `Permit`: an EIP-2612 permit for this contract carried in the call, `fundingData` =
    ///      `abi.encode(uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)`; a permit
    ///      that fails (for example front-run) is ignored when the allowance already suffices.
    ///      `ReceiveWithAuthorization`: EIP-3009 `receiveWithAuthorization` of exactly the
    ///      charged amount to this contract, `fundingData` = `abi.encode(uint256 validAfter,
    ///      uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s)`. Exact charges
    ///      only (an up-to payment would move the whole maximum).
    enum Funding {
        Allowance,
        Permit,
        ReceiveWithAuthorization
    }

    /// @notice A signed charge ("exact"): the payer pays exactly `amount` for `units` of a service.
    /// @param payerId The paying agent.
    /// @param payer The signer, whose funds move: the agent's owner, wallet or an operator.
    /// @param serviceId The catalog service.
    /// @param token The token the payer pays in; must be the service's token when submitted (a
    ///        provider cannot switch the payer to another of its approved tokens).
    /// @param units Units bought; `units x unitPrice` must equal `amount` when submitted.
    /// @param amount The total, in `token`.
    /// @param requestRef The caller's reference of the request being paid (for the API server).
    /// @param nonce Single-use nonce of `payer` (any unused value; see {nonceUsed}).
    /// @param validAfter Not valid at or before this time.
    /// @param validBefore Not valid at or after this time.
    struct ChargeAuthorization {
        uint256 payerId;
        address payer;
        uint256 serviceId;
        address token;
        uint256 units;
        uint256 amount;
        bytes32 requestRef;
        uint256 nonce;
        uint256 validAfter;
        uint256 validBefore;
    }

    /// @notice A signed up-to payment: the provider settles the actual amount, at most `maxAmount`.
    /// @dev Same fields and rules as {ChargeAuthorization}, with a maximum instead of an exact total.
    struct UpToAuthorization {
        uint256 payerId;
        address payer;
        uint256 serviceId;
        address token;
        uint256 maxAmount;
        bytes32 requestRef;
        uint256 nonce;
        uint256 validAfter;
        uint256 validBefore;
    }

    /// @notice A session voucher: the payer owes the provider `amount` in total for `calls` calls
    ///         so far. Signed by the session's signer; only the latest (largest) one matters.
    struct Voucher {
        uint256 sessionId;
        uint256 amount;
        uint256 calls;
    }

    /// @notice A receipt, one per charge or up-to payment.
    /// @param payerId The paying agent (0: no such receipt).
    /// @param providerId The paid agent.
    /// @param refundable What the provider may still refund (the total paid, less refunds).
    /// @param token The payment token.
    struct Receipt {
        uint256 payerId;
        uint256 providerId;
        uint256 refundable;
        address token;
    }

    /// @notice A session (one-way payment channel), three storage slots.
    /// @param token Payment token (zero: no such session).
    /// @param endsAt Vouchers are redeemable until this time (inclusive); after it the session can
    ///        be settled. Starts at the expiry; a close request brings it forward.
    /// @param closeGrace Grace period of a close request, snapshotted at opening (at most 30 days).
    /// @param closing Whether a close was requested.
    /// @param settled Whether the session was settled (the rest returned, Reputation recorded).
    /// @param feeBps Protocol fee, snapshotted at opening.
    /// @param signer The only key whose vouchers count (the payer agent's owner, wallet or an
    ///        operator at opening; fixed so a provider that served calls is always paid).
    /// @param payerId The paying agent.
    /// @param providerId The paid agent.
    /// @param deposit Total deposited.
    /// @param redeemed Total redeemed so far (fee included: the provider has received
    ///        `redeemed - redeemed * feeBps / 10_000`); never above `deposit`.
    /// @param calls The largest call count of the redeemed vouchers.
    struct Session {
        address token;
        uint40 endsAt;
        uint24 closeGrace;
        bool closing;
        bool settled;
        uint16 feeBps;
        address signer;
        uint48 payerId;
        uint48 providerId;
        uint96 deposit;
        uint96 redeemed;
        uint64 calls;
    }

    // ------------------------------------------------------------------ events

    /// @notice A charge or up-to payment was paid; `receiptId` is what the API server checks.
    event Charged(
        uint256 indexed receiptId,
        uint256 indexed payerId,
        uint256 indexed providerId,
        uint256 serviceId,
        address token,
        uint256 units,
        uint256 total,
        uint256 fee,
        bytes32 requestRef,
        address payer
    );
    /// @notice A provider refunded `amount` of a receipt; `refundable` is what is left.
    event ChargeRefunded(uint256 indexed receiptId, uint256 amount, uint256 refundable);
    /// @notice A signed authorisation's nonce was consumed.
    event AuthorizationUsed(address indexed payer, uint256 nonce);
    /// @notice A payer cancelled one of its nonces.
    event AuthorizationCancelled(address indexed payer, uint256 nonce);
    /// @notice A session was opened.
    event SessionOpened(
        uint256 indexed sessionId,
        uint256 indexed payerId,
        uint256 indexed providerId,
        address token,
        address signer,
        uint256 deposit,
        uint256 endsAt,
        uint256 feeBps
    );
    /// @notice A session was topped up (and possibly extended).
    event SessionToppedUp(uint256 indexed sessionId, uint256 amount, uint256 deposit, uint256 endsAt);
    /// @notice A voucher was redeemed: `calls` is the session's count after it (the largest seen),
    ///         `paid` went to the provider; `fee` is the part of the session's
    ///         fee this voucher added (booked for the treasury at settlement).
    event VoucherRedeemed(uint256 indexed sessionId, uint256 amount, uint256 calls, uint256 paid, uint256 fee);
    /// @notice The payer asked to close; vouchers stay redeemable until `endsAt`.
    event SessionCloseRequested(uint256 indexed sessionId, uint256 endsAt);
    /// @notice A session was settled: `fee` booked for the treasury, `refunded` back to the payer.
    event SessionSettled(uint256 indexed sessionId, uint256 redeemed, uint256 fee, uint256 refunded, uint256 calls);
    /// @notice A pair's pending charges were recorded in Reputation.
    event ReputationSynced(
        uint256 indexed payerId,
        uint256 indexed providerId,
        address indexed token,
        uint256 calls,
        uint256 amount,
        uint256 receipts
    );
    /// @notice A payout failed and was credited to `account` instead.
    event PaymentCredited(address indexed token, address indexed account, uint256 amount);
    /// @notice A credit was withdrawn.
    event CreditWithdrawn(address indexed token, address indexed account, address to, uint256 amount);
    /// @notice Accrued fees were sent to the treasury.
    event FeesSwept(address indexed token, address indexed treasury, uint256 amount);
    /// @notice A payment token was allowed or disallowed.
    event TokenSet(address indexed token, bool allowed);
    /// @notice The protocol fee changed.
    event FeeSet(uint16 feeBps);
    /// @notice The grace period of close requests changed.
    event CloseGraceSet(uint32 closeGrace);
    /// @notice The treasury changed.
    event TreasurySet(address indexed treasury);

    // ------------------------------------------------------------------ errors

    /// @notice The token is not an allow-listed payment token.
    error PayPerUseTokenNotAllowed(address token);
    /// @notice An amount (or number of units) was zero or does not fit (units: 64 bits, amounts: 96).
    error PayPerUseBadAmount(uint256 amount);
    /// @notice The service is inactive, is not pay-per-use, or its agent is paused (a service that
    ///         does not exist is refused by the registry: `AgentRegistryUnknownService`).
    error PayPerUseServiceUnavailable(uint256 serviceId);
    /// @notice The price went above what the payer accepts.
    error PayPerUseAboveMax(uint256 total, uint256 maxTotal);
    /// @notice A signed exact charge does not match `units x unitPrice`.
    error PayPerUseAmountMismatch(uint256 signed, uint256 total);
    /// @notice The service is priced in `token`, not in the `agreed` token the payer named.
    error PayPerUseTokenMismatch(address agreed, address token);
    /// @notice An agent paying itself.
    error PayPerUseSelfPayment(uint256 agentId);
    /// @notice `account` may not act for `agentId`.
    error PayPerUseNotAuthorized(uint256 agentId, address account);
    /// @notice The signature is not `signer`'s (EOA or ERC-1271). A valid signer that may not spend
    ///         for the payer agent is refused by the registry (`AgentRegistryNotAuthorized`, or the
    ///         operator's policy errors).
    error PayPerUseBadSignature(address signer);
    /// @notice The authorisation is not valid yet.
    error PayPerUseNotYetValid(uint256 validAfter);
    /// @notice The authorisation has expired.
    error PayPerUseExpired(uint256 validBefore);
    /// @notice The nonce was used or cancelled.
    error PayPerUseNonceUsed(address payer, uint256 nonce);
    /// @notice The funding data does not decode, or the funding mode is not allowed here.
    error PayPerUseBadFunding();
    /// @notice The contract received a different amount than it pulled (fee-on-transfer token).
    error PayPerUseTransferMismatch(address token, uint256 expected, uint256 received);
    /// @notice No such receipt.
    error PayPerUseUnknownReceipt(uint256 receiptId);
    /// @notice The refund is larger than what is left to refund.
    error PayPerUseRefundTooLarge(uint256 receiptId, uint256 amount, uint256 refundable);
    /// @notice No such session.
    error PayPerUseUnknownSession(uint256 sessionId);
    /// @notice The session has ended (vouchers, top-ups and close requests are too late).
    error PayPerUseSessionEnded(uint256 sessionId, uint256 endsAt);
    /// @notice The session has not ended yet.
    error PayPerUseSessionNotEnded(uint256 sessionId, uint256 endsAt);
    /// @notice The session was already settled.
    error PayPerUseSessionSettled(uint256 sessionId);
    /// @notice The session is closing: it cannot be topped up or closed again.
    error PayPerUseSessionClosing(uint256 sessionId);
    /// @notice An expiry in the past, too far ahead, or earlier than the current one.
    error PayPerUseBadExpiry(uint256 expiry);
    /// @notice The provider does not exist or is paused.
    error PayPerUseProviderInactive(uint256 providerId);
    /// @notice A parameter outside its hard bounds.
    error PayPerUseBadParameter();
    /// @notice Nothing to withdraw or sweep.
    error PayPerUseNothingToWithdraw(address token, address account);
    /// @notice A batch is empty, too large, or its arrays differ in length.
    error PayPerUseBadBatch(uint256 length);
    /// @notice No pending charges between these agents in this token.
    error PayPerUseNothingToSync(uint256 payerId, uint256 providerId, address token);

    // ------------------------------------------------------------------ admin

    /// @notice Allows or disallows a payment token (its receipt index is assigned by its first
    ///         `setToken` and kept). `PARAMETER_ROLE` only. Disallowing stops new
    ///         charges and sessions in it; open sessions, refunds and withdrawals continue.
    function setToken(address token, bool allowed) external;

    /// @notice Sets the protocol fee (at most `MAX_FEE_BPS`). `PARAMETER_ROLE` only. Charges use
    ///         the fee of the moment; sessions keep the fee of their opening.
    function setFee(uint16 feeBps) external;

    /// @notice Sets the grace period of close requests (`MIN_CLOSE_GRACE`..`MAX_CLOSE_GRACE`).
    ///         `PARAMETER_ROLE` only; sessions keep the value of their opening.
    function setCloseGrace(uint32 closeGrace) external;

    /// @notice Sets the treasury that receives swept fees. Admin only.
    function setTreasury(address treasury) external;

    // ------------------------------------------------------------------ charges

    /// @notice Pays `units x unitPrice` of `serviceId` for `payerId`, from `msg.sender` (the
    ///         agent's owner, wallet or an operator within its policy). Reverts when the service
    ///         is not priced in `token` or the total is above `maxTotal` (a token switch or a price
    ///         rise between the payer's quote and its transaction). Stopped while paused.
    /// @return receiptId The receipt, also in the {Charged} event.
    function charge(
        uint256 payerId,
        uint256 serviceId,
        uint256 units,
        address token,
        uint256 maxTotal,
        bytes32 requestRef
    ) external returns (uint256 receiptId);

    /// @notice Submits a payer's signed exact charge; anyone (the provider, a facilitator) may
    ///         submit it and pay the gas. The signer is `auth.payer` (EOA or ERC-1271) and must be
    ///         able to spend for `auth.payerId`. Stopped while paused.
    function submitCharge(
        ChargeAuthorization calldata auth,
        bytes calldata signature,
        Funding funding,
        bytes calldata fundingData
    ) external returns (uint256 receiptId);

    /// @notice Settles a payer's signed up-to authorisation for the `units` actually used, at the
    ///         current price, at most `auth.maxAmount`; the rest never leaves the payer. Only an
    ///         account that can act for the service's agent. `Allowance` or `Permit` funding.
    ///         Stopped while paused.
    function settleUpTo(
        UpToAuthorization calldata auth,
        bytes calldata signature,
        uint256 units,
        Funding funding,
        bytes calldata fundingData
    ) external returns (uint256 receiptId);

    /// @notice Cancels one of the caller's own signed-authorisation nonces.
    function cancelNonce(uint256 nonce) external;

    /// @notice Refunds `amount` of a receipt to the payer agent's wallet, paid by the caller (an
    ///         account that can act for the provider agent). In full or in several parts, never
    ///         more than the total paid. The protocol fee is not returned by the protocol.
    function refund(uint256 receiptId, uint256 amount) external;

    /// @notice Records the pending charges of (`payerId`, `providerId`, `token`) in Reputation:
    ///         their calls and amount, and one right per receipt for the payer's owner. Anyone.
    function syncReputation(uint256 payerId, uint256 providerId, address token) external;

    // ------------------------------------------------------------------ sessions

    /// @notice Opens a session for `payerId` with `providerId`, depositing `deposit` of `token`
    ///         from `msg.sender` (owner, wallet or operator within policy) until `expiry`.
    ///         `signer` (the owner, the wallet or an operator of the payer agent) signs the
    ///         vouchers. Stopped while paused.
    function openSession(
        uint256 payerId,
        uint256 providerId,
        address token,
        uint256 deposit,
        uint40 expiry,
        address signer
    ) external returns (uint256 sessionId);

    /// @notice Adds `amount` to a session's deposit (from `msg.sender`, within policy) and, when
    ///         `newExpiry` is non-zero, extends it. Not once closing or ended. Stopped while paused.
    function topUp(uint256 sessionId, uint256 amount, uint40 newExpiry) external;

    /// @notice Redeems a voucher: pays the provider the part of `v.amount` (capped at the deposit)
    ///         not yet redeemed, minus the fee (the fee of the new cumulative amount less the fee
    ///         of the previous one). Anyone may submit it; the money only goes to the
    ///         provider. A voucher at or below what was redeemed pays nothing and does not revert.
    /// @return paid What the provider received (fee excluded).
    function redeem(Voucher calldata v, bytes calldata signature) external returns (uint256 paid);

    /// @notice Redeems many vouchers (of any sessions) in one transaction, as {redeem} each;
    ///         consecutive vouchers of the same provider and token are paid in one transfer.
    /// @return paid What the providers received in total (fees excluded).
    function redeemMany(Voucher[] calldata vouchers, bytes[] calldata signatures) external returns (uint256 paid);

    /// @notice Asks to close a session: vouchers stay redeemable for the session's grace period
    ///         (never beyond its expiry), then it can be settled. Payer side only.
    function requestClose(uint256 sessionId) external;

    /// @notice Settles an ended session: the fee on the redeemed total accrues for the treasury,
    ///         the unredeemed deposit goes back to the payer agent's wallet and the session's calls
    ///         and amount are recorded in Reputation (one right). Anyone.
    function settleSession(uint256 sessionId) external;

    // ------------------------------------------------------------------ money

    /// @notice Withdraws the caller's credit of `token` (payouts that failed) to `to`.
    function withdraw(address token, address to) external;

    /// @notice Sends the accrued fees of `token` to the treasury. Anyone.
    function sweepFees(address token) external;

    // ------------------------------------------------------------------ views

    /// @notice A receipt (all zero when unknown).
    function getReceipt(uint256 receiptId) external view returns (Receipt memory);

    /// @notice A session (all zero when unknown).
    function getSession(uint256 sessionId) external view returns (Session memory);

    /// @notice What `units` of `serviceId` cost now, and the fee in it; reverts when unavailable.
    function quote(
        uint256 serviceId,
        uint256 units
    ) external view returns (uint256 total, uint256 fee, address token, uint256 providerId);

    /// @notice Charges of a pair not yet recorded in Reputation (see {syncReputation}).
    function pendingReputation(
        uint256 payerId,
        uint256 providerId,
        address token
    ) external view returns (uint256 calls, uint256 amount, uint256 receipts);

    /// @notice Whether `payer` used or cancelled `nonce`.
    function nonceUsed(address payer, uint256 nonce) external view returns (bool);

    /// @notice Whether `token` is an allowed payment token.
    function tokenAllowed(address token) external view returns (bool);

    /// @notice `account`'s credit of `token`.
    function creditOf(address token, address account) external view returns (uint256);

    /// @notice Fees of `token` accrued and not yet swept.
    function accruedFees(address token) external view returns (uint256);

    /// @notice Receipts issued so far (the last receipt id).
    function receiptCount() external view returns (uint256);

    /// @notice Sessions opened so far (the last session id).
    function sessionCount() external view returns (uint256);

    /// @notice Registry, Reputation, treasury, protocol fee and close grace.
    function config() external view returns (address, address, address, uint16, uint32);

    /// @notice The EIP-712 digest a payer signs for a charge.
    function chargeDigest(ChargeAuthorization calldata auth) external view returns (bytes32);

    /// @notice The EIP-712 digest a payer signs for an up-to payment.
    function upToDigest(UpToAuthorization calldata auth) external view returns (bytes32);

    /// @notice The EIP-712 digest a session signer signs for a voucher.
    function voucherDigest(Voucher calldata v) external view returns (bytes32);

    /// @notice The EIP-712 domain separator (name "PayPerUse", version "1", chain id, this proxy).
    function domainSeparator() external view returns (bytes32);
}
