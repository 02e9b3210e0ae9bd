// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {VRFConsumerBaseV2Plus} from "@chainlink/contracts/src/v0.8/vrf/dev/VRFConsumerBaseV2Plus.sol";
import {VRFV2PlusClient} from "@chainlink/contracts/src/v0.8/vrf/dev/libraries/VRFV2PlusClient.sol";
import {IRandomnessSource, IRandomnessConsumer} from "../interfaces/IRandomness.sol";

/// @title ChainlinkVRFSource
/// @notice Randomness source backed by any Chainlink VRF v2.5 coordinator (or a compatible one,
///         such as `VRFCoordinatorV2_5Mock` on local networks and the X Layer testnet, where
///         Chainlink VRF is not offered today: see `audits/known-limitations.md`).
/// @dev A small non-upgradeable adapter: Chainlink's `VRFConsumerBaseV2Plus` sets its coordinator
///      in a constructor, which a proxy never runs, so the upgradeable court (EvaluatorStaking)
///      talks to this contract through {IRandomnessSource} instead. The coordinator lives in
///      storage (`s_vrfCoordinator`, changeable by the owner with `setCoordinator`) and
///      `rawFulfillRandomWords` accepts only it. Chainlink's security rules hold: one request per
///      call of the consumer, no re-request and no cancel here, answers matched by request id,
///      and a fulfilment callback that never reverts (a consumer that rejects a delivery leaves
///      the word stored for {redeliver}). The owner (Chainlink `ConfirmedOwner`, two-step
///      transfer) sets the consumer and the request configuration.
contract ChainlinkVRFSource is IRandomnessSource, VRFConsumerBaseV2Plus {
    /// @notice Request configuration, passed to the coordinator on every request.
    struct Config {
        bytes32 keyHash;
        uint256 subscriptionId;
        uint16 requestConfirmations;
        uint32 callbackGasLimit;
        bool nativePayment;
    }

    /// @notice Bounds of the configuration (Chainlink's own limits for VRF v2.5).
    uint16 public constant MIN_CONFIRMATIONS = 1;
    uint16 public constant MAX_CONFIRMATIONS = 200;
    uint32 public constant MIN_CALLBACK_GAS = 50_000;
    uint32 public constant MAX_CALLBACK_GAS = 2_500_000;

    /// @notice The contract allowed to request randomness and that receives it.
    address public consumer;
    /// @notice The current request configuration.
    Config public config;
    /// @notice Requests waiting for their answer.
    mapping(uint256 requestId => bool) public pending;
    /// @notice Words whose delivery the consumer rejected, kept for {redeliver}.
    mapping(uint256 requestId => uint256 word) public undelivered;

    /// @notice The consumer was set.
    event ConsumerSet(address indexed consumer);
    /// @notice The request configuration was set.
    event ConfigSet(
        bytes32 keyHash,
        uint256 subscriptionId,
        uint16 confirmations,
        uint32 callbackGasLimit,
        bool native
    );
    /// @notice A request was sent to the coordinator.
    event RandomnessRequested(uint256 indexed requestId);
    /// @notice A word was delivered to the consumer (`delivered` false: kept for {redeliver}).
    event RandomnessFulfilled(uint256 indexed requestId, uint256 word, bool delivered);

    /// @notice Only the consumer may request randomness.
    error ChainlinkVRFSourceNotConsumer(address caller);
    /// @notice A configuration value is out of bounds.
    error ChainlinkVRFSourceBadConfig();
    /// @notice Nothing is waiting for redelivery under this id.
    error ChainlinkVRFSourceNothingToRedeliver(uint256 requestId);

    /// @param coordinator The VRF v2.5 coordinator.
    /// @param config_ The request configuration.
    constructor(address coordinator, Config memory config_) VRFConsumerBaseV2Plus(coordinator) {
        _setConfig(config_);
    }

    /// @notice Sets the contract allowed to request and receive randomness. Owner only.
    function setConsumer(address consumer_) external onlyOwner {
        if (consumer_ == address(0)) revert ZeroAddress();
        consumer = consumer_;
        emit ConsumerSet(consumer_);
    }

    /// @notice Sets the request configuration (key hash, subscription, confirmations, callback
    ///         gas, payment in native coin or LINK). Owner only; requests already sent keep theirs.
    function setConfig(Config calldata config_) external onlyOwner {
        _setConfig(config_);
    }

    /// @inheritdoc IRandomnessSource
    function requestRandomness() external returns (uint256 requestId) {
        if (msg.sender != consumer) revert ChainlinkVRFSourceNotConsumer(msg.sender);
        Config memory c = config;
        requestId = s_vrfCoordinator.requestRandomWords(
            VRFV2PlusClient.RandomWordsRequest({
                keyHash: c.keyHash,
                subId: c.subscriptionId,
                requestConfirmations: c.requestConfirmations,
                callbackGasLimit: c.callbackGasLimit,
                numWords: 1,
                extraArgs: VRFV2PlusClient._argsToBytes(VRFV2PlusClient.ExtraArgsV1({nativePayment: c.nativePayment}))
            })
        );
        pending[requestId] = true;
        emit RandomnessRequested(requestId);
    }

    /// @notice Delivers again a word the consumer rejected earlier. Anyone.
    function redeliver(uint256 requestId) external {
        uint256 word = undelivered[requestId];
        if (word == 0) revert ChainlinkVRFSourceNothingToRedeliver(requestId);
        delete undelivered[requestId];
        IRandomnessConsumer(consumer).receiveRandomness(requestId, word);
        emit RandomnessFulfilled(requestId, word, true);
    }

    /// @dev Called by `rawFulfillRandomWords` once the coordinator is checked. Never reverts: an
    ///      unknown id is ignored, and a delivery the consumer rejects is stored for {redeliver}.
    function fulfillRandomWords(uint256 requestId, uint256[] calldata randomWords) internal override {
        if (!pending[requestId] || randomWords.length == 0) return;
        delete pending[requestId];
        // A zero word would read as "nothing stored" in `undelivered`; 2^-256 odds, still handled.
        uint256 word = randomWords[0] == 0 ? 1 : randomWords[0];
        bool delivered;
        address to = consumer;
        // A consumer without code would make the high-level call revert before `try` can catch it.
        if (to.code.length != 0) {
            try IRandomnessConsumer(to).receiveRandomness(requestId, word) {
                delivered = true;
            } catch {}
        }
        if (!delivered) undelivered[requestId] = word;
        emit RandomnessFulfilled(requestId, word, delivered);
    }

    function _setConfig(Config memory c) private {
        if (
            c.keyHash == bytes32(0) ||
            c.requestConfirmations < MIN_CONFIRMATIONS ||
            c.requestConfirmations > MAX_CONFIRMATIONS ||
            c.callbackGasLimit < MIN_CALLBACK_GAS ||
            c.callbackGasLimit > MAX_CALLBACK_GAS
        ) revert ChainlinkVRFSourceBadConfig();
        config = c;
        emit ConfigSet(c.keyHash, c.subscriptionId, c.requestConfirmations, c.callbackGasLimit, c.nativePayment);
    }
}
