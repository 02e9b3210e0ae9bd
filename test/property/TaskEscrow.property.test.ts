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
 * Fixed seed by default; FC_SEED, FC_RUNS and FC_COMMANDS (longest sequence) explore further, and
 * FC_STATS=1 prints how often each call succeeded or failed which way and which edges were taken,
 * e.g. `FC_SEED=7 FC_RUNS=300 FC_STATS=1 npx hardhat test <file>`.
 */
const seed = Number(process.env.FC_SEED ?? 42);
const numRuns = Number(process.env.FC_RUNS ?? 25);
const maxCommands = Number(process.env.FC_COMMANDS ?? 60);

/** How often each call ended which way (printed with FC_STATS=1). */
const stats = new Map<string, number>();

/** Explicit gas so that no estimate runs: every call, reverting or not, is mined at the time set for it. */
const GAS = { gasLimit: 3_000_000 };
const BPS = 10_000n;
const MAX_TASKS = 4;
const ARBITRATION_TIMEOUT = 180n * DAY;
const RULING_OPTIONS = 5n;
const CLIENT = 1n; // alice
const PROVIDERS = [2n, 3n, 4n]; // bob, carol, dave
/** Proposal hashes bids carry (a bid may replace its proposal at the same price and eta). */
const PROPOSALS = ["proposal A", "proposal B", "proposal C"].map((p) => ethers.id(p));
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
  bids: Map<bigint, { price: bigint; eta: bigint; proposal: string }>;
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
  minBudget: bigint[]; // per token
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
  const outcome = `${/^[A-Za-z ]*?(?=[ (]|$)/.exec(what)![0]} -> ${"error" in v ? v.error : "ok"}`;
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
  const biddable = m.tasks.filter((t) => t.mode === Mode.Bidding && t.status === Status.Open);
  const [onChain, disputes, count, bids] = await Promise.all([
    Promise.all(m.tasks.map((t) => r.escrow.getTask(t.id))),
    Promise.all(m.tasks.map((t) => r.escrow.getDispute(t.id))),
    r.escrow.taskCount(),
    Promise.all(biddable.map((t) => Promise.all(PROVIDERS.map((p) => r.escrow.getBid(t.id, p))))),
  ]);
  expect(count, "taskCount").to.equal(BigInt(m.tasks.length));
  // The live bids of open bidding tasks.
  biddable.forEach((t, i) =>
    PROVIDERS.forEach((p, j) => {
      const b = t.bids.get(p);
      expect([...bids[i][j]], `bid of #${p} on task #${t.id}`).to.deep.equal(
        b ? [b.price, b.eta, ethers.dataSlice(b.proposal, 0, 16)] : [0n, 0n, ethers.dataSlice(ethers.ZeroHash, 0, 16)],
      );
    }),
  );
  m.tasks.forEach((t, i) => {
    const c = onChain[i];
    const label = `task #${t.id}`;
    const status = Number(c.status);
    // 3. Only documented edges; terminal states never change.
    if (status !== t.seen) {
      const edge = `${STATUS_NAMES[t.seen]} -> ${STATUS_NAMES[status]}`;
      expect((EDGES[t.seen] ?? []).includes(status), `${label} moved ${edge}`).to.equal(true);
      stats.set(`edge ${edge}`, (stats.get(`edge ${edge}`) ?? 0) + 1);
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

// ---------------------------------------------------------------------------------------------- actions

/** Random details an action may use; `wrong` also lets them go wrong on purpose. */
interface Details {
  provider: bigint; // bidder
  price: { pct: bigint } | { dust: bigint } | { over: bigint }; // bid: a share of the locked amount; when wrong, dust or too much
  eta: bigint;
  proposal: string; // bid: its proposal hash; select, when wrong: the hash the client passes
  bidPick: number;
  claimant: bigint;
  ruling: bigint; // 0..5, or 6 (out of range) when wrong
  stranger: boolean; // when wrong: a stranger calls rule()
}

/** One escrow call on one task: when the model expects it to succeed, and how to attempt it. */
interface Action {
  name: string;
  forward?: (t: TaskModel) => number; // how strongly advancing prefers it: it moves `t` on without ending it
  statusOk(t: TaskModel): boolean; // the model expects the call to pass its status (and mode, bid) checks
  timeOk(t: TaskModel, ts: bigint): boolean; // ... and its deadline check, at `ts`
  act(m: Model, r: Real, t: TaskModel, ts: bigint, d: Details, wrong: boolean): Promise<void>;
}

/** The checks that open-task calls make first, in the contract's order: status, mode, deadline. */
function openVerdict(t: TaskModel, mode: number, ts: bigint, checkDeadline = true): Verdict | null {
  if (t.status !== Status.Open) return wrongStatus(t);
  if (t.mode !== mode) return fail("TaskEscrowBadTask");
  if (checkDeadline && ts > t.deadline) return deadlinePassed(t);
  return null;
}

const openValid = (mode: number) => ({
  statusOk: (t: TaskModel) => t.status === Status.Open && t.mode === mode,
  timeOk: (t: TaskModel, ts: bigint) => ts <= t.deadline,
});
const valid = (a: Action, t: TaskModel, ts: bigint) => a.statusOk(t) && a.timeOk(t, ts);

/**
 * A call on an assigned task that checks its status first, then the actor, then (if it applies)
 * the deadline of the current state.
 */
function stepAction(
  name: string,
  statuses: number[],
  withinDeadline: boolean,
  actor: (t: TaskModel) => bigint,
  send: (r: Real, t: TaskModel, s: HardhatEthersSigner) => Promise<ContractTransactionResponse>,
  effect: (m: Model, r: Real, t: TaskModel, ts: bigint, events: Events) => void,
  forward?: (t: TaskModel) => number,
): Action {
  return {
    name,
    forward,
    statusOk: (t) => statuses.includes(t.status),
    timeOk: (t, ts) => !withinDeadline || ts <= t.deadline,
    async act(m, r, t, ts) {
      let v: Verdict | null = null;
      if (!statuses.includes(t.status)) v = wrongStatus(t);
      else if (withinDeadline && ts > t.deadline) v = deadlinePassed(t);
      v ??= { apply: (events: Events) => effect(m, r, t, ts, events) };
      const signer = signerOf(r, actor(t));
      await attempt(m, r, `${name} ${describeTask(t)}`, () => send(r, t, signer), v);
    },
  };
}

const accept: Action = {
  name: "accept",
  forward: () => 5,
  ...openValid(Mode.Direct),
  async act(m, r, t, ts) {
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
  },
};

const decline: Action = {
  name: "decline",
  statusOk: (t) => t.status === Status.Open && t.mode === Mode.Direct,
  timeOk: () => true,
  async act(m, r, t) {
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
  },
};

const bid: Action = {
  name: "bid",
  forward: () => 5,
  ...openValid(Mode.Bidding),
  async act(m, r, t, ts, d, wrong) {
    // A share of the locked amount, at least the token's minimum budget; when told to go wrong, a
    // share below that minimum, dust, or more than the locked amount.
    const min = r.minBudget[t.token];
    let price: bigint;
    if ("pct" in d.price) {
      price = (t.amount * d.price.pct) / 100n;
      if (!wrong && price < min) price = min;
    } else if (!wrong) price = t.amount;
    else price = "dust" in d.price ? d.price.dust : t.amount + d.price.over;
    let v = openVerdict(t, Mode.Bidding, ts);
    // Bids lie between the token's minimum budget and the locked amount.
    if (v === null && (price === 0n || price > t.amount || price < min)) v = fail("TaskEscrowBadAmount", price);
    v ??= { apply: () => void t.bids.set(d.provider, { price, eta: d.eta, proposal: d.proposal }) };
    await attempt(
      m,
      r,
      `bid by #${d.provider} at ${price}, eta ${d.eta}s, on ${describeTask(t)}`,
      () => r.escrow.connect(signerOf(r, d.provider)).placeBid(t.id, d.provider, price, d.eta, d.proposal, GAS),
      v,
    );
  },
};

const select: Action = {
  name: "select",
  forward: () => 5,
  statusOk: (t) => openValid(Mode.Bidding).statusOk(t) && t.bids.size > 0,
  timeOk: openValid(Mode.Bidding).timeOk,
  async act(m, r, t, ts, d, wrong) {
    // A live bid at its terms; when told to go wrong, a provider without one (if any) and a
    // random proposal hash, which may not be the bid's (a proposal swapped since it was read).
    const bidders = PROVIDERS.filter((p) => t.bids.has(p) !== wrong);
    const provider = (bidders.length > 0 ? bidders : PROVIDERS)[d.bidPick % (bidders.length || PROVIDERS.length)];
    const b = t.bids.get(provider);
    const proposal = wrong ? d.proposal : (b?.proposal ?? ethers.ZeroHash);
    let v = openVerdict(t, Mode.Bidding, ts);
    if (v === null && b === undefined) v = fail("TaskEscrowNoBid", t.id, provider);
    if (v === null && proposal !== b!.proposal) v = fail("TaskEscrowTermsChanged", t.id);
    v ??= {
      apply: () => {
        t.bids.delete(provider);
        assign(m, r, t, provider, b!.price, b!.eta, ts);
      },
    };
    await attempt(
      m,
      r,
      `select #${provider}${b ? ` at ${b.price}` : ""} on ${describeTask(t)}`,
      () =>
        r.escrow.connect(signerOf(r, CLIENT)).selectBid(t.id, provider, b?.price ?? 1n, b?.eta ?? DAY, proposal, GAS),
      v,
    );
  },
};

const claim: Action = {
  name: "claim",
  forward: () => 5,
  ...openValid(Mode.AutoMatch),
  async act(m, r, t, ts, d, wrong) {
    const claimant = wrong ? d.claimant : PROVIDERS[0];
    let v = openVerdict(t, Mode.AutoMatch, ts);
    // Only bob lists the capability: anyone else naming bob's service is refused.
    if (v === null && claimant !== PROVIDERS[0]) v = fail("TaskEscrowServiceMismatch", r.serviceId);
    v ??= { apply: () => assign(m, r, t, claimant, t.offer, t.deliveryDuration, ts) };
    await attempt(
      m,
      r,
      `claim by #${claimant} of ${describeTask(t)}`,
      () => r.escrow.connect(signerOf(r, claimant)).claimTask(t.id, claimant, r.serviceId, GAS),
      v,
    );
  },
};

const submit = stepAction(
  "submit",
  [Status.Accepted, Status.CancelRequested],
  true,
  (t) => t.providerId,
  (r, t, s) => r.escrow.connect(s).submitWork(t.id, ethers.id("deliverable"), "ipfs://deliverable", GAS),
  (_m, _r, t, ts) => {
    t.status = Status.Submitted;
    t.deadline = ts + t.reviewPeriod;
  },
  () => 5,
);

const approve = stepAction(
  "approve",
  [Status.Submitted],
  false,
  () => CLIENT,
  (r, t, s) => r.escrow.connect(s).approve(t.id, GAS),
  (m, r, t, _ts, events) => settle(m, r, t, Status.Completed, BPS, events),
);

const reject = stepAction(
  "reject",
  [Status.Submitted],
  true,
  () => CLIENT,
  (r, t, s) => r.escrow.connect(s).reject(t.id, ethers.id("not as specified"), GAS),
  (_m, _r, t, ts) => {
    t.status = Status.Rejected;
    t.deadline = ts + t.reviewPeriod;
  },
  () => 5,
);

const agreeRefund = stepAction(
  "agreeRefund",
  [Status.Rejected, Status.CancelRequested],
  false,
  (t) => t.providerId,
  (r, t, s) => r.escrow.connect(s).agreeRefund(t.id, GAS),
  (m, r, t, _ts, events) => settle(m, r, t, Status.Refunded, 0n, events),
);

/** closeTask: an open task closes with a full refund; an accepted one asks its provider to cancel. */
const close = stepAction(
  "close",
  [Status.Open, Status.Accepted],
  false,
  () => CLIENT,
  (r, t, s) => r.escrow.connect(s).closeTask(t.id, GAS),
  (m, r, t, ts, events) => {
    if (t.status === Status.Open) return closeOpen(m, r, t, Status.Closed, events);
    // The provider answers within one response window, and never gets more time than it had.
    const remaining = t.deadline > ts ? t.deadline - ts : 0n;
    const window = remaining < t.reviewPeriod ? remaining : t.reviewPeriod;
    if (window !== 0n) t.deadline = ts + window;
    t.status = Status.CancelRequested;
  },
  (t) => (t.status === Status.Accepted ? 2 : 1),
);

const raiseDispute = stepAction(
  "raiseDispute",
  [Status.Rejected, Status.CancelRequested],
  true,
  (t) => t.providerId,
  (r, t, s) => r.escrow.connect(s).raiseDispute(t.id, GAS),
  (m, r, t, ts) => {
    // The deposit comes from the caller (the provider's owner), not from its payout wallet.
    t.deposit = (t.amount * t.arbFeeBps) / BPS;
    move(m, t.token, r.agents.get(t.providerId)!.address, r.escrowAddr, t.deposit);
    t.status = Status.Disputed;
    t.deadline = ts + t.reviewPeriod;
  },
  () => 5,
);

const payDeposit = stepAction(
  "payDisputeDeposit",
  [Status.Disputed],
  true,
  () => CLIENT,
  (r, t, s) => r.escrow.connect(s).payDisputeDeposit(t.id, GAS),
  (m, r, t, ts, events) => {
    // The client's deposit comes in and goes on to the arbitrator as its fee.
    move(m, t.token, r.agents.get(CLIENT)!.address, r.arbAddr, t.deposit);
    t.disputeId = m.nextDisputeId++;
    const dispute = events.find((e) => e.name === "Dispute");
    expect(dispute?.args.toArray(), "Dispute event").to.deep.equal([r.arbAddr, t.disputeId, t.id, t.id]);
    t.status = Status.Arbitration;
    t.deadline = ts + ARBITRATION_TIMEOUT;
  },
  () => 5,
);

/**
 * The arbitrator rules r in 0..5 (6 is out of range) through `giveRuling`. A task that never went to
 * the arbitrator: the arbitrator rules on a dispute id nobody created. When told to go wrong, a
 * stranger may call `rule` itself.
 */
const rule: Action = {
  name: "rule",
  forward: () => 5,
  statusOk: (t) => t.status === Status.Arbitration,
  timeOk: () => true,
  async act(m, r, t, _ts, d, wrong) {
    const ruling = wrong ? d.ruling : d.ruling % (RULING_OPTIONS + 1n);
    if (t.disputeId === 0n) {
      const unknown = m.nextDisputeId + 100n;
      await attempt(
        m,
        r,
        `rule ${ruling} on never-created dispute ${unknown} (${describeTask(t)})`,
        () => r.arbitrator.ruleOn(r.escrowAddr, unknown, ruling, GAS),
        fail("TaskEscrowNotArbitrator", r.arbAddr, unknown),
      );
      return;
    }
    if (wrong && d.stranger) {
      await attempt(
        m,
        r,
        `rule ${ruling} by a stranger on ${describeTask(t)}`,
        () => r.escrow.connect(r.stranger).rule(t.disputeId, ruling, GAS),
        fail("TaskEscrowNotArbitrator", r.stranger.address, t.disputeId),
      );
      return;
    }
    let v: Verdict;
    if (t.status !== Status.Arbitration) v = wrongStatus(t);
    else if (ruling > RULING_OPTIONS) v = fail("TaskEscrowBadRuling", ruling);
    else {
      // r in 1..5 pays the provider (r - 1) x 25%; 0 (refused) pays 50%.
      const share = ruling === 0n ? BPS / 2n : (ruling - 1n) * (BPS / 4n);
      v = { apply: (events: Events) => resolve(m, r, t, share, events) };
    }
    await attempt(
      m,
      r,
      `rule ${ruling} on ${describeTask(t)}`,
      () => r.arbitrator.giveRuling(t.disputeId, ruling, GAS),
      v,
    );
  },
};

const timeout: Action = {
  name: "timeout",
  statusOk: (t) => !isTerminal(t.status),
  timeOk: (t, ts) => ts > t.deadline,
  async act(m, r, t, ts) {
    await attempt(
      m,
      r,
      `timeout ${describeTask(t)}`,
      () => r.escrow.connect(r.stranger).timeout(t.id, GAS),
      timeoutVerdict(m, r, t, ts),
    );
  },
};

const ACTIONS: Action[] = [
  accept,
  decline,
  bid,
  select,
  claim,
  submit,
  approve,
  reject,
  agreeRefund,
  close,
  raiseDispute,
  payDeposit,
  rule,
  timeout,
];

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
 * How a direct call picks its task: one where the model expects success; one in the right state
 * whose deadline is wrong (passed, or for `timeout` not yet passed); one in a wrong state; or one
 * where it expects success, but with details that must fail (a ruling out of range, a stranger
 * ruling, a provider without the service claiming, selecting a provider without a bid).
 */
type Aim = "ok" | "late" | "state" | "details";

/**
 * `action` on the task the aim picks (any task when none fits the aim), optionally first jumping
 * time so that the call is mined exactly at that task's deadline (+0) or one second after (+1).
 */
class TaskCommand extends Command {
  constructor(
    readonly action: Action,
    readonly pick: number,
    readonly aim: Aim,
    readonly atDeadline: bigint | null,
    readonly details: Details,
  ) {
    super();
  }
  async exec(m: Model, r: Real) {
    const a = this.action;
    const fits = (t: TaskModel, ts: bigint) =>
      this.aim === "late" ? a.statusOk(t) && !a.timeOk(t, ts) : this.aim === "state" ? !a.statusOk(t) : valid(a, t, ts);
    // The deadline jump first (it decides what fits), on the picked task if it is live.
    // Aiming late with no late task: make one (a second past a deadline; for timeout, exactly at it).
    let jump = this.atDeadline;
    if (jump === null && this.aim === "late" && !m.tasks.some((t) => fits(t, m.now + 1n))) {
      jump = a === timeout ? 0n : 1n;
    }
    if (jump !== null) {
      const live = m.tasks.filter((t) => !isTerminal(t.status) && (this.aim === "state" || a.statusOk(t)));
      if (live.length > 0) {
        const t = live[this.pick % live.length];
        const next = t.deadline + jump;
        if (next - 1n > m.now) m.now = next - 1n;
        m.log.push(`jump to deadline + ${jump}s of ${describeTask(t)}: next tx @${m.now + 1n}`);
      }
    }
    const ts = m.now + 1n;
    const preferred = m.tasks.filter((t) => fits(t, ts));
    const pool = preferred.length > 0 ? preferred : m.tasks;
    await a.act(m, r, pool[this.pick % pool.length], ts, this.details, this.aim === "details");
  }
  toString = () =>
    `${this.action.name}(${this.pick}, ${this.aim}${this.atDeadline === null ? "" : `, at deadline + ${this.atDeadline}s`})`;
}

/** Actions with details that can go wrong in a state where the action itself is allowed. */
const WITH_DETAILS: Action[] = [bid, select, claim, rule];

/**
 * Moves a live task along one of the edges the model allows it right now (what drives tasks deep).
 * With `mistake`, an action with details first tries them wrong (bid dust or above the locked
 * amount, select a provider without a bid, claim without the service, rule 6 or as a stranger).
 */
class Advance extends Command {
  constructor(
    readonly pick: number,
    readonly choice: number,
    readonly details: Details,
    readonly mistake: boolean,
  ) {
    super();
  }
  check = (m: Readonly<Model>) => m.tasks.some((t) => !isTerminal(t.status));
  async exec(m: Model, r: Real) {
    const ts = m.now + 1n;
    const live = m.tasks.filter((t) => !isTerminal(t.status));
    const t = live[this.pick % live.length];
    // Edges that move the task on count several times: runs reach disputes and rulings more often.
    const options = ACTIONS.filter((a) => valid(a, t, ts)).flatMap((a) => Array<Action>(a.forward?.(t) ?? 1).fill(a));
    // Every live state has one (close, agreeRefund, approve, payDisputeDeposit or timeout, rule): a guard only.
    if (options.length === 0) return void m.log.push(`advance: nothing to do for ${describeTask(t)}`);
    const a = options[this.choice % options.length];
    if (this.mistake && WITH_DETAILS.includes(a)) {
      const d = this.details;
      const wrong: Details = {
        ...d,
        price: "pct" in d.price ? { over: d.price.pct } : d.price,
        claimant: PROVIDERS[1],
        ruling: d.stranger ? d.ruling : RULING_OPTIONS + 1n,
      };
      await a.act(m, r, t, ts, wrong, true);
      await checkAll(m, r);
    }
    await a.act(m, r, t, m.now + 1n, this.details, false);
  }
  toString = () => `advance(${this.pick}, ${this.choice}${this.mistake ? ", mistake first" : ""})`;
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
        move(m, this.token, r.agents.get(CLIENT)!.address, r.escrowAddr, this.maxBudget);
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
    m.log.push(`wait until deadline${this.offset === 0n ? "" : " + 1s"} of ${describeTask(t)}: next tx @${m.now + 1n}`);
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

const pickArb = fc.noBias(fc.nat({ max: 999 }));
const providerArb = fc.constantFrom(...PROVIDERS);
/** Periods from the minimum (1 hour) up to three days. */
const periodArb = fc.bigInt({ min: HOUR, max: 3n * DAY });

const detailsArb: fc.Arbitrary<Details> = fc.record({
  provider: providerArb,
  price: fc.oneof(
    { weight: 4, arbitrary: fc.bigInt({ min: 1n, max: 100n }).map((pct) => ({ pct })) },
    { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: MIN_BUDGET - 1n }).map((dust) => ({ dust })) },
    { weight: 1, arbitrary: fc.bigInt({ min: 1n, max: MIN_BUDGET }).map((over) => ({ over })) },
  ),
  eta: periodArb,
  proposal: fc.constantFrom(...PROPOSALS),
  bidPick: fc.noBias(fc.nat({ max: 99 })),
  claimant: fc.constantFrom(PROVIDERS[0], PROVIDERS[1]),
  ruling: fc.oneof(
    { weight: 6, arbitrary: fc.bigInt({ min: 0n, max: 5n }) },
    { weight: 1, arbitrary: fc.constant(6n) },
  ),
  stranger: fc.boolean(),
});

const postArb = fc
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
  .map((p) => new Post(p.mode, p.token, p.maxBudget, p.budgetPct, p.provider, p.acceptWindow, p.delivery, p.review));

const commandArb: fc.Arbitrary<fc.AsyncCommand<Model, Real>> = fc.oneof(
  { weight: 3, arbitrary: postArb },
  {
    weight: 24,
    arbitrary: fc
      .tuple(pickArb, fc.noBias(fc.nat({ max: 99 })), detailsArb, fc.noBias(fc.nat({ max: 4 })))
      .map(([p, c, d, mistake]) => new Advance(p, c, d, mistake === 0)),
  },
  {
    weight: 10,
    arbitrary: fc
      .tuple(
        fc.constantFrom(...ACTIONS),
        pickArb,
        fc.constantFrom<Aim>("ok", "late", "late", "state", "details"),
        fc.oneof({ weight: 2, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(0n, 1n) }),
        detailsArb,
      )
      .map(([a, p, aim, at, d]) => new TaskCommand(a, p, aim, at, d)),
  },
  { weight: 4, arbitrary: fc.bigInt({ min: HOUR, max: 3n * DAY }).map((s) => new Wait(s)) },
  {
    weight: 2,
    arbitrary: fc.tuple(pickArb, fc.constantFrom(0n, 1n)).map(([p, o]) => new WaitUntilDeadline(p, o)),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.oneof(
          { weight: 5, arbitrary: fc.bigInt({ min: 0n, max: 1_000n }) },
          { weight: 1, arbitrary: fc.constantFrom(0n, 1_000n) },
          { weight: 1, arbitrary: fc.constant(1_001n) },
        ),
        fc.oneof(
          { weight: 5, arbitrary: fc.bigInt({ min: 0n, max: 1_000n }) },
          { weight: 1, arbitrary: fc.constantFrom(0n, 1_000n) },
        ),
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
            minBudget: await Promise.all(tokens.map(async (t) => f.escrow.minBudget(await t.getAddress()))),
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
