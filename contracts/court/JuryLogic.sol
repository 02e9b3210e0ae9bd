// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAgentRegistry} from "../interfaces/IAgentRegistry.sol";
import {IReputation} from "../interfaces/IReputation.sol";
import {IRandomnessSource} from "../interfaces/IRandomness.sol";
import {IEvaluatorStaking} from "../interfaces/IEvaluatorStaking.sol";
import {SortitionTree} from "../libraries/SortitionTree.sol";

/// @title JuryLogic
/// @notice The jury half of {EvaluatorStaking}: the pool (sum-tree weights), the draw and the
///         settlement of jurors. An external library: deployed once, run by `DELEGATECALL` in the
///         court's storage, so the court stays under EIP-170 behind the same entry points.
/// @dev Every function takes the court's storage (`Court`) and emits the court's events.
library JuryLogic {
    using SortitionTree for SortitionTree.Tree;

    uint256 private constant BPS = 10_000;
    /// @dev Cap of one evaluator's stake (mirrors `EvaluatorStaking.MAX_STAKE`).
    uint256 internal constant MAX_STAKE = 1e25;
    // Hard bounds of the parameters.
    uint256 private constant MAX_JURY = 7;
    uint256 private constant MAX_ROUNDS = 4;
    uint256 private constant MIN_PERIOD = 1 hours;
    uint256 private constant MAX_PERIOD = 30 days;
    uint256 private constant MAX_COOLDOWN = 90 days;
    uint256 private constant MAX_SLASH_BPS = 5_000;
    uint256 private constant MIN_APPEAL_FEE_BPS = 5_000;
    uint256 private constant MAX_APPEAL_FEE_BPS = 50_000;
    uint256 private constant MAX_PHASE_TIME = 7 days;
    /// @dev Least `minStakingTime`. With 0, `passPhase` and `requestRandomness` fit in one block
    ///      and, while a case waits, keep the court out of the Staking phase for good (no unstake
    ///      request, no settlement can land). One hour gives queued transactions hundreds of blocks
    ///      and adds at most an hour to a case's wait under constant load (periods are >= 1 hour).
    uint256 private constant MIN_STAKING_TIME = 1 hours;
    /// @dev How long a round waits for a full jury (from the moment it starts waiting, kept in the
    ///      case's `deadline` while it is in Drawing) before a draw may seat it short.
    uint256 internal constant DRAW_TIMEOUT = 7 days;
    /// @dev Least `iterations` of a draw that seats a timed-out round short, so that nobody can
    ///      shrink a round that the pool could fill by drawing it with one candidate.
    uint256 internal constant SHRINK_DRAWS = 64;
    /// @dev Stake per unit of sum-tree weight, 0.01 of an 18-decimal coin (mirrors
    ///      `EvaluatorStaking.WEIGHT_UNIT`): 32-bit tree lanes then hold up to 42.9 million OKB.
    uint256 internal constant WEIGHT_UNIT = 1e16;

    /// @dev One round of a case. Slot 1: pot and counters; slot 2: draw nonce, packed vote
    ///      counts per choice (8 bits each), coherent stake already rewarded.
    struct Round {
        uint96 fee;
        uint96 slashPot;
        uint8 size;
        uint8 seated;
        uint8 committed;
        uint8 revealed;
        uint8 ruling;
        bool ruled;
        bool abandoned;
        uint8 cursor;
        uint32 drawNonce;
        uint40 counts;
        uint96 rewardedStake;
        uint96[5] stakeByChoice;
        mapping(uint256 word => uint256 ids) jurors;
    }

    struct Case {
        address arbitrable;
        IEvaluatorStaking.CaseStatus status;
        uint16 round;
        uint8 appeals;
        uint48 markEpoch;
        address token;
        uint48 deadline;
        uint96 fee;
        uint64 clientId;
        uint64 providerId;
        address clientOwner;
        address providerOwner;
        IEvaluatorStaking.Params params;
    }

    /// @dev The court's whole state, at the ERC-7201 slot of `agentmarket.storage.EvaluatorStaking`.
    /// @custom:storage-location erc7201:agentmarket.storage.EvaluatorStaking
    struct Court {
        IAgentRegistry registry;
        IReputation reputation;
        IRandomnessSource source;
        address stakeToken;
        address treasury;
        IEvaluatorStaking.Params params;
        IEvaluatorStaking.Timing timing;
        // draw epochs
        IEvaluatorStaking.Phase phase;
        uint48 phaseSince;
        uint48 epoch;
        uint48 drawTime;
        uint64 fallbackBlock;
        uint32 nextLeaf;
        uint64 pendingCases;
        uint64 casesThisEpoch;
        uint256 requestId;
        uint256 word;
        // pool
        SortitionTree.Tree tree;
        uint32[] freeLeaves;
        mapping(uint256 word => uint256 agentIds) leafAgents;
        mapping(uint256 agentId => IEvaluatorStaking.Evaluator) evaluators;
        // cases
        uint256 caseCount;
        mapping(uint256 caseId => Case) cases;
        mapping(uint256 caseId => mapping(uint256 round => Round)) rounds;
        mapping(uint256 caseId => mapping(uint256 round => mapping(uint256 agentId => IEvaluatorStaking.Vote))) votes;
        // money
        mapping(uint256 agentId => mapping(address asset => uint256)) rewards;
        mapping(address asset => uint256) held;
    }

    // ------------------------------------------------------------------ pool

    /// @notice Moves the evaluator's pending stake into the pool and sets its weight.
    function sync(Court storage $, uint256 agentId) external {
        _sync($, agentId, $.evaluators[agentId], false);
    }

    // ------------------------------------------------------------------ draw

    /// @notice Draws up to `iterations` candidates for round `roundIndex` of `caseId`; seats and
    ///         locks the eligible ones. The caller checked the phase and the case. A round still
    ///         short after a draw of at least `SHRINK_DRAWS` candidates, past its `DRAW_TIMEOUT`
    ///         (the case's `deadline`), goes on with the jurors it has: its size becomes `seated`
    ///         (`RoundShrunk`).
    /// @return seated Jurors seated in the round so far.
    /// @return size The round's size after the draw; 0 when it timed out with nobody seated (the
    ///         court then abandons it; its stored size stays, for the redraw).
    function drawSeats(
        Court storage $,
        uint256 caseId,
        uint256 roundIndex,
        uint256 iterations
    ) external returns (uint256 seated, uint256 size) {
        // Never zero: randomness is only requested for a non-empty pool, and the pool cannot
        // shrink until the Drawing phase ends (unstakes and slashes wait for the Staking phase).
        uint256 total = $.tree.total();
        Case storage c = $.cases[caseId];
        Round storage r = $.rounds[caseId][roundIndex];
        seated = r.seated;
        size = r.size;
        uint256 nonce = r.drawNonce;
        uint256 lock = c.params.minStake;
        uint256 word = $.word;
        for (uint256 i; i < iterations && seated < size; ++i) {
            uint256 point = uint256(keccak256(abi.encode(word, caseId, roundIndex, nonce++))) % total;
            uint256 agentId = _leafAgent($, $.tree.draw(point));
            if (!_eligible($, c, caseId, roundIndex, agentId, lock)) continue;
            IEvaluatorStaking.Evaluator storage e = $.evaluators[agentId];
            e.locked += uint96(lock);
            $.votes[caseId][roundIndex][agentId].stake = e.staked;
            _packedSet(r.jurors, seated, agentId);
            emit IEvaluatorStaking.JurorDrawn(caseId, roundIndex, agentId, seated, e.staked);
            ++seated;
        }
        r.seated = uint8(seated);
        // The nonce only matters to a later call: a full jury needs none (saves a slot write).
        if (seated < size) r.drawNonce = uint32(nonce);
        if (seated < size && iterations >= SHRINK_DRAWS && block.timestamp > c.deadline) {
            size = seated;
            if (seated != 0) {
                r.size = uint8(seated);
                emit IEvaluatorStaking.RoundShrunk(caseId, roundIndex, seated);
            }
        }
    }

    // ------------------------------------------------------------------ settlement

    /// @notice Settles up to `iterations` steps of a ruled or abandoned round (see
    ///         `IEvaluatorStaking.execute`). The caller checked the phase.
    function settle(Court storage $, uint256 caseId, uint256 roundIndex, uint256 iterations) external {
        Case storage c = $.cases[caseId];
        if (c.status == IEvaluatorStaking.CaseStatus.None) revert IEvaluatorStaking.EvaluatorStakingUnknownCase(caseId);
        Round storage r = $.rounds[caseId][roundIndex];
        if (!r.ruled && !r.abandoned) revert IEvaluatorStaking.EvaluatorStakingRoundOpen(caseId, roundIndex);
        uint256 n = r.seated;
        uint256 cursor = r.cursor;
        if (cursor == 2 * n) revert IEvaluatorStaking.EvaluatorStakingRoundSettled(caseId, roundIndex);
        uint256 end = cursor + iterations;
        if (end > 2 * n) end = 2 * n;
        for (; cursor < end; ++cursor) {
            if (cursor < n) _penalize($, caseId, roundIndex, c, r, _packedAt(r.jurors, cursor));
            else _reward($, caseId, roundIndex, c, r, _packedAt(r.jurors, cursor - n));
        }
        r.cursor = uint8(cursor);
        // Nobody revealed: no coherent juror takes the slashed stake, the treasury does.
        if (cursor == 2 * n && !r.ruled && r.slashPot != 0) $.rewards[0][$.stakeToken] += r.slashPot;
    }

    /// @notice A round, for `IEvaluatorStaking.getRound`.
    function roundView(
        Court storage $,
        uint256 caseId,
        uint256 roundIndex
    ) external view returns (IEvaluatorStaking.RoundView memory v) {
        Round storage r = $.rounds[caseId][roundIndex];
        (v.size, v.seated, v.committed, v.revealed) = (r.size, r.seated, r.committed, r.revealed);
        (v.ruled, v.abandoned, v.ruling, v.cursor) = (r.ruled, r.abandoned, r.ruling, r.cursor);
        (v.fee, v.slashPot) = (r.fee, r.slashPot);
        v.jurors = new uint64[](r.seated);
        for (uint256 i; i < v.jurors.length; ++i) v.jurors[i] = uint64(_packedAt(r.jurors, i));
        for (uint256 i; i < 5; ++i) {
            v.counts[i] = uint8(r.counts >> (8 * i));
            v.stakeByChoice[i] = r.stakeByChoice[i];
        }
    }

    // ------------------------------------------------------------------ parameters and views

    /// @notice Checks the case parameters against their hard bounds and stores them.
    function setParams(Court storage $, IEvaluatorStaking.Params calldata p) external {
        if (
            p.minStake < WEIGHT_UNIT ||
            p.minStake > MAX_STAKE ||
            p.jurySize == 0 ||
            p.jurySize > MAX_JURY ||
            p.jurySize % 2 == 0 ||
            p.maxRounds == 0 ||
            p.maxRounds > MAX_ROUNDS ||
            !_inPeriod(p.commitPeriod) ||
            !_inPeriod(p.revealPeriod) ||
            !_inPeriod(p.appealPeriod) ||
            p.jurorCooldown > MAX_COOLDOWN ||
            p.slashMinorityBps > p.slashTimeoutBps ||
            p.slashTimeoutBps > MAX_SLASH_BPS ||
            p.appealFeeBps < MIN_APPEAL_FEE_BPS ||
            p.appealFeeBps > MAX_APPEAL_FEE_BPS
        ) revert IEvaluatorStaking.EvaluatorStakingBadParams();
        $.params = p;
        emit IEvaluatorStaking.ParamsSet(p);
    }

    /// @notice Checks the timings against their hard bounds (`minStakingTime` from 1 hour to
    ///         7 days) and stores them.
    function setTiming(Court storage $, IEvaluatorStaking.Timing calldata t) external {
        if (
            !_inPeriod(t.unstakeDelay) ||
            t.minStakingTime < MIN_STAKING_TIME ||
            t.minStakingTime > MAX_PHASE_TIME ||
            t.maxDrawingTime < MIN_PERIOD ||
            t.maxDrawingTime > MAX_PHASE_TIME ||
            t.randomnessTimeout < MIN_PERIOD ||
            t.randomnessTimeout > MAX_PERIOD
        ) revert IEvaluatorStaking.EvaluatorStakingBadParams();
        $.timing = t;
        emit IEvaluatorStaking.TimingSet(t);
    }

    function _inPeriod(uint256 period) private pure returns (bool) {
        return period >= MIN_PERIOD && period <= MAX_PERIOD;
    }

    /// @notice A case, for `IEvaluatorStaking.getCase`.
    function caseView(Court storage $, uint256 caseId) external view returns (IEvaluatorStaking.CaseView memory v) {
        Case storage c = $.cases[caseId];
        v = IEvaluatorStaking.CaseView(
            c.arbitrable,
            c.status,
            c.round,
            c.appeals,
            c.deadline,
            c.markEpoch,
            c.token,
            c.fee,
            c.clientId,
            c.providerId,
            c.clientOwner,
            c.providerOwner,
            c.params
        );
    }

    // ------------------------------------------------------------------ private

    /// @dev Whether the drawn evaluator may take a seat: enough free stake for the lock, no
    ///      cooldown at the request time, not a party nor an agent of a party's owner, not seated.
    function _eligible(
        Court storage $,
        Case storage c,
        uint256 caseId,
        uint256 roundIndex,
        uint256 agentId,
        uint256 lock
    ) private view returns (bool) {
        IEvaluatorStaking.Evaluator storage e = $.evaluators[agentId];
        if (e.staked < uint256(e.locked) + lock || e.cooldownUntil > $.drawTime) return false;
        if (agentId == c.clientId || agentId == c.providerId) return false;
        if ($.votes[caseId][roundIndex][agentId].stake != 0) return false;
        address owner = $.registry.ownerOfAgent(agentId);
        return owner != c.clientOwner && owner != c.providerOwner;
    }

    /// @dev First settlement pass: a juror who did not vote the ruling loses part of its seat's
    ///      lock (more, and a cooldown, if it did not reveal); the lock is released.
    function _penalize(
        Court storage $,
        uint256 caseId,
        uint256 roundIndex,
        Case storage c,
        Round storage r,
        uint256 agentId
    ) private {
        IEvaluatorStaking.Vote storage v = $.votes[caseId][roundIndex][agentId];
        bool revealed = v.revealed;
        if (r.ruled && revealed && v.choice == r.ruling) return;
        uint256 lock = c.params.minStake;
        uint256 amount = (lock * (revealed ? c.params.slashMinorityBps : c.params.slashTimeoutBps)) / BPS;
        IEvaluatorStaking.Evaluator storage e = $.evaluators[agentId];
        e.locked -= uint96(lock);
        e.staked -= uint96(amount);
        uint256 cooldownUntil;
        if (!revealed) {
            cooldownUntil = block.timestamp + c.params.jurorCooldown;
            if (cooldownUntil > e.cooldownUntil) e.cooldownUntil = uint32(cooldownUntil);
        }
        r.slashPot += uint96(amount);
        emit IEvaluatorStaking.JurorSlashed(caseId, roundIndex, agentId, amount, !revealed, cooldownUntil);
        _sync($, agentId, e, true);
        $.reputation.recordVote(agentId, false);
    }

    /// @dev Second settlement pass: a coherent juror's lock is released and it earns its share of
    ///      the fee and of the slashed stake, pro rata to its stake (shares are differences of rounded
    ///      cumulative amounts: they add up to the pots exactly).
    function _reward(
        Court storage $,
        uint256 caseId,
        uint256 roundIndex,
        Case storage c,
        Round storage r,
        uint256 agentId
    ) private {
        IEvaluatorStaking.Vote storage v = $.votes[caseId][roundIndex][agentId];
        if (!r.ruled || !v.revealed || v.choice != r.ruling) return;
        $.evaluators[agentId].locked -= c.params.minStake;
        uint256 coherent = r.stakeByChoice[r.ruling];
        uint256 before = r.rewardedStake;
        uint256 afterwards = before + v.stake;
        r.rewardedStake = uint96(afterwards);
        uint256 feeShare = _share(r.fee, before, afterwards, coherent);
        uint256 stakeShare = _share(r.slashPot, before, afterwards, coherent);
        $.rewards[agentId][c.token] += feeShare;
        $.rewards[agentId][$.stakeToken] += stakeShare;
        emit IEvaluatorStaking.JurorRewarded(caseId, roundIndex, agentId, feeShare, stakeShare);
        $.reputation.recordVote(agentId, true);
    }

    /// @dev Item `index` of a list of 64-bit ids packed four to a slot.
    function _packedAt(mapping(uint256 => uint256) storage words, uint256 index) private view returns (uint256) {
        return (words[index >> 2] >> ((index & 3) << 6)) & type(uint64).max;
    }

    /// @dev Sets item `index` (< 2^64 ids) of a list of 64-bit ids packed four to a slot.
    function _packedSet(mapping(uint256 => uint256) storage words, uint256 index, uint256 id) private {
        uint256 shift = (index & 3) << 6;
        uint256 word = words[index >> 2];
        words[index >> 2] = (word & ~(uint256(type(uint64).max) << shift)) | (id << shift);
    }

    /// @dev The agent at `leaf`. Agent ids are packed eight to a slot (32 bits each), offset by four
    ///      from the tree's bottom nodes: a new leaf opens at most one new slot (a bottom node for
    ///      leaves 0, 8, 16..., an id word for leaves 4, 12, 20...), never both.
    function _leafAgent(Court storage $, uint256 leaf) private view returns (uint256) {
        uint256 i = leaf + 4;
        return ($.leafAgents[i >> 3] >> ((i & 7) << 5)) & type(uint32).max;
    }

    function _setLeafAgent(Court storage $, uint256 leaf, uint256 agentId) private {
        if (agentId > type(uint32).max) revert IEvaluatorStaking.EvaluatorStakingPoolFull();
        uint256 i = leaf + 4;
        uint256 shift = (i & 7) << 5;
        uint256 word = $.leafAgents[i >> 3];
        $.leafAgents[i >> 3] = (word & ~(uint256(type(uint32).max) << shift)) | (agentId << shift);
    }

    /// @dev The part of `pot` between two cumulative stakes: the shares add up to `pot` exactly.
    function _share(uint256 pot, uint256 before, uint256 afterwards, uint256 total) private pure returns (uint256) {
        return (pot * afterwards) / total - (pot * before) / total;
    }

    /// @dev Moves pending stake into the pool and sets the evaluator's tree weight: its stake in
    ///      weight units when it has the minimum stake, else 0 (its leaf is then freed for reuse).
    ///      A settlement (`slashing`) merges no pending stake and never raises a weight, so it can
    ///      never hit a full tree lane: settling a round cannot revert on the tree.
    function _sync(Court storage $, uint256 agentId, IEvaluatorStaking.Evaluator storage e, bool slashing) private {
        uint256 staked = e.staked;
        if (!slashing && e.pending != 0) {
            staked += e.pending;
            (e.staked, e.pending) = (uint96(staked), 0);
        }
        uint256 weight = staked >= $.params.minStake ? staked / WEIGHT_UNIT : 0;
        uint256 leaf = e.leaf;
        if (slashing) {
            uint256 current = leaf == 0 ? 0 : $.tree.weightOf(leaf - 1);
            if (weight > current) weight = current;
        }
        if (leaf == 0 && weight != 0) {
            uint256 free = $.freeLeaves.length;
            if (free != 0) {
                leaf = $.freeLeaves[free - 1] + 1;
                $.freeLeaves.pop();
            } else {
                leaf = ++$.nextLeaf;
                if (leaf > SortitionTree.LEAVES) revert IEvaluatorStaking.EvaluatorStakingPoolFull();
            }
            e.leaf = uint32(leaf);
            _setLeafAgent($, leaf - 1, agentId);
        }
        if (leaf != 0) {
            $.tree.set(leaf - 1, weight);
            if (weight == 0) {
                $.freeLeaves.push(uint32(leaf - 1));
                e.leaf = 0;
            }
        }
        emit IEvaluatorStaking.StakeSynced(agentId, staked, weight);
    }
}
