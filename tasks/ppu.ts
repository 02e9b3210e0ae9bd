// ppu:* — pay-per-use (PayPerUse): charges at the catalog price, signed charges a facilitator
// submits (x402 "exact" style), sessions paid with cumulative vouchers, refunds, recording charges
// in Reputation (ppu:sync) and the state.
import * as fs from "node:fs";
import {
  AbiCoder,
  MaxUint256,
  Signature,
  ZeroAddress,
  ZeroHash,
  getAddress,
  hexlify,
  id as keccakId,
  isHexString,
  randomBytes,
} from "ethers";
import { task, types } from "hardhat/config";
import type { ContractTransactionReceipt, ContractTransactionResponse } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import {
  type CommonArgs,
  type Context,
  type TokenInfo,
  CHARGE_TYPES,
  FUNDING,
  PERMIT_TYPES,
  RECEIVE_TYPES,
  TOKEN_SYMBOLS,
  VOUCHER_TYPES,
  chainNow,
  confirm,
  describeToken,
  findEvent,
  formatAmount,
  formatBps,
  formatPeriod,
  formatTimestamp,
  getContext,
  output,
  parseAmount,
  parsePeriod,
  printFields,
  printTable,
  resolveAccount,
  resolveToken,
  shortAddress,
  withCommonParams,
} from "./lib/context";
import { type ExplainOptions, PlainError, plainly, withPlainErrors } from "./lib/errors";
import { withdrawTask } from "./lib/withdraw";

/** IPayPerUse.ChargeAuthorization. */
export interface ChargeAuthorization {
  payerId: bigint;
  payer: string;
  serviceId: bigint;
  token: string;
  units: bigint;
  amount: bigint;
  requestRef: string;
  nonce: bigint;
  validAfter: bigint;
  validBefore: bigint;
}

/** IPayPerUse.Voucher. */
export interface Voucher {
  sessionId: bigint;
  amount: bigint;
  calls: bigint;
}

/** How a signed charge pulls the payer's funds, as the tasks spell it (IPayPerUse.Funding). */
export const FUNDING_NAMES = ["allowance", "permit", "3009"] as const;
export type FundingName = (typeof FUNDING_NAMES)[number];
const FUNDING_VALUES: Record<FundingName, number> = {
  allowance: FUNDING.Allowance,
  permit: FUNDING.Permit,
  "3009": FUNDING.ReceiveWithAuthorization,
};

/** What `ppu:sign-charge` prints and `ppu:submit-charge` reads. */
export interface SignedCharge {
  authorization: ChargeAuthorization;
  signature: string;
  funding: FundingName;
  fundingData: string;
  /** Informative: where the signature is valid and what it pays. */
  chainId?: bigint;
  verifyingContract?: string;
  token?: string;
  amountText?: string;
  note?: string;
}

/** What `ppu:voucher` prints and `ppu:redeem` reads. */
export interface SignedVoucher {
  voucher: Voucher;
  signature: string;
  signer?: string;
  amountText?: string;
}

/** Most vouchers in one redeemMany (PayPerUse.MAX_BATCH); more are sent in several transactions. */
const MAX_BATCH = 256;

// ------------------------------------------------------------------ helpers

function tokenWords(token: TokenInfo): ExplainOptions {
  return { decimals: token.decimals, symbol: token.symbol, tokens: { [token.address]: token } };
}

/** Sends a transaction, explaining a refusal with amounts in `words`' token. */
function send(words: ExplainOptions, tx: () => Promise<ContractTransactionResponse>) {
  return plainly(() => confirm(tx()), words);
}

/** A request reference: 0x-hex bytes32 as is, a text hashed with keccak256, nothing = zero. */
function parseRef(value: string | undefined): string {
  if (value === undefined || value === "") return ZeroHash;
  return isHexString(value, 32) ? value.toLowerCase() : keccakId(value);
}

/** "1234567" -> "1,234,567". */
function grouped(value: bigint | number): string {
  return formatAmount(BigInt(value), 0);
}

/** Approves PayPerUse for `amount` of `token` when the signer's allowance is short; true when it did. */
async function ensureAllowance(ctx: Context, token: TokenInfo, amount: bigint): Promise<boolean> {
  if (amount === 0n) return false;
  const { IERC20Metadata__factory } = await import("../typechain-types");
  const erc20 = IERC20Metadata__factory.connect(token.address, ctx.signer);
  if ((await erc20.allowance(ctx.signer.address, ctx.addresses.payPerUse)) >= amount) return false;
  await send(tokenWords(token), () => erc20.approve(ctx.addresses.payPerUse, amount));
  return true;
}

/** The current price of `units` of a service, and its token. */
async function quoteService(ctx: Context, serviceId: bigint, units: bigint) {
  const [total, fee, tokenAddress, providerId] = await ctx.payPerUse.quote(serviceId, units);
  const token = await describeToken(ctx, tokenAddress);
  return { total, fee, token, providerId, words: tokenWords(token) };
}

/** The PayPerUse EIP-712 domain (name "PayPerUse", version "1"). */
export async function ppuDomain(ctx: Context) {
  const { chainId } = await ctx.hre.ethers.provider.getNetwork();
  return { name: "PayPerUse", version: "1", chainId, verifyingContract: ctx.addresses.payPerUse };
}

/** `signer` signs a ChargeAuthorization. */
export async function signCharge(ctx: Context, signer: HardhatEthersSigner, auth: ChargeAuthorization) {
  return signer.signTypedData(await ppuDomain(ctx), CHARGE_TYPES, auth);
}

/** `signer` signs vouchers (the domain is read once, so thousands are quick). */
export async function signVouchers(ctx: Context, signer: HardhatEthersSigner, vouchers: Voucher[]) {
  const domain = await ppuDomain(ctx);
  const signatures: string[] = [];
  for (const v of vouchers) signatures.push(await signer.signTypedData(domain, VOUCHER_TYPES, v));
  return signatures;
}

/** A token's EIP-712 domain, as it publishes it (ERC-5267). */
async function tokenDomain(ctx: Context, token: TokenInfo) {
  const { IERC5267__factory } = await import("../typechain-types");
  try {
    const d = await IERC5267__factory.connect(token.address, ctx.hre.ethers.provider).eip712Domain();
    return { name: d.name, version: d.version, chainId: d.chainId, verifyingContract: d.verifyingContract };
  } catch {
    throw new PlainError(
      `${token.symbol} does not publish its EIP-712 domain (ERC-5267), so its permit or authorisation cannot be signed here.`,
    );
  }
}

/**
 * The funding data of a signed charge: for `permit`, an EIP-2612 permit of `amount` to PayPerUse until
 * `validBefore`; for `3009`, an EIP-3009 ReceiveWithAuthorization of exactly `amount`; `allowance`: none.
 */
export async function signFunding(
  ctx: Context,
  signer: HardhatEthersSigner,
  token: TokenInfo,
  funding: FundingName,
  amount: bigint,
  validBefore: bigint,
): Promise<string> {
  if (funding === "allowance") return "0x";
  const domain = await tokenDomain(ctx, token);
  const coder = AbiCoder.defaultAbiCoder();
  if (funding === "permit") {
    const { IERC20Permit__factory } = await import("../typechain-types");
    const nonce = await IERC20Permit__factory.connect(token.address, ctx.hre.ethers.provider).nonces(signer.address);
    const permit = {
      owner: signer.address,
      spender: ctx.addresses.payPerUse,
      value: amount,
      nonce,
      deadline: validBefore,
    };
    const sig = Signature.from(await signer.signTypedData(domain, PERMIT_TYPES, permit));
    return coder.encode(
      ["uint256", "uint256", "uint8", "bytes32", "bytes32"],
      [amount, validBefore, sig.v, sig.r, sig.s],
    );
  }
  const nonce = hexlify(randomBytes(32));
  const authorization = {
    from: signer.address,
    to: ctx.addresses.payPerUse,
    value: amount,
    validAfter: 0n,
    validBefore,
    nonce,
  };
  const sig = Signature.from(await signer.signTypedData(domain, RECEIVE_TYPES, authorization));
  return coder.encode(
    ["uint256", "uint256", "bytes32", "uint8", "bytes32", "bytes32"],
    [0n, validBefore, nonce, sig.v, sig.r, sig.s],
  );
}

function parseFunding(value: string): FundingName {
  const name = value.toLowerCase().replace(/^eip-?/, "") as FundingName;
  if (!FUNDING_NAMES.includes(name)) throw new PlainError(`Unknown funding "${value}": use permit or 3009.`);
  return name;
}

/** JSON given inline, or the contents of a file. */
function readJson(value: string | undefined, file: string | undefined, what: string, option: string): unknown {
  let text: string;
  if (file !== undefined) {
    if (!fs.existsSync(file)) throw new PlainError(`There is no file ${file}.`);
    text = fs.readFileSync(file, "utf8");
  } else if (value !== undefined) {
    text = value.trim();
    if (!text.startsWith("{") && !text.startsWith("[")) {
      if (!fs.existsSync(text)) throw new PlainError(`${option} is neither JSON nor a file: "${value}".`);
      text = fs.readFileSync(text, "utf8");
    }
  } else {
    throw new PlainError(`Give ${option} '<json>' or --file <path> (${what}).`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new PlainError(`That is not valid JSON (expected ${what}).`);
  }
}

function bigField(obj: Record<string, unknown>, key: string, what: string): bigint {
  const value = obj[key];
  if (value === undefined || value === null || value === "") throw new PlainError(`The ${what} lacks ${key}.`);
  try {
    return BigInt(value as string);
  } catch {
    throw new PlainError(`The ${what}'s ${key} is not a whole number: ${String(value)}.`);
  }
}

/** A signed charge from what `ppu:sign-charge` printed. */
export function parseSignedCharge(raw: unknown): SignedCharge {
  const what = "signed charge";
  const r = (raw ?? {}) as Record<string, unknown>;
  const a = r.authorization as Record<string, unknown> | undefined;
  if (
    !a ||
    typeof r.signature !== "string" ||
    typeof a.payer !== "string" ||
    typeof a.token !== "string" ||
    typeof a.requestRef !== "string"
  ) {
    throw new PlainError(
      "The signed charge lacks authorization, payer, token, requestRef or signature (expected what ppu:sign-charge prints).",
    );
  }
  const funding = parseFunding(typeof r.funding === "string" ? r.funding : "allowance");
  return {
    authorization: {
      payerId: bigField(a, "payerId", what),
      payer: getAddress(a.payer),
      serviceId: bigField(a, "serviceId", what),
      token: getAddress(a.token),
      units: bigField(a, "units", what),
      amount: bigField(a, "amount", what),
      requestRef: a.requestRef,
      nonce: bigField(a, "nonce", what),
      validAfter: bigField(a, "validAfter", what),
      validBefore: bigField(a, "validBefore", what),
    },
    signature: r.signature,
    funding,
    fundingData: typeof r.fundingData === "string" ? r.fundingData : "0x",
    chainId: r.chainId !== undefined ? BigInt(r.chainId as string) : undefined,
    verifyingContract: typeof r.verifyingContract === "string" ? r.verifyingContract : undefined,
  };
}

/** Vouchers from what `ppu:voucher` printed: one, or an array (flat {sessionId, amount, calls, signature} too). */
export function parseSignedVouchers(raw: unknown): SignedVoucher[] {
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) throw new PlainError("The voucher list is empty.");
  return list.map((item, i) => {
    const r = (item ?? {}) as Record<string, unknown>;
    const v = (r.voucher ?? r) as Record<string, unknown>;
    const what = list.length > 1 ? `voucher at position ${i}` : "voucher";
    if (typeof r.signature !== "string") {
      throw new PlainError(`The ${what} has no signature (expected what ppu:voucher prints).`);
    }
    return {
      voucher: {
        sessionId: bigField(v, "sessionId", what),
        amount: bigField(v, "amount", what),
        calls: bigField(v, "calls", what),
      },
      signature: r.signature,
    };
  });
}

/** The Charged event of a receipt, formatted. */
function chargedData(ctx: Context, token: TokenInfo, receipt: ContractTransactionReceipt) {
  const e = findEvent(ctx.payPerUse.interface, receipt, "Charged");
  const amount = (v: bigint) => formatAmount(v, token.decimals, token.symbol);
  const [total, fee] = [e.total as bigint, e.fee as bigint];
  const credited = receipt.logs.some((log) => ctx.payPerUse.interface.parseLog(log)?.name === "PaymentCredited");
  return {
    receiptId: e.receiptId as bigint,
    payerId: e.payerId as bigint,
    providerId: e.providerId as bigint,
    serviceId: e.serviceId as bigint,
    units: e.units as bigint,
    token: token.symbol,
    tokenAddress: token.address,
    total,
    totalText: amount(total),
    fee,
    feeText: amount(fee),
    toProvider: total - fee,
    toProviderText: amount(total - fee),
    requestRef: e.requestRef as string,
    payer: e.payer as string,
    /** The provider could not receive: the payment waits as a credit (ppu:withdraw). */
    credited,
    gasUsed: receipt.gasUsed,
    tx: receipt.hash,
  };
}

/** A pair's charges not yet recorded in Reputation (PayPerUse.pendingReputation), formatted. */
export async function pendingView(ctx: Context, payerId: bigint, providerId: bigint, token: TokenInfo) {
  const [calls, amount, receipts] = await ctx.payPerUse.pendingReputation(payerId, providerId, token.address);
  return { calls, amount, amountText: formatAmount(amount, token.decimals, token.symbol), receipts };
}

type Pending = Awaited<ReturnType<typeof pendingView>>;

/** "3 charge(s), 1,850 unit(s), 37.00 USDT", or "none". */
function describePending(p: Pending): string {
  return p.receipts === 0n ? "none" : `${grouped(p.receipts)} charge(s), ${grouped(p.calls)} unit(s), ${p.amountText}`;
}

/** A charge's data with its pair's pending counters (what ppu:pay and ppu:submit-charge print). */
async function withPending(ctx: Context, token: TokenInfo, d: ReturnType<typeof chargedData>) {
  return { ...d, pending: await pendingView(ctx, d.payerId, d.providerId, token) };
}

/** Where a charge's calls are: waiting with the pair's others until someone syncs them. */
function describeWaiting(d: { payerId: bigint; providerId: bigint; pending: Pending; token: string }): string {
  return (
    `  Not in Reputation yet: agent #${d.payerId}'s charges with agent #${d.providerId} in ${d.token} wait to be ` +
    `recorded (now ${describePending(d.pending)}); anyone records them with ppu:sync.`
  );
}

function describeCharge(d: ReturnType<typeof chargedData>): string {
  const to = d.credited
    ? `${d.toProviderText} credited to the provider (it could not receive; it collects with ppu:withdraw)`
    : `${d.toProviderText} to the provider`;
  return (
    `Paid ${d.totalText} for ${grouped(d.units)} unit(s) of service #${d.serviceId} (agent #${d.providerId}) ` +
    `for agent #${d.payerId}: ${to}, ${d.feeText} protocol fee. Receipt #${d.receiptId}.`
  );
}

type SessionStruct = Awaited<ReturnType<Context["payPerUse"]["getSession"]>>;

/** What state a session is in, and what may happen next. */
function sessionState(s: SessionStruct, now: bigint): { state: string; next: string } {
  if (s.settled) {
    return {
      state: "settled",
      next: "nothing: the fee was booked, the rest went back and Reputation recorded it",
    };
  }
  if (now > s.endsAt) return { state: "ended", next: "anyone may settle it (ppu:session:withdraw)" };
  if (s.closing) {
    return {
      state: "closing",
      next: `vouchers are redeemable until ${formatTimestamp(s.endsAt)}, then anyone may settle it`,
    };
  }
  return { state: "open", next: `vouchers are redeemable until ${formatTimestamp(s.endsAt)}` };
}

/** A whole session, raw and formatted (exported for the demo). */
export async function sessionView(ctx: Context, sessionId: bigint) {
  const s = await ctx.payPerUse.getSession(sessionId);
  if (s.token === ZeroAddress) throw new PlainError(`Session #${sessionId} does not exist.`);
  const token = await describeToken(ctx, s.token);
  const amount = (v: bigint) => formatAmount(v, token.decimals, token.symbol);
  const { state, next } = sessionState(s, await chainNow(ctx.hre));
  const unredeemed = s.deposit - s.redeemed;
  // The fee is taken on the cumulative redeemed amount and booked for the treasury at settlement.
  const fee = (s.redeemed * s.feeBps) / 10_000n;
  return {
    sessionId,
    state,
    next,
    payerId: s.payerId,
    providerId: s.providerId,
    signer: s.signer,
    token: token.symbol,
    tokenAddress: token.address,
    decimals: token.decimals,
    deposit: s.deposit,
    depositText: amount(s.deposit),
    redeemed: s.redeemed,
    redeemedText: amount(s.redeemed),
    unredeemed,
    unredeemedText: amount(unredeemed),
    /** The protocol fee on `redeemed`: booked in accruedFees only once the session is settled. */
    fee,
    feeText: amount(fee),
    feeBooked: s.settled,
    /** What the provider has received: `redeemed - fee`. */
    toProvider: s.redeemed - fee,
    toProviderText: amount(s.redeemed - fee),
    calls: s.calls,
    endsAt: s.endsAt,
    endsAtText: formatTimestamp(s.endsAt),
    closing: s.closing,
    settled: s.settled,
    feeBps: s.feeBps,
    closeGrace: s.closeGrace,
  };
}

/** Loads a session (a plain error when there is none) with its token's wording. */
async function loadSession(ctx: Context, sessionId: bigint) {
  const view = await sessionView(ctx, sessionId);
  const token = await describeToken(ctx, view.tokenAddress);
  return { view, token, words: tokenWords(token) };
}

/**
 * A receipt, raw and formatted, with what its Charged and ChargeRefunded events say, and where its
 * calls are: its pair's charges still waiting for Reputation, and whether a sync recorded this one.
 */
export async function receiptView(ctx: Context, receiptId: bigint) {
  const r = await ctx.payPerUse.getReceipt(receiptId);
  if (r.payerId === 0n) throw new PlainError(`Receipt #${receiptId} does not exist.`);
  const token = await describeToken(ctx, r.token);
  const amount = (v: bigint) => formatAmount(v, token.decimals, token.symbol);
  const pending = await pendingView(ctx, r.payerId, r.providerId, token);
  // Nothing pending for the pair: every charge of it, this one included, is recorded.
  let inReputation: boolean | undefined = pending.receipts === 0n ? true : undefined;
  let charge;
  let refunds: { amount: bigint; amountText: string; tx: string }[] = [];
  try {
    // Events are informative: a node that limits log queries leaves them out.
    const [charged] = await ctx.payPerUse.queryFilter(ctx.payPerUse.filters.Charged(receiptId));
    if (charged) {
      const a = charged.args;
      charge = {
        serviceId: a.serviceId,
        units: a.units,
        total: a.total,
        totalText: amount(a.total),
        fee: a.fee,
        feeText: amount(a.fee),
        requestRef: a.requestRef,
        payer: a.payer,
        tx: charged.transactionHash,
      };
      if (inReputation === undefined) {
        // Recorded when a later transaction synced the pair (an overflow flush inside the charge's
        // own transaction records the charges before it, not this one).
        const syncs = await ctx.payPerUse.queryFilter(
          ctx.payPerUse.filters.ReputationSynced(r.payerId, r.providerId, token.address),
          charged.blockNumber,
        );
        inReputation = syncs.some(
          (e) =>
            e.blockNumber > charged.blockNumber ||
            (e.blockNumber === charged.blockNumber && e.transactionIndex > charged.transactionIndex),
        );
      }
    }
    refunds = (await ctx.payPerUse.queryFilter(ctx.payPerUse.filters.ChargeRefunded(receiptId))).map((e) => ({
      amount: e.args.amount,
      amountText: amount(e.args.amount),
      tx: e.transactionHash,
    }));
  } catch {
    // no events
  }
  return {
    receiptId,
    payerId: r.payerId,
    providerId: r.providerId,
    token: token.symbol,
    tokenAddress: token.address,
    refundable: r.refundable,
    refundableText: amount(r.refundable),
    charge,
    refunds,
    /** Whether this charge's calls are recorded in Reputation (undefined: unknown, no events). */
    inReputation,
    /** The pair's charges not yet recorded (this one among them when `inReputation` is false). */
    pending,
  };
}

/** The protocol's PayPerUse settings and what it holds per known token. */
async function configView(ctx: Context) {
  const [registry, reputation, treasury, feeBps, closeGrace] = await ctx.payPerUse.config();
  const { IERC20Metadata__factory } = await import("../typechain-types");
  const tokens = [];
  for (const symbol of TOKEN_SYMBOLS) {
    const address = ctx.addresses.tokens[symbol];
    if (!address) continue;
    const token = await describeToken(ctx, address);
    const erc20 = IERC20Metadata__factory.connect(address, ctx.hre.ethers.provider);
    const held = await erc20.balanceOf(ctx.addresses.payPerUse);
    const fees = await ctx.payPerUse.accruedFees(address);
    tokens.push({
      token: symbol,
      address,
      allowed: await ctx.payPerUse.tokenAllowed(address),
      held,
      heldText: formatAmount(held, token.decimals, symbol),
      accruedFees: fees,
      accruedFeesText: formatAmount(fees, token.decimals, symbol),
    });
  }
  return {
    payPerUse: ctx.addresses.payPerUse,
    registry,
    reputation,
    treasury,
    feeBps,
    fee: formatBps(feeBps),
    closeGrace,
    closeGraceText: formatPeriod(closeGrace),
    paused: await ctx.payPerUse.paused(),
    receipts: await ctx.payPerUse.receiptCount(),
    sessions: await ctx.payPerUse.sessionCount(),
    tokens,
    note:
      "Fees not swept are the fees booked so far: a charge's at once, a session's when it is settled " +
      "(until then it is held with the session's deposit).",
  };
}

// ------------------------------------------------------------------ ppu:pay

interface PayArgs extends CommonArgs {
  payerId: bigint;
  service: bigint;
  units: bigint;
  maxTotal?: string;
  ref?: string;
}

withCommonParams(
  task("ppu:pay", "Pays for units of a pay-per-use service at its catalog price (approves PayPerUse when needed)")
    .addParam("payerId", "Paying agent id (the signer pays: its owner, wallet or an operator)", undefined, types.bigint)
    .addParam("service", "Pay-per-use service id", undefined, types.bigint)
    .addParam("units", "Units bought", undefined, types.bigint)
    .addOptionalParam(
      "maxTotal",
      "Most the payer accepts, in token units (default: the current quote)",
      undefined,
      types.string,
    )
    .addOptionalParam("ref", "Request reference: 0x-hex bytes32, or a text to hash", undefined, types.string),
).setAction(
  withPlainErrors(async (args: PayArgs, hre) => {
    const ctx = await getContext(hre, args.from);
    const q = await quoteService(ctx, args.service, args.units);
    const maxTotal = args.maxTotal !== undefined ? parseAmount(args.maxTotal, q.token.decimals) : q.total;
    const approved = await ensureAllowance(ctx, q.token, maxTotal < q.total ? q.total : maxTotal);
    const receipt = await send(q.words, () =>
      ctx.payPerUse.charge(args.payerId, args.service, args.units, q.token.address, maxTotal, parseRef(args.ref)),
    );
    const data = { ...(await withPending(ctx, q.token, chargedData(ctx, q.token, receipt))), approved };
    return output(hre, args.json, data, (d) => {
      if (d.approved) console.log(`Approved PayPerUse to take ${d.totalText} from ${ctx.signer.address}.`);
      console.log(describeCharge(d));
      console.log(describeWaiting(d));
    });
  }),
);

// ------------------------------------------------------------------ signed charges

interface SignChargeArgs extends CommonArgs {
  payerId: bigint;
  service: bigint;
  units: bigint;
  nonce?: bigint;
  validFor: string;
  ref?: string;
  funding: string;
}

withCommonParams(
  task(
    "ppu:sign-charge",
    "Signs a charge as --from (the payer) and prints it as JSON, for a facilitator to submit (ppu:submit-charge)",
  )
    .addParam("payerId", "Paying agent id (--from must be its owner, wallet or an operator)", undefined, types.bigint)
    .addParam("service", "Pay-per-use service id", undefined, types.bigint)
    .addParam("units", "Units bought (the amount signed is their current price)", undefined, types.bigint)
    .addOptionalParam("nonce", "Single-use nonce (default: random 64-bit)", undefined, types.bigint)
    .addOptionalParam("validFor", "How long it stays valid: seconds, or 90s / 45m / 2h / 3d", "1h", types.string)
    .addOptionalParam("ref", "Request reference: 0x-hex bytes32, or a text to hash", undefined, types.string)
    .addOptionalParam(
      "funding",
      "allowance (the payer approved PayPerUse), permit (also signs an EIP-2612 permit) or 3009 " +
        "(also signs an EIP-3009 ReceiveWithAuthorization)",
      "allowance",
      types.string,
    ),
).setAction(
  withPlainErrors(async (args: SignChargeArgs, hre) => {
    const funding = parseFunding(args.funding);
    const ctx = await getContext(hre, args.from);
    const signer = ctx.signer;
    if (!(await ctx.registry.canAct(args.payerId, signer.address))) {
      throw new PlainError(
        `${signer.address} may not spend for agent #${args.payerId} (it is neither its owner, its wallet nor an ` +
          `active operator), so its signed charge would be refused.`,
      );
    }
    const q = await quoteService(ctx, args.service, args.units);
    const validBefore = (await chainNow(hre)) + BigInt(parsePeriod(args.validFor));
    const authorization: ChargeAuthorization = {
      payerId: args.payerId,
      payer: signer.address,
      serviceId: args.service,
      token: q.token.address,
      units: args.units,
      amount: q.total,
      requestRef: parseRef(args.ref),
      nonce: args.nonce ?? BigInt(hexlify(randomBytes(8))),
      validAfter: 0n,
      validBefore,
    };
    const signature = await signCharge(ctx, signer, authorization);
    const fundingData = await signFunding(ctx, signer, q.token, funding, q.total, validBefore);
    const domain = await ppuDomain(ctx);
    let note: string | undefined;
    if (funding === "allowance") {
      const { IERC20Metadata__factory } = await import("../typechain-types");
      const erc20 = IERC20Metadata__factory.connect(q.token.address, hre.ethers.provider);
      if ((await erc20.allowance(signer.address, ctx.addresses.payPerUse)) < q.total) {
        note =
          `${signer.address} has not approved PayPerUse for ${formatAmount(q.total, q.token.decimals, q.token.symbol)}: ` +
          `approve it before the charge is submitted, or sign with --funding permit or 3009.`;
      }
    }
    const signed: SignedCharge = {
      authorization,
      signature,
      funding,
      fundingData,
      chainId: domain.chainId,
      verifyingContract: domain.verifyingContract,
      token: q.token.address,
      amountText: formatAmount(q.total, q.token.decimals, q.token.symbol),
      ...(note !== undefined && { note }),
    };
    return output(hre, true, signed, () => undefined);
  }),
);

withCommonParams(
  task(
    "ppu:submit-charge",
    "Submits a signed charge (what ppu:sign-charge printed) as --from, a facilitator who pays the gas",
  )
    .addOptionalParam("auth", "The signed charge as JSON (or a file holding it)", undefined, types.string)
    .addOptionalParam("file", "A file holding the signed charge", undefined, types.string),
).setAction(
  withPlainErrors(async (args: CommonArgs & { auth?: string; file?: string }, hre) => {
    const signed = parseSignedCharge(readJson(args.auth, args.file, "what ppu:sign-charge prints", "--auth"));
    const ctx = await getContext(hre, args.from);
    const domain = await ppuDomain(ctx);
    if (signed.chainId !== undefined && signed.chainId !== domain.chainId) {
      throw new PlainError(`The charge was signed for chain ${signed.chainId}, not this one (${domain.chainId}).`);
    }
    if (signed.verifyingContract && getAddress(signed.verifyingContract) !== getAddress(domain.verifyingContract)) {
      throw new PlainError(
        `The charge was signed for the PayPerUse at ${signed.verifyingContract}, not this network's (${domain.verifyingContract}).`,
      );
    }
    const a = signed.authorization;
    const token = await describeToken(ctx, (await ctx.registry.getService(a.serviceId)).token);
    const receipt = await send(tokenWords(token), () =>
      ctx.payPerUse.submitCharge(a, signed.signature, FUNDING_VALUES[signed.funding], signed.fundingData),
    );
    const gasPrice = receipt.gasPrice ?? 0n;
    const data = {
      ...(await withPending(ctx, token, chargedData(ctx, token, receipt))),
      funding: signed.funding,
      nonce: a.nonce,
      submitter: ctx.signer.address,
      gasCost: receipt.gasUsed * gasPrice,
      gasCostText: formatAmount(receipt.gasUsed * gasPrice, 18),
    };
    return output(hre, args.json, data, (d) => {
      console.log(describeCharge(d));
      console.log(
        `Signed by ${d.payer} (nonce ${d.nonce}, ${d.funding} funding); submitted by ${d.submitter}, ` +
          `who paid the gas: ${grouped(d.gasUsed)} gas (${d.gasCostText} in native currency).`,
      );
      console.log(describeWaiting(d));
    });
  }),
);

// ------------------------------------------------------------------ sessions

interface OpenArgs extends CommonArgs {
  payerId: bigint;
  providerId: bigint;
  token: string;
  deposit: string;
  expiresIn: string;
  signer?: string;
}

withCommonParams(
  task(
    "ppu:session:open",
    "Opens a session (a one-way payment channel) with a provider and deposits into it (approves when needed)",
  )
    .addParam(
      "payerId",
      "Paying agent id (the signer deposits: its owner, wallet or an operator)",
      undefined,
      types.bigint,
    )
    .addParam("providerId", "Provider agent id", undefined, types.bigint)
    .addOptionalParam("token", "Payment token: USDT, USDG or an address", "USDT", types.string)
    .addParam("deposit", "Deposit, in token units", undefined, types.string)
    .addParam(
      "expiresIn",
      "How long vouchers stay redeemable: seconds, or 90s / 45m / 2h / 3d",
      undefined,
      types.string,
    )
    .addOptionalParam(
      "signer",
      "Key whose vouchers count (index or address; default: --from): the payer's owner, wallet or an operator",
      undefined,
      types.string,
    ),
).setAction(
  withPlainErrors(async (args: OpenArgs, hre) => {
    const ctx = await getContext(hre, args.from);
    const token = await resolveToken(ctx, args.token);
    const deposit = parseAmount(args.deposit, token.decimals);
    const expiry = (await chainNow(hre)) + BigInt(parsePeriod(args.expiresIn));
    const signer = args.signer !== undefined ? await resolveAccount(hre, args.signer) : ctx.signer.address;
    const approved = await ensureAllowance(ctx, token, deposit);
    const receipt = await send(tokenWords(token), () =>
      ctx.payPerUse.openSession(args.payerId, args.providerId, token.address, deposit, expiry, signer),
    );
    const sessionId: bigint = findEvent(ctx.payPerUse.interface, receipt, "SessionOpened").sessionId;
    const data = { ...(await sessionView(ctx, sessionId)), approved, tx: receipt.hash };
    return output(hre, args.json, data, (d) => {
      if (d.approved) console.log(`Approved PayPerUse to take ${d.depositText} from ${ctx.signer.address}.`);
      console.log(
        `Opened session #${d.sessionId}: agent #${d.payerId} deposited ${d.depositText} for agent #${d.providerId}; ` +
          `vouchers signed by ${d.signer} are redeemable until ${d.endsAtText}.`,
      );
    });
  }),
);

withCommonParams(
  task("ppu:session:topup", "Adds to a session's deposit, and optionally extends it (approves when needed)")
    .addParam("session", "Session id", undefined, types.bigint)
    .addParam("amount", "Amount added, in token units", undefined, types.string)
    .addOptionalParam(
      "expiresIn",
      "New expiry, from now: seconds, or 90s / 45m / 2h / 3d (default: unchanged)",
      undefined,
      types.string,
    ),
).setAction(
  withPlainErrors(async (args: CommonArgs & { session: bigint; amount: string; expiresIn?: string }, hre) => {
    const ctx = await getContext(hre, args.from);
    const { token, words } = await loadSession(ctx, args.session);
    const amount = parseAmount(args.amount, token.decimals);
    const newExpiry = args.expiresIn !== undefined ? (await chainNow(hre)) + BigInt(parsePeriod(args.expiresIn)) : 0n;
    const approved = await ensureAllowance(ctx, token, amount);
    const receipt = await send(words, () => ctx.payPerUse.topUp(args.session, amount, newExpiry));
    const data = {
      ...(await sessionView(ctx, args.session)),
      added: amount,
      addedText: formatAmount(amount, token.decimals, token.symbol),
      approved,
      tx: receipt.hash,
    };
    return output(hre, args.json, data, (d) => {
      if (d.approved) console.log(`Approved PayPerUse to take ${d.addedText} from ${ctx.signer.address}.`);
      console.log(
        `Topped up session #${d.sessionId} by ${d.addedText}: ${d.depositText} deposited, ${d.unredeemedText} ` +
          `not yet redeemed; redeemable until ${d.endsAtText}.`,
      );
    });
  }),
);

withCommonParams(
  task("ppu:voucher", "Signs a session voucher as --from (the session's signer) and prints it as JSON")
    .addParam("session", "Session id", undefined, types.bigint)
    .addParam(
      "amount",
      "Cumulative amount owed so far, in token units (not this call's price)",
      undefined,
      types.string,
    )
    .addParam("calls", "Cumulative calls covered so far", undefined, types.bigint),
).setAction(
  withPlainErrors(async (args: CommonArgs & { session: bigint; amount: string; calls: bigint }, hre) => {
    const ctx = await getContext(hre, args.from);
    const { view, token } = await loadSession(ctx, args.session);
    if (getAddress(view.signer) !== ctx.signer.address) {
      throw new PlainError(
        `Session #${args.session}'s vouchers count only when signed by ${view.signer}, not ${ctx.signer.address}: ` +
          `sign with --from ${view.signer}.`,
      );
    }
    const voucher: Voucher = {
      sessionId: args.session,
      amount: parseAmount(args.amount, token.decimals),
      calls: args.calls,
    };
    const [signature] = await signVouchers(ctx, ctx.signer, [voucher]);
    const signed: SignedVoucher = {
      voucher,
      signature,
      signer: ctx.signer.address,
      amountText: formatAmount(voucher.amount, token.decimals, token.symbol),
    };
    return output(hre, true, signed, () => undefined);
  }),
);

withCommonParams(
  task(
    "ppu:redeem",
    "Redeems vouchers (anyone may; the money goes to the provider): one, or a JSON array in one transaction",
  )
    .addOptionalParam(
      "voucher",
      "A voucher as ppu:voucher printed it (or a JSON array of them)",
      undefined,
      types.string,
    )
    .addOptionalParam("file", "A file holding one voucher or a JSON array of them", undefined, types.string),
).setAction(
  withPlainErrors(async (args: CommonArgs & { voucher?: string; file?: string }, hre) => {
    const signed = parseSignedVouchers(
      readJson(args.voucher, args.file, "what ppu:voucher prints, or an array of it", "--voucher"),
    );
    const ctx = await getContext(hre, args.from);
    const { words } = await loadSession(ctx, signed[0].voucher.sessionId);
    const receipts: ContractTransactionReceipt[] = [];
    if (signed.length === 1) {
      receipts.push(await send(words, () => ctx.payPerUse.redeem(signed[0].voucher, signed[0].signature)));
    } else {
      for (let i = 0; i < signed.length; i += MAX_BATCH) {
        const batch = signed.slice(i, i + MAX_BATCH);
        const vouchers = batch.map((s) => s.voucher);
        const signatures = batch.map((s) => s.signature);
        receipts.push(await send(words, () => ctx.payPerUse.redeemMany(vouchers, signatures)));
      }
    }
    const perSession = new Map<bigint, { paid: bigint; fee: bigint }>();
    let redeemedVouchers = 0;
    for (const receipt of receipts) {
      for (const log of receipt.logs) {
        const parsed = ctx.payPerUse.interface.parseLog(log);
        if (parsed?.name !== "VoucherRedeemed") continue;
        redeemedVouchers++;
        const entry = perSession.get(parsed.args.sessionId) ?? { paid: 0n, fee: 0n };
        entry.paid += parsed.args.paid;
        entry.fee += parsed.args.fee;
        perSession.set(parsed.args.sessionId, entry);
      }
    }
    const sessionIds = [...new Set(signed.map((s) => s.voucher.sessionId))];
    const sessions = [];
    for (const sessionId of sessionIds) {
      const view = await sessionView(ctx, sessionId);
      const got = perSession.get(sessionId) ?? { paid: 0n, fee: 0n };
      const amount = (v: bigint) => formatAmount(v, view.decimals, view.token);
      sessions.push({
        sessionId,
        paid: got.paid,
        paidText: amount(got.paid),
        fee: got.fee,
        feeText: amount(got.fee),
        redeemed: view.redeemed,
        redeemedText: view.redeemedText,
        deposit: view.deposit,
        depositText: view.depositText,
        calls: view.calls,
        state: view.state,
      });
    }
    const gasUsed = receipts.reduce((sum, r) => sum + r.gasUsed, 0n);
    const data = {
      vouchers: signed.length,
      redeemedVouchers,
      stale: signed.length - redeemedVouchers,
      transactions: receipts.length,
      gasUsed,
      sessions,
      txs: receipts.map((r) => r.hash),
    };
    return output(hre, args.json, data, (d) => {
      console.log(
        `Redeemed ${grouped(d.vouchers)} voucher(s) in ${d.transactions} transaction(s), ${grouped(d.gasUsed)} gas` +
          (d.stale > 0 ? `; ${d.stale} were at or below what was already redeemed and paid nothing.` : "."),
      );
      for (const s of d.sessions) {
        console.log(
          `  Session #${s.sessionId}: ${s.paidText} to the provider, ${s.feeText} fee (booked for the treasury ` +
            `when the session is settled); now ${s.redeemedText} redeemed of ${s.depositText}, ` +
            `${grouped(s.calls)} calls (${s.state}).`,
        );
      }
    });
  }),
);

withCommonParams(
  task(
    "ppu:session:close",
    "The payer asks to close a session: vouchers stay redeemable for the grace period, then it can be settled",
  ).addParam("session", "Session id", undefined, types.bigint),
).setAction(
  withPlainErrors(async (args: CommonArgs & { session: bigint }, hre) => {
    const ctx = await getContext(hre, args.from);
    const { words } = await loadSession(ctx, args.session);
    const receipt = await send(words, () => ctx.payPerUse.requestClose(args.session));
    const data = { ...(await sessionView(ctx, args.session)), tx: receipt.hash };
    return output(hre, args.json, data, (d) =>
      console.log(
        `Session #${d.sessionId} is closing: the provider may redeem vouchers until ${d.endsAtText}; ` +
          `after that anyone may settle it (ppu:session:withdraw).`,
      ),
    );
  }),
);

withCommonParams(
  task(
    "ppu:session:withdraw",
    "Settles an ended session (anyone may): the unredeemed deposit goes back to the payer agent's wallet",
  ).addParam("session", "Session id", undefined, types.bigint),
).setAction(
  withPlainErrors(async (args: CommonArgs & { session: bigint }, hre) => {
    const ctx = await getContext(hre, args.from);
    const { view, token, words } = await loadSession(ctx, args.session);
    const receipt = await send(words, () => ctx.payPerUse.settleSession(args.session));
    const e = findEvent(ctx.payPerUse.interface, receipt, "SessionSettled");
    const amount = (v: bigint) => formatAmount(v, token.decimals, token.symbol);
    const data = {
      sessionId: args.session,
      payerId: view.payerId,
      providerId: view.providerId,
      redeemed: e.redeemed as bigint,
      redeemedText: amount(e.redeemed),
      fee: e.fee as bigint,
      feeText: amount(e.fee),
      toProvider: (e.redeemed as bigint) - (e.fee as bigint),
      toProviderText: amount((e.redeemed as bigint) - (e.fee as bigint)),
      refunded: e.refunded as bigint,
      refundedText: amount(e.refunded),
      calls: e.calls as bigint,
      refundedTo: await ctx.registry.getAgentWallet(view.payerId),
      tx: receipt.hash,
    };
    return output(hre, args.json, data, (d) => {
      console.log(
        `Settled session #${d.sessionId}: ${d.redeemedText} was redeemed for ${grouped(d.calls)} calls ` +
          `(${d.toProviderText} to the provider, ${d.feeText} fee now booked for the treasury); ` +
          `${d.refundedText} went back to agent #${d.payerId}'s wallet ${d.refundedTo}.`,
      );
      if (d.redeemed > 0n) {
        console.log(
          `  Reputation recorded the calls; agent #${d.payerId}'s owner may now rate agent #${d.providerId}.`,
        );
      }
    });
  }),
);

// ------------------------------------------------------------------ refunds and money

withCommonParams(
  task("ppu:refund", "The provider refunds part or all of a receipt to the payer agent's wallet (approves when needed)")
    .addParam("receipt", "Receipt id", undefined, types.bigint)
    .addParam("amount", "Amount refunded, in token units", undefined, types.string),
).setAction(
  withPlainErrors(async (args: CommonArgs & { receipt: bigint; amount: string }, hre) => {
    const ctx = await getContext(hre, args.from);
    const r = await ctx.payPerUse.getReceipt(args.receipt);
    if (r.payerId === 0n) throw new PlainError(`Receipt #${args.receipt} does not exist.`);
    const token = await describeToken(ctx, r.token);
    const amount = parseAmount(args.amount, token.decimals);
    const approved = await ensureAllowance(ctx, token, amount);
    const receipt = await send(tokenWords(token), () => ctx.payPerUse.refund(args.receipt, amount));
    const e = findEvent(ctx.payPerUse.interface, receipt, "ChargeRefunded");
    const fmt = (v: bigint) => formatAmount(v, token.decimals, token.symbol);
    const data = {
      receiptId: args.receipt,
      payerId: r.payerId,
      providerId: r.providerId,
      refunded: e.amount as bigint,
      refundedText: fmt(e.amount),
      refundable: e.refundable as bigint,
      refundableText: fmt(e.refundable),
      to: await ctx.registry.getAgentWallet(r.payerId),
      approved,
      tx: receipt.hash,
    };
    return output(hre, args.json, data, (d) => {
      if (d.approved) console.log(`Approved PayPerUse to take ${d.refundedText} from ${ctx.signer.address}.`);
      console.log(
        `Refunded ${d.refundedText} of receipt #${d.receiptId} to agent #${d.payerId}'s wallet ${d.to}; ` +
          `${d.refundableText} is left to refund.`,
      );
    });
  }),
);

withdrawTask({
  name: "ppu:withdraw",
  description:
    "Collects the signer's PayPerUse credit (payouts that failed), or with --fees sweeps fees to the treasury",
  contract: (ctx) => ctx.payPerUse,
  fees: "PayPerUse fees",
  credit: "PayPerUse credit",
});

// ------------------------------------------------------------------ ppu:sync

interface SyncArgs extends CommonArgs {
  payerId: bigint;
  providerId: bigint;
  token: string;
}

withCommonParams(
  task(
    "ppu:sync",
    "Records a pair's pending charges in Reputation (anyone may): their calls and amount, and one right to rate " +
      "per charge for the payer's owner",
  )
    .addParam("payerId", "Paying agent id", undefined, types.bigint)
    .addParam("providerId", "Provider agent id", undefined, types.bigint)
    .addOptionalParam("token", "Token of the charges: USDT, USDG or an address", "USDT", types.string),
).setAction(
  withPlainErrors(async (args: SyncArgs, hre) => {
    const ctx = await getContext(hre, args.from);
    const token = await resolveToken(ctx, args.token);
    const receipt = await send(tokenWords(token), () =>
      ctx.payPerUse.syncReputation(args.payerId, args.providerId, token.address),
    );
    const e = findEvent(ctx.payPerUse.interface, receipt, "ReputationSynced");
    let selfDealing = false;
    let rater: string | undefined;
    for (const log of receipt.logs) {
      if (getAddress(log.address) !== getAddress(ctx.addresses.reputation)) continue;
      const parsed = ctx.reputation.interface.parseLog(log);
      if (parsed?.name === "CallsRecorded") selfDealing = parsed.args.selfDealing;
      if (parsed?.name === "FeedbackRightGranted") rater = parsed.args.rater;
    }
    const amount = e.amount as bigint;
    const receipts = e.receipts as bigint;
    const data = {
      payerId: args.payerId,
      providerId: args.providerId,
      token: token.symbol,
      tokenAddress: token.address,
      calls: e.calls as bigint,
      amount,
      amountText: formatAmount(amount, token.decimals, token.symbol),
      receipts,
      /** Both agents have the same owner: recorded as self-dealing, no record changed, no right. */
      selfDealing,
      /** The payer's owner, who received one right to rate the provider per charge. */
      rater: rater ?? null,
      rightsGranted: rater !== undefined ? receipts : 0n,
      rightsHeld: rater !== undefined ? (await ctx.reputation.feedbackRights(args.providerId, rater))[0] : 0n,
      syncedBy: ctx.signer.address,
      gasUsed: receipt.gasUsed,
      tx: receipt.hash,
    };
    return output(hre, args.json, data, (d) => {
      const what =
        `${grouped(d.receipts)} charge(s) of agent #${d.payerId} to agent #${d.providerId}: ` +
        `${grouped(d.calls)} call(s) worth ${d.amountText}`;
      if (d.selfDealing) {
        console.log(
          `Synced ${what}. Both agents have the same owner, so Reputation recorded them as self-dealing: ` +
            `no record changed and no right to rate.`,
        );
        return;
      }
      console.log(`Recorded in Reputation ${what} (${grouped(d.gasUsed)} gas).`);
      console.log(
        `  Agent #${d.providerId} gains ${grouped(d.calls)} calls served and ${grouped(d.receipts)} settlement(s); ` +
          `agent #${d.payerId}'s owner ${d.rater} received ${grouped(d.rightsGranted)} right(s) to rate it ` +
          `and holds ${grouped(d.rightsHeld)} unused.`,
      );
    });
  }),
);

// ------------------------------------------------------------------ ppu:show

withCommonParams(
  task(
    "ppu:show",
    "A receipt (--receipt, with its pair's charges not yet in Reputation), a session (--session), or " +
      "PayPerUse's settings with neither",
  )
    .addOptionalParam("receipt", "Receipt id", undefined, types.bigint)
    .addOptionalParam("session", "Session id", undefined, types.bigint),
).setAction(
  withPlainErrors(async (args: CommonArgs & { receipt?: bigint; session?: bigint }, hre) => {
    if (args.receipt !== undefined && args.session !== undefined) {
      throw new PlainError("Give --receipt or --session, not both.");
    }
    const ctx = await getContext(hre, args.from);
    if (args.receipt !== undefined) {
      const data = await receiptView(ctx, args.receipt);
      return output(hre, args.json, data, (d) => {
        printFields(
          {
            payer: `agent #${d.payerId}`,
            provider: `agent #${d.providerId}`,
            ...(d.charge && {
              service: `#${d.charge.serviceId}`,
              units: grouped(d.charge.units),
              paid: d.charge.totalText,
              "protocol fee": d.charge.feeText,
              "request ref": d.charge.requestRef === ZeroHash ? "(none)" : d.charge.requestRef,
              "paid by": d.charge.payer,
            }),
            "left to refund": d.refundableText,
            refunds: d.refunds.length === 0 ? "none" : d.refunds.map((r) => r.amountText).join(", "),
            "in Reputation":
              d.inReputation === true
                ? "yes (synced)"
                : d.inReputation === false
                  ? "not yet: it waits with the pair's other charges (ppu:sync)"
                  : "unknown (no events); see the pair's pending charges",
            "pair's charges not in Reputation": describePending(d.pending),
          },
          { title: `Receipt #${d.receiptId} (${d.token})` },
        );
      });
    }
    if (args.session !== undefined) {
      const data = await sessionView(ctx, args.session);
      return output(hre, args.json, data, (d) => {
        printFields(
          {
            state: d.state,
            next: d.next,
            payer: `agent #${d.payerId}`,
            provider: `agent #${d.providerId}`,
            "voucher signer": d.signer,
            deposited: d.depositText,
            redeemed: d.redeemedText,
            "paid to the provider": d.toProviderText,
            "protocol fee":
              `${d.feeText} (${formatBps(d.feeBps)} of the redeemed), ` +
              (d.feeBooked ? "booked for the treasury" : "booked for the treasury when settled"),
            [d.settled ? "returned to the payer" : "not yet redeemed"]: d.unredeemedText,
            calls: grouped(d.calls),
            [d.closing || d.settled ? "ends (ended) at" : "expires at"]: d.endsAtText,
            "close grace": formatPeriod(d.closeGrace),
          },
          { title: `Session #${d.sessionId} (${d.token})` },
        );
      });
    }
    const data = await configView(ctx);
    return output(hre, args.json, data, (d) => {
      printFields(
        {
          PayPerUse: d.payPerUse,
          paused: d.paused,
          "protocol fee": d.fee,
          "close grace": d.closeGraceText,
          treasury: d.treasury,
          registry: d.registry,
          reputation: d.reputation,
          receipts: grouped(d.receipts),
          sessions: grouped(d.sessions),
        },
        { title: "PayPerUse" },
      );
      printTable(
        d.tokens.map((t) => ({
          token: t.token,
          address: shortAddress(t.address),
          allowed: t.allowed,
          "held (sessions, credits, fees)": t.heldText,
          "fees not swept": t.accruedFeesText,
        })),
        { title: "Tokens" },
      );
      console.log(d.note);
    });
  }),
);

/** `who` lets PayPerUse take any amount of `token` (the demo's faucet-funded accounts). */
export async function approvePayPerUse(ctx: Context, who: HardhatEthersSigner, token: TokenInfo) {
  const { IERC20Metadata__factory } = await import("../typechain-types");
  await confirm(IERC20Metadata__factory.connect(token.address, who).approve(ctx.addresses.payPerUse, MaxUint256));
}
