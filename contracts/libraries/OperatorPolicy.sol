// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAgentRegistry} from "../interfaces/IAgentRegistry.sol";
import {IReputation} from "../interfaces/IReputation.sol";
import {SpendWindow} from "./SpendWindow.sol";

/// @title OperatorPolicy
/// @notice Operator keys and their spending policies, for {AgentRegistry}. An external library:
///         its code is deployed once and runs by `DELEGATECALL` in the registry's storage, which
///         keeps the registry far below the EIP-170 size limit. Events are the registry's own.
/// @dev Validity without loops: an operator is active while its `epoch` equals the agent's epoch
///      (which moves on every transfer of the agent), its `expiry` lies ahead (zero once revoked),
///      and its `gen` is non-zero. Re-authorising a revoked or stale operator starts a new `gen`,
///      which voids its old limits, spend windows and allow-list entries at once.
library OperatorPolicy {
    struct Operator {
        uint64 expiry; // zero once revoked
        uint32 epoch; // the agent epoch it was authorised in
        uint24 gen; // generation of its limits and allow-list entries
        uint16 minScoreBps;
        bool allowListOnly;
    }

    struct Limit {
        uint96 perTxCap;
        uint96 periodCap;
        uint32 period;
        bool rolling;
        uint24 gen; // valid only while equal to the operator's gen
    }

    /// @dev Lives inside the registry's ERC-7201 namespace.
    struct Policies {
        mapping(uint256 agentId => mapping(address operator => Operator)) operators;
        mapping(uint256 agentId => mapping(address operator => mapping(address token => Limit))) limits;
        mapping(uint256 agentId => mapping(address operator => mapping(address token => SpendWindow.Window))) windows;
        mapping(uint256 agentId => mapping(address operator => mapping(uint256 counterpartyId => uint24 gen))) allowList;
    }

    uint16 private constant MAX_BPS = 10_000;
    uint256 private constant MAX_BATCH = 32;

    // ------------------------------------------------------------------ changes

    /// @notice Authorises `operator` or changes its terms (see {IAgentRegistry-setOperator}).
    function setOperator(
        Policies storage p,
        uint256 agentId,
        uint32 epoch,
        address operator,
        IAgentRegistry.OperatorTerms calldata terms
    ) external {
        if (terms.expiry <= block.timestamp) revert IAgentRegistry.AgentRegistryBadExpiry(terms.expiry);
        if (terms.minScoreBps > MAX_BPS) revert IAgentRegistry.AgentRegistryBadScore(terms.minScoreBps);
        Operator storage op = p.operators[agentId][operator];
        if (op.gen == 0 || op.expiry == 0 || op.epoch != epoch) {
            op.gen += 1;
            op.epoch = epoch;
        }
        op.expiry = terms.expiry;
        op.minScoreBps = terms.minScoreBps;
        op.allowListOnly = terms.allowListOnly;
        emit IAgentRegistry.OperatorSet(agentId, operator, terms.expiry, terms.minScoreBps, terms.allowListOnly);
    }

    /// @notice Sets `operator`'s limit for `token` (see {IAgentRegistry-setTokenLimit}).
    function setTokenLimit(
        Policies storage p,
        uint256 agentId,
        uint32 epoch,
        address operator,
        address token,
        IAgentRegistry.TokenLimit calldata limit
    ) external {
        if (limit.perTxCap > limit.periodCap || (limit.periodCap != 0 && (limit.perTxCap == 0 || limit.period == 0)))
            revert IAgentRegistry.AgentRegistryBadLimit(limit.perTxCap, limit.periodCap, limit.period);
        Operator storage op = _requireActive(p, agentId, epoch, operator);
        Limit storage lim = p.limits[agentId][operator][token];
        bool current = lim.gen == op.gen;
        // The zero limit (forbidding the token) keeps the current period length, and with it the
        // spend window: forbidding and allowing the token again within one period must not give
        // the operator a fresh cap (security review AR-1).
        uint32 period = limit.periodCap == 0 && current ? lim.period : limit.period;
        // A fresh policy, or a new period length, starts with an empty spend window.
        if (!current || lim.period != period) delete p.windows[agentId][operator][token];
        p.limits[agentId][operator][token] = Limit(limit.perTxCap, limit.periodCap, period, limit.rolling, op.gen);
        emit IAgentRegistry.TokenLimitSet(
            agentId,
            operator,
            token,
            limit.perTxCap,
            limit.periodCap,
            period,
            limit.rolling
        );
    }

    /// @notice Edits `operator`'s counterparty allow-list (see {IAgentRegistry-setCounterparties}).
    function setCounterparties(
        Policies storage p,
        uint256 agentId,
        uint32 epoch,
        address operator,
        uint256[] calldata counterpartyIds,
        bool allowed
    ) external {
        if (counterpartyIds.length > MAX_BATCH) {
            revert IAgentRegistry.AgentRegistryBatchTooLarge(counterpartyIds.length, MAX_BATCH);
        }
        uint24 gen = allowed ? _requireActive(p, agentId, epoch, operator).gen : 0;
        mapping(uint256 => uint24) storage list = p.allowList[agentId][operator];
        for (uint256 i; i < counterpartyIds.length; ++i) {
            // Counterparty 0 ("no agent yet": bidding and auto-match tasks) is never allowed: it
            // would let the operator pay whichever provider is chosen later (security review AR-2).
            if (allowed && counterpartyIds[i] == 0) revert IAgentRegistry.AgentRegistryUnknownAgent(0);
            list[counterpartyIds[i]] = gen;
            emit IAgentRegistry.CounterpartyAllowed(agentId, operator, counterpartyIds[i], allowed);
        }
    }

    /// @notice Revokes `operator` at once.
    function revoke(Policies storage p, uint256 agentId, address operator) external {
        Operator storage op = p.operators[agentId][operator];
        if (op.expiry == 0) revert IAgentRegistry.AgentRegistryOperatorInactive(agentId, operator);
        op.expiry = 0;
        emit IAgentRegistry.OperatorRevoked(agentId, operator);
    }

    /// @notice Checks an operator's spend against its policy and debits it, or reverts with the
    ///         reason (see {IAgentRegistry-consumeSpend}).
    function consume(
        Policies storage p,
        uint256 agentId,
        uint32 epoch,
        address operator,
        address token,
        uint256 amount,
        uint256 counterpartyId,
        address reputation
    ) external {
        // `reputation` is zero when the counterparty does not exist (or is 0): its score is then 0.
        Operator storage op = p.operators[agentId][operator];
        if (!isActive(op, epoch)) revert IAgentRegistry.AgentRegistryNotAuthorized(agentId, operator);
        Limit memory lim = p.limits[agentId][operator][token];
        if (lim.gen != op.gen || lim.periodCap == 0) {
            revert IAgentRegistry.AgentRegistryTokenNotAllowed(agentId, operator, token);
        }
        if (amount > lim.perTxCap) revert IAgentRegistry.AgentRegistryPerTxCapExceeded(token, amount, lim.perTxCap);
        if (op.allowListOnly && p.allowList[agentId][operator][counterpartyId] != op.gen) {
            revert IAgentRegistry.AgentRegistryCounterpartyNotAllowed(counterpartyId);
        }
        uint256 minScore = op.minScoreBps;
        if (minScore != 0) {
            uint256 score = reputation == address(0) ? 0 : IReputation(reputation).score(counterpartyId);
            if (score < minScore) {
                revert IAgentRegistry.AgentRegistryCounterpartyScoreTooLow(counterpartyId, score, minScore);
            }
        }
        SpendWindow.Window storage w = p.windows[agentId][operator][token];
        uint256 left = SpendWindow.available(w, lim.period, lim.rolling, lim.periodCap);
        if (amount > left) revert IAgentRegistry.AgentRegistryPeriodCapExceeded(token, amount, left);
        SpendWindow.debit(w, lim.period, amount);
        emit IAgentRegistry.SpendConsumed(agentId, operator, token, amount, counterpartyId);
    }

    // ------------------------------------------------------------------ views

    /// @notice Whether `op` is active for an agent whose epoch is `epoch`.
    function isActive(Operator storage op, uint32 epoch) internal view returns (bool) {
        return op.gen != 0 && op.expiry > block.timestamp && op.epoch == epoch;
    }

    /// @notice Whether `op` holds a current authorisation (set, not revoked, same owner), expired or
    ///      not: renewing an expired operator keeps its policy.
    function isCurrent(Operator storage op, uint32 epoch) internal view returns (bool) {
        return op.gen != 0 && op.expiry != 0 && op.epoch == epoch;
    }

    /// @notice The limit of a current operator for `token`, or all zero.
    function limitOf(
        Policies storage p,
        uint256 agentId,
        uint32 epoch,
        address operator,
        address token
    ) internal view returns (IAgentRegistry.TokenLimit memory limit) {
        Operator storage op = p.operators[agentId][operator];
        Limit storage lim = p.limits[agentId][operator][token];
        if (isCurrent(op, epoch) && lim.gen == op.gen) {
            limit = IAgentRegistry.TokenLimit(lim.perTxCap, lim.periodCap, lim.period, lim.rolling);
        }
    }

    /// @notice What `operator` may spend of `token` now, within both caps.
    function available(
        Policies storage p,
        uint256 agentId,
        uint32 epoch,
        address operator,
        address token
    ) internal view returns (uint256) {
        Operator storage op = p.operators[agentId][operator];
        Limit storage lim = p.limits[agentId][operator][token];
        if (!isActive(op, epoch) || lim.gen != op.gen || lim.periodCap == 0) return 0;
        uint256 left = SpendWindow.available(
            p.windows[agentId][operator][token],
            lim.period,
            lim.rolling,
            lim.periodCap
        );
        return left < lim.perTxCap ? left : lim.perTxCap;
    }

    /// @notice Whether `counterpartyId` is on a current operator's allow-list.
    function isAllowed(
        Policies storage p,
        uint256 agentId,
        uint32 epoch,
        address operator,
        uint256 counterpartyId
    ) internal view returns (bool) {
        Operator storage op = p.operators[agentId][operator];
        return isCurrent(op, epoch) && p.allowList[agentId][operator][counterpartyId] == op.gen;
    }

    function _requireActive(
        Policies storage p,
        uint256 agentId,
        uint32 epoch,
        address operator
    ) private view returns (Operator storage op) {
        op = p.operators[agentId][operator];
        if (!isActive(op, epoch)) revert IAgentRegistry.AgentRegistryOperatorInactive(agentId, operator);
    }
}
