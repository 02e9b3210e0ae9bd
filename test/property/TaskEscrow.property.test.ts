import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { ContractTransactionResponse, LogDescription } from "ethers";
import { deployEscrow, Status, Mode, CAPABILITY, SPEC_HASH, MIN_BUDGET, HOUR, DAY } from "../fixtures/escrow";
import type { MockArbitrator, MockStablecoin, TaskEscrow } from "../../typechain-types";

/**
 * TaskEscrow against a TypeScript model: random interleavings of every way into, through and out
 * of a task (three assignment modes, two tokens, delivery, review, cancellation, disputes, rulings,
 * timeouts, fee changes and time jumps), several tasks at once. After every command: the escrow's
 * balance per token is exactly what its live tasks, held deposits, credits and fees account for;
 * every task moves only along the documented edges and is settled exactly once; every balance is
 * the model's to the unit. At the end every task is driven to a terminal state and no funds stay.
 * Fixed seed by default; FC_SEED, FC_RUNS and FC_COMMANDS explore further,
 * e.g. `FC_RUNS=200 npx hardhat test <file>`.
 */
const seed = Number(process.env.FC_SEED ?? 42);
const numRuns = Number(process.env.FC_RUNS ?? 12);
const maxCommands = Number(process.env.FC_COMMANDS ?? 30);

/** How often each call ended which way (printed with FC_STATS=1). */
const stats = new Map<string, number>();

/** Explicit gas so that no estimate runs: every call, reverting or not, is mined at the time set for it. */
const GAS = { gasLimit: 3_000_000 };
const BPS = 10_000n;
const MAX_TASKS = 5;
const ARBITRATION_TIMEOUT = 180n * DAY;
const RULING_OPTIONS = 5n;
const CLIENT = 1n; // alice
const PROVIDERS = [2n, 3n, 4n]; // bob, carol, dave
const TOKEN_NAMES = ["USDT", "USDG"];
const STATUS_NAMES = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k])) as Record<number, string>;
const TERMINAL: number[] = [Status.Completed, Status.Refunded, Status.Resolved, Status.Closed, Status.Expired];
const isTerminal = (s: number) => TERMINAL.includes(s);

/** The documented state machine: every edge a task may take. */
const EDGES: Record<number, number[]> = {
  [Status.Open]: [Status.Accepted, Status.Closed, Status.Expired],
  [Status.Accepted]: [Status.Submitted, Status.CancelRequested, Status.Refunded],
  [Status.CancelRequested]: [Status.Submitted, Status.Refunded, Status.Disputed],
  [Status.Submitted]: [Status.Completed, Status.Rejected],
  [Status.Rejected]: [Status.Refunded, Status.Disputed],
  [Status.Disputed]: [Status.Arbitration, Status.Resolved],
  [Status.Arbitration]: [Status.Resolved],
};

/** Bob lists an active quoted-task service with the auto-match capability; carol and dave list none. */
async function escrowModelFixture() {
  const f = await deployEscrow();
  await f.registry.connect(f.bob).listService(f.bobId, CAPABILITY, 1, ethers.ZeroAddress, 0, "https://bob.example/a2a");
  const serviceId = await f.registry.serviceCount();
  return { ...f, serviceId };
}

// ---------------------------------------------------------------------------------------------- model

interface TaskModel {
  id: bigint;
  token: number; // index into Real.tokens
  mode: number;
  providerId: bigint; // the named provider (direct) or the assigned one; 0 while unassigned
  status: number;
  amount: bigint; // getTask().amount: locked budget, then price, then the settled amount
  offer: bigint; // the budget: the price of a direct or auto-match assignment
  deadline: bigint;
  deliveryDuration: bigint;
  reviewPeriod: bigint;
  feeBps: bigint;
  arbFeeBps: bigint;
  deposit: bigint; // each dispute deposit, once raised (held by the escrow while Disputed / Arbitration)
  disputeId: bigint; // the arbitrator's id, once both deposited (0 = none)
  bids: Map<bigint, { price: bigint; eta: bigint }>;
  seen: number; // the on-chain status at the last check
  expectedPaid: bigint; // what its one settlement must pay out in total (set when the model settles it)
  paid: bigint; // paid out on chain so far, from TaskSettled and DepositsReturned
  settlements: number; // TaskSettled events so far
}

interface Model {
  now: bigint; // the latest block's timestamp, or later after a time jump: the next tx is mined at now + 1
  tasks: TaskModel[];
  balances: Map<string, bigint>[]; // per token: address -> balance
  fees: bigint[]; // per token: accruedFees
  protocolFeeBps: bigint;
  arbitrationFeeBps: bigint;
  nextDisputeId: bigint;
  log: string[]; // what happened, for a failing run's report
}

interface Real {
  escrow: TaskEscrow;
  arbitrator: MockArbitrator;
  tokens: MockStablecoin[];
  tokenAddr: string[];
  escrowAddr: string;
  arbAddr: string;
  treasury: string;
  admin: HardhatEthersSigner;
  stranger: HardhatEthersSigner;
  agents: Map<bigint, HardhatEthersSigner>; // agent id -> owner
  wallets: Map<bigint, string>; // agent id -> payout wallet
  serviceId: bigint;
  tracked: string[]; // every address whose balances the model tracks
}

type Events = LogDescription[];
type Verdict = { error: string; args: unknown[] } | { apply: (events: Events) => void };

const fail = (error: string, ...args: unknown[]): Verdict => ({ error, args });
const wrongStatus = (t: TaskModel) => fail("TaskEscrowWrongStatus", t.id, t.status);
const deadlinePassed = (t: TaskModel) => fail("TaskEscrowDeadlinePassed", t.id, t.deadline);
const signerOf = (r: Real, agentId: bigint) => r.agents.get(agentId === 0n ? PROVIDERS[0] : agentId)!;
const describeTask = (t: TaskModel) =>
  `#${t.id} ${STATUS_NAMES[t.status]} ${["direct", "bidding", "auto"][t.mode]} ${TOKEN_NAMES[t.token]} amount ${t.amount}`;

function move(m: Model, k: number, from: string, to: string, amount: bigint) {
  if (amount === 0n) return;
  const b = m.balances[k];
  b.set(from, b.get(from)! - amount);
  b.set(to, b.get(to)! + amount);
}

/** The single event `name` of task `id` in `events`, checked against `args`. */
function expectEvent(events: Events, name: string, args: bigint[]) {
  const found = events.filter((e) => e.name === name && e.args[0] === args[0]);
  expect(found.length, `${name} events for task #${args[0]}`).to.equal(1);
  expect(
    found[0].args.toArray().map((a) => BigInt(a)),
    `${name}(task #${args[0]})`,
  ).to.deep.equal(args);
}

/** Open → Closed / Expired: the whole locked budget goes back to the client. */
function closeOpen(m: Model, r: Real, t: TaskModel, to: number, events: Events) {
  expectEvent(events, "TaskSettled", [t.id, 0n, t.amount, 0n]);
  move(m, t.token, r.escrowAddr, r.wallets.get(CLIENT)!, t.amount);
  t.status = to;
  t.expectedPaid = t.amount;
}

/** An assigned task pays out: `shareBps` of the price to the provider minus the fee, the rest to the client. */
function settle(
  m: Model,
  r: Real,
  t: TaskModel,
  to: number,
  shareBps: bigint,
  events: Events,
  providerExtra = 0n,
  clientExtra = 0n,
) {
  const providerShare = (t.amount * shareBps) / BPS;
  const fee = (providerShare * t.feeBps) / BPS;
  const toClient = t.amount - providerShare;
  const toProvider = providerShare - fee;
  expectEvent(events, "TaskSettled", [t.id, toProvider, toClient, fee]);
  move(m, t.token, r.escrowAddr, r.wallets.get(t.providerId)!, toProvider + providerExtra);
  move(m, t.token, r.escrowAddr, r.wallets.get(CLIENT)!, toClient + clientExtra);
  m.fees[t.token] += fee;
  t.status = to;
  t.expectedPaid = t.amount + providerExtra + clientExtra;
}

/** A dispute ends: the held deposit returns in the same proportions as the price. */
function resolve(m: Model, r: Real, t: TaskModel, shareBps: bigint, events: Events) {
  const toProvider = (t.deposit * shareBps) / BPS;
  expectEvent(events, "DepositsReturned", [t.id, toProvider, t.deposit - toProvider]);
  settle(m, r, t, Status.Resolved, shareBps, events, toProvider, t.deposit - toProvider);
}

/** A provider is assigned at `price`; the unused part of the locked budget goes back to the client. */
function assign(m: Model, r: Real, t: TaskModel, providerId: bigint, price: bigint, duration: bigint, ts: bigint) {
  move(m, t.token, r.escrowAddr, r.wallets.get(CLIENT)!, t.amount - price);
  t.amount = price;
  t.providerId = providerId;
  t.deliveryDuration = duration;
  t.status = Status.Accepted;
  t.deadline = ts + duration;
}

/** What `timeout` does to a live task whose deadline passed. */
function applyTimeout(m: Model, r: Real, t: TaskModel, events: Events) {
  if (t.status === Status.Open) closeOpen(m, r, t, Status.Expired, events);
  else if (t.status === Status.Submitted) settle(m, r, t, Status.Completed, BPS, events);
  else if (t.status === Status.Disputed) resolve(m, r, t, BPS, events);
  else if (t.status === Status.Arbitration) resolve(m, r, t, BPS / 2n, events);
  else settle(m, r, t, Status.Refunded, 0n, events);
}

function timeoutVerdict(m: Model, r: Real, t: TaskModel, ts: bigint): Verdict {
  if (isTerminal(t.status)) return wrongStatus(t);
  if (ts <= t.deadline) return fail("TaskEscrowDeadlineNotPassed", t.id, t.deadline);
  return { apply: (events) => applyTimeout(m, r, t, events) };
}

/**
 * Sends one transaction mined at exactly `m.now + 1` and checks it against the verdict: the exact
 * custom error, or success, after which the model applies it and books the settlement events.
 */
async function attempt(m: Model, r: Real, what: string, send: () => Promise<ContractTransactionResponse>, v: Verdict) {
  const ts = m.now + 1n;
  const outcome = `${what.split(" ")[0]} -> ${"error" in v ? v.error : "ok"}`;
  stats.set(outcome, (stats.get(outcome) ?? 0) + 1);
  m.log.push(`${what} @${ts}: ${"error" in v ? `expect ${v.error}(${v.args.join(", ")})` : "expect success"}`);
  await time.setNextBlockTimestamp(ts);
  if ("error" in v) {
    const assertion = expect(send(), what).to.be.revertedWithCustomError(r.escrow, v.error);
    await (v.args.length > 0 ? assertion.withArgs(...v.args) : assertion);
  } else {
    const tx = await send();
    const receipt = (await tx.wait())!;
    const events = receipt.logs
      .filter((log) => log.address === r.escrowAddr)
      .map((log) => r.escrow.interface.parseLog(log))
      .filter((e): e is LogDescription => e !== null);
    v.apply(events);
    for (const e of events) {
      if (e.name !== "TaskSettled" && e.name !== "DepositsReturned") continue;
      const t = m.tasks[Number(e.args[0]) - 1];
      expect(t, `settlement event for unknown task #${e.args[0]}`).to.not.equal(undefined);
      if (e.name === "TaskSettled") {
        t.settlements += 1;
        t.paid += e.args[1] + e.args[2] + e.args[3];
      } else t.paid += e.args[1] + e.args[2];
    }
  }
  m.now = ts;
  expect(BigInt(await time.latest()), `block timestamp of ${what}`).to.equal(ts);
}

/** Every invariant, against the chain. */
async function checkAll(m: Model, r: Real) {
  const [onChain, disputes, count] = await Promise.all([
    Promise.all(m.tasks.map((t) => r.escrow.getTask(t.id))),
    Promise.all(m.tasks.map((t) => r.escrow.getDispute(t.id))),
    r.escrow.taskCount(),
  ]);
  expect(count, "taskCount").to.equal(BigInt(m.tasks.length));
  m.tasks.forEach((t, i) => {
    const c = onChain[i];
    const label = `task #${t.id}`;
    const status = Number(c.status);
    // 3. Only documented edges; terminal states never change.
    if (status !== t.seen) {
      expect(
        (EDGES[t.seen] ?? []).includes(status),
        `${label} moved ${STATUS_NAMES[t.seen]} -> ${STATUS_NAMES[status]}`,
      ).to.equal(true);
    }
    t.seen = status;
    expect(STATUS_NAMES[status], `${label} status`).to.equal(STATUS_NAMES[t.status]);
    expect(
      [c.token, c.amount, c.clientId, c.providerId, c.mode, c.feeBps, c.arbitrationFeeBps, c.deadline],
      `${label} fields`,
    ).to.deep.equal([
      r.tokenAddr[t.token],
      t.amount,
      CLIENT,
      t.providerId,
      BigInt(t.mode),
      t.feeBps,
      t.arbFeeBps,
      t.deadline,
    ]);
    expect(c.deliveryDuration, `${label} deliveryDuration`).to.equal(t.deliveryDuration);
    const d = disputes[i];
    if (t.deposit > 0n || t.status === Status.Disputed || t.status === Status.Arbitration || t.disputeId > 0n) {
      expect([d.arbitrator, d.deposit, d.disputeId], `${label} dispute`).to.deep.equal([
        r.arbAddr,
        t.deposit,
        t.disputeId,
      ]);
    }
    // 2. Settled exactly once, for exactly the amount (plus the held deposit), and only when terminal.
    if (isTerminal(t.status)) {
      expect([t.settlements, t.paid], `${label} settlements and total paid out`).to.deep.equal([1, t.expectedPaid]);
    } else {
      expect([t.settlements, t.paid], `${label} paid out while live`).to.deep.equal([0, 0n]);
    }
  });

  for (let k = 0; k < r.tokens.length; k++) {
    const token = r.tokens[k];
    const name = TOKEN_NAMES[k];
    const [balances, fees, credits] = await Promise.all([
      Promise.all(r.tracked.map((a) => token.balanceOf(a))),
      r.escrow.accruedFees(r.tokenAddr[k]),
      Promise.all(r.tracked.map((a) => r.escrow.creditOf(r.tokenAddr[k], a))),
    ]);
    // 1. The escrow holds exactly what its tasks, deposits, credits and fees account for.
    let live = 0n;
    let held = 0n;
    m.tasks.forEach((t, i) => {
      if (onChain[i].token !== r.tokenAddr[k]) return;
      const status = Number(onChain[i].status);
      if (!isTerminal(status)) live += onChain[i].amount;
      if (status === Status.Disputed || status === Status.Arbitration) held += disputes[i].deposit;
    });
    const creditSum = credits.reduce((a, b) => a + b, 0n);
    const escrowBalance = balances[r.tracked.indexOf(r.escrowAddr)];
    expect(
      escrowBalance,
      `${name}: escrow balance = live ${live} + deposits ${held} + credits ${creditSum} + fees ${fees}`,
    ).to.equal(live + held + creditSum + fees);
    // 4. Exact balances, fees and (no) credits.
    expect(fees, `${name} accruedFees`).to.equal(m.fees[k]);
    expect(credits, `${name} credits`).to.deep.equal(r.tracked.map(() => 0n));
    expect(balances, `${name} balances of ${r.tracked.join(", ")}`).to.deep.equal(
      r.tracked.map((a) => m.balances[k].get(a)!),
    );
  }
}

// ---------------------------------------------------------------------------------------------- commands

abstract class Command implements fc.AsyncCommand<Model, Real> {
  check(m: Readonly<Model>): boolean {
    return m.tasks.length > 0;
  }
  abstract exec(m: Model, r: Real): Promise<void>;
  async run(m: Model, r: Real) {
    await this.exec(m, r);
    await checkAll(m, r);
  }
  abstract toString(): string;
}

/**
 * The task a command acts on: one for which it is valid in the model, or (when `wrong`, or when
 * there is none) one for which it is not, so that the exact error is asserted.
 */
function target(m: Model, pick: number, wrong: boolean, valid: (t: TaskModel, ts: bigint) => boolean) {
  const ts = m.now + 1n;
  const good = m.tasks.filter((t) => valid(t, ts));
  const bad = m.tasks.filter((t) => !valid(t, ts));
  const pool = wrong ? (bad.length > 0 ? bad : good) : good.length > 0 ? good : bad;
  return { t: pool[pick % pool.length], ts };
}

class Post extends Command {
  constructor(
    readonly mode: number,
    readonly token: number,
    readonly maxBudget: bigint,
    readonly budgetPct: bigint,
    readonly provider: bigint,
    readonly acceptWindow: bigint,
    readonly delivery: bigint,
    readonly review: bigint,
  ) {
    super();
  }
  check = (m: Readonly<Model>) => m.tasks.length < MAX_TASKS;
  async exec(m: Model, r: Real) {
    const ts = m.now + 1n;
    const scaled = (this.maxBudget * this.budgetPct) / 100n;
    const budget = scaled < MIN_BUDGET ? MIN_BUDGET : scaled;
    const providerId = this.mode === Mode.Direct ? this.provider : 0n;
    const params = {
      clientId: CLIENT,
      providerId,
      mode: this.mode,
      token: r.tokenAddr[this.token],
      budget,
      maxBudget: this.maxBudget,
      acceptDeadline: ts + this.acceptWindow,
      deliveryDuration: this.delivery,
      reviewPeriod: this.review,
      minScoreBps: 0n,
      parentTaskId: 0n,
      capability: CAPABILITY,
      specHash: SPEC_HASH,
      specURI: "ipfs://spec",
    };
    await attempt(m, r, this.toString(), () => r.escrow.connect(signerOf(r, CLIENT)).postTask(params, GAS), {
      apply: (events) => {
        const id = BigInt(m.tasks.length + 1);
        expect(events.find((e) => e.name === "TaskPosted")?.args[0], "posted task id").to.equal(id);
        move(m, this.token, r.wallets.get(CLIENT)!, r.escrowAddr, this.maxBudget);
        m.tasks.push({
          id,
          token: this.token,
          mode: this.mode,
          providerId,
          status: Status.Open,
          amount: this.maxBudget,
          offer: budget,
          deadline: ts + this.acceptWindow,
          deliveryDuration: this.delivery,
          reviewPeriod: this.review,
          feeBps: m.protocolFeeBps,
          arbFeeBps: m.arbitrationFeeBps,
          deposit: 0n,
          disputeId: 0n,
          bids: new Map(),
          seen: Status.Open,
          expectedPaid: 0n,
          paid: 0n,
          settlements: 0,
        });
      },
    });
  }
  toString = () =>
    `post(${["direct", "bidding", "auto"][this.mode]}${this.mode === Mode.Direct ? ` to #${this.provider}` : ""}, ` +
    `${TOKEN_NAMES[this.token]}, max ${this.maxBudget}, budget ${this.budgetPct}%, accept +${this.acceptWindow}s, ` +
    `delivery ${this.delivery}s, review ${this.review}s)`;
}

/** Steps of an open task with its own mode check, in the contract's order: status, mode, deadline. */
function openVerdict(t: TaskModel, mode: number, ts: bigint, checkDeadline = true): Verdict | null {
  if (t.status !== Status.Open) return wrongStatus(t);
  if (t.mode !== mode) return fail("TaskEscrowBadTask");
  if (checkDeadline && ts > t.deadline) return deadlinePassed(t);
  return null;
}

const openValid = (mode: number) => (t: TaskModel, ts: bigint) =>
  t.status === Status.Open && t.mode === mode && ts <= t.deadline;

class Accept extends Command {
  constructor(
    readonly pick: number,
    readonly wrong: boolean,
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const { t, ts } = target(m, this.pick, this.wrong, openValid(Mode.Direct));
    const provider = t.providerId;
    const v = openVerdict(t, Mode.Direct, ts) ?? {
      apply: () => assign(m, r, t, provider, t.offer, t.deliveryDuration, ts),
    };
    await attempt(
      m,
      r,
      `accept ${describeTask(t)}`,
      () => r.escrow.connect(signerOf(r, provider)).acceptTask(t.id, t.offer, t.deliveryDuration, GAS),
      v,
    );
  }
  toString = () => `accept(${this.pick}${this.wrong ? ", wrong" : ""})`;
}

class Decline extends Command {
  constructor(
    readonly pick: number,
    readonly wrong: boolean,
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const { t } = target(m, this.pick, this.wrong, (x) => x.status === Status.Open && x.mode === Mode.Direct);
    const v = openVerdict(t, Mode.Direct, 0n, false) ?? {
      apply: (events: Events) => closeOpen(m, r, t, Status.Closed, events),
    };
    await attempt(
      m,
      r,
      `decline ${describeTask(t)}`,
      () => r.escrow.connect(signerOf(r, t.providerId)).declineTask(t.id, GAS),
      v,
    );
  }
  toString = () => `decline(${this.pick}${this.wrong ? ", wrong" : ""})`;
}

class Bid extends Command {
  constructor(
    readonly pick: number,
    readonly wrong: boolean,
    readonly provider: bigint,
    readonly price: { pct: bigint } | { units: bigint },
    readonly eta: bigint,
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const { t, ts } = target(m, this.pick, this.wrong, openValid(Mode.Bidding));
    let price = "pct" in this.price ? (t.amount * this.price.pct) / 100n : this.price.units;
    if (price === 0n) price = 1n;
    if (price > t.amount) price = t.amount;
    const v = openVerdict(t, Mode.Bidding, ts) ?? {
      apply: () => void t.bids.set(this.provider, { price, eta: this.eta }),
    };
    await attempt(
      m,
      r,
      `bid by #${this.provider} at ${price} on ${describeTask(t)}`,
      () =>
        r.escrow
          .connect(signerOf(r, this.provider))
          .placeBid(t.id, this.provider, price, this.eta, ethers.id("proposal"), GAS),
      v,
    );
  }
  toString = () =>
    `bid(${this.pick}${this.wrong ? ", wrong" : ""}, #${this.provider}, ` +
    `${"pct" in this.price ? `${this.price.pct}%` : `${this.price.units} units`}, eta ${this.eta}s)`;
}

class Select extends Command {
  constructor(
    readonly pick: number,
    readonly wrong: boolean,
    readonly bidPick: number,
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const { t, ts } = target(m, this.pick, this.wrong, (x, s) => openValid(Mode.Bidding)(x, s) && x.bids.size > 0);
    const bidders = [...t.bids.keys()].sort();
    // Usually a live bid; when told to go wrong, possibly a provider that has none.
    const provider =
      bidders.length > 0 && !this.wrong
        ? bidders[this.bidPick % bidders.length]
        : PROVIDERS[this.bidPick % PROVIDERS.length];
    const bid = t.bids.get(provider);
    let v = openVerdict(t, Mode.Bidding, ts);
    if (v === null && bid === undefined) v = fail("TaskEscrowNoBid", t.id, provider);
    v ??= {
      apply: () => {
        t.bids.delete(provider);
        assign(m, r, t, provider, bid!.price, bid!.eta, ts);
      },
    };
    await attempt(
      m,
      r,
      `select #${provider} on ${describeTask(t)}`,
      () =>
        r.escrow.connect(signerOf(r, CLIENT)).selectBid(t.id, provider, bid?.price ?? 1n, bid?.eta ?? Number(DAY), GAS),
      v,
    );
  }
  toString = () => `select(${this.pick}${this.wrong ? ", wrong" : ""}, bid ${this.bidPick})`;
}

class Claim extends Command {
  constructor(
    readonly pick: number,
    readonly wrong: boolean,
    readonly claimant: bigint,
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const { t, ts } = target(m, this.pick, this.wrong, openValid(Mode.AutoMatch));
    let v = openVerdict(t, Mode.AutoMatch, ts);
    // Only bob lists the capability: anyone else naming bob's service is refused.
    if (v === null && this.claimant !== PROVIDERS[0]) v = fail("TaskEscrowServiceMismatch", r.serviceId);
    v ??= { apply: () => assign(m, r, t, this.claimant, t.offer, t.deliveryDuration, ts) };
    await attempt(
      m,
      r,
      `claim by #${this.claimant} of ${describeTask(t)}`,
      () => r.escrow.connect(signerOf(r, this.claimant)).claimTask(t.id, this.claimant, r.serviceId, GAS),
      v,
    );
  }
  toString = () => `claim(${this.pick}${this.wrong ? ", wrong" : ""}, #${this.claimant})`;
}

/** A command on an assigned task: allowed statuses, the actor, whether the deadline applies, the effect. */
abstract class TaskStep extends Command {
  constructor(
    readonly pick: number,
    readonly wrong: boolean,
  ) {
    super();
  }
  abstract name: string;
  abstract statuses: number[];
  abstract withinDeadline: boolean;
  abstract actor(t: TaskModel): bigint;
  abstract send(r: Real, t: TaskModel): (signer: HardhatEthersSigner) => Promise<ContractTransactionResponse>;
  abstract effect(m: Model, r: Real, t: TaskModel, ts: bigint, events: Events): void;
  async exec(m: Model, r: Real) {
    const { t, ts } = target(
      m,
      this.pick,
      this.wrong,
      (x, s) => this.statuses.includes(x.status) && (!this.withinDeadline || s <= x.deadline),
    );
    let v: Verdict | null = null;
    if (!this.statuses.includes(t.status)) v = wrongStatus(t);
    else if (this.withinDeadline && ts > t.deadline) v = deadlinePassed(t);
    v ??= { apply: (events: Events) => this.effect(m, r, t, ts, events) };
    const signer = signerOf(r, this.actor(t));
    await attempt(m, r, `${this.name} ${describeTask(t)}`, () => this.send(r, t)(signer), v);
  }
  toString = () => `${this.name}(${this.pick}${this.wrong ? ", wrong" : ""})`;
}

class Submit extends TaskStep {
  name = "submit";
  statuses = [Status.Accepted, Status.CancelRequested];
  withinDeadline = true;
  actor = (t: TaskModel) => t.providerId;
  send = (r: Real, t: TaskModel) => (s: HardhatEthersSigner) =>
    r.escrow.connect(s).submitWork(t.id, ethers.id("deliverable"), "ipfs://deliverable", GAS);
  effect(_m: Model, _r: Real, t: TaskModel, ts: bigint) {
    t.status = Status.Submitted;
    t.deadline = ts + t.reviewPeriod;
  }
}

class Approve extends TaskStep {
  name = "approve";
  statuses = [Status.Submitted];
  withinDeadline = false;
  actor = () => CLIENT;
  send = (r: Real, t: TaskModel) => (s: HardhatEthersSigner) => r.escrow.connect(s).approve(t.id, GAS);
  effect(m: Model, r: Real, t: TaskModel, _ts: bigint, events: Events) {
    settle(m, r, t, Status.Completed, BPS, events);
  }
}

class Reject extends TaskStep {
  name = "reject";
  statuses = [Status.Submitted];
  withinDeadline = true;
  actor = () => CLIENT;
  send = (r: Real, t: TaskModel) => (s: HardhatEthersSigner) => r.escrow.connect(s).reject(t.id, ethers.id("no"), GAS);
  effect(_m: Model, _r: Real, t: TaskModel, ts: bigint) {
    t.status = Status.Rejected;
    t.deadline = ts + t.reviewPeriod;
  }
}

class AgreeRefund extends TaskStep {
  name = "agreeRefund";
  statuses = [Status.Rejected, Status.CancelRequested];
  withinDeadline = false;
  actor = (t: TaskModel) => t.providerId;
  send = (r: Real, t: TaskModel) => (s: HardhatEthersSigner) => r.escrow.connect(s).agreeRefund(t.id, GAS);
  effect(m: Model, r: Real, t: TaskModel, _ts: bigint, events: Events) {
    settle(m, r, t, Status.Refunded, 0n, events);
  }
}

/** closeTask: an open task closes with a full refund; an accepted one asks the provider to cancel. */
class Close extends TaskStep {
  name = "close";
  statuses = [Status.Open, Status.Accepted];
  withinDeadline = false;
  actor = () => CLIENT;
  send = (r: Real, t: TaskModel) => (s: HardhatEthersSigner) => r.escrow.connect(s).closeTask(t.id, GAS);
  effect(m: Model, r: Real, t: TaskModel, ts: bigint, events: Events) {
    if (t.status === Status.Open) return closeOpen(m, r, t, Status.Closed, events);
    // The provider answers within one response window, never more time than it had.
    const remaining = t.deadline > ts ? t.deadline - ts : 0n;
    const window = remaining < t.reviewPeriod ? remaining : t.reviewPeriod;
    if (window !== 0n) t.deadline = ts + window;
    t.status = Status.CancelRequested;
  }
}

class RaiseDispute extends TaskStep {
  name = "raiseDispute";
  statuses = [Status.Rejected, Status.CancelRequested];
  withinDeadline = true;
  actor = (t: TaskModel) => t.providerId;
  send = (r: Real, t: TaskModel) => (s: HardhatEthersSigner) => r.escrow.connect(s).raiseDispute(t.id, GAS);
  effect(m: Model, r: Real, t: TaskModel, ts: bigint) {
    t.deposit = (t.amount * t.arbFeeBps) / BPS;
    move(m, t.token, r.agents.get(t.providerId)!.address, r.escrowAddr, t.deposit);
    t.status = Status.Disputed;
    t.deadline = ts + t.reviewPeriod;
  }
}

class PayDeposit extends TaskStep {
  name = "payDisputeDeposit";
  statuses = [Status.Disputed];
  withinDeadline = true;
  actor = () => CLIENT;
  send = (r: Real, t: TaskModel) => (s: HardhatEthersSigner) => r.escrow.connect(s).payDisputeDeposit(t.id, GAS);
  effect(m: Model, r: Real, t: TaskModel, ts: bigint, events: Events) {
    // The client's deposit comes in and goes on to the arbitrator as its fee.
    move(m, t.token, r.agents.get(CLIENT)!.address, r.arbAddr, t.deposit);
    t.disputeId = m.nextDisputeId++;
    const dispute = events.find((e) => e.name === "Dispute");
    expect(dispute?.args.toArray(), "Dispute event").to.deep.equal([r.arbAddr, t.disputeId, t.id, t.id]);
    t.status = Status.Arbitration;
    t.deadline = ts + ARBITRATION_TIMEOUT;
  }
}

/** The arbitrator rules (r in 0..5; 6 is out of range); or a stranger / an unknown dispute id is refused. */
class Rule extends Command {
  constructor(
    readonly pick: number,
    readonly wrong: boolean,
    readonly ruling: bigint,
  ) {
    super();
  }
  check = () => true;
  async exec(m: Model, r: Real) {
    const ruled = m.tasks.filter((t) => t.disputeId !== 0n);
    if (ruled.length === 0) {
      const disputeId = 1_000n + BigInt(this.pick);
      await attempt(
        m,
        r,
        `rule on unknown dispute ${disputeId}`,
        () => r.arbitrator.ruleOn(r.escrowAddr, disputeId, this.ruling, GAS),
        fail("TaskEscrowNotArbitrator", r.arbAddr, disputeId),
      );
      return;
    }
    const pool = this.wrong ? ruled : ruled.filter((t) => t.status === Status.Arbitration);
    const t = (pool.length > 0 ? pool : ruled)[this.pick % (pool.length > 0 ? pool : ruled).length];
    if (this.wrong && this.pick % 2 === 0) {
      await attempt(
        m,
        r,
        `stranger rules ${this.ruling} on ${describeTask(t)}`,
        () => r.escrow.connect(r.stranger).rule(t.disputeId, this.ruling, GAS),
        fail("TaskEscrowNotArbitrator", r.stranger.address, t.disputeId),
      );
      return;
    }
    let v: Verdict;
    if (t.status !== Status.Arbitration) v = wrongStatus(t);
    else if (this.ruling > RULING_OPTIONS) v = fail("TaskEscrowBadRuling", this.ruling);
    else {
      const share = this.ruling === 0n ? BPS / 2n : (this.ruling - 1n) * (BPS / 4n);
      v = { apply: (events: Events) => resolve(m, r, t, share, events) };
    }
    await attempt(
      m,
      r,
      `ruling ${this.ruling} on ${describeTask(t)}`,
      () => r.arbitrator.giveRuling(t.disputeId, this.ruling, GAS),
      v,
    );
  }
  toString = () => `rule(${this.pick}${this.wrong ? ", wrong" : ""}, ${this.ruling})`;
}

class Timeout extends Command {
  constructor(
    readonly pick: number,
    readonly wrong: boolean,
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const { t, ts } = target(m, this.pick, this.wrong, (x, s) => !isTerminal(x.status) && s > x.deadline);
    await attempt(
      m,
      r,
      `timeout ${describeTask(t)}`,
      () => r.escrow.connect(r.stranger).timeout(t.id, GAS),
      timeoutVerdict(m, r, t, ts),
    );
  }
  toString = () => `timeout(${this.pick}${this.wrong ? ", wrong" : ""})`;
}

class Wait extends Command {
  constructor(readonly seconds: bigint) {
    super();
  }
  check = () => true;
  async exec(m: Model) {
    m.now += this.seconds;
    m.log.push(`wait ${this.seconds}s`);
  }
  toString = () => `wait(${this.seconds}s)`;
}

/** Jumps so that the next transaction is mined exactly at a live task's deadline (offset 0) or one second after. */
class WaitUntilDeadline extends Command {
  constructor(
    readonly pick: number,
    readonly offset: bigint,
  ) {
    super();
  }
  check = (m: Readonly<Model>) => m.tasks.some((t) => !isTerminal(t.status));
  async exec(m: Model) {
    const live = m.tasks.filter((t) => !isTerminal(t.status));
    const t = live[this.pick % live.length];
    const next = t.deadline + this.offset;
    if (next - 1n > m.now) m.now = next - 1n;
    m.log.push(`wait until deadline${this.offset === 0n ? "" : " + 1"} of ${describeTask(t)}: next tx @${m.now + 1n}`);
  }
  toString = () => `waitUntilDeadline(${this.pick}, +${this.offset})`;
}

/** New fees for tasks posted from now on (the caps are 1,000 bps; above them the call fails). */
class SetFees extends Command {
  constructor(
    readonly protocolFeeBps: bigint,
    readonly arbitrationFeeBps: bigint,
  ) {
    super();
  }
  check = () => true;
  async exec(m: Model, r: Real) {
    const ok = this.protocolFeeBps <= 1_000n && this.arbitrationFeeBps <= 1_000n;
    await attempt(
      m,
      r,
      this.toString(),
      () => r.escrow.connect(r.admin).setFees(this.protocolFeeBps, this.arbitrationFeeBps, GAS),
      ok
        ? {
            apply: () => {
              m.protocolFeeBps = this.protocolFeeBps;
              m.arbitrationFeeBps = this.arbitrationFeeBps;
            },
          }
        : fail("TaskEscrowBadParameter"),
    );
  }
  toString = () => `setFees(${this.protocolFeeBps}, ${this.arbitrationFeeBps})`;
}

// ---------------------------------------------------------------------------------------------- arbitraries

const pickArb = fc.nat({ max: 999 });
const wrongArb = fc.oneof({ arbitrary: fc.constant(false), weight: 4 }, { arbitrary: fc.constant(true), weight: 1 });
const providerArb = fc.constantFrom(...PROVIDERS);
/** Periods from the minimum (1 hour) up to three days. */
const periodArb = fc.bigInt({ min: HOUR, max: 3n * DAY });
const step = <C extends fc.AsyncCommand<Model, Real>>(make: (pick: number, wrong: boolean) => C) =>
  fc.tuple(pickArb, wrongArb).map(([pick, wrong]) => make(pick, wrong));

const commandArb: fc.Arbitrary<fc.AsyncCommand<Model, Real>> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record({
        mode: fc.constantFrom(Mode.Direct, Mode.Bidding, Mode.AutoMatch),
        token: fc.constantFrom(0, 1),
        maxBudget: fc.oneof(
          fc.bigInt({ min: MIN_BUDGET, max: 5n * MIN_BUDGET }),
          fc.bigInt({ min: MIN_BUDGET, max: 5_000n * MIN_BUDGET }),
        ),
        budgetPct: fc.oneof(fc.constant(100n), fc.bigInt({ min: 1n, max: 100n })),
        provider: providerArb,
        acceptWindow: fc.bigInt({ min: 0n, max: 4n * DAY }),
        delivery: periodArb,
        review: periodArb,
      })
      .map(
        (p) => new Post(p.mode, p.token, p.maxBudget, p.budgetPct, p.provider, p.acceptWindow, p.delivery, p.review),
      ),
  },
  { weight: 3, arbitrary: step((p, w) => new Accept(p, w)) },
  { weight: 1, arbitrary: step((p, w) => new Decline(p, w)) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        pickArb,
        wrongArb,
        providerArb,
        fc.oneof(
          { weight: 4, arbitrary: fc.bigInt({ min: 1n, max: 100n }).map((pct) => ({ pct })) },
          { weight: 1, arbitrary: fc.bigInt({ min: 1n, max: 400n }).map((units) => ({ units })) },
        ),
        periodArb,
      )
      .map(([p, w, provider, price, eta]) => new Bid(p, w, provider, price, eta)),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(pickArb, wrongArb, fc.nat({ max: 99 })).map(([p, w, b]) => new Select(p, w, b)),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        pickArb,
        wrongArb,
        fc.oneof({ weight: 5, arbitrary: fc.constant(2n) }, { weight: 1, arbitrary: fc.constant(3n) }),
      )
      .map(([p, w, c]) => new Claim(p, w, c)),
  },
  { weight: 4, arbitrary: step((p, w) => new Submit(p, w)) },
  { weight: 2, arbitrary: step((p, w) => new Approve(p, w)) },
  { weight: 3, arbitrary: step((p, w) => new Reject(p, w)) },
  { weight: 2, arbitrary: step((p, w) => new AgreeRefund(p, w)) },
  { weight: 2, arbitrary: step((p, w) => new Close(p, w)) },
  { weight: 3, arbitrary: step((p, w) => new RaiseDispute(p, w)) },
  { weight: 3, arbitrary: step((p, w) => new PayDeposit(p, w)) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        pickArb,
        wrongArb,
        fc.oneof({ weight: 8, arbitrary: fc.bigInt({ min: 0n, max: 5n }) }, { weight: 1, arbitrary: fc.constant(6n) }),
      )
      .map(([p, w, ruling]) => new Rule(p, w, ruling)),
  },
  { weight: 3, arbitrary: step((p, w) => new Timeout(p, w)) },
  { weight: 3, arbitrary: fc.bigInt({ min: HOUR, max: 3n * DAY }).map((s) => new Wait(s)) },
  {
    weight: 2,
    arbitrary: fc.tuple(pickArb, fc.constantFrom(0n, 1n)).map(([p, o]) => new WaitUntilDeadline(p, o)),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.oneof(
          { weight: 6, arbitrary: fc.bigInt({ min: 0n, max: 1_000n }) },
          { weight: 1, arbitrary: fc.constant(1_001n) },
        ),
        fc.bigInt({ min: 0n, max: 1_000n }),
      )
      .map(([p, a]) => new SetFees(p, a)),
  },
);

// ---------------------------------------------------------------------------------------------- the property

describe("TaskEscrow properties", function () {
  let failedRunLog: string[] = [];

  it("holds exactly what live tasks, deposits, credits and fees account for; settles each task once, along the documented edges, to the unit", async function () {
    await fc
      .assert(
        fc.asyncProperty(fc.commands([commandArb], { maxCommands, size: "max" }), async (commands) => {
          const f = await loadFixture(escrowModelFixture);
          const agents = new Map<bigint, HardhatEthersSigner>([
            [f.aliceId, f.alice],
            [f.bobId, f.bob],
            [f.carolId, f.carol],
            [f.daveId, f.dave],
          ]);
          const wallets = new Map<bigint, string>();
          for (const id of agents.keys()) wallets.set(id, await f.registry.getAgentWallet(id));
          const escrowAddr = await f.escrow.getAddress();
          const arbAddr = await f.arbitrator.getAddress();
          const tracked = [
            ...new Set([
              escrowAddr,
              arbAddr,
              f.treasury.address,
              f.stranger.address,
              ...[...agents.values()].map((s) => s.address),
              ...wallets.values(),
            ]),
          ];
          const tokens = [f.usdt, f.usdg];
          const real: Real = {
            escrow: f.escrow,
            arbitrator: f.arbitrator,
            tokens,
            tokenAddr: await Promise.all(tokens.map((t) => t.getAddress())),
            escrowAddr,
            arbAddr,
            treasury: f.treasury.address,
            admin: f.admin,
            stranger: f.stranger,
            agents,
            wallets,
            serviceId: f.serviceId,
            tracked,
          };
          const [, , , , protocolFeeBps, arbitrationFeeBps] = await f.escrow.config();
          const model: Model = {
            now: BigInt(await time.latest()),
            tasks: [],
            balances: await Promise.all(
              tokens.map(
                async (t) => new Map(await Promise.all(tracked.map(async (a) => [a, await t.balanceOf(a)] as const))),
              ),
            ),
            fees: [0n, 0n],
            protocolFeeBps,
            arbitrationFeeBps,
            nextDisputeId: await f.arbitrator.nextId(),
            log: [],
          };
          try {
            await checkAll(model, real);
            await fc.asyncModelRun(() => ({ model, real }), commands);

            // Drain: jump 200 days at a time and time out every live task, until none is left.
            for (let round = 0; round < 3 && model.tasks.some((t) => !isTerminal(t.status)); round++) {
              model.now += 200n * DAY;
              model.log.push("wait 200 days");
              for (const t of model.tasks.filter((x) => !isTerminal(x.status))) {
                await attempt(
                  model,
                  real,
                  `final timeout ${describeTask(t)}`,
                  () => real.escrow.connect(real.stranger).timeout(t.id, GAS),
                  timeoutVerdict(model, real, t, model.now + 1n),
                );
                await checkAll(model, real);
              }
            }
            for (const t of model.tasks)
              expect(isTerminal(t.status), `task #${t.id} terminal at the end`).to.equal(true);

            // No funds stuck: only fees and credits remain; after the sweep, only credits.
            for (let k = 0; k < tokens.length; k++) {
              const token = real.tokenAddr[k];
              const credits = (await Promise.all(tracked.map((a) => f.escrow.creditOf(token, a)))).reduce(
                (a, b) => a + b,
                0n,
              );
              const fees = await f.escrow.accruedFees(token);
              expect(await tokens[k].balanceOf(escrowAddr), `${TOKEN_NAMES[k]} left after the drain`).to.equal(
                fees + credits,
              );
              await attempt(
                model,
                real,
                `sweepFees(${TOKEN_NAMES[k]})`,
                () => f.escrow.connect(f.stranger).sweepFees(token, GAS),
                fees === 0n
                  ? fail("TaskEscrowNothingToWithdraw", token, real.treasury)
                  : {
                      apply: (events) => {
                        expect(events.find((e) => e.name === "FeesSwept")?.args.toArray()).to.deep.equal([
                          token,
                          real.treasury,
                          fees,
                        ]);
                        move(model, k, escrowAddr, real.treasury, model.fees[k]);
                        model.fees[k] = 0n;
                      },
                    },
              );
              expect(await tokens[k].balanceOf(escrowAddr), `${TOKEN_NAMES[k]} left after the sweep`).to.equal(credits);
            }
            await checkAll(model, real);
          } catch (error) {
            failedRunLog = model.log;
            throw error;
          }
        }),
        { seed, numRuns },
      )
      .catch((error) => {
        // The last failing run is the shrunk counterexample: print its transactions and expectations.
        console.log(`\nTaskEscrow model: last failing run, step by step:\n  ${failedRunLog.join("\n  ")}\n`);
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
