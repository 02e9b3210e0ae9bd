// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {ProtocolBase} from "../utils/ProtocolBase.sol";
import {IPayPerUse} from "../interfaces/IPayPerUse.sol";
import {IERC3009} from "../interfaces/IERC3009.sol";
import {IAgentRegistry} from "../interfaces/IAgentRegistry.sol";
import {IReputation} from "../interfaces/IReputation.sol";

/// @title PayPerUse
/// @notice Charges, signed charges, up-to payments and sessions for the Agent Market's services.
///         See {IPayPerUse} for the rules.
/// @dev Rounding: the fee is `total * feeBps / 10_000` rounded down and the provider receives
///      exactly the rest, so no wei is lost; for a session the same holds for its cumulative
///      redeemed amount (the fee is booked when the session is settled). A receipt takes one storage slot (the token is kept
///      as its allow-list index); a session takes three. Signed-authorisation nonces are a bitmap
///      per payer (Permit2-style unordered nonces): any unused value works, and consecutive values
///      share a storage word.
contract PayPerUse is IPayPerUse, ProtocolBase {
    using SafeERC20 for IERC20;

    // ------------------------------------------------------------------ storage

    struct TokenInfo {
        uint32 index; // 1-based, assigned by the token's first setToken and kept for ever
        bool allowed;
    }

    /// @dev One slot.
    struct ReceiptSlot {
        uint48 payerId;
        uint48 providerId;
        uint96 refundable;
        uint32 tokenIndex;
    }

    /// @dev Charges and up-to payments between a payer, a provider and a token, not yet recorded
    ///      in Reputation. One slot.
    struct Pending {
        uint96 amount;
        uint64 calls;
        uint32 receipts;
    }

    /// @dev What one charge or up-to payment is about, gathered in memory.
    struct Payment {
        uint256 payerId;
        address payer;
        uint256 serviceId;
        uint256 units;
        bytes32 requestRef;
        uint256 providerId;
        address token;
        uint256 total;
        address payTo;
        uint32 tokenIndex;
    }

    /// @custom:storage-location erc7201:agentmarket.storage.PayPerUse
    struct PayPerUseStorage {
        IAgentRegistry registry;
        uint16 feeBps;
        uint32 closeGrace;
        uint32 tokenCount;
        IReputation reputation;
        uint64 receiptCount;
        address treasury;
        uint64 sessionCount;
        mapping(address token => TokenInfo) tokens;
        mapping(uint32 index => address token) tokenAt;
        mapping(uint256 receiptId => ReceiptSlot) receipts;
        mapping(uint256 sessionId => Session) sessions;
        mapping(address payer => mapping(uint256 word => uint256 bits)) nonces;
        mapping(address token => mapping(address account => uint256)) credits;
        mapping(address token => uint256) fees;
        mapping(uint256 payerId => mapping(uint256 providerId => mapping(address token => Pending))) pending;
    }

    // keccak256(abi.encode(uint256(keccak256("agentmarket.storage.PayPerUse")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant STORAGE_LOCATION = 0x1143823913336009b6ff0e409f618278c1262e99862f8ebe1034035b98831b00;

    /// @notice Implementation version.
    string public constant VERSION = "1.0.0";
    /// @notice Hard cap of the protocol fee (10%).
    uint16 public constant MAX_FEE_BPS = 1_000;
    /// @notice Shortest grace period of a close request.
    uint32 public constant MIN_CLOSE_GRACE = 5 minutes;
    /// @notice Longest grace period of a close request.
    uint32 public constant MAX_CLOSE_GRACE = 30 days;
    /// @notice Longest session, from now to its expiry.
    uint32 public constant MAX_SESSION_DURATION = 365 days;
    /// @notice Most vouchers in one {redeemMany}.
    uint256 public constant MAX_BATCH = 256;
    /// @notice EIP-712 type of a signed charge.
    bytes32 public constant CHARGE_TYPEHASH = keccak256(
        "ChargeAuthorization(uint256 payerId,address payer,uint256 serviceId,address token,uint256 units,"
        "uint256 amount,bytes32 requestRef,uint256 nonce,uint256 validAfter,uint256 validBefore)"
    );
    /// @notice EIP-712 type of a signed up-to payment.
    bytes32 public constant UP_TO_TYPEHASH = keccak256(
        "UpToAuthorization(uint256 payerId,address payer,uint256 serviceId,address token,uint256 maxAmount,"
        "bytes32 requestRef,uint256 nonce,uint256 validAfter,uint256 validBefore)"
    );
    /// @notice EIP-712 type of a session voucher.
    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(uint256 sessionId,uint256 amount,uint256 calls)");

    // keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    bytes32 private constant DOMAIN_TYPEHASH = 0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f;
    bytes32 private constant NAME_HASH = keccak256("PayPerUse");
    bytes32 private constant VERSION_HASH = keccak256("1");
    uint256 private constant BPS = 10_000;
    uint256 private constant PERMIT_DATA_BYTES = 5 * 32;
    uint256 private constant RECEIVE_DATA_BYTES = 6 * 32;

    // ------------------------------------------------------------------ initializer

    /// @notice Initialises the proxy. `admin` receives every administrative role; payment tokens
    ///         are allowed afterwards with {setToken}.
    function initialize(
        address admin,
        address registry_,
        address reputation_,
        address treasury_,
        uint16 feeBps_,
        uint32 closeGrace_
    ) external initializer {
        __ProtocolBase_init(admin);
        _requireNonZero(registry_);
        _requireNonZero(reputation_);
        PayPerUseStorage storage $ = _getStorage();
        $.registry = IAgentRegistry(registry_);
        $.reputation = IReputation(reputation_);
        _setTreasury(treasury_);
        _setFee(feeBps_);
        _setCloseGrace(closeGrace_);
    }

    // ------------------------------------------------------------------ admin

    /// @inheritdoc IPayPerUse
    function setToken(address token, bool allowed) external onlyRole(PARAMETER_ROLE) {
        _requireNonZero(token);
        PayPerUseStorage storage $ = _getStorage();
        TokenInfo storage info = $.tokens[token];
        if (info.index == 0) {
            uint32 index = ++$.tokenCount;
            info.index = index;
            $.tokenAt[index] = token;
        }
        info.allowed = allowed;
        emit TokenSet(token, allowed);
    }

    /// @inheritdoc IPayPerUse
    function setFee(uint16 feeBps_) external onlyRole(PARAMETER_ROLE) {
        _setFee(feeBps_);
    }

    /// @inheritdoc IPayPerUse
    function setCloseGrace(uint32 closeGrace_) external onlyRole(PARAMETER_ROLE) {
        _setCloseGrace(closeGrace_);
    }

    /// @inheritdoc IPayPerUse
    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTreasury(treasury_);
    }

    // ------------------------------------------------------------------ charges

    /// @inheritdoc IPayPerUse
    function charge(
        uint256 payerId,
        uint256 serviceId,
        uint256 units,
        address token,
        uint256 maxTotal,
        bytes32 requestRef
    ) external whenNotPaused nonReentrant returns (uint256 receiptId) {
        Payment memory p = _quote(payerId, msg.sender, serviceId, units, requestRef);
        _checkToken(token, p.token);
        if (p.total > maxTotal) revert PayPerUseAboveMax(p.total, maxTotal);
        return _settle(p, Funding.Allowance, msg.data[:0]);
    }

    /// @inheritdoc IPayPerUse
    function submitCharge(
        ChargeAuthorization calldata auth,
        bytes calldata signature,
        Funding funding,
        bytes calldata fundingData
    ) external whenNotPaused nonReentrant returns (uint256 receiptId) {
        _authorize(auth.payer, auth.nonce, auth.validAfter, auth.validBefore, chargeDigest(auth), signature);
        Payment memory p = _quote(auth.payerId, auth.payer, auth.serviceId, auth.units, auth.requestRef);
        _checkToken(auth.token, p.token);
        if (p.total != auth.amount) revert PayPerUseAmountMismatch(auth.amount, p.total);
        return _settle(p, funding, fundingData);
    }

    /// @inheritdoc IPayPerUse
    function settleUpTo(
        UpToAuthorization calldata auth,
        bytes calldata signature,
        uint256 units,
        Funding funding,
        bytes calldata fundingData
    ) external whenNotPaused nonReentrant returns (uint256 receiptId) {
        if (funding == Funding.ReceiveWithAuthorization) revert PayPerUseBadFunding();
        _authorize(auth.payer, auth.nonce, auth.validAfter, auth.validBefore, upToDigest(auth), signature);
        Payment memory p = _quote(auth.payerId, auth.payer, auth.serviceId, units, auth.requestRef);
        _requireActor(p.providerId);
        _checkToken(auth.token, p.token);
        if (p.total > auth.maxAmount) revert PayPerUseAboveMax(p.total, auth.maxAmount);
        return _settle(p, funding, fundingData);
    }

    /// @inheritdoc IPayPerUse
    function cancelNonce(uint256 nonce) external {
        _useNonce(msg.sender, nonce);
        emit AuthorizationCancelled(msg.sender, nonce);
    }

    /// @inheritdoc IPayPerUse
    function refund(uint256 receiptId, uint256 amount) external nonReentrant {
        PayPerUseStorage storage $ = _getStorage();
        ReceiptSlot storage r = $.receipts[receiptId];
        if (r.payerId == 0) revert PayPerUseUnknownReceipt(receiptId);
        _requireActor(r.providerId);
        uint256 refundable = r.refundable;
        if (amount == 0) revert PayPerUseBadAmount(0);
        if (amount > refundable) revert PayPerUseRefundTooLarge(receiptId, amount, refundable);
        unchecked {
            refundable -= amount;
        }
        r.refundable = uint96(refundable);
        address token = $.tokenAt[r.tokenIndex];
        emit ChargeRefunded(receiptId, amount, refundable);
        _pull(token, msg.sender, amount);
        _push(token, _wallet(r.payerId), amount);
    }

    /// @inheritdoc IPayPerUse
    function syncReputation(uint256 payerId, uint256 providerId, address token) external nonReentrant {
        Pending memory m = _getStorage().pending[payerId][providerId][token];
        if (m.receipts == 0) revert PayPerUseNothingToSync(payerId, providerId, token);
        _flush(payerId, providerId, token, m);
    }

    // ------------------------------------------------------------------ sessions

    /// @inheritdoc IPayPerUse
    function openSession(
        uint256 payerId,
        uint256 providerId,
        address token,
        uint256 deposit,
        uint40 expiry,
        address signer
    ) external whenNotPaused nonReentrant returns (uint256 sessionId) {
        PayPerUseStorage storage $ = _getStorage();
        if (payerId == providerId) revert PayPerUseSelfPayment(payerId);
        _tokenIndex(token);
        _checkDeposit(deposit);
        if (expiry <= block.timestamp || expiry > block.timestamp + MAX_SESSION_DURATION) {
            revert PayPerUseBadExpiry(expiry);
        }
        IAgentRegistry registry = $.registry;
        if (!registry.isAgentActive(providerId)) revert PayPerUseProviderInactive(providerId);
        if (!registry.canAct(payerId, signer)) revert PayPerUseNotAuthorized(payerId, signer);
        registry.consumeSpend(payerId, msg.sender, token, deposit, providerId);

        sessionId = ++$.sessionCount;
        // Ids fit 48 bits: both agents exist and the registry mints ids one by one.
        $.sessions[sessionId] = Session({
            token: token,
            endsAt: expiry,
            closeGrace: uint24($.closeGrace), // <= MAX_CLOSE_GRACE < 2^24
            closing: false,
            settled: false,
            feeBps: $.feeBps,
            signer: signer,
            payerId: uint48(payerId),
            providerId: uint48(providerId),
            deposit: uint96(deposit),
            redeemed: 0,
            calls: 0
        });
        emit SessionOpened(sessionId, payerId, providerId, token, signer, deposit, expiry, $.feeBps);
        _pull(token, msg.sender, deposit);
    }

    /// @inheritdoc IPayPerUse
    function topUp(uint256 sessionId, uint256 amount, uint40 newExpiry) external whenNotPaused nonReentrant {
        Session storage s = _liveSession(sessionId);
        if (s.closing) revert PayPerUseSessionClosing(sessionId);
        if (amount == 0) revert PayPerUseBadAmount(0);
        uint256 deposit = s.deposit + amount;
        _checkDeposit(deposit);
        if (newExpiry != 0) {
            if (newExpiry < s.endsAt || newExpiry > block.timestamp + MAX_SESSION_DURATION) {
                revert PayPerUseBadExpiry(newExpiry);
            }
            s.endsAt = newExpiry;
        }
        address token = s.token;
        _getStorage().registry.consumeSpend(s.payerId, msg.sender, token, amount, s.providerId);
        s.deposit = uint96(deposit);
        emit SessionToppedUp(sessionId, amount, deposit, s.endsAt);
        _pull(token, msg.sender, amount);
    }

    /// @inheritdoc IPayPerUse
    function redeem(Voucher calldata v, bytes calldata signature) external nonReentrant returns (uint256 paid) {
        Session storage s;
        (s, paid) = _redeem(v, signature);
        if (paid != 0) _push(s.token, _wallet(s.providerId), paid);
    }

    /// @inheritdoc IPayPerUse
    function redeemMany(
        Voucher[] calldata vouchers,
        bytes[] calldata signatures
    ) external nonReentrant returns (uint256 paid) {
        uint256 n = vouchers.length;
        if (n == 0 || n > MAX_BATCH || n != signatures.length) revert PayPerUseBadBatch(n);
        // Consecutive vouchers of one provider and token are paid in one transfer.
        (address token, uint256 providerId, uint256 net) = (address(0), 0, 0);
        for (uint256 i; i < n; ++i) {
            (Session storage s, uint256 sNet) = _redeem(vouchers[i], signatures[i]);
            if (sNet == 0) continue;
            (address sToken, uint256 sProvider) = (s.token, s.providerId);
            if (sToken != token || sProvider != providerId) {
                if (net != 0) _push(token, _wallet(providerId), net);
                (token, providerId, net) = (sToken, sProvider, 0);
            }
            net += sNet;
            paid += sNet;
        }
        if (net != 0) _push(token, _wallet(providerId), net);
    }

    /// @inheritdoc IPayPerUse
    function requestClose(uint256 sessionId) external {
        Session storage s = _liveSession(sessionId);
        if (s.closing) revert PayPerUseSessionClosing(sessionId);
        _requireActor(s.payerId);
        uint256 end = block.timestamp + s.closeGrace;
        if (end < s.endsAt) s.endsAt = uint40(end);
        s.closing = true;
        emit SessionCloseRequested(sessionId, s.endsAt);
    }

    /// @inheritdoc IPayPerUse
    function settleSession(uint256 sessionId) external nonReentrant {
        Session storage s = _session(sessionId);
        if (s.settled) revert PayPerUseSessionSettled(sessionId);
        if (block.timestamp <= s.endsAt) revert PayPerUseSessionNotEnded(sessionId, s.endsAt);
        s.settled = true;
        (uint256 redeemed, uint256 calls) = (s.redeemed, s.calls);
        uint256 rest = s.deposit - redeemed;
        uint256 fee = _feeOf(redeemed, s.feeBps);
        (address token, uint256 payerId) = (s.token, s.payerId);
        PayPerUseStorage storage $ = _getStorage();
        if (fee != 0) $.fees[token] += fee;
        emit SessionSettled(sessionId, redeemed, fee, rest, calls);
        if (redeemed != 0) {
            $.reputation.recordCalls(payerId, s.providerId, token, calls == 0 ? 1 : calls, redeemed, 1);
        }
        if (rest != 0) _push(token, _wallet(payerId), rest);
    }

    // ------------------------------------------------------------------ money

    /// @inheritdoc IPayPerUse
    function withdraw(address token, address to) external nonReentrant {
        _requireNonZero(to);
        PayPerUseStorage storage $ = _getStorage();
        uint256 amount = $.credits[token][msg.sender];
        if (amount == 0) revert PayPerUseNothingToWithdraw(token, msg.sender);
        delete $.credits[token][msg.sender];
        emit CreditWithdrawn(token, msg.sender, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /// @inheritdoc IPayPerUse
    function sweepFees(address token) external nonReentrant {
        PayPerUseStorage storage $ = _getStorage();
        uint256 amount = $.fees[token];
        if (amount == 0) revert PayPerUseNothingToWithdraw(token, $.treasury);
        delete $.fees[token];
        emit FeesSwept(token, $.treasury, amount);
        IERC20(token).safeTransfer($.treasury, amount);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IPayPerUse
    function getReceipt(uint256 receiptId) external view returns (Receipt memory) {
        PayPerUseStorage storage $ = _getStorage();
        ReceiptSlot memory r = $.receipts[receiptId];
        return Receipt(r.payerId, r.providerId, r.refundable, $.tokenAt[r.tokenIndex]);
    }

    /// @inheritdoc IPayPerUse
    function getSession(uint256 sessionId) external view returns (Session memory) {
        return _getStorage().sessions[sessionId];
    }

    /// @inheritdoc IPayPerUse
    function quote(
        uint256 serviceId,
        uint256 units
    ) external view returns (uint256 total, uint256 fee, address token, uint256 providerId) {
        Payment memory p = _quote(0, address(0), serviceId, units, bytes32(0));
        return (p.total, _feeOf(p.total, _getStorage().feeBps), p.token, p.providerId);
    }

    /// @inheritdoc IPayPerUse
    function pendingReputation(
        uint256 payerId,
        uint256 providerId,
        address token
    ) external view returns (uint256 calls, uint256 amount, uint256 receipts) {
        Pending memory m = _getStorage().pending[payerId][providerId][token];
        return (m.calls, m.amount, m.receipts);
    }

    /// @inheritdoc IPayPerUse
    function nonceUsed(address payer, uint256 nonce) external view returns (bool) {
        return (_getStorage().nonces[payer][nonce >> 8] >> (nonce & 0xff)) & 1 == 1;
    }

    /// @inheritdoc IPayPerUse
    function tokenAllowed(address token) external view returns (bool) {
        return _getStorage().tokens[token].allowed;
    }

    /// @inheritdoc IPayPerUse
    function creditOf(address token, address account) external view returns (uint256) {
        return _getStorage().credits[token][account];
    }

    /// @inheritdoc IPayPerUse
    function accruedFees(address token) external view returns (uint256) {
        return _getStorage().fees[token];
    }

    /// @inheritdoc IPayPerUse
    function receiptCount() external view returns (uint256) {
        return _getStorage().receiptCount;
    }

    /// @inheritdoc IPayPerUse
    function sessionCount() external view returns (uint256) {
        return _getStorage().sessionCount;
    }

    /// @inheritdoc IPayPerUse
    function config() external view returns (address, address, address, uint16, uint32) {
        PayPerUseStorage storage $ = _getStorage();
        return (address($.registry), address($.reputation), $.treasury, $.feeBps, $.closeGrace);
    }

    /// @inheritdoc IPayPerUse
    function chargeDigest(ChargeAuthorization calldata auth) public view returns (bytes32) {
        return _typedDigest(keccak256(abi.encode(CHARGE_TYPEHASH, auth)));
    }

    /// @inheritdoc IPayPerUse
    function upToDigest(UpToAuthorization calldata auth) public view returns (bytes32) {
        return _typedDigest(keccak256(abi.encode(UP_TO_TYPEHASH, auth)));
    }

    /// @inheritdoc IPayPerUse
    function voucherDigest(Voucher calldata v) public view returns (bytes32) {
        return _typedDigest(keccak256(abi.encode(VOUCHER_TYPEHASH, v)));
    }

    /// @inheritdoc IPayPerUse
    function domainSeparator() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    // ------------------------------------------------------------------ internal: charges

    /// @dev Prices `units` of a service; the provider's wallet is read at the same time.
    function _quote(
        uint256 payerId,
        address payer,
        uint256 serviceId,
        uint256 units,
        bytes32 requestRef
    ) private view returns (Payment memory p) {
        if (units == 0 || units > type(uint64).max) revert PayPerUseBadAmount(units);
        (uint256 providerId, address token, uint256 unitPrice, address payTo, bool available) = _getStorage()
            .registry
            .getServiceTerms(serviceId);
        if (!available) revert PayPerUseServiceUnavailable(serviceId);
        uint256 total = units * unitPrice; // < 2^144: cannot overflow
        if (total > type(uint96).max) revert PayPerUseBadAmount(total);
        p = Payment(payerId, payer, serviceId, units, requestRef, providerId, token, total, payTo, _tokenIndex(token));
    }

    /// @dev The token the payer agreed to must be the one the service is priced in now: the
    ///      provider could otherwise switch the service to another token the payer approved.
    function _checkToken(address agreed, address token) private pure {
        if (agreed != token) revert PayPerUseTokenMismatch(agreed, token);
    }

    /// @dev Checks and debits the payer's policy, pulls the total, issues the receipt, records the
    ///      call in Reputation and pays the provider.
    function _settle(
        Payment memory p,
        Funding funding,
        bytes calldata fundingData
    ) private returns (uint256 receiptId) {
        if (p.payerId == p.providerId) revert PayPerUseSelfPayment(p.payerId);
        PayPerUseStorage storage $ = _getStorage();
        $.registry.consumeSpend(p.payerId, p.payer, p.token, p.total, p.providerId);
        _pullFunded(p.token, p.payer, p.total, funding, fundingData);
        uint256 fee = _feeOf(p.total, $.feeBps);
        receiptId = ++$.receiptCount;
        $.receipts[receiptId] = ReceiptSlot(uint48(p.payerId), uint48(p.providerId), uint96(p.total), p.tokenIndex);
        if (fee != 0) $.fees[p.token] += fee;
        emit Charged(
            receiptId,
            p.payerId,
            p.providerId,
            p.serviceId,
            p.token,
            p.units,
            p.total,
            fee,
            p.requestRef,
            p.payer
        );
        _accrueReputation(p);
        _push(p.token, p.payTo, p.total - fee);
    }

    /// @dev Adds a charge to its pair's pending record; flushes first if a counter would overflow.
    function _accrueReputation(Payment memory p) private {
        Pending storage q = _getStorage().pending[p.payerId][p.providerId][p.token];
        Pending memory m = q;
        // total < 2^96 and units < 2^64 (checked in _quote), so an empty record never flushes.
        if (
            uint256(m.amount) + p.total > type(uint96).max ||
            uint256(m.calls) + p.units > type(uint64).max ||
            m.receipts == type(uint32).max
        ) {
            _flush(p.payerId, p.providerId, p.token, m);
            m = Pending(0, 0, 0);
        }
        (q.amount, q.calls, q.receipts) = (m.amount + uint96(p.total), m.calls + uint64(p.units), m.receipts + 1);
    }

    /// @dev Records a pair's pending charges in Reputation (one right per receipt) and clears them.
    function _flush(uint256 payerId, uint256 providerId, address token, Pending memory m) private {
        delete _getStorage().pending[payerId][providerId][token];
        emit ReputationSynced(payerId, providerId, token, m.calls, m.amount, m.receipts);
        _getStorage().reputation.recordCalls(payerId, providerId, token, m.calls, m.amount, m.receipts);
    }

    /// @dev Verifies a signed authorisation: its window, its nonce (consumed) and its signature.
    function _authorize(
        address payer,
        uint256 nonce,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 digest,
        bytes calldata signature
    ) private {
        if (block.timestamp <= validAfter) revert PayPerUseNotYetValid(validAfter);
        if (block.timestamp >= validBefore) revert PayPerUseExpired(validBefore);
        _useNonce(payer, nonce);
        if (!SignatureChecker.isValidSignatureNow(payer, digest, signature)) revert PayPerUseBadSignature(payer);
        emit AuthorizationUsed(payer, nonce);
    }

    function _useNonce(address payer, uint256 nonce) private {
        mapping(uint256 => uint256) storage words = _getStorage().nonces[payer];
        uint256 bit = 1 << (nonce & 0xff);
        uint256 word = words[nonce >> 8];
        if (word & bit != 0) revert PayPerUseNonceUsed(payer, nonce);
        words[nonce >> 8] = word | bit;
    }

    // ------------------------------------------------------------------ internal: sessions

    /// @dev Checks a voucher and books its unredeemed part; the caller pays `net` out. The fee is
    ///      taken on the cumulative amount (booked at settlement), so the provider has received
    ///      exactly `redeemed - fee(redeemed)` after every voucher, whatever their sizes.
    function _redeem(Voucher calldata v, bytes calldata signature) private returns (Session storage s, uint256 net) {
        uint256 sessionId = v.sessionId;
        s = _session(sessionId);
        if (block.timestamp > s.endsAt || s.settled) revert PayPerUseSessionEnded(sessionId, s.endsAt);
        address signer = s.signer;
        if (!SignatureChecker.isValidSignatureNow(signer, voucherDigest(v), signature)) {
            revert PayPerUseBadSignature(signer);
        }
        uint256 deposit = s.deposit;
        uint256 amount = v.amount < deposit ? v.amount : deposit;
        uint256 redeemed = s.redeemed;
        if (amount <= redeemed) return (s, 0);
        uint256 calls = v.calls < type(uint64).max ? v.calls : type(uint64).max;
        if (calls < s.calls) calls = s.calls;
        uint256 feeBps = s.feeBps;
        uint256 fee = _feeOf(amount, feeBps) - _feeOf(redeemed, feeBps);
        // fee <= amount - redeemed: the fee of a larger amount grows by at most the difference.
        unchecked {
            net = amount - redeemed - fee;
        }
        s.redeemed = uint96(amount);
        s.calls = uint64(calls);
        emit VoucherRedeemed(sessionId, amount, calls, net, fee);
    }

    function _feeOf(uint256 amount, uint256 feeBps) private pure returns (uint256) {
        return (amount * feeBps) / BPS;
    }

    function _session(uint256 sessionId) private view returns (Session storage s) {
        s = _getStorage().sessions[sessionId];
        if (s.token == address(0)) revert PayPerUseUnknownSession(sessionId);
    }

    /// @dev A session that is neither settled nor past its end.
    function _liveSession(uint256 sessionId) private view returns (Session storage s) {
        s = _session(sessionId);
        if (s.settled) revert PayPerUseSessionSettled(sessionId);
        if (block.timestamp > s.endsAt) revert PayPerUseSessionEnded(sessionId, s.endsAt);
    }

    function _checkDeposit(uint256 amount) private pure {
        if (amount == 0 || amount > type(uint96).max) revert PayPerUseBadAmount(amount);
    }

    // ------------------------------------------------------------------ internal: money

    /// @dev Pulls `amount` from `from` by allowance, permit or EIP-3009, rejecting fee-on-transfer.
    function _pullFunded(address token, address from, uint256 amount, Funding funding, bytes calldata data) private {
        if (funding == Funding.Allowance) {
            if (data.length != 0) revert PayPerUseBadFunding();
            _pull(token, from, amount);
            return;
        }
        if (funding == Funding.Permit) {
            if (data.length != PERMIT_DATA_BYTES) revert PayPerUseBadFunding();
            (uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s) = abi.decode(
                data,
                (uint256, uint256, uint8, bytes32, bytes32)
            );
            // A failed permit (front-run, already used) is fine when the allowance is there.
            try IERC20Permit(token).permit(from, address(this), value, deadline, v, r, s) {} catch {}
            _pull(token, from, amount);
            return;
        }
        if (data.length != RECEIVE_DATA_BYTES) revert PayPerUseBadFunding();
        uint256 before = IERC20(token).balanceOf(address(this));
        {
            (uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) = abi.decode(
                data,
                (uint256, uint256, bytes32, uint8, bytes32, bytes32)
            );
            IERC3009(token).receiveWithAuthorization(
                from,
                address(this),
                amount,
                validAfter,
                validBefore,
                nonce,
                v,
                r,
                s
            );
        }
        _checkReceived(token, before, amount);
    }

    /// @dev Pulls `amount` of `token` from `from` by allowance, rejecting fee-on-transfer behaviour.
    function _pull(address token, address from, uint256 amount) private {
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(from, address(this), amount);
        _checkReceived(token, before, amount);
    }

    function _checkReceived(address token, uint256 before, uint256 amount) private view {
        uint256 received = IERC20(token).balanceOf(address(this)) - before;
        if (received != amount) revert PayPerUseTransferMismatch(token, amount, received);
    }

    /// @dev Pays `to`, or credits it when the transfer fails, so a recipient never blocks anyone.
    function _push(address token, address to, uint256 amount) private {
        if (!IERC20(token).trySafeTransfer(to, amount)) {
            _getStorage().credits[token][to] += amount;
            emit PaymentCredited(token, to, amount);
        }
    }

    function _wallet(uint256 agentId) private view returns (address) {
        return _getStorage().registry.getAgentWallet(agentId);
    }

    // ------------------------------------------------------------------ internal: checks

    function _requireActor(uint256 agentId) private view {
        if (!_getStorage().registry.canAct(agentId, msg.sender)) revert PayPerUseNotAuthorized(agentId, msg.sender);
    }

    /// @dev The allow-list index of an allowed token; reverts otherwise.
    function _tokenIndex(address token) private view returns (uint32) {
        TokenInfo memory info = _getStorage().tokens[token];
        if (!info.allowed) revert PayPerUseTokenNotAllowed(token);
        return info.index;
    }

    function _typedDigest(bytes32 structHash) private view returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(domainSeparator(), structHash);
    }

    function _setFee(uint16 feeBps_) private {
        if (feeBps_ > MAX_FEE_BPS) revert PayPerUseBadParameter();
        _getStorage().feeBps = feeBps_;
        emit FeeSet(feeBps_);
    }

    function _setCloseGrace(uint32 closeGrace_) private {
        if (closeGrace_ < MIN_CLOSE_GRACE || closeGrace_ > MAX_CLOSE_GRACE) revert PayPerUseBadParameter();
        _getStorage().closeGrace = closeGrace_;
        emit CloseGraceSet(closeGrace_);
    }

    function _setTreasury(address treasury_) private {
        _requireNonZero(treasury_);
        _getStorage().treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    function _getStorage() private pure returns (PayPerUseStorage storage $) {
        assembly {
            $.slot := STORAGE_LOCATION
        }
    }
}
