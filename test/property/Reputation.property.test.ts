import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture, takeSnapshot } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { deployWithAgents } from "../fixtures/system";
import { Outcome } from "../fixtures/helpers";
import type { AgentRegistry, Reputation } from "../../typechain-types";

/**
 * Feedback rights and the score against a TypeScript model.
 * Fixed seed by default; FC_SEED and FC_RUNS explore further, e.g. `FC_RUNS=500 npx hardhat test <file>`.
 */
const seed = Number(process.env.FC_SEED ?? 42);
const numRuns = Number(process.env.FC_RUNS ?? 25);

const MAX_WEIGHT = 2n ** 96n - 1n;
const NEUTRAL_BPS = 5_000n;
const MAX_BPS = 10_000n;
/** Agents #1-#5 exist; #6 does not. */
const AGENTS = [1n, 2n, 3n, 4n, 5n];
const UNKNOWN_AGENT = 6n;
/** Owners at the start, as indexes into the raters (alice, bob, carol, dave, stranger): #5 is alice's second agent. */
const INITIAL_OWNERS = [0, 1, 2, 3, 0];
const RATER_NAMES = ["alice", "bob", "carol", "dave", "stranger"];

/** Agents #1 alice, #2 bob, #3 carol, #4 dave, #5 alice; the reporter holds REPORTER_ROLE. */
async function reputationFixture() {
  const s = await deployWithAgents();
  await s.registry.connect(s.dave).getFunction("register(string)")("ipfs://dave");
  await s.registry.connect(s.alice).getFunction("register(string)")("ipfs://alice-2");
  const raters: HardhatEthersSigner[] = [s.alice, s.bob, s.carol, s.dave, s.stranger];
  return { ...s, raters, token: await s.usdt.getAddress() };
}

const weightOf = (amount: bigint) => (amount < MAX_WEIGHT ? amount : MAX_WEIGHT);

// ---------------------------------------------------------------------------------------------- score model

interface Counters {
  completed: bigint;
  autoCompleted: bigint;
  refunded: bigint;
  won: bigint;
  lost: bigint;
  split: bigint;
}

interface Rating {
  agentId: bigint;
  rater: number;
  index: bigint;
  value: bigint;
  decimals: number;
  weight: bigint;
  revoked: boolean;
}

const emptyCounters = (): Counters => ({
  completed: 0n,
  autoCompleted: 0n,
  refunded: 0n,
  won: 0n,
  lost: 0n,
  split: 0n,
});

/** A rating read as a percentage, in whole basis points rounded down, clamped to 0-10,000. */
function ratingBps(value: bigint, decimals: number): bigint {
  if (value <= 0n) return 0n;
  const bps = (value * 100n) / 10n ** BigInt(decimals);
  return bps > MAX_BPS ? MAX_BPS : bps;
}

function goodAndBad(c: Counters) {
  const good = 2n * (c.completed + c.autoCompleted + c.won) + c.split;
  const bad = 2n * c.refunded + 4n * c.lost + c.split;
  return { good, bad };
}

/** The rating mean R in whole basis points (rounded down), neutral without weight. */
function ratingMean(ratings: Rating[]): bigint {
  const live = ratings.filter((r) => !r.revoked);
  const weight = live.reduce((sum, r) => sum + r.weight, 0n);
  if (weight === 0n) return NEUTRAL_BPS;
  return live.reduce((sum, r) => sum + r.weight * ratingBps(r.value, r.decimals), 0n) / weight;
}

/** IReputation's score, in integer basis points: R x (P + 2) / (P + N + 2), rounded down. */
function modelScore(c: Counters, ratings: Rating[]): bigint {
  const { good, bad } = goodAndBad(c);
  return (ratingMean(ratings) * (good + 2n)) / (good + bad + 2n);
}

/** The same formula in exact rationals (no rounding but the last): the NatSpec read literally. */
function exactScore(c: Counters, ratings: Rating[]): bigint {
  const { good, bad } = goodAndBad(c);
  const live = ratings.filter((r) => !r.revoked);
  const weight = live.reduce((sum, r) => sum + r.weight, 0n);
  if (weight === 0n) return (NEUTRAL_BPS * (good + 2n)) / (good + bad + 2n);
  const WAD = 10n ** 18n;
  // Each rating's bps scaled by 1e18 exactly: value / 10^decimals % = value * 100 * 10^(18 - decimals) / 1e18 bps.
  const scaled = (r: Rating) => {
    if (r.value <= 0n) return 0n;
    const bps = r.value * 100n * 10n ** BigInt(18 - r.decimals);
    return bps > MAX_BPS * WAD ? MAX_BPS * WAD : bps;
  };
  const numerator = live.reduce((sum, r) => sum + r.weight * scaled(r), 0n);
  return (numerator * (good + 2n)) / (weight * WAD * (good + bad + 2n));
}

/** Applies a task outcome to the records, as IReputation documents it (no change when self-dealing). */
function applyOutcome(client: Counters, provider: Counters, outcome: number) {
  if (outcome === Outcome.Completed) provider.completed += 1n;
  else if (outcome === Outcome.AutoCompleted) provider.autoCompleted += 1n;
  else if (outcome === Outcome.Refunded) provider.refunded += 1n;
  else if (outcome === Outcome.DisputeProviderWon) {
    provider.won += 1n;
    client.lost += 1n;
  } else if (outcome === Outcome.DisputeClientWon) {
    client.won += 1n;
    provider.lost += 1n;
  } else {
    client.split += 1n;
    provider.split += 1n;
  }
}

// ---------------------------------------------------------------------------------------------- arbitraries

const amountArb = fc.oneof(
  { arbitrary: fc.bigInt({ min: 1n, max: 10n ** 9n }), weight: 6 },
  { arbitrary: fc.constant(0n), weight: 1 },
  { arbitrary: fc.bigInt({ min: MAX_WEIGHT - 10n, max: MAX_WEIGHT + 10n ** 6n }), weight: 1 },
);

/** Valid ratings: percentages around 0-100 in 0-6 decimals, and anything up to |1e38| in 0-18. */
const ratingArb = fc.oneof(
  fc.record({ value: fc.bigInt({ min: -150n, max: 250n }), decimals: fc.constant(0) }),
  fc.record({ value: fc.bigInt({ min: -(10n ** 6n), max: 2n * 10n ** 8n }), decimals: fc.integer({ min: 0, max: 6 }) }),
  fc.record({ value: fc.bigInt({ min: -(10n ** 38n), max: 10n ** 38n }), decimals: fc.integer({ min: 0, max: 18 }) }),
);

/** Settlements (charges or sessions) behind one recordCalls. */
const settlementsArb = fc.bigInt({ min: 1n, max: 5n });

/** An ordered pair of different agents among #1-#5. */
const pairArb = fc
  .tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 4 }))
  .map(([a, offset]) => [AGENTS[a], AGENTS[(a + offset) % 5]] as const);

describe("Reputation properties", function () {
  describe("feedback rights", function () {
    interface RaterState {
      granted: number;
      used: number;
      count: bigint; // unused rights
      weight: bigint; // their total weight
    }

    interface Model {
      owners: number[]; // agent #i+1 -> rater index
      raters: Map<string, RaterState>; // "agentId:raterIndex"
      clients: Map<bigint, number[]>; // agentId -> raters in order of first feedback
      ratingCount: Map<bigint, number>;
      calls: Map<bigint, bigint>; // agentId -> callsServed
      settlements: Map<bigint, bigint>; // agentId -> settlementsServed
    }

    interface Real {
      registry: AgentRegistry;
      reputation: Reputation;
      reporter: HardhatEthersSigner;
      raters: HardhatEthersSigner[];
      token: string;
    }

    const key = (agentId: bigint, rater: number) => `${agentId}:${rater}`;
    function raterState(m: Model, agentId: bigint, rater: number): RaterState {
      const k = key(agentId, rater);
      if (!m.raters.has(k)) m.raters.set(k, { granted: 0, used: 0, count: 0n, weight: 0n });
      return m.raters.get(k)!;
    }
    const ownerOf = (m: Model, agentId: bigint) => (agentId <= 5n ? m.owners[Number(agentId) - 1] : undefined);

    /** `count` rights sharing `amount` (capped) as their total weight. */
    function grant(m: Model, agentId: bigint, rater: number, amount: bigint, count = 1n) {
      const st = raterState(m, agentId, rater);
      st.granted += Number(count);
      st.count += count;
      st.weight += weightOf(amount);
    }

    /** The pair's rights and last index read back as the model has them. */
    async function checkPair(m: Model, r: Real, agentId: bigint, rater: number) {
      const st = raterState(m, agentId, rater);
      const address = r.raters[rater].address;
      const label = `agent #${agentId}, rater ${RATER_NAMES[rater]}`;
      const [count, weight] = await r.reputation.feedbackRights(agentId, address);
      expect([count, weight], `feedbackRights(${label})`).to.deep.equal([st.count, st.weight]);
      expect(await r.reputation.getLastIndex(agentId, address), `getLastIndex(${label})`).to.equal(BigInt(st.used));
    }

    /** The reporter's expected revert for an interaction between `a` and `b`, or null when it records. */
    function pairError(m: Model, a: bigint, b: bigint): [string, bigint[]] | null {
      if (a === b) return ["ReputationSameAgent", [a]];
      if (ownerOf(m, a) === undefined) return ["ReputationUnknownAgent", [a]];
      if (ownerOf(m, b) === undefined) return ["ReputationUnknownAgent", [b]];
      return null;
    }

    class RecordTask implements fc.AsyncCommand<Model, Real> {
      constructor(
        readonly client: bigint,
        readonly provider: bigint,
        readonly outcome: number,
        readonly amount: bigint,
      ) {}
      check = () => true;
      async run(m: Model, r: Real) {
        const tx = r.reputation
          .connect(r.reporter)
          .recordTask(this.client, this.provider, this.outcome, r.token, this.amount);
        const error = pairError(m, this.client, this.provider);
        if (error !== null) {
          await expect(tx)
            .to.be.revertedWithCustomError(r.reputation, error[0])
            .withArgs(...error[1]);
          return;
        }
        const clientOwner = ownerOf(m, this.client)!;
        const providerOwner = ownerOf(m, this.provider)!;
        const selfDealing = clientOwner === providerOwner;
        await expect(tx)
          .to.emit(r.reputation, "TaskRecorded")
          .withArgs(this.client, this.provider, this.outcome, r.token, this.amount, selfDealing);
        if (!selfDealing) {
          grant(m, this.provider, clientOwner, this.amount);
          grant(m, this.client, providerOwner, this.amount);
        }
        await checkPair(m, r, this.provider, clientOwner);
        await checkPair(m, r, this.client, providerOwner);
      }
      toString = () => `recordTask(#${this.client} -> #${this.provider}, outcome ${this.outcome}, ${this.amount})`;
    }

    class RecordCalls implements fc.AsyncCommand<Model, Real> {
      constructor(
        readonly payer: bigint,
        readonly provider: bigint,
        readonly calls: bigint,
        readonly amount: bigint,
        readonly settlements: bigint,
      ) {}
      check = () => true;
      async run(m: Model, r: Real) {
        const tx = r.reputation
          .connect(r.reporter)
          .recordCalls(this.payer, this.provider, r.token, this.calls, this.amount, this.settlements);
        if (this.calls === 0n || this.amount === 0n) {
          await expect(tx).to.be.revertedWithCustomError(r.reputation, "ReputationZeroAmount");
          return;
        }
        const error = pairError(m, this.payer, this.provider);
        if (error !== null) {
          await expect(tx)
            .to.be.revertedWithCustomError(r.reputation, error[0])
            .withArgs(...error[1]);
          return;
        }
        const payerOwner = ownerOf(m, this.payer)!;
        const selfDealing = payerOwner === ownerOf(m, this.provider);
        await expect(tx)
          .to.emit(r.reputation, "CallsRecorded")
          .withArgs(this.payer, this.provider, r.token, this.calls, this.amount, this.settlements, selfDealing);
        if (!selfDealing) {
          grant(m, this.provider, payerOwner, this.amount, this.settlements);
          m.calls.set(this.provider, (m.calls.get(this.provider) ?? 0n) + this.calls);
          m.settlements.set(this.provider, (m.settlements.get(this.provider) ?? 0n) + this.settlements);
        }
        await checkPair(m, r, this.provider, payerOwner);
        const record = await r.reputation.getRecord(this.provider);
        expect(
          [record.callsServed, record.settlementsServed],
          `calls and settlements of #${this.provider}`,
        ).to.deep.equal([m.calls.get(this.provider) ?? 0n, m.settlements.get(this.provider) ?? 0n]);
      }
      toString = () =>
        `recordCalls(#${this.payer} -> #${this.provider}, ${this.calls} calls, ${this.amount}, ${this.settlements} settlements)`;
    }

    class GiveFeedback implements fc.AsyncCommand<Model, Real> {
      constructor(
        readonly rater: number,
        readonly agentId: bigint,
        readonly value: bigint,
      ) {}
      check = () => true;
      async run(m: Model, r: Real) {
        const signer = r.raters[this.rater];
        const tx = r.reputation
          .connect(signer)
          .giveFeedback(this.agentId, this.value, 0, "", "", "", "", ethers.ZeroHash);
        const st = raterState(m, this.agentId, this.rater);
        if (st.count === 0n) {
          await expect(tx)
            .to.be.revertedWithCustomError(r.reputation, "ReputationNoFeedbackRight")
            .withArgs(this.agentId, signer.address);
        } else {
          await expect(tx)
            .to.emit(r.reputation, "NewFeedback")
            .withArgs(
              this.agentId,
              signer.address,
              BigInt(st.used + 1),
              this.value,
              0,
              "",
              "",
              "",
              "",
              "",
              ethers.ZeroHash,
            );
          const weight = st.weight / st.count;
          st.count -= 1n;
          st.weight -= weight;
          st.used += 1;
          if (st.used === 1) m.clients.set(this.agentId, [...(m.clients.get(this.agentId) ?? []), this.rater]);
          m.ratingCount.set(this.agentId, (m.ratingCount.get(this.agentId) ?? 0) + 1);
        }
        await checkPair(m, r, this.agentId, this.rater);
      }
      toString = () => `giveFeedback(${RATER_NAMES[this.rater]} on #${this.agentId}, ${this.value})`;
    }

    /** The agent changes hands: rights already earned stay with whoever earned them. */
    class Transfer implements fc.AsyncCommand<Model, Real> {
      constructor(
        readonly agentId: bigint,
        readonly offset: number,
      ) {}
      check = () => true;
      async run(m: Model, r: Real) {
        const from = ownerOf(m, this.agentId)!;
        const to = (from + this.offset) % r.raters.length;
        const [fromSigner, toSigner] = [r.raters[from], r.raters[to]];
        await expect(r.registry.connect(fromSigner).transferFrom(fromSigner.address, toSigner.address, this.agentId))
          .to.emit(r.registry, "Transfer")
          .withArgs(fromSigner.address, toSigner.address, this.agentId);
        m.owners[Number(this.agentId) - 1] = to;
      }
      toString = () => `transfer(#${this.agentId}, +${this.offset})`;
    }

    const agentOrUnknownArb = fc.oneof(
      { arbitrary: fc.constantFrom(...AGENTS), weight: 9 },
      { arbitrary: fc.constant(UNKNOWN_AGENT), weight: 1 },
    );

    const commandsArb = fc.commands(
      [
        fc
          .tuple(
            fc.oneof(
              { arbitrary: pairArb, weight: 9 },
              { arbitrary: fc.tuple(agentOrUnknownArb, agentOrUnknownArb), weight: 1 },
            ),
            fc.integer({ min: 0, max: 5 }),
            amountArb,
          )
          .map(([[client, provider], outcome, amount]) => new RecordTask(client, provider, outcome, amount)),
        fc
          .tuple(
            fc.oneof(
              { arbitrary: pairArb, weight: 9 },
              { arbitrary: fc.tuple(agentOrUnknownArb, agentOrUnknownArb), weight: 1 },
            ),
            fc.oneof(
              { arbitrary: fc.bigInt({ min: 1n, max: 50n }), weight: 9 },
              { arbitrary: fc.constant(0n), weight: 1 },
            ),
            amountArb,
            settlementsArb,
          )
          .map(
            ([[payer, provider], calls, amount, settlements]) =>
              new RecordCalls(payer, provider, calls, amount, settlements),
          ),
        fc
          .tuple(fc.integer({ min: 0, max: 4 }), agentOrUnknownArb, fc.bigInt({ min: -100n, max: 200n }))
          .map(([rater, agentId, value]) => new GiveFeedback(rater, agentId, value)),
        fc
          .tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 4 }))
          .map(([agent, offset]) => new Transfer(AGENTS[agent], offset)),
      ],
      { maxCommands: 15 },
    );

    it("each right is used at most once, by the address that earned it", async function () {
      await fc.assert(
        fc.asyncProperty(commandsArb, async (commands) => {
          const s = await loadFixture(reputationFixture);
          const real: Real = {
            registry: s.registry,
            reputation: s.reputation,
            reporter: s.reporter,
            raters: s.raters,
            token: s.token,
          };
          const model: Model = {
            owners: [...INITIAL_OWNERS],
            raters: new Map(),
            clients: new Map(),
            ratingCount: new Map(),
            calls: new Map(),
            settlements: new Map(),
          };
          await fc.asyncModelRun(() => ({ model, real }), commands);

          for (const agentId of [...AGENTS, UNKNOWN_AGENT]) {
            for (let rater = 0; rater < real.raters.length; rater++) {
              const st = raterState(model, agentId, rater);
              const address = real.raters[rater].address;
              const label = `agent #${agentId}, rater ${RATER_NAMES[rater]}`;
              const lastIndex = await real.reputation.getLastIndex(agentId, address);
              expect(lastIndex, `getLastIndex(${label})`).to.equal(BigInt(st.used));
              expect(lastIndex <= BigInt(st.granted), `${label}: more feedback than rights`).to.equal(true);
              const [count, weight] = await real.reputation.feedbackRights(agentId, address);
              expect(count, `feedbackRights(${label}).count`).to.equal(BigInt(st.granted - st.used));
              expect(weight, `feedbackRights(${label}).weight`).to.equal(st.weight);
            }
            const clients = (model.clients.get(agentId) ?? []).map((i) => real.raters[i].address);
            expect(await real.reputation.getClients(agentId), `getClients(#${agentId})`).to.deep.equal(clients);
            const record = await real.reputation.getRecord(agentId);
            expect(record.ratingCount, `ratingCount(#${agentId})`).to.equal(
              BigInt(model.ratingCount.get(agentId) ?? 0),
            );
            expect(record.callsServed, `callsServed(#${agentId})`).to.equal(model.calls.get(agentId) ?? 0n);
            expect(record.settlementsServed, `settlementsServed(#${agentId})`).to.equal(
              model.settlements.get(agentId) ?? 0n,
            );
          }
        }),
        { seed, numRuns },
      );
    });
  });

  describe("score", function () {
    type Action =
      | { kind: "task"; pair: readonly [bigint, bigint]; outcome: number; amount: bigint }
      | { kind: "calls"; pair: readonly [bigint, bigint]; calls: bigint; amount: bigint; settlements: bigint }
      | { kind: "feedback"; pick: number; value: bigint; decimals: number }
      | { kind: "revoke"; pick: number }
      | { kind: "vote"; agentId: bigint; coherent: boolean };

    /** Feedback picks one of the unused rights, revocation one of the live ratings, when there is any. */
    const actionArb: fc.Arbitrary<Action> = fc.oneof(
      {
        arbitrary: fc.record({
          kind: fc.constant("task" as const),
          pair: pairArb,
          outcome: fc.integer({ min: 0, max: 5 }),
          amount: amountArb,
        }),
        weight: 3,
      },
      {
        arbitrary: fc.record({
          kind: fc.constant("calls" as const),
          pair: pairArb,
          calls: fc.bigInt({ min: 1n, max: 100n }),
          amount: amountArb.filter((a) => a > 0n),
          settlements: settlementsArb,
        }),
        weight: 2,
      },
      {
        arbitrary: fc
          .record({ pick: fc.nat(), rating: ratingArb })
          .map(({ pick, rating }) => ({ kind: "feedback" as const, pick, ...rating })),
        weight: 4,
      },
      { arbitrary: fc.record({ kind: fc.constant("revoke" as const), pick: fc.nat() }), weight: 1 },
      {
        arbitrary: fc.record({
          kind: fc.constant("vote" as const),
          agentId: fc.constantFrom(...AGENTS),
          coherent: fc.boolean(),
        }),
        weight: 1,
      },
    );

    interface ScoreModel {
      counters: Map<bigint, Counters>;
      ratings: Map<bigint, Rating[]>;
      rights: Map<string, { count: bigint; weight: bigint; used: bigint }>; // "agentId:rater"
      settlements: Map<bigint, bigint>; // agentId -> settlementsServed
    }

    const owner = (agentId: bigint) => INITIAL_OWNERS[Number(agentId) - 1];
    const countersOf = (m: ScoreModel, agentId: bigint) => m.counters.get(agentId)!;
    function rightsOf(m: ScoreModel, agentId: bigint, rater: number) {
      const k = `${agentId}:${rater}`;
      if (!m.rights.has(k)) m.rights.set(k, { count: 0n, weight: 0n, used: 0n });
      return m.rights.get(k)!;
    }
    function grant(m: ScoreModel, agentId: bigint, rater: number, amount: bigint, count = 1n) {
      const st = rightsOf(m, agentId, rater);
      st.count += count;
      st.weight += weightOf(amount);
    }

    /** Plays `actions` on chain and in the model; feedback and revocations pick among what is possible. */
    async function play(s: Awaited<ReturnType<typeof reputationFixture>>, actions: Action[]): Promise<ScoreModel> {
      const m: ScoreModel = { counters: new Map(), ratings: new Map(), rights: new Map(), settlements: new Map() };
      for (const id of AGENTS) {
        m.counters.set(id, emptyCounters());
        m.ratings.set(id, []);
        m.settlements.set(id, 0n);
      }
      const rep = s.reputation;
      for (const a of actions) {
        if (a.kind === "task") {
          const [client, provider] = a.pair;
          await expect(rep.connect(s.reporter).recordTask(client, provider, a.outcome, s.token, a.amount)).to.emit(
            rep,
            "TaskRecorded",
          );
          if (owner(client) !== owner(provider)) {
            applyOutcome(countersOf(m, client), countersOf(m, provider), a.outcome);
            grant(m, provider, owner(client), a.amount);
            grant(m, client, owner(provider), a.amount);
          }
        } else if (a.kind === "calls") {
          const [payer, provider] = a.pair;
          await expect(
            rep.connect(s.reporter).recordCalls(payer, provider, s.token, a.calls, a.amount, a.settlements),
          ).to.emit(rep, "CallsRecorded");
          if (owner(payer) !== owner(provider)) {
            grant(m, provider, owner(payer), a.amount, a.settlements);
            m.settlements.set(provider, m.settlements.get(provider)! + a.settlements);
          }
        } else if (a.kind === "feedback") {
          const holders = [...m.rights.entries()].filter(([, st]) => st.count > 0n).map(([k]) => k);
          if (holders.length === 0) continue;
          const [agentKey, raterKey] = holders[a.pick % holders.length].split(":");
          const [agentId, rater] = [BigInt(agentKey), Number(raterKey)];
          const st = rightsOf(m, agentId, rater);
          await expect(
            rep.connect(s.raters[rater]).giveFeedback(agentId, a.value, a.decimals, "", "", "", "", ethers.ZeroHash),
          ).to.emit(rep, "NewFeedback");
          const weight = st.weight / st.count;
          st.count -= 1n;
          st.weight -= weight;
          st.used += 1n;
          m.ratings.get(agentId)!.push({
            agentId,
            rater,
            index: st.used,
            value: a.value,
            decimals: a.decimals,
            weight,
            revoked: false,
          });
        } else if (a.kind === "revoke") {
          const live = [...m.ratings.values()].flat().filter((r) => !r.revoked);
          if (live.length === 0) continue;
          const rating = live[a.pick % live.length];
          await expect(rep.connect(s.raters[rating.rater]).revokeFeedback(rating.agentId, rating.index))
            .to.emit(rep, "FeedbackRevoked")
            .withArgs(rating.agentId, s.raters[rating.rater].address, rating.index);
          rating.revoked = true;
        } else {
          await expect(rep.connect(s.reporter).recordVote(a.agentId, a.coherent)).to.emit(rep, "VoteRecorded");
        }
      }
      return m;
    }

    /** Score of `agentId` on chain: within 0-10,000, at most the rating mean, equal to the model's. */
    async function checkScore(reputation: Reputation, m: ScoreModel, agentId: bigint): Promise<bigint> {
      const onChain = await reputation.score(agentId);
      const c = countersOf(m, agentId);
      const ratings = m.ratings.get(agentId)!;
      expect(onChain >= 0n && onChain <= MAX_BPS, `score(#${agentId}) = ${onChain} out of range`).to.equal(true);
      expect(onChain <= ratingMean(ratings), `score(#${agentId}) above its rating mean`).to.equal(true);
      expect(onChain, `score(#${agentId}) vs the documented formula`).to.equal(modelScore(c, ratings));
      // Whole-bps rounding of each rating and of the mean costs at most 2 bps against exact arithmetic.
      const exact = exactScore(c, ratings);
      expect(onChain <= exact && exact - onChain <= 2n, `score(#${agentId}) = ${onChain}, exact ${exact}`).to.equal(
        true,
      );
      return onChain;
    }

    it("stays within 0-10,000 and equals the documented formula, record for record", async function () {
      await fc.assert(
        fc.asyncProperty(fc.array(actionArb, { minLength: 1, maxLength: 15 }), async (actions) => {
          const s = await loadFixture(reputationFixture);
          const m = await play(s, actions);
          for (const agentId of AGENTS) {
            const r = await s.reputation.getRecord(agentId);
            const c = countersOf(m, agentId);
            expect(
              [r.tasksCompleted, r.tasksAutoCompleted, r.tasksRefunded, r.disputesWon, r.disputesLost, r.disputesSplit],
              `record of #${agentId}`,
            ).to.deep.equal([c.completed, c.autoCompleted, c.refunded, c.won, c.lost, c.split]);
            expect(r.settlementsServed, `settlementsServed(#${agentId})`).to.equal(m.settlements.get(agentId)!);
            const live = m.ratings.get(agentId)!.filter((x) => !x.revoked);
            expect([r.ratingCount, r.ratingWeight], `ratings of #${agentId}`).to.deep.equal([
              BigInt(live.length),
              live.reduce((sum, x) => sum + x.weight, 0n),
            ]);
            await checkScore(s.reputation, m, agentId);
          }
          for (const [k, st] of m.rights) {
            const [agentKey, raterKey] = k.split(":");
            const rights = await s.reputation.feedbackRights(BigInt(agentKey), s.raters[Number(raterKey)].address);
            expect([...rights], `feedbackRights(#${agentKey}, ${RATER_NAMES[Number(raterKey)]})`).to.deep.equal([
              st.count,
              st.weight,
            ]);
          }
        }),
        { seed, numRuns },
      );
    });

    it("one more lost dispute or refund never raises a score; one more completed task never lowers it", async function () {
      const checks = [
        { outcome: Outcome.DisputeClientWon, side: "provider", direction: "down" },
        { outcome: Outcome.Refunded, side: "provider", direction: "down" },
        { outcome: Outcome.Completed, side: "provider", direction: "up" },
        { outcome: Outcome.DisputeProviderWon, side: "client", direction: "down" },
      ] as const;
      await fc.assert(
        fc.asyncProperty(
          fc.array(actionArb, { maxLength: 15 }),
          pairArb.filter(([a, b]) => owner(a) !== owner(b)),
          amountArb,
          async (actions, [client, provider], amount) => {
            const s = await loadFixture(reputationFixture);
            const m = await play(s, actions);
            const snapshot = await takeSnapshot();
            for (const { outcome, side, direction } of checks) {
              await snapshot.restore();
              const target = side === "provider" ? provider : client;
              const before = await checkScore(s.reputation, m, target);
              await s.reputation.connect(s.reporter).recordTask(client, provider, outcome, s.token, amount);
              const after = await s.reputation.score(target);
              const label = `outcome ${outcome}: score(#${target}) ${before} -> ${after}`;
              if (direction === "down") expect(after <= before, label).to.equal(true);
              else expect(after >= before, label).to.equal(true);
              // And exactly the formula with the one more record.
              const c = { ...countersOf(m, target) };
              const other = emptyCounters();
              if (side === "provider") applyOutcome(other, c, outcome);
              else applyOutcome(c, other, outcome);
              expect(after, label).to.equal(modelScore(c, m.ratings.get(target)!));
            }
          },
        ),
        { seed, numRuns },
      );
    });
  });
});
