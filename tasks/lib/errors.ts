// Custom errors, as sentences. The revert data is decoded with the protocol's own ABIs (the
// OperatorPolicy and ServiceCatalog errors are declared in IAgentRegistry, so the AgentRegistry
// ABI decodes them) plus OpenZeppelin's and the mocks'; SENTENCES turns each into plain words.
import { AbiCoder, ErrorFragment, Interface, dataSlice, getAddress, id as keccakId, isHexString } from "ethers";
import type { ErrorDescription, InterfaceAbi } from "ethers";
import { HardhatPluginError } from "hardhat/plugins";
import type { ActionType, TaskArguments } from "hardhat/types";
import { formatAmount, formatBps, formatPeriod, formatTimestamp, shortAddress, taskStatusName } from "./context";

export const PLUGIN_NAME = "agent-market";

/** How to show amounts (most errors do not say which token they are in) and whom to call by name. */
export interface ExplainOptions {
  /** Decimals of the amounts in the error (default 6, the stablecoins). */
  decimals?: number;
  /** Token symbol appended to amounts. */
  symbol?: string;
  /**
   * Tokens known to the task, by address (a TokenInfo fits). An error that names its token
   * (e.g. AgentRegistryPeriodCapExceeded) shows its amounts with that token's decimals and symbol;
   * an unknown token falls back to `decimals` (default 6) and `symbol`.
   */
  tokens?: Record<string, { symbol: string; decimals: number }>;
  /** Names for addresses, e.g. { "0xabc…": "the hot key" }. */
  names?: Record<string, string>;
}

/** Value formatters handed to every sentence. */
export interface Fmt {
  amount(value: bigint): string;
  /** An amount of `token`: its decimals and symbol when known, else as `amount`. */
  tokenAmount(token: string, value: bigint): string;
  agent(id: bigint): string;
  addr(address: string): string;
  time(seconds: bigint): string;
  bps(value: bigint): string;
  role(hash: string): string;
  /** A token: its symbol when known (`tokens`), else its address. */
  token(address: string): string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Args = Record<string, any>;
type Sentence = (a: Args, f: Fmt) => string;

const ROLES = ["SPENDER_ROLE", "REPORTER_ROLE", "UPGRADER_ROLE", "PAUSER_ROLE", "PARAMETER_ROLE"];

/** One sentence per error name. Every error of IAgentRegistry, IReputation, ITaskEscrow and IPayPerUse must be here (tested). */
export const SENTENCES: Record<string, Sentence> = {
  // ---------------------------------------------------------------- AgentRegistry (and its libraries)
  AgentRegistryUnknownAgent: (a) => `Agent #${a.agentId} does not exist.`,
  AgentRegistryNotController: (a, f) =>
    `Refused: ${f.addr(a.caller)} may not manage agent #${a.agentId}; only its owner, or an address the owner approved, may.`,
  AgentRegistryNotAuthorized: (a, f) =>
    `Refused: ${f.addr(a.spender)} may not spend for agent #${a.agentId}: it is neither the owner, the agent wallet ` +
    `nor an active operator (never authorised, revoked, expired, or the agent changed hands).`,
  AgentRegistryEmptyInput: () => `Refused: a required value (URI, metadata key, capability or endpoint) is empty.`,
  AgentRegistryInputTooLong: (a) => `Refused: an input of ${a.length} bytes is longer than the ${a.max} bytes allowed.`,
  AgentRegistryReservedKey: () =>
    `Refused: the metadata key "agentWallet" is reserved; set the wallet with a signed proof (agent:wallet) instead.`,
  AgentRegistryBadDeadline: (a, f) =>
    `Refused: the wallet signature's deadline (${f.time(a.deadline)}) must lie between now (${f.time(a.nowTimestamp)}) ` +
    `and 5 minutes ahead; sign a new proof.`,
  AgentRegistryInvalidWalletSignature: (a, f) =>
    `Refused: the proof is not signed by the new wallet ${f.addr(a.wallet)} (or, for a contract wallet, ` +
    `it does not accept it under ERC-1271).`,
  AgentRegistrySignatureReplayed: () => `Refused: this wallet proof was already used once; sign a new one.`,
  AgentRegistryBadExpiry: (a, f) => `Refused: the operator's expiry (${f.time(a.expiry)}) is not in the future.`,
  AgentRegistryBadScore: (a, f) =>
    `Refused: a minimum counterparty score of ${f.bps(a.minScoreBps)} is above the maximum of 100.00%.`,
  AgentRegistryBadOperator: (a, f) =>
    `Refused: ${f.addr(a.operator)} cannot be an operator: it is the zero address or the agent's owner itself.`,
  AgentRegistryBadLimit: (a, f) =>
    `Refused: inconsistent spending limit (per-transaction cap ${f.amount(a.perTxCap)}, period cap ` +
    `${f.amount(a.periodCap)}, period ${a.period}s): the per-transaction cap may not exceed the period cap, and a ` +
    `non-zero period cap needs a non-zero per-transaction cap and period.`,
  AgentRegistryOperatorInactive: (a, f) =>
    `Refused: ${f.addr(a.operator)} has no active authorisation for agent #${a.agentId} ` +
    `(never set, revoked, expired, or the agent changed hands).`,
  AgentRegistryTokenNotAllowed: (a, f) =>
    `Refused: operator ${f.addr(a.operator)} of agent #${a.agentId} has no spending limit for token ${f.addr(a.token)}.`,
  AgentRegistryPerTxCapExceeded: (a, f) =>
    `Refused: this spend of ${f.tokenAmount(a.token, a.amount)} exceeds the operator's per-transaction cap of ` +
    `${f.tokenAmount(a.token, a.cap)}.`,
  AgentRegistryPeriodCapExceeded: (a, f) =>
    `Refused: this spend of ${f.tokenAmount(a.token, a.amount)} exceeds what the operator may still spend this ` +
    `period (${f.tokenAmount(a.token, a.available)} left).`,
  AgentRegistryCounterpartyNotAllowed: (a) =>
    `Refused: agent #${a.counterpartyId} is not on the operator's allow-list of counterparties.`,
  AgentRegistryCounterpartyScoreTooLow: (a, f) =>
    `Refused: agent #${a.counterpartyId} has a reputation score of ${f.bps(a.score)}, below the operator's ` +
    `minimum of ${f.bps(a.minScore)}.`,
  AgentRegistryZeroAmount: () => `Refused: a spend of zero.`,
  AgentRegistryUnknownService: (a) => `Service #${a.serviceId} does not exist.`,
  AgentRegistryBadService: () => `Refused: a pay-per-use service needs a payment token and a non-zero unit price.`,
  AgentRegistryTooManyServices: (a) => `Refused: agent #${a.agentId} already lists the maximum of ${a.max} services.`,
  AgentRegistryBatchTooLarge: (a) => `Refused: ${a.length} entries in one call; at most ${a.max} are allowed.`,

  // ---------------------------------------------------------------- Reputation
  ReputationUnknownAgent: (a) => `Agent #${a.agentId} does not exist in the identity registry.`,
  ReputationNoFeedbackRight: (a, f) =>
    `Refused: ${f.addr(a.rater)} has no unused right to rate agent #${a.agentId}; only the owner of an agent that ` +
    `settled business with it may, once per settled interaction.`,
  ReputationBadValue: (a) =>
    `Refused: the rating ${a.value} with ${a.valueDecimals} decimals is out of range ` +
    `(at most 18 decimals and an absolute value of at most 1e38).`,
  ReputationInputTooLong: (a) => `Refused: a text of ${a.length} bytes is longer than the ${a.max} bytes allowed.`,
  ReputationEmptyInput: () => `Refused: a required text (the response URI) is empty.`,
  ReputationUnknownFeedback: (a, f) =>
    `There is no feedback #${a.feedbackIndex} from ${f.addr(a.client)} on agent #${a.agentId}.`,
  ReputationAlreadyRevoked: (a, f) =>
    `Feedback #${a.feedbackIndex} from ${f.addr(a.client)} on agent #${a.agentId} was already revoked.`,
  ReputationClientsRequired: () => `Refused: a summary needs a non-empty list of client addresses.`,
  ReputationSameAgent: (a) => `Refused: agent #${a.agentId} cannot do business with itself.`,
  ReputationZeroAmount: () => `Refused: a recorded amount, or number of calls, of zero.`,

  // ---------------------------------------------------------------- TaskEscrow
  TaskEscrowUnknownTask: (a) => `Task #${a.taskId} does not exist.`,
  TaskEscrowWrongStatus: (a) =>
    `Refused: task #${a.taskId} is ${taskStatusName(a.status)}, a state in which this is not possible.`,
  TaskEscrowNotAuthorized: (a, f) =>
    `Refused: ${f.addr(a.caller)} may not act for agent #${a.agentId}, whom this step is for: it is neither the ` +
    `agent's owner, its wallet nor an active operator.`,
  TaskEscrowTokenNotAllowed: (a, f) =>
    `Refused: ${f.token(a.token)} is not a payment token of the escrow (only allow-listed tokens are).`,
  TaskEscrowBadAmount: (a, f) =>
    `Refused: an amount of ${f.amount(a.amount)} is out of range: a budget, bid or price must be at least the ` +
    `token's minimum budget and at most the task's maximum budget.`,
  TaskEscrowBadTime: (a, f) =>
    BigInt(a.value) >= 1_000_000_000n
      ? `Refused: the acceptance deadline ${f.time(a.value)} must lie between now and 365 days ahead.`
      : `Refused: a duration of ${formatPeriod(a.value)} is out of range: delivery times, review periods and ` +
        `ETAs must last between 1 hour and 365 days.`,
  TaskEscrowBadParameter: () =>
    `Refused: a fee above its hard cap (10.00% for the protocol fee and for each dispute deposit).`,
  TaskEscrowBadTask: () =>
    `Refused: the task's mode does not fit: a direct task names its provider and the others do not, an ` +
    `auto-match task needs a capability, a parent task must be one the client agent works on as provider, and ` +
    `this step must suit the task's mode (accept, decline and proposals for direct tasks, bids for bidding, ` +
    `claims for auto-match).`,
  TaskEscrowProviderInactive: (a) => `Refused: provider agent #${a.providerId} does not exist or is paused.`,
  TaskEscrowSelfDealing: (a) =>
    `Refused: agent #${a.providerId} cannot work for agent #${a.clientId}: it is the same agent or, on the open ` +
    `market, an agent of the same owner.`,
  TaskEscrowScoreTooLow: (a, f) =>
    `Refused: agent #${a.providerId} has a reputation score of ${f.bps(a.score)}, below the task's minimum of ` +
    `${f.bps(a.minScore)}.`,
  TaskEscrowDeadlinePassed: (a, f) =>
    `Refused: task #${a.taskId}'s deadline for this step passed at ${f.time(a.deadline)}; only a timeout ` +
    `(task:timeout) can move it now.`,
  TaskEscrowDeadlineNotPassed: (a, f) =>
    `Refused: task #${a.taskId}'s current deadline (${f.time(a.deadline)}) has not passed yet; a timeout ` +
    `only works after it.`,
  TaskEscrowTermsChanged: (a) =>
    `Refused: the terms of task #${a.taskId} changed since they were read; read them again (task:show) and retry.`,
  TaskEscrowTooManyProposals: (a) =>
    `Refused: task #${a.taskId} used all its 8 on-chain proposals; accept the current terms or close the task.`,
  TaskEscrowNoBid: (a) => `Refused: agent #${a.providerId} has no live bid (or counter-proposal) on task #${a.taskId}.`,
  TaskEscrowServiceMismatch: (a) =>
    `Refused: service #${a.serviceId} cannot claim this task: it must be an active service of the claiming ` +
    `agent that lists the task's capability.`,
  TaskEscrowAgreementExpired: (a, f) => `Refused: the signed agreement expired at ${f.time(a.expiry)}.`,
  TaskEscrowNonceUsed: (a) =>
    `Refused: agent #${a.providerId}'s agreement nonce ${a.nonce} was already used or cancelled; sign new terms.`,
  TaskEscrowBadSignature: (a, f) =>
    `Refused: the agreement's signature is not ${f.addr(a.signer)}'s, or that signer may not act for the provider.`,
  TaskEscrowTransferMismatch: (a, f) =>
    `Refused: the escrow received ${f.tokenAmount(a.token, a.received)} instead of ` +
    `${f.tokenAmount(a.token, a.expected)}; tokens that take a fee on transfer are not supported.`,
  TaskEscrowNoArbitrator: () => `Refused: no arbitrator is configured, so disputes cannot be raised yet.`,
  TaskEscrowNotArbitrator: (a, f) =>
    `Refused: ${f.addr(a.caller)} is not the arbitrator of dispute ${a.disputeId} (or that dispute is unknown ` +
    `or already taken).`,
  TaskEscrowBadRuling: (a) => `Refused: ruling ${a.ruling} is not one of the options (0 to 5).`,
  TaskEscrowInputTooLong: (a) => `Refused: a text of ${a.length} bytes is longer than the ${a.max} bytes allowed.`,
  TaskEscrowNothingToWithdraw: (a, f) => `Refused: ${f.addr(a.account)} has nothing to collect in ${f.token(a.token)}.`,

  // ---------------------------------------------------------------- PayPerUse
  PayPerUseTokenNotAllowed: (a, f) =>
    `Refused: ${f.token(a.token)} is not a payment token of PayPerUse (only allow-listed tokens are).`,
  PayPerUseBadAmount: (a) =>
    BigInt(a.amount) === 0n
      ? `Refused: an amount, or a number of units, of zero.`
      : `Refused: ${a.amount} is too large: amounts (in the token's smallest unit) must fit in 96 bits and ` +
        `numbers of units in 64 bits.`,
  PayPerUseServiceUnavailable: (a) =>
    `Refused: service #${a.serviceId} cannot be paid now: it is inactive, is not a pay-per-use service, or its ` +
    `agent is paused.`,
  PayPerUseAboveMax: (a, f) =>
    `Refused: the price is ${f.amount(a.total)}, above the ${f.amount(a.maxTotal)} the payer accepts ` +
    `(the price rose, or the maximum is too low).`,
  PayPerUseAmountMismatch: (a, f) =>
    `Refused: the charge was signed for ${f.amount(a.signed)} but its units cost ${f.amount(a.total)} now ` +
    `(the price changed); sign a new charge.`,
  PayPerUseTokenMismatch: (a, f) =>
    `Refused: the payer agreed to pay in ${f.token(a.agreed)} but the service is now priced in ${f.token(a.token)}; ` +
    `quote it again (and sign a new charge).`,
  PayPerUseSelfPayment: (a) => `Refused: agent #${a.agentId} cannot pay itself.`,
  PayPerUseNotAuthorized: (a, f) =>
    `Refused: ${f.addr(a.account)} may not act for agent #${a.agentId}: it is neither the agent's owner, its ` +
    `wallet nor an active operator.`,
  PayPerUseBadSignature: (a, f) =>
    `Refused: the signature is not ${f.addr(a.signer)}'s (a session's vouchers count only when signed by its ` +
    `signer; a contract wallet must accept it under ERC-1271).`,
  PayPerUseNotYetValid: (a, f) => `Refused: the signed authorisation is valid only after ${f.time(a.validAfter)}.`,
  PayPerUseExpired: (a, f) =>
    `Refused: the signed authorisation expired at ${f.time(a.validBefore)}; the payer must sign a new one.`,
  PayPerUseNonceUsed: (a, f) =>
    `Refused: nonce ${a.nonce} of ${f.addr(a.payer)} was already used or cancelled; the payer must sign a new ` +
    `authorisation.`,
  PayPerUseBadFunding: () =>
    `Refused: the funding data does not fit its funding mode (an allowance carries none, a permit or an ` +
    `EIP-3009 authorisation its own fields), or the mode is not allowed here (EIP-3009 pays exact charges only).`,
  PayPerUseTransferMismatch: (a, f) =>
    `Refused: PayPerUse received ${f.tokenAmount(a.token, a.received)} instead of ` +
    `${f.tokenAmount(a.token, a.expected)}; tokens that take a fee on transfer are not supported.`,
  PayPerUseUnknownReceipt: (a) => `Receipt #${a.receiptId} does not exist.`,
  PayPerUseRefundTooLarge: (a, f) =>
    `Refused: a refund of ${f.amount(a.amount)} is more than the ${f.amount(a.refundable)} left to refund on ` +
    `receipt #${a.receiptId}.`,
  PayPerUseUnknownSession: (a) => `Session #${a.sessionId} does not exist.`,
  PayPerUseSessionEnded: (a, f) =>
    `Refused: session #${a.sessionId} ended at ${f.time(a.endsAt)} (or was settled): vouchers, top-ups and ` +
    `close requests come too late; it can only be settled (ppu:session:withdraw).`,
  PayPerUseSessionNotEnded: (a, f) =>
    `Refused: session #${a.sessionId} runs until ${f.time(a.endsAt)}; it can be settled only after that ` +
    `(a close request brings the end forward).`,
  PayPerUseSessionSettled: (a) => `Refused: session #${a.sessionId} was already settled.`,
  PayPerUseSessionClosing: (a) =>
    `Refused: session #${a.sessionId} is closing: it can no longer be topped up or closed again.`,
  PayPerUseBadExpiry: (a, f) =>
    `Refused: the expiry ${f.time(a.expiry)} is in the past, more than 365 days ahead, or earlier than the ` +
    `session's current end.`,
  PayPerUseProviderInactive: (a) => `Refused: provider agent #${a.providerId} does not exist or is paused.`,
  PayPerUseBadParameter: () =>
    `Refused: a parameter outside its hard bounds (a protocol fee above 10.00%, or a close grace period ` +
    `outside 5 minutes to 30 days).`,
  PayPerUseNothingToWithdraw: (a, f) => `Refused: ${f.addr(a.account)} has nothing to collect in ${f.token(a.token)}.`,
  PayPerUseBadBatch: (a) =>
    `Refused: a batch of ${a.length} vouchers; one transaction redeems 1 to 256 vouchers, each with its signature.`,
  PayPerUseNothingToSync: (a, f) =>
    `Refused: agent #${a.payerId} has no charges with agent #${a.providerId} in ${f.token(a.token)} waiting for ` +
    `Reputation: there is nothing to sync (they were recorded already, or there were none).`,

  // ---------------------------------------------------------------- protocol base and OpenZeppelin
  ProtocolZeroAddress: () => `Refused: the zero address was given where a real address is required.`,
  AccessControlUnauthorizedAccount: (a, f) =>
    `Refused: ${f.addr(a.account)} does not hold ${f.role(a.neededRole)}, which this action needs.`,
  AccessControlBadConfirmation: () => `Refused: a role can only be renounced by its holder, for itself.`,
  EnforcedPause: () => `Refused: the contract is paused; new business is stopped until an admin resumes it.`,
  ExpectedPause: () => `Refused: the contract is not paused.`,
  InvalidInitialization: () =>
    `Refused: this contract is already initialised (or it is an implementation, which never is).`,
  NotInitializing: () => `Refused: this may only run during initialisation.`,
  ReentrancyGuardReentrantCall: () => `Refused: a re-entrant call.`,
  ERC721NonexistentToken: (a) => `Agent #${a.tokenId} does not exist.`,
  ERC721InsufficientApproval: (a, f) =>
    `Refused: ${f.addr(a.operator)} neither owns agent #${a.tokenId} nor is approved to move it.`,
  ERC721IncorrectOwner: (a, f) =>
    `Refused: agent #${a.tokenId} belongs to ${f.addr(a.owner)}, not ${f.addr(a.sender)}.`,
  ERC721InvalidReceiver: (a, f) => `Refused: ${f.addr(a.receiver)} cannot receive agent identities (ERC-721).`,
  ERC721InvalidOwner: (a, f) => `Refused: ${f.addr(a.owner)} cannot own an agent.`,
  ERC721InvalidApprover: (a, f) => `Refused: ${f.addr(a.approver)} may not approve for this agent.`,
  ERC721InvalidOperator: (a, f) => `Refused: ${f.addr(a.operator)} cannot be an ERC-721 operator.`,
  ERC721InvalidSender: (a, f) => `Refused: ${f.addr(a.sender)} cannot send this agent.`,
  ERC20InsufficientBalance: (a, f) =>
    `Refused: ${f.addr(a.sender)} holds ${f.amount(a.balance)} but ${f.amount(a.needed)} is needed.`,
  ERC20InsufficientAllowance: (a, f) =>
    `Refused: ${f.addr(a.spender)} may move only ${f.amount(a.allowance)} of these tokens, ` +
    `but ${f.amount(a.needed)} is needed (approve more first).`,
  ERC20InvalidSender: (a, f) => `Refused: tokens cannot be sent from ${f.addr(a.sender)}.`,
  ERC20InvalidReceiver: (a, f) => `Refused: tokens cannot be sent to ${f.addr(a.receiver)}.`,
  ERC20InvalidApprover: (a, f) => `Refused: ${f.addr(a.approver)} cannot approve.`,
  ERC20InvalidSpender: (a, f) => `Refused: ${f.addr(a.spender)} cannot be approved.`,
  ERC2612ExpiredSignature: (a, f) => `Refused: the permit expired at ${f.time(a.deadline)}.`,
  ERC2612InvalidSigner: (a, f) => `Refused: the permit is signed by ${f.addr(a.signer)}, not by ${f.addr(a.owner)}.`,
  InvalidAccountNonce: (a, f) =>
    `Refused: ${f.addr(a.account)}'s nonce is ${a.currentNonce}; the signature used another.`,
  UUPSUnauthorizedCallContext: () => `Refused: upgrades must go through the proxy.`,
  UUPSUnsupportedProxiableUUID: () => `Refused: the new implementation is not a compatible UUPS implementation.`,
  ERC1967InvalidImplementation: (a, f) => `Refused: ${f.addr(a.implementation)} is not a contract implementation.`,
  ERC1967NonPayable: () => `Refused: this call may not carry native currency.`,

  // ---------------------------------------------------------------- EvaluatorStaking (the court)
  EvaluatorStakingZeroAmount: () => `Refused: an amount of zero.`,
  EvaluatorStakingBadValue: (a, f) =>
    `Refused: ${f.amount(a.value)} of native coin was sent with a stake of ${f.amount(a.amount)}; stakes in the ` +
    `native coin must send exactly the amount, stakes in a token must send none.`,
  EvaluatorStakingNotAuthorized: (a, f) =>
    `Refused: ${f.addr(a.account)} may not act for agent #${a.agentId}: it is neither the agent's owner, its wallet ` +
    `nor an active operator.`,
  EvaluatorStakingWrongPhase: (a) =>
    `Refused: the court is in its ${phaseName(a.phase)} phase, in which this is not possible (stakes leave and ` +
    `jurors are settled in the Staking phase, juries are drawn in the Drawing phase; dispute:advance moves it on).`,
  EvaluatorStakingInsufficientFreeStake: (a, f) =>
    `Refused: agent #${a.agentId} has ${f.amount(a.free)} of free stake (staked and not locked by jury seats), ` +
    `less than the ${f.amount(a.amount)} asked.`,
  EvaluatorStakingStakeTooLarge: (a, f) =>
    `Refused: agent #${a.agentId}'s stake would reach ${f.amount(a.total)}, above the cap of ${f.amount(a.cap)} ` +
    `per evaluator.`,
  EvaluatorStakingNoUnstake: (a) => `Refused: agent #${a.agentId} has no open unstake request.`,
  EvaluatorStakingUnstakeNotReady: (a, f) =>
    `Refused: agent #${a.agentId}'s unstaked amount can be claimed from ${f.time(a.unstakeAt)}, not before.`,
  EvaluatorStakingNothingToClaim: (a, f) =>
    `Refused: ${BigInt(a.agentId) === 0n ? "the protocol" : `agent #${a.agentId}`} has no rewards to claim in ` +
    `${BigInt(a.asset) === 0n ? "the native coin" : f.token(a.asset)}.`,
  EvaluatorStakingTransferFailed: (a, f) =>
    `Refused: the payment of ${f.amount(a.amount)} in native coin to ${f.addr(a.to)} failed (the receiver rejects it).`,
  EvaluatorStakingTransferMismatch: (a, f) =>
    `Refused: the court received ${f.tokenAmount(a.token, a.received)} instead of ` +
    `${f.tokenAmount(a.token, a.expected)}; tokens that take a fee on transfer are not supported.`,
  EvaluatorStakingPoolFull: () =>
    `Refused: the court's pool is full (every sum-tree leaf is taken); no new evaluator can join.`,
  SortitionTreeOverflow: () =>
    `Refused: this stake would take a group of the court's sum tree above 42.9 million OKB of weight.`,
  SortitionTreeBadLeaf: (a) => `Refused: sum-tree leaf ${a.leaf} is outside the tree (32,768 leaves).`,
  EvaluatorStakingEmptyPool: () =>
    `Refused: no evaluator has stake in the pool, so no jury can be drawn; evaluators stake first (evaluator:stake).`,
  EvaluatorStakingNoCaseWaiting: () => `Refused: no case waits for a jury, so there is no randomness to ask for.`,
  EvaluatorStakingTooEarly: (a, f) =>
    BigInt(a.time) < 1_000_000_000n
      ? `Refused: too early; this works from block ${a.time} on.`
      : `Refused: too early; this works only after ${f.time(a.time)}.`,
  EvaluatorStakingNotRandomnessSource: (a, f) =>
    `Refused: only the court's randomness source may deliver randomness, not ${f.addr(a.caller)}.`,
  EvaluatorStakingUnknownCase: (a) => `Case #${a.caseId} does not exist in the court.`,
  EvaluatorStakingWrongStatus: (a) =>
    `Refused: case #${a.caseId} is ${caseStatusWords(a.status)}, when this is not possible.`,
  EvaluatorStakingNotDrawable: (a) =>
    `Refused: case #${a.caseId} started waiting during draw epoch ${a.markEpoch}, so its jury is drawn with the next ` +
    `epoch's random word, not epoch ${a.epoch}'s.`,
  EvaluatorStakingDeadlinePassed: (a, f) =>
    `Refused: case #${a.caseId}'s period ended at ${f.time(a.deadline)}; move the case on first (dispute:advance).`,
  EvaluatorStakingDeadlineNotPassed: (a, f) =>
    BigInt(a.deadline) === 0n
      ? `Refused: case #${a.caseId} has no deadline to pass now (it waits for its jury, or its ruling is final).`
      : `Refused: case #${a.caseId}'s current period runs until ${f.time(a.deadline)}; it moves on only after that.`,
  EvaluatorStakingNotJuror: (a) =>
    `Refused: agent #${a.agentId} does not sit on the jury of case #${a.caseId}, round ${a.round}.`,
  EvaluatorStakingAlreadyCommitted: (a) =>
    `Refused: juror #${a.agentId} already committed its vote in case #${a.caseId}.`,
  EvaluatorStakingNotCommitted: (a) =>
    `Refused: juror #${a.agentId} committed no vote in case #${a.caseId}, so it has nothing to reveal.`,
  EvaluatorStakingAlreadyRevealed: (a) =>
    `Refused: juror #${a.agentId} already revealed its vote in case #${a.caseId}.`,
  EvaluatorStakingRevealMismatch: (a) =>
    `Refused: this choice and salt do not match juror #${a.agentId}'s commitment in case #${a.caseId}.`,
  EvaluatorStakingEmptyCommit: () => `Refused: the commitment is empty.`,
  EvaluatorStakingBadChoice: (a) =>
    `Refused: choice ${a.choice} is not one of 0 to 4 (the provider's share: 0%, 25%, 50%, 75% or 100%).`,
  EvaluatorStakingBadChoices: (a) => `Refused: the court rules on exactly 5 choices, not ${a.choices}.`,
  EvaluatorStakingNotParty: (a) =>
    `Refused: agent #${a.agentId} is not a party of case #${a.caseId}; only its client or its provider may appeal.`,
  EvaluatorStakingMaxRounds: (a) =>
    `Refused: case #${a.caseId} has had all the ${a.maxRounds} rounds it may have; its ruling cannot be appealed.`,
  EvaluatorStakingRoundOpen: (a) =>
    `Refused: round ${a.round} of case #${a.caseId} has no ruling yet, so its jurors cannot be settled.`,
  EvaluatorStakingRoundSettled: (a) =>
    `Refused: every juror of round ${a.round} of case #${a.caseId} was already settled.`,
  EvaluatorStakingBadParams: () => `Refused: a court parameter or timing is outside its hard bounds.`,

  // ---------------------------------------------------------------- ChainlinkVRFSource and Chainlink VRF
  ChainlinkVRFSourceNotConsumer: (a, f) =>
    `Refused: only the court may ask the VRF adapter for randomness, not ${f.addr(a.caller)}.`,
  ChainlinkVRFSourceBadConfig: () =>
    `Refused: the VRF configuration is out of bounds (a key hash, 1 to 200 confirmations, 50,000 to 2,500,000 ` +
    `callback gas).`,
  ChainlinkVRFSourceNothingToRedeliver: (a) =>
    `Refused: no undelivered random word is kept for request ${a.requestId}.`,
  OnlyCoordinatorCanFulfill: (a, f) =>
    `Refused: only the VRF coordinator ${f.addr(a.want)} may fulfil randomness, not ${f.addr(a.have)}.`,
  OnlyOwnerOrCoordinator: (a, f) =>
    `Refused: only the adapter's owner ${f.addr(a.owner)} or its coordinator may do this, not ${f.addr(a.have)}.`,
  ZeroAddress: () => `Refused: the zero address was given where a real address is required.`,
  InvalidRequest: () => `Refused: the VRF coordinator knows no pending request with this id (already fulfilled?).`,
  InvalidRandomWords: () => `Refused: the number of random words does not match the request.`,
  InvalidSubscription: () => `Refused: the VRF subscription does not exist.`,
  InsufficientBalance: () => `Refused: the VRF subscription's balance cannot pay for the request; fund it.`,
  InvalidConsumer: (a, f) =>
    `Refused: ${f.addr(a.consumer)} is not a consumer of VRF subscription ${a.subId}; add it to the subscription.`,

  // ---------------------------------------------------------------- mocks
  MockStablecoinAuthorizationNotYetValid: (a, f) =>
    `Refused: the transfer authorisation is valid only after ${f.time(a.validAfter)}.`,
  MockStablecoinAuthorizationExpired: (a, f) =>
    `Refused: the transfer authorisation expired at ${f.time(a.validBefore)}.`,
  MockStablecoinAuthorizationUsed: (a, f) =>
    `Refused: ${f.addr(a.authorizer)}'s authorisation nonce was already used or cancelled.`,
  MockStablecoinInvalidSignature: () => `Refused: the transfer authorisation's signature is not the payer's.`,
  MockStablecoinCallerMustBePayee: (a, f) =>
    `Refused: only the payee ${f.addr(a.payee)} may submit this authorisation, not ${f.addr(a.caller)}.`,
  MockBlacklistTokenBlacklisted: (a, f) => `Refused: the token has blacklisted ${f.addr(a.account)}.`,
  MockERC1271WalletNotOwner: (a, f) => `Refused: ${f.addr(a.caller)} does not own this contract wallet.`,
  MockFeeOnTransferTokenInvalidFee: (a, f) => `Refused: a fee of ${f.bps(a.feeBps)} is above 100%.`,
  MockReentrantTokenZeroTarget: () => `Refused: the re-entry target is the zero address.`,
  MockRevertingReceiverRejected: (a, f) =>
    `Refused: the receiving contract rejects payments (from ${f.addr(a.sender)}).`,
  MockRevertingReceiverERC721Rejected: (a) => `Refused: the receiving contract rejects agent #${a.tokenId}.`,
};

// ------------------------------------------------------------------ decoding

/** Typechain factories whose ABIs decode revert data (missing ones are skipped). */
const ABI_SOURCES = [
  "AgentRegistry__factory",
  "Reputation__factory",
  "OperatorPolicy__factory",
  "ServiceCatalog__factory",
  "TaskEscrow__factory",
  "PayPerUse__factory",
  "EvaluatorStaking__factory",
  "JuryLogic__factory",
  "ChainlinkVRFSource__factory",
  "VRFCoordinatorV2_5Mock__factory",
  "ERC1967Proxy__factory",
  "MockStablecoin__factory",
  "MockOKB__factory",
  "MockBlacklistToken__factory",
  "MockERC1271Wallet__factory",
  "MockFeeOnTransferToken__factory",
  "MockReentrantToken__factory",
  "MockRevertingReceiver__factory",
];

/** OpenZeppelin errors, in case no loaded ABI carries them. */
const OZ_ERRORS = [
  "error AccessControlUnauthorizedAccount(address account, bytes32 neededRole)",
  "error EnforcedPause()",
  "error ExpectedPause()",
  "error ERC721NonexistentToken(uint256 tokenId)",
  "error ERC721InsufficientApproval(address operator, uint256 tokenId)",
  "error ProtocolZeroAddress()",
  "error InvalidInitialization()",
  "error NotInitializing()",
];

let decoder: Interface | undefined;

/** Every error fragment we know, one per selector. */
export function errorInterface(): Interface {
  if (decoder) return decoder;
  const fragments = new Map<string, ErrorFragment>();
  const add = (abi: InterfaceAbi) => {
    for (const fragment of new Interface(abi).fragments) {
      if (fragment instanceof ErrorFragment && !fragments.has(fragment.selector))
        fragments.set(fragment.selector, fragment);
    }
  };
  try {
    // Lazy: typechain-types does not exist before the first compile.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const typechain = require("../../typechain-types") as Record<string, { abi?: InterfaceAbi }>;
    for (const name of ABI_SOURCES) if (typechain[name]?.abi) add(typechain[name].abi!);
  } catch {
    // no typings yet: OpenZeppelin's errors only
  }
  add(OZ_ERRORS);
  decoder = new Interface([...fragments.values()]);
  return decoder;
}

const PANICS: Record<number, string> = {
  0x01: "an assertion failed",
  0x11: "an arithmetic overflow or underflow",
  0x12: "a division by zero",
  0x21: "an invalid enum value",
  0x32: "an array index out of bounds",
  0x41: "too much memory allocated",
};

const PHASES = ["Staking", "Generating", "Drawing"];

/** IEvaluatorStaking.Phase as its name. */
function phaseName(phase: bigint | number): string {
  return PHASES[Number(phase)] ?? `phase ${phase}`;
}

const CASE_STATUS_WORDS = [
  "unknown",
  "waiting for its jury to be drawn",
  "in its commit period",
  "in its reveal period",
  "in its appeal period",
  "ruled for good",
];

/** IEvaluatorStaking.CaseStatus in words. */
function caseStatusWords(status: bigint | number): string {
  return CASE_STATUS_WORDS[Number(status)] ?? `in status ${status}`;
}

/** The first revert data found in an error from ethers or the Hardhat provider. */
export function findRevertData(err: unknown, depth = 0): string | undefined {
  if (!err || typeof err !== "object" || depth > 6) return undefined;
  const e = err as Record<string, unknown>;
  if (typeof e.data === "string" && isHexString(e.data)) return e.data;
  for (const key of ["data", "error", "info", "cause", "parent", "_parent"]) {
    const found = findRevertData(e[key], depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

function formatter(opts: ExplainOptions): Fmt {
  const names = new Map(Object.entries(opts.names ?? {}).map(([address, name]) => [getAddress(address), name]));
  const tokens = new Map(Object.entries(opts.tokens ?? {}).map(([address, info]) => [getAddress(address), info]));
  const roles = new Map(ROLES.map((role) => [keccakId(role), role]));
  roles.set("0x" + "00".repeat(32), "DEFAULT_ADMIN_ROLE");
  const amount = (value: bigint) => formatAmount(BigInt(value), opts.decimals ?? 6, opts.symbol);
  return {
    amount,
    tokenAmount: (token, value) => {
      const info = tokens.get(getAddress(token));
      return info ? formatAmount(BigInt(value), info.decimals, info.symbol) : amount(value);
    },
    agent: (value) => `#${value}`,
    addr: (address) => {
      const name = names.get(getAddress(address));
      return name ? `${name} (${shortAddress(address)})` : address;
    },
    time: (seconds) => formatTimestamp(seconds),
    bps: (value) => formatBps(value),
    role: (hash) => roles.get(hash) ?? `role ${hash}`,
    token: (address) => tokens.get(getAddress(address))?.symbol ?? names.get(getAddress(address)) ?? address,
  };
}

/** A decoded custom error as a sentence, or undefined when the data is no known error. */
export function sentenceFor(data: string, opts: ExplainOptions = {}): string | undefined {
  const selector = dataSlice(data, 0, 4);
  if (selector === "0x08c379a0") {
    const [reason] = AbiCoder.defaultAbiCoder().decode(["string"], dataSlice(data, 4));
    return `Refused: ${reason}.`;
  }
  if (selector === "0x4e487b71") {
    const [code] = AbiCoder.defaultAbiCoder().decode(["uint256"], dataSlice(data, 4));
    return `The contract failed with ${PANICS[Number(code)] ?? `panic 0x${code.toString(16)}`}.`;
  }
  let parsed: ErrorDescription | null = null;
  try {
    parsed = errorInterface().parseError(data);
  } catch {
    return undefined;
  }
  if (!parsed) return undefined;
  const args = namedArgs(parsed);
  const sentence = SENTENCES[parsed.name];
  if (sentence) return sentence(args, formatter(opts));
  const list = parsed.fragment.inputs.map((p, i) => `${p.name || i}=${parsed.args[i]}`).join(", ");
  return `Refused by the contract: ${parsed.name}(${list}).`;
}

function namedArgs(parsed: ErrorDescription): Args {
  const args: Args = {};
  parsed.fragment.inputs.forEach((param, i) => {
    args[param.name || String(i)] = parsed.args[i];
  });
  return args;
}

/** An error already put in words: passed through unchanged. */
export class PlainError extends Error {}

/** Anything thrown by a task, as one plain sentence. */
export function explain(err: unknown, opts: ExplainOptions = {}): string {
  if (err instanceof PlainError) return err.message;
  if (HardhatPluginError.isHardhatPluginError(err) && err.pluginName === PLUGIN_NAME) return err.message;
  const data = findRevertData(err);
  if (data !== undefined && data.length >= 10) {
    const sentence = sentenceFor(data, opts);
    if (sentence) return sentence;
    return `The transaction reverted with an unknown error (selector ${dataSlice(data, 0, 4)}).`;
  }
  if (data === "0x") return "The transaction reverted without a reason.";
  const e = err as { shortMessage?: string; message?: string };
  return e?.shortMessage ?? e?.message ?? String(err);
}

/** Runs `fn`; a failure is rethrown as a PlainError worded with `opts` (token decimals, names). */
export async function plainly<T>(fn: () => Promise<T>, opts: ExplainOptions = {}): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new PlainError(explain(err, opts), { cause: err });
  }
}

/** Wraps a task action: whatever it throws becomes a HardhatPluginError carrying the sentence. */
export function withPlainErrors<A extends TaskArguments>(action: ActionType<A>): ActionType<A> {
  return async (args, hre, runSuper) => {
    try {
      return await action(args, hre, runSuper);
    } catch (err) {
      if (HardhatPluginError.isHardhatPluginError(err) && err.pluginName === PLUGIN_NAME) throw err;
      throw new HardhatPluginError(PLUGIN_NAME, explain(err), err instanceof Error ? err : undefined);
    }
  };
}
