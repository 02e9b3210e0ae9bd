import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { BaseContract, ContractTransactionResponse, LogDescription, TypedDataDomain } from "ethers";
import {
  deployPayPerUse,
  ppuDomain,
  CHARGE_TYPES,
  UP_TO_TYPES,
  VOUCHER_TYPES,
  PERMIT_TYPES,
  RECEIVE_TYPES,
  FUNDING,
  DAY,
  HOUR,
  REQUEST,
} from "../fixtures/payPerUse";
import { signAgentWallet, usd } from "../fixtures/helpers";
import { IERC20__factory } from "../../typechain-types";
import type { AgentRegistry, IERC20, MockBlacklistToken, PayPerUse, Reputation } from "../../typechain-types";

/**
 * PayPerUse properties.
 *
 * 1. Sessions alone: random deposits, top-ups, vouchers (cumulative amounts below what was redeemed,
 *    in between, above the deposit), single and batched redeems, close requests and time jumps on
 *    two sessions at once, then settlement. The provider never receives more than was deposited
 *    (exactly `redeemed - fee(redeemed)` after every redeem), a voucher at or below the redeemed
 *    amount pays nothing, no session fee is booked before settlement, and after settlement refund +
 *    payouts + fee equal the deposits to the wei.
 * 2. Everything against a TypeScript model: charges, signed charges (allowance, permit, a failing
 *    permit, EIP-3009), up-to settlements, refunds, nonce cancellations, Reputation syncs, sessions
 *    (open, top up, redeem, redeem in batches, close, settle), time jumps, fee / grace / token /
 *    pause changes, provider pauses and price changes, payout wallets that change, sweeps and
 *    withdrawals, over USDT, USDG and a blacklisting token (whose failed payouts become credits).
 *    After every command: PayPerUse holds per token exactly what its unsettled sessions hold (the
 *    deposit less what the provider was paid) + credits + fees, and every balance, credit, fee,
 *    receipt, session, nonce, pending and recorded Reputation is the model's. At the end every
 *    session is settled and only fees and credits remain; once swept and withdrawn, nothing.
 *
 * Fixed seed by default; FC_SEED, FC_RUNS and FC_COMMANDS (longest sequence) explore further,
 * FC_STATS=1 prints how often each call succeeded or failed which way, and FC_NOSHRINK=1 reports
 * the first failure as found (no shrinking), e.g. `FC_SEED=7 FC_RUNS=200 FC_STATS=1 npx hardhat test <file>`.
 */
const seed = Number(process.env.FC_SEED ?? 42);
const numRuns = Number(process.env.FC_RUNS ?? 20);
const maxCommands = Number(process.env.FC_COMMANDS ?? 40);

/** How often each call ended which way (printed with FC_STATS=1). */
const stats = new Map<string, number>();
const count = (key: string) => stats.set(key, (stats.get(key) ?? 0) + 1);

/** Explicit gas so that no estimate runs: every call, reverting or not, is mined at the time set for it. */
const GAS = { gasLimit: 3_000_000 };
const BPS = 10_000n;
const ALICE = 1n;
const BOB = 2n;
const CAROL = 3n;
const DAVE = 4n;
const AGENTS = [ALICE, BOB, CAROL, DAVE];
const OP_CAP = usd(50); // the operator's per-transaction cap for alice, every token
const BLK = 2; // index of the blacklisting token
const TOKEN_NAMES = ["USDT", "USDG", "BLK"];
const MAX_SESSIONS = 6;
const MAX_SESSION_DURATION = 365n * DAY;
const UINT96_MAX = (1n << 96n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;
const UINT32_MAX = (1n << 32n) - 1n;

const abi = ethers.AbiCoder.defaultAbiCoder();

/**
 * deployPayPerUse plus: the blacklisting token allowed, minted and approved; bob lists a third
 * service priced in it (0.1 per unit); payout wallets for alice (signer 10) and bob (signer 9);
 * `operator` may spend for alice up to OP_CAP per transaction in every token. Wallets 9-11 hold and
 * approved all three tokens (they may refund as their provider).
 */
async function ppuModelFixture() {
  const f = await deployPayPerUse();
  const signers = await ethers.getSigners();
  const walletPool = [signers[9], signers[10], signers[11]];
  const blk = (await ethers.deployContract("MockBlacklistToken")) as unknown as MockBlacklistToken;
  const ppuAddress = await f.payPerUse.getAddress();
  const blkAddress = await blk.getAddress();
  await f.payPerUse.setToken(blkAddress, true);
  for (const who of [f.alice, f.bob, f.carol, f.dave, f.operator, ...walletPool]) {
    await blk.mint(who.address, usd(1_000_000));
    await blk.connect(who).approve(ppuAddress, ethers.MaxUint256);
  }
  for (const token of [f.usdt, f.usdg]) {
    for (const who of walletPool) {
      await token.mint(who.address, usd(1_000_000));
      await token.connect(who).approve(ppuAddress, ethers.MaxUint256);
    }
  }
  await f.registry.connect(f.bob).listService(f.bobId, ethers.id("blk:svc"), 0, blkAddress, usd("0.1"), "https://b/k");
  const blkService = await f.registry.serviceCount();
  const latest = BigInt(await time.latest());
  for (const [agentId, owner, wallet] of [
    [f.aliceId, f.alice, walletPool[1]],
    [f.bobId, f.bob, walletPool[0]],
  ] as const) {
    const signature = await signAgentWallet(f.registry, wallet, agentId, wallet.address, owner.address, latest + 200n);
    await f.registry.connect(owner).setAgentWallet(agentId, wallet.address, latest + 200n, signature);
  }
  await f.registry
    .connect(f.alice)
    .setOperator(f.aliceId, f.operator.address, { expiry: latest + 3650n * DAY, minScoreBps: 0, allowListOnly: false });
  for (const token of [await f.usdt.getAddress(), await f.usdg.getAddress(), blkAddress]) {
    await f.registry.connect(f.alice).setTokenLimit(f.aliceId, f.operator.address, token, {
      perTxCap: OP_CAP,
      periodCap: UINT96_MAX,
      period: 365 * 86_400,
      rolling: false,
    });
  }
  return { ...f, blk, blkService, walletPool };
}

type ModelFixture = Awaited<ReturnType<typeof ppuModelFixture>>;

// ---------------------------------------------------------------------------------------------- model

interface SessionModel {
  id: bigint;
  k: number;
  payerId: bigint;
  providerId: bigint;
  signer: string;
  deposit: bigint;
  redeemed: bigint;
  calls: bigint;
  endsAt: bigint;
  closeGrace: bigint;
  closing: boolean;
  settled: boolean;
  feeBps: bigint;
}

interface ReceiptModel {
  id: bigint;
  k: number;
  payerId: bigint;
  providerId: bigint;
  refundable: bigint;
}

interface ServiceModel {
  id: bigint;
  providerId: bigint;
  k: number;
  price: bigint;
  active: boolean;
}

interface Model {
  now: bigint; // the latest block's timestamp, or later after a time jump: the next tx is mined at now + 1
  sessions: SessionModel[];
  receipts: ReceiptModel[];
  services: ServiceModel[];
  balances: Map<string, bigint>[]; // per token: address -> balance
  credits: Map<string, bigint>[]; // per token: address -> credit
  fees: bigint[];
  feeBps: bigint;
  closeGrace: bigint;
  paused: boolean;
  allowed: boolean[];
  agentPaused: Set<bigint>;
  wallets: Map<bigint, string>; // agents with a payout wallet set
  blacklisted: Set<string>;
  nonces: Map<string, Set<bigint>>; // signer -> used or cancelled nonces
  callsServed: Map<bigint, bigint>;
  settlementsServed: Map<bigint, bigint>;
  pending: Map<
    string,
    { payerId: bigint; providerId: bigint; k: number; calls: bigint; amount: bigint; receipts: bigint }
  >;
  volume: Map<string, bigint>; // `${agentId}/${k}` -> volume
  credited: [string, string, bigint][]; // PaymentCredited events expected from the current transaction
  log: string[];
}

interface Real {
  f: ModelFixture;
  ppu: PayPerUse;
  registry: AgentRegistry;
  reputation: Reputation;
  blk: MockBlacklistToken;
  erc20: IERC20[];
  tokenAddr: string[];
  ppuAddr: string;
  treasury: string;
  owners: Map<bigint, HardhatEthersSigner>;
  signers: Map<string, HardhatEthersSigner>; // address -> signer, every local account
  domain: TypedDataDomain;
  tokenDomains: TypedDataDomain[]; // USDT, USDG (EIP-2612 / EIP-3009)
  tracked: string[]; // every address whose balances and credits the model tracks
}

type Events = LogDescription[];
type Verdict =
  | { error: string; args: unknown[]; on: BaseContract | null }
  | { noReason: true }
  | { apply: (events: Events) => void };

/** A PayPerUse custom error (or, with `on`, another contract's that bubbles up). */
const fail = (error: string, ...args: unknown[]): Verdict => ({ error, args, on: null });
const failOn = (on: BaseContract, error: string, ...args: unknown[]): Verdict => ({ error, args, on });

const ownerOf = (r: Real, agentId: bigint) => r.owners.get(agentId)!.address;
const walletOf = (m: Model, r: Real, agentId: bigint) => m.wallets.get(agentId) ?? ownerOf(r, agentId);
const signerFor = (r: Real, address: string) => r.signers.get(address)!;
const key = (agentId: bigint, k: number) => `${agentId}/${k}`;
const describeSession = (s: SessionModel) =>
  `#${s.id} ${s.payerId}->${s.providerId} ${TOKEN_NAMES[s.k]} deposit ${s.deposit} redeemed ${s.redeemed} ends ${s.endsAt}` +
  `${s.closing ? " closing" : ""}${s.settled ? " settled" : ""}`;

function move(m: Model, k: number, from: string, to: string, amount: bigint) {
  if (amount === 0n) return;
  const b = m.balances[k];
  expect(b.has(from) && b.has(to), `untracked transfer ${from} -> ${to}`).to.equal(true);
  b.set(from, b.get(from)! - amount);
  b.set(to, b.get(to)! + amount);
}

/** PayPerUse pays `to`; the blacklisting token refuses blacklisted recipients, who are credited. */
function push(m: Model, r: Real, k: number, to: string, amount: bigint) {
  if (amount === 0n) return;
  if (k === BLK && m.blacklisted.has(to)) {
    m.credits[k].set(to, m.credits[k].get(to)! + amount);
    m.credited.push([r.tokenAddr[k], to, amount]);
    count("  (a payout credited)");
  } else move(m, k, r.ppuAddr, to, amount);
}

/** Whether pulling from `from` fails (blacklisted in the blacklisting token). */
const pullVerdict = (m: Model, r: Real, k: number, from: string): Verdict | null =>
  k === BLK && m.blacklisted.has(from) ? failOn(r.blk, "MockBlacklistTokenBlacklisted", from) : null;

/** The registry's `canAct`: owner, payout wallet, or alice's operator. */
function canAct(m: Model, r: Real, agentId: bigint, account: string) {
  return (
    account === ownerOf(r, agentId) ||
    account === m.wallets.get(agentId) ||
    (agentId === ALICE && account === r.f.operator.address)
  );
}

/** The registry's `consumeSpend` for `spender` spending `amount` of token `k` for `agentId`. */
function spendVerdict(m: Model, r: Real, agentId: bigint, spender: string, k: number, amount: bigint): Verdict | null {
  if (spender === ownerOf(r, agentId) || spender === m.wallets.get(agentId)) return null;
  if (agentId === ALICE && spender === r.f.operator.address) {
    return amount > OP_CAP ? failOn(r.registry, "AgentRegistryPerTxCapExceeded", r.tokenAddr[k], amount, OP_CAP) : null;
  }
  return failOn(r.registry, "AgentRegistryNotAuthorized", agentId, spender);
}

const available = (m: Model, s: ServiceModel) => s.active && !m.agentPaused.has(s.providerId);
const liveAt = (s: SessionModel, ts: bigint) => !s.settled && ts <= s.endsAt;

/** The chain's view of the event `name`, as plain values. */
function eventArgs(events: Events, name: string) {
  return events.filter((e) => e.name === name).map((e) => e.args.toArray());
}

/**
 * Sends one transaction mined at exactly `m.now + 1` and checks it against the verdict: the exact
 * custom error, or success, after which the model applies it and checks the credits it caused.
 */
async function attempt(m: Model, r: Real, what: string, send: () => Promise<ContractTransactionResponse>, v: Verdict) {
  const ts = m.now + 1n;
  const verdict = "error" in v ? v.error : "noReason" in v ? "revert without reason" : "ok";
  count(`${/^[A-Za-z]*/.exec(what)![0]} -> ${verdict}`);
  m.log.push(`${what} @${ts}: expect ${"error" in v ? `${v.error}(${v.args.join(", ")})` : verdict}`);
  await time.setNextBlockTimestamp(ts);
  if ("error" in v) {
    const assertion = expect(send(), what).to.be.revertedWithCustomError(v.on ?? r.ppu, v.error);
    await (v.args.length > 0 ? assertion.withArgs(...v.args) : assertion);
  } else if ("noReason" in v) {
    await expect(send(), what).to.be.revertedWithoutReason();
  } else {
    const tx = await send();
    const receipt = (await tx.wait())!;
    const events = receipt.logs
      .filter((log) => log.address === r.ppuAddr)
      .map((log) => r.ppu.interface.parseLog(log))
      .filter((e): e is LogDescription => e !== null);
    m.credited = [];
    v.apply(events);
    expect(eventArgs(events, "PaymentCredited"), `${what}: PaymentCredited events`).to.deep.equal(m.credited);
  }
  m.now = ts;
  expect(BigInt(await time.latest()), `block timestamp of ${what}`).to.equal(ts);
}

/** Reputation records calls, volume and settlements (calls and settlements saturate). */
function record(m: Model, payerId: bigint, providerId: bigint, k: number, calls: bigint, amount: bigint, n: bigint) {
  const served = m.callsServed.get(providerId)! + calls;
  m.callsServed.set(providerId, served > UINT64_MAX ? UINT64_MAX : served);
  const settlements = m.settlementsServed.get(providerId)! + n;
  m.settlementsServed.set(providerId, settlements > UINT32_MAX ? UINT32_MAX : settlements);
  m.volume.set(key(payerId, k), m.volume.get(key(payerId, k))! + amount);
  m.volume.set(key(providerId, k), m.volume.get(key(providerId, k))! + amount);
}

const pairKey = (payerId: bigint, providerId: bigint, k: number) => `${payerId}/${providerId}/${k}`;

/** A charge or up-to payment that went through: receipt, fee, pending Reputation, provider payout. */
function applyCharge(
  m: Model,
  r: Real,
  events: Events,
  payerId: bigint,
  svc: ServiceModel,
  units: bigint,
  total: bigint,
  payer: string,
  requestRef: string,
) {
  const k = svc.k;
  const fee = feeOf(total, m.feeBps);
  const id = BigInt(m.receipts.length + 1);
  expect(eventArgs(events, "Charged"), "Charged").to.deep.equal([
    [id, payerId, svc.providerId, svc.id, r.tokenAddr[k], units, total, fee, requestRef, payer],
  ]);
  m.receipts.push({ id, k, payerId, providerId: svc.providerId, refundable: total });
  move(m, k, payer, r.ppuAddr, total);
  m.fees[k] += fee;
  // Recorded in Reputation only when the pair is synced (no counter gets near its limit here).
  const pk = pairKey(payerId, svc.providerId, k);
  const pending = m.pending.get(pk) ?? { payerId, providerId: svc.providerId, k, calls: 0n, amount: 0n, receipts: 0n };
  pending.calls += units;
  pending.amount += total;
  pending.receipts += 1n;
  m.pending.set(pk, pending);
  expect(eventArgs(events, "ReputationSynced"), "ReputationSynced").to.deep.equal([]);
  push(m, r, k, walletOf(m, r, svc.providerId), total - fee);
}

const feeOf = (amount: bigint, feeBps: bigint) => (amount * feeBps) / BPS;

/**
 * What redeeming `amount` books on `s` (the model's copy is updated); null when it is at or below
 * what was redeemed. The fee is taken on the cumulative amount: the provider has always been paid
 * exactly `redeemed - fee(redeemed)`.
 */
function bookVoucher(s: SessionModel, amount: bigint, calls: bigint) {
  const capped = amount < s.deposit ? amount : s.deposit;
  if (capped <= s.redeemed) {
    count("  (a voucher at or below the redeemed amount)");
    return null;
  }
  if (amount > s.deposit) count("  (a voucher above the deposit)");
  const fee = feeOf(capped, s.feeBps) - feeOf(s.redeemed, s.feeBps);
  const net = capped - s.redeemed - fee;
  s.redeemed = capped;
  const cappedCalls = calls < UINT64_MAX ? calls : UINT64_MAX;
  if (cappedCalls > s.calls) s.calls = cappedCalls;
  return { capped, net, fee, calls: s.calls };
}

/** What an unsettled session still holds: its deposit less what its provider was paid. */
const heldBy = (deposit: bigint, redeemed: bigint, feeBps: bigint) => deposit - redeemed + feeOf(redeemed, feeBps);

/** Settles an ended session: its fee to the treasury's account, the rest to the payer's wallet, the calls to Reputation. */
function applySettle(m: Model, r: Real, s: SessionModel, events: Events) {
  const rest = s.deposit - s.redeemed;
  const fee = feeOf(s.redeemed, s.feeBps);
  expect(eventArgs(events, "SessionSettled"), `SessionSettled #${s.id}`).to.deep.equal([
    [s.id, s.redeemed, fee, rest, s.calls],
  ]);
  s.settled = true;
  m.fees[s.k] += fee;
  if (s.redeemed !== 0n) record(m, s.payerId, s.providerId, s.k, s.calls === 0n ? 1n : s.calls, s.redeemed, 1n);
  push(m, r, s.k, walletOf(m, r, s.payerId), rest);
}

function settleVerdict(m: Model, r: Real, s: SessionModel, ts: bigint): Verdict {
  if (s.settled) return fail("PayPerUseSessionSettled", s.id);
  if (ts <= s.endsAt) return fail("PayPerUseSessionNotEnded", s.id, s.endsAt);
  return { apply: (events) => applySettle(m, r, s, events) };
}

/** Every invariant, against the chain. */
async function checkAll(m: Model, r: Real) {
  const { ppu } = r;
  const nonceChecks = [...m.nonces.entries()].flatMap(([a, set]) => [...set].map((n) => [a, n] as const));
  const pairs = [...m.pending.values()];
  const [
    sessions,
    receipts,
    sessionCount,
    receiptCount,
    config,
    paused,
    allowed,
    nonces,
    records,
    volumes,
    wallets,
    pending,
  ] = await Promise.all([
    Promise.all(m.sessions.map((s) => ppu.getSession(s.id))),
    Promise.all(m.receipts.map((x) => ppu.getReceipt(x.id))),
    ppu.sessionCount(),
    ppu.receiptCount(),
    ppu.config(),
    ppu.paused(),
    Promise.all(r.tokenAddr.map((t) => ppu.tokenAllowed(t))),
    Promise.all(nonceChecks.map(([a, n]) => ppu.nonceUsed(a, n))),
    Promise.all(AGENTS.map((id) => r.reputation.getRecord(id))),
    Promise.all(AGENTS.flatMap((id) => r.tokenAddr.map((t) => r.reputation.getVolume(id, t)))),
    Promise.all(AGENTS.map((id) => r.registry.getAgentWallet(id))),
    Promise.all(pairs.map((x) => ppu.pendingReputation(x.payerId, x.providerId, r.tokenAddr[x.k]))),
  ]);
  expect(
    pending.map((x) => [...x]),
    `pendingReputation of ${pairs.map((x) => pairKey(x.payerId, x.providerId, x.k)).join(", ")}`,
  ).to.deep.equal(pairs.map((x) => [x.calls, x.amount, x.receipts]));
  expect([sessionCount, receiptCount], "sessionCount, receiptCount").to.deep.equal([
    BigInt(m.sessions.length),
    BigInt(m.receipts.length),
  ]);
  expect([config[3], config[4], paused], "feeBps, closeGrace, paused").to.deep.equal([
    m.feeBps,
    m.closeGrace,
    m.paused,
  ]);
  expect(allowed, "tokenAllowed").to.deep.equal(m.allowed);
  expect(nonces, "used nonces").to.deep.equal(nonceChecks.map(() => true));
  expect(wallets, "payout wallets").to.deep.equal(AGENTS.map((id) => walletOf(m, r, id)));
  m.sessions.forEach((s, i) => {
    const c = sessions[i];
    expect(c.redeemed <= c.deposit, `session #${s.id}: redeemed ${c.redeemed} above deposit ${c.deposit}`).to.equal(
      true,
    );
    expect([...c], `session ${describeSession(s)}`).to.deep.equal([
      r.tokenAddr[s.k],
      s.endsAt,
      s.closeGrace,
      s.closing,
      s.settled,
      s.feeBps,
      s.signer,
      s.payerId,
      s.providerId,
      s.deposit,
      s.redeemed,
      s.calls,
    ]);
  });
  m.receipts.forEach((x, i) => {
    expect([...receipts[i]], `receipt #${x.id}`).to.deep.equal([
      x.payerId,
      x.providerId,
      x.refundable,
      r.tokenAddr[x.k],
    ]);
  });
  expect(
    records.map((rec) => [rec.callsServed, rec.settlementsServed]),
    "Reputation callsServed, settlementsServed",
  ).to.deep.equal(AGENTS.map((id) => [m.callsServed.get(id)!, m.settlementsServed.get(id)!]));
  expect(volumes, "Reputation volumes").to.deep.equal(
    AGENTS.flatMap((id) => r.tokenAddr.map((_, k) => m.volume.get(key(id, k))!)),
  );

  for (let k = 0; k < r.erc20.length; k++) {
    const [balances, credits, fees] = await Promise.all([
      Promise.all(r.tracked.map((a) => r.erc20[k].balanceOf(a))),
      Promise.all(r.tracked.map((a) => ppu.creditOf(r.tokenAddr[k], a))),
      ppu.accruedFees(r.tokenAddr[k]),
    ]);
    // The contract holds exactly what unsettled sessions hold (deposit less what the provider was
    // paid: the unredeemed part and the fee not yet booked) + credits + fees.
    let open = 0n;
    sessions.forEach((c) => {
      if (c.token === r.tokenAddr[k] && !c.settled) open += heldBy(c.deposit, c.redeemed, c.feeBps);
    });
    const creditSum = credits.reduce((a, b) => a + b, 0n);
    const held = balances[r.tracked.indexOf(r.ppuAddr)];
    expect(
      held,
      `${TOKEN_NAMES[k]}: PayPerUse balance = sessions ${open} + credits ${creditSum} + fees ${fees}`,
    ).to.equal(open + creditSum + fees);
    expect(fees, `${TOKEN_NAMES[k]} accruedFees`).to.equal(m.fees[k]);
    expect(credits, `${TOKEN_NAMES[k]} credits of ${r.tracked.join(", ")}`).to.deep.equal(
      r.tracked.map((a) => m.credits[k].get(a)!),
    );
    expect(balances, `${TOKEN_NAMES[k]} balances of ${r.tracked.join(", ")}`).to.deep.equal(
      r.tracked.map((a) => m.balances[k].get(a)!),
    );
  }
}

// ---------------------------------------------------------------------------------------------- commands

abstract class Command implements fc.AsyncCommand<Model, Real> {
  check(_m: Readonly<Model>): boolean {
    return true;
  }
  abstract exec(m: Model, r: Real): Promise<void>;
  async run(m: Model, r: Real) {
    await this.exec(m, r);
    await checkAll(m, r);
  }
  abstract toString(): string;
}

type Who = "owner" | "operator" | "wallet" | "stranger";

/** The account acting for `agentId` in the role `who` (its wallet falls back to its owner). */
function actor(m: Model, r: Real, agentId: bigint, who: Who): string {
  if (who === "owner") return ownerOf(r, agentId);
  if (who === "operator") return r.f.operator.address;
  if (who === "wallet") return walletOf(m, r, agentId);
  return r.f.stranger.address;
}

type Window = "ok" | "expired" | "early";
type NonceKind = "fresh" | "used";

/** A signer's nonce: a fresh random one, or (when it has any) one it already used. */
function pickNonce(m: Model, signer: string, kind: NonceKind, fresh: bigint, pick: number) {
  const used = [...(m.nonces.get(signer) ?? [])];
  return kind === "used" && used.length > 0 ? used[pick % used.length] : fresh;
}

function windowOf(window: Window, ts: bigint, span: bigint) {
  if (window === "expired") return { validAfter: 0n, validBefore: ts };
  if (window === "early") return { validAfter: ts, validBefore: ts + span };
  return { validAfter: ts - 1n - span, validBefore: ts + span };
}

/** The shared checks of a signed authorisation, in the contract's order. */
function authVerdict(
  m: Model,
  payer: string,
  nonce: bigint,
  win: { validAfter: bigint; validBefore: bigint },
  ts: bigint,
  forged: boolean,
) {
  if (ts <= win.validAfter) return fail("PayPerUseNotYetValid", win.validAfter);
  if (ts >= win.validBefore) return fail("PayPerUseExpired", win.validBefore);
  if (m.nonces.get(payer)?.has(nonce)) return fail("PayPerUseNonceUsed", payer, nonce);
  if (forged) return fail("PayPerUseBadSignature", payer);
  return null;
}

/** The price checks of `_quote`: units, availability, token. */
function quoteVerdict(m: Model, r: Real, svc: ServiceModel, units: bigint) {
  if (units === 0n) return fail("PayPerUseBadAmount", 0n);
  if (!available(m, svc)) return fail("PayPerUseServiceUnavailable", svc.id);
  if (!m.allowed[svc.k]) return fail("PayPerUseTokenNotAllowed", r.tokenAddr[svc.k]);
  return null;
}

const useNonce = (m: Model, signer: string, nonce: bigint) => {
  if (!m.nonces.has(signer)) m.nonces.set(signer, new Set());
  m.nonces.get(signer)!.add(nonce);
};

class Charge extends Command {
  constructor(
    readonly payerId: bigint,
    readonly svc: number,
    readonly units: bigint,
    readonly who: Who,
    readonly max: "exact" | "above" | "below",
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const svc = m.services[this.svc];
    const total = this.units * svc.price;
    const maxTotal = this.max === "exact" || total === 0n ? total : this.max === "above" ? total + usd(1) : total - 1n;
    const caller = actor(m, r, this.payerId, this.who);
    const v: Verdict = (m.paused ? fail("EnforcedPause") : null) ??
      quoteVerdict(m, r, svc, this.units) ??
      (total > maxTotal ? fail("PayPerUseAboveMax", total, maxTotal) : null) ??
      (this.payerId === svc.providerId ? fail("PayPerUseSelfPayment", this.payerId) : null) ??
      spendVerdict(m, r, this.payerId, caller, svc.k, total) ??
      pullVerdict(m, r, svc.k, caller) ?? {
        apply: (events) => applyCharge(m, r, events, this.payerId, svc, this.units, total, caller, REQUEST),
      };
    await attempt(
      m,
      r,
      `${this}: total ${total}`,
      () =>
        r.ppu
          .connect(signerFor(r, caller))
          .charge(this.payerId, svc.id, this.units, r.tokenAddr[svc.k], maxTotal, REQUEST, GAS),
      v,
    );
  }
  toString = () =>
    `charge(#${this.payerId} by ${this.who}, service ${this.svc + 1}, ${this.units} units, max ${this.max})`;
}

type Funding = "allowance" | "permit" | "failedPermit" | "receive" | "badData";

interface SignedParams {
  payerId: bigint;
  svc: number;
  units: bigint;
  who: "owner" | "operator" | "stranger" | "forged";
  nonceKind: NonceKind;
  nonce: bigint;
  noncePick: number;
  window: Window;
  funding: Funding;
}

/** The funding data of a signed payment of `amount` from `payer` in token `k`, signed where needed. */
async function fundingData(
  r: Real,
  k: number,
  payer: string,
  amount: bigint,
  ts: bigint,
  funding: Funding,
  nonce: bigint,
) {
  const signer = signerFor(r, payer);
  if (funding === "badData") return { mode: FUNDING.Allowance, data: "0x00" };
  if (funding === "permit" || funding === "failedPermit") {
    if (k === BLK) {
      // No permit in this token: the call fails, is ignored, and the allowance pays.
      const data = abi.encode(
        ["uint256", "uint256", "uint8", "bytes32", "bytes32"],
        [ethers.MaxUint256, ts + HOUR, 27, ethers.id("r"), ethers.id("s")],
      );
      return { mode: FUNDING.Permit, data };
    }
    const token = await ethers.getContractAt("MockStablecoin", r.tokenAddr[k]);
    // A failed permit (a wrong nonce, as when front-run) is ignored: the allowance is there.
    const permitNonce = (await token.nonces(payer)) + (funding === "failedPermit" ? 1n : 0n);
    const value = ethers.MaxUint256; // keeps the standing infinite allowance
    const sig = ethers.Signature.from(
      await signer.signTypedData(r.tokenDomains[k], PERMIT_TYPES, {
        owner: payer,
        spender: r.ppuAddr,
        value,
        nonce: permitNonce,
        deadline: ts + HOUR,
      }),
    );
    const data = abi.encode(
      ["uint256", "uint256", "uint8", "bytes32", "bytes32"],
      [value, ts + HOUR, sig.v, sig.r, sig.s],
    );
    return { mode: FUNDING.Permit, data };
  }
  if (funding === "receive") {
    const authNonce = ethers.toBeHex(nonce, 32);
    const win = { validAfter: 0n, validBefore: ts + HOUR };
    // No EIP-3009 in the blacklisting token: any signature, the call reverts without a reason.
    let sig = { v: 27, r: ethers.id("r"), s: ethers.id("s") };
    if (k !== BLK) {
      sig = ethers.Signature.from(
        await signer.signTypedData(r.tokenDomains[k], RECEIVE_TYPES, {
          from: payer,
          to: r.ppuAddr,
          value: amount,
          ...win,
          nonce: authNonce,
        }),
      );
    }
    const data = abi.encode(
      ["uint256", "uint256", "bytes32", "uint8", "bytes32", "bytes32"],
      [win.validAfter, win.validBefore, authNonce, sig.v, sig.r, sig.s],
    );
    return { mode: FUNDING.ReceiveWithAuthorization, data };
  }
  return { mode: FUNDING.Allowance, data: "0x" };
}

/**
 * The signer of a signed payment (`auth.payer`) and the key that actually signs: the payer agent's
 * owner, alice's operator, a stranger (a valid signature by someone who may not spend), or the
 * owner's name signed by the stranger's key (forged).
 */
function signedBy(r: Real, p: SignedParams) {
  if (p.who === "forged") return { payer: ownerOf(r, p.payerId), key: r.f.stranger };
  const key = p.who === "owner" ? r.owners.get(p.payerId)! : p.who === "operator" ? r.f.operator : r.f.stranger;
  return { payer: key.address, key };
}

class SubmitCharge extends Command {
  constructor(
    readonly p: SignedParams,
    readonly mismatch: boolean,
    readonly submitter: "provider" | "stranger",
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const p = this.p;
    const ts = m.now + 1n;
    const svc = m.services[p.svc];
    const total = p.units * svc.price;
    const { payer, key } = signedBy(r, p);
    const nonce = pickNonce(m, payer, p.nonceKind, p.nonce, p.noncePick);
    const auth = {
      payerId: p.payerId,
      payer,
      serviceId: svc.id,
      token: r.tokenAddr[svc.k],
      units: p.units,
      amount: total + (this.mismatch ? 1n : 0n),
      requestRef: ethers.id(`charge ${nonce}`),
      nonce,
      ...windowOf(p.window, ts, HOUR),
    };
    const signature = await key.signTypedData(r.domain, CHARGE_TYPES, auth);
    const funding = await fundingData(r, svc.k, payer, total, ts, p.funding, nonce);
    const v: Verdict = (m.paused ? fail("EnforcedPause") : null) ??
      authVerdict(m, payer, nonce, auth, ts, p.who === "forged") ??
      quoteVerdict(m, r, svc, p.units) ??
      (auth.amount !== total ? fail("PayPerUseAmountMismatch", auth.amount, total) : null) ??
      (p.payerId === svc.providerId ? fail("PayPerUseSelfPayment", p.payerId) : null) ??
      spendVerdict(m, r, p.payerId, payer, svc.k, total) ??
      (p.funding === "badData" ? fail("PayPerUseBadFunding") : null) ??
      (p.funding === "receive" && svc.k === BLK ? { noReason: true as const } : null) ??
      (p.funding === "receive" ? null : pullVerdict(m, r, svc.k, payer)) ?? {
        apply: (events) => {
          expect(eventArgs(events, "AuthorizationUsed"), "AuthorizationUsed").to.deep.equal([[payer, nonce]]);
          count(`  (${this.constructor.name} funded by ${p.funding}${svc.k === BLK ? " in BLK" : ""})`);
          useNonce(m, payer, nonce);
          applyCharge(m, r, events, p.payerId, svc, p.units, total, payer, auth.requestRef);
        },
      };
    const submitter = this.submitter === "provider" ? r.owners.get(svc.providerId)! : r.f.stranger;
    await attempt(
      m,
      r,
      `${this}: total ${total}, nonce ${nonce}`,
      () => r.ppu.connect(submitter).submitCharge(auth, signature, funding.mode, funding.data, GAS),
      v,
    );
  }
  toString = () =>
    `submitCharge(#${this.p.payerId} signed by ${this.p.who}, service ${this.p.svc + 1}, ${this.p.units} units, ` +
    `${this.p.nonceKind} nonce, ${this.p.window}, ${this.p.funding}${this.mismatch ? ", amount + 1" : ""}, by ${this.submitter})`;
}

class SettleUpTo extends Command {
  constructor(
    readonly p: SignedParams,
    readonly max: "exact" | "above" | "below",
    readonly submitter: Who,
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const p = this.p;
    const ts = m.now + 1n;
    const svc = m.services[p.svc];
    const total = p.units * svc.price;
    const { payer, key } = signedBy(r, p);
    const nonce = pickNonce(m, payer, p.nonceKind, p.nonce, p.noncePick);
    const auth = {
      payerId: p.payerId,
      payer,
      serviceId: svc.id,
      token: r.tokenAddr[svc.k],
      maxAmount: this.max === "exact" ? total : this.max === "above" ? total + usd(2) : total - 1n,
      requestRef: ethers.id(`up to ${nonce}`),
      nonce,
      ...windowOf(p.window, ts, HOUR),
    };
    if (auth.maxAmount < 0n) auth.maxAmount = 0n;
    const signature = await key.signTypedData(r.domain, UP_TO_TYPES, auth);
    const funding = await fundingData(r, svc.k, payer, total, ts, p.funding, nonce);
    const submitter = actor(m, r, svc.providerId, this.submitter === "operator" ? "owner" : this.submitter);
    const v: Verdict = (m.paused ? fail("EnforcedPause") : null) ??
      (p.funding === "receive" ? fail("PayPerUseBadFunding") : null) ??
      authVerdict(m, payer, nonce, auth, ts, p.who === "forged") ??
      quoteVerdict(m, r, svc, p.units) ??
      (canAct(m, r, svc.providerId, submitter) ? null : fail("PayPerUseNotAuthorized", svc.providerId, submitter)) ??
      (total > auth.maxAmount ? fail("PayPerUseAboveMax", total, auth.maxAmount) : null) ??
      (p.payerId === svc.providerId ? fail("PayPerUseSelfPayment", p.payerId) : null) ??
      spendVerdict(m, r, p.payerId, payer, svc.k, total) ??
      (p.funding === "badData" ? fail("PayPerUseBadFunding") : null) ??
      pullVerdict(m, r, svc.k, payer) ?? {
        apply: (events) => {
          count(`  (${this.constructor.name} funded by ${p.funding}${svc.k === BLK ? " in BLK" : ""})`);
          useNonce(m, payer, nonce);
          applyCharge(m, r, events, p.payerId, svc, p.units, total, payer, auth.requestRef);
        },
      };
    await attempt(
      m,
      r,
      `${this}: total ${total}, max ${auth.maxAmount}, nonce ${nonce}`,
      () =>
        r.ppu.connect(signerFor(r, submitter)).settleUpTo(auth, signature, p.units, funding.mode, funding.data, GAS),
      v,
    );
  }
  toString = () =>
    `settleUpTo(#${this.p.payerId} signed by ${this.p.who}, service ${this.p.svc + 1}, ${this.p.units} units, ` +
    `max ${this.max}, ${this.p.nonceKind} nonce, ${this.p.window}, ${this.p.funding}, by ${this.submitter})`;
}

class Refund extends Command {
  constructor(
    readonly pick: number,
    readonly amount: "full" | "part" | "over" | "zero",
    readonly pct: bigint,
    readonly who: Who,
    readonly unknown: boolean,
  ) {
    super();
  }
  check = (m: Readonly<Model>) => this.unknown || m.receipts.length > 0;
  async exec(m: Model, r: Real) {
    const x = this.unknown || m.receipts.length === 0 ? null : m.receipts[this.pick % m.receipts.length];
    const id = x?.id ?? BigInt(m.receipts.length + 1);
    const caller = x ? actor(m, r, x.providerId, this.who === "operator" ? "owner" : this.who) : r.f.bob.address;
    const refundable = x?.refundable ?? 0n;
    const amount =
      this.amount === "zero"
        ? 0n
        : this.amount === "full"
          ? refundable
          : this.amount === "over"
            ? refundable + 1n
            : (refundable * this.pct) / 100n;
    let v: Verdict | null = null;
    if (!x) v = fail("PayPerUseUnknownReceipt", id);
    else if (!canAct(m, r, x.providerId, caller)) v = fail("PayPerUseNotAuthorized", x.providerId, caller);
    else if (amount === 0n) v = fail("PayPerUseBadAmount", 0n);
    else if (amount > refundable) v = fail("PayPerUseRefundTooLarge", id, amount, refundable);
    else v = pullVerdict(m, r, x.k, caller);
    v ??= {
      apply: (events) => {
        x!.refundable -= amount;
        expect(eventArgs(events, "ChargeRefunded"), "ChargeRefunded").to.deep.equal([[id, amount, x!.refundable]]);
        move(m, x!.k, caller, r.ppuAddr, amount);
        push(m, r, x!.k, walletOf(m, r, x!.payerId), amount);
      },
    };
    await attempt(
      m,
      r,
      `${this}: receipt #${id}, ${amount} of ${refundable}`,
      () => r.ppu.connect(signerFor(r, caller)).refund(id, amount, GAS),
      v,
    );
  }
  toString = () => `refund(${this.unknown ? "unknown" : this.pick}, ${this.amount}, by ${this.who})`;
}

class CancelNonce extends Command {
  constructor(
    readonly who: "alice" | "dave" | "operator",
    readonly kind: NonceKind,
    readonly nonce: bigint,
    readonly pick: number,
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const signer = this.who === "alice" ? r.f.alice : this.who === "dave" ? r.f.dave : r.f.operator;
    const nonce = pickNonce(m, signer.address, this.kind, this.nonce, this.pick);
    const v: Verdict = m.nonces.get(signer.address)?.has(nonce)
      ? fail("PayPerUseNonceUsed", signer.address, nonce)
      : { apply: () => useNonce(m, signer.address, nonce) };
    await attempt(m, r, `${this}: ${nonce}`, () => r.ppu.connect(signer).cancelNonce(nonce, GAS), v);
  }
  toString = () => `cancelNonce(${this.who}, ${this.kind})`;
}

class OpenSession extends Command {
  constructor(
    readonly payerId: bigint,
    readonly providerId: bigint,
    readonly k: number,
    readonly deposit: bigint,
    readonly expiry: "ok" | "past" | "far",
    readonly duration: bigint,
    readonly signer: Who,
    readonly funder: Who,
  ) {
    super();
  }
  check = (m: Readonly<Model>) => m.sessions.length < MAX_SESSIONS;
  async exec(m: Model, r: Real) {
    const ts = m.now + 1n;
    const expiry =
      this.expiry === "ok" ? ts + this.duration : this.expiry === "past" ? ts : ts + MAX_SESSION_DURATION + 1n;
    const signer = actor(m, r, this.payerId, this.signer === "wallet" ? "owner" : this.signer);
    const funder = actor(m, r, this.payerId, this.funder === "wallet" ? "owner" : this.funder);
    const token = r.tokenAddr[this.k];
    let v: Verdict | null = null;
    if (m.paused) v = fail("EnforcedPause");
    else if (this.payerId === this.providerId) v = fail("PayPerUseSelfPayment", this.payerId);
    else if (!m.allowed[this.k]) v = fail("PayPerUseTokenNotAllowed", token);
    else if (this.deposit === 0n) v = fail("PayPerUseBadAmount", 0n);
    else if (expiry <= ts || expiry > ts + MAX_SESSION_DURATION) v = fail("PayPerUseBadExpiry", expiry);
    else if (m.agentPaused.has(this.providerId)) v = fail("PayPerUseProviderInactive", this.providerId);
    else if (!canAct(m, r, this.payerId, signer)) v = fail("PayPerUseNotAuthorized", this.payerId, signer);
    else v = spendVerdict(m, r, this.payerId, funder, this.k, this.deposit) ?? pullVerdict(m, r, this.k, funder);
    v ??= {
      apply: (events) => {
        const id = BigInt(m.sessions.length + 1);
        expect(eventArgs(events, "SessionOpened"), "SessionOpened").to.deep.equal([
          [id, this.payerId, this.providerId, token, signer, this.deposit, expiry, m.feeBps],
        ]);
        move(m, this.k, funder, r.ppuAddr, this.deposit);
        m.sessions.push({
          id,
          k: this.k,
          payerId: this.payerId,
          providerId: this.providerId,
          signer,
          deposit: this.deposit,
          redeemed: 0n,
          calls: 0n,
          endsAt: expiry,
          closeGrace: m.closeGrace,
          closing: false,
          settled: false,
          feeBps: m.feeBps,
        });
      },
    };
    await attempt(
      m,
      r,
      `${this}`,
      () =>
        r.ppu
          .connect(signerFor(r, funder))
          .openSession(this.payerId, this.providerId, token, this.deposit, expiry, signer, GAS),
      v,
    );
  }
  toString = () =>
    `openSession(#${this.payerId} -> #${this.providerId}, ${TOKEN_NAMES[this.k]}, deposit ${this.deposit}, expiry ` +
    `${this.expiry === "ok" ? `+${this.duration}s` : this.expiry}, signer ${this.signer}, funded by ${this.funder})`;
}

/** How a session command picks its session: a live one when it can, any one, or an unknown id. */
type Aim = "live" | "any" | "unknown";

function pickSession(m: Model, aim: Aim, pick: number, ts: bigint): SessionModel | null {
  if (aim === "unknown" || m.sessions.length === 0) return null;
  const live = m.sessions.filter((s) => liveAt(s, ts));
  const pool = aim === "live" && live.length > 0 ? live : m.sessions;
  return pool[pick % pool.length];
}

/** The checks of `_liveSession`, in order. */
function liveVerdict(s: SessionModel | null, id: bigint, ts: bigint): Verdict | null {
  if (!s) return fail("PayPerUseUnknownSession", id);
  if (s.settled) return fail("PayPerUseSessionSettled", s.id);
  if (ts > s.endsAt) return fail("PayPerUseSessionEnded", s.id, s.endsAt);
  return null;
}

class TopUp extends Command {
  constructor(
    readonly aim: Aim,
    readonly pick: number,
    readonly amount: bigint,
    readonly expiry: "none" | "extend" | "earlier" | "far",
    readonly extension: bigint,
    readonly funder: Who,
  ) {
    super();
  }
  check = (m: Readonly<Model>) => this.aim === "unknown" || m.sessions.length > 0;
  async exec(m: Model, r: Real) {
    const ts = m.now + 1n;
    const s = pickSession(m, this.aim, this.pick, ts);
    const id = s?.id ?? BigInt(m.sessions.length + 1);
    const endsAt = s?.endsAt ?? ts + DAY; // an unknown session: any expiry
    const newExpiry =
      this.expiry === "none"
        ? 0n
        : this.expiry === "extend"
          ? endsAt + this.extension
          : this.expiry === "earlier"
            ? endsAt - 1n
            : ts + MAX_SESSION_DURATION + 1n;
    const funder = s ? actor(m, r, s.payerId, this.funder === "wallet" ? "owner" : this.funder) : r.f.alice.address;
    let v: Verdict | null = m.paused ? fail("EnforcedPause") : liveVerdict(s, id, ts);
    if (!v && s) {
      if (s.closing) v = fail("PayPerUseSessionClosing", s.id);
      else if (this.amount === 0n) v = fail("PayPerUseBadAmount", 0n);
      else if (newExpiry !== 0n && (newExpiry < s.endsAt || newExpiry > ts + MAX_SESSION_DURATION)) {
        v = fail("PayPerUseBadExpiry", newExpiry);
      } else v = spendVerdict(m, r, s.payerId, funder, s.k, this.amount) ?? pullVerdict(m, r, s.k, funder);
      v ??= {
        apply: (events) => {
          s.deposit += this.amount;
          if (newExpiry !== 0n) s.endsAt = newExpiry;
          expect(eventArgs(events, "SessionToppedUp"), "SessionToppedUp").to.deep.equal([
            [s.id, this.amount, s.deposit, s.endsAt],
          ]);
          move(m, s.k, funder, r.ppuAddr, this.amount);
        },
      };
    }
    await attempt(
      m,
      r,
      `${this}: ${s ? describeSession(s) : `unknown #${id}`}, new expiry ${newExpiry}`,
      () => r.ppu.connect(signerFor(r, funder)).topUp(id, this.amount, newExpiry, GAS),
      v!,
    );
  }
  toString = () => `topUp(${this.aim} ${this.pick}, ${this.amount}, ${this.expiry}, by ${this.funder})`;
}

/** A voucher's cumulative amount, relative to the session's state when it is signed. */
interface VoucherSpec {
  aim: Aim;
  pick: number;
  rel: "below" | "same" | "between" | "deposit" | "above";
  pct: bigint;
  calls: bigint;
  forged: boolean;
}

function voucherAmount(s: SessionModel | null, spec: VoucherSpec, redeemed: bigint) {
  if (!s) return spec.pct;
  if (spec.rel === "below") return (redeemed * spec.pct) / 100n;
  if (spec.rel === "same") return redeemed;
  if (spec.rel === "between") return redeemed + ((s.deposit - redeemed) * spec.pct) / 100n;
  if (spec.rel === "deposit") return s.deposit;
  return s.deposit + 1n + spec.pct * 1_000n;
}

/** The checks of `_redeem` before any booking: the session, its end, the signature. */
function redeemVerdict(s: SessionModel | null, id: bigint, ts: bigint, forged: boolean): Verdict | null {
  if (!s) return fail("PayPerUseUnknownSession", id);
  if (ts > s.endsAt || s.settled) return fail("PayPerUseSessionEnded", s.id, s.endsAt);
  if (forged) return fail("PayPerUseBadSignature", s.signer);
  return null;
}

async function signVoucherFor(
  m: Model,
  r: Real,
  s: SessionModel | null,
  id: bigint,
  amount: bigint,
  spec: VoucherSpec,
) {
  const v = { sessionId: id, amount, calls: spec.calls };
  const key = !s || spec.forged ? r.f.stranger : signerFor(r, s.signer);
  return { v, signature: await key.signTypedData(r.domain, VOUCHER_TYPES, v) };
}

/** Books one redeemed voucher in the model and checks its event (the `index`-th one); returns what it paid. */
function applyVoucher(s: SessionModel, amount: bigint, calls: bigint, events: Events, index: number) {
  const booked = bookVoucher(s, amount, calls);
  if (!booked) return null;
  const e = events.filter((x) => x.name === "VoucherRedeemed")[index];
  expect(e?.args.toArray(), `VoucherRedeemed #${s.id}`).to.deep.equal([
    s.id,
    booked.capped,
    booked.calls,
    booked.net,
    booked.fee,
  ]);
  return booked;
}

class Redeem extends Command {
  constructor(
    readonly spec: VoucherSpec,
    readonly byProvider: boolean,
  ) {
    super();
  }
  check = (m: Readonly<Model>) => this.spec.aim === "unknown" || m.sessions.length > 0;
  async exec(m: Model, r: Real) {
    const ts = m.now + 1n;
    const s = pickSession(m, this.spec.aim, this.spec.pick, ts);
    const id = s?.id ?? BigInt(m.sessions.length + 1);
    const amount = voucherAmount(s, this.spec, s?.redeemed ?? 0n);
    const { v, signature } = await signVoucherFor(m, r, s, id, amount, this.spec);
    const verdict: Verdict = redeemVerdict(s, id, ts, this.spec.forged) ?? {
      apply: (events) => {
        const booked = applyVoucher(s!, amount, this.spec.calls, events, 0);
        expect(eventArgs(events, "VoucherRedeemed").length, "VoucherRedeemed events").to.equal(booked ? 1 : 0);
        if (booked) push(m, r, s!.k, walletOf(m, r, s!.providerId), booked.net);
      },
    };
    const caller = this.byProvider && s ? r.owners.get(s.providerId)! : r.f.stranger;
    await attempt(
      m,
      r,
      `${this}: voucher ${amount} (${this.spec.calls} calls) on ${s ? describeSession(s) : `unknown #${id}`}`,
      () => r.ppu.connect(caller).redeem(v, signature, GAS),
      verdict,
    );
  }
  toString = () =>
    `redeem(${this.spec.aim} ${this.spec.pick}, ${this.spec.rel}${this.spec.forged ? ", forged" : ""}${this.byProvider ? ", by the provider" : ""})`;
}

class RedeemMany extends Command {
  constructor(
    readonly specs: VoucherSpec[],
    readonly badBatch: "none" | "empty" | "mismatch",
  ) {
    super();
  }
  check = (m: Readonly<Model>) => m.sessions.length > 0 || this.specs.every((x) => x.aim === "unknown");
  async exec(m: Model, r: Real) {
    const ts = m.now + 1n;
    // Amounts relative to what the earlier vouchers of the batch will have redeemed.
    const simulated = new Map<bigint, bigint>();
    const items: {
      s: SessionModel | null;
      id: bigint;
      amount: bigint;
      spec: VoucherSpec;
      v: { sessionId: bigint; amount: bigint; calls: bigint };
      signature: string;
    }[] = [];
    for (const spec of this.badBatch === "empty" ? [] : this.specs) {
      const s = pickSession(m, spec.aim, spec.pick, ts);
      const id = s?.id ?? BigInt(m.sessions.length + 1);
      const redeemed = s ? (simulated.get(id) ?? s.redeemed) : 0n;
      const amount = voucherAmount(s, spec, redeemed);
      if (s) {
        const capped = amount < s.deposit ? amount : s.deposit;
        if (capped > redeemed) simulated.set(id, capped);
      }
      items.push({ s, id, amount, spec, ...(await signVoucherFor(m, r, s, id, amount, spec)) });
    }
    const vouchers = items.map((x) => x.v);
    const signatures = items.map((x) => x.signature);
    if (this.badBatch === "mismatch") signatures.push(signatures[0] ?? "0x");
    let verdict: Verdict | null = null;
    if (this.badBatch !== "none") verdict = fail("PayPerUseBadBatch", BigInt(vouchers.length));
    for (const x of items) verdict ??= redeemVerdict(x.s, x.id, ts, x.spec.forged);
    verdict ??= {
      apply: (events) => {
        // Consecutive vouchers of one provider and token are paid in one transfer.
        // A voucher that pays nothing (at or below the redeemed amount, or all fee) joins no group.
        let group: { k: number; providerId: bigint; net: bigint } | null = null;
        const flush = () => {
          if (group) push(m, r, group.k, walletOf(m, r, group.providerId), group.net);
        };
        let index = 0;
        for (const x of items) {
          const booked = applyVoucher(x.s!, x.amount, x.spec.calls, events, index);
          if (!booked) continue;
          index += 1;
          if (booked.net === 0n) continue;
          if (!group || group.k !== x.s!.k || group.providerId !== x.s!.providerId) {
            flush();
            group = { k: x.s!.k, providerId: x.s!.providerId, net: 0n };
          }
          group.net += booked.net;
        }
        flush();
        expect(eventArgs(events, "VoucherRedeemed").length, "VoucherRedeemed events").to.equal(index);
      },
    };
    const what = items.map((x) => `${x.amount} on ${x.s ? `#${x.s.id}` : `unknown #${x.id}`}`).join(", ");
    await attempt(
      m,
      r,
      `${this}: [${what}]`,
      () => r.ppu.connect(r.f.stranger).redeemMany(vouchers, signatures, GAS),
      verdict,
    );
  }
  toString = () =>
    `redeemMany(${this.specs.map((s) => `${s.aim} ${s.pick} ${s.rel}${s.forged ? " forged" : ""}`).join("; ")}` +
    `${this.badBatch === "none" ? "" : `, ${this.badBatch}`})`;
}

class RequestClose extends Command {
  constructor(
    readonly aim: Aim,
    readonly pick: number,
    readonly who: Who | "provider",
  ) {
    super();
  }
  check = (m: Readonly<Model>) => this.aim === "unknown" || m.sessions.length > 0;
  async exec(m: Model, r: Real) {
    const ts = m.now + 1n;
    const s = pickSession(m, this.aim, this.pick, ts);
    const id = s?.id ?? BigInt(m.sessions.length + 1);
    const caller = !s
      ? r.f.alice.address
      : this.who === "provider"
        ? ownerOf(r, s.providerId)
        : actor(m, r, s.payerId, this.who);
    let v = liveVerdict(s, id, ts);
    if (!v && s) {
      if (s.closing) v = fail("PayPerUseSessionClosing", s.id);
      else if (!canAct(m, r, s.payerId, caller)) v = fail("PayPerUseNotAuthorized", s.payerId, caller);
      v ??= {
        apply: (events) => {
          if (ts + s.closeGrace < s.endsAt) s.endsAt = ts + s.closeGrace;
          s.closing = true;
          expect(eventArgs(events, "SessionCloseRequested"), "SessionCloseRequested").to.deep.equal([[s.id, s.endsAt]]);
        },
      };
    }
    await attempt(
      m,
      r,
      `${this}: ${s ? describeSession(s) : `unknown #${id}`}`,
      () => r.ppu.connect(signerFor(r, caller)).requestClose(id, GAS),
      v!,
    );
  }
  toString = () => `requestClose(${this.aim} ${this.pick}, by ${this.who})`;
}

class Settle extends Command {
  constructor(
    readonly aim: "unsettled" | "any" | "unknown",
    readonly pick: number,
    readonly jump: bigint | null,
  ) {
    super();
  }
  check = (m: Readonly<Model>) => this.aim === "unknown" || m.sessions.length > 0;
  async exec(m: Model, r: Real) {
    const unsettled = m.sessions.filter((s) => !s.settled);
    const pool = this.aim === "unsettled" && unsettled.length > 0 ? unsettled : m.sessions;
    const s = this.aim === "unknown" || pool.length === 0 ? null : pool[this.pick % pool.length];
    // Optionally jump so that the call is mined exactly at the session's end (+0) or one second after.
    if (s && !s.settled && this.jump !== null && s.endsAt + this.jump - 1n > m.now) {
      m.now = s.endsAt + this.jump - 1n;
      m.log.push(`jump to end + ${this.jump}s of ${describeSession(s)}`);
    }
    const ts = m.now + 1n;
    const id = s?.id ?? BigInt(m.sessions.length + 1);
    const v = s ? settleVerdict(m, r, s, ts) : fail("PayPerUseUnknownSession", id);
    await attempt(
      m,
      r,
      `${this}: ${s ? describeSession(s) : `unknown #${id}`}`,
      () => r.ppu.connect(r.f.stranger).settleSession(id, GAS),
      v,
    );
  }
  toString = () => `settleSession(${this.aim} ${this.pick}${this.jump === null ? "" : `, at end + ${this.jump}s`})`;
}

class Wait extends Command {
  constructor(readonly seconds: bigint) {
    super();
  }
  async exec(m: Model) {
    m.now += this.seconds;
    m.log.push(`wait ${this.seconds}s`);
  }
  toString = () => `wait(${this.seconds}s)`;
}

class SetFee extends Command {
  constructor(readonly bps: bigint) {
    super();
  }
  async exec(m: Model, r: Real) {
    const v: Verdict = this.bps > 1_000n ? fail("PayPerUseBadParameter") : { apply: () => void (m.feeBps = this.bps) };
    await attempt(m, r, `${this}`, () => r.ppu.connect(r.f.admin).setFee(this.bps, GAS), v);
  }
  toString = () => `setFee(${this.bps})`;
}

class SetCloseGrace extends Command {
  constructor(readonly grace: bigint) {
    super();
  }
  async exec(m: Model, r: Real) {
    const v: Verdict =
      this.grace < 300n || this.grace > 30n * DAY
        ? fail("PayPerUseBadParameter")
        : { apply: () => void (m.closeGrace = this.grace) };
    await attempt(m, r, `${this}`, () => r.ppu.connect(r.f.admin).setCloseGrace(this.grace, GAS), v);
  }
  toString = () => `setCloseGrace(${this.grace})`;
}

/** Disallows or allows again a token (a disallowed token stays so for a few commands on average). */
class SetToken extends Command {
  constructor(
    readonly k: number,
    readonly allowed: boolean,
  ) {
    super();
  }
  check = (m: Readonly<Model>) => m.allowed[this.k] !== this.allowed;
  async exec(m: Model, r: Real) {
    await attempt(m, r, `${this}`, () => r.ppu.connect(r.f.admin).setToken(r.tokenAddr[this.k], this.allowed, GAS), {
      apply: () => void (m.allowed[this.k] = this.allowed),
    });
  }
  toString = () => `setToken(${TOKEN_NAMES[this.k]}, ${this.allowed})`;
}

/** Pauses or unpauses PayPerUse (the wrong way round fails). */
class SetPaused extends Command {
  constructor(
    readonly paused: boolean,
    readonly always: boolean,
  ) {
    super();
  }
  check = (m: Readonly<Model>) => this.always || m.paused !== this.paused;
  async exec(m: Model, r: Real) {
    const admin = r.ppu.connect(r.f.admin);
    let v: Verdict = { apply: () => void (m.paused = this.paused) };
    if (m.paused === this.paused) v = fail(this.paused ? "EnforcedPause" : "ExpectedPause");
    await attempt(m, r, `${this}`, () => (this.paused ? admin.pause(GAS) : admin.unpause(GAS)), v);
  }
  toString = () => `${this.paused ? "pause" : "unpause"}()`;
}

/** A provider pauses or unpauses its agent in the registry. */
class PauseProvider extends Command {
  constructor(
    readonly providerId: bigint,
    readonly paused: boolean,
  ) {
    super();
  }
  check = (m: Readonly<Model>) => m.agentPaused.has(this.providerId) !== this.paused;
  async exec(m: Model, r: Real) {
    await attempt(
      m,
      r,
      `${this}`,
      () => r.registry.connect(r.owners.get(this.providerId)!).setAgentPaused(this.providerId, this.paused, GAS),
      {
        apply: () => void (this.paused ? m.agentPaused.add(this.providerId) : m.agentPaused.delete(this.providerId)),
      },
    );
  }
  toString = () => `pauseProvider(#${this.providerId}, ${this.paused})`;
}

/** A provider changes its service's unit price (down to a few wei) and whether it is active. */
class Reprice extends Command {
  constructor(
    readonly svc: number,
    readonly price: bigint,
    readonly active: boolean,
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const s = m.services[this.svc];
    await attempt(
      m,
      r,
      `${this}`,
      () =>
        r.registry
          .connect(r.owners.get(s.providerId)!)
          .updateService(s.id, r.tokenAddr[s.k], this.price, this.active, "https://x", GAS),
      {
        apply: () => {
          s.price = this.price;
          s.active = this.active;
        },
      },
    );
  }
  toString = () => `reprice(service ${this.svc + 1}, ${this.price}, active ${this.active})`;
}

/** An agent's owner sets its payout wallet to one of three accounts, or unsets it. */
class SetWallet extends Command {
  constructor(
    readonly agentId: bigint,
    readonly choice: number, // 0: unset, 1..3: signers 9..11
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const ts = m.now + 1n;
    const owner = r.owners.get(this.agentId)!;
    if (this.choice === 0) {
      await attempt(m, r, `${this}`, () => r.registry.connect(owner).unsetAgentWallet(this.agentId, GAS), {
        apply: () => void m.wallets.delete(this.agentId),
      });
      return;
    }
    const wallet = r.f.walletPool[this.choice - 1];
    const signature = await signAgentWallet(r.registry, wallet, this.agentId, wallet.address, owner.address, ts + 60n);
    await attempt(
      m,
      r,
      `${this}`,
      () => r.registry.connect(owner).setAgentWallet(this.agentId, wallet.address, ts + 60n, signature, GAS),
      { apply: () => void m.wallets.set(this.agentId, wallet.address) },
    );
  }
  toString = () => `setWallet(#${this.agentId}, ${this.choice === 0 ? "unset" : `wallet ${this.choice}`})`;
}

/** Blacklists or clears an account in the blacklisting token (never PayPerUse itself). */
class Blacklist extends Command {
  constructor(
    readonly target: bigint | "treasury" | number, // an agent's payout wallet, the treasury, or any tracked account
    readonly flag: boolean,
  ) {
    super();
  }
  check = (m: Readonly<Model>) => this.flag || m.blacklisted.size > 0;
  async exec(m: Model, r: Real) {
    const candidates = r.tracked.filter((a) => a !== r.ppuAddr);
    const account =
      typeof this.target === "bigint"
        ? walletOf(m, r, this.target)
        : this.target === "treasury"
          ? r.treasury
          : this.flag
            ? candidates[this.target % candidates.length]
            : [...m.blacklisted][this.target % m.blacklisted.size];
    await attempt(m, r, `${this}: ${account}`, () => r.blk.setBlacklisted(account, this.flag, GAS), {
      apply: () => void (this.flag ? m.blacklisted.add(account) : m.blacklisted.delete(account)),
    });
  }
  toString = () =>
    `${this.flag ? "blacklist" : "unblacklist"}(${typeof this.target === "bigint" ? `wallet of #${this.target}` : this.target})`;
}

/** Anyone records a pair's pending charges in Reputation (a pair with some when `pending`). */
class SyncReputation extends Command {
  constructor(
    readonly pending: boolean,
    readonly pick: number,
    readonly payerId: bigint,
    readonly providerId: bigint,
    readonly k: number,
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const withCharges = [...m.pending.values()].filter((x) => x.receipts > 0n);
    const chosen = this.pending && withCharges.length > 0 ? withCharges[this.pick % withCharges.length] : null;
    const [payerId, providerId, k] = chosen
      ? [chosen.payerId, chosen.providerId, chosen.k]
      : [this.payerId, this.providerId, this.k];
    const x = m.pending.get(pairKey(payerId, providerId, k));
    const token = r.tokenAddr[k];
    const v: Verdict =
      !x || x.receipts === 0n
        ? fail("PayPerUseNothingToSync", payerId, providerId, token)
        : {
            apply: (events) => {
              expect(eventArgs(events, "ReputationSynced"), "ReputationSynced").to.deep.equal([
                [payerId, providerId, token, x.calls, x.amount, x.receipts],
              ]);
              record(m, payerId, providerId, k, x.calls, x.amount, x.receipts);
              Object.assign(x, { calls: 0n, amount: 0n, receipts: 0n });
            },
          };
    await attempt(
      m,
      r,
      `${this}: #${payerId} -> #${providerId} ${TOKEN_NAMES[k]} ${x ? `${x.receipts} receipts` : "none"}`,
      () => r.ppu.connect(r.f.stranger).syncReputation(payerId, providerId, token, GAS),
      v,
    );
  }
  toString = () =>
    `syncReputation(${this.pending ? `pending ${this.pick}` : `#${this.payerId} -> #${this.providerId}`})`;
}

class Sweep extends Command {
  constructor(readonly k: number) {
    super();
  }
  async exec(m: Model, r: Real) {
    const k = this.k;
    const token = r.tokenAddr[k];
    const fees = m.fees[k];
    let v: Verdict;
    if (fees === 0n) v = fail("PayPerUseNothingToWithdraw", token, r.treasury);
    else if (k === BLK && m.blacklisted.has(r.treasury)) v = failOn(r.blk, "MockBlacklistTokenBlacklisted", r.treasury);
    else {
      v = {
        apply: (events) => {
          expect(eventArgs(events, "FeesSwept"), "FeesSwept").to.deep.equal([[token, r.treasury, fees]]);
          move(m, k, r.ppuAddr, r.treasury, fees);
          m.fees[k] = 0n;
        },
      };
    }
    await attempt(m, r, `${this}: ${fees}`, () => r.ppu.connect(r.f.stranger).sweepFees(token, GAS), v);
  }
  toString = () => `sweepFees(${TOKEN_NAMES[this.k]})`;
}

/** An account withdraws its credit (preferably one that has some) to itself or to another account. */
class Withdraw extends Command {
  constructor(
    readonly k: number,
    readonly pick: number,
    readonly toOther: number | null,
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const k = this.k;
    const token = r.tokenAddr[k];
    const candidates = r.tracked.filter((a) => a !== r.ppuAddr);
    const withCredit = candidates.filter((a) => m.credits[k].get(a)! > 0n);
    const pool = withCredit.length > 0 ? withCredit : candidates;
    const account = pool[this.pick % pool.length];
    const to = this.toOther === null ? account : candidates[this.toOther % candidates.length];
    const credit = m.credits[k].get(account)!;
    let v: Verdict;
    if (credit === 0n) v = fail("PayPerUseNothingToWithdraw", token, account);
    else if (k === BLK && m.blacklisted.has(to)) v = failOn(r.blk, "MockBlacklistTokenBlacklisted", to);
    else {
      v = {
        apply: (events) => {
          expect(eventArgs(events, "CreditWithdrawn"), "CreditWithdrawn").to.deep.equal([[token, account, to, credit]]);
          m.credits[k].set(account, 0n);
          move(m, k, r.ppuAddr, to, credit);
        },
      };
    }
    await attempt(
      m,
      r,
      `${this}: ${credit} of ${account} to ${to}`,
      () => r.ppu.connect(signerFor(r, account)).withdraw(token, to, GAS),
      v,
    );
  }
  toString = () =>
    `withdraw(${TOKEN_NAMES[this.k]}, ${this.pick}${this.toOther === null ? "" : `, to ${this.toOther}`})`;
}

// ---------------------------------------------------------------------------------------------- arbitraries

/** One of the values, with the weights given. */
const weighted = <T>(...entries: [T, number][]) =>
  fc.oneof(...entries.map(([value, weight]) => ({ weight, arbitrary: fc.constant(value) })));
const pickArb = fc.noBias(fc.nat({ max: 999 }));
const tokenArb = fc.constantFrom(0, 1, 2);
const payerArb = fc.constantFrom(ALICE, ALICE, DAVE, DAVE, BOB);
const providerArb = fc.constantFrom(BOB, CAROL);
const serviceArb = fc.constantFrom(0, 1, 2);
const unitsArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0n) },
  { weight: 12, arbitrary: fc.bigInt({ min: 1n, max: 40n }) },
);
const whoArb = fc.constantFrom<Who>("owner", "owner", "owner", "owner", "operator", "operator", "stranger");
const maxArb = fc.constantFrom<"exact" | "above" | "below">("exact", "above", "above", "below");
const windowArb = fc.constantFrom<Window>("ok", "ok", "ok", "ok", "ok", "ok", "expired", "early");
const nonceKindArb = fc.constantFrom<NonceKind>("fresh", "fresh", "fresh", "fresh", "used");
const nonceArb = fc.oneof(fc.bigInt({ min: 0n, max: 600n }), fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }));
/** Amounts from 1 wei (where fees round to zero) to 120 tokens, and zero. */
const amountArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0n) },
  { weight: 3, arbitrary: fc.bigInt({ min: 1n, max: 1_000n }) },
  { weight: 10, arbitrary: fc.bigInt({ min: 1n, max: usd(120) }) },
);

const signedArb: fc.Arbitrary<SignedParams> = fc.record({
  payerId: payerArb,
  svc: serviceArb,
  units: unitsArb,
  who: fc.constantFrom<SignedParams["who"]>("owner", "owner", "owner", "operator", "operator", "stranger", "forged"),
  nonceKind: nonceKindArb,
  nonce: nonceArb,
  noncePick: pickArb,
  window: windowArb,
  funding: fc.constantFrom<Funding>("allowance", "allowance", "permit", "failedPermit", "receive", "badData"),
});

const voucherArb: fc.Arbitrary<VoucherSpec> = fc.record({
  aim: weighted<Aim>(["live", 12], ["any", 2], ["unknown", 1]),
  pick: pickArb,
  rel: fc.constantFrom<VoucherSpec["rel"]>("below", "same", "between", "between", "between", "deposit", "above"),
  pct: fc.bigInt({ min: 0n, max: 100n }),
  calls: fc.oneof(
    { weight: 12, arbitrary: fc.bigInt({ min: 0n, max: 50n }) },
    { weight: 1, arbitrary: fc.constantFrom(UINT64_MAX, (1n << 64n) + 5n) },
  ),
  forged: fc.oneof({ weight: 15, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});

const sessionAimArb = weighted<Aim>(["live", 8], ["any", 2], ["unknown", 1]);

const commandArb: fc.Arbitrary<fc.AsyncCommand<Model, Real>> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(payerArb, serviceArb, unitsArb, whoArb, maxArb)
      .map(([p, s, u, w, x]) => new Charge(p, s, u, w, x)),
  },
  {
    weight: 4,
    arbitrary: fc
      .tuple(signedArb, fc.constantFrom<"provider" | "stranger">("provider", "stranger"))
      .map(([p, by]) => new SubmitCharge(p, false, by)),
  },
  {
    weight: 1,
    arbitrary: signedArb.map((p) => new SubmitCharge(p, true, "stranger")),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(signedArb, maxArb, fc.constantFrom<Who>("owner", "owner", "wallet", "stranger"))
      .map(([p, x, by]) => new SettleUpTo(p, x, by)),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        pickArb,
        fc.constantFrom<"full" | "part" | "over" | "zero">("full", "part", "part", "part", "over", "zero"),
        fc.bigInt({ min: 1n, max: 100n }),
        fc.constantFrom<Who>("owner", "owner", "wallet", "stranger"),
        fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      )
      .map(([p, a, pct, w, u]) => new Refund(p, a, pct, w, u)),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom<"alice" | "dave" | "operator">("alice", "dave", "operator"),
        nonceKindArb,
        nonceArb,
        pickArb,
      )
      .map(([w, kind, n, p]) => new CancelNonce(w, kind, n, p)),
  },
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        payerArb,
        providerArb,
        tokenArb,
        amountArb,
        weighted<"ok" | "past" | "far">(["ok", 10], ["past", 1], ["far", 1]),
        fc.bigInt({ min: 1n, max: 3n * DAY }),
        weighted<Who>(["owner", 6], ["operator", 2], ["stranger", 1]),
        weighted<Who>(["owner", 6], ["operator", 2], ["stranger", 1]),
      )
      .map(([p, q, k, d, e, dur, s, f]) => new OpenSession(p, q, k, d, e, dur, s, f)),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        sessionAimArb,
        pickArb,
        amountArb,
        fc.constantFrom<"none" | "extend" | "earlier" | "far">("none", "none", "extend", "extend", "earlier", "far"),
        fc.bigInt({ min: 0n, max: 2n * DAY }),
        whoArb,
      )
      .map(([a, p, x, e, ext, w]) => new TopUp(a, p, x, e, ext, w)),
  },
  { weight: 8, arbitrary: fc.tuple(voucherArb, fc.boolean()).map(([v, b]) => new Redeem(v, b)) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.array(voucherArb, { minLength: 1, maxLength: 4 }),
        fc.constantFrom<"none" | "empty" | "mismatch">(
          "none",
          "none",
          "none",
          "none",
          "none",
          "none",
          "empty",
          "mismatch",
        ),
      )
      .map(([vs, bad]) => new RedeemMany(vs, bad)),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        sessionAimArb,
        pickArb,
        fc.constantFrom<Who | "provider">("owner", "owner", "operator", "wallet", "stranger", "provider"),
      )
      .map(([a, p, w]) => new RequestClose(a, p, w)),
  },
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.constantFrom<"unsettled" | "any" | "unknown">(
          "unsettled",
          "unsettled",
          "unsettled",
          "unsettled",
          "any",
          "unknown",
        ),
        pickArb,
        fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 3, arbitrary: fc.constantFrom(0n, 1n) }),
      )
      .map(([a, p, j]) => new Settle(a, p, j)),
  },
  {
    weight: 3,
    arbitrary: fc
      .oneof(fc.bigInt({ min: 1n, max: HOUR }), fc.bigInt({ min: HOUR, max: 2n * DAY }))
      .map((s) => new Wait(s)),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        { weight: 5, arbitrary: fc.bigInt({ min: 0n, max: 1_000n }) },
        { weight: 1, arbitrary: fc.constantFrom(0n, 1_000n, 1_001n) },
      )
      .map((b) => new SetFee(b)),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(fc.bigInt({ min: 300n, max: 2n * DAY }), fc.constantFrom(299n, 30n * DAY, 30n * DAY + 1n))
      .map((g) => new SetCloseGrace(g)),
  },
  { weight: 1, arbitrary: tokenArb.map((k) => new SetToken(k, false)) },
  { weight: 3, arbitrary: tokenArb.map((k) => new SetToken(k, true)) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.boolean(),
        fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      )
      .map(([paused, always]) => new SetPaused(paused, always)),
  },
  { weight: 3, arbitrary: fc.constant(null).map(() => new SetPaused(false, false)) },
  { weight: 1, arbitrary: providerArb.map((p) => new PauseProvider(p, true)) },
  { weight: 3, arbitrary: providerArb.map((p) => new PauseProvider(p, false)) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        serviceArb,
        fc.oneof(fc.bigInt({ min: 1n, max: 100n }), fc.bigInt({ min: 1n, max: usd(2) })),
        fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      )
      .map(([s, p, a]) => new Reprice(s, p, a)),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(...AGENTS), fc.nat({ max: 3 })).map(([a, c]) => new SetWallet(a, c)),
  },
  {
    weight: 4,
    arbitrary: fc
      .oneof(
        { weight: 4, arbitrary: fc.constantFrom<bigint | "treasury">(ALICE, BOB, BOB, CAROL, DAVE, "treasury") },
        { weight: 1, arbitrary: pickArb },
      )
      .map((t) => new Blacklist(t, true)),
  },
  { weight: 1, arbitrary: pickArb.map((i) => new Blacklist(i, false)) },
  { weight: 1, arbitrary: tokenArb.map((k) => new Sweep(k)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        pickArb,
        payerArb,
        providerArb,
        tokenArb,
      )
      .map(([p, i, a, b, k]) => new SyncReputation(p, i, a, b, k)),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom(2, 2, 2, 0, 1),
        pickArb,
        fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: pickArb }),
      )
      .map(([k, p, t]) => new Withdraw(k, p, t)),
  },
);

/** Every run starts with one to three sessions that open (alice's may be signed by her operator). */
const prologueArb = fc.array(
  fc
    .tuple(
      fc.constantFrom(ALICE, DAVE),
      providerArb,
      tokenArb,
      fc.oneof(fc.bigInt({ min: 1n, max: 1_000n }), fc.bigInt({ min: usd(1), max: usd(120) })),
      fc.bigInt({ min: HOUR, max: 3n * DAY }),
      fc.boolean(),
    )
    .map(
      ([p, q, k, d, dur, op]) =>
        new OpenSession(p, q, k, d, "ok", dur, op && p === ALICE ? "operator" : "owner", "owner"),
    ),
  { minLength: 1, maxLength: 3 },
);

// ---------------------------------------------------------------------------------------------- setup

async function makeReal(f: ModelFixture): Promise<Real> {
  const signers = await ethers.getSigners();
  const tokenAddr = [await f.usdt.getAddress(), await f.usdg.getAddress(), await f.blk.getAddress()];
  const ppuAddr = await f.payPerUse.getAddress();
  const chainId = (await ethers.provider.getNetwork()).chainId;
  const tracked = [
    ppuAddr,
    f.treasury.address,
    f.stranger.address,
    f.alice.address,
    f.bob.address,
    f.carol.address,
    f.dave.address,
    f.operator.address,
    ...f.walletPool.map((w) => w.address),
  ];
  return {
    f,
    ppu: f.payPerUse,
    registry: f.registry,
    reputation: f.reputation,
    blk: f.blk,
    erc20: tokenAddr.map((t) => IERC20__factory.connect(t, f.admin)),
    tokenAddr,
    ppuAddr,
    treasury: f.treasury.address,
    owners: new Map([
      [ALICE, f.alice],
      [BOB, f.bob],
      [CAROL, f.carol],
      [DAVE, f.dave],
    ]),
    signers: new Map(signers.map((s) => [s.address, s])),
    domain: await ppuDomain(f.payPerUse),
    tokenDomains: [
      { name: await f.usdt.name(), version: "1", chainId, verifyingContract: tokenAddr[0] },
      { name: await f.usdg.name(), version: "1", chainId, verifyingContract: tokenAddr[1] },
    ],
    tracked,
  };
}

async function makeModel(f: ModelFixture, r: Real): Promise<Model> {
  const [, , , feeBps, closeGrace] = await f.payPerUse.config();
  const services: ServiceModel[] = [];
  for (const id of [f.bobService, f.carolService, f.blkService]) {
    const s = await f.registry.getService(id);
    services.push({ id, providerId: s.agentId, k: r.tokenAddr.indexOf(s.token), price: s.unitPrice, active: s.active });
  }
  const wallets = new Map<bigint, string>();
  for (const id of AGENTS) {
    const w = await f.registry.getAgentWallet(id);
    if (w !== ownerOf(r, id)) wallets.set(id, w);
  }
  return {
    now: BigInt(await time.latest()),
    sessions: [],
    receipts: [],
    services,
    balances: await Promise.all(
      r.erc20.map(
        async (t) => new Map(await Promise.all(r.tracked.map(async (a) => [a, await t.balanceOf(a)] as const))),
      ),
    ),
    credits: r.erc20.map(() => new Map(r.tracked.map((a) => [a, 0n]))),
    fees: [0n, 0n, 0n],
    feeBps,
    closeGrace,
    paused: false,
    allowed: [true, true, true],
    agentPaused: new Set(),
    wallets,
    blacklisted: new Set(),
    nonces: new Map(),
    callsServed: new Map(AGENTS.map((id) => [id, 0n])),
    settlementsServed: new Map(AGENTS.map((id) => [id, 0n])),
    pending: new Map(),
    volume: new Map(AGENTS.flatMap((id) => [0, 1, 2].map((k) => [key(id, k), 0n] as const))),
    credited: [],
    log: [],
  };
}

/** Time jumps and settleSession bring every session to settled; then only fees and credits remain, then nothing. */
async function drain(m: Model, r: Real) {
  m.now += MAX_SESSION_DURATION + 1n;
  m.log.push(`wait ${MAX_SESSION_DURATION + 1n}s`);
  for (const s of m.sessions.filter((x) => !x.settled)) {
    await attempt(
      m,
      r,
      `final settleSession ${describeSession(s)}`,
      () => r.ppu.connect(r.f.stranger).settleSession(s.id, GAS),
      settleVerdict(m, r, s, m.now + 1n),
    );
    await checkAll(m, r);
  }
  for (const s of m.sessions) expect(s.settled, `session #${s.id} settled at the end`).to.equal(true);
  // Every pending charge is recorded in Reputation.
  for (const x of [...m.pending.values()].filter((y) => y.receipts > 0n)) {
    await new SyncReputation(false, 0, x.payerId, x.providerId, x.k).exec(m, r);
  }
  for (let k = 0; k < r.erc20.length; k++) {
    const token = r.tokenAddr[k];
    const credits = (await Promise.all(r.tracked.map((a) => r.ppu.creditOf(token, a)))).reduce((a, b) => a + b, 0n);
    const fees = await r.ppu.accruedFees(token);
    expect(await r.erc20[k].balanceOf(r.ppuAddr), `${TOKEN_NAMES[k]} left after settling`).to.equal(fees + credits);
  }
  // Everyone is cleared; fees are swept and credits withdrawn: nothing is stuck.
  for (const account of [...m.blacklisted]) await new Blacklist([...m.blacklisted].indexOf(account), false).exec(m, r);
  for (let k = 0; k < r.erc20.length; k++) {
    if (m.fees[k] > 0n) await new Sweep(k).exec(m, r);
    for (const account of r.tracked) if (m.credits[k].get(account)! > 0n) await new Withdraw(k, 0, null).exec(m, r);
    expect(await r.erc20[k].balanceOf(r.ppuAddr), `${TOKEN_NAMES[k]} left at the end`).to.equal(0n);
  }
  await checkAll(m, r);
}

// ---------------------------------------------------------------------------------------------- session property

type SessionOp =
  | { op: "topUp"; session: number; amount: bigint; extend: bigint | null }
  | { op: "redeem"; voucher: SessionVoucher }
  | { op: "redeemMany"; vouchers: SessionVoucher[] }
  | { op: "close"; session: number }
  | { op: "wait"; seconds: bigint };

interface SessionVoucher {
  session: number;
  rel: "below" | "same" | "between" | "above";
  pct: bigint;
  calls: bigint;
}

const sessionVoucherArb: fc.Arbitrary<SessionVoucher> = fc.record({
  session: fc.constantFrom(0, 0, 1),
  rel: fc.constantFrom<SessionVoucher["rel"]>("below", "same", "between", "between", "between", "above"),
  pct: fc.bigInt({ min: 0n, max: 100n }),
  calls: fc.bigInt({ min: 0n, max: 1_000n }),
});

const depositArb = fc.oneof(fc.bigInt({ min: 1n, max: 500n }), fc.bigInt({ min: 1n, max: usd(500) }));

const sessionOpArb: fc.Arbitrary<SessionOp> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc
      .record({
        session: fc.constantFrom(0, 1),
        amount: depositArb,
        extend: fc.option(fc.bigInt({ min: 0n, max: DAY })),
      })
      .map((x) => ({ op: "topUp" as const, ...x })),
  },
  { weight: 6, arbitrary: sessionVoucherArb.map((voucher) => ({ op: "redeem" as const, voucher })) },
  {
    weight: 3,
    arbitrary: fc
      .array(sessionVoucherArb, { minLength: 1, maxLength: 5 })
      .map((vouchers) => ({ op: "redeemMany" as const, vouchers })),
  },
  { weight: 1, arbitrary: fc.constantFrom(0, 1).map((session) => ({ op: "close" as const, session })) },
  {
    weight: 2,
    arbitrary: fc.bigInt({ min: 1n, max: 12n * HOUR }).map((seconds) => ({ op: "wait" as const, seconds })),
  },
);

interface SessionCase {
  feeBps: bigint;
  grace: bigint;
  tokens: [number, number];
  deposits: [bigint, bigint];
  durations: [bigint, bigint];
  ops: SessionOp[];
}

const sessionCaseArb: fc.Arbitrary<SessionCase> = fc.record({
  feeBps: fc.oneof(fc.bigInt({ min: 0n, max: 1_000n }), fc.constantFrom(0n, 1n, 1_000n)),
  grace: fc.bigInt({ min: 300n, max: DAY }),
  tokens: fc.tuple(fc.constantFrom(0, 1), fc.constantFrom(0, 1)),
  deposits: fc.tuple(depositArb, depositArb),
  durations: fc.tuple(fc.bigInt({ min: HOUR, max: 3n * DAY }), fc.bigInt({ min: HOUR, max: 3n * DAY })),
  ops: fc.array(sessionOpArb, { minLength: 1, maxLength: maxCommands }),
});

// ---------------------------------------------------------------------------------------------- the properties

describe("PayPerUse properties", function () {
  it("sessions: the provider never gets more than the deposits, stale vouchers pay nothing, settlement splits the deposits exactly", async function () {
    let failedLog: string[] = [];
    await fc
      .assert(
        fc.asyncProperty(sessionCaseArb, async (c) => {
          const f = await loadFixture(deployPayPerUse);
          const log: string[] = [];
          try {
            await runSessionCase(f, c, log);
          } catch (error) {
            failedLog = log;
            throw error;
          }
        }),
        { seed, numRuns, endOnFailure: !!process.env.FC_NOSHRINK },
      )
      .catch((error) => {
        console.log(`\nPayPerUse sessions: last failing run, step by step:\n  ${failedLog.join("\n  ")}\n`);
        throw error;
      });
  });

  it("model: holds exactly open deposits + credits + fees per token; every balance, receipt, session and record is the model's", async function () {
    let failedRunLog: string[] = [];
    await fc
      .assert(
        fc.asyncProperty(
          prologueArb,
          fc.commands([commandArb], { maxCommands, size: "max" }),
          async (prologue, commands) => {
            const f = await loadFixture(ppuModelFixture);
            const real = await makeReal(f);
            const model = await makeModel(f, real);
            const start = await Promise.all(
              real.erc20.map(async (t) =>
                (await Promise.all(real.tracked.map((a) => t.balanceOf(a)))).reduce((a, b) => a + b, 0n),
              ),
            );
            try {
              await checkAll(model, real);
              for (const open of prologue) await open.run(model, real);
              await fc.asyncModelRun(() => ({ model, real }), commands);
              await drain(model, real);
              // No wei created or lost: the tracked accounts hold what they held at the start.
              const end = await Promise.all(
                real.erc20.map(async (t) =>
                  (await Promise.all(real.tracked.map((a) => t.balanceOf(a)))).reduce((a, b) => a + b, 0n),
                ),
              );
              expect(end, "total supply held by the tracked accounts").to.deep.equal(start);
            } catch (error) {
              failedRunLog = model.log;
              throw error;
            }
          },
        ),
        { seed, numRuns, endOnFailure: !!process.env.FC_NOSHRINK },
      )
      .catch((error) => {
        console.log(`\nPayPerUse model: last failing run, step by step:\n  ${failedRunLog.join("\n  ")}\n`);
        throw error;
      });
    if (process.env.FC_STATS) {
      console.log(
        [...stats.entries()]
          .sort()
          .map(([k, n]) => `    ${k}: ${n}`)
          .join("\n"),
      );
    }
  });
});

/**
 * Two sessions (alice -> bob, dave -> carol, each in USDT or USDG) under one random sequence. The
 * checks use only what the chain shows: balances, events, getSession.
 */
async function runSessionCase(f: Awaited<ReturnType<typeof deployPayPerUse>>, c: SessionCase, log: string[]) {
  const ppu = f.payPerUse;
  const ppuAddr = await ppu.getAddress();
  const domain = await ppuDomain(ppu);
  const tokens = [f.usdt, f.usdg];
  const tokenAddr = [await f.usdt.getAddress(), await f.usdg.getAddress()];
  let now = BigInt(await time.latest());
  const send = async (what: string, tx: () => Promise<ContractTransactionResponse>) => {
    now += 1n;
    log.push(`${what} @${now}`);
    await time.setNextBlockTimestamp(now);
    return tx();
  };
  await send(`setFee(${c.feeBps})`, () => ppu.setFee(c.feeBps, GAS));
  await send(`setCloseGrace(${c.grace})`, () => ppu.setCloseGrace(c.grace, GAS));

  const parties = [
    { payer: f.alice, payerId: f.aliceId, provider: f.bob, providerId: f.bobId },
    { payer: f.dave, payerId: f.daveId, provider: f.carol, providerId: f.carolId },
  ];
  const feesBefore = await Promise.all(tokenAddr.map((t) => ppu.accruedFees(t)));
  const heldBefore = await Promise.all(tokens.map((t) => t.balanceOf(ppuAddr)));
  const sessions: {
    payer: HardhatEthersSigner;
    payerId: bigint;
    provider: HardhatEthersSigner;
    providerId: bigint;
    id: bigint;
    k: number;
    deposits: bigint; // deposit and top-ups
    paid: bigint; // what the provider received from this session, measured on its balance
    fees: bigint; // the fee booked at settlement
    providerStart: bigint;
  }[] = [];
  for (let i = 0; i < 2; i++) {
    const p = parties[i];
    const k = c.tokens[i];
    const before = await tokens[k].balanceOf(p.payer.address);
    await send(`open ${i}: ${TOKEN_NAMES[k]} deposit ${c.deposits[i]}`, () =>
      ppu
        .connect(p.payer)
        .openSession(p.payerId, p.providerId, tokenAddr[k], c.deposits[i], now + c.durations[i], p.payer.address, GAS),
    );
    const id = await ppu.sessionCount();
    expect(before - (await tokens[k].balanceOf(p.payer.address)), "deposit pulled").to.equal(c.deposits[i]);
    sessions.push({
      ...p,
      id,
      k,
      deposits: c.deposits[i],
      paid: 0n,
      fees: 0n,
      providerStart: await tokens[k].balanceOf(p.provider.address),
    });
  }
  const voucherFor = async (v: SessionVoucher) => {
    const s = sessions[v.session];
    const { deposit, redeemed } = await ppu.getSession(s.id);
    const amount =
      v.rel === "below"
        ? (redeemed * v.pct) / 100n
        : v.rel === "same"
          ? redeemed
          : v.rel === "between"
            ? redeemed + ((deposit - redeemed) * v.pct) / 100n
            : deposit + v.pct;
    const voucher = { sessionId: s.id, amount, calls: v.calls };
    return { s, voucher, signature: await s.payer.signTypedData(domain, VOUCHER_TYPES, voucher) };
  };
  const live = async (id: bigint) => {
    const s = await ppu.getSession(id);
    return !s.settled && now + 1n <= s.endsAt;
  };
  /**
   * After a redeem (single or batched), from the chain alone: each provider has received exactly
   * `redeemed - fee(redeemed)` of its session (never more than the deposits), no fee is booked
   * before settlement, and PayPerUse holds the rest.
   */
  const checkRedeemed = async () => {
    for (let i = 0; i < sessions.length; i++) {
      const s = sessions[i];
      const chain = await ppu.getSession(s.id);
      s.paid = (await tokens[s.k].balanceOf(s.provider.address)) - s.providerStart;
      expect(s.paid, `provider of session ${i}: paid = redeemed ${chain.redeemed} - its fee`).to.equal(
        chain.redeemed - feeOf(chain.redeemed, chain.feeBps),
      );
      expect(
        s.paid <= s.deposits && chain.redeemed <= chain.deposit && chain.deposit === s.deposits,
        `session ${i}: provider paid ${s.paid}, redeemed ${chain.redeemed}, deposits ${s.deposits}`,
      ).to.equal(true);
    }
    for (let k = 0; k < 2; k++) {
      expect(
        await ppu.accruedFees(tokenAddr[k]),
        `${TOKEN_NAMES[k]}: no session fee booked before settlement`,
      ).to.equal(feesBefore[k]);
      const owed = sessions.filter((s) => s.k === k).reduce((a, s) => a + s.deposits - s.paid, 0n);
      expect((await tokens[k].balanceOf(ppuAddr)) - heldBefore[k], `${TOKEN_NAMES[k]} held`).to.equal(owed);
    }
  };

  for (const op of c.ops) {
    if (op.op === "wait") {
      now += op.seconds;
      log.push(`wait ${op.seconds}s`);
      continue;
    }
    if (op.op === "topUp") {
      const s = sessions[op.session];
      const chain = await ppu.getSession(s.id);
      const expiry = op.extend === null ? 0n : chain.endsAt + op.extend;
      const call = () => ppu.connect(s.payer).topUp(s.id, op.amount, expiry, GAS);
      if (!(await live(s.id))) {
        await expect(send(`topUp ${op.session} (ended)`, call)).to.be.revertedWithCustomError(
          ppu,
          "PayPerUseSessionEnded",
        );
      } else if (chain.closing) {
        await expect(send(`topUp ${op.session} (closing)`, call)).to.be.revertedWithCustomError(
          ppu,
          "PayPerUseSessionClosing",
        );
      } else {
        await send(`topUp ${op.session} ${op.amount} until ${expiry}`, call);
        s.deposits += op.amount;
        expect((await ppu.getSession(s.id)).deposit, "deposit after top-up").to.equal(s.deposits);
      }
      continue;
    }
    if (op.op === "close") {
      const s = sessions[op.session];
      const chain = await ppu.getSession(s.id);
      const call = () => ppu.connect(s.payer).requestClose(s.id, GAS);
      if (!(await live(s.id))) {
        await expect(send(`close ${op.session} (ended)`, call)).to.be.revertedWithCustomError(
          ppu,
          "PayPerUseSessionEnded",
        );
      } else if (chain.closing) {
        await expect(send(`close ${op.session} (closing)`, call)).to.be.revertedWithCustomError(
          ppu,
          "PayPerUseSessionClosing",
        );
      } else {
        await send(`close ${op.session}`, call);
        const end = now + c.grace < chain.endsAt ? now + c.grace : chain.endsAt;
        expect((await ppu.getSession(s.id)).endsAt, "endsAt after the close request").to.equal(end);
      }
      continue;
    }
    const vouchers = op.op === "redeem" ? [op.voucher] : op.vouchers;
    const batch: Awaited<ReturnType<typeof voucherFor>>[] = [];
    for (const v of vouchers) batch.push(await voucherFor(v));
    const state = await Promise.all(sessions.map((x) => ppu.getSession(x.id)));
    const ended = [];
    for (const b of batch) if (!(await live(b.s.id))) ended.push(b);
    const what = `${op.op} [${batch.map((b) => `${b.voucher.amount} on ${sessions.indexOf(b.s)}`).join(", ")}]`;
    const call = () =>
      op.op === "redeem"
        ? ppu.connect(f.stranger).redeem(batch[0].voucher, batch[0].signature, GAS)
        : ppu.connect(f.stranger).redeemMany(
            batch.map((b) => b.voucher),
            batch.map((b) => b.signature),
            GAS,
          );
    if (ended.length > 0) {
      await expect(send(`${what} (ended)`, call)).to.be.revertedWithCustomError(ppu, "PayPerUseSessionEnded");
      continue;
    }
    const receipt = (await (await send(what, call)).wait())!;
    const events = receipt.logs
      .filter((l) => l.address === ppuAddr)
      .map((l) => ppu.interface.parseLog(l))
      .filter((e): e is LogDescription => e !== null);
    // The expected events, in batch order: a voucher at or below the redeemed amount has none and
    // pays nothing; the fee of each is the fee of the new cumulative amount less the previous one's.
    const redeemed = state.map((x) => x.redeemed);
    const calls = state.map((x) => x.calls);
    const ordered: unknown[][] = [];
    for (const { s, voucher } of batch) {
      const i = sessions.indexOf(s);
      const { deposit, feeBps } = state[i];
      const capped = voucher.amount < deposit ? voucher.amount : deposit;
      if (capped <= redeemed[i]) continue;
      const fee = feeOf(capped, feeBps) - feeOf(redeemed[i], feeBps);
      if (voucher.calls > calls[i]) calls[i] = voucher.calls;
      ordered.push([s.id, capped, calls[i], capped - redeemed[i] - fee, fee]);
      redeemed[i] = capped;
    }
    expect(
      events.filter((e) => e.name === "VoucherRedeemed").map((e) => e.args.toArray()),
      `${what}: VoucherRedeemed events`,
    ).to.deep.equal(ordered);
    const after = await Promise.all(sessions.map((x) => ppu.getSession(x.id)));
    expect(
      after.map((x) => [x.redeemed, x.calls]),
      "redeemed and calls after the vouchers",
    ).to.deep.equal(redeemed.map((x, i) => [x, calls[i]]));
    await checkRedeemed();
  }

  // Settlement: after the end the fee on the redeemed total is booked and the rest goes back:
  // refund + payouts + fee = deposits, to the wei.
  now += MAX_SESSION_DURATION;
  for (let i = 0; i < sessions.length; i++) {
    const s = sessions[i];
    const payerBefore = await tokens[s.k].balanceOf(s.payer.address);
    const feesBeforeSettle = await ppu.accruedFees(tokenAddr[s.k]);
    await send(`settle ${i}`, () => ppu.connect(f.stranger).settleSession(s.id, GAS));
    const refund = (await tokens[s.k].balanceOf(s.payer.address)) - payerBefore;
    const fee = (await ppu.accruedFees(tokenAddr[s.k])) - feesBeforeSettle;
    const chain = await ppu.getSession(s.id);
    expect(chain.settled, `session ${i} settled`).to.equal(true);
    expect(refund + s.paid + fee, `session ${i}: refund ${refund} + paid ${s.paid} + fee ${fee}`).to.equal(s.deposits);
    expect([refund, fee], `session ${i} refund and fee`).to.deep.equal([
      chain.deposit - chain.redeemed,
      feeOf(chain.redeemed, chain.feeBps),
    ]);
    s.fees = fee;
    // Late vouchers fail.
    const late = { sessionId: s.id, amount: chain.deposit, calls: 1n };
    await expect(
      send(`late redeem ${i}`, async () =>
        ppu.redeem(late, await s.payer.signTypedData(domain, VOUCHER_TYPES, late), GAS),
      ),
    ).to.be.revertedWithCustomError(ppu, "PayPerUseSessionEnded");
  }
  // Only the fees stay.
  for (let k = 0; k < 2; k++) {
    const fees = sessions.filter((s) => s.k === k).reduce((a, s) => a + s.fees, 0n);
    expect((await ppu.accruedFees(tokenAddr[k])) - feesBefore[k], `${TOKEN_NAMES[k]} fees`).to.equal(fees);
    expect((await tokens[k].balanceOf(ppuAddr)) - heldBefore[k], `${TOKEN_NAMES[k]} held after settling`).to.equal(
      fees,
    );
  }
}
