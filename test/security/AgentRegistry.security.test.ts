import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import { deployWithAgents } from "../fixtures/system";
import { now, usd } from "../fixtures/helpers";

// ---------------------------------------------------------------------- constants

const DAY = 86_400n;
const ZERO_LIMIT = { perTxCap: 0n, periodCap: 0n, period: 0, rolling: false };

// ---------------------------------------------------------------------- fixtures

/**
 * Alice's agent (#1) authorises `operator` for 30 days with a limit of 100 USDT per transaction
 * and 100 USDT per day (fixed or rolling), a minute after the start of a fresh day so that every
 * step below lands in the same day bucket.
 */
async function spentCapFixture(rolling: boolean) {
  const s = await deployWithAgents();
  const usdtAddr = await s.usdt.getAddress();
  const dayStart = ((await now()) / DAY + 1n) * DAY;
  await time.setNextBlockTimestamp(dayStart + 60n);
  await s.registry
    .connect(s.alice)
    .setOperator(s.aliceId, s.operator.address, { expiry: dayStart + 30n * DAY, minScoreBps: 0, allowListOnly: false });
  const limit = { perTxCap: usd(100), periodCap: usd(100), period: DAY, rolling };
  await s.registry.connect(s.alice).setTokenLimit(s.aliceId, s.operator.address, usdtAddr, limit);
  // The operator spends its whole daily cap.
  await s.registry.connect(s.reporter).consumeSpend(s.aliceId, s.operator.address, usdtAddr, usd(100), 0n);
  return { ...s, usdtAddr, limit, dayStart };
}

const fixedCapFixture = () => spentCapFixture(false);
const rollingCapFixture = () => spentCapFixture(true);

// ---------------------------------------------------------------------- tests

describe("AgentRegistry security", function () {
  describe("AR-1: forbidding a token with the zero limit and allowing it again in the same period", function () {
    for (const [mode, fixture] of [
      ["fixed", fixedCapFixture],
      ["rolling", rollingCapFixture],
    ] as const) {
      it(`keeps what the operator spent in the ${mode} window (no second cap in one day)`, async function () {
        const { registry, alice, operator, reporter, aliceId, usdtAddr, limit, dayStart } = await loadFixture(fixture);
        // Incident: the owner forbids the token with the zero limit (the canonical "forbid",
        // which works while the registry is paused)...
        await registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, ZERO_LIMIT);
        // ...and restores the very same limit later that day.
        await registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, limit);
        expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(0n);
        await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(100), 0n))
          .to.be.revertedWithCustomError(registry, "AgentRegistryPeriodCapExceeded")
          .withArgs(usdtAddr, usd(100), 0n);
        // Still the same day: the whole day's spend is the cap, not twice the cap.
        expect((await time.latest()) < dayStart + DAY).to.equal(true);
      });
    }

    it("emits and stores the kept period, and forbids the token while zero", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr } = await loadFixture(fixedCapFixture);
      await expect(registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, ZERO_LIMIT))
        .to.emit(registry, "TokenLimitSet")
        .withArgs(aliceId, operator.address, usdtAddr, 0n, 0n, DAY, false);
      expect(await registry.getTokenLimit(aliceId, operator.address, usdtAddr)).to.deep.equal([0n, 0n, DAY, false]);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, 1n, 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryTokenNotAllowed")
        .withArgs(aliceId, operator.address, usdtAddr);
    });

    it("gives the full cap back in the next fixed period, as without the pause", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr, limit, dayStart } =
        await loadFixture(fixedCapFixture);
      await registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, ZERO_LIMIT);
      await registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, limit);
      await time.setNextBlockTimestamp(dayStart + DAY);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(100), 0n))
        .to.emit(registry, "SpendConsumed")
        .withArgs(aliceId, operator.address, usdtAddr, usd(100), 0n);
    });

    it("a zero limit with an explicit period keeps the window too", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr, limit } = await loadFixture(fixedCapFixture);
      const zeroWithPeriod = { ...ZERO_LIMIT, period: Number(DAY) * 7 };
      await expect(registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, zeroWithPeriod))
        .to.emit(registry, "TokenLimitSet")
        .withArgs(aliceId, operator.address, usdtAddr, 0n, 0n, DAY, false);
      await registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, limit);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, 1n, 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryPeriodCapExceeded")
        .withArgs(usdtAddr, 1n, 0n);
    });

    it("allowing it again with another period length still starts an empty window (known limitation 2)", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr, limit } = await loadFixture(fixedCapFixture);
      await registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, ZERO_LIMIT);
      await registry
        .connect(alice)
        .setTokenLimit(aliceId, operator.address, usdtAddr, { ...limit, period: Number(DAY) * 2 });
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(100));
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(100), 0n))
        .to.emit(registry, "SpendConsumed")
        .withArgs(aliceId, operator.address, usdtAddr, usd(100), 0n);
    });

    it("a re-authorised operator still starts from a clean policy (new gen) after a zero limit", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr, limit, dayStart } =
        await loadFixture(fixedCapFixture);
      await registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, ZERO_LIMIT);
      await registry.connect(alice).revokeOperator(aliceId, operator.address);
      await registry
        .connect(alice)
        .setOperator(aliceId, operator.address, { expiry: dayStart + 30n * DAY, minScoreBps: 0, allowListOnly: false });
      expect(await registry.getTokenLimit(aliceId, operator.address, usdtAddr)).to.deep.equal([0n, 0n, 0n, false]);
      // The zero limit of the new generation keeps nothing of the old one.
      await expect(registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, ZERO_LIMIT))
        .to.emit(registry, "TokenLimitSet")
        .withArgs(aliceId, operator.address, usdtAddr, 0n, 0n, 0n, false);
      await registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, limit);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(100), 0n))
        .to.emit(registry, "SpendConsumed")
        .withArgs(aliceId, operator.address, usdtAddr, usd(100), 0n);
    });
  });
  describe("AR-2: counterparty 0 on an allow-list", function () {
    /** Alice's operator may only pay allow-listed counterparties (bob's agent). */
    async function allowListFixture() {
      const s = await deployWithAgents();
      const usdtAddr = await s.usdt.getAddress();
      const expiry = (await now()) + 30n * DAY;
      await s.registry
        .connect(s.alice)
        .setOperator(s.aliceId, s.operator.address, { expiry, minScoreBps: 0, allowListOnly: true });
      const limit = { perTxCap: usd(100), periodCap: usd(100), period: DAY, rolling: false };
      await s.registry.connect(s.alice).setTokenLimit(s.aliceId, s.operator.address, usdtAddr, limit);
      await s.registry.connect(s.alice).setCounterparties(s.aliceId, s.operator.address, [s.bobId], true);
      return { ...s, usdtAddr };
    }

    it("reverts with AgentRegistryUnknownAgent(0) when allowing 0, so an allow-list never opens open-market tasks", async function () {
      const { registry, alice, operator, reporter, aliceId, bobId, usdtAddr } = await loadFixture(allowListFixture);
      // Counterparty 0 is what TaskEscrow reports for bidding and auto-match tasks, whose provider
      // is chosen later: on an allow-list it would let the operator pay any provider at all.
      await expect(registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId, 0n], true))
        .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownAgent")
        .withArgs(0n);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, 0n)).to.equal(false);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryCounterpartyNotAllowed")
        .withArgs(0n);
      // Removing 0 stays possible (it is a no-op).
      await expect(registry.connect(alice).setCounterparties(aliceId, operator.address, [0n], false))
        .to.emit(registry, "CounterpartyAllowed")
        .withArgs(aliceId, operator.address, 0n, false);
    });
  });
  describe("AR-3: allow-lists name agent ids, not owners (known limitation AgentRegistry 10, documented)", function () {
    it("an id allow-listed before it exists goes to whoever registers it; a sold agent stays allowed", async function () {
      const { registry, alice, bob, stranger, operator, reporter, aliceId, bobId, usdt } =
        await loadFixture(deployWithAgents);
      const usdtAddr = await usdt.getAddress();
      const expiry = (await now()) + 30n * DAY;
      await registry
        .connect(alice)
        .setOperator(aliceId, operator.address, { expiry, minScoreBps: 0, allowListOnly: true });
      const limit = { perTxCap: usd(100), periodCap: usd(100), period: DAY, rolling: false };
      await registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, limit);
      // Agent #4 does not exist yet; alice allow-lists it anyway (accepted, as the unit tests pin).
      await registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId, 4n], true);
      await registry.connect(stranger).getFunction("register(string)")("ipfs://squatter");
      expect(await registry.ownerOfAgent(4n)).to.equal(stranger.address);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(10), 4n))
        .to.emit(registry, "SpendConsumed")
        .withArgs(aliceId, operator.address, usdtAddr, usd(10), 4n);
      // Bob sells his agent to the stranger: it stays on the list.
      await registry.connect(bob).transferFrom(bob.address, stranger.address, bobId);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(10), bobId))
        .to.emit(registry, "SpendConsumed")
        .withArgs(aliceId, operator.address, usdtAddr, usd(10), bobId);
      // The remedy is the owner's: remove the id.
      await registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId, 4n], false);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(10), bobId))
        .to.be.revertedWithCustomError(registry, "AgentRegistryCounterpartyNotAllowed")
        .withArgs(bobId);
    });
  });
});
