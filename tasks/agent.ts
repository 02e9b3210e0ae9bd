// agent:* — register and manage agents: identity, wallet, operators and services.
import { ZeroAddress } from "ethers";
import { task, types } from "hardhat/config";
import {
  type CommonArgs,
  type Context,
  capabilityLabel,
  chainNow,
  confirm,
  describeToken,
  findEvent,
  formatAmount,
  formatBps,
  formatPeriod,
  formatTimestamp,
  getContext,
  metadataText,
  output,
  parseAmount,
  parseCapability,
  parseIds,
  parseMetadata,
  printFields,
  printTable,
  resolveAccount,
  resolveSigner,
  resolveToken,
  signAgentWallet,
  structToObject,
  withCommonParams,
} from "./lib/context";
import { PlainError, plainly, withPlainErrors } from "./lib/errors";

const MODES = ["ppu", "task"] as const; // IAgentRegistry.PaymentMode: PayPerUse = 0, QuotedTask = 1
const MAX_UINT80 = (1n << 80n) - 1n;

// ------------------------------------------------------------------ agent:register

withCommonParams(
  task("agent:register", "Registers a new agent, owned by the signer")
    .addParam("uri", "URI of the agent's registration file", undefined, types.string)
    .addOptionalParam(
      "metadata",
      "On-chain metadata: key=value,... (0x-hex values are raw bytes)",
      undefined,
      types.string,
    ),
).setAction(
  withPlainErrors(async (args: CommonArgs & { uri: string; metadata?: string }, hre) => {
    const ctx = await getContext(hre, args.from);
    const metadata = parseMetadata(args.metadata);
    const receipt = await confirm(
      metadata.length > 0
        ? ctx.registry["register(string,(string,bytes)[])"](args.uri, metadata)
        : ctx.registry["register(string)"](args.uri),
    );
    const agentId: bigint = findEvent(ctx.registry.interface, receipt, "Registered").agentId;
    const data = {
      agentId,
      owner: ctx.signer.address,
      uri: args.uri,
      metadata: Object.fromEntries(metadata.map((m) => [m.metadataKey, metadataText(m.metadataValue)])),
      tx: receipt.hash,
    };
    return output(hre, args.json, data, (d) => console.log(`Registered agent #${d.agentId}, owned by ${d.owner}.`));
  }),
);

// ------------------------------------------------------------------ agent:show

withCommonParams(
  task("agent:show", "An agent: owner, wallet, URI, metadata, services and reputation")
    .addParam("id", "Agent id", undefined, types.bigint)
    .addOptionalParam("keys", "Metadata keys to show, comma-separated", undefined, types.string),
).setAction(
  withPlainErrors(async (args: CommonArgs & { id: bigint; keys?: string }, hre) => {
    const ctx = await getContext(hre, args.from);
    const { registry, reputation } = ctx;
    const owner = await registry.ownerOf(args.id); // reverts for an unknown agent
    const keys = (args.keys ?? "").split(",").filter((k) => k.trim() !== "");
    const metadata: Record<string, string> = {};
    for (const key of keys) metadata[key.trim()] = metadataText(await registry.getMetadata(args.id, key.trim()));
    const explicitWallet = await registry.getMetadata(args.id, "agentWallet");
    const scoreBps = await reputation.score(args.id);
    const data = {
      agentId: args.id,
      owner,
      wallet: await registry.getAgentWallet(args.id),
      walletIsOwner: explicitWallet === "0x",
      uri: await registry.tokenURI(args.id),
      paused: !(await registry.isAgentActive(args.id)),
      metadata,
      services: await serviceRows(ctx, await registry.getAgentServices(args.id)),
      reputation: { scoreBps, score: formatBps(scoreBps), record: structToObject(await reputation.getRecord(args.id)) },
    };
    return output(hre, args.json, data, (d) => {
      printFields(
        {
          agent: `#${d.agentId}`,
          owner: d.owner,
          wallet: d.walletIsOwner ? `${d.wallet} (the owner: no wallet set)` : d.wallet,
          uri: d.uri,
          paused: d.paused,
          ...Object.fromEntries(Object.entries(d.metadata).map(([k, v]) => [`metadata ${k}`, v || "(empty)"])),
          score: d.reputation.score,
          record: recordLine(d.reputation.record),
        },
        { title: `Agent #${d.agentId}` },
      );
      printTable(d.services, { title: "Services" });
    });
  }),
);

/** The record in one line (reputation:show has the detail). */
function recordLine(r: Record<string, bigint>): string {
  const tasks = r.tasksCompleted + r.tasksAutoCompleted;
  const disputes = `${r.disputesWon} won, ${r.disputesLost} lost, ${r.disputesSplit} split`;
  return `${tasks} tasks completed, ${r.tasksRefunded} refunded, disputes ${disputes}, ${r.ratingCount} ratings`;
}

/** Services as table rows with formatted prices (exported for the demo's catalog). */
export async function serviceRows(ctx: Context, ids: bigint[]) {
  const rows = [];
  for (const serviceId of ids) {
    const s = await ctx.registry.getService(serviceId);
    const token = await describeToken(ctx, s.token);
    rows.push({
      service: serviceId,
      agent: s.agentId,
      capability: capabilityLabel(s.capability),
      mode: s.mode === 0n ? "pay-per-use" : "quoted task",
      token: token.symbol,
      unitPrice: s.mode === 0n ? formatAmount(s.unitPrice, token.decimals) : "quoted",
      active: s.active,
      endpoint: s.endpoint,
    });
  }
  return rows;
}

// ------------------------------------------------------------------ agent:update

withCommonParams(
  task("agent:update", "Changes an agent's URI, metadata and/or paused flag (owner or approved only)")
    .addParam("id", "Agent id", undefined, types.bigint)
    .addOptionalParam("uri", "New URI", undefined, types.string)
    .addOptionalParam("metadata", "key=value,... to set (an empty value clears the key)", undefined, types.string)
    .addOptionalParam("paused", "true pauses the agent (no new work), false resumes it", undefined, types.boolean),
).setAction(
  withPlainErrors(async (args: CommonArgs & { id: bigint; uri?: string; metadata?: string; paused?: boolean }, hre) => {
    if (args.uri === undefined && args.metadata === undefined && args.paused === undefined) {
      throw new PlainError("Nothing to update: give --uri, --metadata and/or --paused.");
    }
    const { registry } = await getContext(hre, args.from);
    const changed: string[] = [];
    if (args.uri !== undefined) {
      await confirm(registry.setAgentURI(args.id, args.uri));
      changed.push(`URI is now ${args.uri}`);
    }
    for (const m of parseMetadata(args.metadata)) {
      await confirm(registry.setMetadata(args.id, m.metadataKey, m.metadataValue));
      changed.push(`metadata ${m.metadataKey} = ${metadataText(m.metadataValue) || "(cleared)"}`);
    }
    if (args.paused !== undefined) {
      await confirm(registry.setAgentPaused(args.id, args.paused));
      changed.push(args.paused ? "paused" : "resumed");
    }
    const data = { agentId: args.id, changed };
    return output(hre, args.json, data, (d) => console.log(`Agent #${d.agentId}: ${d.changed.join("; ")}.`));
  }),
);

// ------------------------------------------------------------------ agent:wallet

withCommonParams(
  task("agent:wallet", "Sets an agent wallet proven by its EIP-712 signature, or unsets it")
    .addParam("id", "Agent id", undefined, types.bigint)
    .addOptionalParam(
      "walletKey",
      "Local account (index or address) that becomes the wallet and signs",
      undefined,
      types.string,
    )
    .addFlag("unset", "Clear the wallet: money flows to and from the owner again"),
).setAction(
  withPlainErrors(async (args: CommonArgs & { id: bigint; walletKey?: string; unset: boolean }, hre) => {
    if (args.unset === (args.walletKey !== undefined)) throw new PlainError("Give either --wallet-key or --unset.");
    const { registry } = await getContext(hre, args.from);
    if (args.unset) {
      await confirm(registry.unsetAgentWallet(args.id));
    } else {
      const wallet = await resolveSigner(hre, args.walletKey);
      const owner = await registry.ownerOf(args.id);
      const deadline = (await chainNow(hre)) + 240n;
      const signature = await signAgentWallet(registry, wallet, args.id, owner, deadline);
      await confirm(registry.setAgentWallet(args.id, wallet.address, deadline, signature));
    }
    const data = { agentId: args.id, wallet: await registry.getAgentWallet(args.id), unset: args.unset };
    return output(hre, args.json, data, (d) =>
      console.log(
        d.unset
          ? `Agent #${d.agentId} has no wallet: money flows to and from its owner ${d.wallet}.`
          : `Agent #${d.agentId}'s wallet is now ${d.wallet} (proven by its EIP-712 signature).`,
      ),
    );
  }),
);

// ------------------------------------------------------------------ agent:operator

interface OperatorArgs extends CommonArgs {
  action: string;
  id: bigint;
  operator: string;
  expiryHours: number;
  minScoreBps: number;
  allowListOnly: boolean;
  token?: string;
  perTx?: string;
  periodCap?: string;
  periodSeconds: number;
  rolling: boolean;
  counterparties?: string;
  remove: boolean;
}

withCommonParams(
  task("agent:operator", "Authorises, limits, allow-lists or revokes an operator (hot key) of an agent")
    .addPositionalParam("action", "set | limit | allow | revoke", undefined, types.string)
    .addParam("id", "Agent id", undefined, types.bigint)
    .addParam("operator", "Operator address, or the index of a local account", undefined, types.string)
    .addOptionalParam("expiryHours", "set: hours from now until the operator expires", 24, types.float)
    .addOptionalParam("minScoreBps", "set: minimum counterparty score in bps (0 = any)", 0, types.int)
    .addFlag("allowListOnly", "set: only allow-listed counterparties may be paid")
    .addOptionalParam("token", "limit: token address, or USDT / USDG / OKB", undefined, types.string)
    .addOptionalParam("perTx", "limit: largest single spend, in token units (e.g. 40)", undefined, types.string)
    .addOptionalParam(
      "periodCap",
      "limit: largest total per period, in token units (0 forbids)",
      undefined,
      types.string,
    )
    .addOptionalParam("periodSeconds", "limit: period length in seconds", 86_400, types.int)
    .addFlag("rolling", "limit: the cap holds over every sliding window (else fixed windows)")
    .addOptionalParam("counterparties", "allow: agent ids, comma-separated", undefined, types.string)
    .addFlag("remove", "allow: remove the ids instead of adding them"),
).setAction(
  withPlainErrors(async (args: OperatorArgs, hre) => {
    const ctx = await getContext(hre, args.from);
    const { registry } = ctx;
    const operator = await resolveAccount(hre, args.operator);
    let token;
    let counterparties: bigint[] = [];
    switch (args.action) {
      case "set": {
        const expiry = (await chainNow(hre)) + BigInt(Math.round(args.expiryHours * 3600));
        const terms = { expiry, minScoreBps: args.minScoreBps, allowListOnly: args.allowListOnly };
        await confirm(registry.setOperator(args.id, operator, terms));
        break;
      }
      case "limit": {
        if (!args.token || args.perTx === undefined || args.periodCap === undefined) {
          throw new PlainError("limit needs --token, --per-tx and --period-cap.");
        }
        token = await resolveToken(ctx, args.token);
        const limit = {
          perTxCap: parseAmount(args.perTx, token.decimals),
          periodCap: parseAmount(args.periodCap, token.decimals),
          period: args.periodSeconds,
          rolling: args.rolling,
        };
        const opts = { decimals: token.decimals, symbol: token.symbol };
        await plainly(() => confirm(registry.setTokenLimit(args.id, operator, token!.address, limit)), opts);
        break;
      }
      case "allow": {
        if (!args.counterparties) throw new PlainError("allow needs --counterparties (agent ids, e.g. 2,3).");
        counterparties = parseIds(args.counterparties);
        await confirm(registry.setCounterparties(args.id, operator, counterparties, !args.remove));
        break;
      }
      case "revoke":
        await confirm(registry.revokeOperator(args.id, operator));
        break;
      default:
        throw new PlainError(`Unknown action "${args.action}": use set, limit, allow or revoke.`);
    }
    const view = await registry.getOperator(args.id, operator);
    const data = {
      agentId: args.id,
      operator,
      action: args.action,
      active: view.active,
      expiry: view.expiry,
      minScoreBps: view.minScoreBps,
      allowListOnly: view.allowListOnly,
      limit: token && (await limitView(ctx, args.id, operator, token.address)),
      counterparties: await Promise.all(
        counterparties.map(async (id) => ({
          agentId: id,
          allowed: await registry.isCounterpartyAllowed(args.id, operator, id),
        })),
      ),
    };
    return output(hre, args.json, data, (d) => {
      printFields(
        {
          agent: `#${d.agentId}`,
          operator: d.operator,
          active: d.active,
          expiry: formatTimestamp(d.expiry),
          "min counterparty score": d.minScoreBps === 0n ? "any" : formatBps(d.minScoreBps),
          "allow-list only": d.allowListOnly,
          ...(d.limit && {
            token: d.limit.symbol,
            "per-tx cap": d.limit.perTxCapText,
            "period cap": d.limit.periodCapText,
            window: d.limit.window,
            "available now": d.limit.availableText,
          }),
          ...Object.fromEntries(
            d.counterparties.map((c) => [`counterparty #${c.agentId}`, c.allowed ? "allowed" : "not allowed"]),
          ),
        },
        { title: `Operator ${args.action}: done` },
      );
    });
  }),
);

/** An operator's limit for one token, raw and formatted (exported for the demo). */
export async function limitView(ctx: Context, agentId: bigint, operator: string, tokenAddress: string) {
  const token = await describeToken(ctx, tokenAddress);
  const limit = await ctx.registry.getTokenLimit(agentId, operator, tokenAddress);
  const available = await ctx.registry.availableToSpend(agentId, operator, tokenAddress);
  const none = limit.periodCap === 0n; // never set, forbidden, or voided by a revocation
  return {
    token: token.address,
    symbol: token.symbol,
    perTxCap: limit.perTxCap,
    periodCap: limit.periodCap,
    period: limit.period,
    rolling: limit.rolling,
    available,
    perTxCapText: none ? "none" : formatAmount(limit.perTxCap, token.decimals),
    periodCapText: none ? "none" : formatAmount(limit.periodCap, token.decimals),
    window: none ? "-" : `${formatPeriod(limit.period)} ${limit.rolling ? "rolling" : "fixed"}`,
    availableText: formatAmount(available, token.decimals),
  };
}

// ------------------------------------------------------------------ agent:service

interface ServiceArgs extends CommonArgs {
  action: string;
  id?: bigint;
  service?: bigint;
  capability?: string;
  mode: string;
  token?: string;
  unitPrice?: string;
  price?: string;
  active?: boolean;
  endpoint?: string;
}

withCommonParams(
  task("agent:service", "Lists a service in the catalog, or updates one")
    .addPositionalParam("action", "list | update", undefined, types.string)
    .addOptionalParam("id", "list: agent id", undefined, types.bigint)
    .addOptionalParam(
      "capability",
      "list: capability, a string (hashed with keccak256) or 0x-hex",
      undefined,
      types.string,
    )
    .addOptionalParam("mode", "list: ppu (pay-per-use) or task (quoted task)", "ppu", types.string)
    .addOptionalParam("token", "Payment token address, or USDT / USDG / OKB", undefined, types.string)
    .addOptionalParam("unitPrice", "list: price of one unit, in token units (e.g. 0.02)", undefined, types.string)
    .addOptionalParam("endpoint", "Where the service is called (URL, MCP or A2A endpoint)", undefined, types.string)
    .addOptionalParam("service", "update: service id", undefined, types.bigint)
    .addOptionalParam("price", "update: new unit price, in token units", undefined, types.string)
    .addOptionalParam("active", "update: true takes business, false stops", undefined, types.boolean),
).setAction(
  withPlainErrors(async (args: ServiceArgs, hre) => {
    const ctx = await getContext(hre, args.from);
    let serviceId: bigint;
    if (args.action === "list") {
      if (args.id === undefined || !args.capability || !args.endpoint) {
        throw new PlainError("list needs --id, --capability and --endpoint.");
      }
      const mode = MODES.indexOf(args.mode as (typeof MODES)[number]);
      if (mode < 0) throw new PlainError(`Unknown mode "${args.mode}": use ppu or task.`);
      const token = args.token ? await resolveToken(ctx, args.token) : undefined;
      if (args.unitPrice !== undefined && !token) throw new PlainError("A --unit-price needs a --token.");
      const price = token && args.unitPrice !== undefined ? toPrice(args.unitPrice, token.decimals) : 0n;
      const tx = ctx.registry.listService(
        args.id,
        parseCapability(args.capability),
        mode,
        token?.address ?? ZeroAddress,
        price,
        args.endpoint,
      );
      serviceId = findEvent(ctx.registry.interface, await confirm(tx), "ServiceListed").serviceId;
    } else if (args.action === "update") {
      if (args.service === undefined) throw new PlainError("update needs --service.");
      serviceId = args.service;
      const current = await ctx.registry.getService(serviceId);
      const token = args.token ? await resolveToken(ctx, args.token) : await describeToken(ctx, current.token);
      const price = args.price !== undefined ? toPrice(args.price, token.decimals) : current.unitPrice;
      const active = args.active ?? current.active;
      await confirm(
        ctx.registry.updateService(serviceId, token.address, price, active, args.endpoint ?? current.endpoint),
      );
    } else {
      throw new PlainError(`Unknown action "${args.action}": use list or update.`);
    }
    const [row] = await serviceRows(ctx, [serviceId]);
    return output(hre, args.json, row, (r) => printTable([r], { title: `Service #${r.service}` }));
  }),
);

function toPrice(value: string, decimals: number): bigint {
  const price = parseAmount(value, decimals);
  if (price > MAX_UINT80) throw new PlainError(`A unit price of ${value} is too large (it must fit in 80 bits).`);
  return price;
}
