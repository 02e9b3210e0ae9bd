// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ProtocolBase} from "../utils/ProtocolBase.sol";
import {IReputation} from "../interfaces/IReputation.sol";
import {IAgentRegistry} from "../interfaces/IAgentRegistry.sol";

/// @title Reputation
/// @notice One credit record per agent from settled interactions, and ERC-8004 feedback gated by
///         feedback rights. See {IReputation} for the rules and the score formula.
/// @dev Nothing here is pausable: recording is called from refunds and timeouts, which must never
///      stop, and feedback moves no value. The only external call is a view into the registry.
contract Reputation is IReputation, ProtocolBase {
    // ------------------------------------------------------------------ types

    /// @dev Two slots. Tags whose lengths add up to at most 30 bytes (the usual case) are packed
    ///      into `tags` as [len1][len2][tag1][tag2]; longer pairs set len1 to 0xff and live in
    ///      `longTags`. Empty tags cost nothing.
    struct Feedback {
        int128 value;
        uint8 valueDecimals;
        bool isRevoked;
        uint96 weight;
        bytes32 tags;
    }

    struct Tags {
        string tag1;
        string tag2;
    }

    /// @dev One slot per (agent, rater): unused rights, the last feedback index, and the total
    ///      weight of the unused rights.
    struct Rater {
        uint64 rights;
        uint64 lastIndex;
        uint128 weight;
    }

    /// @custom:storage-location erc7201:agentmarket.storage.Reputation
    struct ReputationStorage {
        IAgentRegistry registry;
        mapping(uint256 agentId => AgentRecord) records;
        mapping(uint256 agentId => mapping(address token => uint256)) volume;
        mapping(uint256 agentId => mapping(address rater => Rater)) raters;
        mapping(uint256 agentId => mapping(address client => mapping(uint64 index => Feedback))) feedback;
        mapping(uint256 agentId => mapping(address client => mapping(uint64 index => Tags))) longTags;
        mapping(uint256 agentId => address[]) clients;
        mapping(uint256 agentId => mapping(address client => mapping(uint64 index => address[]))) responders;
        mapping(uint256 agentId => mapping(address client => mapping(uint64 index => mapping(address responder => uint64)))) responseCount;
    }

    // keccak256(abi.encode(uint256(keccak256("agentmarket.storage.Reputation")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant STORAGE_LOCATION = 0x09b5ba185c56a73efc726a4196f88cde3ff30268ce11174b7a38b782459bea00;

    /// @notice Implementation version.
    string public constant VERSION = "1.0.0";
    /// @notice Role of the protocol contracts that record settled interactions.
    bytes32 public constant REPORTER_ROLE = keccak256("REPORTER_ROLE");
    /// @notice The rating mean used while an agent has no rating.
    uint256 public constant NEUTRAL_BPS = 5_000;

    uint256 private constant MAX_BPS = 10_000;
    uint256 private constant MAX_TAG_BYTES = 64;
    uint256 private constant MAX_ENDPOINT_BYTES = 512;
    uint256 private constant MAX_URI_BYTES = 2048;
    int256 private constant MAX_ABS_VALUE = 1e38;
    uint256 private constant PACKED_TAG_BYTES = 30;
    uint8 private constant LONG_TAGS = 0xff;
    uint8 private constant MAX_DECIMALS = 18;

    // ------------------------------------------------------------------ initializer

    /// @notice Initialises the proxy over `registry_`; `admin` receives every administrative role.
    function initialize(address admin, address registry_) external initializer {
        __ProtocolBase_init(admin);
        _requireNonZero(registry_);
        _getStorage().registry = IAgentRegistry(registry_);
    }

    // ------------------------------------------------------------------ reporters

    /// @inheritdoc IReputation
    function recordTask(
        uint256 clientId,
        uint256 providerId,
        TaskOutcome outcome,
        address token,
        uint256 amount
    ) external onlyRole(REPORTER_ROLE) {
        (address clientOwner, address providerOwner) = _owners(clientId, providerId);
        bool selfDealing = clientOwner == providerOwner;
        emit TaskRecorded(clientId, providerId, outcome, token, amount, selfDealing);
        if (selfDealing) return;

        ReputationStorage storage $ = _getStorage();
        AgentRecord storage c = $.records[clientId];
        AgentRecord storage p = $.records[providerId];
        uint32 nowTs = uint32(block.timestamp);
        c.tasksAsClient += 1;
        c.lastActivity = nowTs;
        p.lastActivity = nowTs;
        if (outcome == TaskOutcome.Completed) p.tasksCompleted += 1;
        else if (outcome == TaskOutcome.AutoCompleted) p.tasksAutoCompleted += 1;
        else if (outcome == TaskOutcome.Refunded) p.tasksRefunded += 1;
        else if (outcome == TaskOutcome.DisputeProviderWon)
            (p.disputesWon, c.disputesLost) = (p.disputesWon + 1, c.disputesLost + 1);
        else if (outcome == TaskOutcome.DisputeClientWon)
            (c.disputesWon, p.disputesLost) = (c.disputesWon + 1, p.disputesLost + 1);
        else (c.disputesSplit, p.disputesSplit) = (c.disputesSplit + 1, p.disputesSplit + 1);
        if (amount != 0) {
            $.volume[clientId][token] += amount;
            $.volume[providerId][token] += amount;
        }
        _grantRights($, providerId, clientOwner, 1, amount);
        _grantRights($, clientId, providerOwner, 1, amount);
    }

    /// @inheritdoc IReputation
    function recordCalls(
        uint256 payerId,
        uint256 providerId,
        address token,
        uint256 calls,
        uint256 amount,
        uint256 settlements
    ) external onlyRole(REPORTER_ROLE) {
        if (calls == 0 || amount == 0 || settlements == 0) revert ReputationZeroAmount();
        (address payerOwner, address providerOwner) = _owners(payerId, providerId);
        bool selfDealing = payerOwner == providerOwner;
        emit CallsRecorded(payerId, providerId, token, calls, amount, settlements, selfDealing);
        if (selfDealing) return;

        ReputationStorage storage $ = _getStorage();
        AgentRecord storage p = $.records[providerId];
        uint32 nowTs = uint32(block.timestamp);
        // Saturates instead of reverting: recording must never block a payout.
        p.callsServed = uint64(_saturatingAdd(p.callsServed, calls, type(uint64).max));
        p.settlementsServed = uint32(_saturatingAdd(p.settlementsServed, settlements, type(uint32).max));
        p.lastActivity = nowTs;
        $.records[payerId].lastActivity = nowTs;
        $.volume[payerId][token] += amount;
        $.volume[providerId][token] += amount;
        _grantRights($, providerId, payerOwner, settlements, amount);
    }

    /// @inheritdoc IReputation
    function recordVote(uint256 evaluatorId, bool coherent) external onlyRole(REPORTER_ROLE) {
        AgentRecord storage r = _getStorage().records[evaluatorId];
        if (coherent) r.votesCoherent += 1;
        else r.votesIncoherent += 1;
        r.lastActivity = uint32(block.timestamp);
        emit VoteRecorded(evaluatorId, coherent);
    }

    // ------------------------------------------------------------------ ERC-8004 feedback

    /// @inheritdoc IReputation
    function giveFeedback(
        uint256 agentId,
        int128 value,
        uint8 valueDecimals,
        string calldata tag1,
        string calldata tag2,
        string calldata endpoint,
        string calldata feedbackURI,
        bytes32 feedbackHash
    ) external {
        if (valueDecimals > MAX_DECIMALS || value > MAX_ABS_VALUE || value < -MAX_ABS_VALUE) {
            revert ReputationBadValue(value, valueDecimals);
        }
        _checkLength(bytes(tag1).length, MAX_TAG_BYTES);
        _checkLength(bytes(tag2).length, MAX_TAG_BYTES);
        _checkLength(bytes(endpoint).length, MAX_ENDPOINT_BYTES);
        _checkLength(bytes(feedbackURI).length, MAX_URI_BYTES);

        // No registry call is needed: rights exist only for agents that exist, and never for
        // the rated agent's own owner at settlement (self-dealing grants none).
        ReputationStorage storage $ = _getStorage();
        Rater storage r = $.raters[agentId][msg.sender];
        Rater memory rm = r;
        if (rm.rights == 0) revert ReputationNoFeedbackRight(agentId, msg.sender);
        // The rating's weight is the mean weight of the unused rights; the last takes the rest.
        uint128 weight = rm.weight / rm.rights;
        uint64 index = rm.lastIndex + 1;
        if (index == 1) $.clients[agentId].push(msg.sender);
        r.rights = rm.rights - 1;
        r.lastIndex = index;
        r.weight = rm.weight - weight;

        Feedback storage f = $.feedback[agentId][msg.sender][index];
        f.value = value;
        f.valueDecimals = valueDecimals;
        f.weight = uint96(weight); // rights are granted with weights below 2^96
        if (bytes(tag1).length + bytes(tag2).length <= PACKED_TAG_BYTES) {
            if (bytes(tag1).length + bytes(tag2).length != 0) f.tags = _packTags(tag1, tag2);
        } else {
            f.tags = bytes32(bytes1(LONG_TAGS));
            $.longTags[agentId][msg.sender][index] = Tags(tag1, tag2);
        }

        AgentRecord storage rec = $.records[agentId];
        rec.ratingCount += 1;
        rec.ratingWeight += uint104(weight);
        rec.ratingWeightedBps += uint120(weight * _ratingBps(value, valueDecimals));

        emit NewFeedback(
            agentId,
            msg.sender,
            index,
            value,
            valueDecimals,
            tag1,
            tag1,
            tag2,
            endpoint,
            feedbackURI,
            feedbackHash
        );
    }

    /// @inheritdoc IReputation
    function revokeFeedback(uint256 agentId, uint64 feedbackIndex) external {
        ReputationStorage storage $ = _getStorage();
        Feedback storage f = _feedbackAt($, agentId, msg.sender, feedbackIndex);
        if (f.isRevoked) revert ReputationAlreadyRevoked(agentId, msg.sender, feedbackIndex);
        f.isRevoked = true;
        AgentRecord storage rec = $.records[agentId];
        uint256 weight = f.weight;
        rec.ratingCount -= 1;
        rec.ratingWeight -= uint104(weight);
        rec.ratingWeightedBps -= uint120(weight * _ratingBps(f.value, f.valueDecimals));
        emit FeedbackRevoked(agentId, msg.sender, feedbackIndex);
    }

    /// @inheritdoc IReputation
    function appendResponse(
        uint256 agentId,
        address clientAddress,
        uint64 feedbackIndex,
        string calldata responseURI,
        bytes32 responseHash
    ) external {
        if (bytes(responseURI).length == 0) revert ReputationEmptyInput();
        _checkLength(bytes(responseURI).length, MAX_URI_BYTES);
        ReputationStorage storage $ = _getStorage();
        _feedbackAt($, agentId, clientAddress, feedbackIndex);
        mapping(address => uint64) storage counts = $.responseCount[agentId][clientAddress][feedbackIndex];
        if (counts[msg.sender] == 0) $.responders[agentId][clientAddress][feedbackIndex].push(msg.sender);
        counts[msg.sender] += 1;
        emit ResponseAppended(agentId, clientAddress, feedbackIndex, msg.sender, responseURI, responseHash);
    }

    // ------------------------------------------------------------------ ERC-8004 views

    /// @inheritdoc IReputation
    function getSummary(
        uint256 agentId,
        address[] calldata clientAddresses,
        string calldata tag1,
        string calldata tag2
    ) external view returns (uint64 count, int128 summaryValue, uint8 summaryValueDecimals) {
        if (clientAddresses.length == 0) revert ReputationClientsRequired();
        ReputationStorage storage $ = _getStorage();
        (bytes32 h1, bytes32 h2) = (_tagFilter(tag1), _tagFilter(tag2));
        int256 wadSum;
        uint64[19] memory decimalsSeen;
        for (uint256 i; i < clientAddresses.length; ++i) {
            address client = clientAddresses[i];
            uint64 last = $.raters[agentId][client].lastIndex;
            for (uint64 j = 1; j <= last; ++j) {
                Feedback storage f = $.feedback[agentId][client][j];
                if (f.isRevoked || !_matches($, agentId, client, j, h1, h2)) continue;
                wadSum += int256(f.value) * int256(10 ** (MAX_DECIMALS - f.valueDecimals));
                ++decimalsSeen[f.valueDecimals];
                ++count;
            }
        }
        if (count == 0) return (0, 0, 0);
        for (uint8 d = 1; d <= MAX_DECIMALS; ++d) {
            if (decimalsSeen[d] > decimalsSeen[summaryValueDecimals]) summaryValueDecimals = d;
        }
        // |mean| <= 1e38 * 1e18, so in 0 decimals it is within the values' bound of 1e38, but not
        // necessarily in more: give up decimals (truncating, as the division does) until it is.
        int256 mean = wadSum / int256(uint256(count)) / int256(10 ** (MAX_DECIMALS - summaryValueDecimals));
        while (mean > MAX_ABS_VALUE || mean < -MAX_ABS_VALUE) {
            mean /= 10;
            --summaryValueDecimals;
        }
        summaryValue = int128(mean);
    }

    /// @inheritdoc IReputation
    function readFeedback(
        uint256 agentId,
        address clientAddress,
        uint64 feedbackIndex
    )
        external
        view
        returns (int128 value, uint8 valueDecimals, string memory tag1, string memory tag2, bool isRevoked)
    {
        ReputationStorage storage $ = _getStorage();
        Feedback storage f = _feedbackAt($, agentId, clientAddress, feedbackIndex);
        (tag1, tag2) = _tagsOf($, agentId, clientAddress, feedbackIndex);
        return (f.value, f.valueDecimals, tag1, tag2, f.isRevoked);
    }

    /// @inheritdoc IReputation
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
        )
    {
        ReputationStorage storage $ = _getStorage();
        address[] memory list = clientAddresses;
        if (list.length == 0) list = $.clients[agentId];
        (bytes32 h1, bytes32 h2) = (_tagFilter(tag1), _tagFilter(tag2));
        uint256 total;
        for (uint256 i; i < list.length; ++i) total += $.raters[agentId][list[i]].lastIndex;
        clients = new address[](total);
        feedbackIndexes = new uint64[](total);
        values = new int128[](total);
        valueDecimals = new uint8[](total);
        tag1s = new string[](total);
        tag2s = new string[](total);
        revokedStatuses = new bool[](total);
        uint256 n;
        for (uint256 i; i < list.length; ++i) {
            uint64 last = $.raters[agentId][list[i]].lastIndex;
            for (uint64 j = 1; j <= last; ++j) {
                Feedback storage f = $.feedback[agentId][list[i]][j];
                if ((f.isRevoked && !includeRevoked) || !_matches($, agentId, list[i], j, h1, h2)) continue;
                (clients[n], feedbackIndexes[n], values[n], valueDecimals[n]) = (list[i], j, f.value, f.valueDecimals);
                (tag1s[n], tag2s[n]) = _tagsOf($, agentId, list[i], j);
                revokedStatuses[n] = f.isRevoked;
                ++n;
            }
        }
        // Trim the arrays to the matches.
        assembly ("memory-safe") {
            mstore(clients, n)
            mstore(feedbackIndexes, n)
            mstore(values, n)
            mstore(valueDecimals, n)
            mstore(tag1s, n)
            mstore(tag2s, n)
            mstore(revokedStatuses, n)
        }
    }

    /// @inheritdoc IReputation
    function getClients(uint256 agentId) external view returns (address[] memory) {
        return _getStorage().clients[agentId];
    }

    /// @inheritdoc IReputation
    function getLastIndex(uint256 agentId, address clientAddress) external view returns (uint64) {
        return _getStorage().raters[agentId][clientAddress].lastIndex;
    }

    /// @inheritdoc IReputation
    function getResponseCount(
        uint256 agentId,
        address clientAddress,
        uint64 feedbackIndex,
        address[] calldata responders
    ) external view returns (uint64 count) {
        ReputationStorage storage $ = _getStorage();
        if (clientAddress == address(0)) {
            address[] storage all = $.clients[agentId];
            for (uint256 i; i < all.length; ++i) count += _countClient($, agentId, all[i], responders);
        } else if (feedbackIndex == 0) {
            count = _countClient($, agentId, clientAddress, responders);
        } else {
            count = _countResponses($, agentId, clientAddress, feedbackIndex, responders);
        }
    }

    /// @inheritdoc IReputation
    function getIdentityRegistry() external view returns (address) {
        return address(_getStorage().registry);
    }

    /// @inheritdoc IReputation
    function getVersion() external pure returns (string memory) {
        return VERSION;
    }

    // ------------------------------------------------------------------ aggregates

    /// @inheritdoc IReputation
    function score(uint256 agentId) external view returns (uint256) {
        AgentRecord storage r = _getStorage().records[agentId];
        uint256 mean = r.ratingWeight == 0 ? NEUTRAL_BPS : uint256(r.ratingWeightedBps) / r.ratingWeight;
        uint256 split = r.disputesSplit;
        uint256 good = 2 * (uint256(r.tasksCompleted) + r.tasksAutoCompleted + r.disputesWon) + split;
        uint256 bad = 2 * uint256(r.tasksRefunded) + 4 * uint256(r.disputesLost) + split;
        return (mean * (good + 2)) / (good + bad + 2);
    }

    /// @inheritdoc IReputation
    function getRecord(uint256 agentId) external view returns (AgentRecord memory) {
        return _getStorage().records[agentId];
    }

    /// @inheritdoc IReputation
    function getVolume(uint256 agentId, address token) external view returns (uint256) {
        return _getStorage().volume[agentId][token];
    }

    /// @inheritdoc IReputation
    function feedbackRights(uint256 agentId, address rater) external view returns (uint64 count, uint256 weight) {
        Rater storage r = _getStorage().raters[agentId][rater];
        return (r.rights, r.weight);
    }

    // ------------------------------------------------------------------ internal

    function _getStorage() private pure returns (ReputationStorage storage $) {
        assembly {
            $.slot := STORAGE_LOCATION
        }
    }

    function _owners(uint256 a, uint256 b) private view returns (address ownerA, address ownerB) {
        if (a == b) revert ReputationSameAgent(a);
        IAgentRegistry registry = _getStorage().registry;
        ownerA = registry.ownerOfAgent(a);
        if (ownerA == address(0)) revert ReputationUnknownAgent(a);
        ownerB = registry.ownerOfAgent(b);
        if (ownerB == address(0)) revert ReputationUnknownAgent(b);
    }

    /// @dev `count` rights sharing `amount` as weight, capped at 2^96 - 1 so that each right's
    ///      mean weight (what a rating weighs) fits the feedback's 96 bits.
    function _grantRights(
        ReputationStorage storage $,
        uint256 agentId,
        address rater,
        uint256 count,
        uint256 amount
    ) private {
        uint256 weight = amount < type(uint96).max ? amount : type(uint96).max;
        Rater storage r = $.raters[agentId][rater];
        r.rights = uint64(_saturatingAdd(r.rights, count, type(uint64).max));
        r.weight += uint128(weight);
        emit FeedbackRightGranted(agentId, rater, count, weight);
    }

    function _saturatingAdd(uint256 a, uint256 b, uint256 max) private pure returns (uint256) {
        return b >= max - a ? max : a + b;
    }

    function _feedbackAt(
        ReputationStorage storage $,
        uint256 agentId,
        address client,
        uint64 index
    ) private view returns (Feedback storage) {
        if (index == 0 || index > $.raters[agentId][client].lastIndex) {
            revert ReputationUnknownFeedback(agentId, client, index);
        }
        return $.feedback[agentId][client][index];
    }

    /// @dev A rating read as a percentage, in basis points, clamped to 0-10,000.
    function _ratingBps(int128 value, uint8 valueDecimals) private pure returns (uint256) {
        if (value <= 0) return 0;
        uint256 bps = (uint256(uint128(value)) * 100) / 10 ** valueDecimals;
        return bps > MAX_BPS ? MAX_BPS : bps;
    }

    function _tagFilter(string calldata tag) private pure returns (bytes32) {
        return bytes(tag).length == 0 ? bytes32(0) : keccak256(bytes(tag));
    }

    function _matches(
        ReputationStorage storage $,
        uint256 agentId,
        address client,
        uint64 index,
        bytes32 h1,
        bytes32 h2
    ) private view returns (bool) {
        if (h1 == 0 && h2 == 0) return true;
        (string memory tag1, string memory tag2) = _tagsOf($, agentId, client, index);
        return (h1 == 0 || keccak256(bytes(tag1)) == h1) && (h2 == 0 || keccak256(bytes(tag2)) == h2);
    }

    /// @dev [len1][len2][tag1][tag2], left-aligned; the caller checked len1 + len2 <= 30.
    function _packTags(string calldata tag1, string calldata tag2) private pure returns (bytes32) {
        return bytes32(abi.encodePacked(uint8(bytes(tag1).length), uint8(bytes(tag2).length), tag1, tag2));
    }

    function _tagsOf(
        ReputationStorage storage $,
        uint256 agentId,
        address client,
        uint64 index
    ) private view returns (string memory tag1, string memory tag2) {
        bytes32 packed = $.feedback[agentId][client][index].tags;
        uint8 len1 = uint8(packed[0]);
        if (len1 == LONG_TAGS) {
            Tags storage t = $.longTags[agentId][client][index];
            return (t.tag1, t.tag2);
        }
        uint8 len2 = uint8(packed[1]);
        bytes memory b1 = new bytes(len1);
        bytes memory b2 = new bytes(len2);
        for (uint256 i; i < len1; ++i) b1[i] = packed[2 + i];
        for (uint256 i; i < len2; ++i) b2[i] = packed[2 + len1 + i];
        return (string(b1), string(b2));
    }

    function _countClient(
        ReputationStorage storage $,
        uint256 agentId,
        address client,
        address[] calldata responders
    ) private view returns (uint64 count) {
        uint64 last = $.raters[agentId][client].lastIndex;
        for (uint64 j = 1; j <= last; ++j) count += _countResponses($, agentId, client, j, responders);
    }

    function _countResponses(
        ReputationStorage storage $,
        uint256 agentId,
        address client,
        uint64 index,
        address[] calldata responders
    ) private view returns (uint64 count) {
        mapping(address => uint64) storage counts = $.responseCount[agentId][client][index];
        if (responders.length == 0) {
            address[] storage all = $.responders[agentId][client][index];
            for (uint256 k; k < all.length; ++k) count += counts[all[k]];
        } else {
            for (uint256 k; k < responders.length; ++k) count += counts[responders[k]];
        }
    }

    function _checkLength(uint256 length, uint256 max) private pure {
        if (length > max) revert ReputationInputTooLong(length, max);
    }
}
