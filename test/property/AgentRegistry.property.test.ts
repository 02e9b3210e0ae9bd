import { expect } from "chai";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { deployWithAgents } from "../fixtures/system";
import type { AgentRegistry } from "../../typechain-types";

/**
 * Operator spending policies against a TypeScript model.
 * Fixed seed by default; FC_SEED and FC_RUNS explore further, e.g. `FC_RUNS=500 npx hardhat test <file>`.
 */
const seed = Number(process.env.FC_SEED ?? 42);
const numRuns = Number(process.env.FC_RUNS ?? 25);

const AGENT = 1n;
/** Explicit gas so that no estimate runs: every spend, reverting or not, is mined at the time set for it. */
const GAS = { gasLimit: 1_000_000 };

interface Limit {
  perTxCap: bigint;
  periodCap: bigint;
  period: number;
  rolling: boolean;
}

interface Spend {
  t: number;
  amount: bigint;
}

/** What the model says a spend of `amount` at `t` does, given the successful spends since the window was last reset. */
type Verdict =
  | { ok: true }
  | {
      ok: false;
      error: "AgentRegistryPerTxCapExceeded" | "AgentRegistryPeriodCapExceeded";
      args: [token: string, amount: bigint, capOrLeft: bigint];
    };

/** Spent in the window that counts at `t`: the bucket of `t` (fixed) or that bucket and the one before (rolling). */
function usedAt(spends: Spend[], limit: Limit, t: number): bigint {
  const bucket = Math.floor(t / limit.period);
  const first = limit.rolling ? bucket - 1 : bucket;
  return spends
    .filter((s) => {
      const b = Math.floor(s.t / limit.period);
      return b >= first && b <= bucket;
    })
    .reduce((sum, s) => sum + s.amount, 0n);
}

function judge(spends: Spend[], limit: Limit, t: number, token: string, amount: bigint): Verdict {
  if (amount > limit.perTxCap)
    return { ok: false, error: "AgentRegistryPerTxCapExceeded", args: [token, amount, limit.perTxCap] };
  const used = usedAt(spends, limit, t);
  if (used + amount > limit.periodCap) {
    const left = used >= limit.periodCap ? 0n : limit.periodCap - used;
    return { ok: false, error: "AgentRegistryPeriodCapExceeded", args: [token, amount, left] };
  }
  return { ok: true };
}

/** What `availableToSpend` must read at `t`. */
function availableAt(spends: Spend[], limit: Limit, t: number): bigint {
  const used = usedAt(spends, limit, t);
  const left = used >= limit.periodCap ? 0n : limit.periodCap - used;
  return left < limit.perTxCap ? left : limit.perTxCap;
}

/** Mines the next transaction at exactly `t` and checks it did. */
async function at<T>(t: number, send: () => Promise<T>): Promise<T> {
  await time.setNextBlockTimestamp(t);
  const result = await send();
  expect(await time.latest(), "block timestamp").to.equal(t);
  return result;
}

/** One spend by the reporter (standing in for a payment contract), asserted against `verdict`. */
async function expectSpend(
  registry: AgentRegistry,
  reporter: HardhatEthersSigner,
  operator: string,
  token: string,
  amount: bigint,
  verdict: Verdict | { ok: false; error: string; args: unknown[] },
) {
  const tx = registry.connect(reporter).consumeSpend(AGENT, operator, token, amount, 0n, GAS);
  if (verdict.ok) {
    await expect(tx).to.emit(registry, "SpendConsumed").withArgs(AGENT, operator, token, amount, 0n);
  } else {
    await expect(tx)
      .to.be.revertedWithCustomError(registry, verdict.error)
      .withArgs(...verdict.args);
  }
}

describe("AgentRegistry properties", function () {
  /** Agents #1-#3; the reporter holds SPENDER_ROLE; alice's operator is authorised for ten years. */
  async function operatorFixture() {
    const s = await deployWithAgents();
    const expiry = BigInt(await time.latest()) + 10n * 365n * 86_400n;
    await s.registry
      .connect(s.alice)
      .setOperator(AGENT, s.operator.address, { expiry, minScoreBps: 0, allowListOnly: false });
    return { ...s, token: await s.usdt.getAddress() };
  }

  describe("spend windows", function () {
    const limitArb = fc
      .record({
        periodCap: fc.integer({ min: 1, max: 1_000 }),
        perTxPercent: fc.integer({ min: 1, max: 100 }),
        period: fc.oneof(fc.integer({ min: 2, max: 120 }), fc.integer({ min: 121, max: 86_400 })),
        rolling: fc.boolean(),
      })
      .map(({ periodCap, perTxPercent, period, rolling }): Limit => ({
        periodCap: BigInt(periodCap),
        perTxCap: BigInt(Math.max(1, Math.floor((periodCap * perTxPercent) / 100))),
        period,
        rolling,
      }));

    /** A spend after a time jump: a fraction of the period, or onto a bucket boundary (one second either side). */
    const stepArb = fc.record({
      amountPercent: fc.integer({ min: 1, max: 130 }), // of perTxCap: above 100 breaks it
      jump: fc.oneof(
        fc.record({ kind: fc.constant("fraction" as const), percent: fc.integer({ min: 0, max: 250 }) }),
        fc.record({ kind: fc.constant("boundary" as const), offset: fc.constantFrom(-1, 0, 1) }),
      ),
    });

    type Step = typeof stepArb extends fc.Arbitrary<infer S> ? S : never;

    function nextTime(last: number, limit: Limit, step: Step): number {
      let t: number;
      if (step.jump.kind === "fraction") {
        t = last + Math.floor((limit.period * step.jump.percent) / 100);
      } else {
        t = (Math.floor(last / limit.period) + 1) * limit.period + step.jump.offset;
      }
      return Math.max(t, last + 1);
    }

    it("accepts a spend iff the model's window rule says it fits, and every window stays within the caps", async function () {
      await fc.assert(
        fc.asyncProperty(limitArb, fc.array(stepArb, { minLength: 1, maxLength: 15 }), async (limit, steps) => {
          const { registry, alice, operator, reporter, token } = await loadFixture(operatorFixture);
          await registry.connect(alice).setTokenLimit(AGENT, operator.address, token, limit);

          const spends: Spend[] = [];
          let last = await time.latest();
          for (const step of steps) {
            const t = nextTime(last, limit, step);
            const amount = BigInt(Math.max(1, Math.ceil((Number(limit.perTxCap) * step.amountPercent) / 100)));
            const verdict = judge(spends, limit, t, token, amount);
            await at(t, () => expectSpend(registry, reporter, operator.address, token, amount, verdict));
            if (verdict.ok) spends.push({ t, amount });
            expect(await registry.availableToSpend(AGENT, operator.address, token), `available at ${t}`).to.equal(
              availableAt(spends, limit, t),
            );
            last = t;
          }

          // The guarantees, over the successful spends only.
          for (const s of spends) expect(s.amount <= limit.perTxCap, `spend ${s.amount} above perTxCap`).to.equal(true);
          if (limit.rolling) {
            // Every window of `period` seconds: it suffices to check those starting or ending at a spend.
            for (const s of spends) {
              const from = spends.filter((x) => x.t >= s.t && x.t < s.t + limit.period);
              const upTo = spends.filter((x) => x.t > s.t - limit.period && x.t <= s.t);
              for (const window of [from, upTo]) {
                const sum = window.reduce((acc, x) => acc + x.amount, 0n);
                expect(sum <= limit.periodCap, `rolling window at ${s.t} holds ${sum}`).to.equal(true);
              }
            }
          } else {
            const buckets = new Map<number, bigint>();
            for (const s of spends) {
              const k = Math.floor(s.t / limit.period);
              buckets.set(k, (buckets.get(k) ?? 0n) + s.amount);
            }
            for (const [k, sum] of buckets) {
              expect(sum <= limit.periodCap, `fixed window ${k} holds ${sum}`).to.equal(true);
            }
          }
        }),
        { seed, numRuns },
      );
    });
  });

  describe("operator lifecycle", function () {
    const LIMITS: Limit[] = [
      { perTxCap: 100n, periodCap: 300n, period: 3_600, rolling: false },
      { perTxCap: 50n, periodCap: 120n, period: 3_600, rolling: true },
      { perTxCap: 200n, periodCap: 200n, period: 600, rolling: false },
      // The zero limit forbids the token; it keeps the period length, and so the spend window
      // (allowing the token again within the period gives no fresh cap: security review AR-1).
      { perTxCap: 0n, periodCap: 0n, period: 0, rolling: false },
    ];

    interface Model {
      now: number; // latest block timestamp
      epoch: number; // the agent's epoch: moves on every transfer
      ownerIsAlice: boolean;
      gen: number; // the operator's generation: 0 = never authorised
      opEpoch: number; // the agent epoch the operator was authorised in
      expiry: number; // 0 once revoked
      limit: (Limit & { gen: number }) | null;
      spends: Spend[]; // successful spends since the window was last reset
    }

    interface Real {
      registry: AgentRegistry;
      alice: HardhatEthersSigner;
      bob: HardhatEthersSigner;
      operator: HardhatEthersSigner;
      reporter: HardhatEthersSigner;
      token: string;
    }

    const activeAt = (m: Model, t: number) => m.gen > 0 && m.expiry > t && m.opEpoch === m.epoch;
    /** Set, not revoked, same owner: expired or not (renewing an expired operator keeps its policy). */
    const isCurrent = (m: Model) => m.gen > 0 && m.expiry !== 0 && m.opEpoch === m.epoch;
    /** The operator's limit, if it belongs to the operator's current generation. */
    const limitOf = (m: Model) => (m.limit !== null && m.limit.gen === m.gen ? m.limit : null);
    const owner = (m: Model, r: Real) => (m.ownerIsAlice ? r.alice : r.bob);

    /** After every command: the views agree with the model. */
    async function checkInvariants(m: Model, r: Real) {
      expect(await time.latest()).to.equal(m.now);
      const active = activeAt(m, m.now);
      const view = await r.registry.getOperator(AGENT, r.operator.address);
      expect(view.active, "getOperator().active").to.equal(active);
      expect(view.expiry, "getOperator().expiry").to.equal(BigInt(m.expiry));
      expect(await r.registry.canAct(AGENT, r.operator.address), "canAct").to.equal(active);
      const current = limitOf(m);
      const limit = await r.registry.getTokenLimit(AGENT, r.operator.address, r.token);
      expect([limit.perTxCap, limit.periodCap, limit.period, limit.rolling], "getTokenLimit").to.deep.equal(
        current === null || !isCurrent(m)
          ? [0n, 0n, 0n, false]
          : [current.perTxCap, current.periodCap, BigInt(current.period), current.rolling],
      );
      const available =
        active && current !== null && current.periodCap > 0n ? availableAt(m.spends, current, m.now) : 0n;
      expect(await r.registry.availableToSpend(AGENT, r.operator.address, r.token), "availableToSpend").to.equal(
        available,
      );
    }

    class SetOperator implements fc.AsyncCommand<Model, Real> {
      constructor(readonly lifetime: number) {}
      check = () => true;
      async run(m: Model, r: Real) {
        const t = m.now + 1;
        const expiry = t + this.lifetime;
        const terms = { expiry, minScoreBps: 0, allowListOnly: false };
        const tx = () => r.registry.connect(owner(m, r)).setOperator(AGENT, r.operator.address, terms, GAS);
        if (this.lifetime === 0) {
          await at(t, () =>
            expect(tx()).to.be.revertedWithCustomError(r.registry, "AgentRegistryBadExpiry").withArgs(expiry),
          );
        } else {
          await at(t, () =>
            expect(tx()).to.emit(r.registry, "OperatorSet").withArgs(AGENT, r.operator.address, expiry, 0, false),
          );
          // A revoked, never-set or previous-owner operator starts a fresh policy.
          if (m.gen === 0 || m.expiry === 0 || m.opEpoch !== m.epoch) {
            m.gen += 1;
            m.opEpoch = m.epoch;
          }
          m.expiry = expiry;
        }
        m.now = t;
        await checkInvariants(m, r);
      }
      toString = () => `setOperator(lifetime ${this.lifetime})`;
    }

    class SetTokenLimit implements fc.AsyncCommand<Model, Real> {
      constructor(readonly which: number) {}
      check = () => true;
      async run(m: Model, r: Real) {
        const t = m.now + 1;
        const limit = LIMITS[this.which];
        const tx = () => r.registry.connect(owner(m, r)).setTokenLimit(AGENT, r.operator.address, r.token, limit, GAS);
        if (!activeAt(m, t)) {
          await at(t, () =>
            expect(tx())
              .to.be.revertedWithCustomError(r.registry, "AgentRegistryOperatorInactive")
              .withArgs(AGENT, r.operator.address),
          );
        } else {
          const fresh = m.limit === null || m.limit.gen !== m.gen;
          // The zero limit keeps the current period length.
          const period = limit.periodCap === 0n && !fresh ? m.limit!.period : limit.period;
          await at(t, () =>
            expect(tx())
              .to.emit(r.registry, "TokenLimitSet")
              .withArgs(AGENT, r.operator.address, r.token, limit.perTxCap, limit.periodCap, period, limit.rolling),
          );
          // A fresh policy or a new period length empties the window; other changes keep it.
          if (fresh || m.limit!.period !== period) m.spends = [];
          m.limit = { ...limit, period, gen: m.gen };
        }
        m.now = t;
        await checkInvariants(m, r);
      }
      toString = () => `setTokenLimit(#${this.which})`;
    }

    class Revoke implements fc.AsyncCommand<Model, Real> {
      check = () => true;
      async run(m: Model, r: Real) {
        const t = m.now + 1;
        const tx = () => r.registry.connect(owner(m, r)).revokeOperator(AGENT, r.operator.address, GAS);
        if (m.expiry === 0) {
          await at(t, () =>
            expect(tx())
              .to.be.revertedWithCustomError(r.registry, "AgentRegistryOperatorInactive")
              .withArgs(AGENT, r.operator.address),
          );
        } else {
          await at(t, () => expect(tx()).to.emit(r.registry, "OperatorRevoked").withArgs(AGENT, r.operator.address));
          m.expiry = 0;
        }
        m.now = t;
        await checkInvariants(m, r);
      }
      toString = () => "revokeOperator";
    }

    /** Time passes: by `seconds`, or onto the expiry (one second either side) when there is one ahead. */
    class Wait implements fc.AsyncCommand<Model, Real> {
      constructor(
        readonly seconds: number,
        readonly toExpiry: number | null,
      ) {}
      check = () => true;
      async run(m: Model, r: Real) {
        const target =
          this.toExpiry !== null && m.expiry > 0 ? Math.max(m.now + 1, m.expiry + this.toExpiry) : m.now + this.seconds;
        await time.increaseTo(target);
        m.now = target;
        await checkInvariants(m, r);
      }
      toString = () =>
        this.toExpiry !== null
          ? `wait(expiry ${this.toExpiry >= 0 ? "+" : ""}${this.toExpiry})`
          : `wait(${this.seconds}s)`;
    }

    class SpendCommand implements fc.AsyncCommand<Model, Real> {
      constructor(readonly amount: bigint) {}
      check = () => true;
      async run(m: Model, r: Real) {
        const t = m.now + 1;
        const current = limitOf(m);
        let verdict: Verdict | { ok: false; error: string; args: unknown[] };
        if (!activeAt(m, t)) {
          verdict = { ok: false, error: "AgentRegistryNotAuthorized", args: [AGENT, r.operator.address] };
        } else if (current === null || current.periodCap === 0n) {
          verdict = { ok: false, error: "AgentRegistryTokenNotAllowed", args: [AGENT, r.operator.address, r.token] };
        } else {
          verdict = judge(m.spends, current, t, r.token, this.amount);
        }
        await at(t, () => expectSpend(r.registry, r.reporter, r.operator.address, r.token, this.amount, verdict));
        if (verdict.ok) m.spends.push({ t, amount: this.amount });
        m.now = t;
        await checkInvariants(m, r);
      }
      toString = () => `spend(${this.amount})`;
    }

    /** The agent changes hands (alice and bob pass it back and forth): the old owner's operator goes stale. */
    class Transfer implements fc.AsyncCommand<Model, Real> {
      check = () => true;
      async run(m: Model, r: Real) {
        const t = m.now + 1;
        const from = owner(m, r);
        const to = m.ownerIsAlice ? r.bob : r.alice;
        await at(t, () =>
          expect(r.registry.connect(from).transferFrom(from.address, to.address, AGENT, GAS))
            .to.emit(r.registry, "Transfer")
            .withArgs(from.address, to.address, AGENT),
        );
        m.ownerIsAlice = !m.ownerIsAlice;
        m.epoch += 1;
        m.now = t;
        await checkInvariants(m, r);
      }
      toString = () => "transfer";
    }

    const commandsArb = fc.commands(
      [
        fc.constantFrom(0, 1, 60, 600, 3_600, 7_200).map((lifetime) => new SetOperator(lifetime)),
        fc.integer({ min: 0, max: LIMITS.length - 1 }).map((which) => new SetTokenLimit(which)),
        fc.constant(new Revoke()),
        fc
          .tuple(fc.integer({ min: 1, max: 4_000 }), fc.option(fc.constantFrom(-1, 0, 1), { nil: null }))
          .map(([seconds, toExpiry]) => new Wait(seconds, toExpiry)),
        fc.bigInt({ min: 1n, max: 220n }).map((amount) => new SpendCommand(amount)),
        fc.constant(new Transfer()),
      ],
      { maxCommands: 15 },
    );

    it("a revoked, expired or stale operator never spends; an active one spends exactly within its limits", async function () {
      await fc.assert(
        fc.asyncProperty(commandsArb, async (commands) => {
          const s = await loadFixture(deployWithAgents);
          const real: Real = {
            registry: s.registry,
            alice: s.alice,
            bob: s.bob,
            operator: s.operator,
            reporter: s.reporter,
            token: await s.usdt.getAddress(),
          };
          const model: Model = {
            now: await time.latest(),
            epoch: 0,
            ownerIsAlice: true,
            gen: 0,
            opEpoch: 0,
            expiry: 0,
            limit: null,
            spends: [],
          };
          await checkInvariants(model, real);
          await fc.asyncModelRun(() => ({ model, real }), commands);
        }),
        { seed, numRuns },
      );
    });
  });
});
