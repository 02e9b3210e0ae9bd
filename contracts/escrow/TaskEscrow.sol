// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {ProtocolBase} from "../utils/ProtocolBase.sol";
import {ITaskEscrow} from "../interfaces/ITaskEscrow.sol";
import {IArbitrator, IArbitrable} from "../interfaces/IArbitration.sol";
import {IAgentRegistry} from "../interfaces/IAgentRegistry.sol";
import {IReputation} from "../interfaces/IReputation.sol";

/// @title TaskEscrow
/// @notice The task hall: posting, three assignment modes, negotiation, escrow, timeouts and
///         disputes. See {ITaskEscrow} for the rules.
/// @dev Money rules. The escrow's balance of a token is always the sum of `amount` over live tasks
///      in that token, the dispute deposits it holds, the credits and the unswept fees (checked
///      after every step of the model-based test). Splits round in the client's favour: the
///      provider's share is `price * shareBps / 10_000` rounded down, the fee is taken from that
///      share (rounded down), and the client receives exactly the remainder, so no wei is lost.
///      Pausing stops posting, agreements, proposals, bids, selections, claims and acceptances;
///      every exit (close, cancel, decline, delivery, review, refunds, timeouts, disputes,
///      rulings, withdrawals, fee sweeps) keeps working.
contract TaskEscrow is ITaskEscrow, ProtocolBase {
    using SafeERC20 for IERC20;

    // ------------------------------------------------------------------ storage

    /// @custom:storage-location erc7201:agentmarket.storage.TaskEscrow
    struct TaskEscrowStorage {
        IAgentRegistry registry;
        uint16 protocolFeeBps;
        uint16 arbitrationFeeBps;
        uint64 taskCount;
        IReputation reputation;
        address treasury;
        address arbitrator;
        mapping(uint256 taskId => Task) tasks;
        mapping(uint256 taskId => mapping(uint256 providerId => Bid)) bids;
        mapping(uint256 taskId => Counter) counters;
        mapping(uint256 taskId => DisputeInfo) disputes;
        mapping(address arbitrator => mapping(uint256 disputeId => uint256 taskId)) disputeTask;
        mapping(address token => mapping(address account => uint256)) credits;
        mapping(address token => uint256) fees;
        mapping(address token => uint256) minBudget;
        mapping(uint256 providerId => mapping(uint256 word => uint256 bits)) nonces;
    }

    // keccak256(abi.encode(uint256(keccak256("agentmarket.storage.TaskEscrow")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant STORAGE_LOCATION = 0x3773656cb3ba96d317fcb0dcaec56c561f14eaf2a17a9caec35fbec2f94a3c00;

    /// @notice Implementation version.
    string public constant VERSION = "1.0.0";
    /// @notice Hard cap of the protocol fee (10%).
    uint16 public constant MAX_PROTOCOL_FEE_BPS = 1_000;
    /// @notice Hard cap of the arbitration fee (10% of the price per deposit).
    uint16 public constant MAX_ARBITRATION_FEE_BPS = 1_000;
    /// @notice Shortest delivery duration, review period and ETA.
    uint32 public constant MIN_PERIOD = 1 hours;
    /// @notice Longest delivery duration, review period, ETA and acceptance horizon.
    uint32 public constant MAX_PERIOD = 365 days;
    /// @notice On-chain proposals allowed per task (client offers and provider counters together).
    uint8 public constant MAX_PROPOSALS = 8;
    /// @notice After this long in arbitration without a ruling, anyone may settle the task as a
    ///         refused ruling (even split): the escrow never waits forever on an arbitrator.
    uint32 public constant ARBITRATION_TIMEOUT = 180 days;
    /// @notice ERC-792 options: ruling r in 1..5 pays the provider (r - 1) x 25%; 0 (refused) pays 50%.
    uint256 public constant RULING_OPTIONS = 5;
    /// @notice EIP-712 type of a signed agreement.
    bytes32 public constant AGREEMENT_TYPEHASH = keccak256(
        "Agreement(uint256 clientId,uint256 providerId,address token,uint256 price,uint32 deliveryDuration,"
        "uint32 reviewPeriod,uint256 parentTaskId,bytes32 specHash,uint256 nonce,uint256 expiry)"
    );

    // keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    bytes32 private constant DOMAIN_TYPEHASH = 0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f;
    bytes32 private constant NAME_HASH = keccak256("TaskEscrow");
    bytes32 private constant VERSION_HASH = keccak256("1");
    uint256 private constant BPS = 10_000;
    uint256 private constant MAX_URI_BYTES = 512;

    // ------------------------------------------------------------------ initializer

    /// @notice Initialises the proxy. `admin` receives every administrative role. The arbitrator
    ///         is set with {setArbitrator}; until then disputes cannot be raised.
    function initialize(
        address admin,
        address registry_,
        address reputation_,
        address treasury_,
        uint16 protocolFeeBps_,
        uint16 arbitrationFeeBps_
    ) external initializer {
        __ProtocolBase_init(admin);
        _requireNonZero(registry_);
        _requireNonZero(reputation_);
        TaskEscrowStorage storage $ = _getStorage();
        $.registry = IAgentRegistry(registry_);
        $.reputation = IReputation(reputation_);
        _setTreasury(treasury_);
        _setFees(protocolFeeBps_, arbitrationFeeBps_);
    }

    // ------------------------------------------------------------------ admin

    /// @inheritdoc ITaskEscrow
    function setToken(address token, uint256 minBudget_) external onlyRole(PARAMETER_ROLE) {
        _requireNonZero(token);
        _getStorage().minBudget[token] = minBudget_;
        emit TokenSet(token, minBudget_);
    }

    /// @inheritdoc ITaskEscrow
    function setFees(uint16 protocolFeeBps_, uint16 arbitrationFeeBps_) external onlyRole(PARAMETER_ROLE) {
        _setFees(protocolFeeBps_, arbitrationFeeBps_);
    }

    /// @inheritdoc ITaskEscrow
    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTreasury(treasury_);
    }

    /// @inheritdoc ITaskEscrow
    function setArbitrator(address arbitrator_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireNonZero(arbitrator_);
        _getStorage().arbitrator = arbitrator_;
        emit ArbitratorSet(arbitrator_);
    }

    // ------------------------------------------------------------------ posting

    /// @inheritdoc ITaskEscrow
    function postTask(TaskParams calldata params) external whenNotPaused nonReentrant returns (uint256 taskId) {
        (taskId, ) = _post(params);
        _pull(params.token, params.maxBudget);
    }

    /// @inheritdoc ITaskEscrow
    function hireWithAgreement(
        Agreement calldata a,
        bytes32 capability,
        string calldata specURI,
        address signer,
        bytes calldata signature
    ) external whenNotPaused nonReentrant returns (uint256 taskId) {
        if (block.timestamp > a.expiry) revert TaskEscrowAgreementExpired(a.expiry);
        _useNonce(a.providerId, a.nonce);
        if (
            !_getStorage().registry.canAct(a.providerId, signer) ||
            !SignatureChecker.isValidSignatureNow(signer, agreementDigest(a), signature)
        ) revert TaskEscrowBadSignature(signer);
        Task storage t;
        (taskId, t) = _post(
            TaskParams({
                clientId: a.clientId,
                providerId: a.providerId,
                mode: Mode.Direct,
                token: a.token,
                budget: a.price,
                maxBudget: a.price,
                acceptDeadline: uint40(block.timestamp),
                deliveryDuration: a.deliveryDuration,
                reviewPeriod: a.reviewPeriod,
                minScoreBps: 0,
                parentTaskId: a.parentTaskId,
                capability: capability,
                specHash: a.specHash,
                specURI: specURI
            })
        );
        _assign(taskId, t, a.providerId, a.price, a.deliveryDuration);
        _pull(a.token, a.price);
    }

    /// @inheritdoc ITaskEscrow
    function cancelAgreementNonce(uint256 providerId, uint256 nonce) external nonReentrant {
        _requireActor(providerId);
        _useNonce(providerId, nonce);
        emit AgreementNonceCancelled(providerId, nonce);
    }

    // ------------------------------------------------------------------ assignment

    /// @inheritdoc ITaskEscrow
    function acceptTask(uint256 taskId, uint256 price, uint32 deliveryDuration) external whenNotPaused nonReentrant {
        Task storage t = _openTask(taskId, Mode.Direct);
        uint256 providerId = t.providerId;
        _requireActor(providerId);
        if (price != _offer(t) || deliveryDuration != t.deliveryDuration) revert TaskEscrowTermsChanged(taskId);
        _checkEligible(t.clientId, providerId, false, t.minScoreBps);
        _assign(taskId, t, providerId, price, deliveryDuration);
    }

    /// @inheritdoc ITaskEscrow
    function declineTask(uint256 taskId) external nonReentrant {
        Task storage t = _taskIn(taskId, Status.Open);
        if (t.mode != Mode.Direct) revert TaskEscrowBadTask();
        _requireActor(t.providerId);
        _closeOpen(taskId, t, Status.Closed);
    }

    /// @inheritdoc ITaskEscrow
    function proposeTerms(uint256 taskId, uint256 price, uint32 deliveryDuration) external whenNotPaused nonReentrant {
        Task storage t = _openTask(taskId, Mode.Direct);
        _requireActor(t.clientId);
        _propose(taskId, t, price, deliveryDuration);
        t.offer = price == t.amount ? 0 : uint96(price);
        t.deliveryDuration = deliveryDuration;
        emit TermsProposed(taskId, false, price, deliveryDuration);
    }

    /// @inheritdoc ITaskEscrow
    function counterPropose(
        uint256 taskId,
        uint256 price,
        uint32 deliveryDuration
    ) external whenNotPaused nonReentrant {
        Task storage t = _openTask(taskId, Mode.Direct);
        _requireActor(t.providerId);
        _propose(taskId, t, price, deliveryDuration);
        _getStorage().counters[taskId] = Counter(uint96(price), deliveryDuration);
        emit TermsProposed(taskId, true, price, deliveryDuration);
    }

    /// @inheritdoc ITaskEscrow
    function acceptCounter(uint256 taskId, uint256 price, uint32 deliveryDuration) external whenNotPaused nonReentrant {
        Task storage t = _openTask(taskId, Mode.Direct);
        _requireActor(t.clientId);
        uint256 providerId = t.providerId;
        Counter memory c = _getStorage().counters[taskId];
        if (c.price == 0) revert TaskEscrowNoBid(taskId, providerId);
        if (c.price != price || c.deliveryDuration != deliveryDuration) revert TaskEscrowTermsChanged(taskId);
        _checkEligible(t.clientId, providerId, false, t.minScoreBps);
        delete _getStorage().counters[taskId];
        _assign(taskId, t, providerId, price, deliveryDuration);
    }

    /// @inheritdoc ITaskEscrow
    function placeBid(
        uint256 taskId,
        uint256 providerId,
        uint256 price,
        uint32 eta,
        bytes32 proposalHash
    ) external whenNotPaused nonReentrant {
        Task storage t = _openTask(taskId, Mode.Bidding);
        _requireActor(providerId);
        _checkPrice(t, price);
        _checkPeriod(eta);
        _checkEligible(t.clientId, providerId, true, t.minScoreBps);
        _getStorage().bids[taskId][providerId] = Bid(uint96(price), eta, bytes16(proposalHash));
        emit BidPlaced(taskId, providerId, price, eta, proposalHash);
    }

    /// @inheritdoc ITaskEscrow
    function withdrawBid(uint256 taskId, uint256 providerId) external nonReentrant {
        _requireActor(providerId);
        TaskEscrowStorage storage $ = _getStorage();
        if ($.bids[taskId][providerId].price == 0) revert TaskEscrowNoBid(taskId, providerId);
        delete $.bids[taskId][providerId];
        emit BidWithdrawn(taskId, providerId);
    }

    /// @inheritdoc ITaskEscrow
    function selectBid(
        uint256 taskId,
        uint256 providerId,
        uint256 price,
        uint32 eta,
        bytes32 proposalHash
    ) external whenNotPaused nonReentrant {
        Task storage t = _openTask(taskId, Mode.Bidding);
        _requireActor(t.clientId);
        TaskEscrowStorage storage $ = _getStorage();
        Bid memory b = $.bids[taskId][providerId];
        if (b.price == 0) revert TaskEscrowNoBid(taskId, providerId);
        if (b.price != price || b.eta != eta || b.proposal != bytes16(proposalHash)) {
            revert TaskEscrowTermsChanged(taskId);
        }
        _checkEligible(t.clientId, providerId, true, t.minScoreBps);
        delete $.bids[taskId][providerId];
        _assign(taskId, t, providerId, price, eta);
    }

    /// @inheritdoc ITaskEscrow
    function claimTask(uint256 taskId, uint256 providerId, uint256 serviceId) external whenNotPaused nonReentrant {
        Task storage t = _openTask(taskId, Mode.AutoMatch);
        _requireActor(providerId);
        IAgentRegistry.Service memory s = _getStorage().registry.getService(serviceId);
        if (s.agentId != providerId || !s.active || s.capability != t.capability) {
            revert TaskEscrowServiceMismatch(serviceId);
        }
        _checkEligible(t.clientId, providerId, true, t.minScoreBps);
        _assign(taskId, t, providerId, _offer(t), t.deliveryDuration);
    }

    // ------------------------------------------------------------------ delivery

    /// @inheritdoc ITaskEscrow
    function submitWork(uint256 taskId, bytes32 deliverableHash, string calldata deliverableURI) external nonReentrant {
        Task storage t = _task(taskId);
        Status s = t.status;
        if (s != Status.Accepted && s != Status.CancelRequested) revert TaskEscrowWrongStatus(taskId, s);
        _requireActor(t.providerId);
        _requireBeforeDeadline(taskId, t);
        _checkURI(bytes(deliverableURI));
        _move(taskId, t, Status.Submitted, t.reviewPeriod);
        emit WorkSubmitted(taskId, deliverableHash, deliverableURI);
    }

    /// @inheritdoc ITaskEscrow
    function approve(uint256 taskId) external nonReentrant {
        Task storage t = _taskIn(taskId, Status.Submitted);
        _requireActor(t.clientId);
        _settle(taskId, t, Status.Completed, BPS, IReputation.TaskOutcome.Completed, 0, 0);
    }

    /// @inheritdoc ITaskEscrow
    function reject(uint256 taskId, bytes32 reasonHash) external nonReentrant {
        Task storage t = _taskIn(taskId, Status.Submitted);
        _requireActor(t.clientId);
        _requireBeforeDeadline(taskId, t);
        _move(taskId, t, Status.Rejected, t.reviewPeriod);
        emit WorkRejected(taskId, reasonHash);
    }

    /// @inheritdoc ITaskEscrow
    function agreeRefund(uint256 taskId) external nonReentrant {
        Task storage t = _task(taskId);
        Status s = t.status;
        if (s != Status.Rejected && s != Status.CancelRequested) revert TaskEscrowWrongStatus(taskId, s);
        _requireActor(t.providerId);
        _settle(taskId, t, Status.Refunded, 0, IReputation.TaskOutcome.Refunded, 0, 0);
    }

    /// @inheritdoc ITaskEscrow
    function closeTask(uint256 taskId) external nonReentrant {
        Task storage t = _task(taskId);
        Status s = t.status;
        if (s != Status.Open && s != Status.Accepted) revert TaskEscrowWrongStatus(taskId, s);
        _requireActor(t.clientId);
        if (s == Status.Open) return _closeOpen(taskId, t, Status.Closed);
        // The provider answers within one response window, but never gets more time than it had.
        uint256 remaining = t.deadline > block.timestamp ? t.deadline - block.timestamp : 0;
        _move(taskId, t, Status.CancelRequested, remaining < t.reviewPeriod ? remaining : t.reviewPeriod);
    }

    /// @inheritdoc ITaskEscrow
    function timeout(uint256 taskId) external nonReentrant {
        Task storage t = _task(taskId);
        Status s = t.status;
        if (s >= Status.Completed) revert TaskEscrowWrongStatus(taskId, s);
        if (block.timestamp <= t.deadline) revert TaskEscrowDeadlineNotPassed(taskId, t.deadline);
        if (s == Status.Open) _closeOpen(taskId, t, Status.Expired);
        else if (s == Status.Submitted)
            _settle(taskId, t, Status.Completed, BPS, IReputation.TaskOutcome.AutoCompleted, 0, 0);
        else if (s == Status.Disputed) _resolve(taskId, t, BPS);
        else if (s == Status.Arbitration) _resolve(taskId, t, BPS / 2);
        else _settle(taskId, t, Status.Refunded, 0, IReputation.TaskOutcome.Refunded, 0, 0);
    }

    // ------------------------------------------------------------------ disputes

    /// @inheritdoc ITaskEscrow
    function raiseDispute(uint256 taskId) external nonReentrant {
        Task storage t = _task(taskId);
        Status s = t.status;
        if (s != Status.Rejected && s != Status.CancelRequested) revert TaskEscrowWrongStatus(taskId, s);
        _requireActor(t.providerId);
        _requireBeforeDeadline(taskId, t);
        TaskEscrowStorage storage $ = _getStorage();
        address arbitrator = $.arbitrator;
        if (arbitrator == address(0)) revert TaskEscrowNoArbitrator();
        uint256 deposit = (uint256(t.amount) * t.arbitrationFeeBps) / BPS;
        $.disputes[taskId] = DisputeInfo(arbitrator, uint96(deposit), 0);
        _move(taskId, t, Status.Disputed, t.reviewPeriod);
        emit DisputeRaised(taskId, arbitrator, deposit);
        _pull(t.token, deposit);
    }

    /// @inheritdoc ITaskEscrow
    function payDisputeDeposit(uint256 taskId) external nonReentrant {
        Task storage t = _taskIn(taskId, Status.Disputed);
        _requireActor(t.clientId);
        _requireBeforeDeadline(taskId, t);
        TaskEscrowStorage storage $ = _getStorage();
        DisputeInfo storage d = $.disputes[taskId];
        (address arbitrator, uint256 fee, address token) = (d.arbitrator, d.deposit, t.token);
        _move(taskId, t, Status.Arbitration, ARBITRATION_TIMEOUT);
        _pull(token, fee);
        // A token that refuses the arbitrator must not make the client lose by default: credit it.
        if (fee != 0) _pay(token, arbitrator, fee);
        uint256 disputeId = IArbitrator(arbitrator).createDispute(
            RULING_OPTIONS,
            abi.encode(taskId, uint256(t.clientId), uint256(t.providerId), token, fee)
        );
        if ($.disputeTask[arbitrator][disputeId] != 0) revert TaskEscrowNotArbitrator(arbitrator, disputeId);
        d.disputeId = disputeId;
        $.disputeTask[arbitrator][disputeId] = taskId;
        emit Dispute(arbitrator, disputeId, taskId, taskId);
    }

    /// @inheritdoc ITaskEscrow
    function submitEvidence(uint256 taskId, string calldata evidence) external {
        Task storage t = _task(taskId);
        Status s = t.status;
        if (s != Status.Rejected && s != Status.Disputed && s != Status.Arbitration) {
            revert TaskEscrowWrongStatus(taskId, s);
        }
        TaskEscrowStorage storage $ = _getStorage();
        if (!$.registry.canAct(t.clientId, msg.sender)) _requireActor(t.providerId);
        _checkURI(bytes(evidence));
        address arbitrator = $.disputes[taskId].arbitrator;
        emit Evidence(arbitrator == address(0) ? $.arbitrator : arbitrator, taskId, msg.sender, evidence);
    }

    /// @inheritdoc IArbitrable
    function rule(uint256 disputeId, uint256 ruling) external nonReentrant {
        uint256 taskId = _getStorage().disputeTask[msg.sender][disputeId];
        if (taskId == 0) revert TaskEscrowNotArbitrator(msg.sender, disputeId);
        Task storage t = _taskIn(taskId, Status.Arbitration);
        if (ruling > RULING_OPTIONS) revert TaskEscrowBadRuling(ruling);
        emit Ruling(msg.sender, disputeId, ruling);
        _resolve(taskId, t, ruling == 0 ? BPS / 2 : (ruling - 1) * (BPS / 4));
    }

    // ------------------------------------------------------------------ money

    /// @inheritdoc ITaskEscrow
    function withdraw(address token, address to) external nonReentrant {
        _requireNonZero(to);
        TaskEscrowStorage storage $ = _getStorage();
        uint256 amount = $.credits[token][msg.sender];
        if (amount == 0) revert TaskEscrowNothingToWithdraw(token, msg.sender);
        delete $.credits[token][msg.sender];
        emit CreditWithdrawn(token, msg.sender, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /// @inheritdoc ITaskEscrow
    function sweepFees(address token) external nonReentrant {
        TaskEscrowStorage storage $ = _getStorage();
        uint256 amount = $.fees[token];
        if (amount == 0) revert TaskEscrowNothingToWithdraw(token, $.treasury);
        delete $.fees[token];
        emit FeesSwept(token, $.treasury, amount);
        IERC20(token).safeTransfer($.treasury, amount);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ITaskEscrow
    function getTask(uint256 taskId) external view returns (Task memory) {
        return _getStorage().tasks[taskId];
    }

    /// @inheritdoc ITaskEscrow
    function getBid(uint256 taskId, uint256 providerId) external view returns (Bid memory) {
        return _getStorage().bids[taskId][providerId];
    }

    /// @inheritdoc ITaskEscrow
    function getCounter(uint256 taskId) external view returns (Counter memory) {
        return _getStorage().counters[taskId];
    }

    /// @inheritdoc ITaskEscrow
    function getDispute(uint256 taskId) external view returns (DisputeInfo memory) {
        return _getStorage().disputes[taskId];
    }

    /// @inheritdoc ITaskEscrow
    function creditOf(address token, address account) external view returns (uint256) {
        return _getStorage().credits[token][account];
    }

    /// @inheritdoc ITaskEscrow
    function accruedFees(address token) external view returns (uint256) {
        return _getStorage().fees[token];
    }

    /// @inheritdoc ITaskEscrow
    function minBudget(address token) external view returns (uint256) {
        return _getStorage().minBudget[token];
    }

    /// @inheritdoc ITaskEscrow
    function nonceUsed(uint256 providerId, uint256 nonce) external view returns (bool) {
        return (_getStorage().nonces[providerId][nonce >> 8] >> (nonce & 0xff)) & 1 == 1;
    }

    /// @inheritdoc ITaskEscrow
    function taskCount() external view returns (uint256) {
        return _getStorage().taskCount;
    }

    /// @inheritdoc ITaskEscrow
    function config() external view returns (address, address, address, address, uint16, uint16) {
        TaskEscrowStorage storage $ = _getStorage();
        return (
            address($.registry),
            address($.reputation),
            $.treasury,
            $.arbitrator,
            $.protocolFeeBps,
            $.arbitrationFeeBps
        );
    }

    /// @inheritdoc ITaskEscrow
    function agreementDigest(Agreement calldata a) public view returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(domainSeparator(), keccak256(abi.encode(AGREEMENT_TYPEHASH, a)));
    }

    /// @inheritdoc ITaskEscrow
    function domainSeparator() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    // ------------------------------------------------------------------ internal: posting

    /// @dev Validates and stores a task; the caller pulls the funds last.
    function _post(TaskParams memory p) private returns (uint256 taskId, Task storage t) {
        TaskEscrowStorage storage $ = _getStorage();
        if (
            (p.mode == Mode.Direct) == (p.providerId == 0) ||
            (p.mode == Mode.AutoMatch && p.capability == 0) ||
            p.minScoreBps > BPS ||
            (p.parentTaskId != 0 && $.tasks[p.parentTaskId].providerId != p.clientId)
        ) revert TaskEscrowBadTask();
        uint256 min = $.minBudget[p.token];
        if (min == 0) revert TaskEscrowTokenNotAllowed(p.token);
        if (p.budget < min || p.budget > p.maxBudget) revert TaskEscrowBadAmount(p.budget);
        if (p.maxBudget > type(uint96).max) revert TaskEscrowBadAmount(p.maxBudget);
        if (p.acceptDeadline < block.timestamp || p.acceptDeadline > block.timestamp + MAX_PERIOD) {
            revert TaskEscrowBadTime(p.acceptDeadline);
        }
        _checkPeriod(p.deliveryDuration);
        _checkPeriod(p.reviewPeriod);
        _checkURI(bytes(p.specURI));
        if (p.mode == Mode.Direct) _checkEligible(p.clientId, p.providerId, false, p.minScoreBps);
        $.registry.consumeSpend(p.clientId, msg.sender, p.token, p.maxBudget, p.providerId);

        taskId = ++$.taskCount;
        t = $.tasks[taskId];
        t.token = p.token;
        t.amount = uint96(p.maxBudget);
        // Ids fit: consumeSpend proved the client exists and _checkEligible the provider, and
        // the registry mints ids one by one.
        t.clientId = uint48(p.clientId);
        t.providerId = uint48(p.providerId);
        t.status = Status.Open;
        t.mode = p.mode;
        t.feeBps = $.protocolFeeBps;
        t.arbitrationFeeBps = $.arbitrationFeeBps;
        t.deadline = p.acceptDeadline;
        t.deliveryDuration = p.deliveryDuration;
        t.reviewPeriod = p.reviewPeriod;
        if (p.budget != p.maxBudget || p.parentTaskId != 0 || p.minScoreBps != 0) {
            t.offer = p.budget == p.maxBudget ? 0 : uint96(p.budget);
            t.parentTaskId = uint48(p.parentTaskId);
            t.minScoreBps = p.minScoreBps;
        }
        if (p.mode == Mode.AutoMatch) t.capability = p.capability;
        emit TaskPosted(
            taskId,
            p.clientId,
            p.parentTaskId,
            p.providerId,
            p.mode,
            p.token,
            p.budget,
            p.maxBudget,
            p.capability,
            p.specHash,
            p.specURI
        );
    }

    function _useNonce(uint256 providerId, uint256 nonce) private {
        mapping(uint256 => uint256) storage words = _getStorage().nonces[providerId];
        uint256 bit = 1 << (nonce & 0xff);
        uint256 word = words[nonce >> 8];
        if (word & bit != 0) revert TaskEscrowNonceUsed(providerId, nonce);
        words[nonce >> 8] = word | bit;
    }

    // ------------------------------------------------------------------ internal: assignment

    /// @dev Assigns the provider at `price`; the unused part of the locked budget goes home.
    function _assign(uint256 taskId, Task storage t, uint256 providerId, uint256 price, uint32 duration) private {
        uint256 refund = t.amount - price;
        t.amount = uint96(price);
        t.providerId = uint48(providerId);
        t.deliveryDuration = duration;
        if (t.offer != 0) t.offer = 0;
        _move(taskId, t, Status.Accepted, duration);
        emit TaskAssigned(taskId, providerId, price, t.deadline);
        if (refund != 0) _pay(t.token, _wallet(t.clientId), refund);
    }

    function _propose(uint256 taskId, Task storage t, uint256 price, uint32 deliveryDuration) private {
        if (t.proposals >= MAX_PROPOSALS) revert TaskEscrowTooManyProposals(taskId);
        _checkPrice(t, price);
        _checkPeriod(deliveryDuration);
        t.proposals += 1;
    }

    /// @dev The provider may take the task: it exists and is not paused, it is not the client
    ///      (nor, on the open market, another agent of the client's owner), and its score is high enough.
    function _checkEligible(uint256 clientId, uint256 providerId, bool openMarket, uint256 minScore) private view {
        TaskEscrowStorage storage $ = _getStorage();
        IAgentRegistry registry = $.registry;
        if (!registry.isAgentActive(providerId)) revert TaskEscrowProviderInactive(providerId);
        if (
            providerId == clientId ||
            (openMarket && registry.ownerOfAgent(providerId) == registry.ownerOfAgent(clientId))
        ) revert TaskEscrowSelfDealing(clientId, providerId);
        if (minScore != 0) {
            uint256 score = $.reputation.score(providerId);
            if (score < minScore) revert TaskEscrowScoreTooLow(providerId, score, minScore);
        }
    }

    // ------------------------------------------------------------------ internal: settlement

    /// @dev Refunds a task that never had a provider; nothing is recorded in Reputation.
    function _closeOpen(uint256 taskId, Task storage t, Status to) private {
        uint256 amount = t.amount;
        _move(taskId, t, to, 0);
        emit TaskSettled(taskId, 0, amount, 0);
        _pay(t.token, _wallet(t.clientId), amount);
    }

    /// @dev Settles a dispute: the provider gets `shareBps` of the price and of the deposit the
    ///      escrow holds (the one the arbitrator did not take; after a default, the provider's own).
    function _resolve(uint256 taskId, Task storage t, uint256 shareBps) private {
        uint256 deposit = _getStorage().disputes[taskId].deposit;
        uint256 depositToProvider = (deposit * shareBps) / BPS;
        emit DepositsReturned(taskId, depositToProvider, deposit - depositToProvider);
        IReputation.TaskOutcome outcome =
            shareBps == BPS
                ? IReputation.TaskOutcome.DisputeProviderWon
                : shareBps == 0
                    ? IReputation.TaskOutcome.DisputeClientWon
                    : IReputation.TaskOutcome.DisputeSplit;
        _settle(taskId, t, Status.Resolved, shareBps, outcome, depositToProvider, deposit - depositToProvider);
    }

    /// @dev Pays out an assigned task: `shareBps` of the price to the provider minus the fee, the
    ///      rest to the client, plus returned deposits; records the outcome in Reputation.
    function _settle(
        uint256 taskId,
        Task storage t,
        Status to,
        uint256 shareBps,
        IReputation.TaskOutcome outcome,
        uint256 providerExtra,
        uint256 clientExtra
    ) private {
        TaskEscrowStorage storage $ = _getStorage();
        (address token, uint256 price) = (t.token, t.amount);
        (uint256 clientId, uint256 providerId) = (t.clientId, t.providerId);
        uint256 toProvider = (price * shareBps) / BPS;
        uint256 fee = (toProvider * t.feeBps) / BPS;
        uint256 toClient = price - toProvider;
        // fee <= toProvider because feeBps <= BPS.
        unchecked {
            toProvider -= fee;
        }
        _move(taskId, t, to, 0);
        if (fee != 0) $.fees[token] += fee;
        emit TaskSettled(taskId, toProvider, toClient, fee);
        // Weighed by the value paid (gross of the fee): a refund, paid back in full, weighs nothing (RP-1).
        $.reputation.recordTask(clientId, providerId, outcome, token, toProvider + fee);
        toProvider += providerExtra;
        toClient += clientExtra;
        if (toProvider != 0) _pay(token, _wallet(providerId), toProvider);
        if (toClient != 0) _pay(token, _wallet(clientId), toClient);
    }

    /// @dev Moves the task to `to`; a non-zero `window` starts the new state's deadline.
    function _move(uint256 taskId, Task storage t, Status to, uint256 window) private {
        Status from = t.status;
        t.status = to;
        if (window != 0) t.deadline = uint40(block.timestamp + window);
        emit TaskStateChanged(taskId, from, to);
    }

    // ------------------------------------------------------------------ internal: money

    /// @dev Pulls `amount` of `token` from `msg.sender`, rejecting fee-on-transfer behaviour.
    function _pull(address token, uint256 amount) private {
        if (amount == 0) return;
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = IERC20(token).balanceOf(address(this)) - before;
        if (received != amount) revert TaskEscrowTransferMismatch(token, amount, received);
    }

    /// @dev Pays `to`, or credits it when the transfer fails, so one party never blocks the other.
    function _pay(address token, address to, uint256 amount) private {
        if (!IERC20(token).trySafeTransfer(to, amount)) {
            _getStorage().credits[token][to] += amount;
            emit PaymentCredited(token, to, amount);
        }
    }

    function _wallet(uint256 agentId) private view returns (address) {
        return _getStorage().registry.getAgentWallet(agentId);
    }

    // ------------------------------------------------------------------ internal: checks

    function _task(uint256 taskId) private view returns (Task storage t) {
        t = _getStorage().tasks[taskId];
        if (t.status == Status.None) revert TaskEscrowUnknownTask(taskId);
    }

    function _taskIn(uint256 taskId, Status status) private view returns (Task storage t) {
        t = _task(taskId);
        if (t.status != status) revert TaskEscrowWrongStatus(taskId, t.status);
    }

    /// @dev An open task of `mode` whose acceptance deadline has not passed.
    function _openTask(uint256 taskId, Mode mode) private view returns (Task storage t) {
        t = _taskIn(taskId, Status.Open);
        if (t.mode != mode) revert TaskEscrowBadTask();
        _requireBeforeDeadline(taskId, t);
    }

    function _requireBeforeDeadline(uint256 taskId, Task storage t) private view {
        if (block.timestamp > t.deadline) revert TaskEscrowDeadlinePassed(taskId, t.deadline);
    }

    function _requireActor(uint256 agentId) private view {
        if (!_getStorage().registry.canAct(agentId, msg.sender)) revert TaskEscrowNotAuthorized(agentId, msg.sender);
    }

    function _offer(Task storage t) private view returns (uint256) {
        uint256 offer = t.offer;
        return offer != 0 ? offer : t.amount;
    }

    /// @dev A bid or proposal: at least the token's minimum budget (dust would round fees and
    ///      deposits to zero) and at most the locked amount.
    function _checkPrice(Task storage t, uint256 price) private view {
        if (price == 0 || price > t.amount || price < _getStorage().minBudget[t.token]) {
            revert TaskEscrowBadAmount(price);
        }
    }

    function _checkPeriod(uint256 period) private pure {
        if (period < MIN_PERIOD || period > MAX_PERIOD) revert TaskEscrowBadTime(period);
    }

    function _checkURI(bytes memory uri) private pure {
        if (uri.length > MAX_URI_BYTES) revert TaskEscrowInputTooLong(uri.length, MAX_URI_BYTES);
    }

    function _setFees(uint16 protocolFeeBps_, uint16 arbitrationFeeBps_) private {
        if (protocolFeeBps_ > MAX_PROTOCOL_FEE_BPS || arbitrationFeeBps_ > MAX_ARBITRATION_FEE_BPS) {
            revert TaskEscrowBadParameter();
        }
        TaskEscrowStorage storage $ = _getStorage();
        ($.protocolFeeBps, $.arbitrationFeeBps) = (protocolFeeBps_, arbitrationFeeBps_);
        emit FeesSet(protocolFeeBps_, arbitrationFeeBps_);
    }

    function _setTreasury(address treasury_) private {
        _requireNonZero(treasury_);
        _getStorage().treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    function _getStorage() private pure returns (TaskEscrowStorage storage $) {
        assembly {
            $.slot := STORAGE_LOCATION
        }
    }
}
