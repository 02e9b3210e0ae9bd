import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { DAY, deployEscrow, Mode, postAccepted, taskParams, type EscrowFixture } from "../fixtures/escrow";
import { deployWithAgents } from "../fixtures/system";
import { now, Outcome, usd } from "../fixtures/helpers";
import type { Reputation } from "../../typechain-types";

// Security review of Reputation (feedback rights, ERC-8004 views, score arithmetic).
// Each block is one finding: a regression test when it was fixed, or a test pinning the current
// behaviour when it was documented as a known limitation instead (audits/known-limitations.md).

const MAX_ABS_VALUE = 10n ** 38n;

/** Feedback with only the rating set (no tags, endpoint, URI or hash). */
function rate(reputation: Reputation, rater: HardhatEthersSigner, agentId: bigint, value: bigint, decimals: number) {
  return reputation.connect(rater).giveFeedback(agentId, value, decimals, "", "", "", "", ethers.ZeroHash);
}

/** The score formula of IReputation, from the record. */
async function expectedScore(reputation: Reputation, agentId: bigint) {
  const r = await reputation.getRecord(agentId);
  const mean = r.ratingWeight === 0n ? 5_000n : r.ratingWeightedBps / r.ratingWeight;
  const good = 2n * (r.tasksCompleted + r.tasksAutoCompleted + r.disputesWon) + r.disputesSplit;
  const bad = 2n * r.tasksRefunded + 4n * r.disputesLost + r.disputesSplit;
  return (mean * (good + 2n)) / (good + bad + 2n);
}

describe("Reputation security", function () {
  // ------------------------------------------------------------------ RP-1 (fixed)

  /**
   * deployEscrow, plus a sybil of dave's: the stranger signer, a different address, registers
   * agent #5. Dave (#4) and #5 are a "sybil pair with two owners" (known limitation Reputation 4).
   */
  async function withSybilPair() {
    const f = await deployEscrow();
    await f.registry.connect(f.stranger).getFunction("register(string)")("ipfs://sybil");
    return { ...f, sybilId: 5n };
  }

  /** `client` hires `provider` directly at `price`, asks to cancel, and `provider`'s owner refunds (that transaction). */
  async function refundedTask(
    f: EscrowFixture,
    client: { signer: HardhatEthersSigner; id: bigint },
    provider: { signer: HardhatEthersSigner; id: bigint },
    price: bigint,
  ) {
    const id = await postAccepted(
      { ...f, alice: client.signer, bob: provider.signer },
      { clientId: client.id, providerId: provider.id, budget: price, maxBudget: price },
    );
    await f.escrow.connect(client.signer).closeTask(id); // Accepted -> CancelRequested
    return f.escrow.connect(provider.signer).agreeRefund(id); // -> Refunded, price back to the client
  }

  describe("RP-1 (fixed): a refunded task grants rights that weigh nothing", function () {
    it("a fresh agent cannot buy a score with a refunded task: it still fails a task's and an operator's minimum", async function () {
      const f = await loadFixture(withSybilPair);
      const { escrow, reputation, usdt, carol, dave, stranger, daveId, sybilId } = f;
      const usdtAddr = await usdt.getAddress();
      const price = usd(1_000_000); // dave's whole balance: a flash loan would do as well

      // Carol posts a bidding task open only to providers scoring at least 9,000 bps, and alice's
      // operator may only pay counterparties scoring at least 9,000 bps.
      await escrow
        .connect(carol)
        .postTask(
          await taskParams(f, { clientId: f.carolId, providerId: 0n, mode: Mode.Bidding, minScoreBps: 9_000n }),
        );
      const terms = { expiry: (await now()) + 30n * DAY, minScoreBps: 9_000, allowListOnly: false };
      await f.registry.connect(f.alice).setOperator(f.aliceId, f.operator.address, terms);
      const limit = { perTxCap: usd(100), periodCap: usd(1_000), period: DAY, rolling: true };
      await f.registry.connect(f.alice).setTokenLimit(f.aliceId, f.operator.address, usdtAddr, limit);
      const hireDave = async () => escrow.connect(f.operator).postTask(await taskParams(f, { providerId: daveId }));
      const openTask = await escrow.taskCount();
      expect(await reputation.score(daveId)).to.equal(5_000n); // neutral: never worked

      // Dave hires his sybil for 1,000,000 USDT; the sybil agrees to refund at once: no money moves.
      const before = await usdt.balanceOf(dave.address);
      const feesBefore = await escrow.accruedFees(usdtAddr);
      const refund = await refundedTask(f, { signer: dave, id: daveId }, { signer: stranger, id: sybilId }, price);
      expect(await usdt.balanceOf(dave.address)).to.equal(before);
      expect(await escrow.accruedFees(usdtAddr)).to.equal(feesBefore);

      // Recorded with the value paid, 0: both owners get their right, weighing nothing, and no volume.
      await expect(refund)
        .to.emit(reputation, "TaskRecorded")
        .withArgs(daveId, sybilId, Outcome.Refunded, usdtAddr, 0n, false);
      expect(await reputation.feedbackRights(daveId, stranger.address)).to.deep.equal([1n, 0n]);
      expect(await reputation.feedbackRights(sybilId, dave.address)).to.deep.equal([1n, 0n]);
      expect(await reputation.getVolume(daveId, usdtAddr)).to.equal(0n);

      // The sybil's 100/100 weighs nothing: dave's agent stays neutral and is still refused.
      await rate(reputation, stranger, daveId, 100n, 0);
      expect((await reputation.getRecord(daveId)).ratingWeight).to.equal(0n);
      expect(await reputation.score(daveId)).to.equal(5_000n);
      await expect(escrow.connect(dave).placeBid(openTask, daveId, usd(100), 86_400, ethers.ZeroHash))
        .to.be.revertedWithCustomError(escrow, "TaskEscrowScoreTooLow")
        .withArgs(daveId, 5_000n, 9_000n);
      await expect(hireDave())
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryCounterpartyScoreTooLow")
        .withArgs(daveId, 5_000n, 9_000n);
    });

    it("a sybil client's rating after a refund does not move a provider's rating mean", async function () {
      const f = await loadFixture(withSybilPair);
      const { escrow, reputation, usdt, carol, dave, stranger, daveId, sybilId } = f;

      // An honest client (carol) paid dave's agent 100 USDT for a completed task and rated it 10/100.
      const honest = await postAccepted(
        { ...f, alice: carol, bob: dave },
        { clientId: f.carolId, providerId: daveId, budget: usd(100), maxBudget: usd(100) },
      );
      await escrow.connect(dave).submitWork(honest, ethers.id("deliverable"), "ipfs://deliverable");
      await escrow.connect(carol).approve(honest);
      await rate(reputation, carol, daveId, 10n, 0);
      expect(await reputation.score(daveId)).to.equal(1_000n); // R = 1,000; P = 2, N = 0

      // Dave's sybil hires dave's agent for 1,000,000 USDT, cancels, dave refunds, the sybil rates 100/100.
      await usdt.mint(stranger.address, usd(1_000_000));
      await usdt.connect(stranger).approve(await escrow.getAddress(), ethers.MaxUint256);
      await refundedTask(f, { signer: stranger, id: sybilId }, { signer: dave, id: daveId }, usd(1_000_000));
      await rate(reputation, stranger, daveId, 100n, 0);

      // R stays carol's 1,000 (weight 100 USDT); the refund counts against dave: 1,000 x 4 / 6.
      const record = await reputation.getRecord(daveId);
      expect(record.tasksRefunded).to.equal(1n);
      expect(record.ratingWeight).to.equal(usd(100));
      expect(await reputation.score(daveId)).to.equal(666n);
      expect(await reputation.score(daveId)).to.equal(await expectedScore(reputation, daveId));
    });

    it("a client that cancels after acceptance cannot sink a provider's rating mean with its rating", async function () {
      const f = await loadFixture(withSybilPair);
      const { escrow, reputation, usdt, alice, bob, carol, aliceId, bobId } = f;

      // Bob's agent earned an honest 90/100 from carol on a 100 USDT task.
      const honest = await postAccepted(
        { ...f, alice: carol, bob },
        { clientId: f.carolId, providerId: bobId, budget: usd(100), maxBudget: usd(100) },
      );
      await escrow.connect(bob).submitWork(honest, ethers.id("deliverable"), "ipfs://deliverable");
      await escrow.connect(carol).approve(honest);
      await rate(reputation, carol, bobId, 90n, 0);
      expect(await reputation.score(bobId)).to.equal(9_000n);

      // A competitor (alice) offers bob 1,000,000 USDT, bob accepts, alice asks to cancel at once and
      // bob stays silent: she is refunded in full.
      const id = await postAccepted(f, { budget: usd(1_000_000), maxBudget: usd(1_000_000) });
      await escrow.connect(alice).closeTask(id);
      await time.increase((await escrow.getTask(id)).deadline - BigInt(await time.latest()) + 1n);
      await escrow.timeout(id); // CancelRequested -> Refunded
      expect(await usdt.balanceOf(alice.address)).to.equal(usd(1_000_000));

      // Her 0/100 weighs nothing: R stays 9,000. What remains is the refund in bob's counters (P = 2,
      // N = 2: 9,000 x 4 / 6), which bob could have avoided by delivering or disputing in the window.
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([1n, 0n]);
      await rate(reputation, alice, bobId, 0n, 0);
      expect((await reputation.getRecord(bobId)).ratingWeight).to.equal(usd(100));
      expect(await reputation.score(bobId)).to.equal(6_000n);
      expect(await reputation.score(bobId)).to.equal(await expectedScore(reputation, bobId));
      expect(await reputation.score(aliceId)).to.equal(5_000n); // the canceller's record is untouched
    });
  });

  // ------------------------------------------------------------------ RP-2 (fixed)

  describe("RP-2 (fixed): getSummary keeps a mean that does not fit the most frequent decimals", function () {
    /** Alice holds one right on bob (#2), carol two. */
    async function withThreeRights() {
      const s = await deployWithAgents();
      const usdtAddr = await s.usdt.getAddress();
      const rep = s.reputation.connect(s.reporter);
      await rep.recordTask(s.aliceId, s.bobId, Outcome.Completed, usdtAddr, 100n);
      await rep.recordTask(s.carolId, s.bobId, Outcome.Completed, usdtAddr, 100n);
      await rep.recordTask(s.carolId, s.bobId, Outcome.Completed, usdtAddr, 100n);
      return s;
    }

    it("answers in fewer decimals instead of wrapping around int128", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withThreeRights);
      await rate(reputation, alice, bobId, MAX_ABS_VALUE, 0); // 1e38
      await rate(reputation, carol, bobId, 1n, 18); // 1e-18
      await rate(reputation, carol, bobId, 1n, 18); // 1e-18
      // Mean in 18 decimals: (1e56 + 2) / 3, about 3.3e55, which does not fit int128 (1.7e38).
      const wadMean = (MAX_ABS_VALUE * 10n ** 18n + 2n) / 3n;
      const [count, value, decimals] = await reputation.getSummary(bobId, [alice.address, carol.address], "", "");
      expect(count).to.equal(3n);
      // Before the fix: decimals 18 and int128(wadMean), a wrapped value.
      expect(value).to.not.equal(BigInt.asIntN(128, wadMean));
      // After: the mean itself, in 0 decimals (the most frequent, 18, cannot hold it within ±1e38).
      expect([value, decimals]).to.deep.equal([wadMean / 10n ** 18n, 0n]);
      expect(value).to.equal(33_333_333_333_333_333_333_333_333_333_333_333_333n);
    });

    it("lowers the decimals only as far as needed: 18 -> 6 for a mean of -1e50 / 3 in wad", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withThreeRights);
      await rate(reputation, alice, bobId, -MAX_ABS_VALUE, 6); // -1e32, 1e50 in 18 decimals
      await rate(reputation, carol, bobId, 0n, 18);
      await rate(reputation, carol, bobId, 0n, 18);
      const wadMean = -(MAX_ABS_VALUE * 10n ** 12n) / 3n; // about -3.3e49
      // At 7 decimals the mean is about -3.3e38, beyond -1e38; at 6 it is about -3.3e37.
      expect(await reputation.getSummary(bobId, [alice.address, carol.address], "", "")).to.deep.equal([
        3n,
        wadMean / 10n ** 12n,
        6n,
      ]);
      expect(wadMean / 10n ** 12n).to.equal(-33_333_333_333_333_333_333_333_333_333_333_333_333n);
    });

    it("still answers in the most frequent decimals when the mean fits them", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withThreeRights);
      await rate(reputation, alice, bobId, 10n ** 20n, 18); // 100
      await rate(reputation, carol, bobId, 50n * 10n ** 18n, 18); // 50
      await rate(reputation, carol, bobId, MAX_ABS_VALUE / 10n ** 18n, 0); // 1e20
      // The mean (1e20 + 150) / 3 is about 3.3e19, i.e. 3.3e37 at 18 decimals: it fits.
      const wadMean = (10n ** 20n + 50n * 10n ** 18n + 10n ** 38n) / 3n;
      expect(await reputation.getSummary(bobId, [alice.address, carol.address], "", "")).to.deep.equal([
        3n,
        wadMean,
        18n,
      ]);
    });
  });
});
