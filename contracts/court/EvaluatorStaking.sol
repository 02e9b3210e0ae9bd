// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ProtocolBase} from "../utils/ProtocolBase.sol";
import {IAgentRegistry} from "../interfaces/IAgentRegistry.sol";
import {IReputation} from "../interfaces/IReputation.sol";
import {IArbitrator, IArbitrable} from "../interfaces/IArbitration.sol";
import {IRandomnessSource, IRandomnessConsumer} from "../interfaces/IRandomness.sol";
import {IEvaluatorStaking} from "../interfaces/IEvaluatorStaking.sol";
import {SortitionTree} from "../libraries/SortitionTree.sol";
import {JuryLogic} from "./JuryLogic.sol";

/// @title EvaluatorStaking
/// @notice The court: staked evaluators, VRF-drawn stake-weighted juries, commit-reveal votes on a
///         payout split, appeals, rewards and slashing. See {IEvaluatorStaking} for the rules.
/// @dev UUPS proxy; state in the ERC-7201 namespace `agentmarket.storage.EvaluatorStaking`.
///      Arbitrable contracts (TaskEscrow) need `ARBITRABLE_ROLE`; the court needs `REPORTER_ROLE`
///      on Reputation. No function loops over evaluators or cases: a draw is O(seats x depth),
///      a settlement O(jurors of one round), in caller-chosen batches.
contract EvaluatorStaking is ProtocolBase, IEvaluatorStaking, IArbitrator, IRandomnessConsumer {
    using SafeERC20 for IERC20;
    using SortitionTree for SortitionTree.Tree;

    /// @notice Role of the contracts allowed to open cases (TaskEscrow).
    bytes32 public constant ARBITRABLE_ROLE = keccak256("ARBITRABLE_ROLE");
    /// @notice Implementation version.
    string public constant VERSION = "1.0.0";
    /// @notice Stake per unit of sum-tree weight (0.01 of an 18-decimal coin).
    uint256 public constant WEIGHT_UNIT = JuryLogic.WEIGHT_UNIT;
    /// @notice Cap of one evaluator's stake (10 million OKB). Each lane of the sum tree (a group
    ///         of leaves: 8, 64, ... evaluators) holds at most (2^32 - 1) x WEIGHT_UNIT, 42.9
    ///         million OKB, more than the OKB supply; with a stake token of a larger supply a stake
    ///         into a full group reverts `SortitionTreeOverflow` (settlements never do).
    uint256 public constant MAX_STAKE = JuryLogic.MAX_STAKE;
    /// @notice Time a round waits for a full jury before a draw may seat it short (see {draw}).
    uint256 public constant DRAW_TIMEOUT = JuryLogic.DRAW_TIMEOUT;
    /// @notice Blocks between scheduling the block-hash fallback and the block whose hash is used.
    uint256 public constant FALLBACK_BLOCKS = 20;
    /// @notice Choices of a case (payout shares 0/25/50/75/100%).
    uint256 public constant CHOICES = 5;
    uint256 private constant BPS = 10_000;

    // keccak256(abi.encode(uint256(keccak256("agentmarket.storage.EvaluatorStaking")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant STORAGE_LOCATION = 0xe341b170c8ea626a9d907e8b7a80a106aaba87aad6200f9451e34fc2d440ce00;

    // ------------------------------------------------------------------ initializer

    /// @notice Initialises the proxy. `stakeToken_` is the ERC-20 stake token (18 decimals), or
    ///         address(0) to stake the native coin (OKB on X Layer); it cannot change later.
    ///         `admin` receives every administrative role.
    function initialize(
        address admin,
        IAgentRegistry registry_,
        IReputation reputation_,
        IRandomnessSource source_,
        address stakeToken_,
        address treasury_,
        Params calldata params_,
        Timing calldata timing_
    ) external initializer {
        __ProtocolBase_init(admin);
        _requireNonZero(address(registry_));
        _requireNonZero(address(reputation_));
        _requireNonZero(address(source_));
        _requireNonZero(treasury_);
        JuryLogic.Court storage $ = _getStorage();
        ($.registry, $.reputation, $.source, $.stakeToken, $.treasury) = (
            registry_,
            reputation_,
            source_,
            stakeToken_,
            treasury_
        );
        $.phaseSince = uint48(block.timestamp);
        JuryLogic.setParams(_getStorage(), params_);
        JuryLogic.setTiming(_getStorage(), timing_);
    }

    // ------------------------------------------------------------------ staking

    /// @inheritdoc IEvaluatorStaking
    function stake(uint256 agentId, uint256 amount) external payable nonReentrant whenNotPaused {
        if (amount == 0) revert EvaluatorStakingZeroAmount();
        _requireActor(agentId);
        JuryLogic.Court storage $ = _getStorage();
        Evaluator storage e = $.evaluators[agentId];
        uint256 total = uint256(e.staked) + e.pending + e.unstaking + amount;
        if (total > MAX_STAKE) revert EvaluatorStakingStakeTooLarge(agentId, total, MAX_STAKE);
        bool queued = $.phase != Phase.Staking;
        e.pending += uint96(amount);
        emit Staked(agentId, msg.sender, amount, queued);
        if (!queued) JuryLogic.sync(_getStorage(), agentId);
        _receive($.stakeToken, amount);
    }

    /// @inheritdoc IEvaluatorStaking
    function syncStake(uint256 agentId) external {
        _requirePhase(Phase.Staking);
        JuryLogic.sync(_getStorage(), agentId);
    }

    /// @inheritdoc IEvaluatorStaking
    function requestUnstake(uint256 agentId, uint256 amount) external {
        if (amount == 0) revert EvaluatorStakingZeroAmount();
        _requireActor(agentId);
        _requirePhase(Phase.Staking);
        Evaluator storage e = _getStorage().evaluators[agentId];
        uint256 staked = uint256(e.staked) + e.pending;
        uint256 free = staked - e.locked;
        if (amount > free) revert EvaluatorStakingInsufficientFreeStake(agentId, amount, free);
        (e.staked, e.pending) = (uint96(staked - amount), 0);
        e.unstaking += uint96(amount);
        uint256 at = block.timestamp + _getStorage().timing.unstakeDelay;
        e.unstakeAt = uint48(at);
        emit UnstakeRequested(agentId, amount, e.unstaking, at);
        JuryLogic.sync(_getStorage(), agentId);
    }

    /// @inheritdoc IEvaluatorStaking
    function cancelUnstake(uint256 agentId) external {
        _requireActor(agentId);
        JuryLogic.Court storage $ = _getStorage();
        Evaluator storage e = $.evaluators[agentId];
        uint256 amount = e.unstaking;
        if (amount == 0) revert EvaluatorStakingNoUnstake(agentId);
        (e.unstaking, e.unstakeAt) = (0, 0);
        e.pending += uint96(amount);
        emit UnstakeCancelled(agentId, amount);
        if ($.phase == Phase.Staking) JuryLogic.sync(_getStorage(), agentId);
    }

    /// @inheritdoc IEvaluatorStaking
    function claimUnstake(uint256 agentId) external nonReentrant {
        _requireActor(agentId);
        JuryLogic.Court storage $ = _getStorage();
        Evaluator storage e = $.evaluators[agentId];
        uint256 amount = e.unstaking;
        if (amount == 0) revert EvaluatorStakingNoUnstake(agentId);
        if (block.timestamp < e.unstakeAt) revert EvaluatorStakingUnstakeNotReady(agentId, e.unstakeAt);
        (e.unstaking, e.unstakeAt) = (0, 0);
        address to = $.registry.getAgentWallet(agentId);
        emit UnstakeClaimed(agentId, to, amount);
        _send($.stakeToken, to, amount);
    }

    /// @inheritdoc IEvaluatorStaking
    function claimRewards(uint256 agentId, address asset) external nonReentrant {
        JuryLogic.Court storage $ = _getStorage();
        address to = $.treasury;
        if (agentId != 0) {
            _requireActor(agentId);
            to = $.registry.getAgentWallet(agentId);
        }
        uint256 amount = $.rewards[agentId][asset];
        if (amount == 0) revert EvaluatorStakingNothingToClaim(agentId, asset);
        delete $.rewards[agentId][asset];
        emit RewardsClaimed(agentId, asset, to, amount);
        _send(asset, to, amount);
    }

    // ------------------------------------------------------------------ arbitrator (ERC-792)

    /// @notice Opens a case for the caller's dispute. `extraData` is
    ///         `abi.encode(externalId, clientId, providerId, token, fee)`; the fee was transferred
    ///         beforehand (the case keeps what actually arrived). Arbitrable role only.
    /// @return disputeId The case id, which the final {IArbitrable.rule} call carries.
    function createDispute(
        uint256 choices,
        bytes calldata extraData
    ) external nonReentrant onlyRole(ARBITRABLE_ROLE) returns (uint256 disputeId) {
        if (choices != CHOICES) revert EvaluatorStakingBadChoices(choices);
        (, uint256 clientId, uint256 providerId, address token, uint256 fee) = abi.decode(
            extraData,
            (uint256, uint256, uint256, address, uint256)
        );
        JuryLogic.Court storage $ = _getStorage();
        // Keep what arrived: a token that failed the transfer must not block the dispute.
        uint256 arrived = IERC20(token).balanceOf(address(this)) - $.held[token];
        if (arrived < fee) fee = arrived;
        $.held[token] += fee;
        disputeId = ++$.caseCount;
        JuryLogic.Case storage c = $.cases[disputeId];
        c.arbitrable = msg.sender;
        c.token = token;
        c.fee = uint96(fee);
        (c.clientId, c.providerId) = (uint64(clientId), uint64(providerId));
        (c.clientOwner, c.providerOwner) = ($.registry.ownerOfAgent(clientId), $.registry.ownerOfAgent(providerId));
        c.params = $.params;
        JuryLogic.Round storage r = $.rounds[disputeId][0];
        (r.fee, r.size) = (uint96(fee), c.params.jurySize);
        emit DisputeCreation(disputeId, msg.sender);
        emit CaseCreated(disputeId, msg.sender, token, fee, clientId, providerId);
        _waitForDraw(disputeId, c);
    }

    /// @notice The fee the court expects: the one TaskEscrow computed and put in `extraData`.
    function arbitrationCost(bytes calldata extraData) external pure returns (uint256 cost) {
        (, , , , cost) = abi.decode(extraData, (uint256, uint256, uint256, address, uint256));
    }

    // ------------------------------------------------------------------ draw epochs

    /// @inheritdoc IEvaluatorStaking
    function requestRandomness() external nonReentrant returns (uint256 requestId) {
        JuryLogic.Court storage $ = _getStorage();
        _requirePhase(Phase.Staking);
        uint256 ready = uint256($.phaseSince) + $.timing.minStakingTime;
        if (block.timestamp < ready) revert EvaluatorStakingTooEarly(ready);
        uint256 waiting = $.pendingCases;
        if (waiting == 0) revert EvaluatorStakingNoCaseWaiting();
        if ($.tree.total() == 0) revert EvaluatorStakingEmptyPool();
        ($.casesThisEpoch, $.pendingCases) = (uint64(waiting), 0);
        uint256 epoch = ++$.epoch;
        $.drawTime = uint48(block.timestamp);
        _setPhase(Phase.Generating);
        requestId = $.source.requestRandomness();
        $.requestId = requestId;
        emit RandomnessRequested(epoch, requestId, waiting);
    }

    /// @notice The randomness source's answer. Never reverts for the source: an answer other than
    ///         the pending request's is ignored (and so is any answer after the fallback started).
    function receiveRandomness(uint256 requestId, uint256 randomWord) external {
        JuryLogic.Court storage $ = _getStorage();
        if (msg.sender != address($.source)) revert EvaluatorStakingNotRandomnessSource(msg.sender);
        if ($.phase != Phase.Generating || requestId != $.requestId || requestId == 0) {
            emit RandomnessIgnored(requestId);
            return;
        }
        _startDrawing(requestId, randomWord);
    }

    /// @inheritdoc IEvaluatorStaking
    function fallbackRandomness() external {
        JuryLogic.Court storage $ = _getStorage();
        _requirePhase(Phase.Generating);
        uint256 ready = uint256($.phaseSince) + $.timing.randomnessTimeout;
        if (block.timestamp < ready) revert EvaluatorStakingTooEarly(ready);
        uint256 target = $.fallbackBlock;
        if (target != 0 && block.number > target && block.number - target <= 256) {
            _startDrawing(0, uint256(keccak256(abi.encode(blockhash(target), $.epoch))));
            return;
        }
        if (target != 0 && block.number <= target) revert EvaluatorStakingTooEarly(target + 1);
        target = block.number + FALLBACK_BLOCKS;
        ($.fallbackBlock, $.requestId) = (uint64(target), 0);
        emit FallbackScheduled($.epoch, target);
    }

    /// @inheritdoc IEvaluatorStaking
    function draw(uint256 caseId, uint256 iterations) external nonReentrant returns (uint256 seated) {
        JuryLogic.Court storage $ = _getStorage();
        _requirePhase(Phase.Drawing);
        JuryLogic.Case storage c = _caseIn(caseId, CaseStatus.Drawing);
        if (c.markEpoch >= $.epoch) revert EvaluatorStakingNotDrawable(caseId, c.markEpoch, $.epoch);
        uint256 size;
        (seated, size) = JuryLogic.drawSeats($, caseId, c.round, iterations);
        if (seated == size) {
            --$.casesThisEpoch;
            // Timed out with nobody seated: redrawn, as a round nobody committed in.
            if (seated == 0) _abandon(caseId, c, $.rounds[caseId][c.round]);
            else _setStatus(caseId, c, CaseStatus.Commit, block.timestamp + c.params.commitPeriod);
        }
    }

    /// @inheritdoc IEvaluatorStaking
    function passPhase() external {
        JuryLogic.Court storage $ = _getStorage();
        _requirePhase(Phase.Drawing);
        uint256 left = $.casesThisEpoch;
        uint256 ready = uint256($.phaseSince) + $.timing.maxDrawingTime;
        if (left != 0 && block.timestamp < ready) revert EvaluatorStakingTooEarly(ready);
        ($.pendingCases, $.casesThisEpoch) = ($.pendingCases + uint64(left), 0);
        _setPhase(Phase.Staking);
    }

    // ------------------------------------------------------------------ voting

    /// @inheritdoc IEvaluatorStaking
    function commit(uint256 caseId, uint256 jurorId, bytes32 commitHash) external {
        if (commitHash == bytes32(0)) revert EvaluatorStakingEmptyCommit();
        JuryLogic.Case storage c = _caseIn(caseId, CaseStatus.Commit);
        _requireBefore(caseId, c);
        _requireActor(jurorId);
        uint256 roundIndex = c.round;
        Vote storage v = _seat(caseId, roundIndex, jurorId);
        if (v.commitHash != bytes32(0)) revert EvaluatorStakingAlreadyCommitted(caseId, jurorId);
        v.commitHash = commitHash;
        JuryLogic.Round storage r = _getStorage().rounds[caseId][roundIndex];
        uint256 committed = ++r.committed;
        emit VoteCommitted(caseId, roundIndex, jurorId, commitHash);
        if (committed == r.size) _setStatus(caseId, c, CaseStatus.Reveal, block.timestamp + c.params.revealPeriod);
    }

    /// @inheritdoc IEvaluatorStaking
    function reveal(uint256 caseId, uint256 jurorId, uint256 choice, bytes32 salt) external {
        JuryLogic.Case storage c = _caseIn(caseId, CaseStatus.Reveal);
        _requireBefore(caseId, c);
        _requireActor(jurorId);
        if (choice >= CHOICES) revert EvaluatorStakingBadChoice(choice);
        uint256 roundIndex = c.round;
        Vote storage v = _seat(caseId, roundIndex, jurorId);
        if (v.commitHash == bytes32(0)) revert EvaluatorStakingNotCommitted(caseId, jurorId);
        if (v.revealed) revert EvaluatorStakingAlreadyRevealed(caseId, jurorId);
        if (v.commitHash != commitmentOf(caseId, roundIndex, jurorId, choice, salt)) {
            revert EvaluatorStakingRevealMismatch(caseId, jurorId);
        }
        (v.revealed, v.choice) = (true, uint8(choice));
        JuryLogic.Round storage r = _getStorage().rounds[caseId][roundIndex];
        r.counts += uint40(1 << (8 * choice));
        r.stakeByChoice[choice] += v.stake;
        uint256 revealed = ++r.revealed;
        emit VoteRevealed(caseId, roundIndex, jurorId, choice);
        if (revealed == r.committed) _rule(caseId, c, r);
    }

    /// @inheritdoc IEvaluatorStaking
    function advance(uint256 caseId) external nonReentrant {
        JuryLogic.Case storage c = _case(caseId);
        CaseStatus status = c.status;
        if (status == CaseStatus.Drawing || status == CaseStatus.Ruled || block.timestamp <= c.deadline) {
            revert EvaluatorStakingDeadlineNotPassed(caseId, c.deadline);
        }
        JuryLogic.Round storage r = _getStorage().rounds[caseId][c.round];
        if (status == CaseStatus.Commit) {
            if (r.committed == 0) _abandon(caseId, c, r);
            else _setStatus(caseId, c, CaseStatus.Reveal, block.timestamp + c.params.revealPeriod);
        } else if (status == CaseStatus.Reveal) {
            if (r.revealed == 0) _abandon(caseId, c, r);
            else _rule(caseId, c, r);
        } else {
            _setStatus(caseId, c, CaseStatus.Ruled, 0);
            uint256 choice = r.ruling;
            emit FinalRuling(caseId, c.arbitrable, choice);
            IArbitrable(c.arbitrable).rule(caseId, choice + 1);
        }
    }

    /// @inheritdoc IEvaluatorStaking
    function appeal(uint256 caseId, uint256 partyId) external nonReentrant {
        JuryLogic.Case storage c = _caseIn(caseId, CaseStatus.Appeal);
        if (c.appeals + 1 >= c.params.maxRounds) revert EvaluatorStakingMaxRounds(caseId, c.params.maxRounds);
        _requireBefore(caseId, c);
        if (partyId == 0 || (partyId != c.clientId && partyId != c.providerId)) {
            revert EvaluatorStakingNotParty(caseId, partyId);
        }
        _requireActor(partyId);
        JuryLogic.Court storage $ = _getStorage();
        uint256 size = uint256($.rounds[caseId][c.round].size) * 2 + 1;
        uint256 fee = _appealCost(c, size);
        uint256 roundIndex = ++c.round;
        ++c.appeals;
        JuryLogic.Round storage r = $.rounds[caseId][roundIndex];
        (r.fee, r.size) = (uint96(fee), uint8(size));
        $.held[c.token] += fee;
        emit Appealed(caseId, roundIndex, partyId, msg.sender, fee, size);
        _waitForDraw(caseId, c);
        if (fee != 0) _pull(c.token, fee);
    }

    /// @inheritdoc IEvaluatorStaking
    function execute(uint256 caseId, uint256 roundIndex, uint256 iterations) external nonReentrant {
        _requirePhase(Phase.Staking);
        JuryLogic.settle(_getStorage(), caseId, roundIndex, iterations);
    }

    // ------------------------------------------------------------------ admin

    /// @inheritdoc IEvaluatorStaking
    function setParams(Params calldata params_) external onlyRole(PARAMETER_ROLE) {
        JuryLogic.setParams(_getStorage(), params_);
    }

    /// @inheritdoc IEvaluatorStaking
    function setTiming(Timing calldata timing_) external onlyRole(PARAMETER_ROLE) {
        JuryLogic.setTiming(_getStorage(), timing_);
    }

    /// @inheritdoc IEvaluatorStaking
    function setRandomnessSource(address source_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireNonZero(source_);
        _requirePhase(Phase.Staking);
        _getStorage().source = IRandomnessSource(source_);
        emit RandomnessSourceSet(source_);
    }

    /// @inheritdoc IEvaluatorStaking
    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireNonZero(treasury_);
        _getStorage().treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IEvaluatorStaking
    function appealCost(uint256 caseId) external view returns (uint256) {
        JuryLogic.Case storage c = _case(caseId);
        return _appealCost(c, uint256(_getStorage().rounds[caseId][c.round].size) * 2 + 1);
    }

    /// @inheritdoc IEvaluatorStaking
    function getCase(uint256 caseId) external view returns (CaseView memory) {
        _case(caseId);
        return JuryLogic.caseView(_getStorage(), caseId);
    }

    /// @inheritdoc IEvaluatorStaking
    function getRound(uint256 caseId, uint256 roundIndex) external view returns (RoundView memory) {
        return JuryLogic.roundView(_getStorage(), caseId, roundIndex);
    }

    /// @inheritdoc IEvaluatorStaking
    function getVote(uint256 caseId, uint256 roundIndex, uint256 agentId) external view returns (Vote memory) {
        return _getStorage().votes[caseId][roundIndex][agentId];
    }

    /// @inheritdoc IEvaluatorStaking
    function getEvaluator(uint256 agentId) external view returns (Evaluator memory) {
        return _getStorage().evaluators[agentId];
    }

    /// @inheritdoc IEvaluatorStaking
    function weightOf(uint256 agentId) external view returns (uint256) {
        JuryLogic.Court storage $ = _getStorage();
        uint256 leaf = $.evaluators[agentId].leaf;
        return leaf == 0 ? 0 : $.tree.weightOf(leaf - 1);
    }

    /// @inheritdoc IEvaluatorStaking
    function totalWeight() external view returns (uint256) {
        return _getStorage().tree.total();
    }

    /// @inheritdoc IEvaluatorStaking
    function rewardsOf(uint256 agentId, address asset) external view returns (uint256) {
        return _getStorage().rewards[agentId][asset];
    }

    /// @inheritdoc IEvaluatorStaking
    function held(address asset) external view returns (uint256) {
        return _getStorage().held[asset];
    }

    /// @inheritdoc IEvaluatorStaking
    function drawState() external view returns (Phase, uint256, uint256, uint256, uint256, uint256, uint256) {
        JuryLogic.Court storage $ = _getStorage();
        return ($.phase, $.epoch, $.phaseSince, $.requestId, $.pendingCases, $.casesThisEpoch, $.fallbackBlock);
    }

    /// @inheritdoc IEvaluatorStaking
    function params() external view returns (Params memory) {
        return _getStorage().params;
    }

    /// @inheritdoc IEvaluatorStaking
    function timing() external view returns (Timing memory) {
        return _getStorage().timing;
    }

    /// @inheritdoc IEvaluatorStaking
    function stakeToken() external view returns (address) {
        return _getStorage().stakeToken;
    }

    /// @notice The registry, Reputation, randomness source and treasury.
    function contracts() external view returns (address, address, address, address) {
        JuryLogic.Court storage $ = _getStorage();
        return (address($.registry), address($.reputation), address($.source), $.treasury);
    }

    /// @inheritdoc IEvaluatorStaking
    function commitmentOf(
        uint256 caseId,
        uint256 roundIndex,
        uint256 jurorId,
        uint256 choice,
        bytes32 salt
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(caseId, roundIndex, jurorId, choice, salt));
    }

    // ------------------------------------------------------------------ internal: cases

    /// @dev Marks the case's current round as waiting for the next epoch's word. The deadline of
    ///      the Drawing status is the draw timeout: after it, a draw may seat the round short.
    function _waitForDraw(uint256 caseId, JuryLogic.Case storage c) private {
        JuryLogic.Court storage $ = _getStorage();
        c.markEpoch = $.epoch;
        ++$.pendingCases;
        _setStatus(caseId, c, CaseStatus.Drawing, block.timestamp + JuryLogic.DRAW_TIMEOUT);
    }

    /// @dev Lower median of the revealed choices; the appeal period starts (none if no round is left).
    function _rule(uint256 caseId, JuryLogic.Case storage c, JuryLogic.Round storage r) private {
        uint256 target = (uint256(r.revealed) - 1) / 2;
        uint256 counts = r.counts;
        uint256 choice;
        uint256 seen;
        for (; choice < CHOICES - 1; ++choice) {
            seen += uint8(counts >> (8 * choice));
            if (seen > target) break;
        }
        (r.ruling, r.ruled) = (uint8(choice), true);
        emit RoundRuled(caseId, c.round, choice, r.revealed);
        uint256 window = c.appeals + 1 < c.params.maxRounds ? c.params.appealPeriod : 0;
        _setStatus(caseId, c, CaseStatus.Appeal, block.timestamp + window);
    }

    /// @dev Nobody revealed (or nobody was seated by the draw timeout): the round's fee moves to a
    ///      redraw of the same size.
    function _abandon(uint256 caseId, JuryLogic.Case storage c, JuryLogic.Round storage r) private {
        r.abandoned = true;
        uint256 old = c.round;
        emit RoundAbandoned(caseId, old);
        JuryLogic.Round storage next = _getStorage().rounds[caseId][++c.round];
        (next.fee, next.size, r.fee) = (r.fee, r.size, 0);
        _waitForDraw(caseId, c);
    }

    function _appealCost(JuryLogic.Case storage c, uint256 size) private view returns (uint256) {
        return (uint256(c.fee) * size * c.params.appealFeeBps) / (uint256(c.params.jurySize) * BPS);
    }

    function _setStatus(uint256 caseId, JuryLogic.Case storage c, CaseStatus to, uint256 deadline) private {
        emit CaseStatusChanged(caseId, c.round, c.status, to, deadline);
        (c.status, c.deadline) = (to, uint48(deadline));
    }

    // ------------------------------------------------------------------ internal: jurors

    function _seat(uint256 caseId, uint256 roundIndex, uint256 jurorId) private view returns (Vote storage v) {
        v = _getStorage().votes[caseId][roundIndex][jurorId];
        if (v.stake == 0) revert EvaluatorStakingNotJuror(caseId, roundIndex, jurorId);
    }

    // ------------------------------------------------------------------ internal: pool

    function _startDrawing(uint256 requestId, uint256 word) private {
        JuryLogic.Court storage $ = _getStorage();
        ($.word, $.requestId, $.fallbackBlock) = (word, 0, 0);
        emit RandomnessReceived($.epoch, requestId, word);
        _setPhase(Phase.Drawing);
    }

    function _setPhase(Phase to) private {
        JuryLogic.Court storage $ = _getStorage();
        emit PhaseChanged($.phase, to, $.epoch);
        ($.phase, $.phaseSince) = (to, uint48(block.timestamp));
    }

    // ------------------------------------------------------------------ internal: money

    /// @dev Takes `amount` of `asset` from the caller: the native coin in `msg.value`, or a token
    ///      pulled and balance-checked. Books it as held.
    function _receive(address asset, uint256 amount) private {
        if (asset == address(0)) {
            if (msg.value != amount) revert EvaluatorStakingBadValue(amount, msg.value);
            _getStorage().held[address(0)] += amount;
            return;
        }
        if (msg.value != 0) revert EvaluatorStakingBadValue(amount, msg.value);
        _getStorage().held[asset] += amount;
        _pull(asset, amount);
    }

    function _pull(address token, uint256 amount) private {
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = IERC20(token).balanceOf(address(this)) - before;
        if (received != amount) revert EvaluatorStakingTransferMismatch(token, amount, received);
    }

    /// @dev Pays out `amount` of `asset` (address(0): the native coin) and unbooks it.
    function _send(address asset, address to, uint256 amount) private {
        _getStorage().held[asset] -= amount;
        if (asset == address(0)) {
            (bool ok, ) = payable(to).call{value: amount}("");
            if (!ok) revert EvaluatorStakingTransferFailed(to, amount);
        } else {
            IERC20(asset).safeTransfer(to, amount);
        }
    }

    // ------------------------------------------------------------------ internal: checks

    function _case(uint256 caseId) private view returns (JuryLogic.Case storage c) {
        c = _getStorage().cases[caseId];
        if (c.status == CaseStatus.None) revert EvaluatorStakingUnknownCase(caseId);
    }

    function _caseIn(uint256 caseId, CaseStatus status) private view returns (JuryLogic.Case storage c) {
        c = _case(caseId);
        if (c.status != status) revert EvaluatorStakingWrongStatus(caseId, c.status);
    }

    function _requireBefore(uint256 caseId, JuryLogic.Case storage c) private view {
        if (block.timestamp > c.deadline) revert EvaluatorStakingDeadlinePassed(caseId, c.deadline);
    }

    function _requirePhase(Phase phase) private view {
        Phase current = _getStorage().phase;
        if (current != phase) revert EvaluatorStakingWrongPhase(current);
    }

    function _requireActor(uint256 agentId) private view {
        if (!_getStorage().registry.canAct(agentId, msg.sender)) {
            revert EvaluatorStakingNotAuthorized(agentId, msg.sender);
        }
    }

    function _getStorage() private pure returns (JuryLogic.Court storage $) {
        assembly {
            $.slot := STORAGE_LOCATION
        }
    }
}
