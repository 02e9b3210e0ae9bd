// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IEvaluatorStaking
/// @notice The court of the Agent Market (DESIGN §1.5): evaluators stake OKB, juries are drawn at
///         random in proportion to stake, jurors commit and reveal a payout split, the median
///         rules, coherent jurors share the fee and the stake slashed from the others, and either
///         party may appeal to a larger jury. It is the arbitrator of TaskEscrow (ERC-792 shape).
/// @dev Evaluators are registered agents; their owner, agent wallet or an operator acts for them.
///      Payouts (unstaked coin, rewards) go to the evaluator agent's wallet (its owner when unset).
///
///      Draw epochs. Stake changes must not change a jury once randomness is on its way, so the
///      court moves through three global phases (as Kleros v2 does):
///      `Staking` (stakes change freely; cases wait for jurors) → {requestRandomness} →
///      `Generating` (one random word for every waiting case) → the word arrives →
///      `Drawing` (anyone draws the juries with {draw}) → {passPhase} → `Staking`.
///      Outside `Staking`, new stake waits as `pending` (joins at {syncStake} or the evaluator's
///      next action), unstake requests and juror settlements ({execute}) revert, so the pool a
///      word is applied to is the pool at the request. A case that starts waiting after a
///      request is drawn with the next word. If the source never answers, {fallbackRandomness}
///      uses a future block hash after `randomnessTimeout` (weaker: see the function).
///
///      Jury. Seats are drawn from a sum tree (O(depth) per seat, never a scan). A drawn evaluator
///      is skipped when it is a party or has the owner of a party, already sits in the round, is
///      in a post-slash cooldown, or has less free stake than the case's minimum stake (each
///      seat locks that much). Draws go on with fresh seeds until the jury is full; a case the
///      pool cannot seat in one epoch waits for the next. A round still short `DRAW_TIMEOUT`
///      (7 days) after it started waiting (the case's `deadline` in the Drawing status) goes on
///      with the jurors it has at its next draw of at least 64 candidates (`RoundShrunk`; fees and
///      slashes are then shared among them as usual); with nobody seated it is abandoned and
///      redrawn, like a round nobody committed in.
///
///      Vote. Choices are the provider's payout share: 0 = 0%, 1 = 25%, 2 = 50%, 3 = 75%,
///      4 = 100% (ERC-792 ruling = choice + 1). A juror commits
///      `keccak256(abi.encode(caseId, round, jurorId, choice, salt))` then reveals. The ruling is
///      the lower median of the revealed choices; coherent = revealed the ruling. A round in
///      which nobody reveals is redrawn (same size, same fee).
///
///      Money. The round's fee (arbitration fee for the first round, appeal fee after) in the
///      task's token, and the stake slashed from the round's incoherent jurors, are shared by
///      its coherent jurors pro rata to their stake at the draw (each share is the difference of
///      two rounded cumulative amounts, so the shares add up to the pot exactly). Incoherent jurors lose `slashMinorityBps` of the seat's locked stake; jurors
///      who did not commit or reveal lose `slashTimeoutBps` and sit out `jurorCooldown`. Slashes
///      of a round nobody revealed go to the treasury. Settlement is per juror ({execute}, in
///      batches, bounded by the jury); rewards are claimed ({claimRewards}). The contract's
///      balance of every asset equals what it owes (`held`): stakes, pending stakes, unstaking
///      amounts, unclaimed rewards and undistributed fees.
///
///      Pausing stops new stake only. Drawing, voting, appeals, rulings, settlements, unstake
///      claims and reward claims never stop.
interface IEvaluatorStaking {
    // ------------------------------------------------------------------ types

    /// @notice The global draw phase.
    enum Phase {
        Staking,
        Generating,
        Drawing
    }

    /// @notice Where a case stands.
    enum CaseStatus {
        None,
        Drawing,
        Commit,
        Reveal,
        Appeal,
        Ruled
    }

    /// @notice Parameters of a case, snapshotted when it is created.
    /// @param minStake Least free stake to be drawn; each seat locks this much.
    /// @param commitPeriod Time jurors have to commit once the jury is full.
    /// @param revealPeriod Time jurors have to reveal once the commit period ends.
    /// @param appealPeriod Time parties have to appeal a ruling.
    /// @param jurorCooldown Time a juror who missed its commit or reveal cannot be drawn.
    /// @param slashMinorityBps Share of the locked stake an incoherent juror loses.
    /// @param slashTimeoutBps Share of the locked stake a juror who missed commit or reveal loses.
    /// @param appealFeeBps Appeal fee per juror seat, in basis points of the first round's fee per seat.
    /// @param jurySize Seats of the first round (odd); an appeal seats 2n + 1.
    /// @param maxRounds Rounds a case can have, counting the first (appeals = maxRounds - 1).
    struct Params {
        uint96 minStake;
        uint32 commitPeriod;
        uint32 revealPeriod;
        uint32 appealPeriod;
        uint32 jurorCooldown;
        uint16 slashMinorityBps;
        uint16 slashTimeoutBps;
        uint16 appealFeeBps;
        uint8 jurySize;
        uint8 maxRounds;
    }

    /// @notice Global timings (not snapshotted: they concern evaluators and draw epochs).
    /// @param unstakeDelay Cooldown between an unstake request and its claim.
    /// @param minStakingTime Least time in the Staking phase before randomness can be requested
    ///        (at least 1 hour, so that unstake requests and settlements always get a window).
    /// @param maxDrawingTime After this long in the Drawing phase, {passPhase} works even if some
    ///        cases could not be seated (they wait for the next word).
    /// @param randomnessTimeout After this long in the Generating phase, {fallbackRandomness} works.
    struct Timing {
        uint32 unstakeDelay;
        uint32 minStakingTime;
        uint32 maxDrawingTime;
        uint32 randomnessTimeout;
    }

    /// @notice An evaluator's stake.
    /// @param staked In the pool: drawable and slashable (includes `locked`).
    /// @param locked Part of `staked` held by open jury seats.
    /// @param leaf Sum-tree leaf + 1 (0: not in the tree).
    /// @param cooldownUntil Not drawable before this time (after a missed commit or reveal).
    /// @param pending Deposited during a draw epoch; joins `staked` at the next sync.
    /// @param unstaking Requested out of the pool, claimable at `unstakeAt`.
    /// @param unstakeAt When `unstaking` can be claimed.
    struct Evaluator {
        uint96 staked;
        uint96 locked;
        uint32 leaf;
        uint32 cooldownUntil;
        uint96 pending;
        uint96 unstaking;
        uint48 unstakeAt;
    }

    /// @notice A case (one dispute of an arbitrable contract).
    struct CaseView {
        address arbitrable;
        CaseStatus status;
        uint16 round;
        uint8 appeals;
        uint48 deadline;
        uint48 markEpoch;
        address token;
        uint96 fee;
        uint64 clientId;
        uint64 providerId;
        address clientOwner;
        address providerOwner;
        Params params;
    }

    /// @notice One jury round of a case.
    struct RoundView {
        uint8 size;
        uint8 seated;
        uint8 committed;
        uint8 revealed;
        bool ruled;
        bool abandoned;
        uint8 ruling;
        uint8 cursor;
        uint96 fee;
        uint96 slashPot;
        uint256[5] counts;
        uint256[5] stakeByChoice;
        uint64[] jurors;
    }

    /// @notice A juror's seat and vote.
    struct Vote {
        bytes32 commitHash;
        uint96 stake;
        uint8 choice;
        bool revealed;
    }

    // ------------------------------------------------------------------ events

    /// @notice Stake was added (`pending` true: queued until the draw epoch ends).
    event Staked(uint256 indexed agentId, address indexed from, uint256 amount, bool pending);
    /// @notice Pending stake joined the pool; `weight` is the evaluator's new sum-tree weight.
    event StakeSynced(uint256 indexed agentId, uint256 staked, uint256 weight);
    /// @notice Stake left the pool; claimable at `unstakeAt`.
    event UnstakeRequested(uint256 indexed agentId, uint256 amount, uint256 unstaking, uint256 unstakeAt);
    /// @notice An unstake request was cancelled; the amount is back in the pool (or pending).
    event UnstakeCancelled(uint256 indexed agentId, uint256 amount);
    /// @notice Unstaked coin was paid out.
    event UnstakeClaimed(uint256 indexed agentId, address indexed to, uint256 amount);
    /// @notice The global draw phase changed.
    event PhaseChanged(Phase from, Phase to, uint256 epoch);
    /// @notice Randomness was requested for `epoch`.
    event RandomnessRequested(uint256 indexed epoch, uint256 requestId, uint256 casesWaiting);
    /// @notice The random word of `epoch` arrived (`requestId` 0: the block-hash fallback).
    event RandomnessReceived(uint256 indexed epoch, uint256 requestId, uint256 word);
    /// @notice A delivery that does not match the pending request was ignored.
    event RandomnessIgnored(uint256 requestId);
    /// @notice The block-hash fallback will use the hash of `targetBlock`.
    event FallbackScheduled(uint256 indexed epoch, uint256 targetBlock);
    /// @notice A case was opened for `arbitrable`'s dispute (its id is `caseId`).
    event CaseCreated(
        uint256 indexed caseId,
        address indexed arbitrable,
        address token,
        uint256 fee,
        uint256 clientId,
        uint256 providerId
    );
    /// @notice A case moved to `status` in `round`, with its new deadline (0 when none; for
    ///         `Drawing`, the draw timeout after which the round may be seated short).
    event CaseStatusChanged(uint256 indexed caseId, uint256 round, CaseStatus from, CaseStatus to, uint256 deadline);
    /// @notice A juror was drawn for `seat` of `round`, with its stake at the draw.
    event JurorDrawn(uint256 indexed caseId, uint256 round, uint256 indexed agentId, uint256 seat, uint256 stake);
    /// @notice A juror committed.
    event VoteCommitted(uint256 indexed caseId, uint256 round, uint256 indexed agentId, bytes32 commitHash);
    /// @notice A juror revealed.
    event VoteRevealed(uint256 indexed caseId, uint256 round, uint256 indexed agentId, uint256 choice);
    /// @notice `round` ruled `choice` (the provider's share is choice x 25%).
    event RoundRuled(uint256 indexed caseId, uint256 round, uint256 choice, uint256 revealed);
    /// @notice Nobody revealed in `round` (or nobody was seated by its draw timeout); the case is
    ///         redrawn.
    event RoundAbandoned(uint256 indexed caseId, uint256 round);
    /// @notice `round` was still short after its draw timeout: it goes on with the `size` jurors
    ///         it has (its commit period starts).
    event RoundShrunk(uint256 indexed caseId, uint256 round, uint256 size);
    /// @notice A party appealed; `round` seats `jurySize` jurors and holds `fee`.
    event Appealed(
        uint256 indexed caseId,
        uint256 round,
        uint256 indexed partyId,
        address payer,
        uint256 fee,
        uint256 jurySize
    );
    /// @notice The final ruling was given to the arbitrable contract (ERC-792 ruling = choice + 1).
    event FinalRuling(uint256 indexed caseId, address indexed arbitrable, uint256 choice);
    /// @notice A juror lost `amount` of stake (`missed`: did not commit or reveal, cooldown until `cooldownUntil`).
    event JurorSlashed(
        uint256 indexed caseId,
        uint256 round,
        uint256 indexed agentId,
        uint256 amount,
        bool missed,
        uint256 cooldownUntil
    );
    /// @notice A coherent juror earned `feeReward` in the case's token and `stakeReward` in the stake asset.
    event JurorRewarded(
        uint256 indexed caseId,
        uint256 round,
        uint256 indexed agentId,
        uint256 feeReward,
        uint256 stakeReward
    );
    /// @notice Rewards were paid out (`agentId` 0: the protocol's share, to the treasury).
    event RewardsClaimed(uint256 indexed agentId, address indexed asset, address indexed to, uint256 amount);
    /// @notice Case parameters were set.
    event ParamsSet(Params params);
    /// @notice Timings were set.
    event TimingSet(Timing timing);
    /// @notice The randomness source was set.
    event RandomnessSourceSet(address source);
    /// @notice The treasury was set.
    event TreasurySet(address treasury);

    // ------------------------------------------------------------------ errors

    /// @notice An amount was zero.
    error EvaluatorStakingZeroAmount();
    /// @notice Native mode: `msg.value` must equal the amount; token mode: it must be zero.
    error EvaluatorStakingBadValue(uint256 amount, uint256 value);
    /// @notice `account` may not act for `agentId`.
    error EvaluatorStakingNotAuthorized(uint256 agentId, address account);
    /// @notice Not possible in the current draw phase.
    error EvaluatorStakingWrongPhase(Phase phase);
    /// @notice The amount exceeds the free stake (staked minus locked).
    error EvaluatorStakingInsufficientFreeStake(uint256 agentId, uint256 amount, uint256 free);
    /// @notice The evaluator's stake would exceed the per-evaluator cap.
    error EvaluatorStakingStakeTooLarge(uint256 agentId, uint256 total, uint256 cap);
    /// @notice No unstake request is open.
    error EvaluatorStakingNoUnstake(uint256 agentId);
    /// @notice The unstake cooldown has not passed.
    error EvaluatorStakingUnstakeNotReady(uint256 agentId, uint256 unstakeAt);
    /// @notice Nothing to claim.
    error EvaluatorStakingNothingToClaim(uint256 agentId, address asset);
    /// @notice A payout in the native coin failed.
    error EvaluatorStakingTransferFailed(address to, uint256 amount);
    /// @notice The token moved a different amount than asked (fee-on-transfer tokens are refused).
    error EvaluatorStakingTransferMismatch(address token, uint256 expected, uint256 received);
    /// @notice Every sum-tree leaf is taken.
    error EvaluatorStakingPoolFull();
    /// @notice No evaluator can be drawn (the pool weighs nothing).
    error EvaluatorStakingEmptyPool();
    /// @notice No case waits for a draw.
    error EvaluatorStakingNoCaseWaiting();
    /// @notice Too early: `time` (a timestamp or a block number) has not been reached.
    error EvaluatorStakingTooEarly(uint256 time);
    /// @notice Only the randomness source may deliver randomness.
    error EvaluatorStakingNotRandomnessSource(address caller);
    /// @notice The case does not exist.
    error EvaluatorStakingUnknownCase(uint256 caseId);
    /// @notice The case is not in the status this needs.
    error EvaluatorStakingWrongStatus(uint256 caseId, CaseStatus status);
    /// @notice The case waits for a later draw epoch.
    error EvaluatorStakingNotDrawable(uint256 caseId, uint256 markEpoch, uint256 epoch);
    /// @notice The deadline of the current period passed.
    error EvaluatorStakingDeadlinePassed(uint256 caseId, uint256 deadline);
    /// @notice Nothing to advance before the deadline.
    error EvaluatorStakingDeadlineNotPassed(uint256 caseId, uint256 deadline);
    /// @notice `agentId` does not sit in the current round.
    error EvaluatorStakingNotJuror(uint256 caseId, uint256 round, uint256 agentId);
    /// @notice The juror already committed.
    error EvaluatorStakingAlreadyCommitted(uint256 caseId, uint256 agentId);
    /// @notice The juror did not commit.
    error EvaluatorStakingNotCommitted(uint256 caseId, uint256 agentId);
    /// @notice The juror already revealed.
    error EvaluatorStakingAlreadyRevealed(uint256 caseId, uint256 agentId);
    /// @notice The revealed choice and salt do not match the commitment.
    error EvaluatorStakingRevealMismatch(uint256 caseId, uint256 agentId);
    /// @notice The commitment is empty.
    error EvaluatorStakingEmptyCommit();
    /// @notice A choice must be 0..4.
    error EvaluatorStakingBadChoice(uint256 choice);
    /// @notice The arbitrable contract asked for a number of choices other than 5.
    error EvaluatorStakingBadChoices(uint256 choices);
    /// @notice `agentId` is not a party of the case.
    error EvaluatorStakingNotParty(uint256 caseId, uint256 agentId);
    /// @notice The case has had all the rounds it may have.
    error EvaluatorStakingMaxRounds(uint256 caseId, uint256 maxRounds);
    /// @notice The round has no ruling yet and was not abandoned.
    error EvaluatorStakingRoundOpen(uint256 caseId, uint256 round);
    /// @notice Every juror of the round was settled.
    error EvaluatorStakingRoundSettled(uint256 caseId, uint256 round);
    /// @notice A parameter is outside its hard bounds.
    error EvaluatorStakingBadParams();

    // ------------------------------------------------------------------ staking

    /// @notice Stakes `amount` for evaluator `agentId`: the native coin (`msg.value == amount`) or
    ///         the stake token (pulled from the caller, balance-checked). During a draw epoch the
    ///         stake waits as pending. Actor of the agent only; stops when paused.
    function stake(uint256 agentId, uint256 amount) external payable;

    /// @notice Moves pending stake into the pool. Anyone, in the Staking phase.
    function syncStake(uint256 agentId) external;

    /// @notice Takes `amount` of free stake out of the pool; claimable after `unstakeDelay` (a new
    ///         request adds to the open one and restarts its cooldown). Actor only, Staking phase.
    function requestUnstake(uint256 agentId, uint256 amount) external;

    /// @notice Puts the open unstake request back into the pool (pending during a draw epoch).
    ///         Actor only.
    function cancelUnstake(uint256 agentId) external;

    /// @notice Pays the unstaked amount to the evaluator's wallet once the cooldown passed.
    ///         Actor only; works when paused and in every phase.
    function claimUnstake(uint256 agentId) external;

    /// @notice Pays `agentId`'s rewards in `asset` (a case token, or the stake asset: address(0)
    ///         when native) to its wallet. Actor only. `agentId` 0 is the protocol's share: anyone
    ///         may send it to the treasury.
    function claimRewards(uint256 agentId, address asset) external;

    // ------------------------------------------------------------------ draw epochs

    /// @notice Asks the randomness source for the word of a new epoch. Anyone, in the Staking
    ///         phase, after `minStakingTime`, when a case waits and the pool is not empty.
    function requestRandomness() external returns (uint256 requestId);

    /// @notice Keeps a draw from stalling when the randomness source never answers. After
    ///         `randomnessTimeout` in the Generating phase, a first call schedules the hash of a
    ///         block `FALLBACK_BLOCKS` ahead (and the pending request is abandoned: a late answer
    ///         is ignored); a call after that block uses its hash as the word. If the hash is no
    ///         longer available (256 blocks), the next call schedules again. Anyone.
    /// @dev Weaker than VRF: the producer of the target block (on X Layer, the sequencer) can
    ///      choose or withhold it and so bias the draw. It exists only so a case cannot stall.
    function fallbackRandomness() external;

    /// @notice Draws up to `iterations` candidates for the case's current round (skipped
    ///         candidates count). Anyone, in the Drawing phase, for a case waiting since before the
    ///         epoch's request. The jury complete, the commit period starts. Past the case's
    ///         `deadline` (`DRAW_TIMEOUT` after the round started waiting), a draw of at least 64
    ///         candidates that leaves the round short makes its size the jurors seated
    ///         (`RoundShrunk`) and starts the commit period; with nobody seated, the round is
    ///         abandoned (`RoundAbandoned`) and waits for the next epoch.
    /// @return seated Jurors seated in the round so far.
    function draw(uint256 caseId, uint256 iterations) external returns (uint256 seated);

    /// @notice Ends the Drawing phase: when every case of the epoch is seated, or after
    ///         `maxDrawingTime` (the rest wait for the next word). Anyone.
    function passPhase() external;

    // ------------------------------------------------------------------ voting

    /// @notice Commits `juror`'s vote: `keccak256(abi.encode(caseId, round, jurorId, choice, salt))`.
    ///         Actor of the juror, in the commit period. The last commit opens the reveal period.
    function commit(uint256 caseId, uint256 jurorId, bytes32 commitHash) external;

    /// @notice Reveals `juror`'s vote. Actor of the juror, in the reveal period (works when paused).
    ///         The last reveal rules the round.
    function reveal(uint256 caseId, uint256 jurorId, uint256 choice, bytes32 salt) external;

    /// @notice Moves a case past an elapsed deadline: commit → reveal (or redraw if nobody
    ///         committed), reveal → ruling (or redraw if nobody revealed), appeal → final ruling,
    ///         given to the arbitrable contract once. Anyone. A case in `Drawing` moves only
    ///         through {draw} (reverts `EvaluatorStakingDeadlineNotPassed`).
    function advance(uint256 caseId) external;

    /// @notice Appeals the current ruling for party `partyId` (the client or the provider), paying
    ///         {appealCost} in the case's token from the caller. Actor of the party, in the
    ///         appeal period, while rounds remain. The next round seats 2n + 1 jurors.
    function appeal(uint256 caseId, uint256 partyId) external;

    /// @notice Settles up to `iterations` steps of a ruled or abandoned round: first every
    ///         incoherent or absent juror (slash, unlock, cooldown), then every coherent one
    ///         (unlock, reward). Anyone, in the Staking phase. Records coherence in Reputation.
    function execute(uint256 caseId, uint256 round, uint256 iterations) external;

    // ------------------------------------------------------------------ admin

    /// @notice Sets the case parameters (used by cases created afterwards). Parameter role.
    function setParams(Params calldata params) external;

    /// @notice Sets the timings. Parameter role. Reverts `EvaluatorStakingBadParams` outside the
    ///         bounds: `unstakeDelay` 1 hour to 30 days, `minStakingTime` 1 hour to 7 days,
    ///         `maxDrawingTime` 1 hour to 7 days, `randomnessTimeout` 1 hour to 30 days.
    function setTiming(Timing calldata timing) external;

    /// @notice Sets the randomness source. Admin only, in the Staking phase.
    function setRandomnessSource(address source) external;

    /// @notice Sets the treasury (receives slashes of rounds nobody revealed). Admin only.
    function setTreasury(address treasury) external;

    // ------------------------------------------------------------------ views

    /// @notice The appeal fee of the case's next round.
    function appealCost(uint256 caseId) external view returns (uint256);

    /// @notice The case.
    function getCase(uint256 caseId) external view returns (CaseView memory);

    /// @notice A round of a case.
    function getRound(uint256 caseId, uint256 round) external view returns (RoundView memory);

    /// @notice A juror's seat and vote in a round (stake 0: not seated).
    function getVote(uint256 caseId, uint256 round, uint256 agentId) external view returns (Vote memory);

    /// @notice An evaluator's stake.
    function getEvaluator(uint256 agentId) external view returns (Evaluator memory);

    /// @notice The evaluator's weight in the sum tree (stake in units of `WEIGHT_UNIT`).
    function weightOf(uint256 agentId) external view returns (uint256);

    /// @notice Total weight of the pool.
    function totalWeight() external view returns (uint256);

    /// @notice Rewards of `agentId` in `asset` (0: the protocol).
    function rewardsOf(uint256 agentId, address asset) external view returns (uint256);

    /// @notice What the contract owes in `asset` (its balance must equal it).
    function held(address asset) external view returns (uint256);

    /// @notice The draw state: phase, epoch, when the phase started, the pending request, cases
    ///         waiting for the next word, cases of this epoch not seated yet, the fallback block.
    function drawState()
        external
        view
        returns (
            Phase phase,
            uint256 epoch,
            uint256 phaseSince,
            uint256 requestId,
            uint256 pendingCases,
            uint256 casesThisEpoch,
            uint256 fallbackBlock
        );

    /// @notice The case parameters new cases get.
    function params() external view returns (Params memory);

    /// @notice The timings.
    function timing() external view returns (Timing memory);

    /// @notice The stake asset: the ERC-20 stake token, or address(0) for the native coin.
    function stakeToken() external view returns (address);

    /// @notice The commitment a juror must submit (helper for off-chain tools and tests).
    function commitmentOf(
        uint256 caseId,
        uint256 round,
        uint256 jurorId,
        uint256 choice,
        bytes32 salt
    ) external pure returns (bytes32);
}
