// Shared plumbing for the tasks: where the contracts are, who signs, and how values are shown.
// Never import `hardhat` (the runtime) here: hardhat.config.ts loads the tasks, so use `hre`.
import * as fs from "node:fs";
import * as path from "node:path";
import Table from "cli-table3";
import {
  ZeroAddress,
  formatUnits,
  getAddress,
  id as keccakId,
  isAddress,
  isError,
  isHexString,
  parseUnits,
} from "ethers";
import { types } from "hardhat/config";
import type { Interface, ContractTransactionReceipt, ContractTransactionResponse, Result } from "ethers";
import type { ConfigurableTaskDefinition, HardhatRuntimeEnvironment } from "hardhat/types";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { AgentRegistry, EvaluatorStaking, PayPerUse, Reputation, TaskEscrow } from "../../typechain-types";

export const TOKEN_SYMBOLS = ["USDT", "USDG", "OKB"] as const;
export type TokenSymbol = (typeof TOKEN_SYMBOLS)[number];

/** The protocol's addresses on one network. Tokens are the Mocks deployment, when there is one. */
export interface Addresses {
  registry: string;
  reputation: string;
  escrow: string;
  payPerUse: string;
  /** The Mocks module's test arbitrator, when deployed. */
  arbitrator?: string;
  /** The court (EvaluatorStaking proxy), when deployed (Market or Court module). */
  court?: string;
  /** The court's randomness source (ChainlinkVRFSource), when deployed. */
  vrfSource?: string;
  /** The Mocks module's VRF coordinator mock, when deployed. */
  vrfCoordinator?: string;
  tokens: Partial<Record<TokenSymbol, string>>;
}

export interface TokenInfo {
  address: string;
  symbol: string;
  decimals: number;
}

export interface Context {
  hre: HardhatRuntimeEnvironment;
  addresses: Addresses;
  /** The account that sends transactions (`--from`, default signer 0). */
  signer: HardhatEthersSigner;
  registry: AgentRegistry;
  reputation: Reputation;
  escrow: TaskEscrow;
  payPerUse: PayPerUse;
  /** The court, when the deployment has one (court tasks use {@link requireCourt}). */
  court?: EvaluatorStaking;
}

/** Options every task shares. */
export interface CommonArgs {
  from?: string;
  json: boolean;
}

/** Adds `--from` and `--json` to a task. */
export function withCommonParams(def: ConfigurableTaskDefinition): ConfigurableTaskDefinition {
  return def
    .addOptionalParam(
      "from",
      "Signer to act as: an index into the local accounts or an address",
      undefined,
      types.string,
    )
    .addFlag("json", "Print JSON instead of tables");
}

// ------------------------------------------------------------------ addresses

let hardhatCache: Addresses | undefined;

/** The deployment of the selected network: read from Ignition, or (in-process) deployed on first use. */
export async function getAddresses(hre: HardhatRuntimeEnvironment, opts: { fresh?: boolean } = {}): Promise<Addresses> {
  if (hre.network.name !== "hardhat") return readIgnitionDeployment(hre);
  if (!opts.fresh && hardhatCache && (await stillDeployed(hre, hardhatCache))) return hardhatCache;
  hardhatCache = await deployInProcess(hre);
  return hardhatCache;
}

function deploymentFile(hre: HardhatRuntimeEnvironment, chainId: bigint): string {
  const ignitionDir =
    (hre.config.paths as { ignition?: string }).ignition ?? path.join(hre.config.paths.root, "ignition");
  return path.join(ignitionDir, "deployments", `chain-${chainId}`, "deployed_addresses.json");
}

async function readIgnitionDeployment(hre: HardhatRuntimeEnvironment): Promise<Addresses> {
  const { chainId } = await hre.ethers.provider.getNetwork();
  const file = deploymentFile(hre, chainId);
  if (!fs.existsSync(file)) {
    throw new Error(
      `No Ignition deployment for chain ${chainId} (${path.relative(process.cwd(), file)} is missing). ` +
        `Deploy first: npx hardhat ignition deploy ignition/modules/System.ts --network ${hre.network.name}`,
    );
  }
  const deployed = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, string>;
  const registry = deployed["System#AgentRegistry"];
  const reputation = deployed["System#Reputation"];
  const escrow = deployed["System#TaskEscrow"];
  const payPerUse = deployed["System#PayPerUse"];
  if (!registry || !reputation || !escrow || !payPerUse) {
    throw new Error(
      `${file} lacks System#AgentRegistry, #Reputation, #TaskEscrow or #PayPerUse: deploy the System module first.`,
    );
  }
  const tokens: Addresses["tokens"] = {};
  for (const symbol of TOKEN_SYMBOLS) if (deployed[`Mocks#${symbol}`]) tokens[symbol] = deployed[`Mocks#${symbol}`];
  return {
    registry,
    reputation,
    escrow,
    payPerUse,
    arbitrator: deployed["Mocks#Arbitrator"],
    court: deployed["Market#EvaluatorStaking"] ?? deployed["Court#EvaluatorStaking"],
    vrfSource: deployed["Market#VRFSource"] ?? deployed["Court#VRFSource"],
    vrfCoordinator: deployed["Mocks#VRFCoordinator"],
    tokens,
  };
}

/** Tests revert snapshots: a cached deployment may have vanished, or another contract may sit there. */
async function stillDeployed(hre: HardhatRuntimeEnvironment, a: Addresses): Promise<boolean> {
  const all = [a.registry, a.reputation, a.escrow, a.payPerUse, ...Object.values(a.tokens)];
  for (const optional of [a.court, a.vrfSource, a.vrfCoordinator]) if (optional) all.push(optional);
  for (const address of all) if ((await hre.ethers.provider.getCode(address)) === "0x") return false;
  try {
    const { AgentRegistry__factory } = await import("../../typechain-types");
    return (await AgentRegistry__factory.connect(a.registry, hre.ethers.provider).reputation()) === a.reputation;
  } catch {
    return false;
  }
}

async function deployInProcess(hre: HardhatRuntimeEnvironment): Promise<Addresses> {
  const { default: MarketModule } = await import("../../ignition/modules/Market");
  const market = await hre.ignition.deploy(MarketModule, { displayUi: false });
  return {
    registry: await market.registry.getAddress(),
    reputation: await market.reputation.getAddress(),
    escrow: await market.escrow.getAddress(),
    payPerUse: await market.payPerUse.getAddress(),
    arbitrator: await market.arbitrator.getAddress(),
    court: await market.court.getAddress(),
    vrfSource: await market.vrfSource.getAddress(),
    vrfCoordinator: await market.vrfCoordinator.getAddress(),
    tokens: {
      USDT: await market.usdt.getAddress(),
      USDG: await market.usdg.getAddress(),
      OKB: await market.okb.getAddress(),
    },
  };
}

// ------------------------------------------------------------------ signers and contracts

/** A local signer by index ("2") or address; undefined means signer 0. */
export async function resolveSigner(hre: HardhatRuntimeEnvironment, ref?: string): Promise<HardhatEthersSigner> {
  const signers = await hre.ethers.getSigners();
  if (signers.length === 0) {
    throw new Error(`No local account on network ${hre.network.name}: set DEPLOYER_PRIVATE_KEY in .env.`);
  }
  if (ref === undefined || ref === "") return signers[0];
  if (/^\d+$/.test(ref)) {
    const signer = signers[Number(ref)];
    if (!signer) throw new Error(`There is no local account #${ref} (there are ${signers.length}).`);
    return signer;
  }
  if (!isAddress(ref)) throw new Error(`"${ref}" is neither an account index nor an address.`);
  const signer = signers.find((s) => s.address === getAddress(ref));
  if (!signer) throw new Error(`${ref} is not one of the local accounts, so it cannot sign.`);
  return signer;
}

/** An address given directly, or the address of a local account by index. */
export async function resolveAccount(hre: HardhatRuntimeEnvironment, ref: string): Promise<string> {
  if (isAddress(ref)) return getAddress(ref);
  return (await resolveSigner(hre, ref)).address;
}

/** Addresses, the `--from` signer and the typed contracts connected to it. */
export async function getContext(
  hre: HardhatRuntimeEnvironment,
  from?: string,
  opts: { fresh?: boolean } = {},
): Promise<Context> {
  const addresses = await getAddresses(hre, opts);
  const signer = await resolveSigner(hre, from);
  const {
    AgentRegistry__factory,
    EvaluatorStaking__factory,
    PayPerUse__factory,
    Reputation__factory,
    TaskEscrow__factory,
  } = await import("../../typechain-types");
  return {
    hre,
    addresses,
    signer,
    registry: AgentRegistry__factory.connect(addresses.registry, signer),
    reputation: Reputation__factory.connect(addresses.reputation, signer),
    escrow: TaskEscrow__factory.connect(addresses.escrow, signer),
    payPerUse: PayPerUse__factory.connect(addresses.payPerUse, signer),
    court: addresses.court ? EvaluatorStaking__factory.connect(addresses.court, signer) : undefined,
  };
}

/** The court of the context, or a plain error when this network's deployment has none. */
export function requireCourt(ctx: Context): EvaluatorStaking {
  if (ctx.court) return ctx.court;
  throw new Error(
    `There is no court (EvaluatorStaking) in the deployment on network ${ctx.hre.network.name}: deploy the ` +
      `Market module (local networks, X Layer testnet) or the Court module first.`,
  );
}

// ------------------------------------------------------------------ transactions

/** Waits for a transaction and returns its receipt. */
export async function confirm(tx: Promise<ContractTransactionResponse>): Promise<ContractTransactionReceipt> {
  const response = await tx;
  let receipt: ContractTransactionReceipt | null;
  try {
    receipt = await response.wait();
  } catch (err) {
    throw await withRevertData(response, err);
  }
  if (!receipt) throw new Error("The transaction was dropped.");
  return receipt;
}

/**
 * A transaction that was mined and reverted has no revert data in its receipt: replay it as a call
 * on the state before its block, so the error can be put in words. This happens on `localhost`
 * when the node answers hardhat_metadata (a Hardhat node, or anvil): hardhat-ethers then sends with
 * a fixed gas limit instead of estimating, and the node mines the failing transaction.
 */
async function withRevertData(response: ContractTransactionResponse, err: unknown): Promise<unknown> {
  if (!isError(err, "CALL_EXCEPTION") || !err.receipt || err.data) return err;
  try {
    await response.provider.call({
      from: response.from,
      to: response.to,
      data: response.data,
      value: response.value,
      blockTag: err.receipt.blockNumber - 1,
    });
  } catch (replayed) {
    // An ethers CALL_EXCEPTION, or the Hardhat provider's own ProviderError: either carries `data`.
    const data = (replayed as { data?: unknown }).data;
    if (typeof data === "string" && isHexString(data)) return replayed;
  }
  return err;
}

/** The arguments of the first `name` event `iface` finds in `receipt`. */
export function findEvent(iface: Interface, receipt: ContractTransactionReceipt, name: string): Result {
  for (const log of receipt.logs) {
    const parsed = iface.parseLog(log);
    if (parsed?.name === name) return parsed.args;
  }
  throw new Error(`No ${name} event in transaction ${receipt.hash}.`);
}

/** Timestamp of the latest block (the chain's "now", which tests may have moved). */
export async function chainNow(hre: HardhatRuntimeEnvironment): Promise<bigint> {
  const block = await hre.ethers.provider.getBlock("latest");
  return BigInt(block!.timestamp);
}

/** The ERC-8004 AgentWalletSet EIP-712 type. */
export const AGENT_WALLET_TYPES = {
  AgentWalletSet: [
    { name: "agentId", type: "uint256" },
    { name: "newWallet", type: "address" },
    { name: "owner", type: "address" },
    { name: "deadline", type: "uint256" },
  ],
};

/** The EIP-712 `Agreement` type a provider signs (ITaskEscrow.Agreement, TaskEscrow.AGREEMENT_TYPEHASH). */
export const AGREEMENT_TYPES = {
  Agreement: [
    { name: "clientId", type: "uint256" },
    { name: "providerId", type: "uint256" },
    { name: "token", type: "address" },
    { name: "price", type: "uint256" },
    { name: "deliveryDuration", type: "uint32" },
    { name: "reviewPeriod", type: "uint32" },
    { name: "parentTaskId", type: "uint256" },
    { name: "specHash", type: "bytes32" },
    { name: "nonce", type: "uint256" },
    { name: "expiry", type: "uint256" },
  ],
};

/** PayPerUse EIP-712 types (domain: name "PayPerUse", version "1", chain id, the proxy). */
export const CHARGE_TYPES = {
  ChargeAuthorization: [
    { name: "payerId", type: "uint256" },
    { name: "payer", type: "address" },
    { name: "serviceId", type: "uint256" },
    { name: "token", type: "address" },
    { name: "units", type: "uint256" },
    { name: "amount", type: "uint256" },
    { name: "requestRef", type: "bytes32" },
    { name: "nonce", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
  ],
};

export const UP_TO_TYPES = {
  UpToAuthorization: [
    { name: "payerId", type: "uint256" },
    { name: "payer", type: "address" },
    { name: "serviceId", type: "uint256" },
    { name: "token", type: "address" },
    { name: "maxAmount", type: "uint256" },
    { name: "requestRef", type: "bytes32" },
    { name: "nonce", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
  ],
};

export const VOUCHER_TYPES = {
  Voucher: [
    { name: "sessionId", type: "uint256" },
    { name: "amount", type: "uint256" },
    { name: "calls", type: "uint256" },
  ],
};

/** EIP-2612 Permit type (domain: the token's own). */
export const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

/** EIP-3009 ReceiveWithAuthorization type (domain: the token's own). */
export const RECEIVE_TYPES = {
  ReceiveWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
};

/** IPayPerUse.Funding. */
export const FUNDING = { Allowance: 0, Permit: 1, ReceiveWithAuthorization: 2 } as const;

/** `wallet` signs the EIP-712 AgentWalletSet proof, in the registry's own domain (EIP-5267). */
export async function signAgentWallet(
  registry: AgentRegistry,
  wallet: HardhatEthersSigner,
  agentId: bigint,
  owner: string,
  deadline: bigint,
): Promise<string> {
  const domain = await registry.eip712Domain();
  return wallet.signTypedData(
    {
      name: domain.name,
      version: domain.version,
      chainId: domain.chainId,
      verifyingContract: domain.verifyingContract,
    },
    AGENT_WALLET_TYPES,
    { agentId, newWallet: wallet.address, owner, deadline },
  );
}

// ------------------------------------------------------------------ tokens

const tokenInfoCache = new Map<string, TokenInfo>();

/** A token by symbol of the Mocks deployment (USDT, USDG, OKB) or by address. */
export async function resolveToken(ctx: Context, ref: string): Promise<TokenInfo> {
  const symbol = ref.toUpperCase() as TokenSymbol;
  if (TOKEN_SYMBOLS.includes(symbol)) {
    const address = ctx.addresses.tokens[symbol];
    if (!address) throw new Error(`No ${symbol} in this network's Mocks deployment: pass the token's address.`);
    return describeToken(ctx, address);
  }
  if (!isAddress(ref)) throw new Error(`"${ref}" is neither a token address nor one of ${TOKEN_SYMBOLS.join(", ")}.`);
  return describeToken(ctx, ref);
}

/** Symbol and decimals of a token (the zero address is "no token"). */
export async function describeToken(ctx: Context, address: string): Promise<TokenInfo> {
  if (address === ZeroAddress) return { address, symbol: "-", decimals: 0 };
  const key = `${ctx.hre.network.name}:${getAddress(address)}`;
  const cached = tokenInfoCache.get(key);
  if (cached) return cached;
  const { IERC20Metadata__factory } = await import("../../typechain-types");
  const erc20 = IERC20Metadata__factory.connect(address, ctx.hre.ethers.provider);
  const known = Object.entries(ctx.addresses.tokens).find(([, a]) => a === getAddress(address))?.[0];
  const info: TokenInfo = {
    address: getAddress(address),
    symbol: known ?? (await erc20.symbol().catch(() => shortAddress(address))),
    decimals: Number(await erc20.decimals()),
  };
  tokenInfoCache.set(key, info);
  return info;
}

// ------------------------------------------------------------------ parsing

/** "12.5" in `token` units; rejects more decimals than the token has. */
export function parseAmount(value: string, decimals: number): bigint {
  try {
    return parseUnits(value.trim(), decimals);
  } catch {
    throw new Error(`"${value}" is not an amount with at most ${decimals} decimals.`);
  }
}

/** "a=1,b=0xbeef" to metadata entries: values are UTF-8 text, or raw bytes when written as 0x-hex. */
export function parseMetadata(value: string | undefined): { metadataKey: string; metadataValue: string }[] {
  if (!value) return [];
  return value
    .split(",")
    .filter((pair) => pair.trim() !== "")
    .map((pair) => {
      const at = pair.indexOf("=");
      if (at <= 0) throw new Error(`Metadata "${pair}" is not of the form key=value.`);
      const raw = pair.slice(at + 1).trim();
      const metadataValue = isHexString(raw) && raw.length % 2 === 0 ? raw : hexOfText(raw);
      return { metadataKey: pair.slice(0, at).trim(), metadataValue };
    });
}

function hexOfText(text: string): string {
  return "0x" + Buffer.from(text, "utf8").toString("hex");
}

/** A metadata value as text when it is printable UTF-8, else as hex. */
export function metadataText(value: string): string {
  if (value === "0x") return "";
  const text = Buffer.from(value.slice(2), "hex").toString("utf8");
  return /^[\x20-\x7e\u00a0-\uffff]*$/.test(text) && !text.includes("\ufffd") ? text : value;
}

/** "1,2, 3" to agent ids. */
export function parseIds(value: string): bigint[] {
  return value.split(",").map((part) => {
    if (!/^\s*\d+\s*$/.test(part)) throw new Error(`"${part}" is not an agent id.`);
    return BigInt(part.trim());
  });
}

const knownCapabilities = new Map<string, string>();

/** A capability tag: a string is hashed with keccak256 (and remembered for display), 0x-hex is taken as is. */
export function parseCapability(value: string): string {
  if (isHexString(value, 32)) return value.toLowerCase();
  const hash = keccakId(value);
  knownCapabilities.set(hash, value);
  return hash;
}

/** The capability string when this process hashed it, else the short hash. */
export function capabilityLabel(hash: string): string {
  return knownCapabilities.get(hash.toLowerCase()) ?? `${hash.slice(0, 10)}…`;
}

// ------------------------------------------------------------------ formatting

/** 60000000n with 6 decimals -> "60.00" (at least two decimals, all that matter, thousands grouped). */
export function formatAmount(value: bigint, decimals: number, symbol?: string): string {
  const [int, frac = ""] = formatUnits(value, decimals).split(".");
  const digits = frac.replace(/0+$/, "").padEnd(2, "0");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const text = decimals === 0 ? grouped : `${grouped}.${digits}`;
  return symbol ? `${text} ${symbol}` : text;
}

/** Unix seconds -> ISO 8601 (UTC); 0 -> "never". */
export function formatTimestamp(seconds: bigint | number): string {
  if (BigInt(seconds) === 0n) return "never";
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}

/** Basis points -> "95.00%". */
export function formatBps(bps: bigint | number): string {
  return `${(Number(bps) / 100).toFixed(2)}%`;
}

/** A period in seconds -> "24h", "90m", "45s", "2d". */
export function formatPeriod(seconds: bigint | number): string {
  const s = Number(seconds);
  if (s === 0) return "-";
  if (s % 86_400 === 0 && s >= 172_800) return `${s / 86_400}d`;
  if (s % 3_600 === 0) return `${s / 3_600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

/** "90s", "45m", "2h", "3d" or plain seconds ("3600") -> seconds. */
export function parsePeriod(value: string): number {
  const m = /^\s*(\d+)\s*([smhd]?)\s*$/i.exec(value);
  if (!m) throw new Error(`"${value}" is not a duration: write seconds, or e.g. 90s, 45m, 2h, 3d.`);
  const unit = { "": 1, s: 1, m: 60, h: 3_600, d: 86_400 }[m[2].toLowerCase() as "" | "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

/** ITaskEscrow.Status names, by value. */
export const TASK_STATUSES = [
  "None",
  "Open",
  "Accepted",
  "CancelRequested",
  "Submitted",
  "Rejected",
  "Disputed",
  "Arbitration",
  "Completed",
  "Refunded",
  "Resolved",
  "Closed",
  "Expired",
] as const;

/** ITaskEscrow.Mode names, by value, as the tasks spell them. */
export const TASK_MODES = ["direct", "bidding", "auto"] as const;

/** A task status value as its name. */
export function taskStatusName(status: bigint | number): string {
  return TASK_STATUSES[Number(status)] ?? `status ${status}`;
}

export function shortAddress(address: string): string {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}

/** A struct returned by a contract (an ethers Result) as a plain object of its named fields. */
export function structToObject<T extends object>(
  struct: T,
): { [K in keyof T as K extends keyof unknown[] | `${number}` ? never : K]: T[K] } {
  return (struct as unknown as Result).toObject() as never;
}

/** JSON with bigints as strings. */
export function toJson(data: unknown): string {
  return JSON.stringify(data, (_key, value) => (typeof value === "bigint" ? value.toString() : value), 2);
}

export type Row = Record<string, unknown>;

/** Rows of one shape as a table; the keys of the first row are the headings. */
export function printTable(rows: Row[], opts: { title?: string } = {}): void {
  if (opts.title) console.log(opts.title);
  if (rows.length === 0) {
    console.log("  (none)");
    return;
  }
  const head = Object.keys(rows[0]);
  const table = new Table({ head, style: { head: [], border: [] } });
  for (const row of rows) table.push(head.map((key) => cell(row[key])));
  console.log(table.toString());
}

function cell(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

/** Key/value pairs as a two-column table. */
export function printFields(fields: Row, opts: { title?: string } = {}): void {
  if (opts.title) console.log(opts.title);
  const table = new Table({ style: { head: [], border: [] } });
  for (const [key, value] of Object.entries(fields)) table.push({ [key]: cell(value) });
  console.log(table.toString());
}

/** JSON with `--json` (for scripts), else `render` (for people). Returns `data` for `hre.run` callers. */
export function output<T>(hre: HardhatRuntimeEnvironment, json: boolean, data: T, render: (data: T) => void): T {
  if (json) console.log(toJson(data));
  else {
    render(data);
    if (hre.network.name !== "hardhat") console.log(`(network ${hre.network.name})`);
  }
  return data;
}
